// The one reconnecting WebSocket: auth as the first frame, keep-alive, reconnect with
// jittered exponential backoff; the messenger, the agent console and the widget use it.
//
// Events (CustomEvent, detail = the frame): one per server frame type ("ready",
// "message", "ack", ...) and "frame" for every one of them; "state"
// ({state, retryAt, reason}) whenever the connection changes; "unauthenticated"
// ({fatal}) when the server refused the token and no refresh could fix it.
// "ready" comes after every (re)connection: that is where a client syncs what it
// missed, since the socket is only the fast path.

// Close codes the server uses (see DESIGN.md and docs).
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  RESTARTING: 1012,
  TRY_AGAIN_LATER: 1013,
  UNAUTHENTICATED: 4001,
  FORBIDDEN_ORIGIN: 4003,
  TOO_SLOW: 4008,
  WRONG_ROUTE: 4011,
  MOVED: 4012,
  RATE_LIMITED: 4029,
});

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
// A rate-limited client waits at least this long before coming back.
const RATE_LIMITED_MIN_MS = 10_000;
// 4012 (moved: the cluster re-homed this user, or frames may have been missed): come
// back at once, spread over this window so a moved crowd does not arrive together.
const MOVED_JITTER_MS = 1_000;
const PING_EVERY_MS = 25_000;
// No frame at all for this long after a ping means the connection is dead.
const PONG_TIMEOUT_MS = 10_000;
// The server closes unauthenticated sockets after 5 s; we must be faster than that.
const READY_TIMEOUT_MS = 8_000;
// A fresh token refused again within this window waits for the backoff instead
// of reconnecting at once (clock skew, a restarting server).
const AUTH_LOOP_WINDOW_MS = 10_000;

export const STATE = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  ONLINE: 'online',
  WAITING: 'waiting',   // disconnected, a retry is scheduled
  FAILED: 'failed',     // will not retry by itself (forbidden origin)
});

// Equal jitter: between half and all of an exponentially growing cap, so a crowd
// of clients spreads out but none comes back at once.
export function backoffDelay(attempt, reason = 'network') {
  const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** attempt);
  const delay = cap / 2 + Math.random() * (cap / 2);
  return reason === 'rate' ? Math.max(delay, RATE_LIMITED_MIN_MS) : delay;
}

export class ReconnectingSocket extends EventTarget {
  // url: the socket's URL, or a function giving it at each (re)connection; token: async () => the token for the auth frame;
  // refresh: optional async () => a new token can be had (throws when it cannot);
  // authFrame: optional (token) => the first frame, {type: 'auth', token} by default.
  constructor({ url, token, refresh = null, authFrame = null }) {
    super();
    this.url = url;
    this.token = token;
    this.refresh = refresh;
    this.authFrame = authFrame || ((value) => ({ type: 'auth', token: value }));
    this.ws = null;
    this.state = STATE.IDLE;
    this.attempt = 0;
    this.retryAt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.deadTimer = null;
    this.readyTimer = null;
    this.stopped = true;
    this.lastClose = null;
    this.lastAuthRefusal = 0;
    this.reason = '';
    this.onlineListener = () => this.reconnectNow();
    this.offlineListener = () => { if (this.ws) this.ws.close(); };
  }

  start() {
    if (!this.stopped) return;
    this.stopped = false;
    window.addEventListener('online', this.onlineListener);
    window.addEventListener('offline', this.offlineListener);
    this.connect();
  }

  stop() {
    this.stopped = true;
    window.removeEventListener('online', this.onlineListener);
    window.removeEventListener('offline', this.offlineListener);
    this.clearTimers();
    clearTimeout(this.retryTimer);
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(CLOSE.NORMAL, 'done');
    }
    this.setState(STATE.IDLE);
  }

  get online() {
    return this.state === STATE.ONLINE;
  }

  // Send a frame if the socket is ready; false otherwise (the caller keeps it for later).
  send(type, fields = {}) {
    // A socket the server is closing still looks online until its close event.
    if (!this.online || !this.ws || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify({ type, ...fields }));
    return true;
  }

  reconnectNow() {
    if (this.stopped || this.state === STATE.CONNECTING || this.state === STATE.ONLINE) return;
    clearTimeout(this.retryTimer);
    this.attempt = 0;
    this.connect();
  }

  async connect() {
    this.clearTimers();
    this.setState(STATE.CONNECTING);
    let token;
    try {
      token = await this.token();
    } catch (error) {
      if (error && error.name === 'SessionEnded') {
        this.emit('unauthenticated', { fatal: true });
        return;
      }
      this.retry('network');
      return;
    }
    if (this.stopped) return;
    let ws;
    try {
      ws = new WebSocket(typeof this.url === 'function' ? this.url() : this.url);
    } catch (error) {
      this.retry('network');
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => ws.send(JSON.stringify(this.authFrame(token))));
    ws.addEventListener('message', (event) => this.receive(ws, event.data));
    ws.addEventListener('close', (event) => this.closed(ws, event.code, event.reason));
    this.readyTimer = setTimeout(() => {
      if (this.ws === ws && this.state !== STATE.ONLINE) ws.close();
    }, READY_TIMEOUT_MS);
  }

  receive(ws, data) {
    if (ws !== this.ws) return;
    let frame;
    try {
      frame = JSON.parse(data);
    } catch (error) {
      return;
    }
    if (!frame || typeof frame.type !== 'string') return;
    this.alive();
    if (frame.type === 'ready') {
      clearTimeout(this.readyTimer);
      this.attempt = 0;
      this.setState(STATE.ONLINE);
    }
    if (frame.type === 'pong') return;
    this.emit(frame.type, frame);
    this.emit('frame', frame);
  }

  // Any frame proves the connection lives: push the dead-connection check out.
  alive() {
    clearTimeout(this.deadTimer);
    clearTimeout(this.pingTimer);
    this.pingTimer = setTimeout(() => {
      if (!this.send('ping')) return;
      this.deadTimer = setTimeout(() => { if (this.ws) this.ws.close(); }, PONG_TIMEOUT_MS);
    }, PING_EVERY_MS);
  }

  closed(ws, code, reason) {
    if (ws !== this.ws) return;
    this.ws = null;
    this.clearTimers();
    this.lastClose = { code, reason };
    if (this.stopped) return;
    if (code === CLOSE.UNAUTHENTICATED) {
      this.unauthenticated();
      return;
    }
    if (code === CLOSE.FORBIDDEN_ORIGIN) {
      this.setState(STATE.FAILED, { reason: reason || 'origin' });
      return;
    }
    if (code === CLOSE.MOVED) {
      // The next upgrade lands on the new owner; "ready" then syncs what was missed.
      this.attempt = 0;
      this.retry('moved', Math.random() * MOVED_JITTER_MS);
      return;
    }
    // 1012 (restarting) and 1013 (a dependency such as the database is down) say
    // "come back later": the same backoff as a lost network, so a crowd spreads out.
    const why = { [CLOSE.RESTARTING]: 'restart', [CLOSE.TRY_AGAIN_LATER]: 'unavailable',
      [CLOSE.RATE_LIMITED]: 'rate' }[code] || 'network';
    this.retry(why);
  }

  // 4001: refresh the token, then reconnect; without a refresh hook the owner decides.
  unauthenticated() {
    if (!this.refresh) {
      this.setState(STATE.WAITING, { reason: 'auth' });
      this.emit('unauthenticated', { fatal: false });
      return;
    }
    this.setState(STATE.WAITING, { reason: 'auth' });
    this.refresh()
      .then(() => {
        if (this.stopped) return;
        const now = Date.now();
        if (now - this.lastAuthRefusal < AUTH_LOOP_WINDOW_MS) this.retry('auth');
        else this.reconnectNow();
        this.lastAuthRefusal = now;
      })
      .catch((error) => {
        if (error && error.name === 'SessionEnded') this.emit('unauthenticated', { fatal: true });
        else this.retry('network');
      });
  }

  retry(reason, delayMs) {
    if (this.stopped) return;
    const delay = delayMs ?? backoffDelay(this.attempt, reason);
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.retryAt = Date.now() + delay;
    this.setState(STATE.WAITING, { reason, retryAt: this.retryAt });
  }

  clearTimers() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.deadTimer);
    clearTimeout(this.readyTimer);
  }

  setState(state, extra = {}) {
    this.state = state;
    this.reason = extra.reason || '';   // why it is waiting: network, restart, unavailable, rate, auth
    this.emit('state', { state, ...extra });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

// ws(s)://host/path for a page served over http(s) from origin (this page by default),
// with the routing key the API gave (login's route/org_route, the widget's route) so
// that a cluster opens it on the instance that owns it (see docs/architecture.md).
export function socketUrl(path = '/ws', origin = window.location.origin, route = '') {
  const query = route ? `?route=${encodeURIComponent(route)}` : '';
  return `${origin.replace(/^http/, 'ws')}${path}${query}`;
}

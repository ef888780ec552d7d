// The one WebSocket: auth frame first, keep-alive, reconnect with jittered exponential backoff.
//
// Events (CustomEvent, detail = the frame): one per server frame type ("ready",
// "message", "ack", ...), plus "state" ({state, retryAt, reason}) whenever the
// connection changes, and "unauthenticated" when the server refused our token.

// Close codes the server uses (see DESIGN.md).
export const CLOSE = Object.freeze({
  NORMAL: 1000,
  RESTARTING: 1012,
  UNAUTHENTICATED: 4001,
  FORBIDDEN_ORIGIN: 4003,
  TOO_SLOW: 4008,
  RATE_LIMITED: 4029,
});

const BACKOFF_BASE_MS = 500;
const BACKOFF_CAP_MS = 30_000;
// A rate-limited client waits at least this long before coming back.
const RATE_LIMITED_MIN_MS = 10_000;
// A restarting server is usually back within a second or two; spread clients over this window.
const RESTART_SPREAD_MS = 1_500;
const PING_EVERY_MS = 25_000;
// No frame at all for this long after a ping means the connection is dead.
const PONG_TIMEOUT_MS = 10_000;
// The server closes unauthenticated sockets after 5 s; we must be faster than that.
const READY_TIMEOUT_MS = 8_000;

export const STATE = Object.freeze({
  IDLE: 'idle',
  CONNECTING: 'connecting',
  ONLINE: 'online',
  WAITING: 'waiting',   // disconnected, a retry is scheduled
  FAILED: 'failed',     // will not retry by itself (forbidden origin)
});

export class Socket extends EventTarget {
  constructor({ url, token }) {
    super();
    this.url = url;
    this.token = token;          // async () => access token
    this.ws = null;
    this.state = STATE.IDLE;
    this.attempt = 0;
    this.retryTimer = null;
    this.pingTimer = null;
    this.deadTimer = null;
    this.readyTimer = null;
    this.stopped = true;
    this.lastClose = null;
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
    if (this.ws) {
      const ws = this.ws;
      this.ws = null;
      ws.close(CLOSE.NORMAL, 'logged out');
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
      ws = new WebSocket(this.url);
    } catch (error) {
      this.retry('network');
      return;
    }
    this.ws = ws;
    ws.addEventListener('open', () => {
      ws.send(JSON.stringify({ type: 'auth', token }));
    });
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
    if (frame.type !== 'pong') this.emit(frame.type, frame);
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
      // Our token was refused: the app refreshes it and calls reconnectNow(),
      // or sends the user to the login page if the session is over.
      this.setState(STATE.WAITING, { reason: 'auth' });
      this.emit('unauthenticated', { fatal: false });
      return;
    }
    if (code === CLOSE.FORBIDDEN_ORIGIN) {
      this.setState(STATE.FAILED, { reason: 'origin' });
      return;
    }
    if (code === CLOSE.RESTARTING) {
      this.retry('restart', Math.random() * RESTART_SPREAD_MS);
      return;
    }
    this.retry(code === CLOSE.RATE_LIMITED ? 'rate' : 'network');
  }

  // Equal jitter: wait between half and all of an exponentially growing cap, so a
  // crowd of clients spreads out but none comes back at once.
  retry(reason, delayMs) {
    if (this.stopped) return;
    let delay = delayMs;
    if (delay === undefined) {
      const cap = Math.min(BACKOFF_CAP_MS, BACKOFF_BASE_MS * 2 ** this.attempt);
      delay = cap / 2 + Math.random() * (cap / 2);
      if (reason === 'rate') delay = Math.max(delay, RATE_LIMITED_MIN_MS);
    }
    this.attempt += 1;
    clearTimeout(this.retryTimer);
    this.retryTimer = setTimeout(() => this.connect(), delay);
    this.setState(STATE.WAITING, { reason, retryAt: Date.now() + delay });
  }

  clearTimers() {
    clearTimeout(this.pingTimer);
    clearTimeout(this.deadTimer);
    clearTimeout(this.readyTimer);
  }

  setState(state, extra = {}) {
    this.state = state;
    this.emit('state', { state, ...extra });
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

export function socketUrl(location = window.location) {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/ws`;
}

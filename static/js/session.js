// The signed-in session: tokens in localStorage, refreshed before the access token expires.
//
// Trade-off, on purpose: the refresh token lives in localStorage so a reload or
// a second tab stays signed in. Script injected into the page could read it;
// the defences are a strict CSP (no inline or third-party script), rendering
// every user string with textContent, and rotating refresh tokens whose reuse
// revokes the whole session on the server. The access token is kept beside it
// so tabs share one pair instead of racing each other's rotations.

import { NetworkDown, SessionEnded } from '../shared/http.js';

const STORAGE_KEY = 'whatsease.session';
const LOCK_NAME = 'whatsease.refresh';
// Refresh this long before expiry (or at 3/4 of a short lifetime), in milliseconds.
const REFRESH_MARGIN_MS = 60_000;
// After a failed refresh because the network is down, try again after this long.
const REFRESH_RETRY_MS = 5_000;

export class Session extends EventTarget {
  constructor(storage = window.localStorage) {
    super();
    this.storage = storage;
    this.data = null;
    this.timer = null;
    this.refreshing = null;
    window.addEventListener('storage', (event) => {
      if (event.key === STORAGE_KEY) this.adoptStored();
    });
  }

  get active() {
    return this.data !== null;
  }

  get user() {
    return this.data ? this.data.user : null;
  }

  // The messenger socket's routing key (?route=), from the last token pair.
  get route() {
    return (this.data && this.data.route) || '';
  }

  load() {
    this.data = readStored(this.storage);
    if (this.data) this.schedule();
    return this.active;
  }

  // Keep a token pair from register, login or refresh ({user, access_token, refresh_token, expires_in}).
  save(pair) {
    const lifetimeMs = Math.max(1, Number(pair.expires_in) || 60) * 1000;
    this.data = {
      user: pair.user || (this.data && this.data.user),
      access_token: pair.access_token,
      refresh_token: pair.refresh_token,
      route: pair.route || (this.data && this.data.route) || '',
      expires_at: Date.now() + lifetimeMs,
      lifetime_ms: lifetimeMs,
    };
    this.storage.setItem(STORAGE_KEY, JSON.stringify(this.data));
    this.schedule();
    this.emit('change');
  }

  setUser(user) {
    if (!this.data) return;
    this.data.user = user;
    this.storage.setItem(STORAGE_KEY, JSON.stringify(this.data));
    this.emit('change');
  }

  clear() {
    clearTimeout(this.timer);
    const had = this.data !== null;
    this.data = null;
    this.storage.removeItem(STORAGE_KEY);
    if (had) this.emit('end');
  }

  // An access token that is valid for a while yet; refreshes first if it is not.
  async accessToken() {
    if (!this.data) throw new SessionEnded();
    if (this.data.expires_at - Date.now() > this.margin()) return this.data.access_token;
    await this.refresh();
    return this.data.access_token;
  }

  margin() {
    return Math.min(REFRESH_MARGIN_MS, (this.data ? this.data.lifetime_ms : 0) / 4);
  }

  // Exchange the refresh token for a new pair. One refresh at a time, across tabs too:
  // inside the lock another tab may already have stored a fresh pair, which we adopt.
  refresh({ force = false } = {}) {
    if (!this.refreshing) {
      const run = () => this.refreshLocked(force);
      const locked = navigator.locks ? navigator.locks.request(LOCK_NAME, run) : run();
      this.refreshing = locked.finally(() => { this.refreshing = null; });
    }
    return this.refreshing;
  }

  async refreshLocked(force) {
    const stored = readStored(this.storage);
    if (!stored) {
      this.clear();
      throw new SessionEnded();
    }
    const usedToken = this.data && this.data.access_token;
    const fresh = stored.expires_at - Date.now() > this.margin();
    if (fresh && (!force || stored.access_token !== usedToken)) {
      this.data = stored;
      this.schedule();
      return;
    }
    let response;
    try {
      response = await fetch('/api/v1/auth/refresh', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
        body: JSON.stringify({ refresh_token: stored.refresh_token }),
        credentials: 'omit',
      });
    } catch (error) {
      this.schedule(REFRESH_RETRY_MS);
      throw new NetworkDown("Can't reach WhatsEase right now.");
    }
    if (response.status === 401 || response.status === 422) {
      this.clear();
      throw new SessionEnded();
    }
    if (!response.ok) {
      this.schedule(REFRESH_RETRY_MS);
      throw new NetworkDown("Can't reach WhatsEase right now.");
    }
    this.save(await response.json());
  }

  schedule(delayMs) {
    clearTimeout(this.timer);
    if (!this.data) return;
    const due = delayMs ?? Math.max(1_000, this.data.expires_at - Date.now() - this.margin());
    this.timer = setTimeout(() => {
      this.refresh().catch(() => {});
    }, due);
  }

  adoptStored() {
    const stored = readStored(this.storage);
    if (!stored) {
      if (this.data) this.clear();
      return;
    }
    const changedUser = this.data && this.data.user && stored.user &&
      this.data.user.email !== stored.user.email;
    this.data = stored;
    this.schedule();
    this.emit(changedUser ? 'switch' : 'change');
  }

  emit(type) {
    this.dispatchEvent(new CustomEvent(type));
  }
}

function readStored(storage) {
  try {
    const data = JSON.parse(storage.getItem(STORAGE_KEY) || 'null');
    if (data && typeof data.access_token === 'string' && typeof data.refresh_token === 'string') {
      return data;
    }
  } catch (error) {
    // A corrupt entry is treated as no session.
  }
  return null;
}

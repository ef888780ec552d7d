// The widget's connection: its REST calls, its live socket, and what it keeps in the
// host page's storage. No DOM here; the view (view.js) shows what this fetches.
//
// Classic-script module: widget.js is served as ONE file, this one concatenated
// after static/shared/http.js and static/shared/socket.js, whose names it uses.

import { HttpClient, SessionEnded } from '../shared/http.js';
import { ReconnectingSocket, STATE, socketUrl } from '../shared/socket.js';

const OFFLINE_TEXT = "We couldn't reach the chat service. Check your connection and try again.";

export class WidgetConnection extends EventTarget {
  // base: the chat server's origin; key: the org's public widget key.
  constructor({ base, key }) {
    super();
    this.base = base;
    this.storageKey = `whatsease-widget:${key}`;
    this.token = null;
    this.route = '';
    this.socket = null;
    // Set once the conversation has ended: the open socket may still bring a refusal,
    // but a dropped one is not reopened.
    this.ended = false;
    this.http = new HttpClient({
      base: `${base}/widget/v1/${encodeURIComponent(key)}`,
      token: async () => this.token,
      init: { mode: 'cors', cache: 'no-store' },
      offline: OFFLINE_TEXT,
    });
  }

  // ---------------------------------------------------------------- storage

  load() {
    try {
      return JSON.parse(localStorage.getItem(this.storageKey) || '{}') || {};
    } catch {
      return {};
    }
  }

  save(changes) {
    const next = { ...this.load(), ...changes };
    for (const [k, v] of Object.entries(next)) if (v === null) delete next[k];
    try {
      localStorage.setItem(this.storageKey, JSON.stringify(next));
    } catch {
      /* storage may be disabled: the widget still works for this page */
    }
  }

  // ---------------------------------------------------------------- REST

  async config() {
    return this.routed(await this.http.request('GET', '/config', undefined, { auth: false }));
  }

  // Keep the routing key an answer carries: the socket URL names it (?route=).
  routed(data) {
    if (data && typeof data.route === 'string') this.route = data.route;
    return data;
  }

  // The stored session, active or ended, with its latest messages.
  async resume(token) {
    this.token = token;
    return this.routed(await this.http.request('GET', '/session'));
  }

  // A new conversation: {session, token, messages, config}; keeps the token.
  async begin(values) {
    const data = this.routed(await this.http.request('POST', '/sessions', values, { auth: false }));
    this.token = data.token;
    this.save({ token: data.token, name: values.name, email: values.email });
    return data;
  }

  post(content, clientId) {
    return this.http.request('POST', '/session/messages', { content, client_id: clientId });
  }

  forget() {
    this.close();
    this.token = null;
    this.save({ token: null });
  }

  // ---------------------------------------------------------------- socket

  // Open the live socket; events: "frame" (every server frame), "refused" (token
  // no longer valid), "forbidden" (this site may not use the chat).
  open() {
    if (!this.token || this.socket) return;
    const socket = new ReconnectingSocket({
      url: () => socketUrl('/widget/ws', this.base, this.route),
      token: async () => {
        if (!this.token) throw new SessionEnded();
        return this.token;
      },
    });
    this.socket = socket;
    socket.addEventListener('frame', (event) => this.emit('frame', event.detail));
    socket.addEventListener('unauthenticated', () => this.emit('refused'));
    socket.addEventListener('state', (event) => {
      if (event.detail.state === STATE.FAILED) this.emit('forbidden');
      if (event.detail.state === STATE.WAITING && this.ended && this.socket === socket) this.close();
    });
    socket.start();
  }

  close() {
    const socket = this.socket;
    this.socket = null;
    if (socket) socket.stop();
  }

  get live() {
    return Boolean(this.socket && this.socket.online);
  }

  // A frame over the socket if it is up; false otherwise (the caller falls back to REST).
  send(type, fields = {}) {
    return Boolean(this.socket && this.socket.send(type, fields));
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

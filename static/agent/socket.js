// The console's live connection to /support/ws: auth frame first, reconnect with jittered backoff.

import { auth, refresh } from "./api.js";

const CLOSE_UNAUTHENTICATED = 4001;
const CLOSE_FORBIDDEN = 4003;
const RETRY_MIN_MS = 1000;
const RETRY_MAX_MS = 30000;

export class ConsoleSocket extends EventTarget {
  constructor() {
    super();
    this.ws = null;
    this.ready = false;
    this.retry = RETRY_MIN_MS;
    this.timer = null;
    this.stopped = false;
    this.refreshed = false;
  }

  connect() {
    this.stopped = false;
    const current = auth.get();
    if (!current) return;
    const url = `${location.protocol === "https:" ? "wss" : "ws"}://${location.host}/support/ws`;
    const ws = new WebSocket(url);
    this.ws = ws;
    this.ready = false;
    this.emit("status", { state: "connecting" });
    ws.addEventListener("open", () => ws.send(JSON.stringify({ type: "auth", token: current.access_token })));
    ws.addEventListener("message", (event) => {
      let frame;
      try {
        frame = JSON.parse(event.data);
      } catch {
        return;
      }
      if (frame.type === "ready") {
        this.ready = true;
        this.retry = RETRY_MIN_MS;
        this.refreshed = false;
        this.emit("status", { state: "online" });
      } else if (!this.ready) {
        return; // the ready frame's snapshot already includes anything earlier
      }
      this.emit("frame", frame);
    });
    ws.addEventListener("close", (event) => this.closed(ws, event));
  }

  async closed(ws, event) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.ready = false;
    if (this.stopped) return;
    if (event.code === CLOSE_FORBIDDEN) {
      this.emit("status", { state: "forbidden", reason: event.reason });
      return;
    }
    if (event.code === CLOSE_UNAUTHENTICATED && !this.refreshed) {
      this.refreshed = true;
      try {
        await refresh();
        this.connect();
        return;
      } catch {
        this.emit("status", { state: "logged-out" });
        return;
      }
    }
    this.emit("status", { state: "offline" });
    const delay = this.retry / 2 + Math.random() * this.retry / 2;
    this.retry = Math.min(this.retry * 2, RETRY_MAX_MS);
    this.timer = setTimeout(() => this.connect(), delay);
  }

  send(frame) {
    if (!this.ws || !this.ready || this.ws.readyState !== WebSocket.OPEN) return false;
    this.ws.send(JSON.stringify(frame));
    return true;
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    if (this.ws) this.ws.close(1000, "bye");
    this.ws = null;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }
}

/*
 * WhatsEase chat widget. Embed on any page of a site the organisation allows:
 *
 *   <script src="https://HOST/widget.js" data-org="WIDGET_KEY" async></script>
 *
 * It adds a chat bubble in a shadow root (the host page's styles cannot reach
 * it, and it does not touch theirs). Clicking the bubble, or Enter/Space on it,
 * toggles the chat window. The customer's session token lives in this site's
 * localStorage under "whatsease-widget:<key>", so a conversation continues
 * across reloads and pages until it has been quiet for the org's timeout.
 * All text from the network is rendered with textContent.
 */
(() => {
  "use strict";

  const script = document.currentScript ||
    document.querySelector('script[data-org][src*="widget.js"]');
  if (!script || !script.dataset.org) return;
  const KEY = script.dataset.org;
  const BASE = new URL(script.src, location.href).origin;
  const API = `${BASE}/widget/v1/${encodeURIComponent(KEY)}`;
  const WS_URL = `${BASE.replace(/^http/, "ws")}/widget/ws`;
  const STORAGE_KEY = `whatsease-widget:${KEY}`;
  const registry = (window.__whatseaseWidgets = window.__whatseaseWidgets || {});
  if (registry[KEY]) return; // the snippet was pasted twice
  registry[KEY] = true;

  const MAX_NAME = 80;
  const MAX_EMAIL = 254;
  const MAX_MESSAGE = 4096;
  const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$/;
  const TYPING_REPEAT_MS = 3000;
  const TYPING_IDLE_MS = 4000;
  const RECONNECT_MIN_MS = 1000;
  const RECONNECT_MAX_MS = 30000;
  const KEY_ESCAPE = "Escape";
  const KEY_ENTER = "Enter";
  const CLOSE_UNAUTHENTICATED = 4001;
  const CLOSE_FORBIDDEN = 4003;

  // ------------------------------------------------------------------ storage

  function load() {
    try {
      return JSON.parse(localStorage.getItem(STORAGE_KEY) || "{}") || {};
    } catch {
      return {};
    }
  }

  function save(changes) {
    const next = { ...load(), ...changes };
    for (const [k, v] of Object.entries(next)) if (v === null) delete next[k];
    try {
      localStorage.setItem(STORAGE_KEY, JSON.stringify(next));
    } catch {
      /* storage may be disabled: the widget still works for this page */
    }
  }

  // ------------------------------------------------------------------ network

  class ApiError extends Error {
    constructor(status, body) {
      super((body && body.detail) || `HTTP ${status}`);
      this.status = status;
      this.body = body || {};
    }
  }

  async function call(method, path, { body, token } = {}) {
    const headers = {};
    if (body !== undefined) headers["Content-Type"] = "application/json";
    if (token) headers.Authorization = `Bearer ${token}`;
    let res;
    try {
      res = await fetch(API + path, {
        method, headers, body: body === undefined ? undefined : JSON.stringify(body),
        mode: "cors", credentials: "omit", cache: "no-store",
      });
    } catch {
      throw new ApiError(0, { detail: "We couldn't reach the chat service. Check your connection and try again." });
    }
    const text = await res.text();
    let data = null;
    try {
      data = text ? JSON.parse(text) : null;
    } catch {
      data = null;
    }
    if (!res.ok) throw new ApiError(res.status, data);
    return data;
  }

  // ------------------------------------------------------------------ colours

  function luminance(hex) {
    const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
      .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
    return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
  }

  // Black or white, whichever contrasts more with the brand colour: at least 4.58:1.
  function textOn(hex) {
    const l = luminance(hex);
    return (l + 0.05) / 0.05 > 1.05 / (l + 0.05) ? "#111111" : "#ffffff";
  }

  // ------------------------------------------------------------------ view

  const STYLES = `
    :host { all: initial; }
    *, *::before, *::after { box-sizing: border-box; }
    .root { position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
      font: 15px/1.4 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #111; }
    .bubble { width: 60px; height: 60px; border-radius: 50%; border: 0; cursor: pointer;
      background: var(--brand); color: var(--on-brand); display: grid; place-items: center;
      box-shadow: 0 4px 14px rgba(0,0,0,.25); position: relative; margin-left: auto; }
    .bubble:focus-visible, button:focus-visible, input:focus-visible, textarea:focus-visible {
      outline: 3px solid #1a56db; outline-offset: 2px; }
    .bubble svg { width: 28px; height: 28px; fill: currentColor; }
    .badge { position: absolute; top: -4px; right: -4px; min-width: 22px; height: 22px;
      padding: 0 6px; border-radius: 11px; background: #b00020; color: #fff; font-size: 12px;
      font-weight: 700; display: grid; place-items: center; }
    .panel { position: absolute; right: 0; bottom: 76px; width: 370px;
      max-width: calc(100vw - 40px); height: 560px; max-height: calc(100vh - 120px);
      background: #fff; border-radius: 14px; box-shadow: 0 10px 40px rgba(0,0,0,.3);
      display: flex; flex-direction: column; overflow: hidden; }
    .panel[hidden], [hidden] { display: none !important; }
    .head { background: var(--brand); color: var(--on-brand); padding: 14px 16px;
      display: flex; align-items: center; gap: 12px; }
    .head h2 { margin: 0; font-size: 17px; font-weight: 700; }
    .head p { margin: 2px 0 0; font-size: 13px; }
    .head .titles { flex: 1; min-width: 0; }
    .close { border: 0; background: transparent; color: inherit; font-size: 26px;
      line-height: 1; width: 40px; height: 40px; border-radius: 8px; cursor: pointer; }
    .body { flex: 1; display: flex; flex-direction: column; min-height: 0; }
    form.start { padding: 18px 16px; overflow: auto; }
    .intro { margin: 0 0 14px; }
    .notice { margin: 0 0 14px; padding: 10px 12px; background: #fff4e5; border-radius: 8px;
      color: #5c3b00; }
    .field { margin-bottom: 14px; }
    label { display: block; font-weight: 600; margin-bottom: 4px; }
    input, textarea { font: inherit; color: #111; width: 100%; padding: 9px 11px;
      border: 1px solid #6b7280; border-radius: 8px; background: #fff; }
    input[aria-invalid="true"] { border-color: #b00020; }
    .error, .form-error, .send-error { color: #b00020; font-size: 13px; margin: 4px 0 0; }
    .error:empty, .form-error:empty, .send-error:empty { display: none; }
    .primary { font: inherit; font-weight: 600; border: 0; border-radius: 8px;
      padding: 10px 16px; background: var(--brand); color: var(--on-brand); cursor: pointer; }
    .primary[disabled] { opacity: .6; cursor: progress; }
    .chat { flex: 1; display: flex; flex-direction: column; min-height: 0; }
    .log { flex: 1; overflow-y: auto; background: #f6f7f9; }
    .items { list-style: none; margin: 0; padding: 12px; display: flex; flex-direction: column;
      gap: 8px; }
    .msg { max-width: 82%; padding: 8px 11px; border-radius: 12px; white-space: pre-wrap;
      overflow-wrap: anywhere; }
    .msg .who { display: block; font-size: 12px; font-weight: 700; color: #374151; }
    .msg .text { margin: 0; }
    .msg time { display: block; font-size: 11px; margin-top: 2px; opacity: .85; }
    .msg-in { align-self: flex-start; background: #fff; border: 1px solid #d1d5db; }
    .msg-out { align-self: flex-end; background: var(--brand); color: var(--on-brand); }
    .msg-out time { color: inherit; }
    .msg-note { align-self: center; max-width: 92%; background: transparent; color: #374151;
      font-size: 13px; text-align: center; padding: 2px 6px; }
    .msg.pending { opacity: .7; }
    .msg.failed { outline: 2px solid #b00020; }
    .typing { margin: 0; padding: 0 14px; min-height: 20px; font-size: 13px; color: #374151;
      background: #f6f7f9; }
    .ended { padding: 12px 16px; border-top: 1px solid #e5e7eb; text-align: center; }
    .ended p { margin: 0 0 10px; }
    .composer { display: flex; gap: 8px; padding: 10px; border-top: 1px solid #e5e7eb; }
    .composer textarea { resize: none; min-height: 42px; max-height: 120px; }
    .send { flex: none; width: 46px; border: 0; border-radius: 8px; cursor: pointer;
      background: var(--brand); color: var(--on-brand); display: grid; place-items: center; }
    .send svg { width: 20px; height: 20px; fill: currentColor; }
    .send-error { padding: 0 12px 8px; }
    .sr-only { position: absolute; width: 1px; height: 1px; padding: 0; margin: -1px;
      overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }
    @media (max-width: 480px) {
      .root { right: 12px; bottom: 12px; }
      .panel { position: fixed; right: 8px; left: 8px; bottom: 84px; width: auto; }
    }
  `;

  const CHAT_ICON = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H8l-4.5 3.6A.3.3 0 0 1 3 21.4V5a2 2 0 0 1 1-2z"/></svg>';
  const SEND_ICON = '<svg viewBox="0 0 24 24" aria-hidden="true" focusable="false"><path d="M3 20.5 21 12 3 3.5 3 10l12 2-12 2z"/></svg>';

  // Static markup only: every piece of text from the server goes in with textContent.
  const TEMPLATE = `
    <div class="root">
      <section class="panel" id="panel" role="dialog" aria-labelledby="title" hidden>
        <header class="head">
          <div class="titles"><h2 id="title">Chat</h2><p id="status"></p></div>
          <button type="button" class="close" aria-label="Close chat">×</button>
        </header>
        <div class="body">
          <form class="start" novalidate>
            <p class="intro"></p>
            <p class="notice" role="status" hidden></p>
            <div class="field">
              <label for="we-name">Your name</label>
              <input id="we-name" name="name" autocomplete="name" maxlength="${MAX_NAME}" required aria-describedby="we-name-error">
              <p id="we-name-error" class="error"></p>
            </div>
            <div class="field">
              <label for="we-email">Email</label>
              <input id="we-email" name="email" type="email" inputmode="email" autocomplete="email" maxlength="${MAX_EMAIL}" required aria-describedby="we-email-error">
              <p id="we-email-error" class="error"></p>
            </div>
            <p class="form-error" role="alert"></p>
            <button type="submit" class="primary">Start chat</button>
          </form>
          <div class="chat" hidden>
            <div class="log" role="log" aria-live="polite" aria-label="Conversation" tabindex="0"><ol class="items"></ol></div>
            <p class="typing" aria-live="polite"></p>
            <div class="ended" hidden>
              <p class="ended-text" role="status"></p>
              <button type="button" class="primary restart">Start a new conversation</button>
            </div>
            <form class="composer">
              <label for="we-input" class="sr-only">Message</label>
              <textarea id="we-input" rows="1" maxlength="${MAX_MESSAGE}" placeholder="Write a message…"></textarea>
              <button type="submit" class="send" aria-label="Send message">${SEND_ICON}</button>
            </form>
            <p class="send-error" role="alert"></p>
          </div>
        </div>
      </section>
      <button type="button" class="bubble" aria-expanded="false" aria-controls="panel" aria-label="Open chat">${CHAT_ICON}<span class="badge" aria-hidden="true" hidden></span></button>
    </div>`;

  class Widget {
    constructor() {
      this.host = document.createElement("div");
      this.host.setAttribute("data-whatsease-widget", KEY);
      this.shadow = this.host.attachShadow({ mode: "open" });
      // A constructed stylesheet is not inline CSS, so host pages whose CSP forbids
      // inline styles still show the widget; older browsers get a <style> element.
      if ("adoptedStyleSheets" in this.shadow && typeof CSSStyleSheet === "function") {
        const sheet = new CSSStyleSheet();
        sheet.replaceSync(STYLES);
        this.shadow.adoptedStyleSheets = [sheet];
      } else {
        const style = document.createElement("style");
        style.textContent = STYLES;
        this.shadow.append(style);
      }
      const holder = document.createElement("template");
      holder.innerHTML = TEMPLATE; // constant markup, no data
      this.shadow.append(holder.content.cloneNode(true));
      const $ = (sel) => this.shadow.querySelector(sel);
      this.el = {
        root: $(".root"), panel: $("#panel"), bubble: $(".bubble"), badge: $(".badge"),
        title: $("#title"), status: $("#status"), close: $(".close"),
        form: $("form.start"), intro: $(".intro"), notice: $(".notice"),
        name: $("#we-name"), email: $("#we-email"), nameError: $("#we-name-error"),
        emailError: $("#we-email-error"), formError: $(".form-error"),
        submit: $("form.start .primary"), chat: $(".chat"), scroller: $(".log"), log: $(".items"),
        typing: $(".typing"), ended: $(".ended"), endedText: $(".ended-text"),
        restart: $(".restart"), composer: $(".composer"), input: $("#we-input"),
        sendError: $(".send-error"),
      };
      this.config = { name: "Chat", greeting: "", brand_color: "#0b6e4f" };
      this.session = null;
      this.token = null;
      this.open = false;
      this.unread = 0;
      this.seen = new Set();
      this.socket = null;
      this.retry = RECONNECT_MIN_MS;
      this.reconnectTimer = null;
      this.typingSent = 0;
      this.typingTimer = null;
      this.typingHideTimer = null;
      this.counter = 0;
      this.bind();
      this.applyConfig(this.config);
    }

    mount() {
      document.body.append(this.host);
    }

    bind() {
      const { el } = this;
      el.bubble.addEventListener("click", () => this.toggle());
      el.close.addEventListener("click", () => this.toggle(false));
      el.root.addEventListener("keydown", (event) => {
        if (event.key === KEY_ESCAPE && this.open) {
          event.stopPropagation();
          this.toggle(false);
        }
      });
      el.form.addEventListener("submit", (event) => {
        event.preventDefault();
        this.start();
      });
      el.composer.addEventListener("submit", (event) => {
        event.preventDefault();
        this.send();
      });
      el.input.addEventListener("keydown", (event) => {
        if (event.key === KEY_ENTER && !event.shiftKey && !event.isComposing) {
          event.preventDefault();
          this.send();
        }
      });
      el.input.addEventListener("input", () => this.typed());
      el.restart.addEventListener("click", () => this.restart());
    }

    applyConfig(config) {
      this.config = { ...this.config, ...config };
      const brand = /^#[0-9a-f]{6}$/i.test(this.config.brand_color) ? this.config.brand_color : "#0b6e4f";
      this.el.root.style.setProperty("--brand", brand);
      this.el.root.style.setProperty("--on-brand", textOn(brand));
      this.el.title.textContent = this.config.name;
      this.el.intro.textContent = this.config.greeting || "Tell us who you are and we'll get chatting.";
      this.updateBubbleLabel();
    }

    updateBubbleLabel() {
      const { bubble, badge } = this.el;
      const action = this.open ? "Close chat" : "Open chat";
      const unread = this.unread ? ` (${this.unread} new message${this.unread === 1 ? "" : "s"})` : "";
      bubble.setAttribute("aria-label", `${action} with ${this.config.name}${unread}`);
      bubble.setAttribute("aria-expanded", String(this.open));
      badge.hidden = !this.unread;
      badge.textContent = this.unread > 9 ? "9+" : String(this.unread);
    }

    toggle(force) {
      this.open = typeof force === "boolean" ? force : !this.open;
      this.el.panel.hidden = !this.open;
      if (this.open) {
        this.unread = 0;
        this.focusFirst();
        this.scrollDown();
      } else {
        this.el.bubble.focus();
      }
      this.updateBubbleLabel();
    }

    focusFirst() {
      if (!this.el.chat.hidden && !this.el.composer.hidden) this.el.input.focus();
      else if (!this.el.chat.hidden && !this.el.ended.hidden) this.el.restart.focus();
      else if (!this.el.form.hidden) (this.el.name.value ? this.el.email : this.el.name).focus();
    }

    // -------------------------------------------------------------- start / resume

    async init() {
      this.mount();
      try {
        const { config } = await call("GET", "/config");
        this.applyConfig(config);
      } catch (error) {
        if (error.status === 403 || error.status === 404) {
          this.showForm("This chat isn't available on this website.");
          this.el.submit.disabled = true;
          return;
        }
      }
      const stored = load();
      this.el.name.value = stored.name || "";
      this.el.email.value = stored.email || "";
      if (!stored.token) {
        this.showForm();
        return;
      }
      try {
        const data = await call("GET", "/session", { token: stored.token });
        this.applyConfig(data.config);
        if (data.session.status !== "active") {
          save({ token: null });
          this.showForm("Your previous conversation has ended. Start a new one any time.");
          return;
        }
        this.token = stored.token;
        this.enterChat(data.session, data.messages);
      } catch (error) {
        if (error.status === 401) save({ token: null });
        this.showForm(error.status === 401 ? "" : error.message);
      }
    }

    showForm(notice = "") {
      const { el } = this;
      el.chat.hidden = true;
      el.form.hidden = false;
      el.notice.hidden = !notice;
      el.notice.textContent = notice;
      el.status.textContent = "We usually reply in a few minutes";
    }

    validate() {
      const { el } = this;
      const name = el.name.value.trim().replace(/\s+/g, " ");
      const email = el.email.value.trim();
      const problems = {
        name: !name ? "Please tell us your name." : name.length > MAX_NAME ? `At most ${MAX_NAME} characters, please.` : "",
        email: !email ? "Please enter your email address." : !EMAIL_RE.test(email) || email.length > MAX_EMAIL ? "Please enter a valid email address, like name@example.com." : "",
      };
      this.showFieldErrors(problems);
      return problems.name || problems.email ? null : { name, email };
    }

    showFieldErrors(problems) {
      const { el } = this;
      for (const [field, input, error] of [["name", el.name, el.nameError], ["email", el.email, el.emailError]]) {
        const message = problems[field] || "";
        error.textContent = message;
        if (message) input.setAttribute("aria-invalid", "true");
        else input.removeAttribute("aria-invalid");
      }
      const first = problems.name ? el.name : problems.email ? el.email : null;
      if (first) first.focus();
    }

    async start() {
      const { el } = this;
      el.formError.textContent = "";
      const values = this.validate();
      if (!values) return;
      el.submit.disabled = true;
      try {
        const data = await call("POST", "/sessions", { body: values });
        save({ token: data.token, name: values.name, email: values.email });
        this.token = data.token;
        this.applyConfig(data.config);
        this.enterChat(data.session, data.messages);
      } catch (error) {
        const fields = {};
        for (const problem of error.body.errors || []) fields[problem.field] = problem.message;
        if (fields.name || fields.email) {
          this.showFieldErrors({
            name: fields.name ? `Name ${fields.name}.` : "",
            email: fields.email ? `Email ${fields.email}.` : "",
          });
        } else {
          el.formError.textContent = error.status === 429
            ? "Too many new conversations from here; please try again in a few minutes."
            : error.message;
        }
      } finally {
        el.submit.disabled = false;
      }
    }

    enterChat(session, messages) {
      const { el } = this;
      this.session = session;
      el.form.hidden = true;
      el.chat.hidden = false;
      el.log.replaceChildren();
      this.seen.clear();
      for (const message of messages) this.render(message);
      this.applySession(session);
      this.connect();
      if (this.open) this.focusFirst();
      this.scrollDown();
    }

    applySession(session, detail) {
      this.session = session;
      const { el } = this;
      const ended = session.status !== "active";
      el.ended.hidden = !ended;
      el.composer.hidden = ended;
      el.status.textContent = ended ? "Conversation ended"
        : session.handler === "queued" ? "Waiting for an agent"
          : session.handler === "agent" ? "Chatting with our team" : "Chatting with our assistant";
      if (ended) {
        el.endedText.textContent = detail || this.endedText(session);
        el.typing.textContent = "";
        save({ token: null });
        // The socket stays open: a refusal for a message already on its way still arrives.
        // Focus is not moved: someone typing must not start a new conversation by pressing
        // Enter; the ended text is announced (role=status) and the button is next in order.
      }
    }

    endedText(session) {
      if (session.end_reason === "timeout") {
        const minutes = Math.round((this.config.session_timeout || 300) / 60);
        return `This conversation ended after ${minutes} minute${minutes === 1 ? "" : "s"} without messages.`;
      }
      if (session.end_reason === "customer") return "You ended this conversation.";
      return "This conversation was closed.";
    }

    restart() {
      this.disconnect();
      this.token = null;
      this.session = null;
      save({ token: null });
      this.el.log.replaceChildren();
      this.el.sendError.textContent = "";
      this.showForm();
      this.focusFirst();
    }

    // -------------------------------------------------------------- socket

    connect() {
      if (!this.token || this.socket) return;
      const socket = new WebSocket(WS_URL);
      this.socket = socket;
      this.ready = false;
      socket.addEventListener("open", () => {
        socket.send(JSON.stringify({ type: "auth", token: this.token }));
      });
      socket.addEventListener("message", (event) => {
        let frame;
        try {
          frame = JSON.parse(event.data);
        } catch {
          return;
        }
        this.receive(frame);
      });
      socket.addEventListener("close", (event) => {
        if (this.socket !== socket) return;
        this.socket = null;
        this.ready = false;
        if (event.code === CLOSE_UNAUTHENTICATED) {
          save({ token: null });
          this.restart();
          return;
        }
        if (event.code === CLOSE_FORBIDDEN) {
          this.el.sendError.textContent = "This website isn't allowed to use this chat.";
          return;
        }
        if (this.token && this.session && this.session.status === "active") this.scheduleReconnect();
      });
    }

    scheduleReconnect() {
      clearTimeout(this.reconnectTimer);
      const delay = this.retry / 2 + Math.random() * this.retry / 2; // jitter
      this.retry = Math.min(this.retry * 2, RECONNECT_MAX_MS);
      this.reconnectTimer = setTimeout(() => this.connect(), delay);
    }

    disconnect() {
      clearTimeout(this.reconnectTimer);
      const socket = this.socket;
      this.socket = null;
      if (socket) socket.close(1000, "done");
    }

    receive(frame) {
      if (frame.type === "ready") {
        this.ready = true;
        this.retry = RECONNECT_MIN_MS;
        this.applyConfig(frame.config);
        // Replace what we show with the server's view: nothing lost while away.
        const pending = [...this.el.log.querySelectorAll(".msg.pending")];
        this.el.log.replaceChildren();
        this.seen.clear();
        for (const message of frame.messages) this.render(message);
        for (const item of pending) this.el.log.append(item);
        this.applySession(frame.session);
        this.scrollDown();
        return;
      }
      if (!this.ready) return;
      if (frame.type === "message") {
        this.render(frame.message);
        if (frame.message.kind !== "customer") {
          this.el.typing.textContent = "";
          if (!this.open) {
            this.unread += 1;
            this.updateBubbleLabel();
          }
        }
        this.scrollDown();
      } else if (frame.type === "ack") {
        this.confirm(frame.client_id, frame.message);
      } else if (frame.type === "typing") {
        this.showTyping(frame);
      } else if (frame.type === "session") {
        this.applySession(frame.session, frame.detail);
      } else if (frame.type === "error") {
        this.refused(frame);
      }
    }

    showTyping(frame) {
      clearTimeout(this.typingHideTimer);
      this.el.typing.textContent = frame.state ? `${frame.name || "Someone"} is typing…` : "";
      if (frame.state) this.typingHideTimer = setTimeout(() => { this.el.typing.textContent = ""; }, 8000);
    }

    // -------------------------------------------------------------- messages

    render(message) {
      if (this.seen.has(message.message_id)) return;
      this.seen.add(message.message_id);
      if (message.client_id) {
        const pending = this.el.log.querySelector(`[data-client-id="${CSS.escape(message.client_id)}"]`);
        if (pending) pending.remove();
      }
      this.el.log.append(this.item(message));
    }

    item(message, pending = false) {
      const li = document.createElement("li");
      const mine = message.kind === "customer";
      const note = message.kind === "system" && !this.isGreeting(message);
      li.className = `msg ${mine ? "msg-out" : note ? "msg-note" : "msg-in"}${pending ? " pending" : ""}`;
      if (message.message_id) li.dataset.id = message.message_id;
      if (message.client_id) li.dataset.clientId = message.client_id;
      const who = document.createElement("span");
      who.className = mine ? "who sr-only" : note ? "who sr-only" : "who";
      who.textContent = mine ? "You" : message.sender_name || this.config.name;
      const text = document.createElement("p");
      text.className = "text";
      text.textContent = message.content;
      li.append(who, text);
      if (!note) {
        const time = document.createElement("time");
        const at = message.timestamp ? new Date(message.timestamp) : new Date();
        time.dateTime = at.toISOString();
        time.textContent = pending ? "Sending…" : at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
        li.append(time);
      }
      return li;
    }

    isGreeting(message) {
      return message.content === this.config.greeting;
    }

    confirm(clientId, message) {
      const pending = clientId && this.el.log.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`);
      if (pending) pending.remove();
      this.seen.delete(message.message_id);
      this.render(message);
      this.scrollDown();
    }

    refused(frame) {
      const pending = frame.client_id && this.el.log.querySelector(`[data-client-id="${CSS.escape(frame.client_id)}"]`);
      if (pending) {
        pending.classList.remove("pending");
        pending.classList.add("failed");
        const time = pending.querySelector("time");
        if (time) time.textContent = "Not sent";
      }
      if (frame.code === "session_ended") {
        this.applySession({ ...(this.session || {}), status: "ended" }, frame.detail);
        // Keep what they wrote so it can go into the next conversation.
        if (pending) this.el.input.value = pending.querySelector(".text").textContent;
      }
      this.el.sendError.textContent = frame.detail || "Your message was not sent.";
    }

    async send() {
      const { el } = this;
      const content = el.input.value.trim();
      if (!content || !this.token) return;
      if (content.length > MAX_MESSAGE) {
        el.sendError.textContent = `Messages can be at most ${MAX_MESSAGE} characters.`;
        return;
      }
      el.sendError.textContent = "";
      const clientId = `w${Date.now().toString(36)}${(this.counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
      el.log.append(this.item({ kind: "customer", content, client_id: clientId }, true));
      el.input.value = "";
      this.stopTyping();
      this.scrollDown();
      if (this.socket && this.ready && this.socket.readyState === WebSocket.OPEN) {
        this.socket.send(JSON.stringify({ type: "send", client_id: clientId, content }));
        return;
      }
      try {
        const data = await call("POST", "/session/messages", { token: this.token, body: { content, client_id: clientId } });
        this.confirm(clientId, data.message);
      } catch (error) {
        this.refused({ client_id: clientId, code: error.body.type && error.body.type.endsWith("/session_ended") ? "session_ended" : "failed", detail: error.message });
      }
    }

    typed() {
      const now = Date.now();
      if (this.socket && this.ready && now - this.typingSent > TYPING_REPEAT_MS) {
        this.typingSent = now;
        this.socket.send(JSON.stringify({ type: "typing", state: true }));
      }
      clearTimeout(this.typingTimer);
      this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
    }

    stopTyping() {
      clearTimeout(this.typingTimer);
      if (this.typingSent && this.socket && this.ready) {
        this.socket.send(JSON.stringify({ type: "typing", state: false }));
      }
      this.typingSent = 0;
    }

    scrollDown() {
      const { scroller } = this.el;
      scroller.scrollTop = scroller.scrollHeight;
    }
  }

  function boot() {
    new Widget().init();
  }

  if (document.body) boot();
  else document.addEventListener("DOMContentLoaded", boot, { once: true });
})();

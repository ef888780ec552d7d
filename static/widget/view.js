// The widget's view: the bubble and the chat window in a shadow root. The only widget
// code that touches the DOM; every piece of text from the network goes in with textContent.
//
// The controller (main.js) listens with bind(event, handler): "toggle", "start"
// ({name, email}), "send" (content), "typing", "restart".

const MAX_NAME = 80;
const MAX_EMAIL = 254;
// Messages may be this long once trimmed (the server's limit).
const MAX_MESSAGE = 4096;
// The counter appears when this few characters are left.
const COUNTER_FROM = 500;
const EMAIL_RE = /^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$/;
const KEY_ESCAPE = 'Escape';
const KEY_ENTER = 'Enter';
const DEFAULT_BRAND = '#0b6e4f';
const TYPING_SHOWN_MS = 8000;

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
            <textarea id="we-input" rows="1" placeholder="Write a message…" aria-describedby="we-counter we-send-error"></textarea>
            <button type="submit" class="send" aria-label="Send message">${SEND_ICON}</button>
          </form>
          <p id="we-counter" class="counter" aria-live="polite" hidden></p>
          <p id="we-send-error" class="send-error" role="alert"></p>
        </div>
      </div>
    </section>
    <button type="button" class="bubble" aria-expanded="false" aria-controls="panel" aria-label="Open chat">${CHAT_ICON}<span class="badge" aria-hidden="true" hidden></span></button>
  </div>`;

function luminance(hex) {
  const rgb = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255)
    .map((c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4));
  return 0.2126 * rgb[0] + 0.7152 * rgb[1] + 0.0722 * rgb[2];
}

// Black or white, whichever contrasts more with the brand colour: at least 4.58:1.
function textOn(hex) {
  const l = luminance(hex);
  return (l + 0.05) / 0.05 > 1.05 / (l + 0.05) ? '#111111' : '#ffffff';
}

// What the header says under the org's name for a session.
function sessionStatus(session) {
  if (session.status !== 'active') return 'Conversation ended';
  if (session.handler === 'queued') return 'Waiting for an agent';
  if (session.handler === 'agent') return `Chatting with ${session.agent_name || 'our team'}`;
  return 'Chatting with our assistant';
}

export class WidgetView {
  // key: the org's widget key (marks the host element); css: the widget's stylesheet text.
  constructor(key, css) {
    this.host = document.createElement('div');
    this.host.setAttribute('data-whatsease-widget', key);
    this.shadow = this.host.attachShadow({ mode: 'open' });
    // A constructed stylesheet is not inline CSS, so host pages whose CSP forbids
    // inline styles still show the widget; older browsers get a <style> element.
    if ('adoptedStyleSheets' in this.shadow && typeof CSSStyleSheet === 'function') {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      this.shadow.adoptedStyleSheets = [sheet];
    } else {
      const style = document.createElement('style');
      style.textContent = css;
      this.shadow.append(style);
    }
    const holder = document.createElement('template');
    holder.innerHTML = TEMPLATE; // constant markup, no data
    this.shadow.append(holder.content.cloneNode(true));
    const $ = (sel) => this.shadow.querySelector(sel);
    this.el = {
      root: $('.root'), panel: $('#panel'), bubble: $('.bubble'), badge: $('.badge'),
      title: $('#title'), status: $('#status'), close: $('.close'),
      form: $('form.start'), intro: $('.intro'), notice: $('.notice'),
      name: $('#we-name'), email: $('#we-email'), nameError: $('#we-name-error'),
      emailError: $('#we-email-error'), formError: $('.form-error'),
      submit: $('form.start .primary'), chat: $('.chat'), scroller: $('.log'), log: $('.items'),
      typing: $('.typing'), ended: $('.ended'), endedText: $('.ended-text'),
      restart: $('.restart'), composer: $('.composer'), input: $('#we-input'),
      counter: $('#we-counter'), sendError: $('.send-error'),
    };
    this.config = { name: 'Chat', greeting: '', brand_color: DEFAULT_BRAND };
    this.open = false;
    this.unread = 0;
    this.seen = new Set();
    this.typingHideTimer = null;
    this.handlers = {};
    this.listen();
    this.applyConfig(this.config);
  }

  mount() {
    document.body.append(this.host);
  }

  bind(event, handler) {
    this.handlers[event] = handler;
  }

  fire(event, ...args) {
    if (this.handlers[event]) this.handlers[event](...args);
  }

  listen() {
    const { el } = this;
    el.bubble.addEventListener('click', () => this.toggle());
    el.close.addEventListener('click', () => this.toggle(false));
    el.root.addEventListener('keydown', (event) => {
      if (event.key === KEY_ESCAPE && this.open) {
        event.stopPropagation();
        this.toggle(false);
      }
    });
    el.form.addEventListener('submit', (event) => {
      event.preventDefault();
      const values = this.validate();
      if (values) this.fire('start', values);
    });
    el.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.submitMessage();
    });
    el.input.addEventListener('keydown', (event) => {
      if (event.key === KEY_ENTER && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submitMessage();
      }
    });
    el.input.addEventListener('input', () => {
      this.updateCounter();
      this.fire('typing');
    });
    el.restart.addEventListener('click', () => this.fire('restart'));
  }

  // ---------------------------------------------------------------- frame

  applyConfig(config) {
    this.config = { ...this.config, ...config };
    const brand = /^#[0-9a-f]{6}$/i.test(this.config.brand_color) ? this.config.brand_color : DEFAULT_BRAND;
    this.el.root.style.setProperty('--brand', brand);
    this.el.root.style.setProperty('--on-brand', textOn(brand));
    this.el.title.textContent = this.config.name;
    this.el.intro.textContent = this.config.greeting || "Tell us who you are and we'll get chatting.";
    this.updateBubble();
  }

  updateBubble() {
    const { bubble, badge } = this.el;
    const action = this.open ? 'Close chat' : 'Open chat';
    const unread = this.unread ? ` (${this.unread} new message${this.unread === 1 ? '' : 's'})` : '';
    bubble.setAttribute('aria-label', `${action} with ${this.config.name}${unread}`);
    bubble.setAttribute('aria-expanded', String(this.open));
    badge.hidden = !this.unread;
    badge.textContent = this.unread > 9 ? '9+' : String(this.unread);
  }

  toggle(force) {
    this.open = typeof force === 'boolean' ? force : !this.open;
    this.el.panel.hidden = !this.open;
    this.el.root.classList.toggle('open', this.open);
    if (this.open) {
      this.unread = 0;
      this.focusFirst();
      this.scrollDown();
    } else {
      this.el.bubble.focus();
    }
    this.updateBubble();
  }

  focusFirst() {
    const { el } = this;
    if (!el.chat.hidden && !el.composer.hidden) el.input.focus();
    else if (!el.chat.hidden && !el.ended.hidden) el.restart.focus();
    else if (!el.form.hidden) (el.name.value ? el.email : el.name).focus();
  }

  // A message arrived from the other side: count it while the window is closed.
  noteIncoming() {
    this.el.typing.textContent = '';
    if (this.open) return;
    this.unread += 1;
    this.updateBubble();
  }

  // ---------------------------------------------------------------- the form

  showForm({ notice = '', name = '', email = '', disabled = false } = {}) {
    const { el } = this;
    el.chat.hidden = true;
    el.form.hidden = false;
    el.notice.hidden = !notice;
    el.notice.textContent = notice;
    if (name) el.name.value = name;
    if (email) el.email.value = email;
    el.submit.disabled = disabled;
    el.status.textContent = 'We usually reply in a few minutes';
  }

  validate() {
    const { el } = this;
    el.formError.textContent = '';
    const name = el.name.value.trim().replace(/\s+/g, ' ');
    const email = el.email.value.trim();
    const problems = {
      name: !name ? 'Please tell us your name.' : name.length > MAX_NAME ? `At most ${MAX_NAME} characters, please.` : '',
      email: !email ? 'Please enter your email address.' : !EMAIL_RE.test(email) || email.length > MAX_EMAIL ? 'Please enter a valid email address, like name@example.com.' : '',
    };
    this.showFieldErrors(problems);
    return problems.name || problems.email ? null : { name, email };
  }

  showFieldErrors(problems) {
    const { el } = this;
    for (const [field, input, error] of [['name', el.name, el.nameError], ['email', el.email, el.emailError]]) {
      const message = problems[field] || '';
      error.textContent = message;
      if (message) input.setAttribute('aria-invalid', 'true');
      else input.removeAttribute('aria-invalid');
    }
    const first = problems.name ? el.name : problems.email ? el.email : null;
    if (first) first.focus();
  }

  // The server refused the form: field problems under their fields, the rest above the button.
  showStartError(error) {
    const fields = error.fields || {};
    if (fields.name || fields.email) {
      this.showFieldErrors({
        name: fields.name ? `Name ${fields.name}.` : '',
        email: fields.email ? `Email ${fields.email}.` : '',
      });
      return;
    }
    this.el.formError.textContent = error.status === 429
      ? 'Too many new conversations from here; please try again in a few minutes.'
      : error.message;
  }

  busy(on) {
    this.el.submit.disabled = on;
  }

  // ---------------------------------------------------------------- the chat

  showChat(messages) {
    const { el } = this;
    el.form.hidden = true;
    el.chat.hidden = false;
    el.log.replaceChildren();
    this.seen.clear();
    for (const message of messages) this.render(message);
    if (this.open) this.focusFirst();
    this.scrollDown();
  }

  // Replace what is shown with the server's view after a (re)connection; keep what is on its way.
  replaceMessages(messages) {
    const pending = [...this.el.log.querySelectorAll('.msg.pending')];
    this.el.log.replaceChildren();
    this.seen.clear();
    for (const message of messages) this.render(message);
    for (const item of pending) this.el.log.append(item);
    this.scrollDown();
  }

  applySession(session, endedText) {
    const { el } = this;
    const ended = session.status !== 'active';
    el.ended.hidden = !ended;
    el.composer.hidden = ended;
    el.counter.hidden = ended || el.counter.hidden;
    el.status.textContent = sessionStatus(session);
    if (ended) {
      el.endedText.textContent = endedText;
      el.typing.textContent = '';
      // Focus is not moved: someone typing must not start a new conversation by pressing
      // Enter; the ended text is announced (role=status) and the button is next in order.
    }
  }

  clearChat() {
    this.el.log.replaceChildren();
    this.el.sendError.textContent = '';
  }

  showTyping(frame) {
    clearTimeout(this.typingHideTimer);
    this.el.typing.textContent = frame.state ? `${frame.name || 'Someone'} is typing…` : '';
    if (frame.state) this.typingHideTimer = setTimeout(() => { this.el.typing.textContent = ''; }, TYPING_SHOWN_MS);
  }

  render(message) {
    if (this.seen.has(message.message_id)) return;
    this.seen.add(message.message_id);
    if (message.client_id) {
      const pending = this.pendingItem(message.client_id);
      if (pending) pending.remove();
    }
    this.el.log.append(this.item(message));
  }

  item(message, pending = false) {
    const li = document.createElement('li');
    const mine = message.kind === 'customer';
    const note = message.kind === 'system' && message.content !== this.config.greeting;
    li.className = `msg ${mine ? 'msg-out' : note ? 'msg-note' : 'msg-in'}${pending ? ' pending' : ''}`;
    if (message.message_id) li.dataset.id = message.message_id;
    if (message.client_id) li.dataset.clientId = message.client_id;
    const who = document.createElement('span');
    who.className = mine || note ? 'who sr-only' : 'who';
    who.textContent = mine ? 'You' : message.sender_name || this.config.name;
    const text = document.createElement('p');
    text.className = 'text';
    text.textContent = message.content;
    li.append(who, text);
    if (!note) {
      const time = document.createElement('time');
      const at = message.timestamp ? new Date(message.timestamp) : new Date();
      time.dateTime = at.toISOString();
      time.textContent = pending ? 'Sending…' : at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
      li.append(time);
    }
    return li;
  }

  pendingItem(clientId) {
    return clientId ? this.el.log.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`) : null;
  }

  addPending(content, clientId) {
    this.el.log.append(this.item({ kind: 'customer', content, client_id: clientId }, true));
    this.el.input.value = '';
    this.updateCounter();
    this.scrollDown();
  }

  confirm(clientId, message) {
    const pending = this.pendingItem(clientId);
    if (pending) pending.remove();
    this.seen.delete(message.message_id);
    this.render(message);
    this.scrollDown();
  }

  // A message was refused: mark it, say why, and (when the session ended) keep its text.
  refused({ client_id: clientId, detail }, { keepText = false } = {}) {
    const pending = this.pendingItem(clientId);
    if (pending) {
      pending.classList.remove('pending');
      pending.classList.add('failed');
      const time = pending.querySelector('time');
      if (time) time.textContent = 'Not sent';
      if (keepText) this.el.input.value = pending.querySelector('.text').textContent;
    }
    this.el.sendError.textContent = detail || 'Your message was not sent.';
  }

  // ---------------------------------------------------------------- the composer

  // Refuse an empty or over-long message with a reason; otherwise hand it to the controller.
  submitMessage() {
    const { el } = this;
    const content = el.input.value.trim();
    let problem = '';
    if (!content) problem = 'Write a message first: an empty message cannot be sent.';
    else if (content.length > MAX_MESSAGE) {
      problem = `This message is ${content.length - MAX_MESSAGE} characters too long (at most ${MAX_MESSAGE}). Shorten it or send it in parts.`;
    }
    el.sendError.textContent = problem;
    if (problem) {
      el.input.setAttribute('aria-invalid', 'true');
      el.input.focus();
      return;
    }
    el.input.removeAttribute('aria-invalid');
    this.fire('send', content);
  }

  // Nothing is cut silently: near the limit a counter says how much room is left.
  updateCounter() {
    const { counter, input } = this.el;
    const left = MAX_MESSAGE - input.value.trim().length;
    counter.hidden = left > COUNTER_FROM;
    counter.classList.toggle('over', left < 0);
    counter.textContent = left < 0
      ? `${-left} characters too many (at most ${MAX_MESSAGE})`
      : `${left} characters left`;
    if (left >= 0 && input.getAttribute('aria-invalid')) {
      input.removeAttribute('aria-invalid');
      this.el.sendError.textContent = '';
    }
  }

  scrollDown() {
    const { scroller } = this.el;
    scroller.scrollTop = scroller.scrollHeight;
  }
}

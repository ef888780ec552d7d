// The widget's controller: boots from its <script> tag and wires the connection
// (connection.js) to the view (view.js).
//
// Embed on any page of a site the organisation allows:
//
//   <script src="https://HOST/widget.js" data-org="WIDGET_KEY" async></script>
//
// The customer's session token lives in this site's localStorage under
// "whatsease-widget:<key>", so a conversation continues across reloads and pages
// until it has been quiet for the org's timeout. WIDGET_CSS is defined by the
// server when it assembles widget.js (see whatsease/api/shell.py).

import { WidgetConnection } from './connection.js';
import { WidgetView } from './view.js';

const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 4000;

// The name of the agent who wrote last, for a header shown after a reload.
function lastAgentName(messages) {
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    if (messages[i].kind === 'agent' && messages[i].sender_name) return messages[i].sender_name;
  }
  return '';
}

class Widget {
  constructor(view, connection) {
    this.view = view;
    this.connection = connection;
    this.session = null;
    this.typingSent = 0;
    this.typingTimer = null;
    this.counter = 0;
    view.bind('start', (values) => this.start(values));
    view.bind('send', (content) => this.send(content));
    view.bind('typing', () => this.typed());
    view.bind('restart', () => this.restart());
    connection.addEventListener('frame', (event) => this.receive(event.detail));
    connection.addEventListener('refused', () => this.restart());
    connection.addEventListener('forbidden', () => {
      this.view.el.sendError.textContent = "This website isn't allowed to use this chat.";
    });
  }

  async init() {
    const { view, connection } = this;
    view.mount();
    try {
      const { config } = await connection.config();
      view.applyConfig(config);
    } catch (error) {
      if (error.status === 403 || error.status === 404) {
        view.showForm({ notice: "This chat isn't available on this website.", disabled: true });
        return;
      }
    }
    const stored = connection.load();
    const who = { name: stored.name || '', email: stored.email || '' };
    if (!stored.token) {
      view.showForm(who);
      return;
    }
    try {
      const data = await connection.resume(stored.token);
      view.applyConfig(data.config);
      if (data.session.status !== 'active') {
        connection.forget();
        view.showForm({ ...who, notice: 'Your previous conversation has ended. Start a new one any time.' });
        return;
      }
      this.enterChat(data.session, data.messages);
    } catch (error) {
      if (error.status === 401) connection.forget();
      view.showForm({ ...who, notice: error.status === 401 ? '' : error.message });
    }
  }

  async start(values) {
    this.view.busy(true);
    try {
      const data = await this.connection.begin(values);
      this.view.applyConfig(data.config);
      this.enterChat(data.session, data.messages);
    } catch (error) {
      this.view.showStartError(error);
    } finally {
      this.view.busy(false);
    }
  }

  enterChat(session, messages) {
    this.view.showChat(messages);
    this.applySession({ ...session, agent_name: session.agent_name || lastAgentName(messages) });
    this.connection.open();
  }

  applySession(session, detail) {
    // An agent's name stays known while the same agent answers.
    const agentName = session.agent_name ||
      (session.handler === 'agent' && this.session && this.session.agent_name) || '';
    this.session = { ...session, agent_name: agentName };
    const ended = session.status !== 'active';
    this.view.applySession(this.session, ended ? detail || this.endedText(session) : '');
    // The socket stays open: a refusal for a message already on its way still arrives.
    this.connection.ended = ended;
    if (ended) this.connection.save({ token: null });
  }

  endedText(session) {
    if (session.end_reason === 'timeout') {
      const minutes = Math.round((this.view.config.session_timeout || 300) / 60);
      return `This conversation ended after ${minutes} minute${minutes === 1 ? '' : 's'} without messages.`;
    }
    if (session.end_reason === 'customer') return 'You ended this conversation.';
    return 'This conversation was closed.';
  }

  restart() {
    this.connection.forget();
    this.session = null;
    this.view.clearChat();
    const stored = this.connection.load();
    this.view.showForm({ name: stored.name || '', email: stored.email || '' });
    this.view.focusFirst();
  }

  receive(frame) {
    const { view } = this;
    if (frame.type === 'ready') {
      view.applyConfig(frame.config);
      view.replaceMessages(frame.messages);
      const known = this.session && this.session.agent_name;
      this.applySession({ ...frame.session,
        agent_name: frame.session.agent_name || known || lastAgentName(frame.messages) });
    } else if (frame.type === 'message') {
      const message = frame.message;
      view.render(message);
      if (message.kind === 'agent' && message.sender_name && this.session &&
          this.session.agent_name !== message.sender_name) {
        this.applySession({ ...this.session, handler: 'agent', agent_name: message.sender_name });
      }
      if (message.kind !== 'customer') view.noteIncoming();
      view.scrollDown();
    } else if (frame.type === 'ack') {
      view.confirm(frame.client_id, frame.message);
    } else if (frame.type === 'typing') {
      view.showTyping(frame);
    } else if (frame.type === 'session') {
      this.applySession(frame.session, frame.detail);
    } else if (frame.type === 'error') {
      this.refused(frame);
    }
  }

  refused(frame) {
    const ended = frame.code === 'session_ended';
    if (ended) this.applySession({ ...(this.session || {}), status: 'ended' }, frame.detail);
    // Keep what they wrote so it can go into the next conversation.
    this.view.refused(frame, { keepText: ended });
  }

  async send(content) {
    if (!this.connection.token) return;
    const clientId = `w${Date.now().toString(36)}${(this.counter++).toString(36)}${Math.random().toString(36).slice(2, 6)}`;
    this.view.addPending(content, clientId);
    this.stopTyping();
    if (this.connection.send('send', { client_id: clientId, content })) return;
    try {
      const data = await this.connection.post(content, clientId);
      this.view.confirm(clientId, data.message);
    } catch (error) {
      this.refused({ client_id: clientId, code: error.code === 'session_ended' ? 'session_ended' : 'failed', detail: error.message });
    }
  }

  typed() {
    const now = Date.now();
    if (now - this.typingSent > TYPING_REPEAT_MS && this.connection.send('typing', { state: true })) {
      this.typingSent = now;
    }
    clearTimeout(this.typingTimer);
    this.typingTimer = setTimeout(() => this.stopTyping(), TYPING_IDLE_MS);
  }

  stopTyping() {
    clearTimeout(this.typingTimer);
    if (this.typingSent) this.connection.send('typing', { state: false });
    this.typingSent = 0;
  }
}

function boot(script) {
  const key = script.dataset.org;
  const registry = (window.__whatseaseWidgets = window.__whatseaseWidgets || {});
  if (registry[key]) return; // the snippet was pasted twice
  registry[key] = true;
  const base = new URL(script.src, location.href).origin;
  const widget = new Widget(new WidgetView(key, WIDGET_CSS), new WidgetConnection({ base, key }));
  widget.init();
}

const script = document.currentScript ||
  document.querySelector('script[data-org][src*="widget.js"]');
if (script && script.dataset.org) {
  if (document.body) boot(script);
  else document.addEventListener('DOMContentLoaded', () => boot(script), { once: true });
}

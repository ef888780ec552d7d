// Real-time messaging over the socket: sync, optimistic sends with retries, receipts, typing.
//
// Delivery rules: every send carries a client_id and stays in the outbox until
// the server acknowledges it (an ack, or the stored message coming back through
// sync or an echo). Until then it is re-sent, with the same client_id, after
// every reconnect and whenever an ack is overdue; the server stores a client_id
// once, so retries can never duplicate a message.
import { STATE } from '../shared/socket.js';

// Resend a message whose ack has not come back after this long, in milliseconds.
const ACK_TIMEOUT_MS = 8_000;
const RETRY_CHECK_MS = 2_000;
// Receipts are gathered for this long and sent as one frame.
const RECEIPT_DELAY_MS = 150;
const MAX_RECEIPT_IDS = 500;
// While typing, "typing: true" is repeated at most this often; silence for
// TYPING_IDLE_MS sends "typing: false".
const TYPING_REPEAT_MS = 3_000;
const TYPING_IDLE_MS = 4_000;
// Error codes after which a send is worth trying again later.
const RETRYABLE = new Set(['rate_limited', 'unavailable', 'internal', 'overloaded']);

export class Messenger extends EventTarget {
  constructor({ store, socket }) {
    super();
    this.store = store;
    this.socket = socket;
    this.delivered = new Set();
    this.read = new Set();
    this.acked = new Set();        // receipts already sent (never send twice)
    this.receiptTimer = null;
    this.typingSent = new Map();   // peer → last "true" time
    this.typingIdle = new Map();   // peer → timer
    this.syncing = false;
    this.everReady = false;
    this.waitingForChats = null;   // a listener waiting for the first chat list
    this.retryTimer = null;
    const on = (type, fn) => socket.addEventListener(type, (e) => fn.call(this, e.detail));
    on('ready', this.onReady);
    on('message', (f) => this.receive([f.message]));
    on('ack', this.onAck);
    on('status', (f) => this.store.applyStatus(f.message_id, f.status, f.conversation_id));
    on('typing', (f) => this.store.setTyping(f.sender, Boolean(f.state)));
    on('presence', (f) => this.store.setProfile(f.user, { online: Boolean(f.online), last_seen: f.last_seen }));
    // A rename: chat lists and headers show the new name at once; mine goes to the app.
    on('profile', (f) => {
      if (this.store.me && f.user === this.store.me.email) this.emit('me', { name: f.name });
      else this.store.setProfile(f.user, { name: f.name });
    });
    on('synced', this.onSynced);
    on('activity', (f) => this.emit('activity', f.entry));
    on('error', this.onError);
    on('state', (s) => { if (s.state !== STATE.ONLINE) this.syncing = false; });
  }

  start() {
    // Receipts wait a moment to be batched; a page that is going away sends them now.
    if (!this.flushOnHide) {
      this.flushOnHide = () => {
        clearTimeout(this.receiptTimer);
        this.receiptTimer = null;
        this.flushReceipts();
      };
      window.addEventListener('pagehide', this.flushOnHide);
    }
    clearInterval(this.retryTimer);
    this.retryTimer = setInterval(() => this.resendOverdue(), RETRY_CHECK_MS);
  }

  stop() {
    clearInterval(this.retryTimer);
    clearTimeout(this.receiptTimer);
    this.delivered.clear();
    this.read.clear();
    this.acked.clear();
    this.everReady = false;
    this.syncing = false;
    this.cancelWait();
  }

  get online() {
    return this.socket.online;
  }

  emit(type, detail) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  // ---- incoming

  onReady() {
    const again = this.everReady;
    this.everReady = true;
    this.syncing = true;
    this.emit('ready', { reconnected: again });
    this.startSync();
  }

  // Sync from the cursor. Before the chat list has loaded there is no cursor
  // yet, and syncing from the beginning of time would replay every message ever.
  startSync() {
    if (!this.store.chatsLoaded) {
      if (this.waitingForChats) return;
      this.waitingForChats = () => {
        if (!this.store.chatsLoaded) return;
        this.cancelWait();
        if (this.online) this.startSync();
      };
      this.store.addEventListener('chats', this.waitingForChats);
      return;
    }
    this.socket.send('sync', this.store.cursor ? { after: this.store.cursor } : {});
  }

  cancelWait() {
    if (!this.waitingForChats) return;
    this.store.removeEventListener('chats', this.waitingForChats);
    this.waitingForChats = null;
  }

  onSynced({ messages = [], more, cursor }) {
    this.receive(messages);
    if (cursor) this.store.cursor = cursor;
    if (more) {
      this.socket.send('sync', { after: this.store.cursor });
      return;
    }
    this.syncing = false;
    this.flushOutbox();
    this.scheduleReceipts();
    this.emit('synced');
  }

  // Messages from a message frame or a sync page: store them, acknowledge delivery.
  receive(messages) {
    const me = this.store.me && this.store.me.email;
    if (!me) return;
    this.store.upsertMany(messages);
    for (const m of messages) {
      if (m.recipient === me && m.status === 'Sent' && !m.deleted) this.delivered.add(m.message_id);
      // Only synced pages move the cursor: a live message's id may sort above
      // one that another instance is still storing (or whose frame was lost),
      // and a cursor past that one would never bring it.
    }
    this.scheduleReceipts();
  }

  onAck({ client_id: clientId, message }) {
    if (message) this.store.upsert(message, { live: false });
    else if (clientId) this.store.discardPending(clientId);
  }

  onError({ code, detail, ref }) {
    const pending = ref ? this.store.findPending(ref) : null;
    if (pending) {
      if (RETRYABLE.has(code)) {
        pending.lastTry = Date.now();   // the overdue check tries again later
        return;
      }
      this.store.setPendingFailure(ref, detail || code);
      return;
    }
    this.emit('problem', { code, detail });
  }

  // ---- outgoing messages

  send(peer, content) {
    const message = this.store.addPending(peer, content);
    this.transmit(message);
    return message;
  }

  transmit(message) {
    if (message.failed) return;
    if (this.socket.send('send', { client_id: message.client_id, recipient: message.recipient, content: message.content })) {
      message.lastTry = Date.now();
    }
  }

  retry(clientId) {
    const message = this.store.findPending(clientId);
    if (!message) return;
    message.failed = null;
    this.store.emit('conv', { peer: message.recipient });
    this.transmit(message);
  }

  flushOutbox() {
    for (const message of this.store.pendingAll()) this.transmit(message);
  }

  resendOverdue() {
    if (!this.online || this.syncing) return;
    const now = Date.now();
    for (const message of this.store.pendingAll()) {
      if (now - message.lastTry > ACK_TIMEOUT_MS) this.transmit(message);
    }
  }

  // ---- receipts

  markDelivered(ids) {
    for (const id of ids) this.delivered.add(id);
    this.scheduleReceipts();
  }

  // The server sends no status frame back to the socket that reported the
  // read, so this tab moves its own copy forward at once.
  markRead(ids) {
    for (const id of ids) {
      if (!this.acked.has(`r:${id}`)) this.read.add(id);
      this.store.applyStatus(id, 'Read');
    }
    this.scheduleReceipts();
  }

  scheduleReceipts() {
    if (this.receiptTimer || (!this.delivered.size && !this.read.size)) return;
    this.receiptTimer = setTimeout(() => {
      this.receiptTimer = null;
      this.flushReceipts();
    }, RECEIPT_DELAY_MS);
  }

  flushReceipts() {
    if (!this.online) return;   // kept until the next ready
    for (const [type, set] of [['delivered', this.delivered], ['read', this.read]]) {
      const ids = [...set].filter((id) => !this.acked.has(`${type[0]}:${id}`) &&
        !(type === 'delivered' && this.acked.has(`r:${id}`)));
      for (let i = 0; i < ids.length; i += MAX_RECEIPT_IDS) {
        const chunk = ids.slice(i, i + MAX_RECEIPT_IDS);
        if (!this.socket.send(type, { message_ids: chunk })) return;
        for (const id of chunk) this.acked.add(`${type[0]}:${id}`);
      }
      set.clear();
    }
  }

  // ---- typing

  typing(peer, state) {
    clearTimeout(this.typingIdle.get(peer));
    if (!state) {
      if (this.typingSent.has(peer)) {
        this.typingSent.delete(peer);
        this.socket.send('typing', { recipient: peer, state: false });
      }
      return;
    }
    const last = this.typingSent.get(peer) || 0;
    if (Date.now() - last > TYPING_REPEAT_MS && this.socket.send('typing', { recipient: peer, state: true })) {
      this.typingSent.set(peer, Date.now());
    }
    this.typingIdle.set(peer, setTimeout(() => this.typing(peer, false), TYPING_IDLE_MS));
  }
}

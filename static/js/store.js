// The client's state: me, the chat list, each conversation's messages, the outbox, presence, typing.
//
// Plain data and rules, no DOM and no network. Changes are announced as
// CustomEvents: "chats" (the list), "conv" ({peer}), "presence" ({email}),
// "typing" ({peer}).

export const BOT = 'bot:whatsease';
export const BOT_NAME = 'WhatsEase Assistant';
export const MAX_CONTENT_CHARS = 4096;

const STATUS_RANK = Object.freeze({ Pending: -1, Sent: 0, Delivered: 1, Read: 2 });
// Unsent messages kept across reloads, per account; older ones beyond this are dropped.
const MAX_OUTBOX = 200;
// A typing indicator whose "stopped" frame got lost disappears after this long.
const TYPING_TTL_MS = 6_000;

// A random id for a new message (crypto.randomUUID needs HTTPS; this works on plain HTTP too).
export function newClientId() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return `c-${[...bytes].map((b) => b.toString(16).padStart(2, '0')).join('')}`;
}

export function isBot(address) {
  return typeof address === 'string' && address.startsWith('bot:');
}

export function rank(status) {
  return STATUS_RANK[status] ?? -1;
}

function byTime(a, b) {
  if (a.timestamp !== b.timestamp) return a.timestamp < b.timestamp ? -1 : 1;
  if (a.message_id === b.message_id) return 0;
  return a.message_id < b.message_id ? -1 : 1;
}

function newerThan(message, summary) {
  if (!summary || !summary.message_id) return true;
  if (message.timestamp !== summary.timestamp) return message.timestamp > summary.timestamp;
  return message.message_id >= summary.message_id;
}

function summarise(message) {
  return {
    message_id: message.message_id || null,
    sender: message.sender,
    content: (message.content || '').slice(0, 200),
    timestamp: message.timestamp,
    status: message.status,
    deleted: Boolean(message.deleted),
    is_bot_response: Boolean(message.is_bot_response),
    pending: Boolean(message.pending),
  };
}

export class Store extends EventTarget {
  constructor(storage = window.localStorage) {
    super();
    this.storage = storage;
    this.reset(null);
  }

  reset(me) {
    this.me = me;
    this.chats = new Map();
    this.chatsLoaded = false;
    this.convs = new Map();
    this.index = new Map();      // message_id → peer
    this.profiles = new Map();   // email → {name, online, last_seen}
    this.typing = new Map();     // peer → expiry (epoch ms)
    this.drafts = new Map();     // peer → unsent text in the composer
    this.cursor = null;
    if (me) this.restoreOutbox();
  }

  emit(type, detail = {}) {
    this.dispatchEvent(new CustomEvent(type, { detail }));
  }

  peerOf(message) {
    return message.sender === this.me.email ? message.recipient : message.sender;
  }

  // ---- chat list

  setChats(rows) {
    const previous = this.chats;
    // Sync starts after the newest message the first list shows; later lists
    // never move the cursor (sync pages own it from then on).
    const firstLoad = this.cursor === null;
    this.chats = new Map();
    for (const row of rows) {
      const old = previous.get(row.peer);
      // A message still in the outbox is newer than anything the server has.
      if (old && old.last_message && old.last_message.pending) {
        row.last_message = old.last_message;
        row.updated_at = old.updated_at;
      }
      this.chats.set(row.peer, row);
      this.profiles.set(row.peer, { ...(this.profiles.get(row.peer) || {}),
        name: row.name, online: row.online, last_seen: row.last_seen });
      if (firstLoad && row.last_message && row.last_message.message_id &&
          (!this.cursor || row.last_message.message_id > this.cursor)) {
        this.cursor = row.last_message.message_id;
      }
    }
    for (const [peer, old] of previous) {
      if (!this.chats.has(peer) && old.last_message && old.last_message.pending) this.chats.set(peer, old);
    }
    this.chatsLoaded = true;
    this.emit('chats');
  }

  chat(peer) {
    let row = this.chats.get(peer);
    if (!row) {
      const profile = this.profiles.get(peer) || {};
      row = {
        peer, name: profile.name || (peer === BOT ? BOT_NAME : peer), is_bot: isBot(peer),
        online: Boolean(profile.online), last_seen: profile.last_seen || null,
        last_message: null, unread_count: 0, updated_at: null,
      };
    }
    return row;
  }

  // Chats newest first (only those with at least one message).
  chatList() {
    return [...this.chats.values()]
      .filter((row) => row.last_message)
      .sort((a, b) => ((a.updated_at || '') < (b.updated_at || '') ? 1 : -1));
  }

  // ---- profiles and presence

  setProfile(email, profile) {
    const merged = { ...(this.profiles.get(email) || {}), ...profile };
    this.profiles.set(email, merged);
    const row = this.chats.get(email);
    if (row) {
      if (profile.name) row.name = profile.name;
      if ('online' in profile) row.online = profile.online;
      if ('last_seen' in profile && profile.last_seen) row.last_seen = profile.last_seen;
    }
    this.emit('presence', { email });
  }

  profile(email) {
    return this.profiles.get(email) || {};
  }

  // ---- typing

  setTyping(peer, state) {
    if (state) this.typing.set(peer, Date.now() + TYPING_TTL_MS);
    else this.typing.delete(peer);
    this.emit('typing', { peer });
  }

  isTyping(peer) {
    const until = this.typing.get(peer);
    if (until === undefined) return false;
    if (until > Date.now()) return true;
    this.typing.delete(peer);
    return false;
  }

  // ---- conversations

  conv(peer) {
    let conv = this.convs.get(peer);
    if (!conv) {
      conv = {
        peer,
        messages: new Map(),   // message_id → message
        pending: new Map(),    // client_id → unsent message (also in the outbox)
        loaded: false,         // the newest page has been fetched
        loading: false,
        nextBefore: null,      // cursor for the next older page, null when there is none
        error: null,
        firstUnread: undefined,
      };
      this.convs.set(peer, conv);
    }
    return conv;
  }

  // Every message of a conversation in display order, unsent ones last.
  messagesOf(peer) {
    const conv = this.conv(peer);
    const confirmed = [...conv.messages.values()].sort(byTime);
    const pending = [...conv.pending.values()].sort((a, b) => (a.timestamp < b.timestamp ? -1 : 1));
    return confirmed.concat(pending);
  }

  // A page of history (newest first, as the API returns it).
  addHistory(peer, page, { initial }) {
    const conv = this.conv(peer);
    for (const message of page.messages) this.upsert(message, { live: false, quiet: true });
    conv.nextBefore = page.next_before || null;
    if (initial) {
      conv.loaded = true;
      // The "new messages" divider goes above the oldest incoming message not yet read.
      const unread = page.messages.filter((m) => m.recipient === this.me.email &&
        m.status !== 'Read' && !m.deleted);
      conv.firstUnread = unread.length ? unread[unread.length - 1].message_id : null;
    }
    this.emit('conv', { peer, older: !initial });
    this.emit('chats');
  }

  // Add or update a message from the server. live: it just arrived (may be unread news).
  upsert(incoming, { live = true, quiet = false } = {}) {
    let message = incoming;
    const peer = this.peerOf(message);
    const conv = this.conv(peer);
    const prev = conv.messages.get(message.message_id);
    if (prev && rank(prev.status) > rank(message.status)) {
      message = { ...message, status: prev.status };   // statuses never move back
    }
    conv.messages.set(message.message_id, message);
    this.index.set(message.message_id, peer);
    if (message.client_id && message.sender === this.me.email && conv.pending.delete(message.client_id)) {
      this.saveOutbox();
    }
    const row = this.chat(peer);
    const mine = message.sender === this.me.email;
    if (!mine && !prev && live && newerThan(message, row.last_message) &&
        message.status !== 'Read' && !message.deleted) {
      row.unread_count = (row.unread_count || 0) + 1;
    } else if (!mine && prev && prev.status !== 'Read' && !prev.deleted &&
               (message.status === 'Read' || message.deleted)) {
      row.unread_count = Math.max(0, (row.unread_count || 0) - 1);
    }
    if (newerThan(message, row.last_message) ||
        (row.last_message && row.last_message.message_id === message.message_id)) {
      row.last_message = summarise(message);
      row.updated_at = message.timestamp > (row.updated_at || '') ? message.timestamp : row.updated_at;
    }
    if (!mine && message.sender === peer) this.typing.delete(peer);
    this.chats.set(peer, row);
    if (!quiet) {
      this.emit('conv', { peer });
      this.emit('chats');
    }
    return { prev, peer };
  }

  // Several messages at once (a sync page): one announcement per conversation.
  upsertMany(messages) {
    const peers = new Set();
    for (const message of messages) peers.add(this.upsert(message, { live: true, quiet: true }).peer);
    for (const peer of peers) this.emit('conv', { peer });
    if (peers.size) this.emit('chats');
  }

  // A status frame: {message_id, status, conversation_id}.
  applyStatus(messageId, status, conversationId) {
    const peer = this.index.get(messageId) || this.peerFromConversation(conversationId);
    if (!peer) return;
    const conv = this.conv(peer);
    const message = conv.messages.get(messageId);
    if (message) {
      if (rank(status) > rank(message.status)) this.upsert({ ...message, status }, { live: false });
      return;
    }
    const row = this.chats.get(peer);
    if (!row) return;
    if (row.last_message && row.last_message.message_id === messageId &&
        rank(status) > rank(row.last_message.status)) {
      row.last_message = { ...row.last_message, status };
    }
    // A message of theirs we never loaded was read in another tab.
    if (status === 'Read' && row.last_message && row.last_message.sender !== this.me.email) {
      row.unread_count = Math.max(0, (row.unread_count || 0) - 1);
    }
    this.emit('chats');
  }

  peerFromConversation(conversationId) {
    if (!conversationId || !this.me) return null;
    const members = conversationId.split(' ');
    if (members.length !== 2 || !members.includes(this.me.email)) return null;
    return members[0] === this.me.email ? members[1] : members[0];
  }

  markRead(peer) {
    const row = this.chats.get(peer);
    if (row && row.unread_count) {
      row.unread_count = 0;
      this.emit('chats');
    }
  }

  // ---- the outbox: optimistic messages until the server acknowledges them

  addPending(peer, content) {
    const message = {
      client_id: newClientId(),
      message_id: null,
      sender: this.me.email,
      recipient: peer,
      content,
      timestamp: new Date().toISOString(),
      status: 'Pending',
      pending: true,
      failed: null,
      lastTry: 0,
    };
    this.conv(peer).pending.set(message.client_id, message);
    const row = this.chat(peer);
    row.last_message = summarise(message);
    row.updated_at = message.timestamp;
    this.chats.set(peer, row);
    this.saveOutbox();
    this.emit('conv', { peer, mine: true });
    this.emit('chats');
    return message;
  }

  pendingAll() {
    const all = [];
    for (const conv of this.convs.values()) all.push(...conv.pending.values());
    return all.sort((a, b) => (a.timestamp < b.timestamp ? -1 : 1));
  }

  findPending(clientId) {
    for (const conv of this.convs.values()) {
      const message = conv.pending.get(clientId);
      if (message) return message;
    }
    return null;
  }

  setPendingFailure(clientId, reason) {
    const message = this.findPending(clientId);
    if (!message) return;
    message.failed = reason;
    this.emit('conv', { peer: message.recipient });
  }

  discardPending(clientId) {
    const message = this.findPending(clientId);
    if (!message) return;
    this.conv(message.recipient).pending.delete(clientId);
    this.saveOutbox();
    this.emit('conv', { peer: message.recipient });
    this.emit('chats');
  }

  outboxKey() {
    return `whatsease.outbox.${this.me.email}`;
  }

  saveOutbox() {
    if (!this.me) return;
    const items = this.pendingAll().slice(-MAX_OUTBOX).map((m) => ({
      client_id: m.client_id, recipient: m.recipient, content: m.content, timestamp: m.timestamp,
    }));
    try {
      if (items.length) this.storage.setItem(this.outboxKey(), JSON.stringify(items));
      else this.storage.removeItem(this.outboxKey());
    } catch (error) {
      // Storage full or denied: the outbox still lives in memory for this page.
    }
  }

  restoreOutbox() {
    let items = [];
    try {
      items = JSON.parse(this.storage.getItem(this.outboxKey()) || '[]');
    } catch (error) {
      items = [];
    }
    if (!Array.isArray(items)) return;
    for (const item of items.slice(-MAX_OUTBOX)) {
      if (!item || typeof item.client_id !== 'string' || typeof item.content !== 'string') continue;
      const message = {
        client_id: item.client_id, message_id: null, sender: this.me.email,
        recipient: item.recipient, content: item.content, timestamp: item.timestamp,
        status: 'Pending', pending: true, failed: null, lastTry: 0,
      };
      this.conv(item.recipient).pending.set(message.client_id, message);
      const row = this.chat(item.recipient);
      row.last_message = summarise(message);
      row.updated_at = message.timestamp;
      this.chats.set(item.recipient, row);
    }
  }

  clearOutbox() {
    if (this.me) this.storage.removeItem(this.outboxKey());
  }
}

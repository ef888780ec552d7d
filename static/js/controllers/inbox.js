// The chat list: loads chats, applies search and filters, finds people to start a chat with.
import { BOT, BOT_NAME } from '../store.js';

// Words that find the assistant in search even before you have chatted with it.
const BOT_WORDS = ['assistant', 'whatsease', 'bot', 'help'];
// Unread messages fetched per chat to acknowledge them (the API's largest page), and
// how many pages at most: a longer backlog is acknowledged when the chat is opened.
const ACK_PAGE = 100;
const ACK_MAX_PAGES = 5;

export class InboxController {
  // receipts: the Messenger, which reports what this client has received.
  constructor({ store, api, view, layout, receipts }) {
    this.store = store;
    this.api = api;
    this.receipts = receipts;
    this.view = view;
    this.layout = layout;
    this.query = '';
    this.filter = 'all';
    this.active = null;
    this.error = '';
    this.searchSeq = 0;
    this.frame = 0;
    this.lookedUp = new Set();   // peers whose profile has been asked for
    view.bind('search', (q, { immediate }) => this.onSearch(q, immediate));
    view.bind('filter', (f) => this.setFilter(f));
    view.bind('pick', () => this.clearSearch());
    for (const type of ['chats', 'typing', 'presence']) store.addEventListener(type, () => this.schedule());
  }

  async load({ quiet = false } = {}) {
    if (!quiet) this.view.renderLoading();
    try {
      const body = await this.api.chats();
      this.error = '';
      this.store.setChats(body.chats);
      this.acknowledge(body.chats);
    } catch (error) {
      if (error.name === 'SessionEnded') return;
      this.error = "Couldn't load your chats. They'll appear once the connection is back.";
      if (!quiet) this.render();
    }
  }

  // Everything the chat list shows has been received and is reported Delivered:
  // each chat's newest message, and the unread ones before it, which sync will
  // never replay (its cursor starts after the list's newest message).
  async acknowledge(rows) {
    const me = this.store.me && this.store.me.email;
    if (!me || !this.receipts) return;
    const waiting = rows.filter((row) => row.last_message && row.last_message.sender === row.peer &&
      row.last_message.status === 'Sent' && !row.last_message.pending);
    this.receipts.markDelivered(waiting.map((row) => row.last_message.message_id));
    await Promise.all(waiting.filter((row) => row.unread_count > 1)
      .map((row) => this.acknowledgeUnread(row.peer, row.unread_count, me).catch(() => {})));
  }

  async acknowledgeUnread(peer, count, me) {
    let before = null;
    let left = count;
    for (let page = 0; page < ACK_MAX_PAGES && left > 0; page += 1) {
      const body = await this.api.history(peer, { before, limit: Math.min(left, ACK_PAGE) });
      const messages = body.messages || [];
      this.receipts.markDelivered(messages
        .filter((m) => m.recipient === me && m.status === 'Sent' && !m.deleted)
        .map((m) => m.message_id));
      left -= messages.length;
      before = body.next_before;
      if (!before) return;
    }
  }

  reset() {
    this.lookedUp.clear();
    this.query = '';
    this.filter = 'all';
    this.active = null;
    this.view.clearSearch();
    this.view.renderFilter('all');
    this.view.renderPeople('hidden');
  }

  clearSearch() {
    this.query = '';
    this.searchSeq += 1;
    this.view.clearSearch();
    this.view.renderPeople('hidden');
    this.schedule();
  }

  setActive(peer) {
    this.active = peer;
    this.render();
  }

  setFilter(filter) {
    this.filter = filter;
    this.view.renderFilter(filter);
    this.render();
  }

  onSearch(query, immediate) {
    if (immediate) {
      this.query = query;
      this.render();
      if (!query) this.view.renderPeople('hidden');
      return;
    }
    this.searchPeople(query);
  }

  async searchPeople(query) {
    const seq = ++this.searchSeq;
    if (!query) return;
    this.view.renderPeople('loading');
    let users;
    try {
      users = (await this.api.searchUsers(query)).users;
    } catch (error) {
      if (seq === this.searchSeq) this.view.renderPeople('error');
      return;
    }
    if (seq !== this.searchSeq) return;   // a newer search has started
    const me = this.store.me.email;
    const shown = new Set(this.rows().map((row) => row.peer));
    const people = users.filter((u) => u.email !== me && !shown.has(u.email));
    const q = query.toLowerCase();
    if (!shown.has(BOT) && BOT_WORDS.some((w) => w.startsWith(q) || q.startsWith(w))) {
      people.unshift({ email: BOT, name: BOT_NAME, role: 'bot' });
    }
    this.view.renderPeople('done', people, query);
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  rows() {
    const q = this.query.toLowerCase();
    return this.store.chatList().filter((row) => {
      if (q && !row.name.toLowerCase().includes(q) && !row.peer.toLowerCase().includes(q)) return false;
      if (row.peer === this.active) return true;   // the open chat stays in view
      if (this.filter === 'unread') return row.unread_count > 0;
      if (this.filter === 'bots') return row.is_bot;
      return true;
    });
  }

  // A chat that started live (not from the chat list) knows only the address: fetch the name.
  lookUpStrangers() {
    for (const row of this.store.chats.values()) {
      if (row.is_bot || row.name !== row.peer || this.lookedUp.has(row.peer)) continue;
      this.lookedUp.add(row.peer);
      this.api.user(row.peer).then(({ user }) => {
        this.store.setProfile(row.peer, { name: user.name, online: Boolean(user.online), last_seen: user.last_seen });
      }).catch(() => {});
    }
  }

  render() {
    if (!this.store.me) return;
    if (!this.store.chatsLoaded && !this.error) return;
    this.lookUpStrangers();
    const rows = this.rows().map((row) => ({ ...row, typing: this.store.isTyping(row.peer) }));
    this.view.render(rows, { me: this.store.me.email, active: this.active, empty: rows.length ? null : this.emptyState() });
    const unread = this.store.chatList().reduce((n, row) => n + (row.unread_count ? 1 : 0), 0);
    if (this.layout.titleBase) document.title = unread ? `(${unread}) ${this.layout.titleBase}` : this.layout.titleBase;
  }

  emptyState() {
    if (this.error) return { title: 'Chats unavailable', text: this.error };
    if (this.query) {
      return { title: `No chats match “${this.query}”`, text: 'People you can start a chat with are listed below.' };
    }
    if (this.filter === 'unread') return { title: 'No unread chats', text: "You're all caught up." };
    if (this.filter === 'bots') {
      return { title: 'No bot chats yet', text: 'Open the assistant with the robot button at the top to ask it anything.' };
    }
    return {
      title: 'No chats yet',
      text: 'Search for someone by name or email to start one, or say hi to the assistant with the robot button.',
    };
  }
}

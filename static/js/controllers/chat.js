// One open conversation: loads history, sends, edits, deletes, and sends read receipts.
import { lastSeen } from '../format.js';
import { isBot } from '../store.js';
import { ChatView } from '../view/chat.js';

const PAGE_SIZE = 50;
// The header's "last seen" is refreshed this often, in milliseconds.
const HEADER_TICK_MS = 30_000;

export class ChatController {
  constructor({ peer, store, api, messenger, layout, dialog, offlineReason }) {
    this.peer = peer;
    this.store = store;
    this.api = api;
    this.messenger = messenger;
    this.layout = layout;
    this.dialog = dialog;
    this.offlineReason = offlineReason;   // () => '' when sending is possible
    this.missing = '';                    // why this chat cannot exist ('' if it can)
    this.pendingRender = null;
    this.frame = 0;
    const row = store.chat(peer);
    const root = layout.mount('tpl-chat');
    this.view = new ChatView(root, { peer, name: row.name, isBot: isBot(peer), me: store.me.email });
    this.view.bind('send', (text) => this.messenger.send(peer, text));
    this.view.bind('typing', (state) => this.messenger.typing(peer, state));
    this.view.bind('loadOlder', () => this.loadOlder());
    this.view.bind('visible', () => this.markVisibleRead());
    this.view.bind('edit', (id) => this.startEdit(id));
    this.view.bind('saveEdit', (id, text) => this.saveEdit(id, text));
    this.view.bind('delete', (id) => this.remove(id));
    this.view.bind('retry', (clientId) => this.messenger.retry(clientId));
    this.view.bind('discard', (clientId) => this.store.discardPending(clientId));
    this.listeners = [
      [store, 'conv', (e) => { if (e.detail.peer === peer) this.schedule(e.detail.older ? 'older' : 'update', e.detail.mine); }],
      [store, 'typing', (e) => { if (e.detail.peer === peer) this.renderHeader(); }],
      [store, 'presence', (e) => { if (e.detail.email === peer) this.renderHeader(); }],
      [window, 'focus', () => this.markVisibleRead()],
      [document, 'visibilitychange', () => this.markVisibleRead()],
    ];
    for (const [target, type, fn] of this.listeners) target.addEventListener(type, fn);
    this.headerTimer = setInterval(() => this.renderHeader(), HEADER_TICK_MS);
    this.renderHeader();
    this.updateBlocked();
    if (store.drafts.has(peer)) this.view.setDraft(store.drafts.get(peer));
    const conv = store.conv(peer);
    if (conv.loaded) {
      this.render('initial');
      this.deliverLoaded();
    } else {
      this.view.renderMessages([], { state: 'loading' });
      this.loadInitial();
    }
    this.loadProfile();
  }

  destroy() {
    const draft = this.view.draft();
    if (draft.trim()) this.store.drafts.set(this.peer, draft);
    else this.store.drafts.delete(this.peer);
    cancelAnimationFrame(this.frame);
    clearInterval(this.headerTimer);
    for (const [target, type, fn] of this.listeners) target.removeEventListener(type, fn);
    this.view.destroy();
  }

  // Keyboard and mouse users land in the composer; on touch screens that would
  // pop the keyboard over the conversation they came to read.
  focus() {
    if (window.matchMedia('(pointer: coarse)').matches) this.layout.focusMain();
    else this.view.focusComposer();
  }

  // Escape inside the page: true if it was used (closing a menu or an edit).
  isEditing() {
    return this.view.isEditing();
  }

  // ---- loading

  async loadInitial() {
    const conv = this.store.conv(this.peer);
    conv.loading = true;
    try {
      const page = await this.api.history(this.peer, { limit: PAGE_SIZE });
      conv.loading = false;
      conv.error = null;
      this.store.addHistory(this.peer, page, { initial: true });
      this.render('initial');
      this.deliverLoaded();
      this.fillViewport();
    } catch (error) {
      conv.loading = false;
      if (error.name === 'SessionEnded') return;
      conv.error = error.status === 404 ? null : "Couldn't load messages. They'll load when the connection is back.";
      if (error.status === 404 || error.status === 422) this.setMissing();
      this.render('initial');
    }
  }

  async loadOlder() {
    const conv = this.store.conv(this.peer);
    if (conv.loading || !conv.loaded || !conv.nextBefore) return;
    conv.loading = true;
    this.render('update');
    try {
      const page = await this.api.history(this.peer, { before: conv.nextBefore, limit: PAGE_SIZE });
      conv.loading = false;
      conv.error = null;
      this.store.addHistory(this.peer, page, { initial: false });
      this.deliverLoaded();
      this.fillViewport();
    } catch (error) {
      conv.loading = false;
      conv.error = "Couldn't load older messages. Scroll up again to retry.";
      this.render('update');
    }
  }

  // Short histories may not fill the screen, so no scroll event would ever ask for more.
  fillViewport() {
    requestAnimationFrame(() => {
      if (this.view.needsMore() && this.store.conv(this.peer).nextBefore) this.loadOlder();
    });
  }

  async loadProfile() {
    if (isBot(this.peer)) {
      try {
        const { user } = await this.api.user(this.peer);
        this.store.setProfile(this.peer, { name: user.name });
      } catch (error) {
        if (error.status === 404) this.setMissing();
      }
      return;
    }
    try {
      const { user } = await this.api.user(this.peer);
      this.store.setProfile(this.peer, { name: user.name, online: Boolean(user.online), last_seen: user.last_seen });
    } catch (error) {
      if (error.status === 404 || error.status === 422) this.setMissing();
    }
  }

  setMissing() {
    const conv = this.store.conv(this.peer);
    if (conv.messages.size) return;   // a deleted account's old chat still reads fine
    this.missing = isBot(this.peer)
      ? "The assistant isn't available on this server right now."
      : `Nobody with the address ${this.peer} uses WhatsEase.`;
    this.updateBlocked();
    this.render('update');
  }

  // Incoming messages that only reached us through history still count as delivered.
  deliverLoaded() {
    const me = this.store.me.email;
    const ids = this.store.messagesOf(this.peer)
      .filter((m) => m.recipient === me && m.status === 'Sent' && !m.deleted).map((m) => m.message_id);
    if (ids.length) this.messenger.markDelivered(ids);
  }

  // ---- rendering

  schedule(mode, mine) {
    const rank = { update: 0, older: 1, initial: 2 };
    if (!this.pendingRender || rank[mode] > rank[this.pendingRender.mode]) {
      this.pendingRender = { mode, mine: Boolean(mine) || Boolean(this.pendingRender && this.pendingRender.mine) };
    } else if (mine) {
      this.pendingRender.mine = true;
    }
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      const { mode: m, mine: mn } = this.pendingRender;
      this.pendingRender = null;
      this.render(m, mn);
    });
  }

  render(mode, mine = false) {
    const conv = this.store.conv(this.peer);
    const messages = this.store.messagesOf(this.peer);
    this.view.renderMessages(messages, {
      state: conv.loaded || conv.error || this.missing ? 'ready' : 'loading',
      firstUnread: conv.firstUnread,
      hasMore: Boolean(conv.nextBefore),
      loadingOlder: conv.loading && conv.loaded,
      errorText: this.missing || conv.error || '',
      mode, mine,
    });
    this.markVisibleRead();
  }

  renderHeader() {
    const profile = this.store.profile(this.peer);
    const row = this.store.chat(this.peer);
    let subtitle = '';
    if (isBot(this.peer)) subtitle = 'Assistant · replies in seconds';
    else if (profile.online) subtitle = 'online';
    else subtitle = lastSeen(profile.last_seen || row.last_seen);
    this.view.renderHeader({ name: profile.name || row.name, subtitle, typing: this.store.isTyping(this.peer) });
  }

  updateBlocked() {
    this.view.setBlocked(this.missing || this.offlineReason());
  }

  // ---- receipts: read only what is on screen while this window has focus

  markVisibleRead() {
    if (document.visibilityState !== 'visible' || !document.hasFocus()) return;
    const conv = this.store.conv(this.peer);
    const ids = this.view.visibleUnread().filter((id) => {
      const m = conv.messages.get(id);
      return m && m.status !== 'Read' && m.sender === this.peer;
    });
    if (ids.length) {
      this.messenger.markRead(ids);
      this.view.forgetVisible(ids);
    }
    // Everything here has been seen: an open, focused chat has no unread badge
    // (messages deleted before they were read would otherwise keep it lit).
    const left = [...conv.messages.values()].some((m) => m.sender === this.peer && m.status !== 'Read' && !m.deleted);
    if (conv.loaded && !left) this.store.markRead(this.peer);
  }

  // ---- edit and delete

  startEdit(id) {
    const message = this.store.conv(this.peer).messages.get(id);
    if (message && !message.deleted) this.view.startEdit(message);
  }

  async saveEdit(id, text) {
    const message = this.store.conv(this.peer).messages.get(id);
    if (!message || message.content === text) {
      this.view.finishEdit();
      return;
    }
    try {
      const body = await this.api.editMessage(id, text);
      this.store.upsert(body.message, { live: false });
      this.view.finishEdit();
    } catch (error) {
      this.view.showComposerError(`Couldn't save the edit: ${error.message}`);
    }
  }

  async remove(id) {
    const message = this.store.conv(this.peer).messages.get(id);
    if (!message) return;
    const ok = await this.dialog.ask({
      title: 'Delete this message?',
      text: 'Everyone in this chat will see "This message was deleted" instead. This cannot be undone.',
      confirm: 'Delete for everyone',
    });
    if (!ok) return;
    try {
      await this.api.deleteMessage(id);
      this.store.upsert({ ...message, deleted: true, content: '' }, { live: false });
    } catch (error) {
      this.layout.showToast(`Couldn't delete the message: ${error.message}`);
    }
  }
}

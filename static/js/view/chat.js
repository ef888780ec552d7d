// One open conversation: header, the message log, and the composer.
import { atBottom, fillAvatar, h, icon } from '../dom.js';
import { charCount, clock, dayKey, dayLabel, fullTime, plural } from '../format.js';
import { KEY } from '../keys.js';
import { MAX_CONTENT_CHARS } from '../store.js';
import { ticks } from './chatlist.js';

// Start fetching older messages when the reader is this close to the top, in pixels.
const LOAD_OLDER_WITHIN_PX = 300;
const COMPOSER_MAX_HEIGHT_PX = 160;
// The counter appears once a message gets this long (characters).
const COUNTER_FROM_CHARS = 3000;
// How much of a message must be on screen to count as seen.
const SEEN_THRESHOLD = 0.6;

const BOT_SUGGESTIONS = ['help', 'What do the ticks mean?', 'How do I search my chats?', 'Tell me a joke'];

export class ChatView {
  constructor(root, { peer, name, isBot, me }) {
    this.root = root;
    this.peer = peer;
    this.me = me;
    this.isBot = isBot;
    this.name = name;
    this.title = root.querySelector('.chat-title');
    this.sub = root.querySelector('.chat-sub');
    this.avatar = root.querySelector('.chat-avatar');
    this.log = root.querySelector('.messages');
    this.list = root.querySelector('.msg-list');
    this.older = root.querySelector('.older');
    this.emptyBox = root.querySelector('.chat-empty');
    this.jump = root.querySelector('.jump-btn');
    this.form = root.querySelector('.composer');
    this.input = root.querySelector('.composer-input');
    this.label = root.querySelector('.composer-label');
    this.send = root.querySelector('.send-btn');
    this.reason = root.querySelector('.composer-reason');
    this.counter = root.querySelector('.composer-count');
    this.editBar = root.querySelector('.editing');
    this.nodes = new Map();       // key → {el, sig}
    this.handlers = {};
    this.editing = null;          // message id being edited
    this.blocked = '';            // why the composer is disabled ('' = it is not)
    this.refused = '';            // why the last send was refused
    this.visible = new Set();     // incoming unread ids currently on screen
    this.menu = null;
    this.newBelow = 0;
    this.log.setAttribute('aria-label', `Messages with ${name}`);
    this.observer = new IntersectionObserver((entries) => this.onIntersect(entries), {
      root: this.log, threshold: [0, SEEN_THRESHOLD, 1],
    });
    this.wire();
    this.renderHeader({ name, subtitle: '' });
  }

  bind(event, handler) {
    this.handlers[event] = handler;
  }

  fire(event, ...args) {
    const handler = this.handlers[event];
    if (handler) handler(...args);
  }

  wire() {
    this.log.addEventListener('scroll', () => {
      if (this.log.scrollTop < LOAD_OLDER_WITHIN_PX) this.fire('loadOlder');
      if (atBottom(this.log)) this.setJump(false);
    }, { passive: true });
    this.jump.addEventListener('click', () => {
      this.scrollToBottom();
      this.input.focus();
    });
    // One delegated listener for every message's buttons.
    this.list.addEventListener('click', (e) => this.onListClick(e));
    this.list.addEventListener('keydown', (e) => this.onMenuKey(e));
    this.emptyBox.addEventListener('click', (e) => {
      const chip = e.target.closest('[data-suggestion]');
      if (chip && !this.blocked) this.fire('send', chip.dataset.suggestion);
    });
    this.form.addEventListener('submit', (e) => {
      e.preventDefault();
      this.submit();
    });
    this.input.addEventListener('keydown', (e) => {
      if (e.key === KEY.ENTER && !e.shiftKey && !e.isComposing) {
        e.preventDefault();
        this.submit();
      } else if (e.key === KEY.ESCAPE && this.editing) {
        e.preventDefault();
        this.cancelEdit();
      }
    });
    this.input.addEventListener('input', () => {
      this.refused = '';
      this.autosize();
      this.renderComposerState();
      if (this.input.value.trim() && !this.editing) this.fire('typing', true);
    });
    this.input.addEventListener('blur', () => this.fire('typing', false));
    this.editBar.querySelector('.edit-cancel').addEventListener('click', () => this.cancelEdit());
    document.addEventListener('click', this.closeMenuOutside = (e) => {
      if (this.menu && !this.menu.contains(e.target) && !e.target.closest('.msg-menu-btn')) this.closeMenu(false);
    });
  }

  destroy() {
    this.observer.disconnect();
    document.removeEventListener('click', this.closeMenuOutside);
    this.fire('typing', false);
  }

  // ---- header

  renderHeader({ name, subtitle, typing }) {
    this.name = name;
    this.title.textContent = name;
    document.title = `${name} · WhatsEase`;
    fillAvatar(this.avatar, name, this.peer, this.isBot);
    this.sub.textContent = typing ? 'typing…' : subtitle;
    this.sub.classList.toggle('is-typing', Boolean(typing));
    this.log.setAttribute('aria-label', `Messages with ${name}`);
  }

  // ---- messages

  // state: 'loading' | 'ready' | 'error'; messages in display order.
  renderMessages(messages, { state = 'ready', firstUnread = null, hasMore = false, loadingOlder = false,
    mode = 'update', mine = false, errorText = '' } = {}) {
    const wasAtBottom = atBottom(this.log);
    const anchor = mode === 'older' ? this.topVisible() : null;
    if (state === 'loading') {
      this.list.replaceChildren(...skeletonBubbles());
      this.nodes.clear();
      this.older.textContent = '';
      this.log.setAttribute('aria-busy', 'true');
      this.emptyBox.hidden = true;
      return;
    }
    this.log.setAttribute('aria-busy', String(mode === 'older'));
    const items = this.layout(messages, firstUnread);
    let cursor = this.list.firstChild;
    while (cursor && !cursor.dataset.key) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    const keep = new Set();
    let added = 0;
    for (const item of items) {
      keep.add(item.key);
      let node = this.nodes.get(item.key);
      if (!node) {
        node = { el: null, sig: '' };
        this.nodes.set(item.key, node);
        added += 1;
      }
      if (node.sig !== item.sig) {
        const el = this.build(item);
        if (node.el) {
          if (node.el.contains(document.activeElement)) this.restoreFocus = item.key;
          node.el.replaceWith(el);
          if (cursor === node.el) cursor = el;
          this.observer.unobserve(node.el);
        }
        node.el = el;
        node.sig = item.sig;
        this.watch(item, el);
      }
      if (node.el !== cursor) this.list.insertBefore(node.el, cursor);
      else cursor = cursor.nextSibling;
    }
    for (const [key, node] of this.nodes) {
      if (!keep.has(key)) {
        this.observer.unobserve(node.el);
        node.el.remove();
        this.nodes.delete(key);
      }
    }
    if (this.restoreFocus) {
      const node = this.nodes.get(this.restoreFocus);
      const button = node && node.el.querySelector('.msg-menu-btn');
      if (button) button.focus();
      this.restoreFocus = null;
    }
    if (errorText) this.older.textContent = errorText;
    else if (loadingOlder) this.older.textContent = 'Loading older messages…';
    else if (!hasMore && messages.length) this.older.textContent = this.isBot
      ? 'This is the start of your chat with the assistant.'
      : `This is the start of your conversation with ${this.name}.`;
    else this.older.textContent = '';
    this.renderEmpty(messages.length === 0 && !errorText);
    // Keep the reader's place: older pages grow upwards, new messages follow only at the bottom.
    if (anchor) {
      const node = this.nodes.get(anchor.key);
      if (node) this.log.scrollTop += node.el.getBoundingClientRect().top - anchor.top;
    } else if (mode === 'initial') {
      const divider = this.list.querySelector('.unread-sep');
      if (divider) divider.scrollIntoView({ block: 'start' });
      else this.scrollToBottom();
    } else if (wasAtBottom || mine) {
      this.scrollToBottom();
    } else if (added > 0) {
      this.newBelow += added;
      this.setJump(true);
    }
  }

  renderEmpty(empty) {
    this.emptyBox.hidden = !empty;
    if (!empty) return;
    if (this.isBot) {
      this.emptyBox.replaceChildren(
        h('p', { class: 'chat-empty-title', text: 'Ask the assistant anything about WhatsEase' }),
        h('p', { text: 'Try one of these, or type your own question.' }),
        h('div', { class: 'suggestions', role: 'group', 'aria-label': 'Suggested questions' },
          BOT_SUGGESTIONS.map((text) => h('button', { type: 'button', class: 'chip', dataset: { suggestion: text }, text }))));
    } else {
      this.emptyBox.replaceChildren(
        h('p', { class: 'chat-empty-title', text: 'No messages yet' }),
        h('p', { text: `Say hello to ${this.name} — type below and press Enter.` }));
    }
  }

  // The log's rows: day separators, the "new messages" divider, and messages.
  layout(messages, firstUnread) {
    const items = [];
    let day = null;
    let previous = null;
    const unreadCount = firstUnread ? messages.filter((m) => m.sender !== this.me && m.message_id >= firstUnread).length : 0;
    for (const m of messages) {
      const key = dayKey(m.timestamp);
      if (key !== day) {
        day = key;
        previous = null;
        const label = dayLabel(m.timestamp);
        items.push({ key: `d:${key}`, kind: 'day', label, sig: label });
      }
      if (firstUnread && m.message_id === firstUnread) {
        const label = plural(unreadCount, 'unread message', 'unread messages');
        items.push({ key: 'unread', kind: 'unread', label, sig: label });
        previous = null;
      }
      const runStart = !previous || previous.sender !== m.sender;
      previous = m;
      items.push({
        key: m.client_id ? `c:${m.sender}:${m.client_id}` : `m:${m.message_id}`,
        kind: 'msg', message: m, runStart,
        sig: JSON.stringify([m.message_id, m.content, m.status, m.pending, m.failed, m.edited_at,
          m.deleted, runStart, clock(m.timestamp)]),
      });
    }
    return items;
  }

  build(item) {
    if (item.kind === 'day') {
      return h('li', { class: 'day-sep', dataset: { key: item.key } }, h('span', { text: item.label }));
    }
    if (item.kind === 'unread') {
      return h('li', { class: 'unread-sep', dataset: { key: item.key } }, h('span', { text: item.label }));
    }
    const m = item.message;
    const mine = m.sender === this.me;
    const li = h('li', {
      class: `msg ${mine ? 'mine' : 'theirs'}${item.runStart ? ' run-start' : ''}${m.deleted ? ' is-deleted' : ''}${m.pending ? ' is-pending' : ''}${m.failed ? ' is-failed' : ''}`,
      dataset: { key: item.key, id: m.message_id || '', clientId: m.client_id || '' },
    });
    const bubble = h('div', { class: 'bubble' });
    bubble.append(h('span', { class: 'visually-hidden', text: mine ? 'You:' : `${this.name}:` }));
    if (m.deleted) {
      bubble.append(h('p', { class: 'msg-text is-deleted' }, icon('ban'),
        mine ? 'You deleted this message' : 'This message was deleted'));
    } else {
      bubble.append(h('p', { class: 'msg-text', text: m.content }));
    }
    if (mine && !m.deleted && !m.pending) {
      bubble.append(h('button', {
        type: 'button', class: 'msg-menu-btn', 'aria-label': 'Message options', 'aria-haspopup': 'menu',
        'aria-expanded': 'false',
      }, icon('chevron')));
    }
    const meta = h('span', { class: 'msg-meta' });
    if (m.edited_at && !m.deleted) meta.append(h('span', { class: 'edited', text: 'edited' }));
    meta.append(h('time', { datetime: m.timestamp, title: fullTime(m.timestamp), text: clock(m.timestamp) }));
    if (mine && !m.deleted) meta.append(ticks(m.status, m.pending, m.failed));
    bubble.append(meta);
    li.append(bubble);
    if (m.failed) {
      li.append(h('p', { class: 'msg-failed' }, `Not sent: ${m.failed} `,
        h('button', { type: 'button', class: 'link-btn', dataset: { action: 'retry' }, text: 'Retry' }), ' · ',
        h('button', { type: 'button', class: 'link-btn', dataset: { action: 'discard' }, text: 'Discard' })));
    }
    return li;
  }

  // Incoming messages not yet read are watched until they have been on screen.
  watch(item, el) {
    const m = item.message;
    if (m && m.sender !== this.me && m.status !== 'Read' && !m.deleted && m.message_id) {
      this.observer.observe(el);
    } else if (m && m.message_id) {
      this.visible.delete(m.message_id);
    }
  }

  onIntersect(entries) {
    let grew = false;
    for (const entry of entries) {
      const id = entry.target.dataset.id;
      const seen = entry.isIntersecting && (entry.intersectionRatio >= SEEN_THRESHOLD ||
        entry.intersectionRect.height >= this.log.clientHeight * SEEN_THRESHOLD);
      if (seen && !this.visible.has(id)) {
        this.visible.add(id);
        grew = true;
      } else if (!seen) {
        this.visible.delete(id);
      }
    }
    if (grew) this.fire('visible');
  }

  visibleUnread() {
    return [...this.visible];
  }

  forgetVisible(ids) {
    for (const id of ids) this.visible.delete(id);
  }

  // The first message on screen and where it is, to pin it while pages grow above it.
  topVisible() {
    const top = this.log.getBoundingClientRect().top;
    for (const [key, node] of this.nodes) {
      if (!node.el.classList.contains('msg')) continue;
      const rect = node.el.getBoundingClientRect();
      if (rect.bottom > top) return { key, top: rect.top };
    }
    return null;
  }

  scrollToBottom() {
    this.log.scrollTop = this.log.scrollHeight;
    this.setJump(false);
  }

  setJump(show) {
    if (!show) this.newBelow = 0;
    this.jump.hidden = !show;
    this.jump.setAttribute('aria-label', this.newBelow
      ? `Jump to the newest message (${plural(this.newBelow, 'new message', 'new messages')})`
      : 'Jump to the newest message');
  }

  needsMore() {
    return this.log.scrollHeight <= this.log.clientHeight + LOAD_OLDER_WITHIN_PX;
  }

  // ---- message menu (edit, delete) and failed-send actions

  onListClick(e) {
    const action = e.target.closest('[data-action]');
    const li = e.target.closest('.msg');
    if (!li) return;
    if (action) {
      const name = action.dataset.action;
      const id = li.dataset.id;
      this.closeMenu(false);
      if (name === 'edit') this.fire('edit', id);
      else if (name === 'delete') this.fire('delete', id);
      else if (name === 'retry') this.fire('retry', li.dataset.clientId);
      else if (name === 'discard') this.fire('discard', li.dataset.clientId);
      return;
    }
    const button = e.target.closest('.msg-menu-btn');
    if (button) {
      if (this.menu && this.menu.parentElement === li) this.closeMenu(true);
      else this.openMenu(li, button);
    } else if (li.classList.contains('mine')) {
      // Touch screens have no hover: a tap on my message reveals its options button.
      for (const other of this.list.querySelectorAll('.msg.is-touched')) if (other !== li) other.classList.remove('is-touched');
      li.classList.toggle('is-touched');
    }
  }

  openMenu(li, button) {
    this.closeMenu(false);
    this.menu = h('div', { class: 'msg-menu', role: 'menu', 'aria-label': 'Message options' },
      h('button', { type: 'button', role: 'menuitem', dataset: { action: 'edit' } }, icon('edit'), 'Edit'),
      h('button', { type: 'button', role: 'menuitem', class: 'danger', dataset: { action: 'delete' } }, icon('trash'), 'Delete'));
    li.append(this.menu);
    // Open upwards when there is no room below inside the message log.
    const room = this.log.getBoundingClientRect().bottom - li.getBoundingClientRect().bottom;
    this.menu.classList.toggle('opens-up', room < this.menu.offsetHeight + 8);
    button.setAttribute('aria-expanded', 'true');
    this.menu.querySelector('button').focus();
  }

  closeMenu(returnFocus) {
    if (!this.menu) return;
    const li = this.menu.parentElement;
    this.menu.remove();
    this.menu = null;
    const button = li && li.querySelector('.msg-menu-btn');
    if (button) {
      button.setAttribute('aria-expanded', 'false');
      if (returnFocus) button.focus();
    }
  }

  onMenuKey(e) {
    if (!this.menu || !this.menu.contains(e.target)) return;
    const items = [...this.menu.querySelectorAll('[role="menuitem"]')];
    const at = items.indexOf(e.target);
    if (e.key === KEY.ESCAPE) {
      e.preventDefault();
      this.closeMenu(true);
    } else if (e.key === KEY.DOWN || e.key === KEY.UP) {
      e.preventDefault();
      const next = (at + (e.key === KEY.DOWN ? 1 : items.length - 1)) % items.length;
      items[next].focus();
    } else if (e.key === 'Tab') {
      this.closeMenu(false);
    }
  }

  // ---- composer

  submit() {
    const text = this.input.value;
    if (this.blocked) return;
    if (!text.trim()) {
      this.refused = 'Type a message first — empty messages are not sent.';
      this.renderComposerState();
      return;
    }
    const n = charCount(text);
    if (n > MAX_CONTENT_CHARS) {
      this.refused = `This message is ${(n - MAX_CONTENT_CHARS).toLocaleString()} characters too long.`;
      this.renderComposerState();
      return;
    }
    if (this.editing) {
      this.fire('saveEdit', this.editing, text.trim());
      return;
    }
    this.fire('send', text.trim());
    this.input.value = '';
    this.autosize();
    this.fire('typing', false);
    this.renderComposerState();
    this.input.focus();
  }

  autosize() {
    this.input.style.height = 'auto';
    this.input.style.height = `${Math.min(this.input.scrollHeight, COMPOSER_MAX_HEIGHT_PX)}px`;
  }

  // Disable sending and say why ('' re-enables it). The draft and focus stay.
  setBlocked(reason) {
    this.blocked = reason;
    this.renderComposerState();
  }

  renderComposerState() {
    const n = charCount(this.input.value);
    const over = n > MAX_CONTENT_CHARS;
    this.input.readOnly = Boolean(this.blocked);
    this.input.setAttribute('aria-disabled', String(Boolean(this.blocked)));
    this.form.classList.toggle('is-blocked', Boolean(this.blocked));
    this.send.disabled = Boolean(this.blocked);
    this.reason.textContent = this.blocked || this.refused ||
      (over ? `Too long by ${(n - MAX_CONTENT_CHARS).toLocaleString()} characters — shorten it to send.` : '');
    this.reason.classList.toggle('is-error', Boolean(this.refused || over));
    this.counter.hidden = n < COUNTER_FROM_CHARS;
    this.counter.textContent = `${n.toLocaleString()} / ${MAX_CONTENT_CHARS.toLocaleString()}`;
    this.counter.classList.toggle('is-over', over);
    this.input.setAttribute('aria-invalid', String(over));
  }

  startEdit(message) {
    this.editing = message.message_id;
    this.editBar.hidden = false;
    this.label.textContent = 'Edit message';
    this.send.setAttribute('aria-label', 'Save edit');
    this.input.value = message.content;
    this.autosize();
    this.renderComposerState();
    this.input.focus();
    this.input.setSelectionRange(this.input.value.length, this.input.value.length);
  }

  cancelEdit() {
    if (!this.editing) return;
    const id = this.editing;
    this.finishEdit();
    const node = [...this.nodes.values()].find((n) => n.el.dataset.id === id);
    const button = node && node.el.querySelector('.msg-menu-btn');
    if (button) button.focus();
  }

  finishEdit() {
    this.editing = null;
    this.editBar.hidden = true;
    this.label.textContent = 'Message';
    this.send.setAttribute('aria-label', 'Send');
    this.input.value = '';
    this.autosize();
    this.renderComposerState();
    this.input.focus();
  }

  showComposerError(text) {
    this.refused = text;
    this.renderComposerState();
  }

  // The composer's text (not while editing a sent message), kept as a draft when leaving.
  draft() {
    return this.editing ? '' : this.input.value;
  }

  setDraft(text) {
    this.input.value = text;
    this.autosize();
    this.renderComposerState();
  }

  focusComposer() {
    this.input.focus({ preventScroll: true });
  }

  isEditing() {
    return this.editing !== null;
  }
}

function skeletonBubbles() {
  const widths = ['w40', 'w60', 'w30', 'w70', 'w50'];
  return widths.map((w, i) => h('li', { class: `msg ${i % 2 ? 'mine' : 'theirs'} skeleton`, 'aria-hidden': 'true' },
    h('div', { class: `bubble sk-bubble ${w}` })));
}

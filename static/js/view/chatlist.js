// The sidebar: search, filters, the chat list and "start a new chat" results.
import { fillAvatar, h, icon } from '../dom.js';
import { listTime } from '../format.js';
import { KEY } from '../keys.js';
import { chatPath } from '../router.js';

const SKELETON_ROWS = 6;
const SEARCH_DEBOUNCE_MS = 200;

export class ChatListView {
  constructor(root = document) {
    this.search = root.getElementById('search');
    this.filters = root.querySelector('.sidebar .filters');
    this.scroll = root.getElementById('chat-scroll');
    this.list = root.getElementById('chat-list');
    this.empty = root.getElementById('list-empty');
    this.emptyTitle = this.empty.querySelector('.list-empty-title');
    this.emptyText = this.empty.querySelector('.list-empty-text');
    this.people = root.getElementById('people');
    this.peopleList = root.getElementById('people-list');
    this.peopleStatus = root.getElementById('people-status');
    this.rows = new Map();          // peer → {li, link, sig}
    this.focusPeer = null;          // the row that Tab lands on
    this.searchTimer = null;
    // One delegated listener for the keys of every row in both lists.
    this.scroll.addEventListener('keydown', (e) => this.onRowKey(e));
    this.search.addEventListener('keydown', (e) => {
      if (e.key === KEY.DOWN) {
        e.preventDefault();
        this.focusRow(0);
      } else if (e.key === KEY.ENTER) {
        e.preventDefault();
        this.focusRow(0);
        const first = this.rowLinks()[0];
        if (first) first.click();
      } else if (e.key === KEY.ESCAPE && this.search.value) {
        e.preventDefault();
        this.search.value = '';
        this.search.dispatchEvent(new Event('input'));
      }
    });
  }

  bind(event, handler) {
    if (event === 'search') {
      this.search.addEventListener('input', () => {
        clearTimeout(this.searchTimer);
        const query = this.search.value.trim();
        handler(query, { immediate: true });
        this.searchTimer = setTimeout(() => handler(query, { immediate: false }), SEARCH_DEBOUNCE_MS);
      });
    } else if (event === 'pick') {
      // Opening someone from "start a new chat" ends the search, as the chat now lists them.
      this.peopleList.addEventListener('click', (e) => {
        if (e.target.closest('.chat-row')) handler();
      });
    } else if (event === 'filter') {
      this.filters.addEventListener('click', (e) => {
        const chip = e.target.closest('[data-filter]');
        if (chip) handler(chip.dataset.filter);
      });
    }
  }

  focusSearch() {
    this.search.focus();
    this.search.select();
  }

  clearSearch() {
    this.search.value = '';
  }

  renderFilter(filter) {
    for (const chip of this.filters.querySelectorAll('[data-filter]')) {
      chip.setAttribute('aria-pressed', String(chip.dataset.filter === filter));
    }
  }

  renderLoading() {
    this.list.setAttribute('aria-busy', 'true');
    this.rows.clear();
    const skeletons = [];
    for (let i = 0; i < SKELETON_ROWS; i += 1) {
      skeletons.push(h('li', { class: 'chat-item skeleton', 'aria-hidden': 'true' },
        h('span', { class: 'avatar' }), h('span', { class: 'sk-lines' },
          h('span', { class: 'sk-line' }), h('span', { class: 'sk-line short' }))));
    }
    this.list.replaceChildren(...skeletons);
    this.empty.hidden = true;
  }

  // rows: [{peer, name, is_bot, online, last_message, unread_count, typing}]; active: open peer.
  render(rows, { me, active, empty }) {
    this.list.setAttribute('aria-busy', 'false');
    const hadFocus = this.scroll.contains(document.activeElement) ? document.activeElement : null;
    let cursor = this.list.firstChild;
    while (cursor && cursor.classList.contains('skeleton')) {
      const next = cursor.nextSibling;
      cursor.remove();
      cursor = next;
    }
    const seen = new Set();
    for (const row of rows) {
      seen.add(row.peer);
      const sig = JSON.stringify([row.name, row.last_message, row.unread_count, row.typing,
        row.online, row.peer === active, listTime(row.last_message && row.last_message.timestamp)]);
      let entry = this.rows.get(row.peer);
      if (!entry) {
        const link = h('a', { class: 'chat-row', href: chatPath(row.peer), tabindex: '-1' });
        entry = { li: h('li', { class: 'chat-item', dataset: { peer: row.peer } }, link), link, sig: '' };
        this.rows.set(row.peer, entry);
      }
      if (entry.sig !== sig) {
        fillRow(entry.link, row, me, row.peer === active);
        entry.sig = sig;
      }
      if (entry.li !== cursor) this.list.insertBefore(entry.li, cursor);
      else cursor = cursor.nextSibling;
    }
    for (const [peer, entry] of this.rows) {
      if (!seen.has(peer)) {
        entry.li.remove();
        this.rows.delete(peer);
      }
    }
    this.empty.hidden = !empty;
    if (empty) {
      this.emptyTitle.textContent = empty.title;
      this.emptyText.textContent = empty.text;
    }
    if (active) this.focusPeer = active;
    this.updateRoving();
    // Reordering moves nodes, which drops focus: put it back where it was.
    if (hadFocus && !this.scroll.contains(document.activeElement) && hadFocus.isConnected) hadFocus.focus();
  }

  // users: [{email, name, role}]; state: 'hidden'|'loading'|'done'|'error'.
  renderPeople(state, users = [], query = '') {
    this.people.hidden = state === 'hidden';
    if (state === 'hidden') {
      this.peopleList.replaceChildren();
      this.peopleStatus.textContent = '';
      return;
    }
    if (state === 'loading') {
      this.peopleStatus.textContent = 'Searching…';
      return;
    }
    if (state === 'error') {
      this.peopleStatus.textContent = "Couldn't search right now. Check your connection and try again.";
      this.peopleList.replaceChildren();
      return;
    }
    this.peopleStatus.textContent = users.length ? '' : `Nobody else matches “${query}”.`;
    this.peopleList.replaceChildren(...users.map((user) => h('li', { class: 'chat-item' },
      h('a', { class: 'chat-row', href: chatPath(user.email), tabindex: '-1' },
        fillAvatar(h('span', { class: 'avatar', 'aria-hidden': 'true' }), user.name, user.email,
          user.role === 'bot'),
        h('span', { class: 'row-main' },
          h('span', { class: 'row-top' }, h('span', { class: 'row-name', text: user.name })),
          h('span', { class: 'row-bottom' },
            h('span', { class: 'row-preview', text: user.role === 'bot' ? 'Assistant' : user.email })))))));
    this.updateRoving();
  }

  rowLinks() {
    return [...this.scroll.querySelectorAll('.chat-row')].filter((el) => !el.closest('[hidden]'));
  }

  // Roving tabindex: the list is one Tab stop; arrows move inside it.
  updateRoving() {
    const links = this.rowLinks();
    let current = links.find((link) => link === document.activeElement) ||
      links.find((link) => link.closest('[data-peer]') && link.closest('[data-peer]').dataset.peer === this.focusPeer) ||
      links[0];
    for (const link of links) link.tabIndex = link === current ? 0 : -1;
  }

  focusRow(index) {
    const links = this.rowLinks();
    if (!links.length) return;
    const target = links[Math.max(0, Math.min(index, links.length - 1))];
    for (const link of links) link.tabIndex = link === target ? 0 : -1;
    target.focus();
    target.scrollIntoView({ block: 'nearest' });
  }

  onRowKey(e) {
    const link = e.target.closest('.chat-row');
    if (!link) return;
    const links = this.rowLinks();
    const at = links.indexOf(link);
    if (e.key === KEY.DOWN) this.focusRow(at + 1);
    else if (e.key === KEY.UP) {
      if (at === 0) this.focusSearch();
      else this.focusRow(at - 1);
    } else if (e.key === KEY.HOME) this.focusRow(0);
    else if (e.key === KEY.END) this.focusRow(links.length - 1);
    else return;
    e.preventDefault();
  }

  focusList() {
    const links = this.rowLinks();
    const target = links.find((l) => l.tabIndex === 0) || links[0];
    if (target) target.focus();
    else this.focusSearch();
  }
}

function fillRow(link, row, me, active) {
  const last = row.last_message;
  if (active) link.setAttribute('aria-current', 'page');
  else link.removeAttribute('aria-current');
  link.classList.toggle('is-unread', row.unread_count > 0);
  const avatar = fillAvatar(h('span', { class: 'avatar', 'aria-hidden': 'true' }), row.name, row.peer, row.is_bot);
  const avatarBox = h('span', { class: 'avatar-wrap' }, avatar,
    row.online && !row.is_bot ? h('span', { class: 'online-dot', title: 'Online' }) : null);
  const preview = h('span', { class: 'row-preview' });
  if (row.typing) {
    preview.classList.add('is-typing');
    preview.textContent = 'typing…';
  } else if (last) {
    if (last.sender === me && !last.deleted) {
      preview.append(h('span', { class: 'visually-hidden', text: 'You:' }), ticks(last.status, last.pending));
    }
    if (last.deleted) {
      preview.classList.add('is-deleted');
      preview.append(icon('ban'), last.sender === me ? 'You deleted this message' : 'This message was deleted');
    } else {
      preview.append(h('span', { class: 'preview-text', text: last.content.split('\n')[0] }));
    }
  }
  const time = last ? h('time', { class: 'row-time', datetime: last.timestamp, text: listTime(last.timestamp) }) : null;
  const badge = row.unread_count > 0
    ? h('span', { class: 'badge' }, String(row.unread_count),
      h('span', { class: 'visually-hidden', text: ` ${row.unread_count === 1 ? 'unread message' : 'unread messages'}` }))
    : null;
  link.replaceChildren(avatarBox, h('span', { class: 'row-main' },
    h('span', { class: 'row-top' }, h('span', { class: 'row-name', text: row.name }), time),
    h('span', { class: 'row-bottom' }, preview, badge)));
}

export function statusWord(status, pending) {
  if (pending) return 'Sending';
  return { Sent: 'Sent', Delivered: 'Delivered', Read: 'Read' }[status] || status;
}

// The tick marks: clock while sending, ✓ sent, ✓✓ delivered, blue ✓✓ read.
export function ticks(status, pending, failed) {
  if (failed) return h('span', { class: 'ticks is-failed' }, icon('alert', 'Not sent'));
  if (pending) return h('span', { class: 'ticks is-pending' }, icon('clock', 'Sending'));
  const name = status === 'Sent' ? 'check' : 'checks';
  return h('span', { class: `ticks is-${String(status).toLowerCase()}` }, icon(name, statusWord(status)));
}

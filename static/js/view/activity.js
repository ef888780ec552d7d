// The activity page: recent actions, filterable by kind, growing live.
import { h, icon } from '../dom.js';
import { fullTime, listTime } from '../format.js';

// Which entry kinds each filter chip shows (null: everything).
export const ACTIVITY_FILTERS = Object.freeze({
  all: null,
  messages: ['message.sent', 'message.edited', 'message.deleted'],
  receipts: ['message.delivered', 'message.read'],
  bot: ['bot.replied'],
  account: ['user.registered', 'user.login', 'user.logout', 'user.updated', 'session.revoked', 'user.deleted'],
});

const KIND_ICONS = {
  'message.sent': 'send', 'message.edited': 'edit', 'message.deleted': 'trash',
  'message.delivered': 'checks', 'message.read': 'checks', 'bot.replied': 'bot',
  'user.login': 'user', 'user.logout': 'logout', 'user.registered': 'user', 'user.updated': 'user',
  'session.revoked': 'device',
};
// At most this many entries stay on the page; older ones are dropped as new ones arrive.
const MAX_ENTRIES = 500;

export class ActivityView {
  constructor(root) {
    this.root = root;
    this.list = root.querySelector('.activity-list');
    this.empty = root.querySelector('.activity-empty');
    this.more = root.querySelector('.activity-more');
    this.filters = root.querySelector('.filters');
    document.title = 'Activity · WhatsEase';
  }

  bind(event, handler) {
    if (event === 'filter') {
      this.filters.addEventListener('click', (e) => {
        const chip = e.target.closest('[data-kind]');
        if (chip) handler(chip.dataset.kind);
      });
    } else if (event === 'more') {
      this.more.addEventListener('click', () => handler());
    }
  }

  renderFilter(filter) {
    for (const chip of this.filters.querySelectorAll('[data-kind]')) {
      chip.setAttribute('aria-pressed', String(chip.dataset.kind === filter));
    }
  }

  renderLoading() {
    this.list.setAttribute('aria-busy', 'true');
    this.list.replaceChildren(...[1, 2, 3, 4].map(() => h('li', { class: 'activity-item skeleton', 'aria-hidden': 'true' },
      h('span', { class: 'activity-icon' }), h('span', { class: 'sk-lines' }, h('span', { class: 'sk-line' }),
        h('span', { class: 'sk-line short' })))));
    this.empty.hidden = true;
    this.more.hidden = true;
  }

  render(entries, { hasMore, error }) {
    this.list.setAttribute('aria-busy', 'false');
    this.list.replaceChildren(...entries.map(entryItem));
    this.more.hidden = !hasMore;
    this.empty.hidden = entries.length > 0 && !error;
    this.empty.textContent = error || 'Nothing here yet. Send a message or chat with the assistant and it shows up here as it happens.';
    this.empty.classList.toggle('is-error', Boolean(error));
  }

  append(entries, { hasMore }) {
    this.list.append(...entries.map(entryItem));
    this.more.hidden = !hasMore;
  }

  prepend(entry) {
    const item = entryItem(entry);
    item.classList.add('is-new');
    this.list.prepend(item);
    this.empty.hidden = true;
    while (this.list.children.length > MAX_ENTRIES) this.list.lastElementChild.remove();
  }

  has(id) {
    return [...this.list.children].some((li) => li.dataset.id === id);
  }
}

function entryItem(entry) {
  const group = entry.kind.split('.')[0];
  return h('li', { class: `activity-item kind-${group}`, dataset: { id: entry.id, kind: entry.kind } },
    h('span', { class: 'activity-icon', 'aria-hidden': 'true' }, icon(KIND_ICONS[entry.kind] || 'activity')),
    h('span', { class: 'activity-main' },
      h('span', { class: 'activity-text', text: entry.text }),
      h('span', { class: 'activity-kind', text: entry.kind })),
    h('time', { class: 'activity-time', datetime: entry.time, title: fullTime(entry.time), text: listTime(entry.time) }));
}

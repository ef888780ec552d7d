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
// At most this many lines stay on the page; older ones are dropped as new ones arrive.
const MAX_ENTRIES = 500;
// Repeats of these by the same person in a row read as one line ("You logged in 3 times").
const GROUPED = new Set(['user.login', 'user.logout', 'session.revoked']);

// Each kind as a sentence: a list of words and people ({who: address}).
// `me` is true when the person is the reader; the view says "You"/"your".
const SENTENCES = {
  'user.registered': (a) => [a, ' joined WhatsEase'],
  'user.login': (a) => [a, ' logged in'],
  'user.logout': (a) => [a, ' logged out'],
  'user.updated': (a) => [a, a.me ? ' changed your profile' : ' changed their profile'],
  'user.deleted': (a) => [a, ' deleted their account'],
  'session.revoked': (a) => [a, ' logged out another device'],
  'message.sent': (a, t) => [a, ' sent a message to ', t],
  'message.edited': (a, t) => [a, ' edited a message to ', t],
  'message.deleted': (a, t) => [a, ' deleted a message to ', t],
  'message.delivered': (a, t) => (t.me ? ['Your message was delivered to ', a]
    : ['A message from ', t, a.me ? ' reached you' : ' reached ', ...(a.me ? [] : [a])]),
  'message.read': (a, t) => (t.me ? [a, ' read your message'] : [a, ' read a message from ', t]),
  'bot.replied': (a, t) => [a, ' replied to ', t],
};

export class ActivityView {
  constructor(root) {
    this.root = root;
    this.list = root.querySelector('.activity-list');
    this.empty = root.querySelector('.activity-empty');
    this.more = root.querySelector('.activity-more');
    this.filters = root.querySelector('.filters');
    this.ids = new Set();
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

  // names: {address: display name}; me: the reader's email.
  render(entries, { hasMore, error, names = {}, me = '' }) {
    this.list.setAttribute('aria-busy', 'false');
    this.list.replaceChildren();
    this.ids.clear();
    this.append(entries, { hasMore, names, me });
    this.empty.hidden = entries.length > 0 && !error;
    this.empty.textContent = error || 'Nothing here yet. Send a message or chat with the assistant and it shows up here as it happens.';
    this.empty.classList.toggle('is-error', Boolean(error));
  }

  // Older entries at the end; a repeat of the last line joins it.
  append(entries, { hasMore, names = {}, me = '' }) {
    for (const entry of entries) {
      this.ids.add(entry.id);
      const last = this.list.lastElementChild;
      if (last && joins(last, entry)) addToGroup(last, entry, { older: true });
      else this.list.append(entryItem(entry, names, me));
    }
    this.more.hidden = !hasMore;
  }

  // A live entry at the top; a repeat of the newest line joins it.
  prepend(entry, { names = {}, me = '' } = {}) {
    this.ids.add(entry.id);
    const first = this.list.firstElementChild;
    if (first && joins(first, entry)) {
      addToGroup(first, entry, { older: false });
    } else {
      const item = entryItem(entry, names, me);
      item.classList.add('is-new');
      this.list.prepend(item);
    }
    this.empty.hidden = true;
    while (this.list.children.length > MAX_ENTRIES) this.list.lastElementChild.remove();
  }

  has(id) {
    return this.ids.has(id);
  }
}

function joins(item, entry) {
  return GROUPED.has(entry.kind) && item.dataset.kind === entry.kind && item.dataset.actor === entry.actor;
}

// One more repeat in a grouped line: "… 3 times", its time the newest, the span on hover.
function addToGroup(item, entry, { older }) {
  const count = Number(item.dataset.count || 1) + 1;
  item.dataset.count = String(count);
  const times = item.querySelector('.activity-times');
  times.textContent = ` ${count} times`;
  const time = item.querySelector('time');
  if (older) {
    time.title = `${fullTime(entry.time)} to ${time.dataset.newest}`;
  } else {
    time.dateTime = entry.time;
    time.textContent = listTime(entry.time);
    time.dataset.newest = fullTime(entry.time);
    time.title = `${time.title.split(' to ')[0]} to ${fullTime(entry.time)}`;
  }
}

// A person: their display name (You for the reader), their address on hover.
function person(address, names, me) {
  if (!address) return h('span', { class: 'person', text: 'someone' });
  const mine = address === me;
  return h('span', { class: 'person', title: address, text: mine ? 'You' : (names[address] || address) });
}

function sentenceOf(entry, names, me) {
  const build = SENTENCES[entry.kind];
  if (!build) return [entry.text];   // kinds the client does not know read as the server wrote them
  const actor = { who: entry.actor, me: entry.actor === me };
  const target = { who: entry.target, me: Boolean(entry.target) && entry.target === me };
  return build(actor, target).map((part, index) => {
    if (typeof part === 'string') return part;
    const el = person(part.who, names, me);
    // "You" starts a sentence; inside one it is "you".
    if (part.me && index > 0) el.textContent = 'you';
    return el;
  });
}

function entryItem(entry, names, me) {
  const group = entry.kind.split('.')[0];
  const text = h('span', { class: 'activity-text' }, ...sentenceOf(entry, names, me),
    h('span', { class: 'activity-times' }));
  return h('li', { class: `activity-item kind-${group}`, dataset: { id: entry.id, kind: entry.kind, actor: entry.actor || '' } },
    h('span', { class: 'activity-icon', 'aria-hidden': 'true' }, icon(KIND_ICONS[entry.kind] || 'activity')),
    h('span', { class: 'activity-main' }, text),
    h('time', { class: 'activity-time', datetime: entry.time, title: fullTime(entry.time),
      dataset: { newest: fullTime(entry.time) }, text: listTime(entry.time) }));
}

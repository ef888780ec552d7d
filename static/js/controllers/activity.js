// The activity page: loads recent entries for a filter and prepends live ones.
import { ACTIVITY_FILTERS, ActivityView } from '../view/activity.js';

const PAGE_SIZE = 50;

export class ActivityController {
  constructor({ api, messenger, layout, store }) {
    this.api = api;
    this.messenger = messenger;
    this.store = store;
    this.names = {};     // address -> display name, from the API's pages
    this.filter = 'all';
    this.nextBefore = null;
    this.seq = 0;
    this.view = new ActivityView(layout.mount('tpl-activity'));
    this.view.bind('filter', (f) => this.setFilter(f));
    this.view.bind('more', () => this.loadMore());
    this.onActivity = (e) => this.live(e.detail);
    messenger.addEventListener('activity', this.onActivity);
    this.load();
  }

  destroy() {
    this.messenger.removeEventListener('activity', this.onActivity);
  }

  focus() {}

  kinds() {
    return ACTIVITY_FILTERS[this.filter] || [];
  }

  setFilter(filter) {
    if (!(filter in ACTIVITY_FILTERS)) return;
    this.filter = filter;
    this.view.renderFilter(filter);
    this.load();
  }

  // Names to show: the API's, then what the chat list knows (live entries name chat peers).
  who() {
    const names = { ...this.names };
    for (const row of this.store.chats.values()) if (row.name && !(row.peer in names)) names[row.peer] = row.name;
    for (const [email, profile] of this.store.profiles) if (profile.name && !(email in names)) names[email] = profile.name;
    return { names, me: this.store.me ? this.store.me.email : '' };
  }

  async load() {
    const seq = ++this.seq;
    this.view.renderLoading();
    try {
      const body = await this.api.activity({ kinds: this.kinds(), limit: PAGE_SIZE });
      if (seq !== this.seq) return;
      this.nextBefore = body.next_before;
      Object.assign(this.names, body.people || {});
      this.view.render(body.entries, { hasMore: Boolean(body.next_before), ...this.who() });
    } catch (error) {
      if (seq !== this.seq || error.name === 'SessionEnded') return;
      this.view.render([], { hasMore: false, error: `Couldn't load activity: ${error.message}` });
    }
  }

  async loadMore() {
    if (!this.nextBefore) return;
    const seq = this.seq;
    try {
      const body = await this.api.activity({ kinds: this.kinds(), before: this.nextBefore, limit: PAGE_SIZE });
      if (seq !== this.seq) return;
      this.nextBefore = body.next_before;
      Object.assign(this.names, body.people || {});
      this.view.append(body.entries, { hasMore: Boolean(body.next_before), ...this.who() });
    } catch (error) {
      this.view.append([], { hasMore: true });
    }
  }

  live(entry) {
    if (!entry || this.view.has(entry.id)) return;
    const kinds = ACTIVITY_FILTERS[this.filter];
    if (kinds && !kinds.includes(entry.kind)) return;
    this.view.prepend(entry, this.who());
  }
}

// The activity page: loads recent entries for a filter and prepends live ones.
import { ACTIVITY_FILTERS, ActivityView } from '../view/activity.js';

const PAGE_SIZE = 50;

export class ActivityController {
  constructor({ api, messenger, layout }) {
    this.api = api;
    this.messenger = messenger;
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

  async load() {
    const seq = ++this.seq;
    this.view.renderLoading();
    try {
      const body = await this.api.activity({ kinds: this.kinds(), limit: PAGE_SIZE });
      if (seq !== this.seq) return;
      this.nextBefore = body.next_before;
      this.view.render(body.entries, { hasMore: Boolean(body.next_before) });
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
      this.view.append(body.entries, { hasMore: Boolean(body.next_before) });
    } catch (error) {
      this.view.append([], { hasMore: true });
    }
  }

  live(entry) {
    if (!entry || this.view.has(entry.id)) return;
    const kinds = ACTIVITY_FILTERS[this.filter];
    if (kinds && !kinds.includes(entry.kind)) return;
    this.view.prepend(entry);
  }
}

// The frame around every page: splash, auth vs app, the two panes, connection banner, toast.
import { cloneTemplate, fillAvatar, hydrateIcons } from '../dom.js';
import { KEY, isTyping } from '../keys.js';

// How long a toast stays before it dismisses itself, in milliseconds (errors stay).
const TOAST_INFO_MS = 4_000;

export class LayoutView {
  constructor(root = document) {
    this.splash = root.getElementById('splash');
    this.auth = root.getElementById('auth');
    this.app = root.getElementById('app');
    this.main = root.getElementById('main');
    this.banner = root.getElementById('conn-banner');
    this.bannerText = this.banner.querySelector('.conn-text');
    this.bannerRetry = this.banner.querySelector('.conn-retry');
    this.meAvatar = root.getElementById('me-avatar');
    this.toast = root.getElementById('toast');
    this.toastText = this.toast.querySelector('.toast-text');
    this.toastTimer = null;
    hydrateIcons(this.app);
    this.toast.querySelector('.toast-close').addEventListener('click', () => this.hideToast());
  }

  bind(event, handler) {
    if (event === 'retry') {
      this.bannerRetry.addEventListener('click', () => handler());
    } else if (event === 'shortcut') {
      // One listener for the global keys: "/" or Ctrl+K (search), Escape (back).
      document.addEventListener('keydown', (e) => {
        if ((e.key === KEY.SLASH && !isTyping(e.target) && !e.ctrlKey && !e.metaKey && !e.altKey) ||
            (e.key.toLowerCase() === KEY.K && (e.ctrlKey || e.metaKey) && !e.altKey)) {
          e.preventDefault();
          handler('search');
        } else if (e.key === KEY.ESCAPE && !e.defaultPrevented && !document.querySelector('dialog[open]')) {
          handler('escape', e);
        }
      });
    }
  }

  showAuth() {
    this.splash.hidden = true;
    this.app.hidden = true;
    this.auth.hidden = false;
  }

  showApp() {
    this.splash.hidden = true;
    this.auth.hidden = true;
    this.app.hidden = false;
  }

  // On narrow screens only one pane shows: the list, or the page that is open.
  setPane(pane) {
    this.app.dataset.pane = pane;
  }

  isNarrow() {
    return window.matchMedia('(max-width: 47.99em)').matches;
  }

  // Put a page (a template clone) into the main pane; returns its root element.
  mount(templateId) {
    const page = cloneTemplate(templateId);
    this.main.replaceChildren(page);
    this.main.scrollTop = 0;
    return page;
  }

  clearMain() {
    this.main.replaceChildren();
  }

  focusMain() {
    const heading = this.main.querySelector('h1');
    if (heading) {
      heading.tabIndex = -1;
      heading.focus({ preventScroll: true });
    } else {
      this.main.focus({ preventScroll: true });
    }
  }

  setMe(user) {
    fillAvatar(this.meAvatar, user.name, user.email);
  }

  isAppShown() {
    return !this.app.hidden;
  }

  // The socket's raw state as an attribute (styling hooks and tests read it).
  renderSocketState(state) {
    this.app.dataset.connection = state;
  }

  // state: {kind: 'online'|'connecting'|'waiting'|'failed'|'offline', seconds}
  // reason (while waiting): why the socket closed, as the shared socket names it.
  renderConnection({ kind, seconds, reason = '' }) {
    if (kind === 'online' || kind === 'idle') {
      this.banner.hidden = true;
      this.app.classList.remove('is-offline');
      return;
    }
    this.banner.hidden = false;
    this.app.classList.add('is-offline');
    this.banner.dataset.kind = kind;
    let text = 'Connecting…';
    if (kind === 'waiting') {
      const what = { restart: 'WhatsEase is restarting.', unavailable: 'WhatsEase is having trouble on its side.' }[reason] || 'Connection lost.';
      text = seconds > 0 ? `${what} Reconnecting in ${seconds} s…` : `${what} Reconnecting…`;
    } else if (kind === 'offline') {
      text = "You're offline. Messages will send when you're back.";
    } else if (kind === 'failed') {
      text = "This page's address isn't allowed to connect. Open WhatsEase from its own address.";
    }
    this.bannerText.textContent = text;
    this.bannerRetry.hidden = kind !== 'waiting';
  }

  showToast(text, { kind = 'error' } = {}) {
    clearTimeout(this.toastTimer);
    this.toastText.textContent = text;
    this.toast.dataset.kind = kind;
    this.toast.hidden = false;
    if (kind !== 'error') this.toastTimer = setTimeout(() => this.hideToast(), TOAST_INFO_MS);
  }

  hideToast() {
    clearTimeout(this.toastTimer);
    this.toast.hidden = true;
  }
}

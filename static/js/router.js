// Client routes on the History API: links and back/forward change the page without a reload.

import { BOT } from './store.js';

// Each route: a name, a pattern, and whether it needs a signed-in user.
const ROUTES = [
  { name: 'login', pattern: /^\/login$/, public: true },
  { name: 'register', pattern: /^\/register$/, public: true },
  { name: 'inbox', pattern: /^\/$/ },
  { name: 'bot', pattern: /^\/bot$/ },
  { name: 'chat', pattern: /^\/chat\/([^/]+)$/ },
  { name: 'activity', pattern: /^\/activity$/ },
  { name: 'settings', pattern: /^\/settings$/ },
];

export function match(pathname, search = '') {
  for (const route of ROUTES) {
    const found = route.pattern.exec(pathname);
    if (!found) continue;
    const params = {};
    if (route.name === 'chat') {
      try {
        params.peer = decodeURIComponent(found[1]).trim().toLowerCase();
      } catch (error) {
        continue;
      }
      if (params.peer === BOT) return { name: 'bot', public: false, path: '/bot', params: { peer: BOT } };
    }
    if (route.name === 'bot') params.peer = BOT;
    return { name: route.name, public: Boolean(route.public), path: pathname + search, params,
      query: new URLSearchParams(search) };
  }
  return { name: 'notfound', public: false, path: pathname + search, params: {},
    query: new URLSearchParams(search) };
}

export function chatPath(peer) {
  return peer === BOT ? '/bot' : `/chat/${encodeURIComponent(peer)}`;
}

// Only same-site paths may be returned to after logging in (never "//evil.example").
export function safeNext(value) {
  if (typeof value !== 'string' || !value.startsWith('/') || value.startsWith('//') ||
      value.startsWith('/\\')) return '/';
  const route = match(value.split('?')[0]);
  return route.public ? '/' : value;
}

export class Router extends EventTarget {
  constructor() {
    super();
    this.current = null;
  }

  start() {
    window.addEventListener('popstate', () => this.resolve());
    document.addEventListener('click', (event) => this.intercept(event));
    this.resolve();
  }

  // Follow in-app links without a reload (but let modified clicks open tabs as usual).
  intercept(event) {
    if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey ||
        event.shiftKey || event.altKey) return;
    const link = event.target instanceof Element ? event.target.closest('a[href]') : null;
    // data-reload: a page of this site outside the app (the password reset).
    if (!link || link.target || link.hasAttribute('download') || link.hasAttribute('data-reload')) return;
    const url = new URL(link.href, window.location.href);
    if (url.origin !== window.location.origin || url.pathname.startsWith('/api/') ||
        url.pathname.startsWith('/static/')) return;
    event.preventDefault();
    this.navigate(url.pathname + url.search);
  }

  navigate(path, { replace = false } = {}) {
    if (path === window.location.pathname + window.location.search && !replace) {
      this.resolve();
      return;
    }
    if (replace) window.history.replaceState(null, '', path);
    else window.history.pushState(null, '', path);
    this.resolve();
  }

  resolve() {
    const previous = this.current;
    this.current = match(window.location.pathname, window.location.search);
    this.dispatchEvent(new CustomEvent('route', { detail: { route: this.current, previous } }));
  }
}

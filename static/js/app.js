// The client's entry point: builds the parts and decides what each route shows.
import { Api, ApiError } from './api.js';
import { ActivityController } from './controllers/activity.js';
import { ChatController } from './controllers/chat.js';
import { InboxController } from './controllers/inbox.js';
import { SettingsController } from './controllers/settings.js';
import { Messenger } from './messenger.js';
import { Router, safeNext } from './router.js';
import { Session } from './session.js';
import { ReconnectingSocket, STATE, socketUrl } from '../shared/socket.js';
import { Store } from './store.js';
import { AuthView } from './view/auth.js';
import { ChatListView } from './view/chatlist.js';
import { ConfirmDialog } from './view/dialog.js';
import { LayoutView } from './view/layout.js';

const MIN_PASSWORD_CHARS = 8;
// "Connecting…" only shows if connecting takes longer than this (no flash on every load).
const CONNECTING_BANNER_DELAY_MS = 1_500;
const TITLE = 'WhatsEase';

const session = new Session();
const api = new Api(session);
const store = new Store();
const socket = new ReconnectingSocket({
  url: () => socketUrl('/ws', window.location.origin, session.route), token: () => session.accessToken(),
  // A revoked session fails the refresh and ends with 'unauthenticated' {fatal}.
  refresh: () => session.refresh({ force: true }),
});
const messenger = new Messenger({ store, socket });
const router = new Router();
const layout = new LayoutView();
const authView = new AuthView();
const listView = new ChatListView();
const dialog = new ConfirmDialog();
const inbox = new InboxController({ store, api, view: listView, layout, receipts: messenger });

let running = false;    // the signed-in app is started
let page = null;        // the controller of the main pane
let pageKey = '';
let connectingTimer = null;
let startGraceUntil = 0;
let waitingTicker = null;

// ---- routes

router.addEventListener('route', (e) => show(e.detail.route));

function show(route) {
  if (route.public) {
    if (session.active) {
      router.navigate(safeNext(route.query.get('next')), { replace: true });
      return;
    }
    stopApp();
    layout.showAuth();
    authView.show(route.name, { next: route.query.get('next') });
    return;
  }
  if (!session.active) {
    const next = route.path !== '/' ? `?next=${encodeURIComponent(route.path)}` : '';
    router.navigate(`/login${next}`, { replace: true });
    return;
  }
  if (route.name === 'notfound') {
    router.navigate('/', { replace: true });
    return;
  }
  startApp();
  layout.showApp();
  const key = route.name === 'chat' || route.name === 'bot' ? `chat:${route.params.peer}` : route.name;
  if (key === pageKey) return;
  const leaving = pageKey;
  if (page) page.destroy();
  page = null;
  pageKey = key;
  layout.titleBase = null;
  if (route.name === 'inbox') {
    layout.clearMain();
    layout.mount('tpl-welcome');
    layout.setPane('list');
    layout.titleBase = TITLE;
    inbox.setActive(null);
    // Coming back from a page on a phone: land on the chat that was open.
    if (leaving.startsWith('chat:') && layout.isNarrow()) {
      requestAnimationFrame(() => listView.focusList());
    }
    return;
  }
  layout.setPane('main');
  if (route.name === 'chat' || route.name === 'bot') {
    const peer = route.params.peer;
    if (peer === store.me.email) {
      router.navigate('/', { replace: true });
      layout.showToast("That's you — pick someone else to chat with.", { kind: 'info' });
      return;
    }
    inbox.setActive(peer);
    page = new ChatController({ peer, store, api, messenger, layout, dialog, offlineReason });
  } else {
    inbox.setActive(null);
    if (route.name === 'activity') page = new ActivityController({ api, messenger, layout, store });
    else page = new SettingsController({ api, session, store, layout, dialog, logout, accountDeleted });
  }
  if (route.name === 'chat' || route.name === 'bot') page.focus();
  else layout.focusMain();
}

// ---- the signed-in app

function startApp() {
  if (running) return;
  running = true;
  startGraceUntil = Date.now() + CONNECTING_BANNER_DELAY_MS;
  store.reset(session.user);
  layout.setMe(session.user);
  inbox.reset();
  messenger.start();
  inbox.load();
  socket.start();
  // The stored profile may be stale (renamed in another tab or device).
  api.me().then(({ user }) => {
    session.setUser(user);
    store.me = user;
    layout.setMe(user);
  }).catch(() => {});
}

function stopApp() {
  if (page) page.destroy();
  page = null;
  pageKey = '';
  if (!running) return;
  running = false;
  socket.stop();
  messenger.stop();
  store.reset(null);
  layout.clearMain();
  layout.hideToast();
}

async function logout() {
  authView.notice("You've logged out.");
  try {
    await api.logout();
  } catch (error) {
    // Logging out locally still matters if the server is unreachable.
  }
  store.clearOutbox();
  session.clear();
}

// The server closes this account's sockets while deleting it: say goodbye, not
// "your session has ended", and do not reconnect meanwhile.
function accountDeleted(stage) {
  if (stage === 'deleting') {
    authView.notice('Your account has been deleted. Goodbye!');
    socket.stop();
  } else if (stage === 'failed') {
    authView.notice('');
    socket.start();
  } else {
    store.clearOutbox();
    session.clear();
  }
}

session.addEventListener('end', () => {
  const wasOn = running;
  if (wasOn && !authView.pendingNotice) authView.notice('Your session has ended. Log in again to continue.');
  const path = window.location.pathname + window.location.search;
  stopApp();
  const route = router.current;
  if (route && route.public) return;
  router.navigate(wasOn && path !== '/' && !path.startsWith('/settings') ? `/login?next=${encodeURIComponent(path)}` : '/login', { replace: true });
});

session.addEventListener('switch', () => {
  // Another tab signed in as someone else: start over as them.
  stopApp();
  router.resolve();
});

// ---- login and registration

authView.bind('submit', async (mode, fields) => {
  const email = fields.email.trim();
  const name = fields.name.trim();
  const problems = {};
  if (mode === 'register' && !name) problems.name = 'is required.';
  if (!email) problems.email = 'is required.';
  else if (!/^[^@\s]+@[^@\s]+\.[^@\s.]{2,}$/.test(email)) problems.email = 'must look like name@example.com.';
  if (!fields.password) problems.password = 'is required.';
  else if (mode === 'register' && fields.password.length < MIN_PASSWORD_CHARS) {
    problems.password = `must be at least ${MIN_PASSWORD_CHARS} characters.`;
  }
  if (Object.keys(problems).length) {
    authView.showErrors(problems);
    return;
  }
  authView.setBusy(true);
  try {
    const pair = mode === 'register'
      ? await api.register(email, name, fields.password)
      : await api.login(email, fields.password);
    session.save(pair);
    authView.reset();
    const next = router.current && router.current.query.get('next');
    router.navigate(safeNext(next), { replace: true });
  } catch (error) {
    authView.setBusy(false);
    if (error instanceof ApiError) {
      const fieldErrors = error.fields;
      const known = Object.keys(fieldErrors).some((f) => ['name', 'email', 'password'].includes(f));
      authView.showErrors(fieldErrors, known ? '' : error.message);
    } else {
      authView.showErrors({}, "Can't reach WhatsEase right now. Check your connection and try again.");
    }
  }
});

// ---- connection state

function offlineReason() {
  if (socket.online) return '';
  // The first connection takes a moment: sends queue up meanwhile, no need to alarm anyone.
  if (!messenger.everReady && Date.now() < startGraceUntil) return '';
  if (!navigator.onLine) return "You're offline. You can send again once you're back online.";
  return 'Not connected. Sending resumes as soon as the connection is back.';
}

function renderConnection() {
  clearInterval(waitingTicker);
  waitingTicker = null;
  const state = socket.state;
  layout.renderSocketState(state);
  if (state === STATE.ONLINE || state === STATE.IDLE) {
    clearTimeout(connectingTimer);
    connectingTimer = null;
    layout.renderConnection({ kind: 'online' });
  } else if (!navigator.onLine) {
    layout.renderConnection({ kind: 'offline' });
  } else if (state === STATE.FAILED) {
    layout.renderConnection({ kind: 'failed' });
  } else if (state === STATE.WAITING) {
    const tick = () => {
      const retryAt = socket.retryAt || 0;
      layout.renderConnection({ kind: 'waiting', reason: socket.reason,
        seconds: Math.max(0, Math.ceil((retryAt - Date.now()) / 1000)) });
    };
    tick();
    waitingTicker = setInterval(tick, 1000);
  } else if (state === STATE.CONNECTING && messenger.everReady) {
    layout.renderConnection({ kind: 'connecting' });
  } else if (state === STATE.CONNECTING && !connectingTimer) {
    connectingTimer = setTimeout(() => {
      if (socket.state === STATE.CONNECTING) layout.renderConnection({ kind: 'connecting' });
      if (page && page.updateBlocked) page.updateBlocked();
    }, CONNECTING_BANNER_DELAY_MS);
  }
  if (page && page.updateBlocked) page.updateBlocked();
}

socket.addEventListener('state', (e) => {
  socket.retryAt = e.detail.retryAt;
  renderConnection();
});
window.addEventListener('online', renderConnection);
window.addEventListener('offline', renderConnection);
layout.bind('retry', () => socket.reconnectNow());

socket.addEventListener('unauthenticated', () => session.clear());

messenger.addEventListener('ready', (e) => {
  // After a reconnect the server's unread counts and presence are the truth.
  if (e.detail.reconnected) inbox.load({ quiet: true });
});

// Renamed in another tab or on another device.
messenger.addEventListener('me', (e) => {
  if (!store.me) return;
  const user = { ...store.me, name: e.detail.name };
  session.setUser(user);
  store.me = user;
  layout.setMe(user);
});

messenger.addEventListener('problem', (e) => {
  const { code, detail } = e.detail;
  if (code === 'rate_limited') layout.showToast(detail || 'Slow down a little — too many messages at once.');
  else console.warn('whatsease: the server refused a frame', code, detail);
});

// ---- keyboard shortcuts

layout.bind('shortcut', (action) => {
  if (!running || !layout.isAppShown()) return;
  if (action === 'search') {
    if (layout.isNarrow() && router.current.name !== 'inbox') router.navigate('/');
    listView.focusSearch();
    return;
  }
  if (action === 'escape') {
    const name = router.current && router.current.name;
    if (name === 'inbox' || (page && page.isEditing && page.isEditing())) return;
    if (layout.isNarrow()) router.navigate('/');
    else listView.focusList();
  }
});

session.load();
router.start();

// The agent console's controller: login, the live socket, the state, and the three views.

import { api, auth, fetchFile, login, logout, refresh } from "./api.js";
import { DashboardView, SettingsView } from "./pages.js";
import { ConversationsView, channelOf } from "./panels.js";
import { ReconnectingSocket, STATE, socketUrl } from "../shared/socket.js";

const VIEWS = { "/agent": "conversations", "/agent/dashboard": "dashboard", "/agent/settings": "settings" };
const TYPING_REPEAT_MS = 3000;
const TYPING_IDLE_MS = 4000;
const TYPING_SHOWN_MS = 8000;

const state = {
  me: null,
  org: null,
  admin: false,
  conversations: new Map(), // id -> conversation (agent view)
  messages: new Map(), // id -> messages, oldest first (loaded when its panel opens)
  channel: new Map(), // id -> { media, deliveries }: a WhatsApp/Telegram conversation's extras, by message id
  agents: [],
  active: null, // the panel shown on narrow screens
};

const socket = new ReconnectingSocket({
  url: () => socketUrl("/support/ws", window.location.origin, (auth.get() || {}).org_route || ""),
  token: async () => {
    const current = auth.get();
    if (!current) throw Object.assign(new Error("Please log in."), { name: "SessionEnded" });
    return current.access_token;
  },
  refresh,
});
let counter = 0;
const typingSent = new Map();
const typingTimers = new Map();
const typingShown = new Map();

const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ views

const conversations = new ConversationsView({
  open: (id, options) => openConversation(id, options),
  hide: (id) => hideConversation(id),
  activate: (id, options) => activate(id, options),
  send: (id, content) => sendReply(id, content),
  typing: (id) => typed(id),
  action: (id, action, body) => runAction(id, action, body),
  seen: (id) => markSeen(id),
  media: (messageId) => fetchFile(`/api/v1/channels/media/${encodeURIComponent(messageId)}`),
});
const dashboard = new DashboardView();
const settings = new SettingsView({ save: saveSettings, rotate: rotateKey });

function render() {
  conversations.renderLists(state);
  for (const conv of state.conversations.values()) conversations.updatePanel(conv, state);
  if (currentView() === "dashboard" && state.admin) dashboard.render(state);
}

function currentView() {
  return VIEWS[location.pathname.replace(/\/+$/, "") || "/agent"] || "conversations";
}

function showView() {
  let view = currentView();
  if (view !== "conversations" && !state.admin) view = "conversations";
  for (const name of ["conversations", "dashboard", "settings"]) $(`view-${name}`).hidden = name !== view;
  for (const link of document.querySelectorAll(".nav a")) {
    if (link.dataset.view === view) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  document.title = `${{ conversations: "Conversations", dashboard: "Dashboard", settings: "Settings" }[view]} · Support console`;
  if (view === "dashboard") loadDashboard();
  if (view === "settings") loadSettings();
}

document.querySelector(".nav").addEventListener("click", (event) => {
  const link = event.target.closest("a[data-view]");
  if (!link || event.metaKey || event.ctrlKey || event.shiftKey) return;
  event.preventDefault();
  history.pushState({}, "", link.getAttribute("href"));
  showView();
  $("main").focus();
});
window.addEventListener("popstate", showView);

// ------------------------------------------------------------------ login

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const email = $("login-email").value.trim();
  const password = $("login-password").value;
  const alert = $("login-error");
  alert.hidden = true;
  if (!email || !password) {
    alert.textContent = "Enter your email and password.";
    alert.hidden = false;
    return;
  }
  try {
    await login(email, password);
  } catch (error) {
    alert.textContent = error.message;
    alert.hidden = false;
    return;
  }
  start();
});

$("logout").addEventListener("click", async () => {
  socket.stop();
  await logout();
  location.assign("/agent");
});

function showLogin(message) {
  $("console").hidden = true;
  $("login").hidden = false;
  const alert = $("login-error");
  alert.hidden = !message;
  alert.textContent = message || "";
  $("login-email").focus();
}

function start() {
  $("login").hidden = true;
  socket.start();
}

// ------------------------------------------------------------------ socket

const STATE_LABELS = { [STATE.CONNECTING]: "Connecting…", [STATE.ONLINE]: "Online", [STATE.WAITING]: "Reconnecting…" };

socket.addEventListener("state", (event) => {
  const { state: status, reason } = event.detail;
  const label = STATE_LABELS[status] || "";
  $("conn-status").textContent = label ? `(${label})` : "";
  if (status === STATE.FAILED) {
    socket.stop();
    auth.set(null);
    showLogin(reason && reason.includes("agent") ? "This account is not an agent of any organisation." : "This console cannot be opened from here.");
  }
});

socket.addEventListener("unauthenticated", () => {
  socket.stop();
  auth.set(null);
  showLogin("Your session has ended; please log in again.");
});

socket.addEventListener("frame", (event) => {
  const frame = event.detail;
  switch (frame.type) {
    case "ready": return ready(frame);
    case "conversation": return upsert(frame.conversation);
    case "message": return received(frame.conversation_id, frame.message);
    case "ack": return acked(frame);
    case "typing": return customerTyping(frame);
    case "agents":
      state.agents = frame.agents;
      return render();
    case "channel": return channelChanged(frame);
    case "error": return refused(frame);
    default: return undefined;
  }
});

function ready(frame) {
  state.me = frame.me;
  state.org = frame.org;
  state.admin = frame.admin;
  state.agents = frame.agents;
  // The snapshot replaces what we knew of active conversations (we may have missed changes).
  const listed = new Set(frame.conversations.map((c) => c.id));
  for (const [id, conv] of state.conversations) {
    if (conv.status === "active" && !listed.has(id) && !conversations.isOpen(id)) state.conversations.delete(id);
  }
  for (const conv of frame.conversations) state.conversations.set(conv.id, conv);
  $("console").hidden = false;
  $("org-name").textContent = frame.org.name;
  $("me-name").textContent = frame.me.name;
  for (const node of document.querySelectorAll("[data-admin]")) node.hidden = !state.admin;
  showView();
  render();
  loadEnded();
  // Reopen what was open before a reconnect, and every conversation assigned to me.
  for (const conv of state.conversations.values()) {
    if (conversations.isOpen(conv.id)) loadMessages(conv.id);
    else if (isMine(conv)) openConversation(conv.id, { focus: false });
  }
}

function isMine(conv) {
  return conv.status === "active" && conv.handler === "agent" && conv.agent === state.me.email;
}

function upsert(conv) {
  const before = state.conversations.get(conv.id);
  state.conversations.set(conv.id, conv);
  if (isMine(conv) && !conversations.isOpen(conv.id)) openConversation(conv.id, { focus: false });
  if (before && before.status === "active" && conv.status !== "active") {
    conversations.setTyping(conv.id, "");
  }
  render();
  if (conversations.isOpen(conv.id)) markSeen(conv.id);
}

function received(id, message) {
  const loading = arrivedWhileLoading.get(id);
  if (loading) loading.push(message);
  const list = state.messages.get(id);
  if (list && !list.some((m) => m.message_id === message.message_id)) list.push(message);
  conversations.appendMessage(id, message, state);
  if (message.kind === "customer") conversations.setTyping(id, "");
}

function acked(frame) {
  received(frame.conversation_id, frame.message);
  conversations.showError(frame.conversation_id, "");
}

function refused(frame) {
  const pendingIn = [...state.conversations.keys()].find((id) =>
    document.querySelector(`#panel-${id} [data-client-id="${CSS.escape(frame.client_id || "")}"]`));
  if (pendingIn) {
    conversations.markFailed(pendingIn, frame.client_id);
    conversations.showError(pendingIn, frame.detail);
  }
}

function customerTyping(frame) {
  clearTimeout(typingShown.get(frame.conversation_id));
  conversations.setTyping(frame.conversation_id, frame.state ? `${frame.name} is typing…` : "");
  if (frame.state) {
    typingShown.set(frame.conversation_id, setTimeout(() => conversations.setTyping(frame.conversation_id, ""), TYPING_SHOWN_MS));
  }
}

// ------------------------------------------------------------------ conversations

async function openConversation(id, { focus }) {
  // Assigned while on another page: it opens in the background; a click brings the agent here.
  if (focus && currentView() !== "conversations") {
    history.pushState({}, "", "/agent");
    showView();
  }
  let conv = state.conversations.get(id);
  if (!conv) {
    try {
      const data = await api("GET", `/api/v1/support/conversations/${id}`);
      conv = data.conversation;
      state.conversations.set(id, conv);
      state.messages.set(id, data.messages);
    } catch {
      return;
    }
  }
  const fresh = !conversations.isOpen(id);
  conversations.openPanel(conv);
  conversations.updatePanel(conv, state);
  if (focus || !state.active) activate(id, { focus });
  render();
  if (fresh) {
    await loadMessages(id);
    loadPast(id);
  }
}

// Messages that arrive live while a conversation's history loads, by conversation:
// the history may have been read before they were stored, and must not drop them.
const arrivedWhileLoading = new Map();

async function loadMessages(id) {
  const arrived = [];
  arrivedWhileLoading.set(id, arrived);
  try {
    const data = await api("GET", `/api/v1/support/conversations/${id}`);
    const known = new Set(data.messages.map((m) => m.message_id));
    const messages = [...data.messages, ...arrived.filter((m) => !known.has(m.message_id))];
    state.conversations.set(id, data.conversation);
    state.messages.set(id, messages);
    conversations.renderMessages(id, messages, state);
    conversations.updatePanel(data.conversation, state);
    markSeen(id);
    loadChannel(id);
  } catch (error) {
    conversations.showError(id, error.message);
  } finally {
    if (arrivedWhileLoading.get(id) === arrived) arrivedWhileLoading.delete(id);
  }
}

// How far a reply got on the platform; a state never moves back (pushes and a load may cross).
const DELIVERY_RANK = { Sent: 1, Delivered: 2, Read: 3, Failed: 4 };

// A channel conversation's attachments and its replies' delivery states, merged by message id.
function channelChanged(frame) {
  const id = frame.conversation_id;
  let extras = state.channel.get(id);
  if (!extras) {
    extras = { media: new Map(), deliveries: new Map() };
    state.channel.set(id, extras);
  }
  for (const item of frame.media || []) extras.media.set(item.message_id, item);
  for (const item of frame.deliveries || []) {
    const known = extras.deliveries.get(item.message_id);
    if (!known || (DELIVERY_RANK[item.status] || 0) >= (DELIVERY_RANK[known.status] || 0)) {
      extras.deliveries.set(item.message_id, item);
    }
  }
  conversations.updateExtras(id, [...(frame.media || []), ...(frame.deliveries || [])].map((item) => item.message_id), state);
}

async function loadChannel(id) {
  const conv = state.conversations.get(id);
  if (!conv || channelOf(conv.customer.email).key === "web") return;
  try {
    channelChanged(await api("GET", `/api/v1/channels/conversations/${id}`));
  } catch {
    /* the messages show without their attachments until the next load */
  }
}

async function loadPast(id) {
  const conv = state.conversations.get(id);
  // Looked up by the customer's address: an email, or a channel contact such as "wa:+4915…".
  if (!conv || !conv.customer.email) return;
  try {
    const data = await api("GET", `/api/v1/support/conversations?customer=${encodeURIComponent(conv.customer.email)}&limit=20`);
    conversations.renderPast(id, data.conversations);
  } catch {
    /* the panel works without its history list */
  }
}

async function loadEnded() {
  try {
    const data = await api("GET", "/api/v1/support/conversations?scope=ended&limit=50");
    for (const conv of data.conversations) if (!state.conversations.has(conv.id)) state.conversations.set(conv.id, conv);
    render();
  } catch {
    /* shown when it loads */
  }
}

function hideConversation(id) {
  conversations.closePanel(id);
  if (state.active === id) {
    const next = document.querySelector("#tabs [role=tab]");
    if (next) activate(next.dataset.id, { focus: true });
    else state.active = null;
  }
  render();
}

function activate(id, options) {
  state.active = id;
  conversations.activate(id, options);
  markSeen(id);
}

function markSeen(id) {
  const conv = state.conversations.get(id);
  if (!conv || conv.status !== "active" || !conv.unread || !isMine(conv)) return;
  if (!conversations.isVisible(id)) return;
  socket.send("read", { conversation_id: id });
}

document.addEventListener("visibilitychange", () => {
  if (document.visibilityState === "visible") for (const id of state.conversations.keys()) markSeen(id);
});

function sendReply(id, content) {
  const clientId = `a${Date.now().toString(36)}${(counter++).toString(36)}`;
  const message = { kind: "agent", sender: state.me.email, sender_name: state.me.name, content, client_id: clientId };
  conversations.appendMessage(id, message, state, { pending: true });
  stopTyping(id);
  if (socket.send("send", { conversation_id: id, client_id: clientId, content })) return;
  api("POST", `/api/v1/support/conversations/${id}/messages`, { content, client_id: clientId })
    .then((data) => acked({ conversation_id: id, message: data.message }))
    .catch((error) => refused({ client_id: clientId, detail: error.message }));
}

function typed(id) {
  const now = Date.now();
  if (now - (typingSent.get(id) || 0) > TYPING_REPEAT_MS) {
    typingSent.set(id, now);
    socket.send("typing", { conversation_id: id, state: true });
  }
  clearTimeout(typingTimers.get(id));
  typingTimers.set(id, setTimeout(() => stopTyping(id), TYPING_IDLE_MS));
}

function stopTyping(id) {
  clearTimeout(typingTimers.get(id));
  if (typingSent.get(id)) socket.send("typing", { conversation_id: id, state: false });
  typingSent.delete(id);
}

async function runAction(id, action, body) {
  conversations.showError(id, "");
  try {
    const data = await api("POST", `/api/v1/support/conversations/${id}/${action}`, body || {});
    upsert(data.conversation);
  } catch (error) {
    conversations.showError(id, error.message);
  }
}

// ------------------------------------------------------------------ admin pages

async function loadDashboard() {
  try {
    const data = await api("GET", "/api/v1/support/dashboard");
    state.agents = data.agents;
    for (const conv of data.active) state.conversations.set(conv.id, conv);
    render();
  } catch (error) {
    $("dashboard-summary").textContent = error.message;
  }
}

async function loadSettings() {
  try {
    const data = await api("GET", `/api/v1/orgs/${encodeURIComponent(state.org.id)}`);
    state.org = data.org;
    settings.fill(data.org);
  } catch (error) {
    settings.showError(error.message);
  }
}

async function saveSettings(values) {
  try {
    const data = await api("PATCH", `/api/v1/orgs/${encodeURIComponent(state.org.id)}`, { settings: values });
    state.org = data.org;
    settings.fill(data.org);
    settings.showSaved();
  } catch (error) {
    settings.showError(error.message);
  }
}

async function rotateKey() {
  if (!window.confirm("Issue a new widget key? Websites using the old snippet stop showing the chat until updated.")) return;
  try {
    const data = await api("POST", `/api/v1/orgs/${encodeURIComponent(state.org.id)}/widget-key`, {});
    state.org = data.org;
    settings.fill(data.org);
  } catch (error) {
    settings.showError(error.message);
  }
}

// ------------------------------------------------------------------ boot

if (auth.get()) start();
else showLogin();

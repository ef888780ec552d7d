// The conversations view: the lists, and one panel per customer (side by side, or tabs when narrow).
// Only this module touches the conversations' DOM; text goes in with textContent.

const KEY_ENTER = "Enter";
const KEY_LEFT = "ArrowLeft";
const KEY_RIGHT = "ArrowRight";
const IMAGE_TYPES = ["image/jpeg", "image/png", "image/gif", "image/webp"];
// A reply's state on WhatsApp or Telegram, as the messenger's ticks show it.
const DELIVERY_TICKS = { Sent: ["✓", "Sent"], Delivered: ["✓✓", "Delivered"], Read: ["✓✓", "Read"] };
// Attachments kept in memory once fetched (data URLs of images), the most recent first out last.
const MEDIA_CACHE_SIZE = 40;

function h(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === false || value === null || value === undefined) continue;
    if (name === "class") node.className = value;
    else if (name === "text") node.textContent = value;
    else if (name.startsWith("data-")) node.setAttribute(name, value);
    else if (name in node && typeof value !== "string") node[name] = value;
    else node.setAttribute(name, value === true ? "" : value);
  }
  node.append(...children.filter((c) => c !== null && c !== undefined));
  return node;
}

// External contacts are named by their channel ("wa:+4915112345678", "tg:123456789");
// everyone else came through the web widget.
const CHANNELS = { wa: "WhatsApp", tg: "Telegram", lb: "Loopback" };

export function channelOf(address) {
  const prefix = String(address || "").split(":", 1)[0];
  return Object.hasOwn(CHANNELS, prefix) && address.includes(":")
    ? { key: prefix, label: CHANNELS[prefix] } : { key: "web", label: "Web" };
}

function channelBadge(conv) {
  const channel = channelOf(conv.customer.email);
  return h("span", { class: `channel channel-${channel.key}`, title: `Came through ${channel.label}` },
    h("span", { class: "sr-only", text: "via " }), channel.label);
}

function unavailable(error) {
  const reason = (error && error.message) || "";
  return reason.startsWith("Media unavailable") ? reason : `Media unavailable: ${reason || "it cannot be loaded"}`;
}

function timeOf(iso) {
  const at = new Date(iso);
  return at.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function dateOf(iso) {
  return new Date(iso).toLocaleString([], { dateStyle: "medium", timeStyle: "short" });
}

export class ConversationsView {
  constructor(handlers) {
    this.handlers = handlers;
    this.lists = {
      mine: document.getElementById("list-mine"),
      queued: document.getElementById("list-queued"),
      bot: document.getElementById("list-bot"),
      others: document.getElementById("list-others"),
      ended: document.getElementById("list-ended"),
    };
    this.tabs = document.getElementById("tabs");
    this.panels = document.getElementById("panels");
    this.empty = document.getElementById("panels-empty");
    this.byId = new Map(); // conversation id -> { panel, tab }
    this.mediaCache = new Map(); // message id -> Promise of a data URL
    this.bind();
  }

  bind() {
    document.querySelector(".lists").addEventListener("click", (event) => {
      const button = event.target.closest("button.conv");
      if (button) this.handlers.open(button.dataset.id, { focus: true });
    });
    this.tabs.addEventListener("click", (event) => {
      const tab = event.target.closest("[role=tab]");
      if (tab) this.handlers.activate(tab.dataset.id, { focus: false });
    });
    this.tabs.addEventListener("keydown", (event) => {
      if (event.key !== KEY_LEFT && event.key !== KEY_RIGHT) return;
      const tabs = [...this.tabs.querySelectorAll("[role=tab]")];
      const at = tabs.indexOf(document.activeElement);
      if (at < 0) return;
      const next = tabs[(at + (event.key === KEY_RIGHT ? 1 : tabs.length - 1)) % tabs.length];
      this.handlers.activate(next.dataset.id, { focus: false });
      next.focus();
      event.preventDefault();
    });
    this.panels.addEventListener("click", (event) => {
      const button = event.target.closest("button[data-action]");
      if (!button) return;
      const panel = button.closest(".panel");
      const id = panel.dataset.id;
      const action = button.dataset.action;
      if (action === "hide") this.handlers.hide(id);
      else if (action === "transfer") {
        const select = panel.querySelector("select.transfer-to");
        if (select.value) this.handlers.action(id, "transfer", { agent: select.value });
      } else if (action === "past") this.handlers.open(button.dataset.target, { focus: true });
      else this.handlers.action(id, action);
    });
    this.panels.addEventListener("submit", (event) => {
      event.preventDefault();
      const panel = event.target.closest(".panel");
      this.submit(panel);
    });
    this.panels.addEventListener("keydown", (event) => {
      if (event.target.matches("textarea.reply") && event.key === KEY_ENTER && !event.shiftKey && !event.isComposing) {
        event.preventDefault();
        this.submit(event.target.closest(".panel"));
      }
    });
    this.panels.addEventListener("input", (event) => {
      if (event.target.matches("textarea.reply")) this.handlers.typing(event.target.closest(".panel").dataset.id);
    });
    this.panels.addEventListener("focusin", (event) => {
      const panel = event.target.closest(".panel");
      if (panel) this.handlers.seen(panel.dataset.id);
    });
  }

  submit(panel) {
    const textarea = panel.querySelector("textarea.reply");
    const content = textarea.value.trim();
    if (!content || textarea.disabled) return;
    textarea.value = "";
    this.handlers.send(panel.dataset.id, content);
  }

  // ------------------------------------------------------------------ lists

  renderLists(state) {
    const groups = { mine: [], queued: [], bot: [], others: [], ended: [] };
    for (const conv of state.conversations.values()) {
      if (conv.status !== "active") groups.ended.push(conv);
      else if (conv.handler === "queued") groups.queued.push(conv);
      else if (conv.handler === "bot") groups.bot.push(conv);
      else if (conv.agent === state.me.email) groups.mine.push(conv);
      else if (state.admin) groups.others.push(conv);
    }
    const newest = (a, b) => (b.last_message_at || "").localeCompare(a.last_message_at || "");
    for (const [name, list] of Object.entries(groups)) {
      list.sort(name === "queued" ? (a, b) => a.created_at.localeCompare(b.created_at) : newest);
      const items = (name === "ended" ? list.slice(0, 50) : list).map((conv) => this.listItem(conv, state));
      this.lists[name].replaceChildren(...items);
    }
  }

  listItem(conv, state) {
    const unread = conv.status === "active" && conv.unread > 0 &&
      (conv.agent === state.me.email || conv.handler !== "agent" || state.admin);
    const preview = conv.last_message ? `${conv.last_message.kind === "customer" ? "" : `${conv.last_message.sender_name || "Us"}: `}${conv.last_message.content}` : conv.customer.email;
    const ended = conv.status !== "active" ? `, ended ${dateOf(conv.ended_at || conv.last_message_at)}` : "";
    return h("li", {},
      h("button", { type: "button", class: `conv${this.byId.has(conv.id) ? " is-open" : ""}`, "data-id": conv.id },
        h("span", { class: "name" }, conv.customer.name, " ", channelBadge(conv)),
        unread ? h("span", { class: "badge" }, String(conv.unread), h("span", { class: "sr-only", text: " unread" })) : null,
        h("span", { class: "preview" }, h("span", { class: "sr-only", text: `${ended}: ` }), preview)));
  }

  // ------------------------------------------------------------------ panels

  isOpen(id) {
    return this.byId.has(id);
  }

  openPanel(conv) {
    if (this.byId.has(conv.id)) return this.byId.get(conv.id).panel;
    const id = conv.id;
    const titleId = `title-${id}`;
    const tab = h("button", { type: "button", role: "tab", class: "tab", id: `tab-${id}`, "data-id": id,
      "aria-controls": `panel-${id}`, "aria-selected": "false", tabindex: "-1" },
      h("span", { class: "tab-name", text: conv.customer.name }),
      h("span", { class: "badge", hidden: true }));
    const panel = h("section", { class: "panel", id: `panel-${id}`, role: "tabpanel", "aria-labelledby": titleId, "data-id": id },
      h("header", { class: "panel-head" },
        h("h2", { id: titleId, text: conv.customer.name }),
        h("p", { class: "email" }, channelBadge(conv), " ", conv.customer.email),
        h("p", { class: "state" }),
        h("button", { type: "button", class: "btn hide", "data-action": "hide", "aria-label": `Close the panel of ${conv.customer.name}`, text: "×" })),
      h("div", { class: "actions" },
        h("button", { type: "button", class: "btn btn-primary", "data-action": "takeover", text: "Take over" }),
        h("button", { type: "button", class: "btn", "data-action": "handback", text: "Hand back to bot" }),
        h("span", { class: "transfer" },
          h("label", { for: `transfer-${id}`, text: "Transfer to" }),
          h("select", { id: `transfer-${id}`, class: "transfer-to" }),
          h("button", { type: "button", class: "btn", "data-action": "transfer", text: "Transfer" })),
        h("button", { type: "button", class: "btn btn-danger", "data-action": "close", text: "Close conversation" })),
      h("div", { class: "log", role: "log", "aria-live": "polite", "aria-label": `Messages with ${conv.customer.name}`, tabindex: "0" },
        h("ol", { class: "items" })),
      h("p", { class: "typing", "aria-live": "polite" }),
      h("form", { class: "composer" },
        h("label", { for: `reply-${id}`, class: "sr-only", text: `Reply to ${conv.customer.name}` }),
        h("textarea", { id: `reply-${id}`, class: "reply", rows: "2", maxlength: "4096" }),
        h("button", { type: "submit", class: "btn btn-primary", text: "Send" })),
      h("p", { class: "panel-error", role: "alert" }),
      h("details", { class: "past" },
        h("summary", { text: "Past conversations with this customer" }),
        h("ul", {})));
    this.tabs.append(tab);
    this.panels.append(panel);
    this.byId.set(id, { panel, tab });
    this.empty.hidden = true;
    return panel;
  }

  closePanel(id) {
    const entry = this.byId.get(id);
    if (!entry) return;
    entry.panel.remove();
    entry.tab.remove();
    this.byId.delete(id);
    this.empty.hidden = this.byId.size > 0;
  }

  activate(id, { focus }) {
    for (const [other, { panel, tab }] of this.byId) {
      const on = other === id;
      panel.classList.toggle("is-active", on);
      tab.setAttribute("aria-selected", String(on));
      tab.tabIndex = on ? 0 : -1;
    }
    const entry = this.byId.get(id);
    if (entry && focus) {
      const reply = entry.panel.querySelector("textarea.reply");
      (reply.disabled ? entry.panel.querySelector("h2") : reply).focus({ preventScroll: false });
      entry.panel.scrollIntoView({ block: "nearest" });
    }
  }

  // Whether the agent can see the panel now: on wide screens every panel shows.
  isVisible(id) {
    const entry = this.byId.get(id);
    if (!entry) return false;
    return entry.panel.offsetParent !== null && document.visibilityState === "visible";
  }

  updatePanel(conv, state) {
    const entry = this.byId.get(conv.id);
    if (!entry) return;
    const { panel, tab } = entry;
    const me = state.me.email;
    const active = conv.status === "active";
    const mine = active && conv.handler === "agent" && conv.agent === me;
    const agentName = (email) => (state.agents.find((a) => a.email === email) || {}).name || email;
    let text;
    if (!active) {
      const why = { timeout: "timed out", closed: "closed", customer: "ended by the customer" }[conv.end_reason] || "ended";
      text = `Ended (${why})`;
    } else if (conv.handler === "queued") text = "Waiting in the queue";
    else if (conv.handler === "bot") text = "With the bot";
    else text = mine ? "With you" : `With ${agentName(conv.agent)}`;
    panel.querySelector(".state").textContent = text;

    const show = (action, on) => { panel.querySelector(`[data-action=${action}]`).hidden = !on; };
    const canManage = active && conv.handler === "agent" && (mine || state.admin);
    show("takeover", active && !mine && (conv.handler !== "agent" || state.admin));
    show("handback", canManage);
    panel.querySelector(".transfer").hidden = !canManage;
    show("close", active && (mine || state.admin || conv.handler !== "agent"));

    const select = panel.querySelector("select.transfer-to");
    const options = state.agents.filter((a) => a.online && a.email !== conv.agent);
    const previous = select.value;
    select.replaceChildren(h("option", { value: "", text: options.length ? "Choose an agent" : "Nobody else online" }),
      ...options.map((a) => h("option", { value: a.email, text: `${a.name} (${a.active_conversations})` })));
    select.value = options.some((a) => a.email === previous) ? previous : "";
    select.disabled = !options.length;
    panel.querySelector("[data-action=transfer]").disabled = !options.length;

    const textarea = panel.querySelector("textarea.reply");
    textarea.disabled = !mine;
    textarea.placeholder = mine ? "Write a reply…" : active ? "Take over to reply" : "This conversation has ended";
    panel.querySelector(".composer button").disabled = !mine;

    const badge = tab.querySelector(".badge");
    const unread = active && conv.unread > 0;
    badge.hidden = !unread;
    badge.replaceChildren(...(unread ? [String(conv.unread), h("span", { class: "sr-only", text: " unread" })] : []));
  }

  renderMessages(id, messages, state) {
    const entry = this.byId.get(id);
    if (!entry) return;
    const scroller = entry.panel.querySelector(".log");
    const log = scroller.querySelector(".items");
    const pending = [...log.querySelectorAll(".msg.pending")];
    log.replaceChildren(...messages.map((m) => this.messageItem(m, state)), ...pending);
    scroller.scrollTop = scroller.scrollHeight;
  }

  appendMessage(id, message, state, { pending = false } = {}) {
    const entry = this.byId.get(id);
    if (!entry) return;
    const scroller = entry.panel.querySelector(".log");
    const log = scroller.querySelector(".items");
    if (message.message_id && log.querySelector(`[data-id="${message.message_id}"]`)) return;
    if (message.client_id) {
      const earlier = log.querySelector(`[data-client-id="${CSS.escape(message.client_id)}"]`);
      if (earlier) earlier.remove();
    }
    const stick = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
    log.append(this.messageItem(message, state, pending));
    if (stick || pending) scroller.scrollTop = scroller.scrollHeight;
  }

  messageItem(message, state, pending = false) {
    const who = message.kind === "customer" ? message.sender_name
      : message.kind === "agent" ? (message.sender === state.me.email ? "You" : message.sender_name)
        : message.kind === "bot" ? `${message.sender_name || "Bot"} (bot)` : "";
    const li = h("li", { class: `msg msg-${message.kind}${pending ? " pending" : ""}`,
      "data-id": message.message_id || null, "data-client-id": message.client_id || null },
      who ? h("span", { class: "who", text: who }) : null,
      h("p", { class: "text", text: message.content }),
      h("div", { class: "extras" }),
      message.kind !== "system" ? h("time", { datetime: message.timestamp || "", text: pending ? "Sending…" : timeOf(message.timestamp) }) : null);
    if (message.message_id) this.renderExtras(li, message.message_id, state.channel.get(message.conversation_id));
    return li;
  }

  // ------------------------------------------------------------------ channel extras

  // Attachments and delivery states changed for these messages: redraw what shows under each.
  updateExtras(id, messageIds, state) {
    const entry = this.byId.get(id);
    if (!entry) return;
    const extras = state.channel.get(id);
    // A reader at the bottom stays there when a tick or an attachment makes a message taller.
    const scroller = entry.panel.querySelector(".log");
    const stick = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < 60;
    for (const messageId of new Set(messageIds)) {
      const li = entry.panel.querySelector(`.items [data-id="${CSS.escape(messageId)}"]`);
      if (li) this.renderExtras(li, messageId, extras);
    }
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }

  renderExtras(li, messageId, extras) {
    const box = li.querySelector(".extras");
    if (!box || !extras) return;
    const nodes = [];
    const media = extras.media.get(messageId);
    if (media) nodes.push(this.mediaNode(messageId, media));
    const delivery = extras.deliveries.get(messageId);
    if (delivery && delivery.status === "Failed") {
      const code = delivery.error_code ? ` (code ${delivery.error_code})` : "";
      nodes.push(h("p", { class: "delivery-failed", text: `Not delivered: ${delivery.error || "the platform gave no reason"}${code}` }));
    } else if (delivery && DELIVERY_TICKS[delivery.status]) {
      const [ticks, words] = DELIVERY_TICKS[delivery.status];
      nodes.push(h("p", { class: `delivery delivery-${delivery.status.toLowerCase()}` },
        h("span", { class: "ticks", "aria-hidden": "true", text: ticks }), h("span", { text: words })));
    }
    box.replaceChildren(...nodes);
  }

  mediaNode(messageId, media) {
    const what = media.filename || media.type || "file";
    if (media.error) return h("p", { class: "media-unavailable", text: `Media unavailable: ${media.error}` });
    if (!IMAGE_TYPES.includes(media.mime_type) && media.type !== "image" && media.type !== "sticker") {
      return h("p", { class: "media" },
        h("button", { type: "button", class: "btn", "data-action": "download", "data-message-id": messageId,
          "data-filename": media.filename || "", text: `Download ${what}` }));
    }
    const figure = h("figure", { class: "media" }, h("p", { class: "media-loading", text: "Loading image…" }));
    this.imageUrl(messageId).then((url) => {
      figure.replaceChildren(h("img", { src: url, alt: media.caption ? `Image from the customer: ${media.caption}` : "Image from the customer" }));
    }).catch((error) => {
      figure.replaceChildren(h("p", { class: "media-unavailable", text: unavailable(error) }));
    });
    return figure;
  }

  // An image's data URL (the console's CSP allows data: images, and no token sits in a URL).
  imageUrl(messageId) {
    let found = this.mediaCache.get(messageId);
    if (!found) {
      found = this.handlers.media(messageId).then((blob) => new Promise((resolve, reject) => {
        const reader = new FileReader();
        reader.onload = () => resolve(reader.result);
        reader.onerror = () => reject(new Error("The image cannot be read."));
        reader.readAsDataURL(blob);
      }));
      found.catch(() => this.mediaCache.delete(messageId));
      this.mediaCache.set(messageId, found);
      while (this.mediaCache.size > MEDIA_CACHE_SIZE) this.mediaCache.delete(this.mediaCache.keys().next().value);
    }
    return found;
  }

  async download(button) {
    const holder = button.parentElement;
    button.disabled = true;
    try {
      const blob = await this.handlers.media(button.dataset.messageId);
      const url = URL.createObjectURL(blob);
      const link = h("a", { href: url, download: button.dataset.filename || "attachment" });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 60_000);
      button.disabled = false;
    } catch (error) {
      holder.replaceChildren(h("span", { class: "media-unavailable", text: unavailable(error) }));
    }
  }

  setTyping(id, text) {
    const entry = this.byId.get(id);
    if (entry) entry.panel.querySelector(".typing").textContent = text;
  }

  showError(id, text) {
    const entry = this.byId.get(id);
    if (entry) entry.panel.querySelector(".panel-error").textContent = text || "";
  }

  markFailed(id, clientId) {
    const entry = this.byId.get(id);
    const item = entry && clientId && entry.panel.querySelector(`[data-client-id="${CSS.escape(clientId)}"]`);
    if (!item) return;
    item.classList.remove("pending");
    const time = item.querySelector("time");
    if (time) time.textContent = "Not sent";
  }

  renderPast(id, conversations) {
    const entry = this.byId.get(id);
    if (!entry) return;
    const others = conversations.filter((c) => c.id !== id);
    const list = entry.panel.querySelector(".past ul");
    list.replaceChildren(...(others.length ? others.map((c) => h("li", {},
      h("button", { type: "button", "data-action": "past", "data-target": c.id,
        text: `${dateOf(c.created_at)} · ${c.status === "active" ? "active" : "ended"} · ${c.message_count} messages` })))
      : [h("li", { text: "None before this one." })]));
  }
}

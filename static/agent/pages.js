// The admin pages: the live dashboard (agents' load, first responses, active conversations) and settings.

function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  return `${minutes} min ${Math.round(seconds % 60)} s`;
}

export class DashboardView {
  constructor() {
    this.summary = document.getElementById("dashboard-summary");
    this.agents = document.querySelector("#agents-table tbody");
    this.active = document.querySelector("#active-table tbody");
  }

  render(state) {
    const active = [...state.conversations.values()].filter((c) => c.status === "active");
    const count = (handler) => active.filter((c) => c.handler === handler).length;
    const online = state.agents.filter((a) => a.online).length;
    this.summary.textContent = `Routing: ${state.org.routing || (state.org.settings || {}).routing}. `
      + `${active.length} active conversation${active.length === 1 ? "" : "s"}: ${count("agent")} with agents, `
      + `${count("bot")} with the bot, ${count("queued")} queued. ${online} agent${online === 1 ? "" : "s"} online.`;
    this.agents.replaceChildren(...state.agents.map((agent) => {
      const tr = document.createElement("tr");
      const name = cell(`${agent.name} (${agent.email})${agent.role === "admin" ? ", admin" : ""}`);
      const status = cell(agent.online ? "Online" : "Offline");
      if (agent.online) status.className = "online";
      tr.append(name, status, cell(String(agent.active_conversations)),
        cell(duration(agent.first_response_avg_secs)), cell(String(agent.first_responses)));
      return tr;
    }));
    const agentName = (email) => (state.agents.find((a) => a.email === email) || {}).name || email;
    active.sort((a, b) => a.created_at.localeCompare(b.created_at));
    this.active.replaceChildren(...active.map((conv) => {
      const tr = document.createElement("tr");
      const who = conv.handler === "agent" ? agentName(conv.agent) : conv.handler === "bot" ? "Bot" : "Queue";
      tr.append(cell(`${conv.customer.name} (${conv.customer.email})`), cell(who),
        cell(new Date(conv.created_at).toLocaleTimeString()),
        cell(conv.last_message ? conv.last_message.content : ""), cell(String(conv.unread)));
      return tr;
    }));
  }
}

export class SettingsView {
  constructor(handlers) {
    this.handlers = handlers;
    this.form = document.getElementById("settings-form");
    this.error = document.getElementById("settings-error");
    this.saved = document.getElementById("settings-saved");
    this.snippet = document.getElementById("embed-snippet");
    this.tokenHint = document.getElementById("set-token-hint");
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.handlers.save(this.read());
    });
    document.getElementById("rotate-key").addEventListener("click", () => this.handlers.rotate());
  }

  fill(org) {
    const s = org.settings;
    const f = this.form.elements;
    f.routing.value = s.routing;
    f.assignment.value = s.assignment;
    f.chatbot_kind.value = s.chatbot.kind;
    f.catalogue.value = s.chatbot.catalogue;
    f.url.value = s.chatbot.url;
    f.token.value = "";
    f.token_clear.checked = false;
    f.model.value = s.chatbot.model;
    f.session_timeout.value = String(s.session_timeout);
    f.greeting.value = s.greeting;
    f.brand_color.value = s.brand_color;
    f.allowed_origins.value = s.allowed_origins.join("\n");
    this.tokenHint.textContent = s.chatbot.token_set
      ? `A token is saved (${s.chatbot.token_hint}). Leave this empty to keep it.`
      : "No token saved.";
    const host = location.origin;
    this.snippet.textContent = `<script src="${host}/widget.js" data-org="${org.widget_key}" async></script>`;
  }

  read() {
    const f = this.form.elements;
    const chatbot = { kind: f.chatbot_kind.value, catalogue: f.catalogue.value, url: f.url.value.trim(), model: f.model.value.trim() };
    if (f.token_clear.checked) chatbot.token = null;
    else if (f.token.value) chatbot.token = f.token.value;
    return {
      routing: f.routing.value,
      assignment: f.assignment.value,
      chatbot,
      session_timeout: Number.parseInt(f.session_timeout.value, 10),
      greeting: f.greeting.value,
      brand_color: f.brand_color.value,
      allowed_origins: f.allowed_origins.value.split(/\s+/).filter(Boolean),
    };
  }

  showError(message) {
    this.saved.textContent = "";
    this.error.hidden = !message;
    this.error.textContent = message || "";
  }

  showSaved() {
    this.showError("");
    this.saved.textContent = `Saved at ${new Date().toLocaleTimeString()}.`;
  }
}

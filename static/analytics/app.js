// The analytics page: pickers kept in the URL, the report fetched and drawn, refreshed every 30 s.

import { api, ApiError, auth, login, logout } from "./api.js";
import { barChart, formatNumber, lineChart } from "./charts.js";

const REFRESH_MS = 30_000;
const COMPUTING_RETRY_MS = 5_000;
const RANGES = { "1d": 1, "7d": 7, "30d": 30, "90d": 90, "365d": 365 };
const DEFAULT_BUCKET = { "1d": "hour", "7d": "day", "30d": "day", "90d": "week", "365d": "week" };
const DAY_MS = 86_400_000;
const CHANNEL_NAMES = { web: "Web", widget: "Widget", whatsapp: "WhatsApp", telegram: "Telegram" };
const HEADLINE = [
  ["conversations_started", "Conversations started", "count"],
  ["conversations_closed", "Conversations closed", "count"],
  ["messages_in", "Messages in", "count"],
  ["messages_out", "Messages out", "count"],
  ["active_people", "Active people", "count"],
  ["bot_answer_rate", "Bot answer rate", "rate"],
  ["handoffs", "Handoffs to agents", "count"],
  ["first_response_median", "Median first response", "secs"],
  ["resolution_median", "Median resolution", "secs"],
  ["queue_wait_median", "Median queue wait", "secs"],
];

const $ = (id) => document.getElementById(id);
let timer = null;
let report = null;
let me = null;

function tz() {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}

/** The page's choice, from the address: range (or from/to), bucket, org, tz. */
function readUrl() {
  const params = new URLSearchParams(location.search);
  const custom = params.get("from") && params.get("to");
  const range = custom ? "custom" : (RANGES[params.get("range")] ? params.get("range") : "30d");
  return {
    range,
    from: params.get("from"),
    to: params.get("to"),
    bucket: params.get("bucket") || DEFAULT_BUCKET[range] || "day",
    org: params.get("org") || "",
    tz: params.get("tz") || tz(),
  };
}

function writeUrl(choice) {
  const params = new URLSearchParams();
  if (choice.range === "custom") {
    params.set("from", choice.from);
    params.set("to", choice.to);
  } else {
    params.set("range", choice.range);
  }
  params.set("bucket", choice.bucket);
  if (choice.org) params.set("org", choice.org);
  if (new URLSearchParams(location.search).get("tz")) params.set("tz", choice.tz);
  history.pushState(null, "", `${location.pathname}?${params}`);
}

function query(choice) {
  const params = new URLSearchParams({ bucket: choice.bucket, tz: choice.tz });
  if (choice.range === "custom") {
    params.set("from", choice.from);
    params.set("to", choice.to);
  } else {
    const to = new Date();
    params.set("to", to.toISOString());
    params.set("from", new Date(to.getTime() - RANGES[choice.range] * DAY_MS).toISOString());
  }
  if (choice.org) params.set("org", choice.org);
  return params.toString();
}

function duration(secs) {
  if (secs === null || secs === undefined) return "–";
  if (secs < 60) return `${formatNumber(secs, 0)} s`;
  if (secs < 3600) return `${formatNumber(secs / 60)} min`;
  return `${formatNumber(secs / 3600)} h`;
}

function shown(value, kind) {
  if (kind === "rate") return value === null ? "–" : `${formatNumber(value * 100)}%`;
  if (kind === "secs") return duration(value);
  return formatNumber(value);
}

function change(now, before) {
  if (now === null || before === null || now === undefined || before === undefined) return "no earlier figure";
  if (before === 0) return now === 0 ? "no change" : "new this period";
  const pct = ((now - before) / Math.abs(before)) * 100;
  if (Math.abs(pct) < 0.05) return "no change";
  return `${pct > 0 ? "up" : "down"} ${formatNumber(Math.abs(pct))}% vs previous period`;
}

function label(iso, bucket) {
  const date = new Date(iso);
  const options = bucket === "hour"
    ? { month: "short", day: "numeric", hour: "2-digit", minute: "2-digit" }
    : { year: "numeric", month: "short", day: "numeric" };
  return date.toLocaleString("en-GB", { ...options, timeZone: report.tz });
}

function renderHeadline() {
  const list = $("headline");
  list.replaceChildren();
  for (const [key, name, kind] of HEADLINE) {
    const item = document.createElement("li");
    item.dataset.metric = key;
    const title = document.createElement("span");
    title.className = "metric-name";
    title.textContent = name;
    const value = document.createElement("span");
    value.className = "metric-value";
    value.textContent = shown(report.totals[key], kind);
    const delta = document.createElement("span");
    delta.className = "metric-change";
    delta.textContent = change(report.totals[key], report.previous.totals[key]);
    item.append(title, value, delta);
    list.append(item);
  }
  $("period").textContent = `${label(report.from, "hour")} to ${label(report.to, "hour")} (${report.tz}), by ${report.bucket}.`;
}

function series(name) {
  return report.series[name] || report.buckets.map(() => 0);
}

function renderCharts() {
  const labels = report.buckets.map((iso) => label(iso, report.bucket));
  const channels = [...new Set(Object.keys(report.series).filter((k) => k.startsWith("messages.")).map((k) => k.split(".")[1]))];
  const lines = [];
  for (const channel of channels) {
    for (const dir of ["in", "out"]) {
      lines.push({ name: `${CHANNEL_NAMES[channel] || channel} ${dir}`, values: series(`messages.${channel}.${dir}`) });
    }
  }
  const chart = (name) => document.querySelector(`[data-chart="${name}"]`);
  lineChart(chart("messages"), { title: "Messages by channel", labels, lines });
  lineChart(chart("conversations"), {
    title: "Conversations", labels,
    lines: [
      { name: "Started", values: series("conversations.started") },
      { name: "Closed", values: series("conversations.closed") },
      { name: "Handoffs", values: series("handoffs") },
      { name: "Active people", values: series("people.active") },
    ],
  });
  const minutes = (name) => series(name).map((v) => (v === null ? null : Math.round((v / 60) * 100) / 100));
  lineChart(chart("times"), {
    title: "Response times", labels, unit: " min",
    lines: [
      { name: "First response, median", values: minutes("first_response.median") },
      { name: "First response, p90", values: minutes("first_response.p90") },
      { name: "Resolution, median", values: minutes("resolution.median") },
      { name: "Queue wait, median", values: minutes("queue_wait.median") },
    ],
  });
  const replies = series("bot.replies");
  const fallbacks = series("bot.fallbacks");
  const pct = (part) => part.map((v, i) => {
    const all = replies[i] + fallbacks[i];
    return all ? Math.round((v / all) * 1000) / 10 : null;
  });
  lineChart(chart("bot"), {
    title: "Bot answer and fallback rate", labels, unit: "%",
    lines: [{ name: "Answered", values: pct(replies) }, { name: "Fell back", values: pct(fallbacks) }],
  });
  barChart(chart("intents"), {
    title: "Top intents",
    items: report.top_intents.map((i) => ({ label: i.intent, value: i.count })),
    empty: "no intent matched in this range (intents are recorded for the messenger's assistant).",
  });
  barChart(chart("agents"), {
    title: "Agents' median first response", unit: " min",
    items: report.agents.map((a) => ({
      label: a.agent,
      value: a.first_response.median === null ? null : Math.round((a.first_response.median / 60) * 100) / 100,
      note: `${a.first_response.count} first responses, p90 ${duration(a.first_response.p90)}; `
        + `${a.resolution.count} resolved, median ${duration(a.resolution.median)}`,
    })),
    empty: "no agent answered in this range.",
  });
}

function catalogueExample(text) {
  return `examples = [${JSON.stringify(text)}]`;
}

function renderFallbacks() {
  const body = $("fallbacks").tBodies[0];
  body.replaceChildren();
  if (!report.top_fallbacks.length) {
    const row = body.insertRow();
    const cell = row.insertCell();
    cell.colSpan = 4;
    cell.textContent = "No fallbacks in this range.";
    return;
  }
  for (const item of report.top_fallbacks) {
    const row = body.insertRow();
    const message = document.createElement("th");
    message.scope = "row";
    message.textContent = item.message;
    row.append(message);
    row.insertCell().textContent = formatNumber(item.count);
    row.insertCell().textContent = label(item.last, "hour");
    const button = document.createElement("button");
    button.type = "button";
    button.className = "btn btn-small";
    button.dataset.copy = item.message;
    button.textContent = "Copy as catalogue example";
    button.setAttribute("aria-label", `Copy as catalogue example: ${item.message}`);
    row.insertCell().append(button);
  }
}

function renderMore() {
  const langs = report.languages.map((l) => `${l.language} ${formatNumber(l.count)}`).join(", ");
  $("languages").textContent = `Languages of customers' messages: ${langs || "none in this range"}.`;
  const s = report.sentiment;
  $("sentiment").textContent = s.scored
    ? `Sentiment of the newest ${s.scored} customer messages (English, VADER): ${s.positive} positive, `
      + `${s.neutral} neutral, ${s.negative} negative; mean score ${formatNumber(s.mean_compound, 2)} (−1 to 1).`
      + (s.unscored ? ` ${s.unscored} in other languages are not scored.` : "")
    : "Sentiment: no customer messages to score in this range.";
}

function render() {
  $("scope-name").textContent = report.scope.org ? `· ${report.scope.org}` : "· whole messenger";
  renderHeadline();
  renderCharts();
  renderFallbacks();
  renderMore();
  const time = new Date().toLocaleTimeString("en-GB");
  // A cold start computes history in the background: show what there is,
  // say so, and ask again soon.
  $("updated").textContent = report.complete === false
    ? `Computing… the figures so far, at ${time}; the rest fills in as history is read.`
    : `Updated ${time}`;
  if (report.complete === false && !document.hidden) setTimeout(load, COMPUTING_RETRY_MS);
  document.body.dataset.loaded = "true";
}

function showError(error) {
  const box = $("error");
  box.hidden = false;
  box.textContent = error.status === 403
    ? "Analytics are for operators and for organisations' agents and admins."
    : error.message;
}

async function load() {
  const choice = readUrl();
  try {
    report = await api("GET", `/api/v1/analytics?${query(choice)}`);
    $("error").hidden = true;
    render();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return showLogin();
    showError(error);
  }
}

function syncPickers() {
  const choice = readUrl();
  $("pick-range").value = choice.range;
  $("pick-range").querySelector('option[value="custom"]').hidden = choice.range !== "custom";
  $("pick-bucket").value = choice.bucket;
  $("pick-org").value = choice.org;
}

function onPick(event) {
  const choice = readUrl();
  const target = event.target;
  if (target.id === "pick-range" && target.value !== "custom") {
    choice.range = target.value;
    choice.bucket = DEFAULT_BUCKET[choice.range];
  } else if (target.id === "pick-bucket") {
    choice.bucket = target.value;
  } else if (target.id === "pick-org") {
    choice.org = target.value;
  }
  writeUrl(choice);
  syncPickers();
  load();
}

async function copyExample(event) {
  const button = event.target.closest("button[data-copy]");
  if (!button) return;
  const text = catalogueExample(button.dataset.copy);
  try {
    await navigator.clipboard.writeText(text);
    $("copied").textContent = `Copied: ${text}`;
  } catch {
    $("copied").textContent = `Copy this line: ${text}`;
  }
}

async function downloadCsv() {
  try {
    const text = await api("GET", `/api/v1/analytics/export.csv?${query(readUrl())}`, undefined, "text/csv");
    const link = document.createElement("a");
    link.href = URL.createObjectURL(new Blob([text], { type: "text/csv" }));
    link.download = "analytics.csv";
    link.click();
    setTimeout(() => URL.revokeObjectURL(link.href), 1000);
  } catch (error) {
    showError(error);
  }
}

async function loadOrgs() {
  me = await api("GET", "/api/v1/users/me");
  const user = me.user || me;
  if (user.role === "admin" && !user.org) {
    const { orgs } = await api("GET", "/api/v1/orgs");
    const select = $("pick-org");
    for (const org of orgs) {
      const option = document.createElement("option");
      option.value = org.id;
      option.textContent = org.name;
      select.append(option);
    }
    $("org-field").hidden = false;
  }
}

function showLogin() {
  clearInterval(timer);
  $("page").hidden = true;
  $("login").hidden = false;
  $("login-email").focus();
}

async function start() {
  $("login").hidden = true;
  $("page").hidden = false;
  try {
    await loadOrgs();
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) return showLogin();
  }
  syncPickers();
  await load();
  clearInterval(timer);
  // Live figures without a reload; a hidden tab waits until it is looked at again.
  timer = setInterval(() => { if (!document.hidden) load(); }, REFRESH_MS);
}

$("login-form").addEventListener("submit", async (event) => {
  event.preventDefault();
  const box = $("login-error");
  try {
    await login($("login-email").value.trim(), $("login-password").value);
    box.hidden = true;
    await start();
  } catch (error) {
    box.hidden = false;
    box.textContent = error.status === 401 ? "Wrong email or password." : error.message;
  }
});
$("logout").addEventListener("click", async () => {
  await logout();
  showLogin();
});
$("pickers").addEventListener("change", onPick);
$("pickers").addEventListener("submit", (event) => event.preventDefault());
$("fallbacks").addEventListener("click", copyExample);
$("csv").addEventListener("click", downloadCsv);
window.addEventListener("popstate", () => { syncPickers(); load(); });

if (auth.get()) start();
else showLogin();

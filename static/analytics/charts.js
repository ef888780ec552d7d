// Charts as inline SVG, each with a text summary and its data as a table for screen readers.
// Colours come from CSS custom properties (--series-1 ... --series-6), so dark mode restyles them.

const SVG = "http://www.w3.org/2000/svg";
const WIDTH = 640;
const HEIGHT = 220;
const PAD = { left: 44, right: 12, top: 12, bottom: 28 };
const SERIES_CLASSES = 6;

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function svg(tag, attrs = {}) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, String(value));
  return node;
}

export function formatNumber(value, digits = 1) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  if (Number.isInteger(value)) return value.toLocaleString("en");
  return value.toLocaleString("en", { maximumFractionDigits: digits });
}

function niceMax(value) {
  if (value <= 0) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) if (value <= step * power) return step * power;
  return 10 * power;
}

function dataTable(caption, headers, rows) {
  const details = el("details", { class: "table-details" });
  details.append(el("summary", {}, "Data as a table"));
  const wrap = el("div", { class: "scroll" });
  const table = el("table", { class: "data" });
  table.append(el("caption", { class: "sr-only" }, caption));
  const head = el("tr");
  for (const header of headers) head.append(el("th", { scope: "col" }, header));
  const thead = el("thead");
  thead.append(head);
  table.append(thead);
  const body = el("tbody");
  for (const row of rows) {
    const tr = el("tr");
    row.forEach((cell, i) => tr.append(el(i === 0 ? "th" : "td", i === 0 ? { scope: "row" } : {}, cell)));
    body.append(tr);
  }
  table.append(body);
  wrap.append(table);
  details.append(wrap);
  return details;
}

/**
 * A line chart of several series over the buckets.
 * `lines` is [{name, values}] (null values are gaps); `labels` one label per bucket.
 */
export function lineChart(root, { title, labels, lines, unit = "" }) {
  root.replaceChildren();
  const shown = lines.filter((line) => line.values.some((v) => v !== null && v !== 0));
  const max = niceMax(Math.max(0, ...shown.flatMap((line) => line.values.filter((v) => v !== null))));
  const plotW = WIDTH - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const x = (i) => PAD.left + (labels.length <= 1 ? plotW / 2 : (i * plotW) / (labels.length - 1));
  const y = (v) => PAD.top + plotH - (v / max) * plotH;
  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", "aria-hidden": "true", focusable: "false" });
  for (const fraction of [0, 0.5, 1]) {
    chart.append(svg("line", { x1: PAD.left, x2: WIDTH - PAD.right, y1: y(max * fraction), y2: y(max * fraction), class: "grid-line" }));
    const tick = svg("text", { x: PAD.left - 6, y: y(max * fraction) + 4, class: "tick", "text-anchor": "end" });
    tick.textContent = formatNumber(max * fraction);
    chart.append(tick);
  }
  for (const i of [0, labels.length - 1]) {
    if (labels[i] === undefined) continue;
    const tick = svg("text", { x: x(i), y: HEIGHT - 8, class: "tick", "text-anchor": i === 0 ? "start" : "end" });
    tick.textContent = labels[i];
    chart.append(tick);
  }
  shown.forEach((line, n) => {
    let d = "";
    line.values.forEach((v, i) => {
      if (v === null) return;
      d += `${d && line.values[i - 1] !== null ? "L" : "M"}${x(i).toFixed(1)},${y(v).toFixed(1)}`;
    });
    const cls = `series series-${(n % SERIES_CLASSES) + 1}`;
    chart.append(svg("path", { d, class: cls, fill: "none" }));
    if (labels.length <= 60) {
      line.values.forEach((v, i) => {
        if (v !== null) chart.append(svg("circle", { cx: x(i), cy: y(v), r: 2.5, class: cls }));
      });
    }
  });
  const legend = el("ul", { class: "legend" });
  shown.forEach((line, n) => {
    const item = el("li");
    item.append(el("span", { class: `swatch series-${(n % SERIES_CLASSES) + 1}`, "aria-hidden": "true" }));
    item.append(document.createTextNode(line.name));
    legend.append(item);
  });
  const summary = el("p", { class: "summary" });
  summary.textContent = shown.length
    ? `${title}: ` + shown.map((line) => {
      const values = line.values.filter((v) => v !== null);
      const total = values.reduce((a, b) => a + b, 0);
      const peak = Math.max(...values);
      return unit
        ? `${line.name} ${formatNumber(values.length ? total / values.length : null)}${unit} on average, at most ${formatNumber(peak)}${unit}`
        : `${line.name} ${formatNumber(total)} in all, at most ${formatNumber(peak)} in one bucket`;
    }).join("; ") + "."
    : `${title}: nothing in this range.`;
  const headers = ["Bucket", ...lines.map((line) => line.name)];
  const rows = labels.map((label, i) => [label, ...lines.map((line) => formatNumber(line.values[i]))]);
  root.append(summary, chart, legend, dataTable(title, headers, rows));
}

/** Horizontal bars: `items` is [{label, value, note}]. */
export function barChart(root, { title, items, unit = "", empty }) {
  root.replaceChildren();
  const summary = el("p", { class: "summary" });
  if (!items.length) {
    summary.textContent = `${title}: ${empty}`;
    root.append(summary);
    return;
  }
  summary.textContent = `${title}: ` + items.slice(0, 3).map((item) => `${item.label} ${formatNumber(item.value)}${unit}`).join(", ")
    + (items.length > 3 ? `, and ${items.length - 3} more.` : ".");
  const max = Math.max(...items.map((item) => item.value || 0), 1);
  const list = el("ul", { class: "bars", "aria-hidden": "true" });
  for (const item of items) {
    const row = el("li");
    row.append(el("span", { class: "bar-label" }, item.label));
    const track = el("span", { class: "bar-track" });
    const bar = el("span", { class: "bar" });
    bar.style.setProperty("--size", `${((item.value || 0) / max) * 100}%`);
    track.append(bar);
    row.append(track, el("span", { class: "bar-value" }, `${formatNumber(item.value)}${unit}`));
    list.append(row);
  }
  const headers = ["Name", "Value", ...(items.some((i) => i.note) ? ["Detail"] : [])];
  const rows = items.map((item) => [item.label, formatNumber(item.value), ...(item.note ? [item.note] : [])]);
  root.append(summary, list, dataTable(title, headers, rows));
}

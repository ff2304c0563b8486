// Turns a KairosDB query answer (spec §4.5) into what the pages show and export: chart
// series (typed arrays, one O(n) pass), a table for string and other non-numeric data (or
// any data on request), CSV and JSON files saved client-side. Shared by index.html and
// view.html.
//
// Not here: running the query (the page does) or drawing (chart.js).
import { el } from "./common.js";
import { formatFull, formatValue } from "./chart.js";

const TABLE_ROWS = 2000;

/** A readable label for one result: its name (or alias) and its group-by groups. */
export function seriesName(result) {
  const parts = [];
  for (const g of result.group_by || []) {
    if (g.name === "tag" && g.group) parts.push(...Object.entries(g.group).map(([k, v]) => `${k}=${v}`));
    else if (g.name === "value" && g.group) parts.push(`value group ${g.group.group_number}`);
    else if (g.name === "time" && g.group) parts.push(`time group ${g.group.group_number}`);
    else if (g.name === "bin" && g.group) parts.push(`bin ${g.group.bin_number}`);
  }
  const name = result.alias || result.name;
  return parts.length ? `${name} {${parts.join(", ")}}` : name;
}

/**
 * Every result of every query as `{ name, result, numeric, t, v }`: numeric series get
 * Float64Arrays (null = NaN, a gap); others keep their `values`. Duplicate labels get a
 * `#n` suffix so the legend tells them apart.
 */
export function toSeries(response) {
  const out = [];
  const seen = new Map();
  for (const q of (response && response.queries) || []) {
    for (const result of q.results || []) {
      const values = result.values || [];
      let name = seriesName(result);
      const n = (seen.get(name) || 0) + 1;
      seen.set(name, n);
      if (n > 1) name = `${name} #${n}`;
      const numeric = values.every((p) => p[1] === null || typeof p[1] === "number");
      const s = { name, result, numeric, points: values.length };
      if (numeric) {
        s.t = new Float64Array(values.length);
        s.v = new Float64Array(values.length);
        for (let i = 0; i < values.length; i++) {
          s.t[i] = values[i][0];
          s.v[i] = values[i][1] === null ? NaN : values[i][1];
        }
      }
      out.push(s);
    }
  }
  return out;
}

function cell(value) {
  if (value === null) return "null";
  if (typeof value === "number") return formatValue(value);
  if (typeof value === "string") return value;
  return JSON.stringify(value);
}

/** A table of time / series / value for `series` (at most TABLE_ROWS rows shown). */
export function renderTable(container, series, tz) {
  const total = series.reduce((n, s) => n + s.points, 0);
  const rows = [];
  outer: for (const s of series) {
    for (const [t, v] of s.result.values || []) {
      if (rows.length >= TABLE_ROWS) break outer;
      rows.push(el("tr", {}, el("td", { class: "mono" }, formatFull(t, tz)), el("td", {}, s.name), el("td", { class: "mono value" }, cell(v))));
    }
  }
  container.replaceChildren(
    el(
      "div",
      { class: "table-wrap" },
      el(
        "table",
        { class: "data-table" },
        el("caption", { class: "muted" }, total > rows.length ? `First ${rows.length} of ${total} data points (export for all).` : `${total} data points.`),
        el("thead", {}, el("tr", {}, el("th", { scope: "col" }, `Time (${tz})`), el("th", { scope: "col" }, "Series"), el("th", { scope: "col" }, "Value"))),
        el("tbody", {}, rows),
      ),
    ),
  );
}

function csvField(s) {
  const text = String(s);
  return /[",\n\r]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

/**
 * CSV of every data point: series label, metric name, its tags (`k=v;...`, values joined
 * with `|`), epoch milliseconds, the time in `tz`, and the value (JSON for complex values).
 */
export function toCsv(response, tz) {
  const lines = [["series", "metric", "tags", "timestamp", `time (${tz})`, "value"].map(csvField).join(",")];
  for (const s of toSeries(response)) {
    const tags = Object.entries(s.result.tags || {}).map(([k, vs]) => `${k}=${[].concat(vs).join("|")}`).join(";");
    const prefix = [s.name, s.result.name, tags].map(csvField).join(",");
    for (const [t, v] of s.result.values || []) {
      lines.push(`${prefix},${t},${csvField(formatFull(t, tz))},${csvField(v === null ? "" : cell(v))}`);
    }
  }
  return `${lines.join("\n")}\n`;
}

/** Saves `text` as a file named `name` (a Blob and a temporary link; no server round trip). */
export function download(name, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = el("a", { href: url, download: name, hidden: true });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** `kairosdb-<metric>-<yyyymmdd-hhmmss>` for export file names. */
export function exportName(query) {
  const metric = ((query && query.metrics && query.metrics[0] && query.metrics[0].name) || "query").replace(/[^\w.-]+/g, "_");
  const d = new Date();
  const stamp = `${d.getFullYear()}${String(d.getMonth() + 1).padStart(2, "0")}${String(d.getDate()).padStart(2, "0")}-${String(d.getHours()).padStart(2, "0")}${String(d.getMinutes()).padStart(2, "0")}${String(d.getSeconds()).padStart(2, "0")}`;
  return `kairosdb-${metric}-${stamp}`;
}

/** One line saying what came back: series, points, sample size. */
export function summary(response, series) {
  const points = series.reduce((n, s) => n + s.points, 0);
  const sample = ((response && response.queries) || []).reduce((n, q) => n + (q.sample_size || 0), 0);
  return `${series.length} series · ${points.toLocaleString("en-US")} points (${sample.toLocaleString("en-US")} read)`;
}

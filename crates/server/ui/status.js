// The server status page (status.html): version, KairosDB's health checks and the
// readiness probe, the server's own figures from GET /api/v1/metrics grouped and
// human-formatted, and the running queries with a kill button. Refreshes every few
// seconds until paused. Not here: history or charts of the figures (they are also
// written into the store as kairosdb.* metrics, which the query page can chart).
import { api, el, showError, clearError, renderNav } from "./common.js";

const REFRESH_MS = 5000;
const $ = (id) => document.getElementById(id);
let timer = null;
let paused = false;

// ---- formatting ----

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

function fmtBytes(n) {
  let i = 0;
  let v = n;
  while (Math.abs(v) >= 1024 && i < UNITS.length - 1) { v /= 1024; i += 1; }
  return `${i ? v.toFixed(1) : v} ${UNITS[i]}`;
}

function fmtSeconds(s) {
  if (s === 0) return "0 s";
  if (s < 1) return `${(s * 1000).toFixed(1)} ms`;
  if (s < 120) return `${s.toFixed(2)} s`;
  return `${(s / 60).toFixed(1)} min`;
}

/** A figure's value for people, chosen by its Prometheus-style name suffix. */
export function fmtFigure(name, value) {
  if (typeof value !== "number") return String(value);
  if (name.endsWith("_bytes") || name.endsWith("_bytes_total")) return fmtBytes(value);
  if (name.endsWith("_seconds")) return fmtSeconds(value);
  return Number.isInteger(value) ? value.toLocaleString() : value.toLocaleString(undefined, { maximumFractionDigits: 3 });
}

/** Tables of the figures, by name prefix; everything else is "server". */
const GROUPS = [
  ["engine_wal_", "write-ahead log"],
  ["engine_", "storage engine"],
  ["query_cache_", "query cache"],
  ["telnet_", "telnet"],
  ["rollup_", "roll-ups"],
];

/** `kairosdb_engine_wal_bytes` → group "write-ahead log", label "bytes". */
function splitName(name) {
  const bare = name.replace(/^kairosdb_/, "");
  const [prefix, group] = GROUPS.find(([p]) => bare.startsWith(p)) || ["", "server"];
  const label = bare.slice(prefix.length).replace(/_total$/, "").replaceAll("_", " ");
  return { group, label };
}

// ---- rendering ----

function renderHealth(version, checks, ready) {
  $("version").textContent = version.version || "?";
  $("ready").replaceChildren(badge(ready.ok, ready.ok ? "ready" : `not ready${ready.detail ? `: ${ready.detail}` : ""}`));
  $("checks").replaceChildren(...checks.map((line) => {
    const [name, result] = line.split(/:\s*/);
    return el("li", {}, badge(result === "OK", result || "?"), " ", name);
  }));
}

function badge(ok, text) {
  return el("span", { class: `badge ${ok ? "ok" : "fail"}` }, text);
}

function renderMetrics(figures) {
  const groups = new Map();
  for (const [name, value] of Object.entries(figures).sort(([a], [b]) => a.localeCompare(b))) {
    const { group, label } = splitName(name);
    if (!groups.has(group)) groups.set(group, []);
    groups.get(group).push(el("tr", { title: name },
      el("th", { scope: "row" }, label),
      el("td", { class: "num", "data-name": name }, fmtFigure(name, value))));
  }
  const order = ["server", ...GROUPS.map(([, g]) => g)];
  const sorted = [...groups].sort(([a], [b]) => order.indexOf(a) - order.indexOf(b));
  $("metrics").replaceChildren(...sorted.map(([group, rows]) => el("table", { class: "figures" },
    el("caption", {}, group),
    el("tbody", {}, rows))));
}

function renderQueries(answer) {
  const queries = answer.queries || [];
  const waiting = answer["queries waiting"] || 0;
  const note = el("p", { class: "muted" }, `${queries.length} running, ${waiting} waiting for a query slot.`);
  if (!queries.length) {
    $("queries").replaceChildren(note);
    return;
  }
  $("queries").replaceChildren(note, el("table", {},
    el("thead", {}, el("tr", {}, ["Metric", "Query", "Hash", ""].map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, queries.map(queryRow))));
}

function queryRow(q) {
  const hash = q["query hash"];
  const json = JSON.stringify(q["query JSON"]);
  return el("tr", {},
    el("td", { class: "mono" }, q["metric name"]),
    el("td", {}, el("details", {}, el("summary", {}, "JSON"), el("pre", { class: "mono wrap" }, json))),
    el("td", { class: "mono" }, hash.slice(0, 12)),
    el("td", {}, el("button", { type: "button", class: "danger", onclick: () => kill(hash) }, "Kill")));
}

async function kill(hash) {
  clearError($("kill-error"));
  try {
    await api(`/api/v1/admin/killquery/${encodeURIComponent(hash)}`);
  } catch (e) {
    showError($("kill-error"), e);
  }
  refresh();
}

// ---- loading ----

/** `/health/ready`: 200 or 503, both with `{"status", "detail"?}`; both are answers. */
async function readiness() {
  let response;
  try {
    response = await fetch("/health/ready");
  } catch (e) {
    return { ok: false, detail: e.message };
  }
  const body = await response.json().catch(() => ({}));
  return { ok: response.ok, detail: body.detail || "" };
}

async function refresh() {
  clearTimeout(timer);
  try {
    const [version, checks, ready, figures, running] = await Promise.all([
      api("/api/v1/version"), api("/api/v1/health/status"), readiness(),
      api("/api/v1/metrics"), api("/api/v1/admin/runningqueries"),
    ]);
    clearError($("status-error"));
    renderHealth(version, checks, ready);
    renderMetrics(figures);
    renderQueries(running);
    $("updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
  } catch (e) {
    showError($("status-error"), e);
  }
  if (!paused) timer = setTimeout(refresh, REFRESH_MS);
}

function togglePause() {
  paused = !paused;
  $("pause").setAttribute("aria-pressed", String(paused));
  $("pause").textContent = paused ? "Resume refresh" : "Pause refresh";
  if (paused) clearTimeout(timer);
  else refresh();
}

function init() {
  renderNav("status.html");
  $("pause").addEventListener("click", togglePause);
  $("refresh").addEventListener("click", refresh);
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && !paused) refresh();
  });
  refresh();
}

init();

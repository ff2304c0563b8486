// The query builder page (index.html, spec §10): metric tabs with name and tag
// autocompletion, relative/absolute time range in a chosen time zone, the aggregator and
// group-by editors (editor.js, from /api/v1/features), Graph (chart.js) or table,
// show query with a shareable view.html link, CSV/JSON export, delete-by-query with a
// confirmation, and the whole query in the URL (`?q=<query JSON>&tab=&view=`) so Reload
// and Back restore it.
//
// Not here: how the chart draws (chart.js), how answers become series and files
// (results.js), the editors (editor.js).
import { api, el, showError, clearError, renderNav, readUrlState, writeUrlState } from "./common.js";
import { aggregatorEditor, groupByEditor } from "./editor.js";
import { combobox } from "./combobox.js";
import { TimeChart, zoned, fromZoned } from "./chart.js";
import { toSeries, renderTable, toCsv, download, exportName, summary } from "./results.js";

const UNITS = ["milliseconds", "seconds", "minutes", "hours", "days", "weeks", "months", "years"];
const $ = (id) => document.getElementById(id);

renderNav("index.html");

// Started at once and in parallel; the page renders its static parts meanwhile.
const featuresP = api("/api/v1/features");
const metricNamesP = api("/api/v1/metricnames").then((r) => r.results || []);
metricNamesP.catch(() => {});

const page = {
  features: [],
  metrics: [], // one per tab: { name, tab, panel, value() }
  active: 0,
  chart: null,
  response: null,
  query: null,
  runs: 0,
  controller: null,
};

// ---------------------------------------------------------------------------------------
// Time range and time zone

function initTime() {
  for (const id of ["start-rel-unit", "end-rel-unit"]) {
    $(id).replaceChildren(...UNITS.map((u) => el("option", { value: u }, u)));
  }
  $("start-rel-unit").value = "hours";
  $("end-rel-unit").value = "minutes";
  const here = modernZone(Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC");
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone").map(modernZone) : [];
  const all = [...new Set(["UTC", here, ...zones])].sort();
  $("tz").replaceChildren(...all.map((z) => el("option", { value: z }, z === here ? `${z} (this browser)` : z)));
  $("tz").value = here;
  for (const which of ["start", "end"]) $(`${which}-mode`).addEventListener("change", () => showMode(which));
  $("tz").addEventListener("change", () => page.chart && page.chart.setTimeZone($("tz").value));
  document.querySelectorAll("[data-preset]").forEach((b) =>
    b.addEventListener("click", () => {
      const [value, unit] = b.dataset.preset.split(" ");
      setTime("start", { start_relative: { value: Number(value), unit } }, "start");
      setTime("end", {}, "end");
      run();
    }),
  );
}

// ICU still lists some zones under their old IANA names; offer the current ones (the
// server and the browser accept both).
const RENAMED = {
  "Asia/Calcutta": "Asia/Kolkata",
  "Asia/Katmandu": "Asia/Kathmandu",
  "Asia/Rangoon": "Asia/Yangon",
  "Asia/Saigon": "Asia/Ho_Chi_Minh",
  "Europe/Kiev": "Europe/Kyiv",
  "America/Godthab": "America/Nuuk",
  "Atlantic/Faeroe": "Atlantic/Faroe",
};
const modernZone = (z) => RENAMED[z] || z;

function showMode(which) {
  const mode = $(`${which}-mode`).value;
  document.querySelector(`.rel[data-for="${which}"]`).hidden = mode !== "relative";
  document.querySelector(`.abs[data-for="${which}"]`).hidden = mode !== "absolute";
}

/** `YYYY-MM-DDTHH:mm:ss.SSS` of `t` in the chosen zone, for a datetime-local input. */
function localInput(t, tz) {
  const z = zoned(t, tz);
  const p = (n, w = 2) => String(n).padStart(w, "0");
  return `${z.year}-${p(z.month)}-${p(z.day)}T${p(z.hour)}:${p(z.minute)}:${p(z.second)}.${p(z.ms, 3)}`;
}

/** Epoch ms of a datetime-local value read in `tz`, or an Error naming the field. */
function parseLocal(text, tz, label) {
  const m = /^(\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3}))?)?$/.exec(text);
  if (!m) throw new Error(`${label}: enter a date and time.`);
  const [, y, mo, d, h, mi, s = "0", ms = "0"] = m;
  return fromZoned(Date.UTC(+y, +mo - 1, +d, +h, +mi, +s, +ms.padEnd(3, "0")), tz);
}

function readTime(which, tz) {
  const mode = $(`${which}-mode`).value;
  const label = which === "start" ? "Start" : "End";
  if (mode === "relative") {
    const value = $(`${which}-rel-value`).value.trim();
    if (value === "" || !(Number(value) >= 0)) throw new Error(`${label}: enter how many ${$(`${which}-rel-unit`).value} ago (0 or more).`);
    return { [`${which}_relative`]: { value: Number(value), unit: $(`${which}-rel-unit`).value } };
  }
  if (mode === "absolute") return { [`${which}_absolute`]: parseLocal($(`${which}-abs`).value, tz, label) };
  return {};
}

/** Sets one end of the range from a query object (absent = "none" for the end). */
function setTime(which, q, _label) {
  const tz = $("tz").value;
  const rel = q[`${which}_relative`];
  const abs = q[`${which}_absolute`];
  if (abs !== undefined && abs !== null) {
    $(`${which}-mode`).value = "absolute";
    $(`${which}-abs`).value = localInput(Number(abs), tz);
  } else if (rel) {
    $(`${which}-mode`).value = "relative";
    $(`${which}-rel-value`).value = rel.value;
    $(`${which}-rel-unit`).value = String(rel.unit).toLowerCase();
  } else {
    $(`${which}-mode`).value = which === "end" ? "none" : "relative";
  }
  showMode(which);
}

// ---------------------------------------------------------------------------------------
// Metric tabs

let tabUid = 0;

function addMetric(m = {}, focus = true) {
  const n = ++tabUid;
  const tab = el("button", { type: "button", role: "tab", id: `tab-${n}`, "aria-controls": `panel-${n}`, "aria-selected": "false", tabindex: "-1" });
  const metric = metricPanel(m, n, () => (tab.textContent = tabLabel(metric)));
  metric.tab = tab;
  tab.textContent = tabLabel(metric);
  tab.addEventListener("click", () => selectTab(page.metrics.indexOf(metric)));
  tab.addEventListener("keydown", tabKeys);
  page.metrics.push(metric);
  $("metric-tabs").append(tab);
  $("metric-panels").append(metric.panel);
  if (focus) {
    selectTab(page.metrics.length - 1);
    metric.nameInput.focus();
  }
  updateRemoveButtons();
  return metric;
}

function tabLabel(metric) {
  const i = page.metrics.indexOf(metric);
  return `${i < 0 ? page.metrics.length + 1 : i + 1}: ${metric.nameInput.value.trim() || "new metric"}`;
}

function tabKeys(e) {
  const i = page.active;
  const n = page.metrics.length;
  const to = { ArrowRight: (i + 1) % n, ArrowLeft: (i - 1 + n) % n, Home: 0, End: n - 1 }[e.key];
  if (to === undefined) return;
  e.preventDefault();
  selectTab(to);
  page.metrics[to].tab.focus();
}

function selectTab(i) {
  page.active = Math.max(0, Math.min(i, page.metrics.length - 1));
  page.metrics.forEach((m, j) => {
    const on = j === page.active;
    m.tab.setAttribute("aria-selected", String(on));
    m.tab.tabIndex = on ? 0 : -1;
    m.panel.hidden = !on;
  });
}

function removeMetric(metric) {
  const i = page.metrics.indexOf(metric);
  page.metrics.splice(i, 1);
  metric.tab.remove();
  metric.panel.remove();
  page.metrics.forEach((m) => (m.tab.textContent = tabLabel(m)));
  selectTab(Math.min(i, page.metrics.length - 1));
  updateRemoveButtons();
}

function updateRemoveButtons() {
  for (const m of page.metrics) m.removeButton.hidden = page.metrics.length < 2;
}

function setMetrics(list) {
  page.metrics = [];
  $("metric-tabs").replaceChildren();
  $("metric-panels").replaceChildren();
  for (const m of list.length ? list : [{}]) addMetric(m, false);
  selectTab(0);
}

/** The panel of one metric: name, tag filters, aggregators, group-by, options. */
function metricPanel(m, n, renamed) {
  const id = (s) => `${s}-${n}`;
  const nameInput = el("input", { type: "text", id: id("name"), class: "metric-name", placeholder: "metric name", value: m.name || "", spellcheck: "false" });
  const nameError = el("div", { class: "error-box", hidden: true });
  const tagsInfo = el("div", { class: "tag-names", "aria-live": "polite" });
  const tagRows = el("div", { class: "tag-rows" });
  const tagError = el("div", { class: "error-box", hidden: true });
  const aggBox = el("div", { class: "aggregators" });
  const gbBox = el("div", { class: "group-bys" });
  const alias = el("input", { type: "text", id: id("alias"), value: m.alias || "" });
  const limit = el("input", { type: "number", id: id("limit"), min: 0, step: 1, class: "num", value: m.limit || "" });
  const order = el("select", { id: id("order") }, el("option", { value: "asc" }, "ascending"), el("option", { value: "desc" }, "descending"));
  order.value = String(m.order || "asc").toLowerCase();
  const exclude = el("input", { type: "checkbox", id: id("exclude"), checked: m.exclude_tags === true });
  const removeButton = el("button", { type: "button", class: "danger remove-metric" }, "Remove this metric");

  const metric = { nameInput, tags: null };
  let tagsFor = null;
  const loadTags = async () => {
    const name = nameInput.value.trim();
    if (!name || name === tagsFor) return metric.tags;
    tagsFor = name;
    clearError(tagError);
    try {
      const r = await api("/api/v1/datapoints/query/tags", { method: "POST", body: { cache_time: 0, start_absolute: 0, metrics: [{ name, tags: {} }] } });
      metric.tags = (r.queries[0] && r.queries[0].results[0] && r.queries[0].results[0].tags) || {};
    } catch (e) {
      metric.tags = {};
      tagsFor = null;
      showError(tagError, e);
    }
    renderTagNames();
    return metric.tags;
  };
  const renderTagNames = () => {
    const names = Object.keys(metric.tags || {});
    tagsInfo.replaceChildren(
      names.length ? el("span", { class: "muted" }, "Tags: ") : el("span", { class: "muted" }, nameInput.value.trim() ? "No tags found for this metric." : ""),
      ...names.map((t) =>
        el("button", { type: "button", class: "chip", title: `Filter on ${t} (${metric.tags[t].length} values)`, onclick: () => addTagRow(t, "", true) }, `${t} (${metric.tags[t].length})`),
      ),
    );
  };
  const addTagRow = (name = "", values = "", focusValue = false) => {
    const k = el("input", { type: "text", class: "tag-name", "aria-label": "Tag name", placeholder: "tag", value: name });
    const v = el("input", { type: "text", class: "tag-values", "aria-label": "Tag values (comma-separated; regex: prefix allowed)", placeholder: "value, value…", value: values });
    const row = el(
      "div",
      { class: "tag-row row" },
      el("span", { class: "field" }, k),
      el("span", { class: "eq" }, "="),
      el("span", { class: "field grow" }, v),
      el("button", { type: "button", class: "icon", "aria-label": "Remove tag filter", title: "Remove", onclick: () => row.remove() }, "✕"),
    );
    tagRows.append(row);
    combobox(k, async () => Object.keys((await loadTags()) || {}), { onPick: () => v.focus() });
    combobox(v, async () => ((await loadTags()) || {})[k.value.trim()] || [], { multi: true });
    (focusValue ? v : k).focus();
  };
  for (const [k, vs] of Object.entries(m.tags || {})) addTagRow(k, [].concat(vs).join(", "));


  const tagNames = () => Object.keys(metric.tags || {});
  metric.aggs = aggregatorEditor(aggBox, page.features, m.aggregators || []);
  metric.groupBys = groupByEditor(gbBox, page.features, m.group_by || [], { tagNames });

  const panel = el(
    "div",
    { role: "tabpanel", id: `panel-${n}`, "aria-labelledby": `tab-${n}`, class: "metric-panel", hidden: true },
    el("div", { class: "row" }, el("label", { for: id("name"), class: "grow" }, "Metric name", el("span", { class: "field" }, nameInput)), removeButton),
    nameError,
    el("div", { class: "tags-section" }, el("h3", {}, "Tag filters"), tagsInfo, tagRows, el("button", { type: "button", class: "add-tag", onclick: () => addTagRow() }, "+ Tag filter"), tagError),
    el("div", { class: "editors" }, el("div", {}, el("h3", {}, "Aggregators"), aggBox), el("div", {}, el("h3", {}, "Group by"), gbBox)),
    el(
      "details",
      { class: "options", open: m.alias || m.limit || m.exclude_tags || (m.order && m.order !== "asc") ? true : null },
      el("summary", {}, "More options"),
      el("div", { class: "row" }, el("label", { for: id("alias") }, "Alias", alias), el("label", { for: id("limit") }, "Limit (per group)", limit), el("label", { for: id("order") }, "Order", order), el("label", { for: id("exclude"), class: "check" }, exclude, "Exclude tags from the answer")),
    ),
  );
  removeButton.addEventListener("click", () => removeMetric(metric));
  combobox(nameInput, () => metricNamesP, {
    onPick: () => {
      renamed();
      loadTags();
    },
  });
  metricNamesP.catch((e) => showError(nameError, e));
  nameInput.addEventListener("input", renamed);
  nameInput.addEventListener("change", () => loadTags());
  if (m.name) loadTags();

  Object.assign(metric, {
    panel,
    removeButton,
    focusName: () => nameInput.focus(),
    value: (i) => {
      const name = nameInput.value.trim();
      if (!name) {
        selectTab(i);
        nameInput.focus();
        throw new Error(`Metric ${i + 1}: enter a metric name.`);
      }
      const out = { name };
      const tags = {};
      for (const row of tagRows.querySelectorAll(".tag-row")) {
        const k = row.querySelector(".tag-name").value.trim();
        const vs = row.querySelector(".tag-values").value.split(",").map((s) => s.trim()).filter(Boolean);
        if (!k && !vs.length) continue;
        if (!k || !vs.length) throw new Error(`Metric ${i + 1}: a tag filter needs a name and at least one value.`);
        tags[k] = (tags[k] || []).concat(vs);
      }
      if (Object.keys(tags).length) out.tags = tags;
      const aggregators = metric.aggs.value();
      if (aggregators.length) out.aggregators = aggregators;
      const groupBy = metric.groupBys.value();
      if (groupBy.length) out.group_by = groupBy;
      if (alias.value.trim()) out.alias = alias.value.trim();
      if (Number(limit.value) > 0) out.limit = Number(limit.value);
      if (order.value === "desc") out.order = "desc";
      if (exclude.checked) out.exclude_tags = true;
      return out;
    },
  });
  return metric;
}

// ---------------------------------------------------------------------------------------
// The query: form <-> JSON <-> URL

function buildQuery() {
  const tz = $("tz").value;
  const q = { ...readTime("start", tz), ...readTime("end", tz) };
  if (q.start_absolute !== undefined && q.end_absolute !== undefined && q.end_absolute < q.start_absolute) {
    throw new Error("End: must not be before the start.");
  }
  q.time_zone = tz;
  q.metrics = page.metrics.map((m, i) => m.value(i));
  return q;
}

function loadQuery(q) {
  if (q.time_zone) {
    const tz = $("tz");
    if (![...tz.options].some((o) => o.value === q.time_zone)) tz.append(el("option", { value: q.time_zone }, q.time_zone));
    tz.value = q.time_zone;
  }
  setTime("start", q);
  setTime("end", q);
  setMetrics(Array.isArray(q.metrics) ? q.metrics : []);
}

/** Restores the builder from the URL; true when it held a query. */
function restoreFromUrl() {
  const state = readUrlState();
  $("view-table").checked = state.view === "table";
  if (!state.q) {
    setMetrics([]);
    return false;
  }
  try {
    loadQuery(JSON.parse(state.q));
  } catch (e) {
    setMetrics([]);
    showError($("run-error"), new Error(`The query in the address is not valid JSON (${e.message}).`));
    return false;
  }
  selectTab(Number(state.tab) || 0);
  return true;
}

function urlState(q) {
  return { q: JSON.stringify(q), tab: page.active ? String(page.active) : "", view: $("view-table").checked ? "table" : "" };
}

// ---------------------------------------------------------------------------------------
// Running and showing results

/** Builds the query or shows why it cannot be built (next to Graph); null then. */
function queryOrError() {
  clearError($("run-error"));
  try {
    return buildQuery();
  } catch (e) {
    showError($("run-error"), e);
    return null;
  }
}

async function run({ push = true } = {}) {
  const q = queryOrError();
  if (!q) return;
  if (push) writeUrlState(urlState(q), true);
  if (page.controller) page.controller.abort();
  const controller = new AbortController();
  page.controller = controller;
  const status = $("status");
  status.textContent = "Running…";
  $("graph").setAttribute("aria-busy", "true");
  const started = performance.now();
  let response;
  try {
    response = await api("/api/v1/datapoints/query", { method: "POST", body: q, signal: controller.signal });
  } catch (e) {
    if (e.name === "AbortError") return;
    status.textContent = "";
    showError($("run-error"), e);
    return;
  } finally {
    if (page.controller === controller) $("graph").removeAttribute("aria-busy");
  }
  const took = performance.now() - started;
  page.response = response;
  page.query = q;
  $("export-csv").disabled = false;
  $("export-json").disabled = false;
  const drawn = showResults();
  status.textContent = `${summary(response, page.series)} · query ${Math.round(took)} ms${drawn !== null ? ` · drawn ${drawn.toFixed(1)} ms` : ""}`;
  page.runs++;
  document.body.dataset.runs = String(page.runs);
}

/** Chart for numeric series, table for the rest (or everything in table view). */
function showResults() {
  const series = toSeries(page.response);
  page.series = series;
  const tz = $("tz").value;
  const tableView = $("view-table").checked;
  const numeric = series.filter((s) => s.numeric);
  const other = tableView ? series : series.filter((s) => !s.numeric);
  const chartBox = $("chart");
  let drawn = null;
  if (!tableView && (numeric.length || !other.length)) {
    if (!page.chart) page.chart = new TimeChart(chartBox, { timeZone: tz });
    page.chart.setTimeZone(tz);
    chartBox.hidden = false;
    page.chart.setData(numeric);
    drawn = page.chart.lastDrawMs;
  } else {
    chartBox.hidden = true;
  }
  const table = $("table");
  if (other.length) renderTable(table, other, tz);
  else table.replaceChildren();
  return drawn;
}

// ---------------------------------------------------------------------------------------
// Show query, export, roll-up link, delete

function showQuery() {
  const q = queryOrError();
  if (!q) return;
  const json = JSON.stringify(q, null, 2);
  $("query-json").textContent = json;
  $("share-link").href = `view.html?q=${encodeURIComponent(JSON.stringify(q))}`;
  const params = new URLSearchParams(urlState(q));
  $("builder-link").href = `index.html?${params}`;
  $("copy-status").textContent = "";
  $("query-dialog").showModal();
}

async function copyQuery() {
  const text = $("query-json").textContent;
  try {
    await navigator.clipboard.writeText(text);
    $("copy-status").textContent = "Copied.";
  } catch {
    const range = document.createRange();
    range.selectNodeContents($("query-json"));
    getSelection().removeAllRanges();
    getSelection().addRange(range);
    $("copy-status").textContent = "Selected: press Ctrl+C to copy.";
  }
}

function exportAs(kind) {
  if (!page.response) return;
  const name = exportName(page.query);
  if (kind === "csv") download(`${name}.csv`, toCsv(page.response, $("tz").value), "text/csv");
  else download(`${name}.json`, `${JSON.stringify(page.response, null, 2)}\n`, "application/json");
}

/** The query without the parts a delete ignores (aggregators, group-by, limit, order). */
function deleteQuery(q) {
  return { ...q, metrics: q.metrics.map(({ name, tags }) => (tags ? { name, tags } : { name })) };
}

function describeRange(q) {
  const tz = q.time_zone;
  const when = (which) => {
    const abs = q[`${which}_absolute`];
    const rel = q[`${which}_relative`];
    if (abs !== undefined) return `${localInput(abs, tz).replace("T", " ")} (${tz})`;
    if (rel) return `${rel.value} ${rel.unit} ago`;
    return null;
  };
  const end = when("end");
  return `from ${when("start")} to ${end || "the end of time (no end is set, so future points too)"}`;
}

let pendingDelete = null;

async function askDelete() {
  const q = queryOrError();
  if (!q) return;
  const dq = deleteQuery(q);
  const what = $("delete-what");
  clearError($("delete-error"));
  what.replaceChildren(
    el("p", {}, "Every data point of:"),
    el(
      "ul",
      {},
      dq.metrics.map((m) =>
        el("li", {}, el("strong", { class: "mono" }, m.name), m.tags ? ` where ${Object.entries(m.tags).map(([k, v]) => `${k} = ${v.join(" or ")}`).join(" and ")}` : " (all series)"),
      ),
    ),
    el("p", {}, describeRange(dq), "."),
    el("p", { class: "delete-count", "aria-live": "polite" }, "Counting the data points…"),
    el("p", { class: "muted" }, "Aggregators and group-by do not narrow a delete. This cannot be undone."),
  );
  pendingDelete = dq;
  const confirm = $("delete-confirm");
  confirm.disabled = true;
  confirm.textContent = "Delete";
  $("delete-dialog").showModal();
  $("delete-cancel").focus();
  try {
    const r = await api("/api/v1/datapoints/query", { method: "POST", body: dq });
    const points = r.queries.reduce((n, x) => n + (x.sample_size || 0), 0);
    const series = r.queries.reduce((n, x) => n + x.results.filter((res) => res.values.length).length, 0);
    what.querySelector(".delete-count").textContent = `${points.toLocaleString("en-US")} data point${points === 1 ? "" : "s"} in ${series} series will be deleted.`;
    confirm.textContent = `Delete ${points.toLocaleString("en-US")} data point${points === 1 ? "" : "s"}`;
  } catch (e) {
    what.querySelector(".delete-count").textContent = "";
    showError($("delete-error"), e);
  }
  confirm.disabled = false;
}

async function confirmDelete() {
  if (!pendingDelete) return;
  const confirm = $("delete-confirm");
  confirm.disabled = true;
  try {
    await api("/api/v1/datapoints/delete", { method: "POST", body: pendingDelete });
  } catch (e) {
    showError($("delete-error"), e);
    confirm.disabled = false;
    return;
  }
  pendingDelete = null;
  $("delete-dialog").close();
  await run({ push: false });
  $("status").textContent = `Deleted. ${$("status").textContent}`;
}

// ---------------------------------------------------------------------------------------
// Wiring

function wire() {
  $("query-form").addEventListener("submit", (e) => {
    e.preventDefault();
    run();
  });
  document.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) {
      e.preventDefault();
      run();
    }
  });
  $("add-metric").addEventListener("click", () => addMetric({}));
  $("view-table").addEventListener("change", () => {
    if (page.response) showResults();
    if (page.query) writeUrlState(urlState(page.query), false);
  });
  $("show-query").addEventListener("click", showQuery);
  $("copy-query").addEventListener("click", copyQuery);
  $("export-csv").addEventListener("click", () => exportAs("csv"));
  $("export-json").addEventListener("click", () => exportAs("json"));
  $("make-rollup").addEventListener("click", (e) => {
    const q = queryOrError();
    if (!q) e.preventDefault();
    else e.currentTarget.href = `rollups.html?new=${encodeURIComponent(JSON.stringify(q))}`;
  });
  $("delete").addEventListener("click", askDelete);
  $("delete-cancel").addEventListener("click", () => $("delete-dialog").close());
  $("delete-confirm").addEventListener("click", confirmDelete);
  window.addEventListener("popstate", () => {
    if (restoreFromUrl()) run({ push: false });
  });
}

async function start() {
  initTime();
  wire();
  try {
    page.features = await featuresP;
  } catch (e) {
    showError($("run-error"), new Error(`Cannot load the aggregator list (${e.message}); the editors are empty.`));
  }
  if (restoreFromUrl()) run({ push: false });
  // Milliseconds from navigation start until the builder can be used (tests read it).
  document.body.dataset.readyMs = performance.now().toFixed(0);
  document.body.dataset.ready = "true";
}

start();

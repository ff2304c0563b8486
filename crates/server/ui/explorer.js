// The metric explorer (explorer.html): every metric name with a filter box, and for the
// chosen metric its tags and values, how many series and points it has in a chosen time
// range, its first and last point, a link to the query page and delete-with-confirmation.
// Not here: querying or charting values (index.html does that) or editing data.
//
// The series count comes from a data query grouped by every tag name of the metric with
// one `count` bucket over the range: each result group is one distinct tag combination,
// i.e. one series that has points in the range (the tags query only returns the union of
// values, not the combinations). Series without points in the range are not counted.
import {
  api, el, showError, clearError, renderNav, debounce, readUrlState, writeUrlState,
} from "./common.js";

/** Time ranges offered for the tags, series and point figures; `null` = all time. */
const RANGES = [
  ["1h", "Last hour", { value: 1, unit: "hours" }],
  ["24h", "Last 24 hours", { value: 24, unit: "hours" }],
  ["7d", "Last 7 days", { value: 7, unit: "days" }],
  ["30d", "Last 30 days", { value: 30, unit: "days" }],
  ["all", "All time", null],
];
const DEFAULT_RANGE = "24h";
/** Names drawn at once; the filter narrows the rest. */
const MAX_NAMES = 500;
/** Values shown per tag before a "show all" button. */
const MAX_VALUES = 50;

const $ = (id) => document.getElementById(id);
const state = { metric: "", filter: "", range: DEFAULT_RANGE };
let names = [];
let detailAbort = null;

function loadState() {
  const s = readUrlState();
  state.metric = s.metric || "";
  state.filter = s.filter || "";
  state.range = RANGES.some(([k]) => k === s.range) ? s.range : DEFAULT_RANGE;
}

function saveState(push) {
  writeUrlState({
    metric: state.metric,
    filter: state.filter,
    range: state.range === DEFAULT_RANGE ? "" : state.range,
  }, push);
}

/** The query's time fields for the chosen range. */
function rangeFields(key) {
  const range = RANGES.find(([k]) => k === key)[2];
  return range ? { start_relative: range } : { start_absolute: 0 };
}

function linkFor(name) {
  const p = new URLSearchParams({ metric: name });
  if (state.filter) p.set("filter", state.filter);
  if (state.range !== DEFAULT_RANGE) p.set("range", state.range);
  return `explorer.html?${p}`;
}

// ---- the name list ----

async function loadNames() {
  clearError($("names-error"));
  $("names-count").textContent = "Loading metric names…";
  try {
    const answer = await api("/api/v1/metricnames");
    names = (answer.results || []).slice().sort();
  } catch (e) {
    names = [];
    $("names-count").textContent = "";
    showError($("names-error"), e);
    return;
  }
  renderNames();
}

function renderNames() {
  const needle = state.filter.toLowerCase();
  const matching = needle ? names.filter((n) => n.toLowerCase().includes(needle)) : names;
  const shown = matching.slice(0, MAX_NAMES);
  $("names").replaceChildren(...shown.map((n) => el("li", {},
    el("a", {
      href: linkFor(n),
      class: "mono",
      "aria-current": n === state.metric ? "true" : null,
      onclick: (ev) => { ev.preventDefault(); select(n); },
    }, n))));
  let text = `${matching.length} of ${names.length} metric names`;
  if (!names.length) text = "No metrics yet: write some data points first.";
  else if (matching.length > shown.length) text += ` (first ${MAX_NAMES} shown; type to narrow)`;
  $("names-count").textContent = text;
}

function select(name) {
  state.metric = name;
  saveState(true);
  renderNames();
  loadDetail();
}

// ---- the detail panel ----

function statItem(label, id) {
  return el("div", {}, el("dt", {}, label), el("dd", { id }, "…"));
}

function rangeSelect() {
  return el("label", {}, "Time range",
    el("select", { id: "range", onchange: (ev) => { state.range = ev.target.value; saveState(false); loadDetail(); } },
      RANGES.map(([k, label]) => el("option", { value: k, selected: k === state.range }, label))));
}

/** The query page (query.js) reads its whole query from `?q=<query JSON>`. */
function queryHref(name) {
  const q = { ...rangeFields(state.range), metrics: [{ name }] };
  return `index.html?q=${encodeURIComponent(JSON.stringify(q))}`;
}

function renderDetailFrame(name) {
  $("detail-h").replaceChildren(el("span", { class: "mono" }, name));
  const queryLink = el("a", { class: "button primary", id: "query-link", href: queryHref(name) }, "Query this metric");
  const del = el("button", { type: "button", class: "danger", id: "delete-metric", onclick: () => askDelete(name) }, "Delete metric…");
  $("detail").replaceChildren(
    el("div", { class: "row" }, rangeSelect(), queryLink, del),
    el("div", { id: "detail-error", class: "error-box", hidden: true, "aria-live": "assertive" }),
    el("dl", { class: "stats" },
      statItem("Series", "stat-series"), statItem("Data points", "stat-points"),
      statItem("First point", "stat-first"), statItem("Last point", "stat-last")),
    el("h3", {}, "Tags"),
    el("div", { id: "tags" }, el("p", { class: "muted" }, "Loading tags…")),
  );
}

function loadDetail() {
  if (detailAbort) detailAbort.abort();
  if (!state.metric) {
    $("detail-h").textContent = "Select a metric";
    $("detail").replaceChildren(el("p", { class: "muted" }, "Pick a name on the left to see its tags and series."));
    return;
  }
  detailAbort = new AbortController();
  const { signal } = detailAbort;
  const name = state.metric;
  renderDetailFrame(name);
  loadTagsAndStats(name, signal).catch((e) => {
    if (e.name !== "AbortError") showError($("detail-error"), e);
  });
}

async function loadTagsAndStats(name, signal) {
  const range = rangeFields(state.range);
  const answer = await api("/api/v1/datapoints/query/tags", {
    method: "POST", signal, body: { ...range, metrics: [{ name, tags: {} }] },
  });
  const tags = answer.queries[0].results[0].tags || {};
  renderTags(tags);
  const figures = await loadFigures(name, Object.keys(tags), range, signal);
  renderFigures(figures);
}

/** Series count, points in range and first/last point time, from three data queries. */
async function loadFigures(name, tagNames, range, signal) {
  const countMetric = {
    name,
    aggregators: [{ name: "count", sampling: { value: 1000, unit: "years" } }],
  };
  if (tagNames.length) countMetric.group_by = [{ name: "tag", tags: tagNames }];
  const query = (metric) => api("/api/v1/datapoints/query", { method: "POST", signal, body: { ...range, metrics: [metric] } });
  const [counted, first, last] = await Promise.all([
    query(countMetric),
    query({ name, limit: 1 }),
    query({ name, limit: 1, order: "desc" }),
  ]);
  const q = counted.queries[0];
  const combos = new Set();
  for (const r of q.results) {
    if (!r.values.length) continue;
    const tagGroup = (r.group_by || []).find((g) => g.name === "tag");
    combos.add(JSON.stringify(tagGroup ? tagGroup.group : {}));
  }
  const edge = (a) => (a.queries[0].results[0] || { values: [] }).values[0];
  return { series: combos.size, points: q.sample_size, first: edge(first), last: edge(last) };
}

function fmtTime(point) {
  if (!point) return "—";
  return new Date(point[0]).toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

function renderFigures(f) {
  $("stat-series").textContent = f.series.toLocaleString();
  $("stat-points").textContent = f.points.toLocaleString();
  $("stat-first").textContent = fmtTime(f.first);
  $("stat-last").textContent = fmtTime(f.last);
  if (f.first) $("stat-first").title = new Date(f.first[0]).toISOString();
  if (f.last) $("stat-last").title = new Date(f.last[0]).toISOString();
}

function valueChips(values, all) {
  const shown = all ? values : values.slice(0, MAX_VALUES);
  const chips = el("ul", { class: "chips" }, shown.map((v) => el("li", { class: "mono" }, v)));
  if (shown.length < values.length) {
    chips.append(el("li", {}, el("button", {
      type: "button",
      class: "link",
      onclick: (ev) => ev.target.closest("td").replaceChildren(valueChips(values, true)),
    }, `show all ${values.length}`)));
  }
  return chips;
}

function renderTags(tags) {
  const entries = Object.entries(tags);
  if (!entries.length) {
    $("tags").replaceChildren(el("p", { class: "muted" }, "No tags in this time range."));
    return;
  }
  $("tags").replaceChildren(el("table", { class: "tag-table" },
    el("thead", {}, el("tr", {}, el("th", { scope: "col" }, "Tag"), el("th", { scope: "col" }, "Values"), el("th", { scope: "col" }, "Distinct values"))),
    el("tbody", {}, entries.map(([tag, values]) => el("tr", {},
      el("th", { scope: "row", class: "mono" }, tag),
      el("td", {}, valueChips(values, false)),
      el("td", { class: "num" }, values.length.toLocaleString())))),
  ));
}

// ---- delete ----

function askDelete(name) {
  $("delete-name").textContent = name;
  const dialog = $("delete-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "delete") deleteMetric(name);
  }, { once: true });
}

async function deleteMetric(name) {
  try {
    await api(`/api/v1/metric/${encodeURIComponent(name)}`, { method: "DELETE" });
  } catch (e) {
    showError($("detail-error"), e);
    return;
  }
  names = names.filter((n) => n !== name);
  state.metric = "";
  saveState(false);
  renderNames();
  loadDetail();
  $("detail").prepend(el("p", { class: "notice", role: "status" }, `Deleted ${name}.`));
  $("filter").focus();
}

// ---- wiring ----

function init() {
  renderNav("explorer.html");
  loadState();
  $("filter").value = state.filter;
  const refilter = debounce(() => { saveState(false); renderNames(); }, 120);
  $("filter").addEventListener("input", (ev) => { state.filter = ev.target.value; refilter(); });
  $("filter-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const first = $("names").querySelector("a");
    if (first) { select(first.textContent); first.focus(); }
  });
  $("reload").addEventListener("click", loadNames);
  window.addEventListener("popstate", () => {
    loadState();
    $("filter").value = state.filter;
    renderNames();
    loadDetail();
  });
  loadNames();
  loadDetail();
}

init();

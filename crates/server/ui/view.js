// view.html: the chart of the query passed as `?q=<query JSON>` (KairosDB's shareable
// link, spec §10), its table for non-numeric data, CSV/JSON export, and a link that opens
// the same query in the builder.
//
// Not here: editing (index.html does, from the same `q` parameter).
import { api, showError, renderNav, readUrlState } from "./common.js";
import { TimeChart } from "./chart.js";
import { toSeries, renderTable, toCsv, download, exportName, summary } from "./results.js";

const $ = (id) => document.getElementById(id);
renderNav("");

function describe(q) {
  const when = (which) => {
    const abs = q[`${which}_absolute`];
    const rel = q[`${which}_relative`];
    if (abs !== undefined) return new Date(abs).toISOString();
    if (rel) return `${rel.value} ${rel.unit} ago`;
    return null;
  };
  return `${(q.metrics || []).map((m) => m.name).join(", ")} · from ${when("start") || "?"} to ${when("end") || "now"}`;
}

async function start() {
  const text = readUrlState().q;
  if (!text) {
    showError($("view-error"), new Error("No query: this page shows the query given as ?q=<query JSON>. Build one in the query builder and use Show query → Shareable view."));
    return;
  }
  let q;
  try {
    q = JSON.parse(text);
  } catch (e) {
    showError($("view-error"), new Error(`The query in the address is not valid JSON (${e.message}).`));
    return;
  }
  const tz = q.time_zone || Intl.DateTimeFormat().resolvedOptions().timeZone;
  $("edit-link").href = `index.html?${new URLSearchParams({ q: text })}`;
  $("query-json").textContent = JSON.stringify(q, null, 2);
  $("view-range").textContent = describe(q);
  document.title = `KairosDB — ${(q.metrics || []).map((m) => m.name).join(", ")}`;
  $("status").textContent = "Running…";
  let response;
  const started = performance.now();
  try {
    response = await api("/api/v1/datapoints/query", { method: "POST", body: q });
  } catch (e) {
    $("status").textContent = "";
    showError($("view-error"), e);
    return;
  }
  const took = performance.now() - started;
  const series = toSeries(response);
  const numeric = series.filter((s) => s.numeric);
  const other = series.filter((s) => !s.numeric);
  let drawn = "";
  if (numeric.length || !other.length) {
    const chart = new TimeChart($("chart"), { timeZone: tz });
    chart.setData(numeric);
    drawn = ` · drawn ${chart.lastDrawMs.toFixed(1)} ms`;
  }
  if (other.length) renderTable($("table"), other, tz);
  $("status").textContent = `${summary(response, series)} · query ${Math.round(took)} ms${drawn}`;
  for (const [id, kind] of [["export-csv", "csv"], ["export-json", "json"]]) {
    $(id).disabled = false;
    $(id).addEventListener("click", () =>
      kind === "csv"
        ? download(`${exportName(q)}.csv`, toCsv(response, tz), "text/csv")
        : download(`${exportName(q)}.json`, `${JSON.stringify(response, null, 2)}\n`, "application/json"),
    );
  }
  document.body.dataset.runs = "1";
}

start();

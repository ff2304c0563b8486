// The fields of one roll-up task for rollups.html: name, execution interval, and per
// roll-up the metric, tag filter, aggregators and group-bys (editor.js), save_as and time
// zone. `value()` turns them back into KairosDB's task JSON (spec §13.1), keeping every
// field of the original document the form does not show (extra query metrics, plugins,
// the query's time range). Not here: saving, listing or status (rollups.js); semantic
// validation (the server answers 400 with KairosDB's messages, shown next to Save).
import { el } from "./common.js";
import { aggregatorEditor, groupByEditor } from "./editor.js";

export const UNITS = ["milliseconds", "seconds", "minutes", "hours", "days", "weeks", "months", "years"];
/** The roll-up query's range is only validated (the task computes its own windows). */
const DEFAULT_RANGE = { start_relative: { value: 1, unit: "hours" } };
const DEFAULT_AGGREGATORS = [{ name: "avg", sampling: { value: 1, unit: "hours" } }];

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

/** A labelled control: `<label for>` + input, so screen readers and tests find it by name. */
function field(label, input, hint) {
  const id = input.id || (input.id = nextId("f"));
  return el("label", { for: id }, label, input, hint ? el("span", { class: "hint" }, hint) : null);
}

/** A new task from a query JSON (the query page's "Create roll-up from this query" link, or a paste). */
export function taskFromQuery(query) {
  const metrics = Array.isArray(query.metrics) && query.metrics.length ? query.metrics : [{ name: "" }];
  const rest = { ...query };
  delete rest.metrics;
  return {
    name: metrics.length === 1 && metrics[0].name ? `${metrics[0].name} roll-up` : "",
    execution_interval: { value: 1, unit: "hours" },
    rollups: metrics.map((m) => ({
      save_as: m.name ? `${m.name}_rollup` : "",
      time_zone: query.time_zone || "UTC",
      query: { ...rest, metrics: [m.aggregators && m.aggregators.length ? m : { ...m, aggregators: DEFAULT_AGGREGATORS }] },
    })),
  };
}

export function emptyTask() {
  return taskFromQuery({ metrics: [{ name: "", aggregators: DEFAULT_AGGREGATORS }] });
}

/** `{"host":["a","b"],"dc":"x"}` → "host=a\nhost=b\ndc=x". */
function tagsToText(tags) {
  return Object.entries(tags || {})
    .flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).map((x) => `${k}=${x}`))
    .join("\n");
}

/** The inverse of tagsToText; repeated names become a list (OR), like KairosDB's filter. */
export function textToTags(text, where) {
  const tags = {};
  text.split("\n").map((l) => l.trim()).filter(Boolean).forEach((line, i) => {
    const eq = line.indexOf("=");
    if (eq <= 0) throw new Error(`${where}: tag line ${i + 1} "${line}" is not name=value`);
    const k = line.slice(0, eq).trim();
    const v = line.slice(eq + 1).trim();
    tags[k] = k in tags ? [].concat(tags[k], v) : v;
  });
  return tags;
}

/** The fields of one `rollups[]` element, with its remove button. */
function rollupFields(rollup, index, ctx) {
  const query = rollup.query || {};
  const [metric = { name: "" }, ...otherMetrics] = query.metrics || [];
  const legend = el("legend", {}, `Roll-up ${index + 1}`);
  const where = () => legend.textContent;
  const metricInput = el("input", { type: "text", list: "metric-names", value: metric.name || "", autocomplete: "off", spellcheck: "false", dataset: { field: "metric" } });
  const saveAs = el("input", { type: "text", value: rollup.save_as || "", spellcheck: "false", dataset: { field: "save_as" } });
  const zone = el("input", { type: "text", list: "time-zones", value: rollup.time_zone || "", placeholder: "UTC", dataset: { field: "time_zone" } });
  const tags = el("textarea", { rows: 2, spellcheck: "false", placeholder: "host=server1", dataset: { field: "tags" } }, tagsToText(metric.tags));
  const aggBox = el("div", { class: "agg-editor" });
  const groupBox = el("div", { class: "group-editor" });
  const aggs = aggregatorEditor(aggBox, ctx.features, metric.aggregators || []);
  const groups = groupByEditor(groupBox, ctx.features, metric.group_by || []);
  const node = el("fieldset", { class: "rollup-item" },
    legend,
    el("div", { class: "row" },
      field("Metric", metricInput), field("Save as (new metric name)", saveAs), field("Time zone", zone)),
    field("Tag filter, one name=value per line", tags),
    el("div", { class: "sub" }, el("h4", {}, "Aggregators"),
      el("p", { class: "hint" }, "The last range aggregator's sampling is the roll-up period."), aggBox),
    el("details", { class: "sub", open: (metric.group_by || []).length > 0 }, el("summary", {}, "Group by"), groupBox),
    otherMetrics.length ? el("p", { class: "hint" }, `This query has ${otherMetrics.length} more metric(s); they are kept unchanged.`) : null,
    el("div", { class: "row" }, el("button", { type: "button", class: "danger", onclick: () => ctx.remove(item) }, "Remove this roll-up")),
  );
  const value = () => {
    const m = { ...metric, name: metricInput.value.trim(), tags: textToTags(tags.value, where()), aggregators: aggs.value() };
    const g = groups.value();
    if (g.length) m.group_by = g;
    else delete m.group_by;
    const q = { ...query, metrics: [m, ...otherMetrics] };
    if (q.start_absolute === undefined && q.start_relative === undefined) Object.assign(q, DEFAULT_RANGE);
    const out = { ...rollup, save_as: saveAs.value.trim(), query: q };
    if (zone.value.trim()) out.time_zone = zone.value.trim();
    else delete out.time_zone;
    return out;
  };
  const item = { node, value, legend };
  return item;
}

/**
 * Fills `container` with the task's fields. Returns `{ value() }`; `value()` throws an
 * Error naming the field when something cannot be turned into JSON (a tag line, a
 * processor's JSON); everything else is left to the server to judge.
 */
export function taskFields(container, task, features) {
  const name = el("input", { type: "text", value: task.name || "", required: true, id: "task-name" });
  const every = task.execution_interval || { value: 1, unit: "hours" };
  const value = el("input", { type: "number", min: 1, step: 1, value: every.value ?? 1, class: "num", id: "interval-value" });
  const unit = el("select", { id: "interval-unit" },
    UNITS.map((u) => el("option", { value: u, selected: u === String(every.unit).toLowerCase() }, u)));
  const list = el("div", { class: "rollup-items" });
  const items = [];
  const ctx = {
    features,
    remove: (item) => {
      items.splice(items.indexOf(item), 1);
      item.node.remove();
      renumber();
    },
  };
  const renumber = () => items.forEach((i, n) => { i.legend.textContent = `Roll-up ${n + 1}`; });
  const add = (r) => {
    const item = rollupFields(r, items.length, ctx);
    items.push(item);
    list.append(item.node);
    return item;
  };
  (task.rollups || []).forEach(add);
  const addButton = el("button", { type: "button", onclick: () => {
    add(emptyTask().rollups[0]).node.querySelector("input").focus();
  } }, "Add roll-up");
  container.replaceChildren(
    el("div", { class: "row" }, field("Task name", name), field("Run every", value), field("Interval unit", unit)),
    list,
    el("div", { class: "row" }, addButton),
  );
  return {
    value: () => {
      const out = { ...task, name: name.value.trim(), execution_interval: { value: Number(value.value), unit: unit.value }, rollups: items.map((i) => i.value()) };
      delete out.id;
      return out;
    },
  };
}

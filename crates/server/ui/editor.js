// The aggregator and group-by editors, generated from GET /api/v1/features (spec §1.11):
// every processor the server lists can be added, reordered, removed and have each of its
// properties edited, with the labels and descriptions the server gives. Used by the query
// builder (query.js) and the roll-up pages.
//
// Not here: fetching the features (the page does, once) or validating values; the server
// validates and the page shows its message where the user pressed Graph. The features'
// `validations` are JavaScript source text; we never evaluate text that came over the wire.
//
//   const aggs = aggregatorEditor(div, features, [{name: "avg", sampling: {value: 1, unit: "minutes"}}]);
//   aggs.value()  // -> the `aggregators` array of a KairosDB query (throws Error on bad input)
//   aggs.set(list) // replaces the rows (Back/Reload restoring a query)
import { el } from "./common.js";

/** Editor for a metric's `aggregators` list. `opts.onChange()` runs after every edit. */
export function aggregatorEditor(container, features, initial = [], opts = {}) {
  return listEditor(container, family(features, "aggregators"), initial, { noun: "aggregator", ...opts });
}

/**
 * Editor for a metric's `group_by` list. `opts.tagNames()` may return the metric's tag
 * names; they are offered as one-click suggestions for the tag group-by.
 */
export function groupByEditor(container, features, initial = [], opts = {}) {
  return listEditor(container, family(features, "group_by"), initial, { noun: "group-by", ...opts });
}

/** The processors of one feature family (`aggregators` or `group_by`), or `[]`. */
export function family(features, name) {
  const f = (features || []).find((x) => x.name === name);
  return f ? f.properties : [];
}

// Friendlier first values than the features' (a 1 ms sampling is never what a user wants).
const DEFAULT_OVERRIDES = { "sampling.unit": "minutes" };

let uid = 0;
const nextId = (p) => `${p}-${++uid}`;

function listEditor(container, defs, initial, opts) {
  const rows = [];
  const list = el("ol", { class: "proc-list", "aria-label": `${opts.noun}s` });
  const changed = () => opts.onChange && opts.onChange();
  const picker = el(
    "select",
    { class: "proc-picker", "aria-label": `${opts.noun} to add` },
    el("option", { value: "" }, `Add ${opts.noun}…`),
    defs.map((d) => el("option", { value: d.name, title: d.description || "" }, `${d.label} (${d.name})`)),
  );
  const addButton = el("button", { type: "button", class: "proc-add", "aria-label": `Add the chosen ${opts.noun}` }, "Add");
  const add = (obj) => {
    const row = processorRow(defs, obj, opts, {
      remove: () => {
        rows.splice(rows.indexOf(row), 1);
        row.node.remove();
        changed();
      },
      move: (delta) => {
        const i = rows.indexOf(row);
        const j = i + delta;
        if (j < 0 || j >= rows.length) return;
        rows.splice(i, 1);
        rows.splice(j, 0, row);
        list.replaceChildren(...rows.map((r) => r.node));
        row.focus();
        changed();
      },
    });
    rows.push(row);
    list.append(row.node);
    return row;
  };
  const addPicked = () => {
    if (!picker.value) return;
    add({ name: picker.value }).focus();
    picker.value = "";
    changed();
  };
  addButton.addEventListener("click", addPicked);
  picker.addEventListener("keydown", (e) => {
    if (e.key === "Enter") {
      e.preventDefault();
      e.stopPropagation();
      addPicked();
    }
  });
  list.addEventListener("input", changed);
  list.addEventListener("change", changed);
  container.replaceChildren(list, el("div", { class: "row proc-add-row" }, picker, addButton));
  const set = (items) => {
    rows.length = 0;
    list.replaceChildren();
    for (const item of items || []) add(item);
  };
  set(initial);
  return {
    element: container,
    value: () => rows.map((r) => r.value()),
    set,
  };
}

/** One processor: its properties' controls, and move/remove buttons. */
function processorRow(defs, obj, opts, actions) {
  const def = defs.find((d) => d.name === obj.name);
  const title = def ? def.label : obj.name;
  const controls = def ? def.properties.map((p) => propControl(p, obj[p.name], p.name, opts)) : [];
  const known = new Set(def ? def.properties.map((p) => p.name) : []);
  const extra = Object.fromEntries(Object.entries(obj).filter(([k]) => k !== "name" && !known.has(k)));
  // A processor this server does not list (a shared query from elsewhere): edit it as JSON.
  const raw = def
    ? null
    : el("textarea", { rows: 3, cols: 40, "aria-label": `${obj.name} as JSON`, class: "proc-raw" }, JSON.stringify(obj, null, 1));
  const button = (label, text, f) => el("button", { type: "button", class: "icon", "aria-label": `${label} ${title}`, title: label, onclick: f }, text);
  const body = el("div", { class: "proc-props" }, controls.map((c) => c.node), raw);
  const node = el(
    "li",
    { class: "proc", dataset: { name: obj.name } },
    el(
      "div",
      { class: "proc-head" },
      el("strong", { title: def ? def.description || "" : "not listed by this server's features" }, title),
      el("span", { class: "proc-tools" }, button("Move up", "↑", () => actions.move(-1)), button("Move down", "↓", () => actions.move(1)), button("Remove", "✕", actions.remove)),
    ),
    body,
  );
  return {
    node,
    focus: () => {
      const first = node.querySelector("input, select, textarea, button");
      if (first) first.focus();
    },
    value: () => {
      if (raw) return parseRaw(raw.value, obj.name);
      const out = { name: obj.name, ...extra };
      for (const c of controls) {
        const v = c.value();
        if (v !== undefined) out[c.name] = v;
      }
      return out;
    },
  };
}

function parseRaw(text, name) {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${name}: not valid JSON (${e.message})`);
  }
}

/**
 * The control for one property (recursing into `Object` properties such as `sampling`).
 * `value()` gives the JSON value, or `undefined` to leave the property out.
 */
function propControl(prop, current, path, opts) {
  if (prop.type === "Object" && Array.isArray(prop.properties)) return objectControl(prop, current, path, opts);
  const initial = current !== undefined ? current : defaultOf(prop, path);
  const id = nextId("prop");
  let input;
  let value;
  switch (prop.type) {
    case "boolean":
      input = el("input", { type: "checkbox", id, checked: initial === true || initial === "true" });
      value = () => (input.checked || prop.defaultValue === "true" ? input.checked : undefined);
      break;
    case "int":
    case "long":
    case "double":
      input = el("input", { type: "number", id, step: prop.type === "double" ? "any" : "1", value: initial ?? "", class: "num" });
      value = () => numberOrText(input.value);
      break;
    case "enum":
      input = el(
        "select",
        { id },
        prop.options.map((o) => el("option", { value: o.toLowerCase(), selected: String(initial).toLowerCase() === o.toLowerCase() }, o.toLowerCase())),
      );
      value = () => input.value;
      break;
    case "array":
      return arrayControl(prop, initial, path, opts, id);
    default:
      // "String", and "Object" without sub-properties (filter's threshold, a number).
      input = el("input", { type: "text", id, value: initial ?? "" });
      value = prop.type === "String" ? () => input.value : () => numberOrText(input.value);
  }
  input.dataset.prop = path;
  const wrap = prop.type === "boolean"
    ? el("label", { for: id, class: "check", title: prop.description || "" }, input, prop.label)
    : el("label", { for: id, title: prop.description || "" }, prop.label, input);
  return { name: prop.name, node: wrap, value };
}

function objectControl(prop, current, path, opts) {
  const cur = current && typeof current === "object" ? current : {};
  const parts = prop.properties.map((p) => propControl(p, cur[p.name], `${path}.${p.name}`, opts));
  const node = el("fieldset", { class: "prop-object" }, el("legend", {}, prop.label), parts.map((p) => p.node));
  return {
    name: prop.name,
    node,
    value: () => {
      const out = {};
      for (const p of parts) {
        const v = p.value();
        if (v !== undefined) out[p.name] = v;
      }
      return out;
    },
  };
}

/** A list property: comma-separated text (or a JSON array); tag lists get suggestions. */
function arrayControl(prop, initial, path, opts, id) {
  const isTags = prop.autocomplete === "tags" || prop.name === "tags";
  const text = Array.isArray(initial) ? initial.map((v) => (typeof v === "object" ? JSON.stringify(v) : v)).join(", ") : String(initial ?? "");
  const input = el("input", { type: "text", id, value: text, placeholder: "comma-separated", dataset: { prop: path } });
  const hints = el("span", { class: "hints" });
  const wrap = el("label", { for: id, title: prop.description || "" }, prop.label, input, isTags ? hints : null);
  if (isTags && opts.tagNames) {
    const showHints = () => {
      const have = splitList(input.value);
      hints.replaceChildren(
        ...(opts.tagNames() || []).filter((t) => !have.includes(t)).map((t) =>
          el("button", { type: "button", class: "chip", onclick: () => {
            input.value = [...splitList(input.value), t].join(", ");
            input.dispatchEvent(new Event("input", { bubbles: true }));
            showHints();
          } }, `+ ${t}`),
        ),
      );
    };
    input.addEventListener("focus", showHints);
    input.addEventListener("input", showHints);
    showHints();
    wrap.addEventListener("pointerenter", showHints);
  }
  const value = () => {
    const t = input.value.trim();
    if (t.startsWith("[")) return parseRaw(t, prop.label);
    const items = splitList(t);
    return isTags ? items : items.map(numberOrText);
  };
  return { name: prop.name, node: wrap, value };
}

function splitList(text) {
  return text.split(",").map((s) => s.trim()).filter(Boolean);
}

/** A number when the text is one, else the text as typed (the server then says what is wrong). */
function numberOrText(text) {
  const t = String(text).trim();
  if (t === "") return undefined;
  const n = Number(t);
  return Number.isFinite(n) ? n : t;
}

function defaultOf(prop, path) {
  const key = path.split(".").slice(-2).join(".");
  if (key in DEFAULT_OVERRIDES) return DEFAULT_OVERRIDES[key];
  const d = prop.defaultValue;
  if (d === undefined || d === null) return undefined;
  switch (prop.type) {
    case "boolean":
      return d === "true";
    case "int":
    case "long":
    case "double":
      return d === "" ? undefined : Number(d);
    case "array":
      try {
        return JSON.parse(d);
      } catch {
        return [];
      }
    case "String":
      return d.startsWith("<") ? "" : d;
    default:
      return d;
  }
}

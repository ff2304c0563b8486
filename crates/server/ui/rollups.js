// The roll-up pages in one (KairosDB's rollups.html, rollup-status.html and
// rollup-paste-query.html): the list of roll-up tasks with their last run, the create/edit
// form (rollup-form.js), delete with confirmation, a task's status and backfill, and
// "paste a query JSON". URL state: `?task=<id>` opens a task, `?task=new` a blank form,
// `?new=<query JSON>` a form made from that query (the query page links there).
// Not here: running roll-ups (the server does) or charting their output (index.html).
import { api, el, showError, clearError, renderNav, readUrlState, writeUrlState } from "./common.js";
import { taskFields, taskFromQuery, emptyTask } from "./rollup-form.js";

const $ = (id) => document.getElementById(id);
let features = [];
let tasks = [];
let form = null;
/** The id of the task in the form, or null for a new one. */
let openId = null;

// ---- status ----

/** A task's status, `{never: true}` when it never ran (404), or `{failed: message}`. */
async function statusOf(id) {
  try {
    return await api(`/api/v1/rollups/status/${encodeURIComponent(id)}`);
  } catch (e) {
    if (e.status === 404) return { never: true };
    return { failed: e.message };
  }
}

function summary(status) {
  if (status.failed) return { last: "?", points: "?", error: status.failed };
  if (status.never) return { last: "Never", points: "—", error: "" };
  const list = status.statuses || [];
  const last = list.map((s) => s.last_executed).filter(Boolean)[0] || "Never";
  const points = list.reduce((n, s) => n + (s.data_point_count || 0), 0);
  const error = list.map((s) => s.error_message).filter(Boolean).join("; ");
  return { last, points: points.toLocaleString(), error };
}

// ---- the list ----

async function loadList() {
  clearError($("list-error"));
  try {
    tasks = (await api("/api/v1/rollups")) || [];
  } catch (e) {
    showError($("list-error"), e);
    $("task-list").replaceChildren();
    return;
  }
  tasks.sort((a, b) => String(a.name).localeCompare(String(b.name)));
  const statuses = await Promise.all(tasks.map((t) => statusOf(t.id)));
  renderList(statuses);
}

function interval(t) {
  const e = t.execution_interval || {};
  return `${e.value ?? "?"} ${e.unit ?? ""}`;
}

function outputs(t) {
  return (t.rollups || []).map((r) => {
    const m = ((r.query || {}).metrics || [])[0] || {};
    return el("div", { class: "mono" }, `${m.name || "?"} → ${r.save_as || "?"}`);
  });
}

function renderList(statuses) {
  if (!tasks.length) {
    $("task-list").replaceChildren(el("p", { class: "muted" }, "No roll-up tasks yet. Create one, or open a query and choose “Create roll-up from this query”."));
    return;
  }
  const head = ["Task", "Every", "Metric → saved as", "Last executed", "Points written", "Error"];
  $("task-list").replaceChildren(el("div", { class: "scroll-x" }, el("table", { class: "task-table" },
    el("thead", {}, el("tr", {}, head.map((h) => el("th", { scope: "col", class: h === "Points written" ? "num" : null }, h)))),
    el("tbody", {}, tasks.map((t, i) => {
      const s = summary(statuses[i]);
      return el("tr", { "aria-current": t.id === openId ? "true" : null, dataset: { id: t.id } },
        el("th", { scope: "row" }, el("a", { href: `rollups.html?task=${encodeURIComponent(t.id)}`, onclick: (ev) => go(ev, { task: t.id }) }, t.name || "(no name)")),
        el("td", {}, interval(t)),
        el("td", {}, outputs(t)),
        el("td", { class: "last-run" }, s.last),
        el("td", { class: "num points" }, s.points),
        el("td", { class: "run-error" }, s.error));
    })))));
}

// ---- the editor ----

function go(ev, state) {
  if (ev) ev.preventDefault();
  writeUrlState(state, true);
  route();
}

function openEditor(task, id) {
  openId = id;
  $("editor").hidden = false;
  $("editor-h").textContent = id ? `Edit roll-up task “${task.name || ""}”` : "New roll-up task";
  $("delete-task").hidden = !id;
  $("task-json").hidden = true;
  $("save-notice").hidden = true;
  clearError($("save-error"));
  form = taskFields($("task-fields"), task, features);
  $("status-panel").hidden = !id;
  if (id) {
    // A day back, in UTC like the server reads it; the user adjusts.
    if (!$("backfill-start").value) $("backfill-start").value = new Date(Date.now() - 86_400_000).toISOString().slice(0, 16);
    loadStatus(id);
  }
  for (const row of document.querySelectorAll(".task-table tbody tr")) {
    row.setAttribute("aria-current", row.dataset.id === id ? "true" : "false");
  }
}

function closeEditor() {
  openId = null;
  form = null;
  $("editor").hidden = true;
  $("status-panel").hidden = true;
}

async function openTask(id) {
  let task = tasks.find((t) => t.id === id);
  if (!task) {
    try {
      task = await api(`/api/v1/rollups/${encodeURIComponent(id)}`);
    } catch (e) {
      closeEditor();
      showError($("list-error"), e);
      return;
    }
  }
  openEditor(task, id);
}

/** Reads `?new=`: a query JSON, or (an extension) a whole task JSON with `rollups`. */
function taskFromText(text) {
  const doc = JSON.parse(text);
  if (!doc || typeof doc !== "object" || Array.isArray(doc)) throw new Error("Expected a JSON object.");
  if (Array.isArray(doc.rollups)) return doc;
  if (!Array.isArray(doc.metrics)) throw new Error("A query JSON needs a \"metrics\" array.");
  return taskFromQuery(doc);
}

function route() {
  const s = readUrlState();
  clearError($("list-error"));
  if (s.new) {
    try {
      openEditor(taskFromText(s.new), null);
    } catch (e) {
      closeEditor();
      showError($("list-error"), new Error(`The query in the link is not usable: ${e.message}`));
    }
  } else if (s.task === "new") openEditor(emptyTask(), null);
  else if (s.task) openTask(s.task);
  else closeEditor();
}

async function save(ev) {
  ev.preventDefault();
  clearError($("save-error"));
  $("save-notice").hidden = true;
  let task;
  try {
    task = form.value();
  } catch (e) {
    showError($("save-error"), e);
    return;
  }
  const path = openId ? `/api/v1/rollups/${encodeURIComponent(openId)}` : "/api/v1/rollups";
  let answer;
  try {
    answer = await api(path, { method: openId ? "PUT" : "POST", body: task });
  } catch (e) {
    showError($("save-error"), e);
    return;
  }
  const created = !openId;
  openId = answer.id;
  writeUrlState({ task: answer.id }, created);
  await loadList();
  if (created) openEditor(tasks.find((t) => t.id === answer.id) || { ...task, id: answer.id }, answer.id);
  $("editor-h").textContent = `Edit roll-up task “${task.name}”`;
  $("save-notice").textContent = created ? `Created task “${task.name}”.` : `Saved task “${task.name}”.`;
  $("save-notice").hidden = false;
}

function toggleJson() {
  const pre = $("task-json");
  if (!pre.hidden) {
    pre.hidden = true;
    return;
  }
  try {
    pre.textContent = JSON.stringify(form.value(), null, 2);
    pre.hidden = false;
    clearError($("save-error"));
  } catch (e) {
    showError($("save-error"), e);
  }
}

// ---- delete ----

function askDelete() {
  const task = tasks.find((t) => t.id === openId) || {};
  $("delete-name").textContent = task.name || openId;
  const dialog = $("delete-dialog");
  dialog.returnValue = "";
  dialog.showModal();
  const id = openId;
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "delete") deleteTask(id);
  }, { once: true });
}

async function deleteTask(id) {
  try {
    await api(`/api/v1/rollups/${encodeURIComponent(id)}`, { method: "DELETE" });
  } catch (e) {
    showError($("save-error"), e);
    return;
  }
  go(null, {});
  await loadList();
  $("new-task").focus();
}

// ---- status panel and backfill ----

async function loadStatus(id) {
  const status = await statusOf(id);
  if (id !== openId) return;
  if (status.never) {
    $("task-status").replaceChildren(el("p", { class: "muted" }, "This task has not run yet."));
    return;
  }
  if (status.failed) {
    $("task-status").replaceChildren(el("p", { class: "run-error" }, status.failed));
    return;
  }
  const cell = (v) => el("td", {}, v === undefined || v === null ? "—" : String(v));
  $("task-status").replaceChildren(
    el("dl", { class: "stats" },
      el("div", {}, el("dt", {}, "Executing host"), el("dd", {}, status.executing_host || "—")),
      el("div", {}, el("dt", {}, "Next run"), el("dd", {}, status.next_scheduled || "—"))),
    el("div", { class: "scroll-x" }, el("table", { class: "status-table" },
      el("thead", {}, el("tr", {}, ["Metric", "Last executed", "Points written", "Took (ms)", "Error"].map((h) => el("th", { scope: "col" }, h)))),
      el("tbody", {}, (status.statuses || []).map((s) => el("tr", {},
        el("td", { class: "mono" }, s.metric_name || "?"), cell(s.last_executed),
        cell(s.data_point_count), cell(s.execution_length), el("td", { class: "run-error" }, s.error_message || "")))))),
  );
}

/** `2026-12-07T10:30` or `…T10:30:05.250` → KairosDB's `2026-12-07-10-30-00-000`. */
export function backfillTime(local) {
  const m = /^(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d)(?::(\d\d)(?:\.(\d{1,3}))?)?$/.exec(local);
  if (!m) throw new Error(`Not a date and time: "${local}"`);
  const [, y, mo, d, h, mi, s = "00", ms = "0"] = m;
  return `${y}-${mo}-${d}-${h}-${mi}-${s}-${ms.padEnd(3, "0")}`;
}

async function backfill(ev) {
  ev.preventDefault();
  clearError($("backfill-error"));
  $("backfill-notice").hidden = true;
  const params = new URLSearchParams();
  try {
    params.set("startTime", backfillTime($("backfill-start").value));
    if ($("backfill-end").value) params.set("endTime", backfillTime($("backfill-end").value));
    await api(`/api/v1/rollups/backfill/${encodeURIComponent(openId)}?${params}`);
  } catch (e) {
    showError($("backfill-error"), e);
    return;
  }
  $("backfill-notice").textContent = "Backfill done.";
  $("backfill-notice").hidden = false;
  loadStatus(openId);
  loadList();
}

// ---- paste a query ----

function openPaste() {
  clearError($("paste-error"));
  $("paste-dialog").showModal();
}

function pasteSubmit(ev) {
  if (!ev.submitter || ev.submitter.value !== "ok") return;
  const text = $("paste-text").value;
  try {
    taskFromText(text);
  } catch (e) {
    ev.preventDefault();
    showError($("paste-error"), e);
    return;
  }
  go(null, { new: text });
  $("task-name").focus();
}

// ---- start ----

async function loadHelpers() {
  const [f, names] = await Promise.all([
    api("/api/v1/features").catch(() => []),
    api("/api/v1/metricnames").catch(() => ({ results: [] })),
  ]);
  features = f || [];
  $("metric-names").replaceChildren(...(names.results || []).slice(0, 1000).map((n) => el("option", { value: n })));
  const zones = typeof Intl.supportedValuesOf === "function" ? Intl.supportedValuesOf("timeZone") : [];
  $("time-zones").replaceChildren(...["UTC", ...zones].map((z) => el("option", { value: z })));
}

async function init() {
  renderNav("rollups.html");
  $("task-form").addEventListener("submit", save);
  $("show-json").addEventListener("click", toggleJson);
  $("delete-task").addEventListener("click", askDelete);
  $("cancel").addEventListener("click", (ev) => go(ev, {}));
  $("new-task").addEventListener("click", (ev) => go(ev, { task: "new" }));
  $("paste-open").addEventListener("click", openPaste);
  $("paste-form").addEventListener("submit", pasteSubmit);
  $("backfill-form").addEventListener("submit", backfill);
  window.addEventListener("popstate", route);
  await loadHelpers();
  await loadList();
  route();
}

init();

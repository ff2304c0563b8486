// Browser test of the roll-up pages (rollups.html), acting as a user: create a roll-up
// task from a query link, see it in the list, edit it, see the server's validation error
// next to Save for an empty save_as, view its status, backfill it, turn a pasted query
// into a form, reload with the task open, delete it after confirming; then phone width and
// dark mode.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, seed, apiCall, shot } from "./lib.mjs";
import { assertNoHorizontalOverflow, assertDarkAndReadable } from "./checks.mjs";

const QUERY = {
  start_relative: { value: 1, unit: "hours" },
  metrics: [{
    name: "rollup.src",
    tags: { host: ["a"] },
    aggregators: [{ name: "sum", sampling: { value: 10, unit: "minutes" } }],
  }],
};

let browser;
let page;
let consoleErrors;
/** Responses of 400 and more: only the ones the pages expect are allowed (see last test). */
const failed = [];

before(async () => {
  const now = Date.now();
  await seed([{ name: "rollup.src", datapoints: [[now - 600_000, 1], [now - 300_000, 2]], tags: { host: "a" } }]);
  ({ browser, page, consoleErrors } = await launch());
  page.on("response", (r) => {
    if (r.status() >= 400) failed.push(`${r.status()} ${r.request().method()} ${new URL(r.url()).pathname}`);
  });
});

after(async () => {
  await browser?.close();
});

const tasks = async () => (await apiCall("/api/v1/rollups")).json;
let id;

test("a query link opens a filled-in form, and Save creates the task", async () => {
  await page.goto(`${BASE}/rollups.html?new=${encodeURIComponent(JSON.stringify(QUERY))}`);
  await page.getByRole("heading", { name: "New roll-up task" }).waitFor();
  assert.equal(await page.getByLabel("Metric", { exact: true }).inputValue(), "rollup.src");
  assert.equal(await page.getByLabel("Save as (new metric name)").inputValue(), "rollup.src_rollup");
  assert.equal(await page.getByLabel("Tag filter, one name=value per line").inputValue(), "host=a");
  assert.equal(await page.locator('.agg-editor .proc[data-name="sum"]').count(), 1);
  await page.getByLabel("Task name").fill("Ten-minute sums");
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, "rollups-new");
  await page.getByLabel("Task name").press("Enter");
  await page.getByText("Created task “Ten-minute sums”.").waitFor();
  const list = await tasks();
  assert.equal(list.length, 1);
  id = list[0].id;
  assert.match(page.url(), new RegExp(`task=${id}`));
  assert.equal(list[0].name, "Ten-minute sums");
  assert.deepEqual(list[0].execution_interval, { value: 1, unit: "hours" });
  const metric = list[0].rollups[0].query.metrics[0];
  assert.equal(list[0].rollups[0].save_as, "rollup.src_rollup");
  assert.deepEqual(metric.tags, { host: "a" });
  assert.equal(metric.aggregators[0].name, "sum");
  assert.deepEqual(metric.aggregators[0].sampling, { value: 10, unit: "minutes" });
  const row = page.locator(".task-table tbody tr", { hasText: "Ten-minute sums" });
  await row.waitFor();
  assert.match(await row.textContent(), /rollup\.src → rollup\.src_rollup/);
  // "Never" until the scheduler's first run, which starts at once.
  assert.match(await row.locator(".last-run").textContent(), /^(Never|\d\d \w{3} \d{4} .*)$/);
});

test("editing changes the interval; an empty save_as shows the server's error next to Save", async () => {
  await page.getByLabel("Run every").fill("30");
  await page.getByLabel("Interval unit").selectOption("minutes");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByText("Saved task “Ten-minute sums”.").waitFor();
  assert.deepEqual((await tasks())[0].execution_interval, { value: 30, unit: "minutes" });

  await page.getByLabel("Save as (new metric name)").fill("");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  const error = page.locator("#save-error");
  await error.getByText("rollup[0].saveAs may not be empty").waitFor();
  // The message sits right after the row with the Save button.
  assert.equal(await error.evaluate((e) => e.previousElementSibling.contains(document.getElementById("save"))), true);
  assert.equal(await error.getAttribute("role"), "alert");
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, "rollups-error");
  assert.equal((await tasks())[0].rollups[0].save_as, "rollup.src_rollup");

  await page.getByLabel("Save as (new metric name)").fill("rollup.src_10m");
  await page.getByRole("button", { name: "Save", exact: true }).click();
  await page.getByText("Saved task “Ten-minute sums”.").waitFor();
  assert.ok(await error.isHidden());
  assert.equal((await tasks())[0].rollups[0].save_as, "rollup.src_10m");
});

test("backfill runs the task, and its status shows the run", async () => {
  const panel = page.locator("#status-panel");
  const start = new Date(Date.now() - 3_600_000).toISOString().slice(0, 19);
  await page.getByLabel("Backfill from (UTC)").fill(start);
  await page.getByRole("button", { name: "Backfill" }).click();
  await page.getByText("Backfill done.").waitFor();
  const row = panel.locator(".status-table tbody tr", { hasText: "rollup.src" });
  await row.waitFor();
  assert.match(await row.textContent(), /\d\d \w{3} \d{4}/, "last executed is shown");
  const listRow = page.locator(".task-table tbody tr", { hasText: "Ten-minute sums" });
  await listRow.locator(".last-run", { hasText: /\d{4}/ }).waitFor();
  // The roll-up wrote its output under the edited save_as name.
  const out = await apiCall("/api/v1/datapoints/query", {
    method: "POST",
    body: { start_absolute: 0, metrics: [{ name: "rollup.src_10m" }] },
  });
  assert.ok(out.json.queries[0].results[0].values.length >= 1, JSON.stringify(out.json));
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, "rollups-status");
});

test("the open task survives a reload; a pasted query becomes a new form", async () => {
  await page.reload();
  await page.getByRole("heading", { name: "Edit roll-up task “Ten-minute sums”" }).waitFor();
  assert.equal(await page.getByLabel("Save as (new metric name)").inputValue(), "rollup.src_10m");

  await page.getByRole("button", { name: "Paste a query JSON…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.getByLabel(/Query JSON/).fill("{not json");
  await dialog.getByRole("button", { name: "Create roll-up" }).click();
  await dialog.locator("#paste-error").waitFor();
  assert.ok(await dialog.isVisible(), "the dialog stays open on bad JSON");
  const pasted = { ...QUERY, metrics: [{ ...QUERY.metrics[0], name: "pasted.metric" }] };
  await dialog.getByLabel(/Query JSON/).fill(JSON.stringify(pasted));
  await dialog.getByRole("button", { name: "Create roll-up" }).click();
  await page.getByRole("heading", { name: "New roll-up task" }).waitFor();
  assert.equal(await page.getByLabel("Metric", { exact: true }).inputValue(), "pasted.metric");
  await page.goBack();
  await page.getByRole("heading", { name: "Edit roll-up task “Ten-minute sums”" }).waitFor();
  assert.equal((await tasks()).length, 1, "nothing is created until Save");
});

test("delete asks first, then removes the task", async () => {
  await page.getByRole("button", { name: "Delete task…" }).click();
  await page.getByRole("dialog").waitFor();
  await page.keyboard.press("Escape");
  await page.getByRole("dialog").waitFor({ state: "hidden" });
  assert.equal((await tasks()).length, 1);
  await page.getByRole("button", { name: "Delete task…" }).click();
  await page.getByRole("button", { name: "Delete task", exact: true }).click();
  await page.getByText("No roll-up tasks yet.").waitFor();
  assert.deepEqual(await tasks(), []);
  assert.ok(await page.locator("#editor").isHidden());
  assert.doesNotMatch(page.url(), /task=/);
});

test("phone width does not scroll sideways; dark mode is readable", async () => {
  const phone = await launch({ width: 375, height: 740, colorScheme: "dark" });
  try {
    await phone.page.goto(`${BASE}/rollups.html?new=${encodeURIComponent(JSON.stringify(QUERY))}`);
    await phone.page.locator('.agg-editor .proc[data-name="sum"]').waitFor();
    await assertNoHorizontalOverflow(phone.page);
    await assertDarkAndReadable(phone.page);
    await page.evaluate(() => window.scrollTo(0, 0));
    await shot(phone.page, "rollups-phone-dark");
    assert.deepEqual(phone.consoleErrors, []);
  } finally {
    await phone.browser.close();
  }
});

test("no console errors beyond the API answers the page expects", () => {
  // Chromium logs every 4xx fetch as a console error: the status of a task that never ran
  // is a 404 by KairosDB's API, and the empty save_as a 400. Nothing else may fail.
  const expected = /^(404 GET \/api\/v1\/rollups\/status\/|400 (POST|PUT) \/api\/v1\/rollups)/;
  assert.deepEqual(failed.filter((f) => !expected.test(f)), []);
  const resourceMessage = /^Failed to load resource: the server responded with a status of 40[04]/;
  assert.deepEqual(consoleErrors.filter((m) => !resourceMessage.test(m)), []);
});

// The query builder used the way a person uses it: type a metric name and pick it from
// the suggestions, pick a tag, add an aggregator and a group-by from the features-driven
// editors, Graph; then read the chart (legend, hover value), zoom and reset, share the
// query and open the link, reload and go Back, export CSV and JSON, see an API error where
// Graph was pressed, and delete by query after confirming.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import fs from "node:fs/promises";
import { BASE, launch, seed, apiCall, shot } from "./lib.mjs";

const METRIC = "ui.temperature";
const MINUTE = 60_000;
// One point a minute for the last 50 minutes, so a 1-minute avg keeps every value.
const now = Math.floor(Date.now() / MINUTE) * MINUTE;
const times = Array.from({ length: 50 }, (_, i) => now - (50 - i) * MINUTE);
const valuesA = times.map((_, i) => 10 + (i % 10) + 0.25);
const valuesB = times.map((_, i) => 30 - (i % 7));

let ctx;
before(async () => {
  await seed([
    { name: METRIC, tags: { host: "a", dc: "east" }, datapoints: times.map((t, i) => [t, valuesA[i]]) },
    { name: METRIC, tags: { host: "b", dc: "east" }, datapoints: times.map((t, i) => [t, valuesB[i]]) },
    { name: "ui.other", tags: { host: "a" }, datapoints: [[now - MINUTE, 1]] },
  ]);
  ctx = await launch();
});
after(async () => {
  await ctx.browser.close();
});

/** Waits until the page has finished `n` query runs. */
async function runs(page, n) {
  await page.waitForFunction((k) => Number(document.body.dataset.runs || 0) >= k, n, { timeout: 10_000 });
}

/** The legend's series names. */
async function legend(page) {
  return page.locator(".chart-legend .legend-name").allTextContents();
}

/** Errors in the console, less the ones a test caused on purpose (a 400 answer). */
function unexpected(errors) {
  return errors.filter((e) => !/status of 400/.test(e));
}

test("build a query, graph it, read it, zoom, share, reload, go back, export, delete", async () => {
  const { page, consoleErrors } = ctx;
  await page.goto(`${BASE}/`);
  await page.waitForSelector("body[data-ready]");
  const readyMs = Number(await page.getAttribute("body", "data-ready-ms"));
  console.log(`# query page usable ${readyMs} ms after navigation start`);
  assert.ok(readyMs < 1500, `page usable after ${readyMs} ms`);

  // Metric name from autocompletion.
  await page.getByLabel("Metric name").fill("ui.temp");
  const option = page.locator(".combo-list li", { hasText: METRIC });
  await option.waitFor();
  assert.equal(await page.locator(".combo-list li").count(), 1, "only the matching name is offered");
  await option.click();
  assert.equal(await page.getByLabel("Metric name").inputValue(), METRIC);
  assert.match(await page.locator('[role="tab"][aria-selected="true"]').textContent(), /ui\.temperature/);

  // Tag filter host = a, from the metric's tags.
  await page.locator(".tag-names button", { hasText: "host" }).click();
  const valueInput = page.locator(".tag-row .tag-values").first();
  await valueInput.focus();
  await page.locator(".combo-list li", { hasText: /^a$/ }).click();
  assert.equal(await page.locator(".tag-row .tag-name").first().inputValue(), "host");
  assert.equal(await valueInput.inputValue(), "a");

  // An aggregator and a group-by from the features-driven editors.
  await page.locator(".aggregators .proc-picker").selectOption("avg");
  await page.locator(".aggregators .proc-add").click();
  assert.equal(await page.locator(".aggregators .proc strong").textContent(), "AVG");
  assert.equal(await page.locator('.aggregators [data-prop="sampling.unit"]').inputValue(), "minutes");
  await page.locator(".group-bys .proc-picker").selectOption("tag");
  await page.locator(".group-bys .proc-add").click();
  await page.locator('.group-bys [data-prop="tags"]').fill("host");

  // Graph with Enter in the metric name field.
  await page.getByLabel("Metric name").press("Enter");
  await runs(page, 1);
  assert.deepEqual(await legend(page), [`${METRIC} {host=a}`]);
  assert.match(await page.locator("#status").textContent(), /1 series · 50 points/);
  const afterGraph = new URL(page.url());
  const q = JSON.parse(afterGraph.searchParams.get("q"));
  assert.deepEqual(q.metrics[0].tags, { host: ["a"] });
  assert.deepEqual(q.metrics[0].aggregators, [{ name: "avg", sampling: { value: 1, unit: "minutes" } }]);
  assert.deepEqual(q.metrics[0].group_by, [{ name: "tag", tags: ["host"] }]);
  await shot(page, "query-chart");

  // Hover: the keyboard cursor on the first point reads the first seeded value; the mouse
  // in the middle reads one of the seeded values.
  const chartBox = page.locator(".chart-box");
  await chartBox.focus();
  await page.keyboard.press("ArrowRight");
  const readout = page.locator(".chart-readout");
  await readout.waitFor();
  assert.equal(await readout.locator(".readout-value").first().textContent(), String(valuesA[0]));
  const overlay = page.locator(".chart-overlay");
  await overlay.scrollIntoViewIfNeeded();
  const box = await overlay.boundingBox();
  await page.mouse.move(box.x + box.width * 0.5, box.y + box.height * 0.5);
  const hovered = Number(await readout.locator(".readout-value").first().textContent());
  assert.ok(valuesA.includes(hovered), `hover shows a seeded value, got ${hovered}`);

  // Legend click hides and shows the series.
  const entry = page.locator(".chart-legend button").first();
  await entry.click();
  assert.equal(await entry.getAttribute("aria-pressed"), "false");
  await entry.click();
  assert.equal(await entry.getAttribute("aria-pressed"), "true");

  // Drag to zoom, zoom again, Escape goes back one step, Reset goes back to the start.
  const drawn = () => page.locator(".chart").getAttribute("data-drawn").then(Number);
  const before = await drawn();
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.up();
  await page.locator(".chart-reset").waitFor();
  assert.ok((await drawn()) > before, "zoom redraws");
  await page.mouse.move(box.x + box.width * 0.4, box.y + box.height * 0.5);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5, { steps: 5 });
  await page.mouse.up();
  await page.locator(".chart-back").waitFor();
  await chartBox.focus();
  await page.keyboard.press("Escape");
  await page.locator(".chart-back").waitFor({ state: "hidden" });
  assert.ok(await page.locator(".chart-reset").isVisible(), "still zoomed after one Escape");
  await page.locator(".chart-reset").click();
  await page.locator(".chart-reset").waitFor({ state: "hidden" });

  // Show query: the JSON, a copy button, and the shareable link that shows the same series.
  await page.getByRole("button", { name: "Show query" }).click();
  const dialog = page.locator("#query-dialog");
  await dialog.waitFor();
  const shown = JSON.parse(await page.locator("#query-json").textContent());
  assert.deepEqual(shown.metrics, q.metrics);
  await shot(page, "query-show-query");
  const share = await page.locator("#share-link").getAttribute("href");
  assert.ok(share.startsWith("view.html?q="), share);
  assert.deepEqual(JSON.parse(decodeURIComponent(share.slice("view.html?q=".length))).metrics, q.metrics);
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  const viewer = await ctx.context.newPage();
  viewer.on("pageerror", (e) => consoleErrors.push(String(e)));
  await viewer.goto(`${BASE}/${share}`);
  await runs(viewer, 1);
  assert.deepEqual(await legend(viewer), [`${METRIC} {host=a}`]);
  await shot(viewer, "view");
  const edit = await viewer.locator("#edit-link").getAttribute("href");
  await viewer.goto(`${BASE}/${edit}`);
  await runs(viewer, 1);
  assert.equal(await viewer.getByLabel("Metric name").inputValue(), METRIC);
  assert.deepEqual(await legend(viewer), [`${METRIC} {host=a}`]);
  await viewer.close();

  // Reload restores the builder and the chart.
  await page.reload();
  await runs(page, 1);
  assert.equal(await page.getByLabel("Metric name").inputValue(), METRIC);
  assert.equal(await page.locator(".tag-row .tag-values").first().inputValue(), "a");
  assert.equal(await page.locator(".aggregators .proc strong").textContent(), "AVG");
  assert.deepEqual(await legend(page), [`${METRIC} {host=a}`]);

  // A second run (a quick range) is a new history entry; Back restores the first.
  await page.getByRole("button", { name: "6h" }).click();
  await runs(page, 2);
  assert.equal(await page.locator("#start-rel-value").inputValue(), "6");
  await page.goBack();
  await page.waitForFunction(() => document.getElementById("start-rel-value").value === "1");
  await runs(page, 3);
  assert.equal(await page.locator("#start-rel-unit").inputValue(), "hours");
  assert.deepEqual(await legend(page), [`${METRIC} {host=a}`]);

  // Export CSV and JSON: files saved by the browser with the answer in them.
  const [csvDownload] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export CSV" }).click()]);
  assert.match(csvDownload.suggestedFilename(), /^kairosdb-ui\.temperature-.*\.csv$/);
  const csv = (await fs.readFile(await csvDownload.path(), "utf8")).trim().split("\n");
  assert.match(csv[0], /^series,metric,tags,timestamp,time \(.*\),value$/);
  assert.equal(csv.length, 51);
  assert.ok(csv[1].startsWith(`${METRIC} {host=a},${METRIC},`), csv[1]);
  assert.ok(csv[1].endsWith(`,${valuesA[0]}`), csv[1]);
  const [jsonDownload] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Export JSON" }).click()]);
  const exported = JSON.parse(await fs.readFile(await jsonDownload.path(), "utf8"));
  assert.deepEqual(exported.queries[0].results[0].values.map((p) => p[1]), valuesA);

  // An API error is shown next to the Graph button, and goes away once fixed.
  const samplingValue = page.locator('.aggregators [data-prop="sampling.value"]');
  await samplingValue.fill("-1");
  await page.getByRole("button", { name: "Graph" }).click();
  const error = page.locator(".actions #run-error");
  await error.waitFor();
  assert.match(await error.textContent(), /sampling\.value must be greater than or equal to 0/);
  assert.equal(await error.getAttribute("role"), "alert");
  await shot(page, "query-error");
  await samplingValue.fill("1");
  await page.getByRole("button", { name: "Graph" }).click();
  await error.waitFor({ state: "hidden" });

  // Delete by query: the dialog says what goes, Cancel keeps it, confirming deletes only
  // the filtered series.
  await page.getByRole("button", { name: "Delete data…" }).click();
  const confirmBox = page.locator("#delete-dialog");
  await confirmBox.waitFor();
  await page.waitForFunction(() => /will be deleted/.test(document.querySelector(".delete-count").textContent));
  const what = await page.locator("#delete-what").textContent();
  assert.match(what, /ui\.temperature/);
  assert.match(what, /host = a/);
  assert.match(what, /50 data points in 1 series will be deleted/);
  await shot(page, "query-delete");
  await page.keyboard.press("Escape");
  await confirmBox.waitFor({ state: "hidden" });
  let left = await apiCall("/api/v1/datapoints/query", { method: "POST", body: { start_absolute: 0, metrics: [{ name: METRIC, tags: { host: "a" } }] } });
  assert.equal(left.json.queries[0].sample_size, 50, "Escape deleted nothing");
  await page.getByRole("button", { name: "Delete data…" }).click();
  await page.getByRole("button", { name: "Delete 50 data points" }).click();
  await confirmBox.waitFor({ state: "hidden" });
  await page.waitForFunction(() => /^Deleted\./.test(document.getElementById("status").textContent));
  assert.match(await page.locator("#status").textContent(), /0 series|0 points/);
  left = await apiCall("/api/v1/datapoints/query", { method: "POST", body: { start_absolute: 0, metrics: [{ name: METRIC, tags: { host: "a" } }] } });
  assert.equal(left.json.queries[0].sample_size, 0, "host=a is gone");
  left = await apiCall("/api/v1/datapoints/query", { method: "POST", body: { start_absolute: 0, metrics: [{ name: METRIC, tags: { host: "b" } }] } });
  assert.equal(left.json.queries[0].sample_size, 50, "host=b is untouched");

  assert.deepEqual(unexpected(consoleErrors), []);
});

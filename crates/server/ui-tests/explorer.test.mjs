// Browser test of the metric explorer (explorer.html), acting as a user: find a metric by
// filtering, see its tags, series and point counts, reload and go back, open "Query this
// metric", delete a metric after confirming; then phone width and dark mode.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, seed, apiCall, shot } from "./lib.mjs";
import { assertNoHorizontalOverflow, assertDarkAndReadable } from "./checks.mjs";

const now = Date.now();
let browser;
let page;
let consoleErrors;

before(async () => {
  await seed([
    { name: "explorer.cpu", datapoints: [[now - 3_600_000, 1], [now - 60_000, 2]], tags: { host: "a", dc: "x" } },
    { name: "explorer.cpu", datapoints: [[now - 120_000, 3]], tags: { host: "b", dc: "x" } },
    { name: "explorer.cpu", datapoints: [[now - 30_000, 4]], tags: { host: "c", dc: "y" } },
    { name: "explorer.mem", datapoints: [[now - 30_000, 5]], tags: { host: "a" } },
    { name: "explorer.mem", datapoints: [[now - 7_200_000, 7]], tags: { host: "old" } },
    { name: "other.disk", datapoints: [[now - 30_000, 6]], tags: { host: "a" } },
  ]);
  ({ browser, page, consoleErrors } = await launch());
});

after(async () => {
  await browser?.close();
});

test("filtering finds a metric and shows its tags, series and points", async () => {
  await page.goto(`${BASE}/explorer.html`);
  await page.getByText("3 of 3 metric names").waitFor();
  await page.getByLabel("Filter").fill("cpu");
  await page.getByText("1 of 3 metric names").waitFor();
  assert.equal(await page.locator("#names a").count(), 1);
  await page.getByRole("link", { name: "explorer.cpu" }).click();
  await page.waitForURL(/metric=explorer\.cpu/);
  assert.match(page.url(), /filter=cpu/);
  await page.locator("#stat-series", { hasText: "3" }).waitFor();
  assert.equal(await page.locator("#stat-points").textContent(), "4");
  assert.notEqual(await page.locator("#stat-first").textContent(), "—");
  const hostRow = page.locator(".tag-table tr", { has: page.locator("th", { hasText: "host" }) });
  assert.deepEqual(await hostRow.locator(".chips li").allTextContents(), ["a", "b", "c"]);
  const dcRow = page.locator(".tag-table tr", { has: page.locator("th", { hasText: "dc" }) });
  assert.deepEqual(await dcRow.locator(".chips li").allTextContents(), ["x", "y"]);
  await shot(page, "explorer");
});

test("the selection survives a reload, and Back returns to it", async () => {
  await page.reload();
  await page.locator("#detail-h", { hasText: "explorer.cpu" }).waitFor();
  assert.equal(await page.getByLabel("Filter").inputValue(), "cpu");
  await page.locator("#stat-series", { hasText: "3" }).waitFor();
  await page.getByRole("link", { name: "Query this metric" }).click();
  await page.waitForURL(/index\.html\?q=/);
  const q = JSON.parse(new URL(page.url()).searchParams.get("q"));
  assert.deepEqual(q, { start_relative: { value: 24, unit: "hours" }, metrics: [{ name: "explorer.cpu" }] });
  await page.goBack();
  await page.locator("#detail-h", { hasText: "explorer.cpu" }).waitFor();
});

test("a shorter time range leaves out older series", async () => {
  await page.getByLabel("Filter").fill("");
  await page.getByRole("link", { name: "explorer.mem" }).click();
  await page.locator("#stat-series", { hasText: "2" }).waitFor();
  await page.getByLabel("Time range").selectOption("1h");
  await page.waitForURL(/range=1h/);
  await page.locator("#stat-series", { hasText: "1" }).waitFor();
  assert.equal(await page.locator("#stat-points").textContent(), "1");
});

test("delete asks first, then removes the metric", async () => {
  await page.goto(`${BASE}/explorer.html?metric=other.disk`);
  await page.locator("#stat-series", { hasText: "1" }).waitFor();
  await page.getByRole("button", { name: "Delete metric…" }).click();
  const dialog = page.getByRole("dialog");
  await dialog.waitFor();
  await page.keyboard.press("Escape");
  await dialog.waitFor({ state: "hidden" });
  assert.ok((await apiCall("/api/v1/metricnames")).json.results.includes("other.disk"));
  await page.getByRole("button", { name: "Delete metric…" }).click();
  await page.getByRole("button", { name: "Delete metric", exact: true }).click();
  await page.getByText("Deleted other.disk.").waitFor();
  assert.equal(await page.getByRole("link", { name: "other.disk" }).count(), 0);
  assert.ok(!(await apiCall("/api/v1/metricnames")).json.results.includes("other.disk"));
  assert.doesNotMatch(page.url(), /metric=/);
});

test("phone width does not scroll sideways; dark mode is readable", async () => {
  const phone = await launch({ width: 375, height: 740, colorScheme: "dark" });
  try {
    await phone.page.goto(`${BASE}/explorer.html?metric=explorer.cpu`);
    await phone.page.locator("#stat-series", { hasText: "3" }).waitFor();
    await assertNoHorizontalOverflow(phone.page);
    await assertDarkAndReadable(phone.page);
    await shot(phone.page, "explorer-phone-dark");
    assert.deepEqual(phone.consoleErrors, []);
  } finally {
    await phone.browser.close();
  }
});

test("no console errors", () => {
  assert.deepEqual(consoleErrors, []);
});

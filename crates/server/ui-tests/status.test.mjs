// Browser test of the server status page (status.html), acting as a user: the version
// and health checks are shown, the figures table is filled and follows new ingest on the
// next refresh, pause stops refreshing, the running-queries section is there; then phone
// width and dark mode.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, seed, apiCall, shot } from "./lib.mjs";
import { assertNoHorizontalOverflow, assertDarkAndReadable } from "./checks.mjs";

let browser;
let page;
let consoleErrors;

before(async () => {
  await seed([{ name: "status.seed", datapoints: [[Date.now(), 1]], tags: { host: "a" } }]);
  ({ browser, page, consoleErrors } = await launch());
});

after(async () => {
  await browser?.close();
});

const figure = (name) => page.locator(`td[data-name="${name}"]`);

test("version, health and figures are shown", async () => {
  const { json: version } = await apiCall("/api/v1/version");
  await page.goto(`${BASE}/status.html`);
  await page.locator("#version", { hasText: version.version }).waitFor();
  await page.locator("#ready .badge.ok", { hasText: "ready" }).waitFor();
  const checks = await page.locator("#checks li").allTextContents();
  assert.deepEqual(checks, ["OK JVM-Thread-Deadlock", "OK Datastore-Query"]);
  await figure("kairosdb_datapoints_ingested_total").waitFor();
  assert.ok(await page.locator("table.figures").count() >= 2, "figures are grouped into tables");
  assert.match(await figure("kairosdb_memory_usage_bytes").textContent(), /^[\d.]+ (B|KiB|MiB|GiB)$/);
  await page.getByText("0 running, 0 waiting for a query slot.").waitFor();
  await shot(page, "status");
});

test("figures refresh by themselves, and pause stops that", async () => {
  const before = Number((await figure("kairosdb_datapoints_ingested_total").textContent()).replace(/\D/g, ""));
  await seed([{ name: "status.seed", datapoints: [[Date.now() - 5, 1], [Date.now() - 6, 2]], tags: { host: "a" } }]);
  await page.locator(`td[data-name="kairosdb_datapoints_ingested_total"]`, { hasText: String(before + 2) })
    .waitFor({ timeout: 15_000 });
  await page.getByRole("button", { name: "Pause refresh" }).click();
  assert.equal(await page.getByRole("button", { name: "Resume refresh" }).getAttribute("aria-pressed"), "true");
  const stamp = await page.locator("#updated").textContent();
  await seed([{ name: "status.seed", datapoints: [[Date.now() - 7, 3]], tags: { host: "a" } }]);
  // Two refresh periods pass with nothing new on the page.
  await page.waitForTimeout(11_000);
  assert.equal(await page.locator("#updated").textContent(), stamp);
  assert.equal((await figure("kairosdb_datapoints_ingested_total").textContent()).replace(/\D/g, ""), String(before + 2));
  await page.getByRole("button", { name: "Refresh now" }).click();
  await page.locator(`td[data-name="kairosdb_datapoints_ingested_total"]`, { hasText: String(before + 3) }).waitFor();
  await page.getByRole("button", { name: "Resume refresh" }).click();
});

test("phone width does not scroll sideways; dark mode is readable", async () => {
  const phone = await launch({ width: 375, height: 740, colorScheme: "dark" });
  try {
    await phone.page.goto(`${BASE}/status.html`);
    await phone.page.locator(`td[data-name="kairosdb_datapoints_ingested_total"]`).waitFor();
    await assertNoHorizontalOverflow(phone.page);
    await assertDarkAndReadable(phone.page);
    await shot(phone.page, "status-phone-dark");
    assert.deepEqual(phone.consoleErrors, []);
  } finally {
    await phone.browser.close();
  }
});

test("no console errors", () => {
  assert.deepEqual(consoleErrors, []);
});

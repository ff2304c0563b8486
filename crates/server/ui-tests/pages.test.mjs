// The query page's looks and reach: absolute times with milliseconds read in the chosen
// time zone, string data as a table, dark mode, a phone-width viewport without sideways
// scrolling, keyboard-only use, and the screenshots of docs/ui.md (light and dark, laptop
// and phone).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { BASE, launch, seed, shot } from "./lib.mjs";

const NOON = Date.UTC(2024, 0, 15, 12, 0, 0, 0);
const MINUTE = 60_000;
const now = Math.floor(Date.now() / MINUTE) * MINUTE;

before(async () => {
  const wave = (phase) => Array.from({ length: 120 }, (_, i) => [now - (120 - i) * MINUTE, Math.round((50 + 30 * Math.sin(i / 9 + phase)) * 100) / 100]);
  await seed([
    { name: "ui.noon", tags: { host: "a" }, datapoints: [[NOON - 1, 1.5], [NOON, 2.5], [NOON + 1, 3.5]] },
    { name: "ui.log", type: "string", tags: { host: "a" }, datapoints: [[now - 2 * MINUTE, "disk almost full"], [now - MINUTE, "back to normal"]] },
    ...["web-1", "web-2", "db-1"].map((host, k) => ({ name: "sys.cpu.user", tags: { host, dc: "east" }, datapoints: wave(k * 2) })),
  ]);
});

/** index.html with `query` in the URL, after its first run. */
async function open(page, query, extra = "") {
  await page.goto(`${BASE}/index.html?q=${encodeURIComponent(JSON.stringify(query))}${extra}`);
  await page.waitForFunction(() => Number(document.body.dataset.runs || 0) >= 1, null, { timeout: 10_000 });
}

const cpu = {
  start_relative: { value: 2, unit: "hours" },
  time_zone: "UTC",
  metrics: [{ name: "sys.cpu.user", aggregators: [{ name: "avg", sampling: { value: 5, unit: "minutes" } }], group_by: [{ name: "tag", tags: ["host"] }] }],
};

test("absolute times with milliseconds are read and shown in the chosen time zone", async () => {
  const { browser, page, consoleErrors } = await launch();
  try {
    await page.goto(`${BASE}/`);
    await page.waitForSelector("body[data-ready]");
    await page.getByLabel("Time zone", { exact: true }).selectOption("Asia/Kolkata");
    await page.getByLabel("Start time kind").selectOption("absolute");
    await page.getByLabel("Start: date and time (in the chosen time zone)").fill("2024-01-15T17:30:00.000");
    await page.getByLabel("End time kind").selectOption("absolute");
    await page.getByLabel("End: date and time (in the chosen time zone)").fill("2024-01-15T17:30:00.001");
    await page.getByLabel("Metric name").fill("ui.noon");
    await page.getByRole("button", { name: "Graph" }).click();
    await page.waitForFunction(() => Number(document.body.dataset.runs || 0) >= 1);
    const q = JSON.parse(new URL(page.url()).searchParams.get("q"));
    assert.equal(q.start_absolute, NOON, "17:30 in Kolkata is 12:00 UTC");
    assert.equal(q.end_absolute, NOON + 1);
    assert.equal(q.time_zone, "Asia/Kolkata");
    assert.match(await page.locator("#status").textContent(), /2 points/);
    await page.locator(".chart-box").focus();
    await page.keyboard.press("ArrowRight");
    assert.equal(await page.locator(".readout-time").textContent(), "2024-01-15 17:30:00.000");
    assert.equal(await page.locator(".readout-value").textContent(), "2.5");
    assert.deepEqual(consoleErrors, []);
  } finally {
    await browser.close();
  }
});

test("string data shows as a table; any data can be shown as one", async () => {
  const { browser, page, consoleErrors } = await launch();
  try {
    await open(page, { start_relative: { value: 1, unit: "hours" }, metrics: [{ name: "ui.log" }] });
    assert.ok(await page.locator("#chart").isHidden(), "no chart for text");
    const cells = await page.locator("#table tbody td.value").allTextContents();
    assert.deepEqual(cells, ["disk almost full", "back to normal"]);
    await shot(page, "query-table");
    await open(page, cpu, "&view=table");
    assert.ok(await page.locator("#view-table").isChecked());
    assert.ok((await page.locator("#table tbody tr").count()) > 60);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await browser.close();
  }
});

test("keyboard only: Tab to the fields, type, Enter graphs", async () => {
  const { browser, page, consoleErrors } = await launch();
  try {
    await page.goto(`${BASE}/`);
    await page.waitForSelector("body[data-ready]");
    await page.getByLabel("Metric name").focus();
    await page.keyboard.type("sys.cpu");
    await page.keyboard.press("ArrowDown");
    await page.keyboard.press("Enter");
    assert.equal(await page.getByLabel("Metric name").inputValue(), "sys.cpu.user");
    await page.keyboard.press("Enter");
    await page.waitForFunction(() => Number(document.body.dataset.runs || 0) >= 1);
    assert.match(await page.locator("#status").textContent(), /1 series/);
    // Every control of the action bar is reachable with Tab.
    const reached = new Set();
    await page.getByRole("button", { name: "Graph" }).focus();
    for (let i = 0; i < 8; i++) {
      reached.add(await page.evaluate(() => document.activeElement.id));
      await page.keyboard.press("Tab");
    }
    for (const id of ["graph", "view-table", "show-query", "export-csv", "export-json", "make-rollup", "delete"]) assert.ok(reached.has(id), `${id} reachable by Tab`);
    assert.deepEqual(consoleErrors, []);
  } finally {
    await browser.close();
  }
});

for (const [name, width, height] of [["laptop", 1366, 860], ["phone", 390, 844]]) {
  test(`${name} width: light and dark, nothing wider than the screen`, async () => {
    const { browser, page, consoleErrors } = await launch({ width, height });
    try {
      await open(page, cpu);
      await page.waitForSelector(".chart-legend li");
      assert.equal((await page.locator(".chart-legend .legend-name").allTextContents()).length, 3);
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `page is ${overflow}px wider than the ${width}px viewport`);
      await page.evaluate(() => window.scrollTo(0, 0));
      await shot(page, `query-${name}-light`);

      const drawn = Number(await page.locator(".chart").getAttribute("data-drawn"));
      const light = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      await page.getByRole("button", { name: "Switch light/dark theme" }).click();
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
      const dark = await page.evaluate(() => getComputedStyle(document.body).backgroundColor);
      assert.notEqual(dark, light);
      await page.waitForFunction((n) => Number(document.querySelector(".chart").dataset.drawn) > n, drawn);
      await page.evaluate(() => window.scrollTo(0, 0));
      await shot(page, `query-${name}-dark`);
      // The choice survives a reload.
      await page.reload();
      await page.waitForFunction(() => Number(document.body.dataset.runs || 0) >= 1);
      assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), "dark");
      assert.deepEqual(consoleErrors, []);
    } finally {
      await browser.close();
    }
  });
}

after(() => {});

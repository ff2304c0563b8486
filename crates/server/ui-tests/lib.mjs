// Shared by the browser tests of the web UI (`*.test.mjs` beside this file).
//
// Each test file runs as `node --test <file>` against a server started for it alone (empty
// store, self-metrics off) by `crates/server/tests/ui.rs`, which passes:
//   KAIROSDB_URL        the server's base URL, e.g. http://127.0.0.1:41234
//   CHROMIUM            the browser executable (Debian's /usr/bin/chromium)
//   PLAYWRIGHT_CORE     the directory of the playwright-core npm package
//   UI_SCREENSHOTS      optional: a directory where `shot()` saves PNGs (docs/ui.md)
import { createRequire } from "node:module";
import path from "node:path";

const require = createRequire(import.meta.url);

export const BASE = process.env.KAIROSDB_URL;
if (!BASE) throw new Error("KAIROSDB_URL is not set; run through `cargo test --test ui`");

const { chromium } = require(process.env.PLAYWRIGHT_CORE || "playwright-core");

/** A headless Chromium and one page of the given viewport, with console errors collected. */
export async function launch({ width = 1366, height = 800, colorScheme = "light" } = {}) {
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"],
  });
  const context = await browser.newContext({ viewport: { width, height }, colorScheme, acceptDownloads: true });
  const page = await context.newPage();
  const consoleErrors = [];
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  page.on("console", (m) => {
    if (m.type() === "error") consoleErrors.push(m.text());
  });
  return { browser, context, page, consoleErrors };
}

/** Calls the server's API directly (seeding data, checking results). */
export async function apiCall(pathname, { method = "GET", body } = {}) {
  const response = await fetch(BASE + pathname, {
    method,
    headers: body === undefined ? {} : { "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, json: text ? JSON.parse(text) : null };
}

/** Writes KairosDB ingest JSON and fails unless the server answers 204. */
export async function seed(metrics) {
  const { status, json } = await apiCall("/api/v1/datapoints", { method: "POST", body: metrics });
  if (status !== 204) throw new Error(`seeding failed: ${status} ${JSON.stringify(json)}`);
}

/**
 * Saves a screenshot `<name>.png` when UI_SCREENSHOTS is set: the full page, or only the
 * viewport with `{ fullPage: false }` (an open dialog covers only the viewport).
 */
export async function shot(page, name, { fullPage = true } = {}) {
  const dir = process.env.UI_SCREENSHOTS;
  if (!dir) return;
  await page.screenshot({ path: path.join(dir, `${name}.png`), fullPage });
}

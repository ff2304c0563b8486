// Checks shared by the explorer, status and roll-up browser tests: no horizontal
// overflow at phone width, and readable text in the dark theme. Not a test file itself
// (the runner only runs `*.test.mjs`).
import assert from "node:assert/strict";

/** Fails when the page is wider than the viewport (a phone user would scroll sideways). */
export async function assertNoHorizontalOverflow(page) {
  const { scroll, width } = await page.evaluate(() => ({
    scroll: document.documentElement.scrollWidth,
    width: window.innerWidth,
  }));
  assert.ok(scroll <= width, `page is ${scroll}px wide in a ${width}px viewport`);
}

/** WCAG contrast ratio of the body text on the body background, and the theme in use. */
export async function bodyContrast(page) {
  return page.evaluate(() => {
    const rgb = (c) => c.match(/\d+(\.\d+)?/g).slice(0, 3).map(Number);
    const lum = ([r, g, b]) => {
      const f = (v) => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
      };
      return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
    };
    const style = getComputedStyle(document.body);
    const fg = lum(rgb(style.color));
    const bg = lum(rgb(style.backgroundColor));
    return { ratio: (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05), darkBackground: bg < 0.2 };
  });
}

/** Fails unless the page is dark with body text readable on it (contrast ≥ 4.5). */
export async function assertDarkAndReadable(page) {
  const { ratio, darkBackground } = await bodyContrast(page);
  assert.ok(darkBackground, "dark colour scheme should give a dark background");
  assert.ok(ratio >= 4.5, `text contrast ${ratio.toFixed(2)} is below 4.5`);
}

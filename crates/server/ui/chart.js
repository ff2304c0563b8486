// A canvas time-series chart written for this UI (no library): several series with a
// legend (click to hide/show), time ticks in a chosen IANA time zone, a hover crosshair
// with every series' value, drag-to-zoom on x with a zoom history (Escape / Reset / double
// click go back), keyboard cursor (← →), light/dark aware, resizing with its box.
//
// Large series: each redraw makes one pass over the visible points, folding them into
// per-pixel-column first/min/max/last (the M4 reduction), then draws at most four vertices
// per column, so the path stays O(pixels) whatever the point count. The hover uses binary
// search. Hover, crosshair and the zoom rectangle draw on a second canvas, so moving the
// mouse never redraws the series.
//
// Not here: fetching data or turning KairosDB answers into series (results.js).
//
//   const chart = new TimeChart(div, { timeZone: "Europe/Paris" });
//   chart.setData([{ name: "cpu host=a", t: Float64Array, v: Float64Array }]); // t sorted, v NaN = gap
import { el } from "./common.js";

const LIGHT = ["#2563eb", "#d9480f", "#0f9d76", "#9333ea", "#c08400", "#db2777", "#0891b2", "#4d7c0f", "#6d28d9", "#b91c1c"];
const DARK = ["#6aa1ff", "#ff8a5b", "#3ddc97", "#c084fc", "#fbbf24", "#f472b6", "#22d3ee", "#a3e635", "#a78bfa", "#f87171"];

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
// Tick steps: [size, kind]; kind "ms" steps are fixed durations, "month" counts months.
const STEPS = [
  ...[1, 2, 5, 10, 20, 50, 100, 200, 500].map((n) => [n, "ms"]),
  ...[1, 2, 5, 10, 15, 30].map((n) => [n * SECOND, "ms"]),
  ...[1, 2, 5, 10, 15, 30].map((n) => [n * MINUTE, "ms"]),
  ...[1, 2, 3, 6, 12].map((n) => [n * HOUR, "ms"]),
  [DAY, "ms"], [2 * DAY, "ms"], [7 * DAY, "ms"],
  ...[1, 3, 6, 12, 24, 60, 120, 240, 600, 1200].map((n) => [n, "month"]),
];
const MARGIN = { top: 10, right: 14, bottom: 38 };

export class TimeChart {
  constructor(container, { timeZone } = {}) {
    this.tz = timeZone || Intl.DateTimeFormat().resolvedOptions().timeZone;
    this.series = [];
    this.hidden = new Set();
    this.zoomStack = [];
    this.view = null;
    this.full = null;
    this.cursor = null;
    this.lastDrawMs = 0;
    this.build(container);
    this.readTheme();
    this.onTheme = () => {
      this.readTheme();
      this.renderLegend();
      this.draw();
    };
    document.addEventListener("themechange", this.onTheme);
    this.media = matchMedia("(prefers-color-scheme: dark)");
    this.media.addEventListener("change", this.onTheme);
    this.resizer = new ResizeObserver(() => this.schedule());
    this.resizer.observe(this.box);
  }

  build(container) {
    this.base = el("canvas", { class: "chart-base", "aria-hidden": "true" });
    this.overlay = el("canvas", { class: "chart-overlay", "aria-hidden": "true" });
    this.readout = el("div", { class: "chart-readout", hidden: true });
    this.box = el("div", { class: "chart-box", tabindex: 0, role: "img", "aria-label": "Time-series chart. Drag to zoom, Escape to zoom out, arrow keys move the cursor." }, this.base, this.overlay, this.readout);
    this.resetButton = el("button", { type: "button", class: "chart-reset", hidden: true, onclick: () => this.resetZoom() }, "Reset zoom");
    this.backButton = el("button", { type: "button", class: "chart-back", hidden: true, onclick: () => this.zoomOut() }, "Zoom out");
    this.legend = el("ul", { class: "chart-legend", "aria-label": "Series (click to hide or show)" });
    this.root = el("div", { class: "chart" }, el("div", { class: "chart-tools" }, this.backButton, this.resetButton), this.box, this.legend);
    container.replaceChildren(this.root);
    this.bindPointer();
    this.box.addEventListener("keydown", (e) => this.onKey(e));
    this.box.addEventListener("dblclick", () => this.resetZoom());
  }

  /** Replaces the data; the zoom goes back to the whole range. */
  setData(series) {
    this.series = series.map((s, i) => ({ ...s, index: i }));
    this.hidden = new Set();
    let lo = Infinity;
    let hi = -Infinity;
    for (const s of this.series) {
      if (!s.t.length) continue;
      lo = Math.min(lo, s.t[0]);
      hi = Math.max(hi, s.t[s.t.length - 1]);
    }
    if (lo === hi) {
      lo -= MINUTE;
      hi += MINUTE;
    }
    this.full = Number.isFinite(lo) ? [lo, hi] : null;
    this.view = this.full;
    this.zoomStack = [];
    this.cursor = null;
    this.renderLegend();
    this.updateZoomButtons();
    this.draw();
  }

  setTimeZone(tz) {
    this.tz = tz;
    this.draw();
  }

  destroy() {
    this.resizer.disconnect();
    document.removeEventListener("themechange", this.onTheme);
    this.media.removeEventListener("change", this.onTheme);
    this.root.remove();
  }

  // ---- zoom

  zoomTo(a, b) {
    if (!this.view || b - a < 1) return;
    this.zoomStack.push(this.view);
    this.view = [a, b];
    this.afterZoom();
  }

  zoomOut() {
    if (!this.zoomStack.length) return;
    this.view = this.zoomStack.pop();
    this.afterZoom();
  }

  resetZoom() {
    if (!this.zoomStack.length) return;
    this.zoomStack = [];
    this.view = this.full;
    this.afterZoom();
  }

  afterZoom() {
    this.cursor = null;
    this.hideReadout();
    this.updateZoomButtons();
    this.draw();
  }

  updateZoomButtons() {
    const zoomed = this.zoomStack.length > 0;
    this.resetButton.hidden = !zoomed;
    this.backButton.hidden = this.zoomStack.length < 2;
  }

  // ---- legend and theme

  renderLegend() {
    const palette = this.palette || LIGHT;
    this.legend.replaceChildren(
      ...this.series.map((s) => {
        const color = palette[s.index % palette.length];
        const button = el(
          "button",
          { type: "button", "aria-pressed": String(!this.hidden.has(s.index)), title: "Click to hide or show" },
          el("span", { class: "swatch", style: `background:${color}` }),
          el("span", { class: "legend-name" }, s.name),
        );
        button.addEventListener("click", () => {
          if (this.hidden.has(s.index)) this.hidden.delete(s.index);
          else this.hidden.add(s.index);
          button.setAttribute("aria-pressed", String(!this.hidden.has(s.index)));
          this.draw();
          this.drawOverlay();
        });
        return el("li", {}, button);
      }),
    );
  }

  readTheme() {
    const css = getComputedStyle(document.documentElement);
    const v = (name) => css.getPropertyValue(name).trim();
    this.colors = { text: v("--text"), muted: v("--muted"), grid: v("--grid"), border: v("--border"), accent: v("--accent"), panel: v("--panel") };
    this.palette = css.getPropertyValue("color-scheme").includes("dark") ? DARK : LIGHT;
    this.font = `12px ${v("--font") || "sans-serif"}`;
  }

  color(s) {
    return this.palette[s.index % this.palette.length];
  }

  // ---- drawing

  schedule() {
    if (this.pending) return;
    this.pending = requestAnimationFrame(() => {
      this.pending = 0;
      this.draw();
    });
  }

  /** Sizes both canvases to the box (device pixels) and returns the CSS size. */
  fit() {
    const w = Math.max(1, this.box.clientWidth);
    const h = Math.max(1, this.box.clientHeight);
    const dpr = window.devicePixelRatio || 1;
    for (const c of [this.base, this.overlay]) {
      if (c.width !== Math.round(w * dpr) || c.height !== Math.round(h * dpr)) {
        c.width = Math.round(w * dpr);
        c.height = Math.round(h * dpr);
      }
      c.getContext("2d").setTransform(dpr, 0, 0, dpr, 0, 0);
    }
    return { w, h };
  }

  draw() {
    const started = performance.now();
    const { w, h } = this.fit();
    const ctx = this.base.getContext("2d");
    ctx.clearRect(0, 0, w, h);
    ctx.font = this.font;
    if (!this.view) {
      this.message(ctx, w, h, "No data points in this time range.");
      this.area = null;
      return;
    }
    const [x0, x1] = this.view;
    // First pass: fold visible points into columns (width estimate), to find the y range.
    const guessW = Math.max(10, w - 70 - MARGIN.right);
    const folds = this.fold(x0, x1, guessW);
    const yr = yRange(folds);
    if (!yr) {
      this.area = null;
      this.message(ctx, w, h, this.series.length ? "No values in view (hidden series or gaps only)." : "No data points in this time range.");
      return;
    }
    const yt = niceTicks(yr[0], yr[1], Math.max(2, Math.floor((h - MARGIN.top - MARGIN.bottom) / 40)));
    const labels = yt.ticks.map((v) => formatTick(v, yt.step));
    const left = Math.ceil(Math.max(...labels.map((l) => ctx.measureText(l).width))) + 14;
    const area = { left, top: MARGIN.top, width: Math.max(10, w - left - MARGIN.right), height: Math.max(10, h - MARGIN.top - MARGIN.bottom), x0, x1, y0: yt.lo, y1: yt.hi };
    this.area = area;
    const cols = area.width === guessW ? folds : this.fold(x0, x1, area.width);
    this.drawGrid(ctx, area, yt.ticks, labels);
    ctx.save();
    ctx.beginPath();
    ctx.rect(area.left, area.top - 1, area.width + 1, area.height + 2);
    ctx.clip();
    for (const f of cols) this.drawSeries(ctx, area, f);
    ctx.restore();
    this.finish(started);
  }

  finish(started) {
    this.lastDrawMs = performance.now() - started;
    this.root.dataset.drawMs = this.lastDrawMs.toFixed(1);
    this.root.dataset.drawn = String((Number(this.root.dataset.drawn) || 0) + 1);
    this.drawOverlay();
  }

  message(ctx, w, h, text) {
    ctx.fillStyle = this.colors.muted;
    ctx.textAlign = "center";
    ctx.fillText(text, w / 2, h / 2);
    this.finish(performance.now());
  }

  /**
   * For each visible series, its points in [x0, x1] (plus one on each side, so lines
   * reach the edges) folded into `width` columns: first/min/max/last value per column,
   * and whether a gap (null value) precedes the column.
   */
  fold(x0, x1, width) {
    const n = Math.max(1, Math.floor(width));
    const scale = n / (x1 - x0);
    const out = [];
    for (const s of this.series) {
      if (this.hidden.has(s.index) || !s.t.length) continue;
      const lo = Math.max(0, lowerBound(s.t, x0) - 1);
      const hi = Math.min(s.t.length, lowerBound(s.t, x1 + 1) + 1);
      // Columns -1 and n hold the points just outside the view.
      const first = new Float64Array(n + 2).fill(NaN);
      const min = new Float64Array(n + 2).fill(Infinity);
      const max = new Float64Array(n + 2).fill(-Infinity);
      const last = new Float64Array(n + 2).fill(NaN);
      const gap = new Uint8Array(n + 2);
      let count = 0;
      let sawGap = false;
      let vmin = Infinity;
      let vmax = -Infinity;
      for (let i = lo; i < hi; i++) {
        const v = s.v[i];
        if (v !== v) {
          sawGap = true;
          continue;
        }
        const t = s.t[i];
        let c = Math.floor((t - x0) * scale) + 1;
        c = c < 0 ? 0 : c > n + 1 ? n + 1 : c;
        if (c > n && t <= x1) c = n;
        if (first[c] !== first[c]) {
          first[c] = v;
          if (sawGap) gap[c] = 1;
        }
        sawGap = false;
        if (v < min[c]) min[c] = v;
        if (v > max[c]) max[c] = v;
        last[c] = v;
        if (t >= x0 && t <= x1) {
          count++;
          if (v < vmin) vmin = v;
          if (v > vmax) vmax = v;
        }
      }
      out.push({ s, n, first, min, max, last, gap, count, vmin, vmax });
    }
    return out;
  }

  drawGrid(ctx, a, yticks, ylabels) {
    const c = this.colors;
    ctx.lineWidth = 1;
    ctx.strokeStyle = c.grid;
    ctx.fillStyle = c.muted;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    yticks.forEach((v, i) => {
      const y = Math.round(yPix(a, v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(a.left, y);
      ctx.lineTo(a.left + a.width, y);
      ctx.stroke();
      ctx.fillText(ylabels[i], a.left - 6, y);
    });
    const ticks = timeTicks(a.x0, a.x1, a.width, this.tz);
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    for (const tk of ticks) {
      const x = Math.round(xPix(a, tk.t)) + 0.5;
      ctx.strokeStyle = c.grid;
      ctx.beginPath();
      ctx.moveTo(x, a.top);
      ctx.lineTo(x, a.top + a.height + 4);
      ctx.stroke();
      ctx.fillStyle = c.muted;
      ctx.fillText(tk.label, x, a.top + a.height + 6);
      if (tk.context) {
        ctx.fillStyle = c.text;
        ctx.fillText(tk.context, x, a.top + a.height + 20);
      }
    }
    ctx.strokeStyle = c.border;
    ctx.strokeRect(a.left + 0.5, a.top + 0.5, a.width, a.height);
  }

  drawSeries(ctx, a, f) {
    const { n, first, min, max, last, gap } = f;
    const ys = a.height / (a.y1 - a.y0);
    const y = (v) => a.top + a.height - (v - a.y0) * ys;
    const x = (c) => a.left + (c - 1) + 0.5;
    ctx.strokeStyle = this.color(f.s);
    ctx.fillStyle = ctx.strokeStyle;
    ctx.lineWidth = 1.5;
    ctx.lineJoin = "round";
    ctx.beginPath();
    let open = false;
    for (let c = 0; c < n + 2; c++) {
      if (first[c] !== first[c]) continue;
      const px = x(c);
      if (!open || gap[c]) ctx.moveTo(px, y(first[c]));
      else ctx.lineTo(px, y(first[c]));
      if (min[c] !== max[c]) {
        ctx.lineTo(px, y(min[c]));
        ctx.lineTo(px, y(max[c]));
      }
      ctx.lineTo(px, y(last[c]));
      open = true;
    }
    ctx.stroke();
    // Few points: mark each one, so single points and gaps stay visible.
    if (f.count <= a.width / 8) {
      for (let c = 1; c <= n; c++) {
        if (first[c] !== first[c]) continue;
        ctx.beginPath();
        ctx.arc(x(c), y(last[c]), 2.5, 0, 2 * Math.PI);
        ctx.fill();
      }
    }
  }

  // ---- hover, cursor and drag-zoom

  bindPointer() {
    const o = this.overlay;
    o.addEventListener("pointerdown", (e) => {
      if (e.button !== 0 || !this.area) return;
      o.setPointerCapture(e.pointerId);
      this.drag = { from: this.localX(e), to: this.localX(e) };
    });
    o.addEventListener("pointermove", (e) => {
      if (!this.area) return;
      const x = this.localX(e);
      if (this.drag) this.drag.to = x;
      this.hover(x);
    });
    o.addEventListener("pointerup", (e) => {
      const d = this.drag;
      this.drag = null;
      if (!d || !this.area) return;
      if (Math.abs(d.to - d.from) >= 5) {
        const a = this.area;
        const lo = Math.max(a.left, Math.min(d.from, d.to));
        const hi = Math.min(a.left + a.width, Math.max(d.from, d.to));
        this.zoomTo(xTime(a, lo), xTime(a, hi));
      } else {
        this.hover(this.localX(e));
      }
    });
    o.addEventListener("pointerleave", () => {
      if (!this.drag) this.hideReadout();
    });
  }

  localX(e) {
    return e.clientX - this.overlay.getBoundingClientRect().left;
  }

  /** Moves the crosshair to the data point nearest to pixel `x`. */
  hover(x) {
    const a = this.area;
    if (!a) return;
    const t = xTime(a, Math.max(a.left, Math.min(a.left + a.width, x)));
    let best = null;
    for (const s of this.visible()) {
      const i = nearest(s.t, s.v, t, a.x0, a.x1);
      if (i >= 0 && (best === null || Math.abs(s.t[i] - t) < Math.abs(best - t))) best = s.t[i];
    }
    this.cursor = best;
    this.drawOverlay();
  }

  visible() {
    return this.series.filter((s) => !this.hidden.has(s.index) && s.t.length);
  }

  onKey(e) {
    if (e.key === "Escape" && this.zoomStack.length) {
      e.preventDefault();
      this.zoomOut();
    } else if ((e.key === "ArrowLeft" || e.key === "ArrowRight") && this.area) {
      e.preventDefault();
      this.stepCursor(e.key === "ArrowRight" ? 1 : -1);
    } else if ((e.key === "+" || e.key === "=") && this.view) {
      const [a, b] = this.view;
      const mid = this.cursor ?? (a + b) / 2;
      this.zoomTo(mid - (b - a) / 4, mid + (b - a) / 4);
    } else if (e.key === "-" && this.zoomStack.length) {
      this.zoomOut();
    }
  }

  /** Moves the cursor to the next/previous time at which any visible series has a point. */
  stepCursor(dir) {
    const a = this.area;
    const from = this.cursor ?? (dir > 0 ? a.x0 - 1 : a.x1 + 1);
    let next = null;
    for (const s of this.visible()) {
      const i = dir > 0 ? lowerBound(s.t, from + 1) : lowerBound(s.t, from) - 1;
      if (i < 0 || i >= s.t.length || s.t[i] < a.x0 || s.t[i] > a.x1) continue;
      if (next === null || (dir > 0 ? s.t[i] < next : s.t[i] > next)) next = s.t[i];
    }
    if (next !== null) {
      this.cursor = next;
      this.drawOverlay();
    }
  }

  drawOverlay() {
    const a = this.area;
    const dpr = window.devicePixelRatio || 1;
    const ctx = this.overlay.getContext("2d");
    ctx.clearRect(0, 0, this.overlay.width / dpr, this.overlay.height / dpr);
    if (!a) return;
    if (this.drag && Math.abs(this.drag.to - this.drag.from) >= 2) {
      const lo = Math.max(a.left, Math.min(this.drag.from, this.drag.to));
      const hi = Math.min(a.left + a.width, Math.max(this.drag.from, this.drag.to));
      ctx.fillStyle = this.colors.accent;
      ctx.globalAlpha = 0.15;
      ctx.fillRect(lo, a.top, hi - lo, a.height);
      ctx.globalAlpha = 1;
    }
    if (this.cursor === null || this.cursor < a.x0 || this.cursor > a.x1) {
      this.hideReadout();
      return;
    }
    const x = Math.round(xPix(a, this.cursor)) + 0.5;
    ctx.strokeStyle = this.colors.muted;
    ctx.setLineDash([4, 3]);
    ctx.beginPath();
    ctx.moveTo(x, a.top);
    ctx.lineTo(x, a.top + a.height);
    ctx.stroke();
    ctx.setLineDash([]);
    const rows = [];
    for (const s of this.visible()) {
      const i = nearest(s.t, s.v, this.cursor, a.x0, a.x1);
      if (i < 0) continue;
      const v = s.v[i];
      ctx.fillStyle = this.color(s);
      ctx.beginPath();
      ctx.arc(xPix(a, s.t[i]), yPix(a, v), 4, 0, 2 * Math.PI);
      ctx.fill();
      rows.push({ s, v, t: s.t[i] });
    }
    this.showReadout(x, rows);
  }

  showReadout(x, rows) {
    const r = this.readout;
    const at = this.cursor;
    r.replaceChildren(
      el("div", { class: "readout-time" }, formatFull(at, this.tz)),
      ...rows.slice(0, 20).map(({ s, v, t }) =>
        el(
          "div",
          { class: "readout-row" },
          el("span", { class: "swatch", style: `background:${this.color(s)}` }),
          el("span", { class: "readout-name" }, s.name),
          el("span", { class: "readout-value" }, formatValue(v)),
          t !== at ? el("span", { class: "muted" }, ` @ ${formatFull(t, this.tz)}`) : null,
        ),
      ),
      ...(rows.length > 20 ? [el("div", { class: "muted" }, `… ${rows.length - 20} more`)] : []),
    );
    r.hidden = false;
    const boxW = this.box.clientWidth;
    const rw = r.offsetWidth;
    r.style.left = `${x + 12 + rw > boxW ? Math.max(0, x - 12 - rw) : x + 12}px`;
    r.style.top = `${this.area.top + 4}px`;
  }

  hideReadout() {
    this.readout.hidden = true;
    if (!this.drag && this.cursor !== null) {
      this.cursor = null;
      const dpr = window.devicePixelRatio || 1;
      const ctx = this.overlay.getContext("2d");
      ctx.clearRect(0, 0, this.overlay.width / dpr, this.overlay.height / dpr);
    }
  }
}

// ---- geometry

function xPix(a, t) {
  return a.left + ((t - a.x0) / (a.x1 - a.x0)) * a.width;
}
function xTime(a, x) {
  return a.x0 + ((x - a.left) / a.width) * (a.x1 - a.x0);
}
function yPix(a, v) {
  return a.top + a.height - ((v - a.y0) / (a.y1 - a.y0)) * a.height;
}

/** First index whose time is >= t. */
function lowerBound(ts, t) {
  let lo = 0;
  let hi = ts.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (ts[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** The index of the non-null point nearest to `t` within [x0, x1], or -1. */
function nearest(ts, vs, t, x0, x1) {
  const i = lowerBound(ts, t);
  let best = -1;
  for (let dir = -1; dir <= 1; dir += 2) {
    let j = dir < 0 ? i - 1 : i;
    while (j >= 0 && j < ts.length && vs[j] !== vs[j]) j += dir;
    if (j < 0 || j >= ts.length || ts[j] < x0 || ts[j] > x1) continue;
    if (best < 0 || Math.abs(ts[j] - t) < Math.abs(ts[best] - t)) best = j;
  }
  return best;
}

function yRange(folds) {
  let lo = Infinity;
  let hi = -Infinity;
  for (const f of folds) {
    if (!f.count) continue;
    lo = Math.min(lo, f.vmin);
    hi = Math.max(hi, f.vmax);
  }
  if (!Number.isFinite(lo)) return null;
  if (lo === hi) {
    const pad = Math.abs(lo) * 0.1 || 1;
    return [lo - pad, hi + pad];
  }
  const pad = (hi - lo) * 0.05;
  return [lo - pad, hi + pad];
}

/** Round-number ticks covering [lo, hi], about `count` of them. */
export function niceTicks(lo, hi, count) {
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) || 10 * mag;
  const first = Math.ceil(lo / step) * step;
  const ticks = [];
  for (let v = first; v <= hi + step * 1e-9; v += step) ticks.push(Math.abs(v) < step * 1e-9 ? 0 : v);
  return { lo, hi, step, ticks };
}

function formatTick(v, step) {
  if (Math.abs(v) >= 1e6 || (Math.abs(v) > 0 && Math.abs(v) < 1e-4)) return v.toExponential(Math.max(0, Math.min(6, -Math.floor(Math.log10(step / Math.abs(v || 1))))));
  const decimals = Math.max(0, Math.min(10, -Math.floor(Math.log10(step) + 1e-9)));
  return v.toFixed(decimals);
}

/** A value for the hover readout: full precision without binary noise. */
export function formatValue(v) {
  return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(12)));
}

// ---- time in a zone

const formatters = new Map();
function formatter(tz, opts) {
  const key = `${tz}|${JSON.stringify(opts)}`;
  let f = formatters.get(key);
  if (!f) {
    f = new Intl.DateTimeFormat("en-GB", { ...opts, timeZone: tz });
    formatters.set(key, f);
  }
  return f;
}

const PARTS = { year: "numeric", month: "2-digit", day: "2-digit", hour: "2-digit", minute: "2-digit", second: "2-digit", hourCycle: "h23" };

/** Wall-clock fields of `t` in `tz`: {year, month (1-12), day, hour, minute, second, ms}. */
export function zoned(t, tz) {
  const out = { ms: ((t % 1000) + 1000) % 1000 };
  for (const p of formatter(tz, PARTS).formatToParts(t)) {
    if (p.type !== "literal") out[p.type] = Number(p.value);
  }
  if (out.hour === 24) out.hour = 0;
  return out;
}

/** The offset of `tz` from UTC at instant `t`, in ms (local = t + offset). */
export function tzOffset(t, tz) {
  const z = zoned(t, tz);
  return Date.UTC(z.year, z.month - 1, z.day, z.hour, z.minute, z.second, z.ms) - t;
}

/** The instant whose wall clock in `tz` reads `local` (a Date.UTC of the fields). */
export function fromZoned(local, tz) {
  let t = local - tzOffset(local, tz);
  t = local - tzOffset(t, tz);
  return t;
}

const pad = (n, w = 2) => String(n).padStart(w, "0");

/** `2024-01-31 13:05:09.120` in `tz`. */
export function formatFull(t, tz) {
  const z = zoned(t, tz);
  return `${z.year}-${pad(z.month)}-${pad(z.day)} ${pad(z.hour)}:${pad(z.minute)}:${pad(z.second)}.${pad(z.ms, 3)}`;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * Ticks for [x0, x1] over `width` pixels in `tz`: [{t, label, context}], `context` (the
 * date or year) on the first tick and where it changes.
 */
export function timeTicks(x0, x1, width, tz) {
  const span = x1 - x0;
  const minPx = span < 10 * SECOND ? 110 : 80;
  const maxTicks = Math.max(2, Math.floor(width / minPx));
  const [size, kind] = STEPS.find(([s, k]) => (k === "ms" ? s : s * 30 * DAY) * maxTicks >= span) || STEPS[STEPS.length - 1];
  const times = kind === "ms" ? fixedTicks(x0, x1, size, tz) : monthTicks(x0, x1, size, tz);
  let prev = "";
  return times.map((t) => {
    const z = zoned(t, tz);
    const [label, context] = tickText(z, size, kind);
    const out = { t, label, context: context !== prev ? context : "" };
    prev = context;
    return out;
  });
}

function tickText(z, size, kind) {
  const date = `${z.day} ${MONTHS[z.month - 1]}`;
  if (kind === "month") return size >= 12 ? [String(z.year), ""] : [MONTHS[z.month - 1], String(z.year)];
  if (size >= DAY) return [date, String(z.year)];
  const hm = `${pad(z.hour)}:${pad(z.minute)}`;
  if (size >= MINUTE) return [hm, `${date} ${z.year}`];
  if (size >= SECOND) return [`${hm}:${pad(z.second)}`, `${date} ${z.year}`];
  return [`${hm}:${pad(z.second)}.${pad(z.ms, 3)}`, `${date} ${z.year}`];
}

function fixedTicks(x0, x1, step, tz) {
  const out = [];
  // Align in wall-clock time, so hour and day ticks fall on the zone's hours and midnights.
  const off = tzOffset(x0, tz);
  let local = Math.ceil((x0 + off) / step) * step;
  for (let guard = 0; guard < 500; guard++, local += step) {
    const t = step >= HOUR ? fromZoned(local, tz) : local - off;
    if (t > x1) break;
    if (t >= x0) out.push(t);
  }
  return out;
}

function monthTicks(x0, x1, months, tz) {
  const z = zoned(x0, tz);
  let m = z.year * 12 + (z.month - 1);
  m = Math.ceil(m / months) * months;
  const out = [];
  for (let guard = 0; guard < 500; guard++, m += months) {
    const t = fromZoned(Date.UTC(Math.floor(m / 12), m % 12, 1), tz);
    if (t > x1) break;
    if (t >= x0) out.push(t);
  }
  return out;
}

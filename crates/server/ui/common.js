// Shared by every page of the kairosdb-rs web UI: the API call with KairosDB's error
// bodies, error display where the user acted, the navigation bar, the light/dark theme,
// a tiny DOM builder and the URL-state helpers. No framework, no third-party code.

/** An API answer that was not a success: `status` and KairosDB's `errors` list. */
export class ApiError extends Error {
  constructor(status, errors) {
    super(errors.join("\n") || `HTTP ${status}`);
    this.status = status;
    this.errors = errors;
  }
}

/**
 * Calls the REST API. `body` (an object) is sent as JSON. Resolves to the parsed JSON, or
 * `null` for an empty answer (204); rejects with an ApiError carrying the server's
 * `{"errors":[...]}` messages, or the HTTP status text when the body has none.
 */
export async function api(path, { method = "GET", body, signal } = {}) {
  const init = { method, signal, headers: {} };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    init.headers["Content-Type"] = "application/json";
  }
  let response;
  try {
    response = await fetch(path, init);
  } catch (e) {
    if (e.name === "AbortError") throw e;
    throw new ApiError(0, [`Cannot reach the server (${e.message}).`]);
  }
  const text = await response.text();
  let json = null;
  if (text) {
    try {
      json = JSON.parse(text);
    } catch {
      json = null;
    }
  }
  if (!response.ok) {
    const errors = json && Array.isArray(json.errors) ? json.errors.map(String) : [];
    if (!errors.length) errors.push(`${response.status} ${response.statusText}`.trim());
    throw new ApiError(response.status, errors);
  }
  return json;
}

/**
 * Builds an element: `el("button", {class: "primary", onclick: f}, "Go")`. Attributes
 * starting with `on` become listeners; `null`/`false` attributes and children are skipped.
 */
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : String(c));
  }
  return node;
}

/**
 * Shows `err` in `box` (an element with class `error-box`, placed next to the control the
 * user acted on) and focuses it for screen readers; each server message on its own line.
 */
export function showError(box, err) {
  const lines = err instanceof ApiError ? err.errors : [err && err.message ? err.message : String(err)];
  box.replaceChildren(...lines.map((l) => el("div", {}, l)));
  box.hidden = false;
  box.setAttribute("role", "alert");
}

export function clearError(box) {
  box.replaceChildren();
  box.hidden = true;
}

/** The pages of the navigation bar, in order. */
const PAGES = [
  ["index.html", "Query"],
  ["explorer.html", "Metrics"],
  ["rollups.html", "Roll-ups"],
  ["status.html", "Server"],
];

/** Renders the top bar into `<header id="nav">`, marking `active` (a file name). */
export function renderNav(active) {
  const header = document.getElementById("nav");
  if (!header) return;
  const links = PAGES.map(([href, label]) =>
    el("a", { href, "aria-current": href === active ? "page" : null }, label),
  );
  const toggle = el(
    "button",
    { type: "button", class: "theme-toggle", title: "Switch light/dark theme", "aria-label": "Switch light/dark theme", onclick: () => setTheme(currentTheme() === "dark" ? "light" : "dark") },
    "◐",
  );
  header.replaceChildren(
    el("a", { href: "index.html", class: "brand" }, el("img", { src: "favicon.svg", alt: "", width: 20, height: 20 }), "KairosDB"),
    el("nav", { "aria-label": "Pages" }, links),
    toggle,
  );
}

function currentTheme() {
  return document.documentElement.dataset.theme ||
    (matchMedia("(prefers-color-scheme: dark)").matches ? "dark" : "light");
}

/** Sets and remembers the theme; pages call `applyTheme()` before first paint. */
export function setTheme(theme) {
  document.documentElement.dataset.theme = theme;
  try {
    localStorage.setItem("kairosdb.theme", theme);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  document.dispatchEvent(new CustomEvent("themechange", { detail: theme }));
}

export function applyTheme() {
  let saved = null;
  try {
    saved = localStorage.getItem("kairosdb.theme");
  } catch {
    saved = null;
  }
  if (saved) document.documentElement.dataset.theme = saved;
}

/** `f` called once `ms` after the last of a burst of calls. */
export function debounce(f, ms) {
  let timer;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => f(...args), ms);
  };
}

/** The page's URL query parameters as a plain object. */
export function readUrlState() {
  return Object.fromEntries(new URLSearchParams(location.search));
}

/**
 * Puts `state` (an object of strings) into the URL: a new history entry when `push`, so
 * Back returns to the previous state; otherwise the current entry is replaced.
 */
export function writeUrlState(state, push) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) {
    if (v !== undefined && v !== null && v !== "") params.set(k, v);
  }
  const url = `${location.pathname}${params.toString() ? `?${params}` : ""}`;
  if (url === `${location.pathname}${location.search}`) return;
  if (push) history.pushState(state, "", url);
  else history.replaceState(state, "", url);
}

applyTheme();

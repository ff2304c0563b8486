// An accessible autocompleting text input (the ARIA 1.2 combobox pattern): typing filters
// the options (prefix matches first, then substring), ↑/↓ move, Enter or a click picks,
// Escape or Tab closes. With `multi`, the input holds a comma-separated list and a pick
// replaces the item being typed. Used for metric names, tag names and tag values.
//
// Not here: where the options come from. `options()` may return an array or a promise;
// the caller fetches and caches.
import { el } from "./common.js";

let uid = 0;

/**
 * Turns `input` (already in the page, inside an element that can hold the popup) into a
 * combobox. `onPick(value)` runs after a pick. Returns `{ refresh, close }`.
 */
export function combobox(input, options, { onPick, multi = false, max = 50 } = {}) {
  const id = `combo-${++uid}`;
  const list = el("ul", { role: "listbox", id, class: "combo-list", hidden: true });
  input.after(list);
  input.parentElement.classList.add("combo");
  input.setAttribute("role", "combobox");
  input.setAttribute("aria-autocomplete", "list");
  input.setAttribute("aria-expanded", "false");
  input.setAttribute("aria-controls", id);
  input.setAttribute("autocomplete", "off");
  let items = [];
  let active = -1;
  let generation = 0;

  const term = () => (multi ? input.value.split(",").pop() : input.value).trim().toLowerCase();
  const close = () => {
    list.hidden = true;
    input.setAttribute("aria-expanded", "false");
    input.removeAttribute("aria-activedescendant");
    active = -1;
  };
  const highlight = (i) => {
    active = i;
    [...list.children].forEach((li, j) => li.setAttribute("aria-selected", String(j === i)));
    if (i >= 0) {
      input.setAttribute("aria-activedescendant", `${id}-${i}`);
      list.children[i].scrollIntoView({ block: "nearest" });
    }
  };
  const pick = (value) => {
    if (multi) {
      const parts = input.value.split(",").map((s) => s.trim());
      parts[parts.length - 1] = value;
      input.value = parts.filter(Boolean).join(", ");
    } else {
      input.value = value;
    }
    close();
    if (onPick) onPick(value);
  };
  const refresh = async () => {
    const mine = ++generation;
    let all;
    try {
      all = (await options()) || [];
    } catch {
      all = [];
    }
    if (mine !== generation || document.activeElement !== input) return;
    const q = term();
    const prefix = [];
    const inside = [];
    for (const o of all) {
      const lower = o.toLowerCase();
      if (lower.startsWith(q)) prefix.push(o);
      else if (q && lower.includes(q)) inside.push(o);
      if (prefix.length >= max) break;
    }
    items = prefix.concat(inside).slice(0, max);
    if (!items.length || (items.length === 1 && items[0].toLowerCase() === q)) {
      close();
      return;
    }
    list.replaceChildren(
      ...items.map((o, i) => {
        const li = el("li", { role: "option", id: `${id}-${i}`, "aria-selected": "false" }, o);
        li.addEventListener("mousedown", (e) => e.preventDefault());
        li.addEventListener("click", () => pick(o));
        return li;
      }),
    );
    list.hidden = false;
    input.setAttribute("aria-expanded", "true");
    highlight(-1);
  };

  input.addEventListener("input", refresh);
  input.addEventListener("focus", refresh);
  input.addEventListener("blur", () => setTimeout(close, 100));
  input.addEventListener("keydown", (e) => {
    const open = !list.hidden;
    if (e.key === "ArrowDown" || e.key === "ArrowUp") {
      e.preventDefault();
      if (!open) {
        refresh();
        return;
      }
      const n = items.length;
      highlight(e.key === "ArrowDown" ? (active + 1) % n : (active - 1 + n) % n);
    } else if (e.key === "Enter" && open && active >= 0) {
      e.preventDefault();
      pick(items[active]);
    } else if (e.key === "Escape" && open) {
      e.preventDefault();
      e.stopPropagation();
      close();
    } else if (e.key === "Tab") {
      close();
    }
  });
  return { refresh, close };
}

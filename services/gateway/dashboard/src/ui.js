// Shared pieces of the pages: sections, figures, tables that take live updates, the trading state.

import { cell, h, pick, replace } from "./dom.js";

export function section(title, ...children) {
  return h("section", { class: "panel", "aria-label": title }, h("h2", {}, title), ...children);
}

export function stat(label, value, attrs = {}) {
  return h("div", { class: "stat", ...attrs }, h("span", { class: "stat-label" }, label), h("span", { class: "stat-value" }, value));
}

export function message(text, kind = "muted") {
  return h("p", { class: kind }, text);
}

export function errorText(error) {
  return `could not load: ${error?.message || error}`;
}

// A table of rows: columns [{label, get(row) | key, format?}]; rowKey(row) names a row so live updates replace it;
// onOpen(row) adds a button in the first column (the drill-down), so a row opens with the keyboard too.
export function table({ name, columns, rowKey, onOpen, empty = "nothing yet", limit = 500 }) {
  const body = h("tbody");
  const emptyRow = h("tr", {}, h("td", { colspan: columns.length, class: "muted" }, empty));
  const el = h(
    "div",
    { class: "table-wrap", tabindex: 0, role: "region", "aria-label": name },
    h("table", { dataset: { table: name } }, h("thead", {}, h("tr", {}, columns.map((c) => h("th", { scope: "col" }, c.label)))), body),
  );
  const rows = new Map();
  const value = (c, row) => {
    const v = c.get ? c.get(row) : pick(row, c.key);
    return c.format ? c.format(v) : cell(v);
  };
  const render = (row) => {
    const tr = h("tr", { dataset: { key: rowKey ? rowKey(row) : "" } });
    columns.forEach((c, i) => {
      const text = value(c, row);
      const content =
        i === 0 && onOpen ? h("button", { type: "button", class: "link", onclick: () => onOpen(row) }, text) : text;
      tr.append(h("td", { class: c.class || "" }, content));
    });
    return tr;
  };
  const api = {
    el,
    set(items) {
      rows.clear();
      replace(body);
      for (const item of items.slice(0, limit)) api.upsert(item, false);
      if (!items.length) body.append(emptyRow);
    },
    upsert(item, first = true) {
      emptyRow.remove();
      const key = rowKey ? rowKey(item) : String(Math.random());
      const tr = render(item);
      const old = rows.get(key);
      if (old) old.replaceWith(tr);
      else if (first) body.prepend(tr);
      else body.append(tr);
      rows.set(key, tr);
      while (rows.size > limit) {
        const [oldest, node] = rows.entries().next().value;
        node.remove();
        rows.delete(oldest);
      }
      return tr;
    },
    size: () => rows.size,
  };
  api.set([]);
  return api;
}

// The trading state's name. UNSPECIFIED is the read model's "no change recorded yet": the risk service then trades
// in its default state, ACTIVE.
export function stateName(value) {
  const text = String(pick(value ?? {}, "trading_state", "state") ?? value ?? "").toUpperCase();
  const name = text.replace(/^TRADING_STATE_/, "");
  return name === "UNSPECIFIED" ? "ACTIVE" : name || "UNKNOWN";
}

export function stateBadge(state) {
  const name = stateName(state);
  return h("span", { class: `badge state-${name.toLowerCase()}`, dataset: { state: name } }, name);
}

// The ISO time `seconds` ago (a default range for the time-windowed lists).
export function since(seconds) {
  return new Date(Date.now() - seconds * 1000).toISOString();
}

// At most one call of `fn` per `ms` (the last request wins): live events come in bursts, and re-reading the API for
// each would meet the gateway's per-user rate limit.
export function throttle(fn, ms = 1000) {
  let timer = null;
  let last = 0;
  return () => {
    const wait = last + ms - Date.now();
    if (wait <= 0) {
      last = Date.now();
      fn();
    } else if (!timer) {
      timer = setTimeout(() => {
        timer = null;
        last = Date.now();
        fn();
      }, wait);
    }
  };
}

// One error line per place: a failed re-read replaces the last one instead of piling up.
export function showError(container, error) {
  let line = container.querySelector(":scope > p.error");
  if (!line) {
    line = h("p", { class: "error" });
    container.append(line);
  }
  replace(line, errorText(error));
}

export function numberOr(value) {
  const n = Number(value);
  return Number.isFinite(n) ? n : null;
}

// DOM helpers: elements are built with properties and text nodes only (never HTML strings), so nothing the API
// returns can become markup, and no inline style or script reaches the page (the CSP allows neither).

export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

// Decimals arrive as strings and stay strings for display: rounded half up to `places` and grouped without a float
// round trip (money is never a float here).
export function money(value, places = 2) {
  if (value === undefined || value === null || value === "") return "–";
  const text = String(value);
  const match = /^(-?)(\d+)(?:\.(\d+))?$/.exec(text);
  if (!match) return text;
  const [, sign, whole, frac = ""] = match;
  let digits = (whole + frac.padEnd(places, "0").slice(0, places)).split("").map(Number);
  if (Number(frac[places] ?? 0) >= 5) {
    let i = digits.length - 1;
    while (i >= 0 && digits[i] === 9) digits[i--] = 0;
    if (i < 0) digits = [1, ...digits];
    else digits[i] += 1;
  }
  const all = digits.join("");
  const int = all.slice(0, all.length - places).replace(/^0+(?=\d)/, "") || "0";
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  const zero = /^[0,]*$/.test(grouped) && /^0*$/.test(all.slice(all.length - places));
  return `${sign && !zero ? "-" : ""}${grouped}${places ? `.${all.slice(all.length - places)}` : ""}`;
}

export function num(value, digits = 2) {
  if (value === undefined || value === null || value === "") return "–";
  const n = Number(value);
  return Number.isFinite(n) ? n.toFixed(digits) : String(value);
}

export function pct(value) {
  if (value === undefined || value === null || value === "") return "–";
  const n = Number(value);
  return Number.isFinite(n) ? `${(n * 100).toFixed(1)} %` : String(value);
}

// A time from the API: an RFC 3339 string, or UNIX ns / ms / s as a number.
export function toMillis(value) {
  if (value === undefined || value === null || value === "") return NaN;
  if (typeof value === "number") {
    if (value > 1e17) return value / 1e6;
    if (value > 1e14) return value / 1e3;
    if (value > 1e11) return value;
    return value * 1000;
  }
  if (/^\d+$/.test(String(value))) return toMillis(Number(value));
  return Date.parse(String(value));
}

export function time(value) {
  const ms = toMillis(value);
  if (!Number.isFinite(ms)) return value ? String(value) : "–";
  return new Date(ms).toISOString().replace("T", " ").replace(/\.\d+Z$/, "Z");
}

export function cell(value) {
  if (value === undefined || value === null || value === "") return "–";
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

// A value by a dotted path, the first of several candidate paths that is present.
export function pick(item, ...paths) {
  for (const path of paths) {
    let value = item;
    for (const part of path.split(".")) value = value == null ? undefined : value[part];
    if (value !== undefined && value !== null && value !== "") return value;
  }
  return undefined;
}

// Tiny DOM helpers: build elements without innerHTML, so no markup is ever parsed from data.

const SVG_NS = "http://www.w3.org/2000/svg";

function assign(el, attrs) {
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === "class") el.setAttribute("class", value);
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
}

function append(el, children) {
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** An HTML element: h("button", {class: "x", onclick: fn}, "Label"). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  assign(el, attrs);
  append(el, children);
  return el;
}

/** An SVG element, same calling convention as h(). */
export function s(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  assign(el, attrs);
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);

/** Show or hide an element (the `hidden` attribute, so it is hidden from screen readers too). */
export function show(el, visible = true) {
  el.hidden = !visible;
}

/** A number with thousands separators. */
export function count(n) {
  return Number(n).toLocaleString("en-US");
}

/** Dollars: $1,234 for large amounts, $12.34 for small ones. */
export function usd(n) {
  const digits = Math.abs(n) >= 100 ? 0 : 2;
  return `$${Number(n).toLocaleString("en-US", { minimumFractionDigits: digits, maximumFractionDigits: digits })}`;
}

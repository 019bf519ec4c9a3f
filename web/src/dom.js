// Small DOM helpers. Elements are built with properties and CSSOM, never with inline
// style attributes or inline scripts: the server's CSP (default-src 'self') forbids them.

const SVG_NS = "http://www.w3.org/2000/svg";

/**
 * h builds an element: h("button.primary", {onclick, type: "button"}, "Create").
 * Attribute keys starting with "on" become listeners, "class" and "style" (an object) are
 * applied through the DOM, "aria-*", "data-*", "role", "for" and friends become attributes,
 * everything else is set as a property. Children may be strings, nodes, arrays or null.
 */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  apply(el, attrs);
  append(el, children);
  return el;
}

/** s builds an SVG element the same way (attributes only). */
export function s(name, attrs, ...children) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v !== undefined && v !== null && v !== false) el.setAttribute(k, String(v));
  }
  append(el, children);
  return el;
}

const ATTRS = /^(aria-|data-|role$|for$|list$|form$|tabindex$|scope$|colspan$|datetime$|inputmode$|autocomplete$|download$|rel$)/;

function apply(el, attrs) {
  if (!attrs) return;
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className += (el.className ? " " : "") + v;
    else if (k === "style") Object.assign(el.style, v);
    else if (ATTRS.test(k)) el.setAttribute(k, v === true ? "" : String(v));
    else el[k] = v;
  }
}

/** append adds children (strings, nodes, nested arrays; null and false are skipped). */
export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

/** replace empties el and fills it with children. */
export function replace(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

/** visuallyHidden is text for screen readers only. */
export const srOnly = (text) => h("span.sr-only", null, text);

/** uid returns a unique id for label/aria wiring. */
let seq = 0;
export const uid = (p = "id") => `${p}-${++seq}`;

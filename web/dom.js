// @ts-check
// Building the page's DOM. Text always goes in as text nodes, never as markup, so nothing a user, the agent
// or the server says can become an element or a script.

/** @typedef {Node | string | number | null | undefined | false} Child */
/** @typedef {Record<string, string | number | boolean | null | undefined>} Attrs */

/** Attributes that name a URL: a script URL there would run on a click. */
const URL_ATTRIBUTES = new Set(['href', 'src', 'action', 'formaction', 'xlink:href']);
const SAFE_SCHEMES = new Set(['http:', 'https:', 'mailto:']);

/**
 * Whether a URL is one the page may link to: http(s) or mailto, or the page's own (a relative URL such as
 * `#/tasks`). Anything else (javascript:, data:, vbscript:, …) is refused.
 * @param {string} url
 * @param {{ absoluteOnly?: boolean }} [options] absoluteOnly: a relative URL is refused too (links in messages)
 */
export function isSafeUrl(url, options = {}) {
  let parsed;
  try {
    parsed = options.absoluteOnly ? new URL(url) : new URL(url, location.href);
  } catch {
    return false;
  }
  return SAFE_SCHEMES.has(parsed.protocol);
}

/**
 * An element with attributes and children. `true` sets an empty attribute; null, undefined and false leave it
 * out. Event-handler attributes (`on…`) and unsafe URLs are refused: listeners are added with addEventListener.
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {Attrs} [attrs]
 * @param {...(Child | Child[])} children
 * @returns {HTMLElementTagNameMap[K]}
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (/^on/i.test(name)) throw new Error(`h(): refusing the event attribute ${name}`);
    if (value === null || value === undefined || value === false) continue;
    const text = value === true ? '' : String(value);
    if (URL_ATTRIBUTES.has(name.toLowerCase()) && !isSafeUrl(text)) throw new Error(`h(): refusing the URL ${text}`);
    el.setAttribute(name, text);
  }
  append(el, ...children);
  return el;
}

/**
 * Appends children; strings and numbers become text nodes.
 * @param {Node} parent
 * @param {...(Child | Child[])} children
 */
export function append(parent, ...children) {
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === 'string' || typeof child === 'number' ? document.createTextNode(String(child)) : child);
  }
}

/**
 * Replaces an element's children.
 * @param {Element} parent
 * @param {...(Child | Child[])} children
 */
export function replace(parent, ...children) {
  parent.replaceChildren();
  append(parent, ...children);
}

/**
 * An element the page's shell must have; a missing one is a bug in index.html, not a runtime condition.
 * @template {HTMLElement} E
 * @param {string} selector
 * @param {new () => E} type
 * @param {ParentNode} [root]
 * @returns {E}
 */
export function required(selector, type, root = document) {
  const el = root.querySelector(selector);
  if (!(el instanceof type)) throw new Error(`the page has no ${selector}`);
  return el;
}

/**
 * A table inside a box that scrolls sideways on a narrow screen.
 * @param {Attrs} attrs the table's attributes
 * @param {string[]} headings
 * @param {HTMLTableRowElement[]} rows
 * @param {HTMLTableRowElement[]} [footer]
 */
export function table(attrs, headings, rows, footer = []) {
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      attrs,
      h('thead', {}, h('tr', {}, ...headings.map((text) => h('th', { scope: 'col' }, text)))),
      h('tbody', {}, ...rows),
      footer.length > 0 ? h('tfoot', {}, ...footer) : null,
    ),
  );
}

/**
 * A table cell; `label` names the column for the stacked layout on phones.
 * @param {string} label
 * @param {...(Child | Child[])} children
 */
export function cell(label, ...children) {
  return h('td', { 'data-label': label }, ...children);
}

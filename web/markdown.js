// @ts-check
// Markdown to DOM. marked only splits the text into tokens; the elements are built here, one known token
// type at a time, with text always as text nodes. Raw HTML shows as the text it is, images are not loaded,
// and a link works only for http, https and mailto.
import { h, isSafeUrl } from './dom.js';
import { Lexer } from './vendor/marked.js';

/**
 * @typedef {import('./vendor/marked.js').Token} Token
 * @typedef {import('./vendor/marked.js').MarkedToken} MarkedToken
 * @typedef {import('./vendor/marked.js').Tokens.Generic} GenericToken
 * @typedef {import('./vendor/marked.js').Tokens.List} ListToken
 * @typedef {import('./vendor/marked.js').Tokens.Table} TableToken
 * @typedef {import('./vendor/marked.js').Tokens.TableCell} TableCell
 */

/** The lexer leaves named character references as written (numeric ones it decodes); these are the usual ones. */
const ENTITIES = /** @type {Record<string, string>} */ ({ amp: '&', lt: '<', gt: '>', quot: '"', apos: "'", nbsp: '\u00a0' });

/** @param {string} text */
const decode = (text) => text.replace(/&([a-z]+);/g, (whole, name) => ENTITIES[name] ?? whole);

/**
 * The elements for a markdown text, in a fragment.
 * @param {string} source
 * @returns {DocumentFragment}
 */
export function renderMarkdown(source) {
  const fragment = document.createDocumentFragment();
  appendBlocks(fragment, new Lexer({ gfm: true }).lex(source));
  return fragment;
}

/**
 * @param {Node} parent
 * @param {Token[]} tokens
 */
function appendBlocks(parent, tokens) {
  for (const token of tokens) {
    const node = block(token);
    if (node) parent.appendChild(node);
  }
}

/**
 * @param {Node} parent
 * @param {Token[] | undefined} tokens
 */
function appendInline(parent, tokens) {
  for (const token of tokens ?? []) parent.appendChild(inline(token));
  return parent;
}

/**
 * @param {Token} any
 * @returns {Node | null}
 */
function block(any) {
  // marked's own token types; anything else (an extension's) is handled by the default branch.
  const token = /** @type {MarkedToken} */ (any);
  switch (token.type) {
    case 'space':
    case 'def':
      return null;
    case 'paragraph':
      return appendInline(h('p'), token.tokens);
    case 'heading':
      // A reply's headings sit inside a message: h1 becomes h3, and so on down to h6.
      return appendInline(h(headingTag(token.depth), { class: 'md-heading' }), token.tokens);
    case 'code':
      return codeBlock(token.text, token.lang);
    case 'blockquote': {
      const quote = h('blockquote');
      appendBlocks(quote, token.tokens);
      return quote;
    }
    case 'list':
      return list(token);
    case 'table':
      return tableOf(token);
    case 'hr':
      return h('hr');
    case 'html':
      // Shown as written, never interpreted.
      return h(token.block ? 'pre' : 'span', { class: 'md-html' }, token.text);
    case 'text':
      // A tight list item's text: inline content without a paragraph around it.
      return token.tokens ? appendInline(document.createDocumentFragment(), token.tokens) : document.createTextNode(decode(token.text));
    case 'checkbox':
      return checkbox(token.checked);
    default:
      return inline(any);
  }
}

/** How long a copy button says what happened. */
const COPY_NOTICE_MS = 2000;

/**
 * A fenced or indented code block: its language named above it, with a button that copies the code.
 * @param {string} code
 * @param {string | undefined} info the fence's info string, e.g. "ts" or "js title=x"
 */
function codeBlock(code, info) {
  const lang = info?.trim().split(/\s+/, 1)[0] ?? '';
  const codeEl = h('code', lang ? { 'data-lang': lang } : {}, code);
  const copy = h('button', { type: 'button', class: 'copy secondary', title: 'Copy the code' }, 'Copy');
  /** @type {ReturnType<typeof setTimeout> | undefined} */
  let reset;
  /** @param {string} text */
  const say = (text) => {
    copy.textContent = text;
    clearTimeout(reset);
    reset = setTimeout(() => {
      copy.textContent = 'Copy';
    }, COPY_NOTICE_MS);
  };
  copy.addEventListener('click', async () => {
    try {
      // Only a secure context (https, or localhost) has the Clipboard API.
      if (!navigator.clipboard) throw new Error('no clipboard here');
      await navigator.clipboard.writeText(code);
      say('Copied');
    } catch {
      // The code is selected instead, for the keyboard's copy.
      getSelection()?.selectAllChildren(codeEl);
      say('Selected: press Ctrl+C');
    }
  });
  return h(
    'div',
    { class: 'code-block' },
    h('div', { class: 'code-head' }, h('span', { class: 'code-lang' }, lang || 'code'), copy),
    h('pre', {}, codeEl),
  );
}

/** @param {number} depth */
function headingTag(depth) {
  return depth <= 1 ? 'h3' : depth === 2 ? 'h4' : depth === 3 ? 'h5' : 'h6';
}

/**
 * @param {Token} any
 * @returns {Node}
 */
function inline(any) {
  const token = /** @type {MarkedToken} */ (any);
  switch (token.type) {
    case 'text':
      return token.tokens ? appendInline(document.createDocumentFragment(), token.tokens) : document.createTextNode(decode(token.text));
    case 'escape':
      return document.createTextNode(token.text);
    case 'strong':
      return appendInline(h('strong'), token.tokens);
    case 'em':
      return appendInline(h('em'), token.tokens);
    case 'del':
      return appendInline(h('del'), token.tokens);
    case 'codespan':
      return h('code', {}, token.text);
    case 'br':
      return h('br');
    case 'link':
      return link(token.href, token.title ?? null, appendInline(document.createDocumentFragment(), token.tokens));
    case 'image':
      // Never loaded (it would tell a third party that the page was read): a link named by its alt text.
      return link(token.href, token.title, document.createTextNode(token.text || 'image'));
    case 'html':
      return document.createTextNode(token.text);
    case 'checkbox':
      return checkbox(token.checked);
    default:
      return genericInline(any);
  }
}

/**
 * A token type this renderer does not know: its children if it has any, else its source text.
 * @param {GenericToken} token
 */
function genericInline(token) {
  return token.tokens ? appendInline(document.createDocumentFragment(), token.tokens) : document.createTextNode(token.raw);
}

/**
 * A link to an http, https or mailto address; for anything else just its label.
 * @param {string} href
 * @param {string | null} title
 * @param {Node} label
 */
function link(href, title, label) {
  if (!isSafeUrl(href, { absoluteOnly: true })) return label;
  const a = h('a', { href, title, rel: 'noopener noreferrer', target: '_blank' });
  a.appendChild(label);
  return a;
}

/** @param {boolean} checked */
function checkbox(checked) {
  return h('input', { type: 'checkbox', disabled: true, checked });
}

/** @param {ListToken} token */
function list(token) {
  const start = token.ordered && typeof token.start === 'number' && token.start !== 1 ? token.start : null;
  const el = token.ordered ? h('ol', { start }) : h('ul');
  for (const item of token.items) {
    const li = h('li', { class: item.task ? 'task' : null });
    appendBlocks(li, item.tokens);
    el.appendChild(li);
  }
  return el;
}

/** @param {TableToken} token */
function tableOf(token) {
  /**
   * @param {'th' | 'td'} tag
   * @param {TableCell} cell
   */
  const cellOf = (tag, cell) => appendInline(h(tag, { class: cell.align ? `align-${cell.align}` : null }), cell.tokens);
  return h(
    'div',
    { class: 'table-wrap' },
    h(
      'table',
      {},
      h('thead', {}, h('tr', {}, ...token.header.map((cell) => cellOf('th', cell)))),
      h('tbody', {}, ...token.rows.map((row) => h('tr', {}, ...row.map((cell) => cellOf('td', cell))))),
    ),
  );
}

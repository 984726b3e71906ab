// The agent's Markdown, read by marked's lexer, as styled text: what a messenger can show of it. Headings become
// bold lines, lists keep their markers, a table becomes a monospace block, and nothing of the Markdown syntax
// itself (`**`, `##`, `|---|`) is left for a reader to see.
import { lexer, type Token, type Tokens } from 'marked';
import { bySpanOrder, type Span, type StyledText } from './styled.js';

export interface MarkdownOptions {
  /** The marker of an unordered list item ("•", or "-" where the platform formats lists itself). */
  bullet: string;
  /** `span`: a link is a span of its label; `inline`: the platform has no links, so the address follows the label. */
  links: 'span' | 'inline';
}

/** Addresses a platform opens as a link; others (relative, `javascript:`) stay text. */
const LINKABLE = /^(https?:\/\/|mailto:|tg:\/\/)/i;
const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', '#39': "'" };

export function markdownToStyled(markdown: string, options: MarkdownOptions): StyledText {
  const out = new StyledBuilder(options);
  out.blocks(lexer(markdown), false);
  out.spans.sort(bySpanOrder);
  return { text: out.text, spans: out.spans };
}

class StyledBuilder {
  text = '';
  spans: Span[] = [];
  readonly #o: MarkdownOptions;

  constructor(options: MarkdownOptions) {
    this.#o = options;
  }

  /** Blocks one after another: a blank line between them, or a line break inside a tight list item. */
  blocks(tokens: readonly Token[], tight: boolean): void {
    let first = true;
    for (const token of tokens) {
      // A task item's box is part of its marker (see #list).
      if (token.type === 'space' || token.type === 'def' || token.type === 'checkbox') continue;
      if (!first) this.text += tight ? '\n' : '\n\n';
      first = false;
      this.#block(token);
    }
  }

  #block(token: Token): void {
    switch (token.type) {
      case 'heading':
        this.#span('bold', () => this.inline((token as Tokens.Heading).tokens));
        return;
      case 'paragraph':
        this.inline((token as Tokens.Paragraph).tokens);
        return;
      case 'text': {
        const t = token as Tokens.Text;
        if (t.tokens) this.inline(t.tokens);
        else this.text += decode(t.text);
        return;
      }
      case 'code': {
        const code = token as Tokens.Code;
        const lang = code.lang?.trim().split(/\s/)[0];
        this.#span(
          'pre',
          () => {
            this.text += code.text;
          },
          lang ? { language: lang } : {},
        );
        return;
      }
      case 'blockquote':
        this.#span('quote', () => this.blocks((token as Tokens.Blockquote).tokens, false));
        return;
      case 'list':
        this.#list(token as Tokens.List);
        return;
      case 'table':
        this.#table(token as Tokens.Table);
        return;
      case 'hr':
        this.text += '———';
        return;
      case 'html':
        this.text += (token as Tokens.HTML).text.trim();
        return;
      default:
        if ('text' in token && typeof token.text === 'string') this.text += token.text;
    }
  }

  #list(list: Tokens.List): void {
    const start = typeof list.start === 'number' ? list.start : 1;
    list.items.forEach((item, i) => {
      if (i > 0) this.text += list.loose ? '\n\n' : '\n';
      const box = item.task ? (item.checked ? '☑ ' : '☐ ') : '';
      const marker = `${list.ordered ? `${start + i}.` : this.#o.bullet} ${box}`;
      const sub = new StyledBuilder(this.#o);
      sub.blocks(item.tokens, !list.loose);
      // Lines after an item's first line are indented under its text, as a reader expects of nested lists.
      this.#appendIndented(sub, marker, ' '.repeat(marker.length - box.length));
    });
  }

  /** Appends what `sub` built, `first` before its first line and `rest` before every other line that has text. */
  #appendIndented(sub: StyledBuilder, first: string, rest: string): void {
    const base = this.text.length + first.length;
    // Where each position of `sub.text` lands in the appended text (one past its end included).
    const moved: number[] = [];
    let text = '';
    for (let i = 0; i <= sub.text.length; i++) {
      moved.push(base + text.length);
      const ch = sub.text[i];
      if (ch === undefined) break;
      text += ch;
      const next = sub.text[i + 1];
      if (ch === '\n' && next !== undefined && next !== '\n') text += rest;
    }
    this.text += first + text;
    for (const span of sub.spans) this.spans.push({ ...span, start: moved[span.start] ?? base, end: moved[span.end] ?? base });
  }

  /** A table as a monospace block of aligned columns: readable on every platform, unlike `|---|` rows. */
  #table(table: Tokens.Table): void {
    const rows = [table.header, ...table.rows].map((row) => row.map((cell) => plainOf(cell.tokens)));
    const widths = rows[0]?.map((_, col) => Math.max(...rows.map((row) => width(row[col] ?? '')))) ?? [];
    const line = (row: string[]) =>
      row
        .map((cell, col) => cell + ' '.repeat(Math.max(0, (widths[col] ?? 0) - width(cell))))
        .join(' | ')
        .trimEnd();
    const rule = widths.map((w) => '-'.repeat(w)).join('-+-');
    const [header = [], ...body] = rows;
    this.#span('pre', () => {
      this.text += [line(header), rule, ...body.map(line)].join('\n');
    });
  }

  inline(tokens: readonly Token[]): void {
    for (const token of tokens) {
      switch (token.type) {
        case 'strong':
          this.#span('bold', () => this.inline((token as Tokens.Strong).tokens));
          break;
        case 'em':
          this.#span('italic', () => this.inline((token as Tokens.Em).tokens));
          break;
        case 'del':
          this.#span('strike', () => this.inline((token as Tokens.Del).tokens));
          break;
        case 'codespan':
          this.#span('code', () => {
            this.text += decode((token as Tokens.Codespan).text);
          });
          break;
        case 'br':
          this.text += '\n';
          break;
        case 'link':
          this.#link((token as Tokens.Link).href, () => this.inline((token as Tokens.Link).tokens), plainOf((token as Tokens.Link).tokens));
          break;
        case 'image': {
          const image = token as Tokens.Image;
          this.#link(
            image.href,
            () => {
              this.text += image.text || image.href;
            },
            image.text,
          );
          break;
        }
        case 'checkbox':
          this.text += (token as Tokens.Checkbox).checked ? '☑ ' : '☐ ';
          break;
        // Inline HTML tags are markup no messenger shows: the text between them stays.
        case 'html':
          break;
        case 'text':
        case 'escape': {
          const t = token as Tokens.Text;
          if (t.tokens) this.inline(t.tokens);
          else this.text += decode(t.text);
          break;
        }
        default:
          if ('text' in token && typeof token.text === 'string') this.text += decode(token.text);
      }
    }
  }

  #link(href: string, label: () => void, labelText: string): void {
    const linkable = LINKABLE.test(href);
    // A bare address needs no label: every platform turns it into a link by itself.
    if (labelText === href || labelText === href.replace(/^mailto:/i, '')) {
      this.text += labelText;
      return;
    }
    if (linkable && this.#o.links === 'span') {
      this.#span('link', label, { url: href });
      return;
    }
    label();
    if (href) this.text += ` (${href})`;
  }

  #span(style: Span['style'], body: () => void, extra: Pick<Span, 'url' | 'language'> = {}): void {
    // Recorded before its body, so that of two spans over the same text the outer one comes first.
    const span: Span = { style, start: this.text.length, end: this.text.length, ...extra };
    this.spans.push(span);
    body();
    span.end = this.text.length;
    if (span.end === span.start) this.spans.splice(this.spans.indexOf(span), 1);
  }
}

/** The text of inline tokens without their formatting (table cells, link labels). */
function plainOf(tokens: readonly Token[]): string {
  const b = new StyledBuilder({ bullet: '•', links: 'inline' });
  b.inline(tokens);
  return b.text.replace(/\n/g, ' ');
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** Emoji, flags and East Asian wide letters take two columns of a monospace font. */
const WIDE =
  /\p{Extended_Pictographic}|\p{Regional_Indicator}|[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}\p{Script=Hangul}\u3000-\u303f\uff01-\uff60]/u;

/** Columns a cell takes in a monospace font, counted per character a reader sees. */
function width(text: string): number {
  let n = 0;
  for (const { segment } of graphemes.segment(text)) n += WIDE.test(segment) ? 2 : 1;
  return n;
}

/** marked leaves the basic HTML entities of the source as written; a reader should see the characters. */
function decode(text: string): string {
  return text.replace(/&(amp|lt|gt|quot|#39);/g, (whole, name: string) => ENTITIES[name] ?? whole);
}

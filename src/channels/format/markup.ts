// Styled text written out in a platform's own markup (WhatsApp, Slack's mrkdwn, Discord's Markdown): markers
// around each span, inline ones line by line and hugging the text (a marker next to a space is not read as one).
import type { Span, StyledText } from './styled.js';

export interface MarkupSyntax {
  bold: string;
  italic: string;
  strike: string;
  /** Inline code around `code` (already escaped for code). */
  code(code: string): string;
  /** A code block. */
  pre(code: string, language: string | undefined): string;
  link(label: string, url: string): string;
  /** Put before every line of a quote. */
  quote: string;
  /** Plain text, so that nothing in it reads as markup. */
  escape(text: string): string;
  /** Text inside code. */
  escapeCode(text: string): string;
}

export function toMarkup(styled: StyledText, syntax: MarkupSyntax): string {
  return renderRange(styled.text, styled.spans, 0, styled.text.length, syntax);
}

/** `text[from, to)` with `spans` (all within it, outer first) written out. */
function renderRange(text: string, spans: readonly Span[], from: number, to: number, syntax: MarkupSyntax): string {
  let out = '';
  let pos = from;
  let i = 0;
  while (i < spans.length) {
    const span = spans[i] as Span;
    let j = i + 1;
    while (j < spans.length && (spans[j] as Span).start < span.end) j++;
    out += syntax.escape(text.slice(pos, span.start));
    out += renderSpan(text, span, spans.slice(i + 1, j), syntax);
    pos = span.end;
    i = j;
  }
  return out + syntax.escape(text.slice(pos, to));
}

function renderSpan(text: string, span: Span, inner: readonly Span[], syntax: MarkupSyntax): string {
  const body = () => renderRange(text, inner, span.start, span.end, syntax);
  switch (span.style) {
    case 'code':
      return hug(syntax.escapeCode(text.slice(span.start, span.end)), syntax.code);
    case 'pre':
      return syntax.pre(syntax.escapeCode(text.slice(span.start, span.end)), span.language);
    case 'quote':
      return body()
        .split('\n')
        .map((line) => `${syntax.quote}${line}`)
        .join('\n');
    case 'link':
      return syntax.link(body(), span.url ?? '');
    case 'bold':
      return byLine(body(), syntax.bold);
    case 'italic':
      return byLine(body(), syntax.italic);
    case 'strike':
      return byLine(body(), syntax.strike);
  }
}

/** Each line's text between `marker`s: these markers do not reach over a line break. */
function byLine(body: string, marker: string): string {
  return body
    .split('\n')
    .map((line) => hug(line, (core) => `${marker}${core}${marker}`))
    .join('\n');
}

/** `wrap` around the text without its surrounding white space, which stays outside the markers. */
function hug(text: string, wrap: (core: string) => string): string {
  const core = text.trim();
  if (!core) return text;
  const lead = text.slice(0, text.indexOf(core));
  return `${lead}${wrap(core)}${text.slice(lead.length + core.length)}`;
}

/** Three backticks in code would end its block early: a zero-width space keeps them apart. */
export function breakFences(code: string): string {
  return code.replaceAll('```', '`\u200b`\u200b`');
}

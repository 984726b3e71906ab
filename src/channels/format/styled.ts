// A reply as a messenger shows it: the text a reader sees, and the spans of it that are formatted. Every
// platform renderer starts from this; offsets count UTF-16 code units, as JavaScript strings (and Telegram's
// entities, and Signal's text styles) do.

export type SpanStyle = 'bold' | 'italic' | 'strike' | 'code' | 'pre' | 'link' | 'quote';

export interface Span {
  style: SpanStyle;
  start: number;
  end: number;
  /** For `link`: where it points. */
  url?: string;
  /** For `pre`: the code's language, when the Markdown named one. */
  language?: string;
}

/** Spans nest (a span either holds another whole or does not touch it), ordered by start, outer first. */
export interface StyledText {
  text: string;
  spans: Span[];
}

/** Outer spans before the spans they hold: by start, then the longer first. */
export function bySpanOrder(a: Span, b: Span): number {
  return a.start - b.start || b.end - a.end;
}

/** The part of `styled` between `from` and `to`, its spans clipped to it (a span cut in two stays on each side). */
export function sliceStyled(styled: StyledText, from: number, to: number): StyledText {
  const spans: Span[] = [];
  for (const span of styled.spans) {
    const start = Math.max(span.start, from);
    const end = Math.min(span.end, to);
    if (end > start) spans.push({ ...span, start: start - from, end: end - from });
  }
  return { text: styled.text.slice(from, to), spans };
}

/** `styled` without white space at either end (a platform trims it, and the spans' offsets would drift). */
export function trimStyled(styled: StyledText): StyledText {
  const start = styled.text.length - styled.text.trimStart().length;
  const end = styled.text.trimEnd().length;
  return end <= start ? { text: '', spans: [] } : sliceStyled(styled, start, end);
}

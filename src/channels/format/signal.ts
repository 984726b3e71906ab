// Signal formatting as signal-cli's text styles beside plain text: `textStyle` entries "start:length:STYLE",
// counted in UTF-16 code units as Signal's body ranges are. Signal has no links with labels (the address follows
// the label) and no quote style (a quote is shown in italics).
import { markdownToStyled } from './from-markdown.js';
import { splitStyled } from './split-styled.js';
import type { Span, StyledText } from './styled.js';

export interface SignalText {
  text: string;
  /** signal-cli's `textStyle` parameter. */
  textStyle: string[];
}

const STYLES: Record<Span['style'], string | undefined> = {
  bold: 'BOLD',
  italic: 'ITALIC',
  strike: 'STRIKETHROUGH',
  code: 'MONOSPACE',
  pre: 'MONOSPACE',
  quote: 'ITALIC',
  link: undefined,
};

/** The agent's Markdown as Signal messages, each at most `limit` UTF-16 code units. */
export function signalParts(markdown: string, limit: number): SignalText[] {
  return splitStyled(markdownToStyled(markdown, { bullet: '•', links: 'inline' }), limit).map(toSignal);
}

export function toSignal(styled: StyledText): SignalText {
  const textStyle: string[] = [];
  for (const span of styled.spans) {
    const style = STYLES[span.style];
    if (style) textStyle.push(`${span.start}:${span.end - span.start}:${style}`);
  }
  return { text: styled.text, textStyle };
}

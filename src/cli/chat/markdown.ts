// An assistant's reply, written in Markdown, laid out for a terminal by marked-terminal: headings, lists,
// emphasis, tables and highlighted code blocks.
import { stripVTControlCharacters } from 'node:util';
import { Marked, type MarkedExtension } from 'marked';

export interface MarkdownStyle {
  /** Terminal columns the text is wrapped to. */
  width: number;
  /** ANSI colours and emphasis; without them the layout stays (indents, table borders) and the escapes go. */
  colors: boolean;
}

export async function markdownRenderer(style: MarkdownStyle): Promise<(markdown: string) => string> {
  // marked-terminal and its highlighter colour through chalk, which decides by itself when it loads and says no
  // wherever CI is set, whatever the terminal. pincer has decided already (a terminal, no NO_COLOR), so it says so
  // through FORCE_COLOR, chalk's own switch, before they load; a FORCE_COLOR the user set stands.
  if (style.colors) process.env.FORCE_COLOR ??= '1';
  const { markedTerminal } = await import('marked-terminal');
  const marked = new Marked();
  // @types/marked-terminal declares the extension as a Renderer; it is the extension object marked 18's `use`
  // takes (marked-terminal 7.3 declares marked <19 as its peer).
  marked.use(markedTerminal({ width: style.width, reflowText: true, showSectionPrefix: false, tab: 2 }) as unknown as MarkedExtension);
  return (markdown) => {
    const rendered = String(marked.parse(markdown, { async: false })).replace(/\n+$/, '');
    return style.colors ? rendered : stripVTControlCharacters(rendered);
  };
}

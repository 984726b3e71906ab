// Discord renders Markdown itself; what it would show wrongly is rewritten: tables (which it does not render)
// become code blocks, headings bold lines, and characters of plain text that Discord reads as markup are escaped.
import { markdownToStyled } from './from-markdown.js';
import { breakFences, type MarkupSyntax, toMarkup } from './markup.js';
import { splitStyled } from './split-styled.js';

/**
 * Escapes what Discord reads as markup in plain text: its marker characters anywhere, and a heading, quote or
 * list sign at the start of a line. Web addresses stay as they are (a backslash would become part of the link).
 */
function escapeDiscord(text: string): string {
  return text
    .split(/(\s+)/)
    .map((word) => (/^https?:\/\//i.test(word) ? word : word.replace(/[\\*_~`|]/g, (ch) => `\\${ch}`)))
    .join('')
    .replace(/(^|\n)([#>-])/g, '$1\\$2');
}

const DISCORD: MarkupSyntax = {
  bold: '**',
  italic: '*',
  strike: '~~',
  code: (code) => (code.includes('`') ? `\`\` ${code} \`\`` : `\`${code}\``),
  pre: (code, language) => `\`\`\`${language ?? ''}\n${code}\n\`\`\``,
  // The address in angle brackets: Discord shows no preview card under the reply for it.
  link: (label, url) => `[${label}](<${url}>)`,
  quote: '> ',
  escape: escapeDiscord,
  escapeCode: breakFences,
};

/** The agent's Markdown as Discord messages, each at most `limit` characters. */
export function discordParts(markdown: string, limit: number): string[] {
  const styled = markdownToStyled(markdown, { bullet: '•', links: 'span' });
  return splitStyled(styled, limit, (part) => toMarkup(part, DISCORD).length).map((part) => toMarkup(part, DISCORD));
}

/** A sub-agent's name before its message, where no webhook can show the message under that name. */
export function discordSenderPrefix(sender: string): string {
  return `${escapeDiscord(sender)}: `;
}

// WhatsApp's own formatting: *bold*, _italic_, ~strike~, `code`, ```blocks```, "> " quotes, "- " lists.
// WhatsApp has no links with labels (the address follows the label) and no way to escape a marker.
import { markdownToStyled } from './from-markdown.js';
import { breakFences, type MarkupSyntax, toMarkup } from './markup.js';
import { splitStyled } from './split-styled.js';

const WHATSAPP: MarkupSyntax = {
  bold: '*',
  italic: '_',
  strike: '~',
  code: (code) => `\`${code}\``,
  pre: (code) => `\`\`\`${code}\`\`\``,
  link: (label) => label,
  quote: '> ',
  escape: (text) => text,
  escapeCode: breakFences,
};

/** The agent's Markdown as WhatsApp messages, each at most `limit` characters. */
export function whatsappParts(markdown: string, limit: number): string[] {
  const styled = markdownToStyled(markdown, { bullet: '-', links: 'inline' });
  return splitStyled(styled, limit, (part) => toMarkup(part, WHATSAPP).length).map((part) => toMarkup(part, WHATSAPP));
}

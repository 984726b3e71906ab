// Slack's mrkdwn: *bold*, _italic_, ~strike~, `code`, ```blocks```, <url|label> links, "> " quotes. `& < >` are
// escaped everywhere, which also keeps the agent from writing `<!channel>` pings or hidden links.
import { markdownToStyled } from './from-markdown.js';
import { breakFences, type MarkupSyntax, toMarkup } from './markup.js';
import { splitStyled } from './split-styled.js';

const escapeSlack = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const SLACK: MarkupSyntax = {
  bold: '*',
  italic: '_',
  strike: '~',
  code: (code) => `\`${code}\``,
  // Slack shows no language on a block: the name would only be a stray first line.
  pre: (code) => `\`\`\`\n${code}\n\`\`\``,
  link: (label, url) => `<${escapeSlack(url).replace(/\|/g, '%7C')}|${label.replace(/\|/g, '¦')}>`,
  quote: '> ',
  escape: escapeSlack,
  escapeCode: (code) => breakFences(escapeSlack(code)),
};

const fromMarkdown = (markdown: string) => markdownToStyled(markdown, { bullet: '•', links: 'span' });

/** The agent's Markdown as Slack messages, each at most `limit` characters of mrkdwn. */
export function slackParts(markdown: string, limit: number): string[] {
  return splitStyled(fromMarkdown(markdown), limit, (part) => toMarkup(part, SLACK).length).map((part) => toMarkup(part, SLACK));
}

/** The agent's Markdown as one piece of mrkdwn (a file's comment). */
export function toSlackMrkdwn(markdown: string): string {
  return toMarkup(fromMarkdown(markdown), SLACK);
}

/** A sub-agent's name before its message, where Slack cannot show the message under that name. */
export function slackSenderPrefix(sender: string): string {
  return `${escapeSlack(sender)}: `;
}

// Telegram formatting as message entities beside plain text, not an HTML or MarkdownV2 parse mode: the text
// needs no escaping (so nothing the agent writes can make Telegram refuse to parse a reply), and the offsets
// come straight from the styled text, in UTF-16 code units as the Bot API counts them.
import type { MessageEntity } from 'grammy/types';
import { markdownToStyled } from './from-markdown.js';
import { splitStyled } from './split-styled.js';
import type { Span, StyledText } from './styled.js';

export interface TelegramText {
  text: string;
  entities: MessageEntity[];
}

/** The agent's Markdown as Telegram messages, each at most `limit` UTF-16 code units of text. */
export function telegramParts(markdown: string, limit: number): TelegramText[] {
  return splitStyled(markdownToStyled(markdown, { bullet: '•', links: 'span' }), limit).map(toTelegram);
}

/** Entities the Bot API lets nest in anything but `pre` and `code`; no other entity may hold another. */
const FREELY_NESTED = new Set<MessageEntity['type']>(['bold', 'italic', 'strikethrough']);
const isCode = (type: MessageEntity['type']) => type === 'pre' || type === 'code';

function mayHold(outer: MessageEntity['type'], inner: MessageEntity['type']): boolean {
  return (FREELY_NESTED.has(inner) && !isCode(outer)) || (FREELY_NESTED.has(outer) && !isCode(inner));
}

/**
 * Entities for the styled text, without the ones Telegram would refuse inside another: a quote around a link,
 * code or a table is left out (its text stays, the quote's look goes, the link and code stay), and code inside
 * a link is plain link text.
 */
export function toTelegram(styled: StyledText): TelegramText {
  const all = styled.spans.map(entityOf);
  const holds = (outer: MessageEntity, inner: MessageEntity) =>
    outer !== inner && outer.offset <= inner.offset && inner.offset + inner.length <= outer.offset + outer.length;
  const candidates = all.filter((e) => e.type !== 'blockquote' || all.every((inner) => !holds(e, inner) || mayHold(e.type, inner.type)));
  const entities: MessageEntity[] = [];
  for (const entity of candidates) {
    if (entities.every((h) => !holds(h, entity) || mayHold(h.type, entity.type))) entities.push(entity);
  }
  return { text: styled.text, entities };
}

function entityOf(span: Span): MessageEntity {
  const at = { offset: span.start, length: span.end - span.start };
  switch (span.style) {
    case 'bold':
      return { type: 'bold', ...at };
    case 'italic':
      return { type: 'italic', ...at };
    case 'strike':
      return { type: 'strikethrough', ...at };
    case 'code':
      return { type: 'code', ...at };
    case 'pre':
      return { type: 'pre', ...at, ...(span.language ? { language: span.language } : {}) };
    case 'link':
      return { type: 'text_link', ...at, url: span.url ?? '' };
    case 'quote':
      return { type: 'blockquote', ...at };
  }
}

/** A part with a sub-agent's name before it (the main bot posting for a sub-agent): its entities move along. */
export function withTelegramPrefix(part: TelegramText, prefix: string): TelegramText {
  return { text: prefix + part.text, entities: part.entities.map((e) => ({ ...e, offset: e.offset + prefix.length })) };
}

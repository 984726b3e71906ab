// The bad input corpus (test/bad-input.test.ts): texts that stress encodings, sizes and splitting, and a fake
// model script that answers with exactly what it was shown, so a round trip proves nothing was altered.
import { createHash } from 'node:crypto';
import { isAgentTurn, lastUserText, type ModelReply, type ModelRequest } from './fake-model.js';

/**
 * Emoji (skin tones, ZWJ families, flags), Arabic and Hebrew with bidi marks and isolates, combining marks,
 * astral letters, CJK. None of `& < > " '` (escaped in prompts), `* _ ~ # [ \`` (Slack markup), `@` (mentions)
 * or U+FFFC (Signal's mention placeholder): each of those is rewritten on purpose somewhere.
 */
export const EMOJI_RTL = [
  'Grüße 👋🏽 👨‍👩‍👧‍👦 🏳️‍🌈 🇩🇪 🧑🏿‍🚀',
  '\u200Fمرحبا بالعالم، كيف حالك؟\u200F',
  '\u202Bשלום עולם, מה שלומך?\u202C',
  '\u2067עברית\u2069 \u2066LTR inside\u2069 \u200E(LTR)\u200E',
  'e\u0301te\u0301 n\u0303 a\u0308\u0304 Z\u0335\u0321\u034D\u0353o\u0336\u031B',
  '𝕏 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ﷽ 中文 テスト 한국어',
  'zero\u200Bwidth\u200Djoiner\u2060word\uFEFFbom',
].join(' — ');

/** One ZWJ family: 11 UTF-16 units that render as one glyph. */
export const FAMILY = '👨‍👩‍👧‍👦';

/** One paragraph of the long texts: right-to-left and left-to-right runs, emoji and combining marks. */
export function paragraph(i: number): string {
  return (
    `${i}. \u200Fمرحبا بالعالم، هذه فقرة طويلة للاختبار\u200F 👋🏽 \u202Bשלום עולם, זו פסקה ארוכה לבדיקה\u202C ` +
    `${FAMILY} e\u0301te\u0301 na\u0303o 🏳️‍🌈 𝕏 中文テスト한국어 \u2067עברית\u2069 סוף`
  );
}

/** Paragraphs separated by blank lines, at least `chars` UTF-16 units long. */
export function longText(chars: number): string {
  const parts: string[] = [];
  let length = 0;
  for (let i = 1; length < chars; i++) {
    const p = paragraph(i);
    parts.push(p);
    length += p.length + 2;
  }
  return parts.join('\n\n');
}

/** Exactly `units` UTF-16 units of the long text, never ending in half a surrogate pair. */
export function textOfUnits(prefix: string, units: number): string {
  const body = `${prefix}${longText(units)}`.slice(0, units);
  const last = body.charCodeAt(body.length - 1);
  return last >= 0xd800 && last <= 0xdbff ? `${body.slice(0, -1)}x` : body;
}

/** No whitespace at all: a split has to cut inside the text (at `FAMILY` boundaries, ideally). */
export function hardText(chars: number): string {
  return FAMILY.repeat(Math.ceil(chars / FAMILY.length));
}

export const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');
export const digestOf = (s: string): string => `digest ${s.length} ${sha256(s)}`;

/** True when the string holds an unpaired surrogate (which has no UTF-8 form). */
export const hasLoneSurrogate = (s: string): boolean => /\p{Cs}/u.test(s);

export function unescapeXml(s: string): string {
  return s.replace(/&(lt|gt|quot|apos|amp);/g, (_m, e: string) => ({ lt: '<', gt: '>', quot: '"', apos: "'", amp: '&' })[e] ?? '');
}

/** The messages of a prompt (`<message …>text</message>`), their text unescaped, oldest first. */
export function promptMessages(req: ModelRequest): string[] {
  return [...lastUserText(req).matchAll(/<message sender="[^"]*" time="[^"]*">([\s\S]*?)<\/message>/g)].map((m) => unescapeXml(m[1] ?? ''));
}

/** The newest message of a prompt, unescaped; '' when the request carries none (a tool result). */
export const lastPromptMessage = (req: ModelRequest): string => promptMessages(req).at(-1) ?? '';

/**
 * Answers the newest message of each prompt: `DIGEST …` with its length and SHA-256 (a big text reached the model
 * intact), `LONG-REPLY n` with n units of paragraphs, `HARD-REPLY n` with n units without whitespace, anything
 * else with itself, exactly.
 */
export function echoReply(req: ModelRequest): ModelReply {
  if (!isAgentTurn(req)) return { text: 'side request' };
  const message = lastPromptMessage(req);
  if (message.startsWith('DIGEST')) return { text: digestOf(message) };
  const long = /^LONG-REPLY (\d+)/.exec(message);
  if (long) return { text: longText(Number(long[1])) };
  const hard = /^HARD-REPLY (\d+)/.exec(message);
  if (hard) return { text: hardText(Number(hard[1])) };
  return { text: message || 'no message in this prompt' };
}

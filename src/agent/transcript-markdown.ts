// Claude Code's session transcript (JSONL, one entry a line) as a readable Markdown conversation. The
// transcript is written inside the sandbox, so nothing in it is trusted: every field is checked before use,
// a line that is not a JSON object is skipped, and the work is linear in the transcript's size and bounded
// (line length, lines read, the archive's size). Tags are found with indexOf, never with a pattern that could
// rescan the text (a lazy `[\s\S]*?` did, from every unclosed tag): each search starts where the last one ended.
import { formatLocalTime } from '../router/prompt.js';
import { describeToolUse } from './tool-use.js';

export interface TranscriptLimits {
  /** A longer line is left out unparsed. */
  maxLineBytes: number;
  /** A line with more `{` and `[` than this (inside strings too) is left out unparsed: JSON.parse would build that many objects. */
  maxLineBrackets: number;
  /** Lines past this many are not read. */
  maxLines: number;
  /** Sections shown at most; later ones are counted, not shown. */
  maxSections: number;
  /** The body's size at most, in characters: the section that reaches it is cut, later ones are counted. */
  maxBodyChars: number;
}

export const TRANSCRIPT_LIMITS: TranscriptLimits = {
  // Room for a prompt with an image in it (base64); tool results, the bulk of big lines, are not shown anyway.
  maxLineBytes: 8 * 1024 * 1024,
  maxLineBrackets: 100_000,
  maxLines: 1_000_000,
  maxSections: 20_000,
  // A conversation since the last compaction fits a context window: a few MB of text at most.
  maxBodyChars: 8 * 1024 * 1024,
};

export interface TranscriptRenderOptions {
  /** The heading of the agent's messages. */
  assistantName: string;
  /** Times are shown in this zone. */
  timeZone: string;
}

export interface TranscriptMarkdownOptions extends TranscriptRenderOptions {
  title: string;
  /** Lines under the title (which chat, which session, why it was archived), each a list item; may use what was found. */
  details: readonly string[] | ((found: TranscriptFacts) => readonly string[]);
}

export interface TranscriptFacts {
  /** Sections shown: each chat message, each stretch of the agent's answer, a summary. */
  messages: number;
  /** Lines that were not JSON objects. */
  skippedLines: number;
  /** Lines over maxLineBytes or maxLineBrackets, left out unparsed. */
  oversizedLines: number;
  /** Lines past maxLines, not read. */
  unreadLines: number;
  /** Sections past maxSections or maxBodyChars, not shown (the one cut by maxBodyChars is shown, cut). */
  leftOutMessages: number;
  /** The first and last time seen in the shown part, or null when none was readable. */
  from: number | null;
  to: number | null;
}

/** The conversation's sections as Markdown, without a title: what a worker thread hands back. */
export interface RenderedTranscript extends TranscriptFacts {
  body: string;
}

export interface TranscriptMarkdown extends TranscriptFacts {
  markdown: string;
}

interface Section {
  who: string;
  /** The time as written (a chat message's), or the entry's time to show in the local zone; neither: no time. */
  time: string | { at: number | null };
  blocks: string[];
  fromAssistant: boolean;
}

type Entry = Record<string, unknown>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** pincer's prompt format (src/router/prompt.ts): each message escaped, with its sender and local time. */
const MESSAGE_OPEN = '<message sender="';
const MESSAGE_TIME = '" time="';
const MESSAGE_CLOSE = '</message>';
const MESSAGES_OPEN = '<messages';
const MESSAGES_CLOSE = '</messages>';
/** Notes Claude Code adds for the model: not part of the conversation. */
const NOTE_OPEN = '<system-reminder>';
const NOTE_CLOSE = '</system-reminder>';
/** The echo of a slash command. */
const COMMAND_ECHO = /^<(?:command-name|command-message|command-args|local-command-stdout|local-command-stderr|local-command-caveat)>/;

const SUMMARY_START = 'Summary:\n';
const SUMMARY_END = '\n\nIf you need specific details from before compaction';
const CUT_NOTE = '_[cut here: the archive holds at most';
/** Tool names are at most 64 characters in the API: a longer one is cut before anything looks at it. */
const MAX_TOOL_NAME = 256;
/** `2026-11-25 13:27` */
const LOCAL_TIME_LENGTH = 16;
/** A heading's sender or time beyond this is cut: headings are outside the body's bound on blocks. */
const MAX_HEADING_PART = 200;

const NEWLINE = 0x0a;
const OPEN_BRACE = 0x7b;
const OPEN_BRACKET = 0x5b;

const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'", '&amp;': '&' };
const unescapeXml = (s: string): string => s.replace(/&(?:lt|gt|quot|apos|amp);/g, (e) => ENTITIES[e] ?? e);

/** The whole document: title, details, then the conversation. */
export function transcriptToMarkdown(
  jsonl: string | Uint8Array,
  o: TranscriptMarkdownOptions,
  limits: TranscriptLimits = TRANSCRIPT_LIMITS,
): TranscriptMarkdown {
  const { body, ...facts } = renderTranscript(typeof jsonl === 'string' ? Buffer.from(jsonl, 'utf8') : jsonl, o, limits);
  const heading = transcriptHeading(o.title, typeof o.details === 'function' ? o.details(facts) : o.details);
  return { markdown: `${heading}${body}`, ...facts };
}

/** Title and detail lines: what goes above a rendered body. */
export function transcriptHeading(title: string, details: readonly string[]): string {
  return [`# ${oneLine(title)}`, '', ...details.map((d) => `- ${oneLine(d)}`), '', '---', '', ''].join('\n');
}

/** One pass over the transcript's lines; each line is decoded and parsed on its own, only if within the bounds. */
export function renderTranscript(
  jsonl: Uint8Array,
  o: TranscriptRenderOptions,
  limits: TranscriptLimits = TRANSCRIPT_LIMITS,
): RenderedTranscript {
  const bytes = Buffer.from(jsonl.buffer, jsonl.byteOffset, jsonl.byteLength);
  const conversation = new Conversation(o, limits);
  let skippedLines = 0;
  let oversizedLines = 0;
  let unreadLines = 0;
  let lines = 0;
  for (let start = 0; start < bytes.length; ) {
    const newline = bytes.indexOf(NEWLINE, start);
    const end = newline === -1 ? bytes.length : newline;
    const line = bytes.subarray(start, end);
    start = end + 1;
    if (++lines > limits.maxLines) {
      if (!isBlank(line)) unreadLines++;
      continue;
    }
    if (line.length > limits.maxLineBytes || countBrackets(line, limits.maxLineBrackets) > limits.maxLineBrackets) {
      oversizedLines++;
      continue;
    }
    const text = line.toString('utf8');
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      skippedLines++;
      continue;
    }
    if (isRecord(value)) conversation.add(value);
    else skippedLines++;
  }
  return { ...conversation.facts(), skippedLines, oversizedLines, unreadLines, body: conversation.body() };
}

/** The sections since the latest compaction, within the bounds on their number and size. */
class Conversation {
  readonly #o: TranscriptRenderOptions;
  readonly #limits: TranscriptLimits;
  #sections: Section[] = [];
  #chars = 0;
  #full = false;
  /** The latest section, shown or left out, is the agent's: its next entry continues it. */
  #lastFromAssistant = false;
  #leftOut = 0;
  #from: number | null = null;
  #to: number | null = null;

  constructor(o: TranscriptRenderOptions, limits: TranscriptLimits) {
    this.#o = o;
    this.#limits = limits;
  }

  add(e: Entry): void {
    // Earlier compactions are in earlier archives: this one starts at the latest boundary, with its summary.
    if (e.type === 'system' && e.subtype === 'compact_boundary' && e.isSidechain !== true) {
      this.#sections = [];
      this.#chars = 0;
      this.#full = false;
      this.#lastFromAssistant = false;
      this.#leftOut = 0;
      this.#from = null;
      this.#to = null;
      return;
    }
    if (e.isSidechain === true || !isRecord(e.message)) return;
    const at = timestamp(e.timestamp);
    let shown = false;
    if (e.type === 'assistant') shown = this.#addAssistant(e.message.content, at);
    else if (e.type === 'user' && e.isMeta !== true) shown = this.#addUser(e.message.content, e.isCompactSummary === true, at);
    if (shown && at !== null) {
      this.#from ??= at;
      this.#to = at;
    }
  }

  facts(): Omit<TranscriptFacts, 'skippedLines' | 'oversizedLines' | 'unreadLines'> {
    return { messages: this.#sections.length, leftOutMessages: this.#leftOut, from: this.#from, to: this.#to };
  }

  body(): string {
    if (this.#sections.length === 0) return '_No messages._\n';
    const lines: string[] = [];
    for (const s of this.#sections) {
      // Formatted only now, for the sections that are shown: each formatting builds an Intl formatter.
      const time = typeof s.time === 'string' ? s.time : s.time.at === null ? '' : formatLocalTime(s.time.at, this.#o.timeZone);
      lines.push(`### ${s.who}${time ? ` · ${time}` : ''}`, '');
      for (const b of s.blocks) lines.push(b, '');
    }
    return `${lines.join('\n').trimEnd()}\n`;
  }

  /** The agent's text and one line per tool call; a stretch of them (tool results between) is one section. */
  #addAssistant(content: unknown, at: number | null): boolean {
    const blocks: string[] = [];
    for (const b of Array.isArray(content) ? content : [content]) {
      if (typeof b === 'string') blocks.push(b);
      else if (!isRecord(b)) continue;
      else if (b.type === 'text') blocks.push(str(b.text) ?? '');
      else if (b.type === 'tool_use' || b.type === 'server_tool_use')
        blocks.push(`→ ${oneLine(describeToolUse(str(b.name)?.slice(0, MAX_TOOL_NAME) ?? 'tool', b.input))}`);
    }
    const shown = blocks.map((b) => b.trim()).filter((b) => b !== '');
    if (shown.length === 0) return false;
    const last = this.#sections.at(-1);
    if (this.#lastFromAssistant) {
      // The stretch goes on: in the section shown last, or left out with it.
      if (this.#full || last === undefined) return false;
      for (const b of shown) this.#addBlock(last, b);
      return true;
    }
    return this.#addSection(this.#o.assistantName, { at }, shown, true);
  }

  /** A prompt: pincer's <messages> become one section per chat message; tool results are left out. */
  #addUser(content: unknown, isSummary: boolean, at: number | null): boolean {
    const texts: string[] = [];
    for (const b of Array.isArray(content) ? content : [content]) {
      if (typeof b === 'string') texts.push(b);
      else if (isRecord(b) && b.type === 'text') texts.push(str(b.text) ?? '');
      else if (isRecord(b) && b.type === 'image') texts.push('[image]');
    }
    const text = texts
      .map((t) => withoutNotes(t).trim())
      .filter((t) => t !== '' && !COMMAND_ECHO.test(t))
      .join('\n\n');
    if (text === '') return false;
    if (isSummary) return this.#addSection('Summary of the conversation before', { at }, [summaryOf(text)], false);
    const messages = isMessagesWrapper(text) ? chatMessages(text) : [];
    if (messages.length === 0) return this.#addSection('Prompt', { at }, [text], false);
    let shown = false;
    for (const m of messages) {
      const body = unescapeXml(m.body).trim();
      shown = this.#addSection(oneLine(unescapeXml(m.sender)) || 'Someone', oneLine(m.time), [body || '(empty)'], false) || shown;
    }
    return shown;
  }

  /** Adds a section while there is room; counts it otherwise. */
  #addSection(who: string, time: Section['time'], blocks: readonly string[], fromAssistant: boolean): boolean {
    this.#lastFromAssistant = fromAssistant;
    if (this.#full || this.#sections.length >= this.#limits.maxSections || this.#chars >= this.#limits.maxBodyChars) {
      this.#full = true;
      this.#leftOut++;
      return false;
    }
    const section: Section = {
      who: cut(who, MAX_HEADING_PART),
      time: typeof time === 'string' ? cut(time, MAX_HEADING_PART) : time,
      blocks: [],
      fromAssistant,
    };
    this.#sections.push(section);
    this.#chars += section.who.length + (typeof section.time === 'string' ? section.time.length : LOCAL_TIME_LENGTH) + 8;
    for (const b of blocks) this.#addBlock(section, b);
    return true;
  }

  /** Adds a block, cut where the body reaches its bound. */
  #addBlock(section: Section, block: string): void {
    if (this.#full) return;
    const room = this.#limits.maxBodyChars - this.#chars;
    if (block.length + 2 <= room) {
      section.blocks.push(block);
      this.#chars += block.length + 2;
      return;
    }
    section.blocks.push(
      `${block.slice(0, Math.max(0, room))}…`,
      `${CUT_NOTE} ${this.#limits.maxBodyChars.toLocaleString('en-US')} characters]_`,
    );
    this.#full = true;
  }
}

function cut(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

function isBlank(line: Uint8Array): boolean {
  for (const b of line) if (b !== 0x20 && b !== 0x09 && b !== 0x0d) return false;
  return true;
}

/** `{` and `[` in the line (found by the native byte search), counting stops just past `limit`. */
function countBrackets(line: Buffer, limit: number): number {
  let n = 0;
  for (const bracket of [OPEN_BRACE, OPEN_BRACKET])
    for (let i = line.indexOf(bracket); i !== -1 && n <= limit; i = line.indexOf(bracket, i + 1)) n++;
  return n;
}

function timestamp(v: unknown): number | null {
  const s = str(v);
  if (s === undefined) return null;
  const at = Date.parse(s);
  return Number.isFinite(at) ? at : null;
}

/** The text without Claude Code's `<system-reminder>` notes; an unclosed one stays, as it is not a note. */
function withoutNotes(text: string): string {
  const kept: string[] = [];
  let from = 0;
  for (;;) {
    const open = text.indexOf(NOTE_OPEN, from);
    if (open === -1) break;
    const close = text.indexOf(NOTE_CLOSE, open + NOTE_OPEN.length);
    // No close after this opening means none after any later one either: the rest stays as it is.
    if (close === -1) break;
    kept.push(text.slice(from, open));
    from = close + NOTE_CLOSE.length;
  }
  kept.push(text.slice(from));
  return kept.join('');
}

/** `<messages …>…</messages>` around the whole (trimmed) text. */
function isMessagesWrapper(text: string): boolean {
  if (!text.startsWith(MESSAGES_OPEN) || !text.endsWith(MESSAGES_CLOSE)) return false;
  const next = text.charCodeAt(MESSAGES_OPEN.length);
  // A word boundary after the tag's name: `<messagesX` is another tag.
  if (isWordChar(next)) return false;
  const tagEnd = text.indexOf('>', MESSAGES_OPEN.length);
  return tagEnd !== -1 && tagEnd < text.length - MESSAGES_CLOSE.length;
}

function isWordChar(c: number): boolean {
  return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
}

interface ChatMessage {
  sender: string;
  time: string;
  body: string;
}

/**
 * Every `<message sender="…" time="…">…</message>`, left to right, each body ending at the first `</message>`
 * after it; a start whose attributes do not fit, or that no `</message>` follows, is passed over. Each search
 * for a close starts past the previous match, so the text is scanned a bounded number of times.
 */
function chatMessages(text: string): ChatMessage[] {
  const found: ChatMessage[] = [];
  const lastClose = text.lastIndexOf(MESSAGE_CLOSE);
  let from = 0;
  for (;;) {
    const start = text.indexOf(MESSAGE_OPEN, from);
    if (start === -1) break;
    const senderStart = start + MESSAGE_OPEN.length;
    const senderEnd = text.indexOf('"', senderStart);
    const timeStart = senderEnd + MESSAGE_TIME.length;
    const timeEnd = senderEnd === -1 || !text.startsWith(MESSAGE_TIME, senderEnd) ? -1 : text.indexOf('"', timeStart);
    if (timeEnd === -1 || text.charCodeAt(timeEnd + 1) !== 0x3e /* > */) {
      from = start + 1;
      continue;
    }
    const bodyStart = timeEnd + 2;
    if (bodyStart > lastClose) {
      from = start + 1;
      continue;
    }
    const close = text.indexOf(MESSAGE_CLOSE, bodyStart);
    found.push({ sender: text.slice(senderStart, senderEnd), time: text.slice(timeStart, timeEnd), body: text.slice(bodyStart, close) });
    from = close + MESSAGE_CLOSE.length;
  }
  return found;
}

/** The summary itself, without Claude Code's framing for the model around it (kept whole if the framing changed). */
function summaryOf(text: string): string {
  const start = text.indexOf(SUMMARY_START);
  let body = start >= 0 ? text.slice(start + SUMMARY_START.length) : text;
  const end = body.indexOf(SUMMARY_END);
  if (end >= 0) body = body.slice(0, end);
  return body.trim() || text;
}

/** For headings and list items: one line, no Markdown heading or list syntax sneaking in. */
function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}

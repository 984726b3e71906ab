// Claude Code's session transcript (JSONL, one entry a line) as a readable Markdown conversation. The
// transcript is written inside the sandbox, so nothing in it is trusted: every field is checked before use,
// and a line that is not a JSON object is skipped.
import { formatLocalTime } from '../router/prompt.js';
import { describeToolUse } from './tool-use.js';

export interface TranscriptMarkdownOptions {
  title: string;
  /** Lines under the title (which chat, which session, why it was archived), each a list item; may use what was found. */
  details: readonly string[] | ((found: TranscriptFacts) => readonly string[]);
  /** The heading of the agent's messages. */
  assistantName: string;
  /** Times are shown in this zone. */
  timeZone: string;
}

export interface TranscriptFacts {
  /** Sections shown: each chat message, each stretch of the agent's answer, a summary. */
  messages: number;
  /** Lines that were not JSON objects. */
  skippedLines: number;
  /** The first and last time seen in the shown part, or null when none was readable. */
  from: number | null;
  to: number | null;
}

export interface TranscriptMarkdown extends TranscriptFacts {
  markdown: string;
}

interface Section {
  who: string;
  /** Local time as shown, or '' when unknown. */
  time: string;
  blocks: string[];
  fromAssistant: boolean;
}

type Entry = Record<string, unknown>;

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** pincer's prompt format (src/router/prompt.ts): each message escaped, with its sender and local time. */
const MESSAGE = /<message sender="([^"]*)" time="([^"]*)">([\s\S]*?)<\/message>/g;
const MESSAGES_WRAPPER = /^\s*<messages\b[^>]*>[\s\S]*<\/messages>\s*$/;
/** Notes Claude Code adds for the model, and the echo of a slash command: not part of the conversation. */
const NOISE = /<system-reminder>[\s\S]*?<\/system-reminder>/g;
const COMMAND_ECHO = /^\s*<(?:command-name|command-message|command-args|local-command-stdout|local-command-stderr|local-command-caveat)>/;

const SUMMARY_START = 'Summary:\n';
const SUMMARY_END = '\n\nIf you need specific details from before compaction';

const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'", '&amp;': '&' };
const unescapeXml = (s: string): string => s.replace(/&(?:lt|gt|quot|apos|amp);/g, (e) => ENTITIES[e] ?? e);

export function transcriptToMarkdown(jsonl: string, o: TranscriptMarkdownOptions): TranscriptMarkdown {
  const { entries, skipped } = parseLines(jsonl);
  // Earlier compactions are in earlier archives: this one starts at the latest boundary, with its summary.
  let start = 0;
  entries.forEach((e, i) => {
    if (e.type === 'system' && e.subtype === 'compact_boundary' && e.isSidechain !== true) start = i + 1;
  });
  const sections: Section[] = [];
  let from: number | null = null;
  let to: number | null = null;
  for (const e of entries.slice(start)) {
    if (e.isSidechain === true || !isRecord(e.message)) continue;
    const at = timestamp(e.timestamp);
    const time = at === null ? '' : formatLocalTime(at, o.timeZone);
    let shown = false;
    if (e.type === 'assistant') shown = addAssistant(sections, e.message.content, o.assistantName, time);
    else if (e.type === 'user' && e.isMeta !== true) shown = addUser(sections, e.message.content, e.isCompactSummary === true, time);
    if (shown && at !== null) {
      from ??= at;
      to = at;
    }
  }
  const facts: TranscriptFacts = { messages: sections.length, skippedLines: skipped, from, to };
  const lines = [`# ${oneLine(o.title)}`, ''];
  for (const d of typeof o.details === 'function' ? o.details(facts) : o.details) lines.push(`- ${oneLine(d)}`);
  lines.push('', '---', '');
  if (sections.length === 0) lines.push('_No messages._', '');
  for (const s of sections) {
    lines.push(`### ${s.who}${s.time ? ` · ${s.time}` : ''}`, '');
    for (const b of s.blocks) lines.push(b, '');
  }
  return { markdown: `${lines.join('\n').trimEnd()}\n`, ...facts };
}

function parseLines(jsonl: string): { entries: Entry[]; skipped: number } {
  const entries: Entry[] = [];
  let skipped = 0;
  for (const line of jsonl.split('\n')) {
    if (line.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(line);
    } catch {
      skipped++;
      continue;
    }
    if (isRecord(value)) entries.push(value);
    else skipped++;
  }
  return { entries, skipped };
}

function timestamp(v: unknown): number | null {
  const s = str(v);
  if (s === undefined) return null;
  const at = Date.parse(s);
  return Number.isFinite(at) ? at : null;
}

/** The agent's text and one line per tool call; a stretch of them (tool results between) is one section. */
function addAssistant(sections: Section[], content: unknown, name: string, time: string): boolean {
  const blocks: string[] = [];
  for (const b of Array.isArray(content) ? content : [content]) {
    if (typeof b === 'string') blocks.push(b);
    else if (!isRecord(b)) continue;
    else if (b.type === 'text') blocks.push(str(b.text) ?? '');
    else if (b.type === 'tool_use' || b.type === 'server_tool_use')
      blocks.push(`→ ${oneLine(describeToolUse(str(b.name) ?? 'tool', b.input))}`);
  }
  const shown = blocks.map((b) => b.trim()).filter((b) => b !== '');
  if (shown.length === 0) return false;
  const last = sections.at(-1);
  if (last?.fromAssistant) last.blocks.push(...shown);
  else sections.push({ who: name, time, blocks: shown, fromAssistant: true });
  return true;
}

/** A prompt: pincer's <messages> become one section per chat message; tool results are left out. */
function addUser(sections: Section[], content: unknown, isSummary: boolean, time: string): boolean {
  const texts: string[] = [];
  for (const b of Array.isArray(content) ? content : [content]) {
    if (typeof b === 'string') texts.push(b);
    else if (isRecord(b) && b.type === 'text') texts.push(str(b.text) ?? '');
    else if (isRecord(b) && b.type === 'image') texts.push('[image]');
  }
  const text = texts
    .map((t) => t.replace(NOISE, '').trim())
    .filter((t) => t !== '' && !COMMAND_ECHO.test(t))
    .join('\n\n');
  if (text === '') return false;
  if (isSummary) {
    sections.push({ who: 'Summary of the conversation before', time, blocks: [summaryOf(text)], fromAssistant: false });
    return true;
  }
  if (MESSAGES_WRAPPER.test(text)) {
    const messages = [...text.matchAll(MESSAGE)];
    for (const m of messages) {
      const body = unescapeXml(m[3] ?? '').trim();
      sections.push({
        who: oneLine(unescapeXml(m[1] ?? '')) || 'Someone',
        time: oneLine(m[2] ?? ''),
        blocks: [body || '(empty)'],
        fromAssistant: false,
      });
    }
    if (messages.length > 0) return true;
  }
  sections.push({ who: 'Prompt', time, blocks: [text], fromAssistant: false });
  return true;
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

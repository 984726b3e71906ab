// pino's JSON log lines as a person reads them: `HH:MM:SS.mmm LEVEL [part] msg key=value …`. Log lines carry
// text from chats and the web, so nothing in one may reach the terminal as a control sequence.

export interface FormatOptions {
  /** The time zone of the clock time shown; the machine's when not given. */
  timeZone?: string;
  /** ANSI colours for the level (only for a terminal). */
  color?: boolean;
  /** Longer values are cut to this many characters. */
  maxValueLength?: number;
}

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO', 40: 'WARN', 50: 'ERROR', 60: 'FATAL' };
const LEVEL_COLORS: Record<string, string> = { TRACE: '90', DEBUG: '36', INFO: '32', WARN: '33', ERROR: '31', FATAL: '35' };

/** Shown in their own places, or the same on every line (`app`, and pino's defaults `pid`, `hostname`, `v`). */
const PLACED = new Set(['time', 'level', 'msg', 'part', 'app', 'pid', 'hostname', 'v']);

/** Nested objects are shown as `a.b.c=value` to this depth, deeper ones as JSON. */
const MAX_DEPTH = 3;

/**
 * C0 and C1 controls (ESC and CSI start terminal sequences), DEL, and the bidirectional overrides and line
 * separators that make text show other than it is. Tab is harmless and stays.
 */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
const SHORT_ESCAPES: Record<string, string> = { '\n': '\\n', '\r': '\\r' };

/**
 * Makes text inert for a terminal: each unsafe character becomes a visible escape (`\n`, `\u001b`). The
 * `\uXXXX` form is also JSON's, so a valid JSON line stays valid JSON with the same values.
 */
export function escapeControls(text: string): string {
  return text.replace(UNSAFE, (c) => SHORT_ESCAPES[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** `--json`: the line as it came, but never a control sequence. */
export function passJsonLine(line: string): string {
  return escapeControls(line);
}

function truncate(text: string, max: number): string {
  if (text.length <= max) return text;
  // By code points, so that an emoji is not cut in half.
  const points = Array.from(text);
  return points.length <= max ? text : `${points.slice(0, max - 1).join('')}…`;
}

const clocks = new Map<string, Intl.DateTimeFormat>();

function clock(time: unknown, timeZone: string | undefined): string | undefined {
  const date = typeof time === 'number' || typeof time === 'string' ? new Date(time) : undefined;
  if (!date || Number.isNaN(date.getTime())) return undefined;
  const key = timeZone ?? '';
  let format = clocks.get(key);
  if (!format) {
    format = new Intl.DateTimeFormat('en-GB', { timeZone, hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23' });
    clocks.set(key, format);
  }
  return `${format.format(date)}.${String(date.getMilliseconds()).padStart(3, '0')}`;
}

function levelName(level: unknown): string {
  if (typeof level === 'number') return LEVELS[level] ?? `L${level}`;
  if (typeof level === 'string') return level.toUpperCase();
  return '';
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** What pino's error serializer writes: `{type, message, stack, …}`. */
function isSerializedError(value: unknown): value is Record<string, unknown> & { message: string } {
  return isPlainObject(value) && typeof value.message === 'string' && (typeof value.stack === 'string' || typeof value.type === 'string');
}

/** One value of `key=value`: quoted when it holds spaces, quotes or `=` (or is empty), so the pairs stay apart. */
function renderScalar(value: unknown, max: number): string {
  if (typeof value === 'string') {
    const cut = truncate(value, max);
    return cut === '' || /[\s"=\\]/.test(cut) ? JSON.stringify(cut) : cut;
  }
  if (value === undefined) return 'undefined';
  if (typeof value === 'object') return truncate(JSON.stringify(value), max);
  return truncate(String(value), max);
}

function flatten(key: string, value: unknown, depth: number, max: number, into: string[]): void {
  if (isPlainObject(value) && depth < MAX_DEPTH && Object.keys(value).length > 0) {
    for (const [k, v] of Object.entries(value)) flatten(`${key}.${k}`, v, depth + 1, max, into);
    return;
  }
  into.push(`${key}=${renderScalar(value, max)}`);
}

/** `err: TypeError: boom code=E1` and, below it, the first stack frame. */
function renderError(key: string, err: Record<string, unknown> & { message: string }, max: number): string[] {
  const type = typeof err.type === 'string' ? err.type : 'Error';
  const extras: string[] = [];
  for (const [k, v] of Object.entries(err)) {
    if (k === 'type' || k === 'message' || k === 'stack') continue;
    // A cause is an error of its own: its type and message say enough on this line.
    if (isSerializedError(v)) extras.push(`${k}=${renderScalar(`${typeof v.type === 'string' ? v.type : 'Error'}: ${v.message}`, max)}`);
    else flatten(k, v, 1, max, extras);
  }
  const frame = typeof err.stack === 'string' ? err.stack.split('\n').find((l) => l.trim().startsWith('at ')) : undefined;
  return [
    `    ${key}: ${type}: ${truncate(err.message, max * 4)}${extras.length ? ` ${extras.join(' ')}` : ''}`,
    ...(frame ? [`      ${truncate(frame.trim(), max)}`] : []),
  ];
}

/** A pino entry, or undefined for anything else (a line pincer wrote to stderr, npm's banner). */
function parseEntry(line: string): Record<string, unknown> | undefined {
  if (!line.trimStart().startsWith('{')) return undefined;
  try {
    const value: unknown = JSON.parse(line);
    return isPlainObject(value) && ('level' in value || 'msg' in value) ? value : undefined;
  } catch {
    return undefined;
  }
}

/** Pure: one log line, readable. Lines that are not pino's come out as they are, made inert. */
export function formatLogLine(line: string, options: FormatOptions = {}): string {
  const entry = parseEntry(line);
  if (!entry) return escapeControls(line);
  const max = options.maxValueLength ?? 200;
  const head: string[] = [];
  const time = clock(entry.time, options.timeZone);
  if (time) head.push(time);
  const level = levelName(entry.level);
  if (level) {
    const padded = level.padEnd(5);
    const color = options.color ? LEVEL_COLORS[level] : undefined;
    head.push(color ? `\u001b[${color}m${escapeControls(padded)}\u001b[0m` : escapeControls(padded));
  }
  if (entry.part !== undefined) head.push(`[${escapeControls(String(entry.part))}]`);
  if (entry.msg !== undefined) head.push(escapeControls(typeof entry.msg === 'string' ? entry.msg : JSON.stringify(entry.msg)));

  const pairs: string[] = [];
  const errors: string[] = [];
  for (const [key, value] of Object.entries(entry)) {
    if (PLACED.has(key)) continue;
    if (isSerializedError(value)) errors.push(...renderError(key, value, max));
    else flatten(key, value, 0, max, pairs);
  }
  const first = [...head, ...pairs.map(escapeControls)].join(' ');
  return [first, ...errors.map(escapeControls)].join('\n');
}

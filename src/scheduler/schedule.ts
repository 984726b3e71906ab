// Pure schedule arithmetic for scheduled tasks: validation, next due time, and a human description.
// No timers here: pincer runs its own single timer and asks this module when each task is due next.
import { Cron } from 'croner';

export type ScheduleType = 'cron' | 'interval' | 'once';

export interface Schedule {
  type: ScheduleType;
  value: string;
  timezone: string;
  /** interval anchor: ms since epoch, usually the task's creation time */
  anchorAt: number;
}

type Checked<T> = { ok: true; value: T } | { ok: false; error: string };

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const MIN_INTERVAL_MS = MINUTE;
const MAX_INTERVAL_MS = 366 * DAY;

/** Checks a schedule; returns its normalized value or a clear error for the agent/user (never throws). */
export function parseSchedule(
  type: ScheduleType,
  value: string,
  timezone: string,
  now: number,
): { ok: true; value: string; firstDueAt: number } | { ok: false; error: string } {
  if (!isValidTimezone(timezone)) {
    return { ok: false, error: `unknown timezone "${timezone}": use an IANA name such as "Europe/Berlin", "America/New_York" or "UTC"` };
  }
  let normalized: Checked<string>;
  switch (type) {
    case 'cron':
      normalized = checkCron(value, timezone);
      break;
    case 'interval': {
      const ms = parseInterval(value);
      normalized = ms.ok ? { ok: true, value: String(ms.value) } : ms;
      break;
    }
    case 'once': {
      const at = parseOnce(value, timezone);
      if (!at.ok) return at;
      if (at.value <= now) return { ok: false, error: `once time "${value}" (${new Date(at.value).toISOString()}) is in the past` };
      // Stored as a UTC instant: the wall time was resolved once, against today's zone rules.
      normalized = { ok: true, value: new Date(at.value).toISOString() };
      break;
    }
    default:
      return { ok: false, error: `unknown schedule type "${String(type)}": use "cron", "interval" or "once"` };
  }
  if (!normalized.ok) return normalized;
  const firstDueAt = nextDueAfter({ type, value: normalized.value, timezone, anchorAt: now }, now);
  if (firstDueAt === null) return { ok: false, error: `${type} "${value}" never runs after now` };
  return { ok: true, value: normalized.value, firstDueAt };
}

/**
 * The first due time strictly after `after` (ms since epoch), or null when there is none (a once task already past).
 * Also null for a value that parseSchedule would reject, so one bad stored task cannot break the scheduler loop.
 */
export function nextDueAfter(schedule: Schedule, after: number): number | null {
  switch (schedule.type) {
    case 'cron': {
      if (!isValidTimezone(schedule.timezone)) return null;
      const cron = buildCron(normalizeCron(schedule.value), schedule.timezone);
      if (!cron.ok) return null;
      const next = cron.value.nextRun(new Date(after));
      return next ? next.getTime() : null;
    }
    case 'interval': {
      const ms = parseInterval(schedule.value);
      if (!ms.ok) return null;
      // Due times are anchorAt + k*interval (k >= 1), so a late run never shifts the later ones.
      const k = Math.max(1, Math.floor((after - schedule.anchorAt) / ms.value) + 1);
      return schedule.anchorAt + k * ms.value;
    }
    case 'once': {
      if (!isValidTimezone(schedule.timezone)) return null;
      const at = parseOnce(schedule.value, schedule.timezone);
      return at.ok && at.value > after ? at.value : null;
    }
    default:
      return null;
  }
}

/** Human description in the task's timezone, e.g. "every weekday at 09:00 (Europe/Berlin)", "every 2 hours", "once on 2026-12-01 09:00 (Europe/Berlin)". */
export function describeSchedule(schedule: Schedule): string {
  switch (schedule.type) {
    case 'cron':
      return describeCron(schedule.value, schedule.timezone);
    case 'interval': {
      const ms = parseInterval(schedule.value);
      return ms.ok ? `every ${describeDuration(ms.value)}` : `interval "${schedule.value}" (invalid)`;
    }
    case 'once': {
      const at = isValidTimezone(schedule.timezone) ? parseOnce(schedule.value, schedule.timezone) : null;
      return at?.ok ? `once on ${formatWall(at.value, schedule.timezone)} (${schedule.timezone})` : `once "${schedule.value}" (invalid)`;
    }
    default:
      return `unknown schedule "${String(schedule.value)}"`;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Time zones

const wallFormatters = new Map<string, Intl.DateTimeFormat>();

/** Throws RangeError for an unknown zone; cached because formatters are costly and zones are few. */
function wallFormatter(timeZone: string): Intl.DateTimeFormat {
  let formatter = wallFormatters.get(timeZone);
  if (!formatter) {
    formatter = new Intl.DateTimeFormat('en-US', {
      timeZone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    wallFormatters.set(timeZone, formatter);
  }
  return formatter;
}

function isValidTimezone(timeZone: string): boolean {
  if (typeof timeZone !== 'string' || timeZone.trim() === '') return false;
  try {
    wallFormatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** The wall clock in `timeZone` at instant `t`, as ms since epoch read as if it were UTC (whole seconds). */
export function wallAt(timeZone: string, t: number): number {
  const fields: Record<string, number> = {};
  for (const part of wallFormatter(timeZone).formatToParts(new Date(t))) {
    if (part.type !== 'literal') fields[part.type] = Number(part.value);
  }
  const { year = 0, month = 1, day = 1, hour = 0, minute = 0, second = 0 } = fields;
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

/** The zone's UTC offset (ms) at instant t. */
function offsetAt(timeZone: string, t: number): number {
  return wallAt(timeZone, t) - Math.floor(t / SECOND) * SECOND;
}

/**
 * The instant whose wall clock in `timeZone` reads `wall` (whole seconds, read as if UTC).
 * Ambiguous (clocks fall back): the first occurrence. Nonexistent (clocks spring forward): the instant the
 * clocks resume after the gap, e.g. 02:30 on the Berlin spring-forward day becomes 03:00 CEST, as croner does for cron.
 */
export function wallToInstant(timeZone: string, wall: number): number {
  // The true offset lies within -12h..+14h, so the offsets a day either side bracket any transition near `wall`.
  const before = offsetAt(timeZone, wall - DAY);
  const after = offsetAt(timeZone, wall + DAY);
  const candidates = [before, offsetAt(timeZone, wall), after].map((offset) => wall - offset).filter((t) => wallAt(timeZone, t) === wall);
  if (candidates.length > 0) return Math.min(...candidates);
  // In a gap the wall clock jumps from below `wall` to above it somewhere in this bracket; find the jump to the second.
  let lo = Math.floor((wall - Math.max(before, after)) / SECOND);
  let hi = Math.ceil((wall - Math.min(before, after)) / SECOND);
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    if (wallAt(timeZone, mid * SECOND) >= wall) hi = mid;
    else lo = mid;
  }
  return hi * SECOND;
}

function formatWall(t: number, timeZone: string): string {
  const iso = new Date(wallAt(timeZone, t)).toISOString();
  const seconds = iso.slice(17, 19);
  return `${iso.slice(0, 10)} ${iso.slice(11, 16)}${seconds === '00' ? '' : `:${seconds}`}`;
}

// ---------------------------------------------------------------------------------------------------------------------
// once

const ONCE_PATTERN = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,3}))?)?(Z|[+-]\d{2}:?\d{2})?$/i;

function parseOnce(value: string, timeZone: string): Checked<number> {
  const invalid = (why: string): Checked<number> => ({
    ok: false,
    error: `invalid once time "${value}": ${why}; use a local time "YYYY-MM-DDTHH:MM" in the task's timezone or an ISO instant such as "2026-12-01T08:00:00Z" or "2026-12-01T09:00:00+01:00"`,
  });
  const match = ONCE_PATTERN.exec(value.trim());
  if (!match) return invalid('not a date-time');
  const [, y, mo, d, h, mi, s = '0', frac = '', zone] = match;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  const hour = Number(h);
  const minute = Number(mi);
  const second = Number(s);
  if (month < 1 || month > 12) return invalid(`month ${mo} does not exist`);
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (day < 1 || day > daysInMonth) return invalid(`day ${d} does not exist in ${y}-${mo}`);
  if (hour > 23 || minute > 59 || second > 59) return invalid('time out of range');
  const ms = Number(frac.padEnd(3, '0'));
  const wall = Date.UTC(year, month - 1, day, hour, minute, second);
  if (zone === undefined) return { ok: true, value: wallToInstant(timeZone, wall) + ms };
  if (zone.toUpperCase() === 'Z') return { ok: true, value: wall + ms };
  const digits = zone.slice(1).replace(':', '');
  const offsetHours = Number(digits.slice(0, 2));
  const offsetMinutes = Number(digits.slice(2));
  if (offsetHours > 18 || offsetMinutes > 59) return invalid(`offset ${zone} out of range`);
  const offset = (zone.startsWith('-') ? -1 : 1) * (offsetHours * HOUR + offsetMinutes * MINUTE);
  return { ok: true, value: wall - offset + ms };
}

// ---------------------------------------------------------------------------------------------------------------------
// interval

const DURATION_PATTERN = /^(?:(\d+)d)?\s*(?:(\d+)h)?\s*(?:(\d+)m)?\s*(?:(\d+)s)?$/i;

function parseInterval(value: string): Checked<number> {
  const text = value.trim();
  let ms: number;
  if (/^\d+$/.test(text)) {
    ms = Number(text);
  } else {
    const match = DURATION_PATTERN.exec(text);
    if (!match || text === '') {
      return {
        ok: false,
        error: `invalid interval "${value}": use milliseconds ("3600000") or a duration such as "30m", "2h", "1d" or "1h30m"`,
      };
    }
    const [, d = '0', h = '0', m = '0', s = '0'] = match;
    ms = Number(d) * DAY + Number(h) * HOUR + Number(m) * MINUTE + Number(s) * SECOND;
  }
  if (ms < MIN_INTERVAL_MS) return { ok: false, error: `interval "${value}" is too short: the minimum is 60s` };
  if (!Number.isSafeInteger(ms) || ms > MAX_INTERVAL_MS)
    return { ok: false, error: `interval "${value}" is too long: the maximum is 366d` };
  return { ok: true, value: ms };
}

function describeDuration(ms: number): string {
  const units: [number, string][] = [
    [DAY, 'day'],
    [HOUR, 'hour'],
    [MINUTE, 'minute'],
    [SECOND, 'second'],
  ];
  // The largest unit that divides exactly keeps it honest: 1h30m reads "90 minutes", not "1.5 hours".
  for (const [size, name] of units) {
    if (ms % size === 0) return ms === size ? name : `${ms / size} ${name}s`;
  }
  return `${ms} ms`;
}

// ---------------------------------------------------------------------------------------------------------------------
// cron

const CRON_NICKNAMES: Record<string, string> = {
  '@yearly': '0 0 1 1 *',
  '@annually': '0 0 1 1 *',
  '@monthly': '0 0 1 * *',
  '@weekly': '0 0 * * 0',
  '@daily': '0 0 * * *',
  '@midnight': '0 0 * * *',
  '@hourly': '0 * * * *',
};

function normalizeCron(expr: string): string {
  const collapsed = expr.trim().split(/\s+/).join(' ');
  return collapsed.startsWith('@') ? collapsed.toLowerCase() : collapsed;
}

/** Parsing an expression costs far more than evaluating it; a paused Cron is immutable, so reuse it. */
const cronCache = new Map<string, Cron>();
const CRON_CACHE_MAX = 1000;

function buildCron(expr: string, timeZone: string): Checked<Cron> {
  const key = `${timeZone} ${expr}`;
  const cached = cronCache.get(key);
  if (cached) return { ok: true, value: cached };
  try {
    // paused: croner only evaluates; pincer's own timer fires tasks. 'no-wildcard' makes fixed lists like "30 2,14 * * *"
    // behave like "30 2 * * *" across DST (gap → run when clocks resume, repeated hour → run once), as Vixie cron does.
    const cron = new Cron(expr, { timezone: timeZone, paused: true, mode: '5-part', fixedTimeRule: 'no-wildcard' });
    if (cronCache.size >= CRON_CACHE_MAX) cronCache.clear();
    cronCache.set(key, cron);
    return { ok: true, value: cron };
  } catch (error) {
    const reason = error instanceof Error ? error.message.replace(/^CronPattern:\s*/, '') : String(error);
    return { ok: false, error: reason };
  }
}

function checkCron(value: string, timeZone: string): Checked<string> {
  const expr = normalizeCron(value);
  if (!expr.startsWith('@')) {
    const count = expr === '' ? 0 : expr.split(' ').length;
    if (count === 6 || count === 7) {
      return {
        ok: false,
        error: `invalid cron "${value}": ${count} fields given, but only the 5-field form "minute hour day-of-month month day-of-week" is supported (no seconds or years)`,
      };
    }
    if (count !== 5) {
      return { ok: false, error: `invalid cron "${value}": expected 5 fields "minute hour day-of-month month day-of-week", got ${count}` };
    }
  }
  const cron = buildCron(expr, timeZone);
  if (!cron.ok) return { ok: false, error: `invalid cron "${value}": ${cron.error}` };
  return { ok: true, value: expr };
}

const WEEKDAY_NAMES = ['Sunday', 'Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday'];
const MONTH_NAMES = [
  'January',
  'February',
  'March',
  'April',
  'May',
  'June',
  'July',
  'August',
  'September',
  'October',
  'November',
  'December',
];
const WEEKDAY_ORDER = [1, 2, 3, 4, 5, 6, 0];

/** A plain number within [min, max], else null (lists, ranges, steps and names are not "single"). */
function single(field: string, min: number, max: number): number | null {
  if (!/^\d{1,2}$/.test(field)) return null;
  const n = Number(field);
  return n >= min && n <= max ? n : null;
}

function weekdayNumber(token: string): number | null {
  const byName = WEEKDAY_NAMES.findIndex((name) => name.slice(0, 3).toLowerCase() === token.toLowerCase());
  if (byName >= 0) return byName;
  return single(token, 0, 7);
}

/** The weekdays (0 = Sunday) of a day-of-week field made of names, numbers, lists and plain ranges; null for anything else. */
function weekdaySet(field: string): Set<number> | null {
  if (field === '*') return new Set([0, 1, 2, 3, 4, 5, 6]);
  const days = new Set<number>();
  for (const item of field.split(',')) {
    const [from, to, ...rest] = item.split('-');
    if (from === undefined || rest.length > 0) return null;
    const start = weekdayNumber(from);
    const end = to === undefined ? start : weekdayNumber(to);
    if (start === null || end === null || start > end) return null;
    for (let day = start; day <= end; day++) days.add(day % 7);
  }
  return days;
}

function listWords(words: string[]): string {
  return words.length <= 1 ? words.join('') : `${words.slice(0, -1).join(', ')} and ${words[words.length - 1]}`;
}

function describeCron(value: string, timeZone: string): string {
  const expr = normalizeCron(value);
  const fallback = `cron "${expr}" (${timeZone})`;
  const fields = (CRON_NICKNAMES[expr] ?? expr).split(' ').map((field) => (field === '?' ? '*' : field));
  const [minuteField, hourField, domField, monthField, dowField] = fields;
  if (fields.length !== 5 || !minuteField || !hourField || !domField || !monthField || !dowField) return fallback;

  const minute = single(minuteField, 0, 59);
  const hour = single(hourField, 0, 23);
  const at =
    minute !== null && hour !== null ? `at ${String(hour).padStart(2, '0')}:${String(minute).padStart(2, '0')} (${timeZone})` : null;

  if (domField === '*' && monthField === '*') {
    if (at) {
      const days = weekdaySet(dowField);
      if (!days) return fallback;
      if (days.size === 7) return `every day ${at}`;
      if (days.size === 5 && [1, 2, 3, 4, 5].every((day) => days.has(day))) return `every weekday ${at}`;
      const names = WEEKDAY_ORDER.filter((day) => days.has(day)).map((day) => WEEKDAY_NAMES[day] ?? '');
      return `every ${listWords(names)} ${at}`;
    }
    if (dowField !== '*') return fallback;
    // Steps are only "every N" when they divide the hour/day evenly; */7 minutes restarts at each full hour.
    const minuteStep = /^\*\/(\d+)$/.exec(minuteField);
    const hourStep = /^\*\/(\d+)$/.exec(hourField);
    if (hourField === '*') {
      if (minuteField === '*') return 'every minute';
      if (minuteStep && 60 % Number(minuteStep[1]) === 0)
        return Number(minuteStep[1]) === 1 ? 'every minute' : `every ${minuteStep[1]} minutes`;
      if (minute !== null) return minute === 0 ? 'every hour' : `every hour at :${String(minute).padStart(2, '0')}`;
    }
    if (hourStep && minute !== null && 24 % Number(hourStep[1]) === 0) {
      const every = Number(hourStep[1]) === 1 ? 'every hour' : `every ${hourStep[1]} hours`;
      return minute === 0 ? every : `${every} at :${String(minute).padStart(2, '0')}`;
    }
    return fallback;
  }

  if (at && dowField === '*') {
    const dayText = domField.toUpperCase() === 'L' ? 'the last day' : single(domField, 1, 31) !== null ? `day ${Number(domField)}` : null;
    if (dayText && monthField === '*') return `on ${dayText} of every month ${at}`;
    const month = single(monthField, 1, 12);
    if (dayText && month !== null) return `every year on ${dayText} of ${MONTH_NAMES[month - 1]} ${at}`;
  }
  return fallback;
}

// @ts-check
// Times, durations, money and counts as people read them, in the browser's locale.

const timeOfDay = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dateAndTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'short' });
const fullTime = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });
const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit', fractionalSecondDigits: 3 });
const relative = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto', style: 'short' });
const count = new Intl.NumberFormat();

/** @param {string | number} time ISO text or epoch ms */
const toDate = (time) => new Date(time);

/**
 * A message's time: the time of day when it is from today, else date and time.
 * @param {string | number} time
 */
export function messageTime(time) {
  const date = toDate(time);
  return date.toDateString() === new Date().toDateString() ? timeOfDay.format(date) : dateAndTime.format(date);
}

/** @param {string | number} time */
export function dateTime(time) {
  return dateAndTime.format(toDate(time));
}

/** @param {string | number} time with seconds, for tooltips and traces */
export function preciseTime(time) {
  return fullTime.format(toDate(time));
}

/** @param {string | number} time the time of day to the millisecond, for a trace's stages */
export function clockTime(time) {
  return clock.format(toDate(time));
}

/**
 * A time as the clock reads in a time zone, with the zone's name: a task runs by its own zone's clock.
 * @param {string | number} time
 * @param {string} timeZone
 */
export function timeInZone(time, timeZone) {
  try {
    return `${new Intl.DateTimeFormat(undefined, { timeZone, dateStyle: 'medium', timeStyle: 'short' }).format(toDate(time))} (${timeZone})`;
  } catch {
    // A zone this browser does not know: the local time is still right, just in another zone.
    return dateTime(time);
  }
}

/** @type {Array<[Intl.RelativeTimeFormatUnit, number]>} */
const UNITS = [
  ['year', 365 * 24 * 3600_000],
  ['month', 30 * 24 * 3600_000],
  ['week', 7 * 24 * 3600_000],
  ['day', 24 * 3600_000],
  ['hour', 3600_000],
  ['minute', 60_000],
];

/**
 * "3 min ago", "in 2 hr", "now".
 * @param {string | number} time
 * @param {number} [now]
 */
export function timeAgo(time, now = Date.now()) {
  const diff = toDate(time).getTime() - now;
  for (const [unit, ms] of UNITS) if (Math.abs(diff) >= ms) return relative.format(Math.round(diff / ms), unit);
  return 'just now';
}

/**
 * "$0.0123": small amounts keep four decimals, since a turn often costs less than a cent.
 * @param {number | null | undefined} usd
 */
export function cost(usd) {
  if (usd === null || usd === undefined) return '—';
  return `$${usd.toFixed(usd >= 100 ? 2 : 4)}`;
}

/**
 * "850 ms", "1.2 s", "3 min 5 s".
 * @param {number | null | undefined} ms
 */
export function duration(ms) {
  if (ms === null || ms === undefined) return '—';
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`;
  const minutes = Math.floor(ms / 60_000);
  const seconds = Math.round((ms % 60_000) / 1000);
  return seconds === 0 ? `${minutes} min` : `${minutes} min ${seconds} s`;
}

/** @param {number} n */
export function number(n) {
  return count.format(n);
}

/**
 * The first line of a text, cut to `max` characters; the full text belongs in a title or a details element.
 * @param {string} text
 * @param {number} [max]
 */
export function firstLine(text, max = 120) {
  const line = text.trim().split('\n', 1)[0] ?? '';
  const cut = line.length > max ? `${line.slice(0, max - 1)}…` : line;
  return cut !== text.trim() && !cut.endsWith('…') ? `${cut} …` : cut;
}

/**
 * A text cut to `max` characters.
 * @param {string} text
 * @param {number} max
 */
export function truncate(text, max) {
  const oneLine = text.replace(/\s+/g, ' ').trim();
  return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

// What the agent reads when a scheduled task runs: that it is a scheduled run, which task, when (in the
// task's own time zone), whether it is late, then the owner's prompt.

import type { Task } from '../store/index.js';
import { describeSchedule, nextDueAfter, type Schedule } from './schedule.js';

/**
 * A run that starts this much after its due time says so: a quarter of a minute, past any jitter of the timer
 * and a short wait for a slot, but well before a person would say "late" of a minute-precise schedule.
 */
const LATE_AFTER_MS = 15_000;
/** How many due times passed while a run was late are named; more are counted. */
const NAMED_SKIPPED = 3;
/** Counting stops here (a 1-minute interval over weeks of downtime would otherwise be walked slot by slot). */
const COUNTED_SKIPPED = 10_000;

export const scheduleOf = (t: Task): Schedule => ({
  type: t.scheduleType,
  value: t.scheduleValue,
  timezone: t.timezone,
  anchorAt: t.anchorAt,
});

/** Building a formatter costs far more than using one; a thousand tasks due at once share them. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function localTime(at: number, timezone: string): string {
  let format = formatters.get(timezone);
  if (!format) {
    format = new Intl.DateTimeFormat('en-GB', {
      timeZone: timezone,
      weekday: 'short',
      year: 'numeric',
      month: 'short',
      day: 'numeric',
      hour: '2-digit',
      minute: '2-digit',
      hour12: false,
    });
    formatters.set(timezone, format);
  }
  return format.format(at);
}

function duration(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)} s`;
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days ${hours % 24} h`;
}

/**
 * The task's due times after `dueAt` up to `until` (the run's start): they passed while this run was late and are
 * not run (the next run is the first one after the start). At most COUNTED_SKIPPED are counted.
 */
export function skippedDueTimes(task: Task, dueAt: number, until: number): { first: number[]; count: number; capped: boolean } {
  const first: number[] = [];
  let count = 0;
  for (let at = nextDueAfter(scheduleOf(task), dueAt); at !== null && at <= until; at = nextDueAfter(scheduleOf(task), at)) {
    if (count === COUNTED_SKIPPED) return { first, count, capped: true };
    if (first.length < NAMED_SKIPPED) first.push(at);
    count++;
  }
  return { first, count, capped: false };
}

function lateNote(task: Task, dueAt: number, startedAt: number): string {
  const late = startedAt - dueAt;
  if (late < LATE_AFTER_MS) return '';
  const why = 'pincer was not running or busy';
  const skipped = skippedDueTimes(task, dueAt, startedAt);
  if (skipped.count === 0) return ` It runs ${duration(late)} late (${why}).`;
  const named = skipped.first.map((at) => localTime(at, task.timezone)).join('; ');
  const more = skipped.count - skipped.first.length;
  const which = skipped.capped
    ? `more than ${COUNTED_SKIPPED.toLocaleString('en-US')} due times since then (the first: ${named}) were`
    : skipped.count === 1
      ? `the due time since then (${named}) was`
      : `the ${skipped.count.toLocaleString('en-US')} due times since then (${named}${more > 0 ? `, and ${more.toLocaleString('en-US')} more` : ''}) were`;
  return ` It runs ${duration(late)} late (${why}); ${which} skipped, not run.`;
}

export function runPrompt(task: Task, dueAt: number, startedAt: number): string {
  return (
    `[Scheduled run of task #${task.id} (${describeSchedule(scheduleOf(task))}), due ${localTime(dueAt, task.timezone)} ${task.timezone}.${lateNote(task, dueAt, startedAt)} ` +
    `Your final answer is posted to the chat.]\n\n${task.prompt}`
  );
}

// What the agent reads when a scheduled task runs: that it is a scheduled run, which task, when (in the
// task's own time zone), whether it is late, then the owner's prompt.

/** A run that starts this much after its due time says so. */
export const LATE_AFTER_MS = 60_000;

import type { Task } from '../store/index.js';
import { describeSchedule, type Schedule } from './schedule.js';

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
  const minutes = Math.round(ms / 60_000);
  if (minutes < 60) return `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days ${hours % 24} h`;
}

export function runPrompt(task: Task, dueAt: number, startedAt: number): string {
  const late = startedAt - dueAt;
  const lateNote =
    late >= LATE_AFTER_MS ? ` It runs ${duration(late)} late (pincer was not running or busy); missed earlier runs were skipped.` : '';
  return (
    `[Scheduled run of task #${task.id} (${describeSchedule(scheduleOf(task))}), due ${localTime(dueAt, task.timezone)} ${task.timezone}.${lateNote} ` +
    `Your final answer is posted to the chat.]\n\n${task.prompt}`
  );
}

// What the agent is shown: the messages it missed since its last reply, as escaped XML.
import type { StoredMessage } from '../store/index.js';

export function escapeXml(s: string): string {
  return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] ?? c);
}

/** `2026-11-25 09:30` in the given zone. */
export function formatLocalTime(at: number, timeZone: string): string {
  const parts = new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hourCycle: 'h23',
  }).formatToParts(at);
  const get = (t: string) => parts.find((p) => p.type === t)?.value ?? '';
  return `${get('year')}-${get('month')}-${get('day')} ${get('hour')}:${get('minute')}`;
}

/**
 * `omitted`: how many older unanswered messages the bound left out (the agent can say so); `interrupted`: an
 * earlier attempt at these messages was cut off (the agent is told what it did).
 */
export function formatPrompt(
  messages: readonly StoredMessage[],
  timeZone: string,
  omitted: number,
  interrupted?: InterruptedAttempt,
): string {
  const lines = messages.map(
    (m) => `<message sender="${escapeXml(m.senderName)}" time="${formatLocalTime(m.sentAt, timeZone)}">${escapeXml(m.text)}</message>`,
  );
  const note = omitted > 0 ? ` earlier_messages_omitted="${omitted}"` : '';
  const xml = `<messages timezone="${escapeXml(timeZone)}"${note}>\n${lines.join('\n')}\n</messages>`;
  return interrupted ? `${xml}\n${formatInterruptedAttempt(interrupted)}` : xml;
}

// A turn that runs again after pincer was killed or crashed mid-turn: the agent is told so, with the tool calls
// the cut-off attempt made (from the trace), so that it checks before doing a side effect twice.

/** How many of the cut-off attempt's tool calls the prompt lists (its newest); the rest are counted. */
export const LISTED_TOOL_CALLS = 30;

export interface InterruptedAttempt {
  /** One line per tool call the cut-off attempt made, in order (as the trace has them). */
  toolCalls: string[];
}

export function formatInterruptedAttempt(attempt: InterruptedAttempt): string {
  const { toolCalls } = attempt;
  const listed = toolCalls.slice(-LISTED_TOOL_CALLS);
  const more = toolCalls.length - listed.length;
  const calls =
    toolCalls.length === 0
      ? 'It had made no tool calls that pincer saw.'
      : [
          `Its tool calls, in order${more > 0 ? ` (the last ${listed.length}; ${more} earlier ones not listed)` : ''}:`,
          ...listed.map((c) => `- ${escapeXml(c)}`),
        ].join('\n');
  return [
    `<interrupted_attempt tool_calls="${toolCalls.length}">`,
    'This runs again: an earlier attempt at this was cut off (pincer stopped or crashed) before its answer was sent.',
    calls,
    'What they did may already have happened: check before repeating anything with an effect outside this conversation (messages, files, tasks, commands).',
    '</interrupted_attempt>',
  ].join('\n');
}

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

/** `omitted`: how many older unanswered messages the bound left out (the agent can say so). */
export function formatPrompt(messages: readonly StoredMessage[], timeZone: string, omitted: number): string {
  const lines = messages.map(
    (m) => `<message sender="${escapeXml(m.senderName)}" time="${formatLocalTime(m.sentAt, timeZone)}">${escapeXml(m.text)}</message>`,
  );
  const note = omitted > 0 ? ` earlier_messages_omitted="${omitted}"` : '';
  return `<messages timezone="${escapeXml(timeZone)}"${note}>\n${lines.join('\n')}\n</messages>`;
}

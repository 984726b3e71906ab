// `/trace [id]` inside `pincer chat`: the stages of one message, from the API `pincer trace` reads.
import type { ApiClient } from '../api-client.js';
import { traceAnswer } from '../insight.js';
import { localTime, truncate } from '../output.js';
import { terminalText } from '../terminal-text.js';

/** The trace as lines: the message, then one line per stage with the milliseconds since the first. */
export async function traceText(client: ApiClient, id: string): Promise<string> {
  const { message, stages } = traceAnswer.parse(await client.request('GET', `/api/v1/messages/${encodeURIComponent(id)}/trace`));
  const start = Date.parse(stages[0]?.at ?? message.sentAt);
  const rows = stages.map((s) => [`+${Date.parse(s.at) - start}`, s.stage, s.detail ?? '']);
  const widths = [0, 1].map((i) => Math.max(...rows.map((r) => (r[i] ?? '').length), i === 0 ? 6 : 5));
  const head = `trace of #${message.id} from ${message.sender} at ${localTime(message.sentAt)}: ${truncate(message.text, 60)}`;
  const lines = rows.map(([ms, stage, detail]) =>
    `  ${(ms ?? '').padStart(widths[0] ?? 0)} ms  ${(stage ?? '').padEnd(widths[1] ?? 0)}  ${detail}`.trimEnd(),
  );
  return terminalText([head, ...(lines.length ? lines : ['  (no stages recorded)'])].join('\n'));
}

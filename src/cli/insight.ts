// `pincer trace <message-id>` and `pincer status`: answers to "why didn't it reply?" and "what is it doing?".
import { Command } from 'commander';
import { z } from 'zod';
import { localTime, printJson, printLine, printTable, truncate, withPincer } from './output.js';

/** The API's answer for a message's trace (`pincer trace`, and `/trace` in `pincer chat`). */
export const traceAnswer = z.object({
  message: z.object({ id: z.string(), chatId: z.string(), sender: z.string(), text: z.string(), sentAt: z.string(), engages: z.boolean() }),
  stages: z.array(z.object({ stage: z.string(), at: z.string(), detail: z.string().nullable() })),
});

const statusAnswer = z.object({
  channels: z.array(z.object({ name: z.string(), state: z.string() })),
  groups: z.array(z.object({ folder: z.string(), chatId: z.string(), isMain: z.boolean(), live: z.boolean(), model: z.string() })),
  queue: z.object({ working: z.number(), ready: z.number(), waiting: z.number() }),
  nextTasks: z.array(z.object({ id: z.number(), group: z.string(), nextRunAt: z.string() })),
  today: z.object({ date: z.string(), costUsd: z.number(), unpricedCalls: z.number(), turns: z.number() }),
  outbox: z.object({ pending: z.number(), failed: z.number() }),
});

export function traceCommand(): Command {
  return new Command('trace')
    .description('every stage a message went through, with times and the reason at each decision')
    .argument('<message-id>', 'the id the API answered when the message was sent (or shown by pincer chat)')
    .option('--json', 'print the API answer as JSON')
    .action(async (id: string, opts: { json?: boolean }) => {
      process.exitCode = await withPincer(async (client) => {
        const answer = await client.request('GET', `/api/v1/messages/${encodeURIComponent(id)}/trace`);
        if (opts.json) return printJson(answer);
        const { message, stages } = traceAnswer.parse(answer);
        printLine(
          `message ${message.id} in ${message.chatId} from ${message.sender} at ${localTime(message.sentAt)}: ${truncate(message.text, 80)}`,
        );
        const start = Date.parse(stages[0]?.at ?? message.sentAt);
        printTable(
          ['+ms', 'stage', 'detail'],
          stages.map((s) => [String(Date.parse(s.at) - start), s.stage, s.detail ?? '']),
        );
      });
    });
}

export function statusCommand(): Command {
  return new Command('status')
    .description('channels, groups, live sessions, queue, next tasks and what today cost')
    .option('--json', 'print the API answer as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await withPincer(async (client) => {
        const answer = await client.request('GET', '/api/v1/status');
        if (opts.json) return printJson(answer);
        const s = statusAnswer.parse(answer);
        printLine(`channels: ${s.channels.map((c) => `${c.name} (${c.state})`).join(', ')}`);
        const live = s.groups.filter((g) => g.live).map((g) => g.folder);
        printLine(`groups: ${s.groups.length} joined; live sessions: ${live.length ? live.join(', ') : 'none'}`);
        printLine(
          `agents: ${s.queue.working} working, ${s.queue.ready} ready, ${s.queue.waiting} waiting; outbox: ${s.outbox.pending} pending, ${s.outbox.failed} failed`,
        );
        for (const g of s.groups) printLine(`  ${g.folder}: ${g.model}`);
        // Calls to a model without a known price are not in the sum: said, never shown as free.
        const unknown = s.today.unpricedCalls > 0 ? ` + unknown (${s.today.unpricedCalls} call(s) to models without a known price)` : '';
        printLine(`today (${s.today.date}): ${s.today.turns} turn(s), $${s.today.costUsd.toFixed(4)}${unknown}`);
        printLine(
          s.nextTasks.length
            ? `next tasks: ${s.nextTasks.map((t) => `#${t.id} ${t.group} at ${localTime(t.nextRunAt)}`).join('; ')}`
            : 'next tasks: none',
        );
      });
    });
}

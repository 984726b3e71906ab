// `pincer usage`: what each group used per day and model, as pincer's model proxy metered it. A model without a
// known price shows its cost as unknown, with its tokens.
import { Command } from 'commander';
import { z } from 'zod';
import { printJson, printLine, printTable, withPincer } from './output.js';

const usageAnswer = z.object({
  usage: z.array(
    z.object({
      date: z.string(),
      group: z.string(),
      turns: z.number(),
      models: z.array(
        z.object({
          provider: z.string().nullable(),
          model: z.string().nullable(),
          calls: z.number(),
          costUsd: z.number().nullable(),
          inputTokens: z.number(),
          outputTokens: z.number(),
        }),
      ),
    }),
  ),
});

const count = (n: number) => n.toLocaleString('en-US');

export function usageCommand(): Command {
  return new Command('usage')
    .description('model calls, tokens and cost per day, group and model (unknown cost for models without a known price)')
    .option('--days <n>', 'how many days back (default 30)', '30')
    .option('--json', 'print the API answer as JSON')
    .action(async (opts: { days: string; json?: boolean }) => {
      process.exitCode = await withPincer(async (client) => {
        const answer = await client.request('GET', `/api/v1/usage?days=${encodeURIComponent(opts.days)}`);
        if (opts.json) return printJson(answer);
        const rows = usageAnswer
          .parse(answer)
          .usage.flatMap((r) =>
            r.models.map((m) => [
              r.date,
              r.group,
              m.model ?? '(not named)',
              m.provider ?? 'anthropic',
              count(m.calls),
              count(m.inputTokens),
              count(m.outputTokens),
              m.costUsd === null ? 'unknown' : `$${m.costUsd.toFixed(4)}`,
            ]),
          );
        if (rows.length === 0) return printLine('no model calls in that time');
        printTable(['DATE', 'GROUP', 'MODEL', 'PROVIDER', 'CALLS', 'TOKENS IN', 'TOKENS OUT', 'COST'], rows);
      });
    });
}

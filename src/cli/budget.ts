// `pincer budget`: what was spent today and this month against the budgets, and setting them.
import { Command, InvalidArgumentError } from 'commander';
import { z } from 'zod';
import { printJson, printTable, withPincer } from './output.js';

const spend = z.object({
  dailyUsd: z.number().nullable(),
  monthlyUsd: z.number().nullable(),
  spentTodayUsd: z.number(),
  spentMonthUsd: z.number(),
});
const budgetsAnswer = z.object({ global: spend, groups: z.array(spend.extend({ folder: z.string(), chatId: z.string() })) });

const money = (amount: number | null): string => (amount === null ? 'no limit' : `$${amount.toFixed(2)}`);

/** "5", "12.50", or "none" (no limit; commander would turn a null into ''). */
function amount(value: string): number | 'none' {
  if (value === 'none') return 'none';
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('an amount in USD above 0, or "none" for no limit');
  return n;
}

async function show(answer: unknown, json: boolean): Promise<void> {
  if (json) return printJson(answer);
  const { global, groups } = budgetsAnswer.parse(answer);
  const row = (name: string, s: z.infer<typeof spend>) => [
    name,
    `$${s.spentTodayUsd.toFixed(4)}`,
    money(s.dailyUsd),
    `$${s.spentMonthUsd.toFixed(4)}`,
    money(s.monthlyUsd),
  ];
  printTable(
    ['BUDGET', 'TODAY', 'DAILY LIMIT', 'THIS MONTH', 'MONTHLY LIMIT'],
    [row('overall', global), ...groups.map((g) => row(g.folder, g))],
  );
}

export function budgetCommand(): Command {
  const command = new Command('budget').description('spend today and this month against the budgets (overall and per group)');
  command.option('--json', 'print the API answer as JSON').action(async (opts: { json?: boolean }) => {
    process.exitCode = await withPincer(async (client) => show(await client.request('GET', '/api/v1/budgets'), opts.json ?? false));
  });
  command
    .command('set')
    .description('set the overall budget, or a group\'s with --group; "none" removes a limit')
    .option('--group <folder>', "a group's budget instead of the overall one")
    .option('--daily <usd>', 'limit per calendar day', amount)
    .option('--monthly <usd>', 'limit per calendar month', amount)
    .option('--json', 'print the API answer as JSON')
    .action(async (opts: { group?: string; daily?: number | 'none'; monthly?: number | 'none'; json?: boolean }) => {
      const limit = (v: number | 'none' | undefined) => (v === 'none' ? null : v);
      process.exitCode = await withPincer(async (client) => {
        const body = { group: opts.group, dailyUsd: limit(opts.daily), monthlyUsd: limit(opts.monthly) };
        await show(await client.request('PUT', '/api/v1/budgets', body), opts.json ?? false);
      });
    });
  return command;
}

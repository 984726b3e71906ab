// `pincer tasks …`: prompts that run on a schedule in a group, through the running pincer's API.
import { Command, Option } from 'commander';
import { z } from 'zod';
import type { ApiClient } from './api-client.js';
import { duration, localTime, printJson, printLine, printTable, truncate, withPincer } from './output.js';

const taskSchema = z.object({
  id: z.number(),
  group: z.string(),
  prompt: z.string(),
  timezone: z.string(),
  schedule: z.string(),
  contextMode: z.string(),
  status: z.string(),
  nextRunAt: z.string().nullable(),
  lastRun: z.object({ status: z.string() }).nullable(),
});
const runSchema = z.object({
  dueAt: z.number(),
  startedAt: z.number(),
  lateMs: z.number(),
  status: z.string(),
  durationMs: z.number().nullable(),
  costUsd: z.number().nullable(),
  result: z.string().nullable(),
  error: z.string().nullable(),
});
const tasksAnswer = z.object({ tasks: z.array(taskSchema) });
const taskAnswer = z.object({ task: taskSchema });
const runsAnswer = z.object({ runs: z.array(runSchema) });

type TaskRow = z.infer<typeof taskSchema>;

const nextRun = (t: TaskRow): string => (t.nextRunAt === null ? '-' : `${localTime(t.nextRunAt, t.timezone)} ${t.timezone}`);

const taskPath = (id: string, action = '') => `/api/v1/tasks/${encodeURIComponent(id)}${action}`;

async function listTasks(client: ApiClient, group: string | undefined, json: boolean): Promise<void> {
  const answer = await client.request('GET', `/api/v1/tasks${group === undefined ? '' : `?group=${encodeURIComponent(group)}`}`);
  if (json) return printJson(answer);
  const { tasks } = tasksAnswer.parse(answer);
  if (tasks.length === 0) return printLine(group === undefined ? 'no tasks' : `no tasks in group "${group}"`);
  printTable(
    ['ID', 'GROUP', 'STATUS', 'SCHEDULE', 'NEXT RUN', 'LAST RUN', 'PROMPT'],
    tasks.map((t) => [
      String(t.id),
      t.group,
      t.status,
      truncate(t.schedule, 50),
      nextRun(t),
      t.lastRun?.status ?? '-',
      truncate(`${t.contextMode === 'isolated' ? '[isolated] ' : ''}${t.prompt}`, 50),
    ]),
  );
}

async function listRuns(client: ApiClient, id: string, limit: string | undefined, json: boolean): Promise<void> {
  const answer = await client.request('GET', `${taskPath(id, '/runs')}${limit === undefined ? '' : `?limit=${encodeURIComponent(limit)}`}`);
  if (json) return printJson(answer);
  const { runs } = runsAnswer.parse(answer);
  if (runs.length === 0) return printLine(`task ${id} has not run yet`);
  // Runs carry no time zone of their own: times are the shell's local time.
  printTable(
    ['DUE', 'STARTED', 'LATE', 'STATUS', 'DURATION', 'COST', 'RESULT OR ERROR'],
    runs.map((r) => [
      localTime(r.dueAt),
      localTime(r.startedAt),
      r.lateMs < 1000 ? '-' : duration(r.lateMs),
      r.status,
      r.durationMs === null ? '-' : duration(r.durationMs),
      r.costUsd === null ? '-' : `$${r.costUsd.toFixed(4)}`,
      truncate(r.error ?? r.result ?? '', 60),
    ]),
  );
}

type AddOptions = {
  group: string;
  cron?: string;
  every?: string;
  at?: string;
  timezone?: string;
  isolated?: boolean;
  model?: string;
  effort?: string;
};

function scheduleOf(opts: AddOptions): { scheduleType: 'cron' | 'interval' | 'once'; scheduleValue: string } | undefined {
  if (opts.cron !== undefined) return { scheduleType: 'cron', scheduleValue: opts.cron };
  if (opts.every !== undefined) return { scheduleType: 'interval', scheduleValue: opts.every };
  if (opts.at !== undefined) return { scheduleType: 'once', scheduleValue: opts.at };
  return undefined;
}

export function tasksCommand(): Command {
  const tasks = new Command('tasks').description('prompts that run on a schedule in a group');

  tasks
    .command('list')
    .description("list the tasks that are not cancelled, with their next run in each task's time zone")
    .option('--group <folder>', "only this group's tasks")
    .option('--json', 'print the API answer as JSON')
    .action(async (opts: { group?: string; json?: boolean }) => {
      process.exitCode = await withPincer((client) => listTasks(client, opts.group, opts.json === true));
    });

  tasks
    .command('add')
    .description('schedule a prompt in a group (exactly one of --cron, --every, --at)')
    .requiredOption('--group <folder>', 'the group the task runs in')
    .addOption(new Option('--cron <expr>', 'a cron expression, e.g. "0 9 * * 1-5"').conflicts(['every', 'at']))
    .addOption(new Option('--every <duration>', 'an interval, e.g. 30m or 2h').conflicts(['cron', 'at']))
    .addOption(new Option('--at <time>', 'once, at a local time, e.g. "2025-06-01 09:00"').conflicts(['cron', 'every']))
    .option('--timezone <tz>', "the schedule's time zone (default: the group's)")
    .option('--isolated', "run in a fresh session without the group's conversation")
    .option('--model <id>', "with --isolated: the model its runs use (default: the group's)")
    .option('--effort <level>', "with --isolated: low, medium, high, xhigh or max (default: the group's)")
    .argument('<prompt...>', 'what the agent is asked each time')
    .action(async (words: string[], opts: AddOptions) => {
      const schedule = scheduleOf(opts);
      if (!schedule) {
        process.stderr.write('say when the task runs: --cron <expr>, --every <duration> or --at <time>\n');
        process.exitCode = 1;
        return;
      }
      process.exitCode = await withPincer(async (client) => {
        const body = {
          group: opts.group,
          prompt: words.join(' '),
          ...schedule,
          contextMode: opts.isolated ? 'isolated' : 'group',
          timezone: opts.timezone,
          model: opts.model,
          effort: opts.effort,
        };
        const { task } = taskAnswer.parse(await client.request('POST', '/api/v1/tasks', body));
        printLine(`task ${task.id} scheduled in group "${task.group}": ${task.schedule}; next run ${nextRun(task)}`);
      });
    });

  const transition = (action: 'pause' | 'resume' | 'cancel', description: string, done: (t: TaskRow) => string) =>
    tasks
      .command(action)
      .description(description)
      .argument('<id>', "the task's id (see tasks list)")
      .action(async (id: string) => {
        process.exitCode = await withPincer(async (client) => {
          const { task } = taskAnswer.parse(await client.request('POST', taskPath(id, `/${action}`)));
          printLine(done(task));
        });
      });
  transition('pause', 'stop running a task until it is resumed', (t) => `task ${t.id} paused`);
  transition('resume', 'run a paused task again, from now on (missed runs are skipped)', (t) =>
    t.status === 'completed' ? `task ${t.id} completed: it has no run left` : `task ${t.id} resumed; next run ${nextRun(t)}`,
  );
  transition('cancel', 'end a task for good (its runs stay on record)', (t) => `task ${t.id} cancelled`);

  tasks
    .command('runs')
    .description("a task's runs, newest first")
    .argument('<id>', "the task's id")
    .option('--limit <n>', 'how many (at most 500)', '20')
    .option('--json', 'print the API answer as JSON')
    .action(async (id: string, opts: { limit?: string; json?: boolean }) => {
      process.exitCode = await withPincer((client) => listRuns(client, id, opts.limit, opts.json === true));
    });

  return tasks;
}

// 5. Scheduler lateness: how long after its due time each task's run is handed to its group's queue, with
// the real store and the real one-timer scheduler. Lateness is read per task: the run's message carries its
// due time in its platform id (`task-<id>-<due ms>`), and the hand-over is timed with Date.now(), the clock
// the scheduler itself uses.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/log.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { Store } from '../src/store/index.js';
import { type Section, section } from './lib/report.js';
import { SIZES } from './lib/settings.js';
import { within } from './lib/wait.js';

const TARGET_MS = 50;
/** The first task is due this long after the tasks were stored and the scheduler started. */
const LEAD_MS = 1_500;

async function lateness(dueTimes: (start: number) => number[]): Promise<number[]> {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-bench-sched-'));
  const store = new Store(join(dir, 'pincer.db'));
  let scheduler: Scheduler | undefined;
  try {
    const now = Date.now();
    store.chats.seen({ id: 'local:main', channel: 'local', isGroup: false }, now);
    store.groups.register({ chatId: 'local:main', folder: 'main', trigger: '@Andy', respondToAll: true, isMain: true }, now, 0);
    const start = now + LEAD_MS;
    const dues = dueTimes(start);
    store.transaction(() => {
      for (const due of dues)
        store.tasks.add({
          chatId: 'local:main',
          prompt: 'bench',
          scheduleType: 'once',
          scheduleValue: new Date(due).toISOString(),
          timezone: 'UTC',
          anchorAt: now,
          contextMode: 'group',
          status: 'active',
          nextRunAt: due,
          createdBy: 'owner',
          createdAt: now,
        });
    });
    const late: number[] = [];
    const all = new Promise<void>((resolve) => {
      scheduler = new Scheduler({
        store,
        log: createLogger('silent'),
        wakeGroup: (_chatId, seq) => {
          const at = Date.now();
          const due = Number(/-(\d+)$/.exec(store.messages.get(seq)?.platformId ?? '')?.[1] ?? Number.NaN);
          late.push(at - due);
          if (late.length === dues.length) resolve();
        },
        startIsolated: () => {},
      });
    });
    scheduler?.start();
    const last = Math.max(...dues);
    await within(all, last - Date.now() + 30_000, 'every task to be handed over');
    return late;
  } finally {
    scheduler?.stop();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export async function schedulerSection(): Promise<Section> {
  const n = SIZES.tasks;
  const spreadMs = SIZES.spreadSec * 1000;
  const s = section('scheduler', 5, `scheduler lateness, ${n.toLocaleString('en-US')} tasks`);
  const target = { stat: 'p95', op: '<=', limit: TARGET_MS } as const;
  process.stdout.write('  due in the same second…\n');
  const same = await lateness((start) => Array.from({ length: n }, (_, i) => start + Math.floor((i * 1000) / n)));
  s.rows.push({ metric: `${n} tasks due within the same second`, unit: 'ms', samples: same, target });
  process.stdout.write(`  spread over ${SIZES.spreadSec} s…\n`);
  const spread = await lateness((start) => Array.from({ length: n }, (_, i) => start + Math.floor((i * spreadMs) / n)));
  s.rows.push({ metric: `${n} tasks spread over ${SIZES.spreadSec} s`, unit: 'ms', samples: spread, target });
  process.stdout.write('  all due at the same instant…\n');
  const instant = await lateness((start) => Array.from({ length: n }, () => start));
  s.rows.push({ metric: `${n} tasks due at the same millisecond (worst case)`, unit: 'ms', samples: instant });
  s.notes.push(
    'lateness = hand-over to the queue (wakeGroup) − due time; a group-context run stores its prompt as a message first, in the same transaction as the next due time',
    'the target is judged on p95; max is shown beside it',
  );
  return s;
}

// Scheduler lateness: how long after its due time each task's run starts (the moment the scheduler hands
// it to the group's queue), with the real store and the real one-timer scheduler.
// `npm run bench`; BENCH_TASKS (default 1000) and BENCH_SPREAD_SEC (default 60) size it.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/log.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { Store } from '../src/store/index.js';

const TASKS = Math.max(1, Number(process.env.BENCH_TASKS ?? 1000) || 1000);
const SPREAD_MS = Math.max(1, Number(process.env.BENCH_SPREAD_SEC ?? 60) || 60) * 1000;
const TARGET_MS = 50;

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? Number.NaN;
}

async function measure(label: string, dueTimes: (start: number) => number[]): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-bench-sched-'));
  const store = new Store(join(dir, 'pincer.db'));
  try {
    store.chats.seen({ id: 'local:main', channel: 'local', isGroup: false }, Date.now());
    store.groups.register({ chatId: 'local:main', folder: 'main', trigger: '@Andy', respondToAll: true, isMain: true }, Date.now(), 0);
    const start = Date.now() + 1500;
    const dues = dueTimes(start);
    store.transaction(() => {
      for (const due of dues) {
        store.tasks.add({
          chatId: 'local:main',
          prompt: 'bench',
          scheduleType: 'once',
          scheduleValue: new Date(due).toISOString(),
          timezone: 'UTC',
          anchorAt: start,
          contextMode: 'group',
          status: 'active',
          nextRunAt: due,
          createdBy: 'owner',
          createdAt: start,
        });
      }
    });
    const late: number[] = [];
    let done: () => void = () => {};
    const all = new Promise<void>((resolve) => {
      done = resolve;
    });
    const scheduler = new Scheduler({
      store,
      log: createLogger('silent'),
      wakeGroup: (_chatId, seq) => {
        const due = dues[late.length] ?? 0;
        void seq;
        late.push(Date.now() - due);
        if (late.length === dues.length) done();
      },
      startIsolated: () => {},
    });
    scheduler.start();
    await all;
    scheduler.stop();
    const result = quantile(late, 0.95) <= TARGET_MS ? 'MET' : 'NOT MET';
    const fmt = (n: number) => n.toFixed(1).padStart(8);
    return `${label.padEnd(44)} ${String(late.length).padStart(5)} ${fmt(quantile(late, 0.5))} ${fmt(quantile(late, 0.95))} ${fmt(Math.max(...late))}   <= ${TARGET_MS} ms  ${result}`;
  } finally {
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

process.stdout.write(`\nscheduler lateness (due time → handed to the queue), ${TASKS} tasks\n`);
process.stdout.write(
  `${'case'.padEnd(44)} ${'n'.padStart(5)} ${'median'.padStart(8)} ${'p95'.padStart(8)} ${'max'.padStart(8)}   target     result\n`,
);
// Tasks are due in id order, so the i-th hand-over belongs to the i-th due time.
process.stdout.write(`${await measure(`${TASKS} due in the same second`, (s) => Array.from({ length: TASKS }, () => s))}\n`);
process.stdout.write(
  `${await measure(`${TASKS} spread over ${SPREAD_MS / 1000} s`, (s) => Array.from({ length: TASKS }, (_, i) => s + Math.floor((i * SPREAD_MS) / TASKS)))}\n`,
);

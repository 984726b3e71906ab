// The scheduler against a real store with a controlled clock: due runs start once, the next due time is
// stored first, downtime leads to one late run, once-tasks complete, left groups cancel their tasks, and a due
// time that comes while the task's previous run still goes is skipped and logged.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { createLogger } from '../src/log.js';
import { Scheduler } from '../src/scheduler/scheduler.js';
import { type NewTask, Store, type TaskRun } from '../src/store/index.js';

const HOUR = 3_600_000;
const T0 = Date.UTC(2026, 10, 23, 8, 0); // Monday 2026-11-23 09:00 in Berlin
let dir: string;
let store: Store;
let now: number;
let woken: Array<{ chatId: string; seq: number }>;
let isolated: TaskRun[];
let scheduler: Scheduler;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pincer-sched-'));
  store = new Store(join(dir, 'pincer.db'));
  store.chats.seen({ id: 'local:main', channel: 'local', isGroup: false }, T0);
  store.groups.register({ chatId: 'local:main', folder: 'main', trigger: '@Andy', respondToAll: true, isMain: true }, T0, 0);
  now = T0;
  woken = [];
  isolated = [];
  scheduler = new Scheduler({
    store,
    log: createLogger('silent'),
    wakeGroup: (chatId, seq) => woken.push({ chatId, seq }),
    startIsolated: (run) => isolated.push(run),
    now: () => now,
  });
});
afterEach(() => {
  scheduler.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

function task(t: Partial<NewTask> = {}) {
  return store.tasks.add({
    chatId: 'local:main',
    prompt: 'send the pipeline overview',
    scheduleType: 'interval',
    scheduleValue: String(HOUR),
    timezone: 'Europe/Berlin',
    anchorAt: T0 - 4 * HOUR,
    contextMode: 'group',
    status: 'active',
    nextRunAt: T0,
    createdBy: 'main',
    createdAt: T0 - 4 * HOUR,
    ...t,
  });
}

describe('scheduler', () => {
  test('a due group task stores its next due time, records the run and carries its prompt into the chat', () => {
    const t = task();
    scheduler.start();
    assert.equal(woken.length, 1);
    const runs = store.taskRuns.forTask(t.id, 10);
    assert.equal(runs.length, 1);
    assert.equal(runs[0]?.dueAt, T0);
    assert.equal(runs[0]?.status, 'running');
    assert.equal(store.tasks.get(t.id)?.nextRunAt, T0 + HOUR, 'interval stays anchored');
    const message = store.messages.after('local:main', 0, 10).find((m) => m.seq === woken[0]?.seq);
    assert.ok(message?.engages);
    assert.match(message?.text ?? '', /^\[Scheduled run of task #1 \(every hour\), due Mon, 23 Nov 2026, 09:00 Europe\/Berlin\./);
    assert.match(message?.text ?? '', /send the pipeline overview$/);
    assert.doesNotMatch(message?.text ?? '', /late/);
  });

  test('after downtime a recurring task runs once, late and saying so, not once per missed slot', () => {
    const t = task({ nextRunAt: T0 - 3 * HOUR });
    scheduler.start();
    assert.equal(woken.length, 1);
    const run = store.taskRuns.forTask(t.id, 10)[0];
    assert.equal(run?.lateMs, 3 * HOUR);
    assert.equal(store.tasks.get(t.id)?.nextRunAt, T0 + HOUR, 'the missed slots are skipped');
    const text = store.messages.after('local:main', 0, 10)[0]?.text ?? '';
    assert.match(text, /runs 3 h 0 min late/);
    // Due 06:00 (Berlin); 07:00, 08:00 and 09:00 passed while it was late: named, and the next run is 10:00.
    assert.match(
      text,
      /the 3 due times since then \(Mon, 23 Nov 2026, 07:00; Mon, 23 Nov 2026, 08:00; Mon, 23 Nov 2026, 09:00\) were skipped, not run\./,
    );
  });

  test('a run a quarter of a minute late says so; one slightly late does not; a once task names no skipped time', () => {
    const late = task({ nextRunAt: T0 - 20_000, scheduleType: 'once', scheduleValue: '2026-11-23T08:59' });
    const onTime = task({ nextRunAt: T0 - 5_000, prompt: 'on time' });
    scheduler.start();
    const texts = store.messages.after('local:main', 0, 10).map((m) => m.text);
    const lateText = texts.find((t) => t.includes(`task #${late.id}`)) ?? '';
    assert.match(lateText, /It runs 20 s late \(pincer was not running or busy\)\. Your final answer/);
    assert.doesNotMatch(texts.find((t) => t.includes(`task #${onTime.id}`)) ?? '', /late/);
  });

  test('after weeks down, a 1-minute task counts the skipped due times without walking them all', () => {
    const t = task({ scheduleValue: String(60_000), anchorAt: T0 - 30 * 24 * HOUR, nextRunAt: T0 - 30 * 24 * HOUR });
    scheduler.start();
    const text = store.messages.after('local:main', 0, 10).find((m) => m.text.includes(`task #${t.id}`))?.text ?? '';
    assert.match(text, /more than 10,000 due times since then \(the first: Sat, 24 Oct 2026, 10:01; .*\) were skipped, not run\./);
  });

  test('never twice for one due time, even if the same due time came round again', () => {
    const t = task();
    scheduler.start();
    // As if the next due time had not been stored (it always is, in the same transaction): the run is refused.
    store.tasks.update(t.id, { nextRunAt: T0 });
    scheduler.start();
    assert.equal(woken.length, 1);
    assert.equal(store.taskRuns.forTask(t.id, 10).length, 1);
    // A restart right after a run: nothing is due until the stored next time.
    const again = new Scheduler({
      store,
      log: createLogger('silent'),
      wakeGroup: () => assert.fail('ran twice'),
      startIsolated: () => {},
      now: () => now,
    });
    again.start();
    again.stop();
  });

  test('a once task completes after its run; an isolated task starts a fresh run', () => {
    const once = task({ scheduleType: 'once', scheduleValue: new Date(T0).toISOString() });
    const iso = task({ contextMode: 'isolated' });
    scheduler.start();
    assert.equal(store.tasks.get(once.id)?.status, 'completed');
    assert.equal(store.tasks.get(once.id)?.nextRunAt, null);
    assert.equal(isolated.length, 1);
    assert.equal(isolated[0]?.taskId, iso.id);
    assert.equal(isolated[0]?.messageSeq, null);
    assert.equal(woken.length, 1, 'only the group-context task went through the chat');
  });

  test('a due time while the previous isolated run still goes is skipped and logged, and the next one runs again', () => {
    const t = task({ contextMode: 'isolated' });
    scheduler.start();
    assert.equal(isolated.length, 1);
    const first = isolated[0] as TaskRun;
    now = T0 + HOUR;
    store.tasks.update(t.id, { nextRunAt: now });
    scheduler.start();
    assert.equal(isolated.length, 1, 'no second run of the task was handed over');
    const skipped = store.taskRuns.forTask(t.id, 10)[0];
    assert.equal(skipped?.status, 'skipped');
    assert.equal(skipped?.dueAt, T0 + HOUR);
    assert.equal(skipped?.error, `run #${first.id} of this task (due ${new Date(T0).toISOString()}) was still going`);
    assert.equal(store.tasks.get(t.id)?.nextRunAt, T0 + 2 * HOUR, 'the schedule moves on');
    store.taskRuns.finish(first.id, { status: 'ok', endedAt: now, durationMs: HOUR, result: 'done', error: null, costUsd: null });
    now = T0 + 2 * HOUR;
    scheduler.start();
    assert.equal(isolated.length, 2);
    assert.equal(isolated[1]?.dueAt, T0 + 2 * HOUR);
  });

  test('a group-context run goes until its message is answered; one the cursor passed unfinished holds nothing up', () => {
    const t = task();
    scheduler.start();
    const seq = woken[0]?.seq as number;
    now = T0 + HOUR;
    store.tasks.update(t.id, { nextRunAt: now });
    scheduler.start();
    assert.equal(woken.length, 1, 'its prompt is still unanswered: no second prompt');
    assert.equal(store.taskRuns.forTask(t.id, 10)[0]?.status, 'skipped');
    // A turn that left the message out (too many waited) moved the cursor past it without finishing its run.
    store.groups.advanceCursor('local:main', seq);
    now = T0 + 2 * HOUR;
    scheduler.start();
    assert.equal(woken.length, 2);
  });

  test('a task whose group was left is cancelled, not run', () => {
    store.chats.seen({ id: 'local:team', channel: 'local', isGroup: false }, T0);
    store.groups.register({ chatId: 'local:team', folder: 'team', trigger: '@Andy', respondToAll: true, isMain: false }, T0, 0);
    const t = task({ chatId: 'local:team' });
    store.groups.remove('local:team');
    scheduler.start();
    assert.equal(woken.length, 0);
    assert.equal(store.tasks.get(t.id)?.status, 'cancelled');
  });

  test('the one timer fires when the earliest task is due and is re-armed by changes', async () => {
    now = Date.now();
    const real = new Scheduler({
      store,
      log: createLogger('silent'),
      wakeGroup: (chatId, seq) => woken.push({ chatId, seq }),
      startIsolated: () => {},
    });
    real.start();
    const soon = Date.now() + 150;
    task({ anchorAt: soon - HOUR, nextRunAt: soon });
    real.rearm();
    await new Promise((r) => setTimeout(r, 400));
    real.stop();
    assert.equal(woken.length, 1);
  });
});

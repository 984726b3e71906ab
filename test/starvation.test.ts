// One group's scheduled tasks must not starve the others (issue 16, item 6). A hostile non-main group's agent
// schedules isolated tasks every minute, each of which runs a long `sleep` through Bash, with one agent slot
// (MAX_CONCURRENT_AGENTS=1): the real stack (real Claude Code in bubblewrap, the scripted model) must still
// answer the main chat within a bound, keep the queue bounded, never overlap two runs of one task, and
// refuse the group's task beyond PINCER_MAX_TASKS_PER_GROUP with a reason the agent reads.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { isAgentTurn, isRecord, isToolResult, lastUserText, type ModelRequest, offers } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();

const HOSTILE = 'local:hostile';
const MAX_TASKS = 3;
/** How long each hostile run keeps its slot (the issue saw 90 s; shorter keeps the test well under a minute). */
const RUN_SLEEP_SEC = 10;
/** One minute of the tasks' schedule passes in this much real time (see `tickMinute`). */
const MINUTE_EVERY_MS = 2000;
/** What the main chat may wait at most: one hostile run ahead of it, and its own turn, with room for a busy machine. */
const MAIN_REPLY_BOUND_MS = 30_000;

const SCHEDULE_TASK = 'mcp__pincer__schedule_task';

const conversation = (req: ModelRequest) => JSON.stringify(req.body.messages ?? []);
/** True when an assistant turn of the conversation already called the tool. */
const called = (req: ModelRequest, name: string) =>
  (req.body.messages ?? []).some(
    (m) =>
      m.role === 'assistant' && Array.isArray(m.content) && m.content.some((b) => isRecord(b) && b.type === 'tool_use' && b.name === name),
  );
/** A request of a hostile task's scheduled run (its prompt opens the conversation). */
const isHostileChore = (req: ModelRequest) => {
  const text = conversation(req);
  return text.includes('[Scheduled run of task') && text.includes('hostile chore');
};

describe('a hostile group with long scheduled runs every minute', { skip }, () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({
      env: { MAX_CONCURRENT_AGENTS: '1', PINCER_MAX_TASKS_PER_GROUP: String(MAX_TASKS) },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        if (isHostileChore(req)) {
          if (isToolResult(req)) return { text: 'chore done' };
          if (!offers(req, 'Bash')) return { text: 'no Bash offered' };
          return { toolUse: { name: 'Bash', input: { command: `sleep ${RUN_SLEEP_SEC}`, description: 'a long chore' } } };
        }
        if (conversation(req).includes('set up the chores')) {
          if (called(req, SCHEDULE_TASK)) return { text: `Tool said: ${lastUserText(req).slice(0, 3000)}` };
          if (!offers(req, SCHEDULE_TASK)) return { text: 'schedule_task not offered' };
          return {
            content: Array.from({ length: MAX_TASKS + 1 }, (_, i) => ({
              toolUse: {
                name: SCHEDULE_TASK,
                input: { prompt: `hostile chore ${i + 1}`, schedule_type: 'interval', schedule_value: '1m', context_mode: 'isolated' },
              },
            })),
          };
        }
        return { text: 'hello back' };
      },
    });
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: HOSTILE, folder: 'hostile', respondToAll: true });
  });
  after(async () => h?.stop());

  test(`its agent may schedule ${MAX_TASKS} tasks (PINCER_MAX_TASKS_PER_GROUP) and is told why the next is refused`, async () => {
    const reply = await h.reply(HOSTILE, await h.send(HOSTILE, 'set up the chores'));
    const tasks = h.pincer.store.tasks.list(HOSTILE);
    assert.equal(tasks.length, MAX_TASKS);
    assert.match(reply.text, new RegExp(`already has ${MAX_TASKS} scheduled tasks.*PINCER_MAX_TASKS_PER_GROUP`));
  });

  test('the main chat is answered within a bound, the queue stays bounded and no task runs twice at once', async () => {
    const { store, scheduler, dispatcher } = h.pincer;
    const tasks = store.tasks.list(HOSTILE);
    assert.ok(tasks.length > 0, 'the hostile group has tasks');
    // Fake time for the schedule: every tick, one minute has passed for each task (it is due again now).
    const tickMinute = () => {
      for (const t of tasks) store.tasks.update(t.id, { nextRunAt: Date.now() });
      scheduler.rearm();
    };
    let maxWaiting = 0;
    let maxRunningOfOneTask = 0;
    const sample = () => {
      maxWaiting = Math.max(maxWaiting, dispatcher.queue.waitingCount);
      const running = store.taskRuns.running('isolated');
      for (const t of tasks) maxRunningOfOneTask = Math.max(maxRunningOfOneTask, running.filter((r) => r.taskId === t.id).length);
    };
    const clock = setInterval(tickMinute, MINUTE_EVERY_MS);
    const sampler = setInterval(sample, 100);
    try {
      tickMinute();
      // A hostile run holds the only slot, sleeping, and a few more minutes of the schedule pass.
      await h.fake.nextRequest((r) => isHostileChore(r) && !isToolResult(r) && offers(r, 'Bash'));
      await sleep(3 * MINUTE_EVERY_MS);
      const sentAt = Date.now();
      const reply = await h.reply('local:main', await h.send('local:main', '@Andy hello'), MAIN_REPLY_BOUND_MS);
      const waitedMs = Date.now() - sentAt;
      assert.equal(reply.text, 'hello back');
      assert.ok(waitedMs < MAIN_REPLY_BOUND_MS, `the main chat waited ${waitedMs} ms`);
      process.stdout.write(`# the main chat was answered after ${waitedMs} ms\n`);
      // The schedule keeps firing for a while longer: the queue must not grow with it.
      await sleep(3 * MINUTE_EVERY_MS);
    } finally {
      clearInterval(clock);
      clearInterval(sampler);
    }
    sample();
    process.stdout.write(`# at most ${maxWaiting} lanes waited for a slot\n`);
    // Each task has at most one run waiting or running, plus the main group: nothing grows with time.
    assert.ok(maxWaiting <= tasks.length + 1, `up to ${maxWaiting} lanes waited for a slot`);
    assert.equal(maxRunningOfOneTask, 1, 'a task never has two runs going at once');
    const skipped = tasks.flatMap((t) => store.taskRuns.forTask(t.id, 100)).filter((r) => r.status === 'skipped');
    assert.ok(skipped.length > 0, 'due times that came while the previous run still went are logged as skipped');
    assert.match(skipped[0]?.error ?? '', /^run #\d+ of this task \(due .*\) was still going$/);
  });
});

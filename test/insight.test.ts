// Answers for the owner: a message's trace (why it was or was not answered), pincer's status, usage per
// group and day; over the API and as `pincer trace` / `pincer status`.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { pincer } from './helpers/cli.js';
import { isAgentTurn, lastUserText } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();
const DAY = 24 * 3600_000;

async function until(check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('trace, status and usage', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'local:family', folder: 'family', respondToAll: true });
    h.pincer.control.updateGroup({ kind: 'owner' }, 'family', { senderAllowlist: ['alice'] });
  });
  after(async () => h?.stop());

  test('"why didn\'t it reply?": the trace says the sender is not on the allowlist', async () => {
    const sent = await h.request('POST', '/api/v1/messages', { chat: 'local:family', text: 'hello?', sender: 'mallory' });
    const trace = await h.request('GET', `/api/v1/messages/${sent.body.id}/trace`);
    assert.equal(trace.status, 200);
    const stages = trace.body.stages as Array<{ stage: string; detail: string | null }>;
    assert.deepEqual(
      stages.map((s) => s.stage),
      ['received', 'ignored'],
    );
    assert.match(stages[1]?.detail ?? '', /mallory is not on the group's sender allowlist/);
    assert.equal((await h.request('GET', '/api/v1/messages/999999/trace')).status, 404);
    assert.equal((await h.request('GET', '/api/v1/messages/abc/trace')).status, 400);
    assert.equal((await h.request('GET', `/api/v1/messages/${sent.body.id}/trace`, undefined, null)).status, 401);
  });

  test('an answered message is traced through every stage, and `pincer trace` prints it', { skip }, async () => {
    // A chat of its own: the main group's sandbox may have been started ahead of its messages (prewarm).
    const id = await h.send('local:traced', 'hello there');
    await h.reply('local:traced', id);
    const trace = await h.request('GET', `/api/v1/messages/${id}/trace`);
    const stages = (trace.body.stages as Array<{ stage: string }>).map((s) => s.stage);
    for (const s of ['received', 'engaged', 'queued', 'prompted', 'spawned', 'model_request', 'replied', 'delivered']) {
      assert.ok(stages.includes(s), `trace has ${s}: ${stages.join(',')}`);
    }
    const cli = await pincer({ port: h.pincer.local.port, home: h.home }, 'trace', id);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, new RegExp(`message ${id} in local:traced`));
    assert.match(cli.stdout, /delivered/);
  });

  test("messages answered together in one turn each show that turn's reply and delivery in their own trace", { skip }, async () => {
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    h.fake.setScript((req) =>
      isAgentTurn(req) && lastUserText(req).includes('first, slow')
        ? gate.then(() => ({ text: 'slow answer' }))
        : { text: 'batched answer' },
    );
    try {
      const first = await h.send('local:batch', 'first, slow');
      await h.fake.nextRequest((r) => isAgentTurn(r) && lastUserText(r).includes('first, slow'));
      // Both arrive while the first turn runs: the next turn carries them together.
      const second = await h.send('local:batch', 'second');
      const third = await h.send('local:batch', 'third');
      release();
      // The slow answer comes first (after the others were sent), then the turn of the two.
      let reply = await h.reply('local:batch', third);
      if (reply.text === 'slow answer') reply = await h.reply('local:batch', reply.id);
      assert.equal(reply.text, 'batched answer');
      await until(async () => {
        const stages = (await h.request('GET', `/api/v1/messages/${third}/trace`)).body.stages as Array<{ stage: string }>;
        return stages.some((x) => x.stage === 'delivered');
      });
      const trace = await h.request('GET', `/api/v1/messages/${second}/trace`);
      const stages = trace.body.stages as Array<{ stage: string; detail: string | null }>;
      const names = stages.map((x) => x.stage);
      for (const x of ['received', 'prompted', 'model_request', 'replied', 'delivered'])
        assert.ok(names.includes(x), `the earlier message's trace has ${x}: ${names.join(',')}`);
      assert.match(stages.find((x) => x.stage === 'replied')?.detail ?? '', new RegExp(`^with message ${third}: reply of 14 chars`));
      assert.ok(names.indexOf('prompted') < names.indexOf('replied'), 'in order');
      const own = (await h.request('GET', `/api/v1/messages/${first}/trace`)).body.stages as Array<{
        stage: string;
        detail: string | null;
      }>;
      assert.ok(!own.some((x) => x.detail?.startsWith('with message')), 'a message answered alone shows only its own turn');
    } finally {
      h.fake.setScript(() => ({ text: 'ok' }));
    }
  });

  test('usage is summed per group and day in pincer’s time zone; status shows channels, groups, queue, next tasks, today', async () => {
    const now = Date.now();
    const turn = (chatId: string, endedAt: number, costUsd: number) => {
      // The turn's one model call, as the proxy metered it; the turn itself carries no money for usage.
      h.pincer.store.modelUsage.record({
        chatId,
        provider: 'anthropic',
        model: 'claude-haiku-4-5',
        inputTokens: 100,
        outputTokens: 10,
        cacheWriteTokens: 0,
        cacheReadTokens: 0,
        webSearches: 0,
        costUsd,
        budgetUsd: costUsd,
        at: endedAt,
      });
      h.pincer.store.turns.record({
        chatId,
        firstSeq: 0,
        lastSeq: 0,
        sessionId: null,
        status: 'success',
        error: null,
        startedAt: endedAt - 1000,
        endedAt,
        durationMs: 1000,
        costUsd,
        inputTokens: 100,
        outputTokens: 10,
      });
    };
    turn('local:family', now, 0.25);
    turn('local:family', now, 0.5);
    turn('local:family', now - 2 * DAY, 1);
    const usage = (await h.request('GET', '/api/v1/usage?days=7')).body.usage as Array<{
      date: string;
      group: string;
      turns: number;
      costUsd: number;
      inputTokens: number;
    }>;
    const today = new Intl.DateTimeFormat('en-CA', { timeZone: 'Europe/Berlin' }).format(now);
    const family = usage.filter((u) => u.group === 'family');
    assert.equal(family.length, 2);
    assert.deepEqual(
      { date: family[0]?.date, turns: family[0]?.turns, costUsd: family[0]?.costUsd, inputTokens: family[0]?.inputTokens },
      { date: today, turns: 2, costUsd: 0.75, inputTokens: 200 },
    );
    h.pincer.control.scheduleTask(
      { kind: 'owner' },
      { prompt: 'weekly', scheduleType: 'cron', scheduleValue: '0 9 * * 1', contextMode: 'group', targetGroup: 'family' },
    );
    const status = (await h.request('GET', '/api/v1/status')).body as {
      channels: Array<{ name: string; state: string }>;
      groups: Array<{ folder: string }>;
      queue: { active: number; waiting: number };
      nextTasks: Array<{ group: string }>;
      today: { costUsd: number; turns: number };
    };
    assert.deepEqual(status.channels[0], { name: 'local', state: 'connected' });
    assert.ok(status.groups.some((g) => g.folder === 'family'));
    assert.equal(typeof status.queue.waiting, 'number');
    assert.equal(status.nextTasks[0]?.group, 'family');
    assert.ok(status.today.costUsd >= 0.75);
    const cli = await pincer({ port: h.pincer.local.port, home: h.home }, 'status');
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /channels: local \(connected\)/);
    assert.match(cli.stdout, /next tasks: #\d+ family at/);
  });
});

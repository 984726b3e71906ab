// Spend budgets: per group and overall, per calendar day and month in pincer's time zone. A reached budget
// starts no agent, tells the chat once, keeps the messages, and a raised budget gets them answered.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startOfDay, startOfMonth } from '../src/service/budgets.js';
import { pincer } from './helpers/cli.js';
import { isAgentTurn, lastUserText } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();
const iso = (t: number) => new Date(t).toISOString();

describe('calendar periods in a time zone', () => {
  test('a day and a month begin at local midnight, across daylight saving changes', () => {
    const berlin = 'Europe/Berlin';
    assert.equal(iso(startOfDay(Date.parse('2026-11-25T10:00:00Z'), berlin)), '2026-11-24T23:00:00.000Z');
    // Spring forward (29 March 2026, 02:00 → 03:00): the day began in winter time.
    assert.equal(iso(startOfDay(Date.parse('2026-03-29T20:00:00Z'), berlin)), '2026-03-28T23:00:00.000Z');
    // Fall back (25 October 2026, 03:00 → 02:00): the day began in summer time.
    assert.equal(iso(startOfDay(Date.parse('2026-10-25T20:00:00Z'), berlin)), '2026-10-24T22:00:00.000Z');
    // Just after local midnight it is already the new day.
    assert.equal(iso(startOfDay(Date.parse('2026-11-24T23:00:01Z'), berlin)), '2026-11-24T23:00:00.000Z');
    // November began in winter time, though October's end was summer time.
    assert.equal(iso(startOfMonth(Date.parse('2026-11-25T10:00:00Z'), berlin)), '2026-10-31T23:00:00.000Z');
    assert.equal(iso(startOfMonth(Date.parse('2026-04-15T10:00:00Z'), berlin)), '2026-03-31T22:00:00.000Z');
    assert.equal(iso(startOfDay(Date.parse('2026-11-25T03:00:00Z'), 'America/Los_Angeles')), '2026-11-24T08:00:00.000Z');
    assert.equal(iso(startOfMonth(Date.parse('2026-12-01T05:00:00Z'), 'Asia/Kolkata')), '2026-11-30T18:30:00.000Z');
  });
});

describe('spend budgets', { skip }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      script: (req) => (isAgentTurn(req) ? { text: `answered: ${lastUserText(req).replace(/\s+/g, ' ')}` } : { text: 'side' }),
    });
  });
  after(async () => h?.stop());

  const spendToday = (chatId: string, costUsd: number) => {
    const now = Date.now();
    h.pincer.store.turns.record({
      chatId,
      firstSeq: 0,
      lastSeq: 0,
      sessionId: null,
      status: 'success',
      error: null,
      startedAt: now - 1000,
      endedAt: now,
      durationMs: 1000,
      costUsd,
      inputTokens: 100,
      outputTokens: 50,
    });
  };
  const replies = async (chat: string) => (await h.messages(chat)).filter((m) => m.fromAssistant);
  const agentTurns = () => h.fake.requests.filter(isAgentTurn).length;

  test('a group over its daily budget gets no agent, is told once, and is answered when the budget is raised', async () => {
    spendToday('local:main', 3);
    const set = await h.request('PUT', '/api/v1/budgets', { group: 'main', dailyUsd: 2 });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const main = (set.body.groups as Array<{ folder: string; dailyUsd: number; spentTodayUsd: number }>).find((g) => g.folder === 'main');
    assert.equal(main?.dailyUsd, 2);
    assert.equal(main?.spentTodayUsd, 3);

    const turnsBefore = agentTurns();
    const first = await h.send('local:main', 'first question');
    const notice = await h.reply('local:main', first, 10_000);
    assert.match(notice.text, /^⚠️ This group's daily budget is reached: \$3\.00 of \$2\.00, so I am not starting until tomorrow/);
    assert.match(notice.text, /main group raises it/);
    const second = await h.send('local:main', 'second question');
    await h.send('local:main', 'third question');
    await new Promise((r) => setTimeout(r, 500));
    assert.equal((await replies('local:main')).length, 1, 'told once, not for every message');
    assert.equal(agentTurns(), turnsBefore, 'no agent started');
    const trace = await h.request('GET', `/api/v1/messages/${second}/trace`);
    const stages = trace.body.stages as Array<{ stage: string; detail: string | null }>;
    const refused = stages.find((s) => s.stage === 'over_budget');
    assert.match(refused?.detail ?? '', /daily budget is reached: \$3\.00 of \$2\.00/);
    assert.equal(
      stages.some((s) => s.stage === 'prompted'),
      false,
      'never given to an agent (the main group may have one started ahead: it is refused before its turn)',
    );

    // The main group (here the owner, through the API) raises it: the waiting messages are answered, in one turn.
    const raised = await h.request('PUT', '/api/v1/budgets', { group: 'main', dailyUsd: 10 });
    assert.equal(raised.status, 200);
    // At once, not when some lane happens to close: the main group's agent may be live (started ahead) and idle.
    const answer = await h.reply('local:main', notice.id, 15_000);
    assert.match(answer.text, /answered: .*first question.*second question.*third question/);
  });

  test('the overall monthly budget holds for every group; `pincer budget` shows the spend', async () => {
    await h.request('PUT', '/api/v1/budgets', { group: 'main', dailyUsd: null });
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'local:family', folder: 'family', respondToAll: true });
    spendToday('local:family', 4);
    const set = await h.request('PUT', '/api/v1/budgets', { monthlyUsd: 5 });
    assert.equal(set.status, 200);
    const id = await h.send('local:family', 'hello family');
    const notice = await h.reply('local:family', id, 10_000);
    assert.match(notice.text, /^⚠️ The overall monthly budget is reached: \$\d+\.\d\d of \$5\.00, so I am not starting until next month/);

    const cli = await pincer({ port: h.pincer.local.port, home: h.home }, 'budget');
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /overall\s+\$\d+\.\d{4}\s+no limit\s+\$\d+\.\d{4}\s+\$5\.00/);
    assert.match(cli.stdout, /family\s+\$4\.0000/);
    const cleared = await pincer({ port: h.pincer.local.port, home: h.home }, 'budget', 'set', '--monthly', 'none');
    assert.equal(cleared.code, 0, cleared.stderr);
    const answer = await h.reply('local:family', notice.id, 60_000);
    assert.match(answer.text, /answered: .*hello family/);
  });

  test('bad budgets are refused with the reason, and change nothing', async () => {
    for (const [body, error] of [
      [{ dailyUsd: -1 }, /dailyUsd: must be above 0/],
      [{ dailyUsd: 'ten' }, /dailyUsd/],
      [{}, /say what to change/],
      [{ group: 'nobody', dailyUsd: 1 }, /nobody/],
      [{ dailyUsd: 1, extra: true }, /extra/],
    ] as const) {
      const res = await h.request('PUT', '/api/v1/budgets', body);
      assert.ok(res.status === 400 || res.status === 404, `${JSON.stringify(body)}: ${res.status}`);
      assert.match(String(res.body.error), error);
    }
    const cli = await pincer({ port: h.pincer.local.port, home: h.home }, 'budget', 'set', '--daily', 'lots');
    assert.notEqual(cli.code, 0);
    assert.match(cli.stderr, /an amount in USD above 0/);
  });
});

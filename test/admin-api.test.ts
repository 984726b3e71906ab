// The owner's administration API: every route's answer, its refusals, and what each leaves in the store.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from './helpers/harness.js';

type Case = { name: string; method: string; path: string; body?: unknown; status: number; error?: RegExp };

const FAR_CRON = '0 9 * * 1-5';

describe('admin API', () => {
  let h: Harness;
  // No credentials: the API runs no agent, and no task here comes due during the test.
  before(async () => {
    h = await startHarness({ env: { ANTHROPIC_API_KEY: '' } });
    h.pincer.store.chats.seen({ id: 'telegram:-100', channel: 'telegram', name: 'Family Chat', isGroup: true }, Date.now());
    h.pincer.store.chats.seen({ id: 'telegram:-200', channel: 'telegram', name: 'Book Club', isGroup: true }, Date.now());
  });
  after(async () => h?.stop());

  const expectAll = async (cases: Case[]) => {
    for (const c of cases) {
      const res = await h.request(c.method, c.path, c.body);
      assert.equal(res.status, c.status, `${c.name}: ${JSON.stringify(res.body)}`);
      if (c.error) assert.match(String(res.body.error), c.error, c.name);
    }
  };

  const taskCount = () => (h.pincer.store.db.prepare('SELECT COUNT(*) AS n FROM tasks').get() as { n: number }).n;
  const groupCount = () => h.pincer.store.groups.list().length;

  test('every route refuses a missing or wrong token with 401 and changes nothing', async () => {
    const routes: Array<[string, string, unknown?]> = [
      ['GET', '/api/v1/groups'],
      ['POST', '/api/v1/groups', { chatId: 'telegram:-100' }],
      ['PATCH', '/api/v1/groups/main', { trigger: '@X' }],
      ['DELETE', '/api/v1/groups/main'],
      ['GET', '/api/v1/chats'],
      ['GET', '/api/v1/tasks'],
      ['POST', '/api/v1/tasks', { group: 'main', prompt: 'hi', scheduleType: 'cron', scheduleValue: FAR_CRON }],
      ['PATCH', '/api/v1/tasks/1', { prompt: 'x' }],
      ['POST', '/api/v1/tasks/1/pause'],
      ['POST', '/api/v1/tasks/1/resume'],
      ['POST', '/api/v1/tasks/1/cancel'],
      ['GET', '/api/v1/tasks/1/runs'],
    ];
    const groupsBefore = groupCount();
    for (const [method, path, body] of routes) {
      for (const token of [null, 'wrong-token-0123456789']) {
        const res = await h.request(method, path, body, token);
        assert.equal(res.status, 401, `${method} ${path} with ${token ?? 'no token'}`);
        assert.match(String(res.body.error), /bearer token/);
      }
    }
    assert.equal(groupCount(), groupsBefore);
    assert.equal(taskCount(), 0);
  });

  test('groups: list, join, change, leave', async () => {
    const listed = await h.request('GET', '/api/v1/groups');
    assert.equal(listed.status, 200);
    const main = (listed.body.groups as Array<Record<string, unknown>>).find((g) => g.folder === 'main');
    assert.equal(main?.isMain, true);
    assert.equal(main?.timezone, 'Europe/Berlin');

    const unjoined = await h.request('GET', '/api/v1/chats');
    assert.deepEqual(
      (unjoined.body.chats as Array<{ id: string }>).map((c) => c.id).sort(),
      ['telegram:-100', 'telegram:-200'],
      'seen chats, none joined yet',
    );

    const joined = await h.request('POST', '/api/v1/groups', { chatId: 'telegram:-100', trigger: '@Bot', senderAllowlist: ['u1', 'u2'] });
    assert.equal(joined.status, 201, JSON.stringify(joined.body));
    const group = joined.body.group as Record<string, unknown>;
    assert.equal(group.folder, 'family-chat', 'the folder comes from the chat name');
    assert.equal(group.channel, 'telegram');
    assert.equal(group.live, false);
    const stored = h.pincer.store.groups.get('telegram:-100');
    assert.equal(stored?.folder, 'family-chat');
    assert.equal(stored?.trigger, '@Bot');
    assert.equal(stored?.respondToAll, false);
    assert.deepEqual(stored?.senderAllowlist, ['u1', 'u2']);

    const local = await h.request('POST', '/api/v1/groups', { chatId: 'local:work', folder: 'work', respondToAll: true });
    assert.equal(local.status, 201, 'a local chat may be joined before it has been seen');
    assert.equal(h.pincer.store.groups.byFolder('work')?.respondToAll, true);

    const stillUnjoined = await h.request('GET', '/api/v1/chats');
    assert.deepEqual(
      (stillUnjoined.body.chats as Array<{ id: string }>).map((c) => c.id),
      ['telegram:-200'],
    );
    const all = await h.request('GET', '/api/v1/chats?all=1');
    assert.ok(
      (all.body.chats as Array<{ id: string }>).some((c) => c.id === 'telegram:-100'),
      'all=1 includes joined chats',
    );

    const changed = await h.request('PATCH', '/api/v1/groups/family-chat', {
      respondToAll: true,
      senderAllowlist: null,
      timezone: 'America/New_York',
    });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.equal((changed.body.group as Record<string, unknown>).timezone, 'America/New_York');
    const after1 = h.pincer.store.groups.get('telegram:-100');
    assert.equal(after1?.respondToAll, true);
    assert.equal(after1?.senderAllowlist, null);
    assert.equal(after1?.timezone, 'America/New_York');
    assert.equal(after1?.trigger, '@Bot', 'what was not given stays');

    const back = await h.request('PATCH', '/api/v1/groups/family-chat', { timezone: null, trigger: '@Andy' });
    assert.equal((back.body.group as Record<string, unknown>).timezone, 'Europe/Berlin', "null: pincer's time zone again");
    assert.equal(h.pincer.store.groups.get('telegram:-100')?.timezone, null);
    assert.equal(h.pincer.store.groups.get('telegram:-100')?.trigger, '@Andy');

    const task = await h.request('POST', '/api/v1/tasks', {
      group: 'family-chat',
      prompt: 'hello',
      scheduleType: 'cron',
      scheduleValue: FAR_CRON,
    });
    assert.equal(task.status, 201);
    const removed = await h.request('DELETE', '/api/v1/groups/family-chat');
    assert.equal(removed.status, 200);
    assert.deepEqual(removed.body, { ok: true });
    assert.equal(h.pincer.store.groups.get('telegram:-100'), undefined);
    assert.equal(h.pincer.store.tasks.get((task.body.task as { id: number }).id)?.status, 'cancelled', "the group's tasks are cancelled");
    assert.ok(h.pincer.store.chats.get('telegram:-100'), 'the chat stays known');
  });

  test('groups: refusals name the field or the problem, and change nothing', async () => {
    const before = JSON.stringify(h.pincer.store.groups.list());
    await expectAll([
      { name: 'no body', method: 'POST', path: '/api/v1/groups', status: 400, error: /^body: must be a JSON object/ },
      { name: 'missing chatId', method: 'POST', path: '/api/v1/groups', body: {}, status: 400, error: /^chatId: / },
      {
        name: 'malformed chatId',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'nocolon' },
        status: 400,
        error: /^chatId: must be a chat id/,
      },
      {
        name: 'unknown field',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'telegram:-200', admin: true },
        status: 400,
        error: /admin/,
      },
      {
        name: 'wrong type',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'telegram:-200', respondToAll: 'yes' },
        status: 400,
        error: /^respondToAll: /,
      },
      {
        name: 'senders not a list',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'telegram:-200', senderAllowlist: 'u1' },
        status: 400,
        error: /^senderAllowlist: /,
      },
      {
        name: 'unseen chat',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'telegram:-999' },
        status: 404,
        error: /has not seen/,
      },
      {
        name: 'already joined',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'local:main' },
        status: 409,
        error: /already joined/,
      },
      {
        name: 'folder taken',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'telegram:-200', folder: 'work' },
        status: 409,
        error: /taken/,
      },
      {
        name: 'bad folder',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'telegram:-200', folder: '../x' },
        status: 400,
        error: /must match/,
      },
      {
        name: 'reserved folder',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'telegram:-200', folder: 'global' },
        status: 400,
        error: /reserved/,
      },
      {
        name: 'bad trigger',
        method: 'POST',
        path: '/api/v1/groups',
        body: { chatId: 'telegram:-200', trigger: 'two words' },
        status: 400,
        error: /trigger/,
      },
      {
        name: 'change unknown group',
        method: 'PATCH',
        path: '/api/v1/groups/nope',
        body: { trigger: '@X' },
        status: 404,
        error: /no group has the folder "nope"/,
      },
      { name: 'change nothing', method: 'PATCH', path: '/api/v1/groups/work', body: {}, status: 400, error: /say what to change/ },
      {
        name: 'change bad type',
        method: 'PATCH',
        path: '/api/v1/groups/work',
        body: { respondToAll: 1 },
        status: 400,
        error: /^respondToAll: /,
      },
      {
        name: 'change bad zone',
        method: 'PATCH',
        path: '/api/v1/groups/work',
        body: { timezone: 'Mars/Olympus' },
        status: 400,
        error: /^timezone: .*IANA/,
      },
      {
        name: 'change unknown field',
        method: 'PATCH',
        path: '/api/v1/groups/work',
        body: { egressPolicy: 'none' },
        status: 400,
        error: /egressPolicy/,
      },
      { name: 'remove main', method: 'DELETE', path: '/api/v1/groups/main', status: 403, error: /main group cannot be removed/ },
      { name: 'remove unknown', method: 'DELETE', path: '/api/v1/groups/nope', status: 404, error: /nope/ },
      { name: 'chats bad flag', method: 'GET', path: '/api/v1/chats?all=maybe', status: 400, error: /^all: / },
    ]);
    assert.equal(JSON.stringify(h.pincer.store.groups.list()), before);
  });

  test('tasks: schedule, list, change, pause, resume, cancel, runs', async () => {
    const cron = await h.request('POST', '/api/v1/tasks', {
      group: 'work',
      prompt: '  standup notes  ',
      scheduleType: 'cron',
      scheduleValue: FAR_CRON,
    });
    assert.equal(cron.status, 201, JSON.stringify(cron.body));
    const cronTask = cron.body.task as Record<string, unknown>;
    assert.equal(cronTask.schedule, 'every weekday at 09:00 (Europe/Berlin)');
    assert.equal(cronTask.group, 'work');
    assert.equal(cronTask.contextMode, 'group', 'group context by default');
    const id = cronTask.id as number;
    const stored = h.pincer.store.tasks.get(id);
    assert.equal(stored?.prompt, 'standup notes');
    assert.equal(stored?.status, 'active');
    assert.equal(stored?.createdBy, 'owner');
    assert.equal(stored?.chatId, 'local:work');
    assert.ok(stored?.nextRunAt && stored.nextRunAt > Date.now());
    assert.equal(cronTask.nextRunAt, new Date(stored?.nextRunAt ?? 0).toISOString());

    const every = await h.request('POST', '/api/v1/tasks', {
      group: 'main',
      prompt: 'check the feed',
      scheduleType: 'interval',
      scheduleValue: '2h',
      contextMode: 'isolated',
    });
    assert.equal(every.status, 201, JSON.stringify(every.body));
    assert.equal((every.body.task as Record<string, unknown>).schedule, 'every 2 hours');
    const everyId = (every.body.task as { id: number }).id;
    assert.equal(h.pincer.store.tasks.get(everyId)?.contextMode, 'isolated');

    const once = await h.request('POST', '/api/v1/tasks', {
      group: 'work',
      prompt: 'happy new year',
      scheduleType: 'once',
      scheduleValue: '2099-01-01T00:00',
      timezone: 'UTC',
    });
    assert.equal(once.status, 201, JSON.stringify(once.body));
    const onceTask = once.body.task as Record<string, unknown>;
    assert.equal(onceTask.nextRunAt, '2099-01-01T00:00:00.000Z');
    assert.equal(onceTask.timezone, 'UTC');

    const all = await h.request('GET', '/api/v1/tasks');
    assert.deepEqual(
      (all.body.tasks as Array<{ id: number }>).map((t) => t.id),
      [id, everyId, onceTask.id],
    );
    const work = await h.request('GET', '/api/v1/tasks?group=work');
    assert.deepEqual(
      (work.body.tasks as Array<{ group: string }>).map((t) => t.group),
      ['work', 'work'],
    );

    const changed = await h.request('PATCH', `/api/v1/tasks/${id}`, { prompt: 'standup, briefly', scheduleValue: '30 8 * * *' });
    assert.equal(changed.status, 200, JSON.stringify(changed.body));
    assert.equal((changed.body.task as Record<string, unknown>).schedule, 'every day at 08:30 (Europe/Berlin)');
    assert.equal(h.pincer.store.tasks.get(id)?.prompt, 'standup, briefly');
    assert.equal(h.pincer.store.tasks.get(id)?.scheduleValue, '30 8 * * *');

    const paused = await h.request('POST', `/api/v1/tasks/${id}/pause`);
    assert.equal(paused.status, 200);
    assert.equal((paused.body.task as Record<string, unknown>).status, 'paused');
    assert.equal(h.pincer.store.tasks.get(id)?.status, 'paused');
    assert.equal(h.pincer.store.tasks.get(id)?.nextRunAt, null);

    const resumed = await h.request('POST', `/api/v1/tasks/${id}/resume`);
    assert.equal(resumed.status, 200);
    assert.equal(h.pincer.store.tasks.get(id)?.status, 'active');
    assert.ok((h.pincer.store.tasks.get(id)?.nextRunAt ?? 0) > Date.now());

    const cancelled = await h.request('POST', `/api/v1/tasks/${everyId}/cancel`);
    assert.equal(cancelled.status, 200);
    assert.equal((cancelled.body.task as Record<string, unknown>).status, 'cancelled');
    assert.equal(h.pincer.store.tasks.get(everyId)?.status, 'cancelled');
    const listed = await h.request('GET', '/api/v1/tasks');
    assert.ok(!(listed.body.tasks as Array<{ id: number }>).some((t) => t.id === everyId), 'cancelled tasks are not listed');

    const none = await h.request('GET', `/api/v1/tasks/${id}/runs`);
    assert.deepEqual(none.body, { runs: [] });
    const dueAt = Date.UTC(2030, 0, 1, 8, 0);
    const run = h.pincer.store.taskRuns.start({
      taskId: id,
      chatId: 'local:work',
      dueAt,
      startedAt: dueAt + 1500,
      contextMode: 'group',
      messageSeq: null,
    });
    assert.ok(run);
    h.pincer.store.taskRuns.finish(run.id, {
      status: 'ok',
      endedAt: dueAt + 4000,
      durationMs: 2500,
      result: 'done',
      error: null,
      costUsd: 0.01,
    });
    h.pincer.store.taskRuns.start({
      taskId: id,
      chatId: 'local:work',
      dueAt: dueAt + 60_000,
      startedAt: dueAt + 60_000,
      contextMode: 'group',
      messageSeq: null,
    });
    const runs = await h.request('GET', `/api/v1/tasks/${id}/runs?limit=1`);
    assert.equal(runs.status, 200);
    const [latest] = runs.body.runs as Array<Record<string, unknown>>;
    assert.equal((runs.body.runs as unknown[]).length, 1, 'limit is honoured');
    assert.equal(latest?.status, 'running', 'newest first');
    const both = await h.request('GET', `/api/v1/tasks/${id}/runs`);
    const first = (both.body.runs as Array<Record<string, unknown>>)[1];
    assert.equal(first?.dueAt, dueAt, 'the millisecond fields stay numbers');
    assert.equal(first?.dueAtIso, '2030-01-01T08:00:00.000Z');
    assert.equal(first?.startedAtIso, '2030-01-01T08:00:01.500Z');
    assert.equal(first?.endedAtIso, '2030-01-01T08:00:04.000Z');
    assert.equal(first?.lateMs, 1500);
    assert.equal(first?.result, 'done');
    const taskAfterRuns = (await h.request('GET', '/api/v1/tasks?group=work')).body.tasks as Array<{ id: number; lastRun: unknown }>;
    assert.deepEqual(taskAfterRuns.find((t) => t.id === id)?.lastRun, {
      dueAt: '2030-01-01T08:01:00.000Z',
      status: 'running',
      state: 'running',
      result: null,
      error: null,
      costUsd: null,
      endedAt: null,
    });
  });

  test('tasks: refusals name the field or the problem, and change nothing', async () => {
    const active = h.pincer.store.tasks.list().find((t) => t.status === 'active' && t.chatId === 'local:work');
    assert.ok(active);
    const paused = await h.request('POST', `/api/v1/tasks/${active.id}/pause`);
    assert.equal(paused.status, 200);
    const cancelled = h.pincer.store.db.prepare(`SELECT id FROM tasks WHERE status = 'cancelled' LIMIT 1`).get() as { id: number };
    const task = (over: Record<string, unknown>) => ({
      group: 'work',
      prompt: 'p',
      scheduleType: 'cron',
      scheduleValue: FAR_CRON,
      ...over,
    });
    const before = taskCount();
    const snapshot = JSON.stringify(h.pincer.store.tasks.list());
    await expectAll([
      { name: 'no body', method: 'POST', path: '/api/v1/tasks', status: 400, error: /^body: must be a JSON object/ },
      {
        name: 'missing group',
        method: 'POST',
        path: '/api/v1/tasks',
        body: { ...task({}), group: undefined },
        status: 400,
        error: /^group: /,
      },
      { name: 'empty prompt', method: 'POST', path: '/api/v1/tasks', body: task({ prompt: '' }), status: 400, error: /^prompt: / },
      { name: 'blank prompt', method: 'POST', path: '/api/v1/tasks', body: task({ prompt: '   ' }), status: 400, error: /prompt is empty/ },
      {
        name: 'bad type',
        method: 'POST',
        path: '/api/v1/tasks',
        body: task({ scheduleType: 'weekly' }),
        status: 400,
        error: /^scheduleType: /,
      },
      {
        name: 'bad context',
        method: 'POST',
        path: '/api/v1/tasks',
        body: task({ contextMode: 'shared' }),
        status: 400,
        error: /^contextMode: /,
      },
      { name: 'unknown field', method: 'POST', path: '/api/v1/tasks', body: task({ status: 'active' }), status: 400, error: /status/ },
      {
        name: 'unknown group',
        method: 'POST',
        path: '/api/v1/tasks',
        body: task({ group: 'nope' }),
        status: 404,
        error: /no group has the folder "nope"/,
      },
      {
        name: 'invalid cron',
        method: 'POST',
        path: '/api/v1/tasks',
        body: task({ scheduleValue: '61 * * * *' }),
        status: 400,
        error: /invalid cron "61 \* \* \* \*": .*minute.*61/i,
      },
      {
        name: 'cron with seconds',
        method: 'POST',
        path: '/api/v1/tasks',
        body: task({ scheduleValue: '0 0 9 * * *' }),
        status: 400,
        error: /6 fields/,
      },
      {
        name: 'short interval',
        method: 'POST',
        path: '/api/v1/tasks',
        body: task({ scheduleType: 'interval', scheduleValue: '10s' }),
        status: 400,
        error: /too short/,
      },
      {
        name: 'past once',
        method: 'POST',
        path: '/api/v1/tasks',
        body: task({ scheduleType: 'once', scheduleValue: '2001-01-01T00:00' }),
        status: 400,
        error: /in the past/,
      },
      {
        name: 'bad zone',
        method: 'POST',
        path: '/api/v1/tasks',
        body: task({ timezone: 'Mars/Olympus' }),
        status: 400,
        error: /^timezone: /,
      },
      { name: 'list unknown group', method: 'GET', path: '/api/v1/tasks?group=nope', status: 404, error: /nope/ },
      { name: 'pause twice', method: 'POST', path: `/api/v1/tasks/${active.id}/pause`, status: 409, error: /is paused, not active/ },
      {
        name: 'resume cancelled',
        method: 'POST',
        path: `/api/v1/tasks/${cancelled.id}/resume`,
        status: 409,
        error: /cancelled, not paused/,
      },
      { name: 'cancel twice', method: 'POST', path: `/api/v1/tasks/${cancelled.id}/cancel`, status: 409, error: /already cancelled/ },
      {
        name: 'change cancelled',
        method: 'PATCH',
        path: `/api/v1/tasks/${cancelled.id}`,
        body: { prompt: 'x' },
        status: 409,
        error: /cancelled/,
      },
      { name: 'change nothing', method: 'PATCH', path: `/api/v1/tasks/${active.id}`, body: {}, status: 400, error: /say what to change/ },
      {
        name: 'change bad cron',
        method: 'PATCH',
        path: `/api/v1/tasks/${active.id}`,
        body: { scheduleValue: 'every day' },
        status: 400,
        error: /invalid cron/,
      },
      { name: 'non-numeric id', method: 'POST', path: '/api/v1/tasks/abc/pause', status: 400, error: /^id: must be a positive integer/ },
      { name: 'zero id', method: 'POST', path: '/api/v1/tasks/0/resume', status: 400, error: /^id: must be a positive integer/ },
      { name: 'negative id', method: 'PATCH', path: '/api/v1/tasks/-3', body: { prompt: 'x' }, status: 400, error: /^id: / },
      { name: 'fractional id', method: 'GET', path: '/api/v1/tasks/1.5/runs', status: 400, error: /^id: / },
      { name: 'unknown id', method: 'POST', path: '/api/v1/tasks/99999/cancel', status: 404, error: /there is no task 99999/ },
      { name: 'runs of unknown id', method: 'GET', path: '/api/v1/tasks/99999/runs', status: 404, error: /no task/ },
      { name: 'runs limit 0', method: 'GET', path: `/api/v1/tasks/${active.id}/runs?limit=0`, status: 400, error: /^limit: / },
      {
        name: 'runs limit too big',
        method: 'GET',
        path: `/api/v1/tasks/${active.id}/runs?limit=501`,
        status: 400,
        error: /^limit: must be at most 500/,
      },
    ]);
    assert.equal(taskCount(), before);
    assert.equal(JSON.stringify(h.pincer.store.tasks.list()), snapshot);
  });
});

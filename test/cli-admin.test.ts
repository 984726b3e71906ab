// `pincer groups` and `pincer tasks` as the owner runs them: the real CLI in a child process against a running pincer.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { type Outcome, pincer } from './helpers/cli.js';
import { type Harness, startHarness } from './helpers/harness.js';

/** A port nothing listens on: taken from the system, then let go. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

const ok = (o: Outcome, what: string) => assert.equal(o.code, 0, `${what}: exit ${o.code}, stderr: ${o.stderr}`);

describe('pincer groups / pincer tasks', () => {
  let h: Harness;
  let at: { port: number; home: string };
  before(async () => {
    h = await startHarness({ env: { ANTHROPIC_API_KEY: '' } });
    at = { port: h.pincer.local.port, home: h.home };
    h.pincer.store.chats.seen({ id: 'telegram:-100', channel: 'telegram', name: 'Family', isGroup: true }, Date.now());
  });
  after(async () => h?.stop());

  test('groups list as a table and as JSON; pincer not running is one line and exit 1', async () => {
    const [table, json, down] = await Promise.all([
      pincer(at, 'groups', 'list'),
      pincer(at, 'groups', 'list', '--json'),
      closedPort().then((port) => pincer({ port, home: h.home }, 'groups', 'list')),
    ]);
    ok(table, 'groups list');
    const [header, ...rows] = table.stdout.trimEnd().split('\n');
    assert.match(header ?? '', /^FOLDER\s+CHAT\s+CHANNEL\s+TRIGGER\s+ENGAGED BY\s+TIME ZONE\s+EGRESS\s+MODEL\s+LIVE$/);
    assert.match(rows[0] ?? '', /^main \(main\)\s+local:main\s.*\s+local\s+@Andy\s+everyone\s+Europe\/Berlin\s.*\sno$/);

    ok(json, 'groups list --json');
    assert.deepEqual(JSON.parse(json.stdout), (await h.request('GET', '/api/v1/groups')).body, 'exactly the API objects');

    assert.equal(down.code, 1);
    assert.equal(down.stdout, '');
    assert.match(down.stderr, /^pincer is not running at http:\/\/127\.0\.0\.1:\d+ \(start it with npm start\)\n$/);
  });

  test('groups add, set and remove change the store and say what happened in one line', async () => {
    const added = await pincer(at, 'groups', 'add', 'telegram:-100', '--folder', 'family', '--trigger', '@Bot', '--senders', 'u1, u2');
    ok(added, 'groups add');
    assert.match(
      added.stdout,
      /^joined telegram:-100 as group "family": trigger @Bot, engaged by allowlist \(2\) \+ trigger, senders u1,u2/,
    );
    assert.equal(added.stdout.trimEnd().split('\n').length, 1);
    const g = h.pincer.store.groups.get('telegram:-100');
    assert.equal(g?.folder, 'family');
    assert.equal(g?.trigger, '@Bot');
    assert.deepEqual(g?.senderAllowlist, ['u1', 'u2']);

    const set = await pincer(at, 'groups', 'set', 'family', '--respond-to-all', '--all-senders', '--timezone', 'America/New_York');
    ok(set, 'groups set');
    // This pincer has no credentials: the model line says why the group cannot run.
    assert.match(
      set.stdout,
      /^group "family" updated: trigger @Bot, engaged by everyone, time zone America\/New_York, model none: no model credentials are set \(ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN\)\n$/,
    );
    const changed = h.pincer.store.groups.get('telegram:-100');
    assert.equal(changed?.respondToAll, true);
    assert.equal(changed?.senderAllowlist, null);
    assert.equal(changed?.timezone, 'America/New_York');

    const model = await pincer(at, 'groups', 'set', 'family', '--model', 'claude-haiku-4-5', '--effort', 'low');
    ok(model, 'groups set --model');
    assert.deepEqual(h.pincer.store.groups.get('telegram:-100')?.models, {
      provider: null,
      model: 'claude-haiku-4-5',
      effort: 'low',
      fallbackModel: null,
    });
    const back = await pincer(at, 'groups', 'set', 'family', '--model', 'default', '--provider', 'nowhere');
    assert.equal(back.code, 1);
    assert.match(back.stderr, /there is no provider "nowhere"; configured: anthropic/);
    assert.equal(h.pincer.store.groups.get('telegram:-100')?.models.model, 'claude-haiku-4-5', 'a refused change changes nothing');
    const reset = await pincer(at, 'groups', 'set', 'family', '--model', 'default', '--effort', 'default');
    ok(reset, 'groups set --model default');
    assert.deepEqual(h.pincer.store.groups.get('telegram:-100')?.models, {
      provider: null,
      model: null,
      effort: null,
      fallbackModel: null,
    });

    const removed = await pincer(at, 'groups', 'remove', 'family');
    ok(removed, 'groups remove');
    assert.match(removed.stdout, /^group "family" removed/);
    assert.equal(h.pincer.store.groups.get('telegram:-100'), undefined);
  });

  test('tasks add (cron, every, at), list, pause, resume, cancel, runs; an invalid cron fails with the reason', async () => {
    const [cron, every, once, invalid] = await Promise.all([
      pincer(at, 'tasks', 'add', '--group', 'main', '--cron', '0 9 * * 1-5', 'summarise', 'my', 'inbox'),
      pincer(at, 'tasks', 'add', '--group', 'main', '--every', '2h', '--isolated', 'check the feed'),
      pincer(at, 'tasks', 'add', '--group', 'main', '--at', '2099-01-01 09:00', '--timezone', 'UTC', 'happy new year'),
      pincer(at, 'tasks', 'add', '--group', 'main', '--cron', '61 * * * *', 'never'),
    ]);
    ok(cron, 'tasks add --cron');
    assert.match(
      cron.stdout,
      /^task \d+ scheduled in group "main": every weekday at 09:00 \(Europe\/Berlin\); next run \d{4}-\d\d-\d\d 09:00 Europe\/Berlin\n$/,
    );
    ok(every, 'tasks add --every');
    assert.match(every.stdout, /^task \d+ scheduled in group "main": every 2 hours; next run /);
    ok(once, 'tasks add --at');
    assert.match(once.stdout, /^task \d+ scheduled in group "main": once on 2099-01-01 09:00 \(UTC\); next run 2099-01-01 09:00 UTC\n$/);
    assert.equal(invalid.code, 1);
    assert.equal(invalid.stdout, '');
    assert.match(invalid.stderr, /^invalid cron "61 \* \* \* \*": Invalid value for minute: 61\n$/);

    const idOf = (o: Outcome) => Number(/^task (\d+)/.exec(o.stdout)?.[1]);
    const [cronId, everyId, onceId] = [idOf(cron), idOf(every), idOf(once)];
    const stored = h.pincer.store.tasks.get(everyId);
    assert.equal(stored?.prompt, 'check the feed');
    assert.equal(stored?.contextMode, 'isolated');
    assert.equal(stored?.scheduleType, 'interval');
    assert.equal(h.pincer.store.tasks.get(cronId)?.prompt, 'summarise my inbox', 'the prompt words are joined');
    assert.equal(h.pincer.store.tasks.get(onceId)?.timezone, 'UTC');

    const dueAt = Date.UTC(2030, 0, 1, 8, 0);
    const started = h.pincer.store.taskRuns.start({
      taskId: cronId,
      chatId: 'local:main',
      dueAt,
      startedAt: dueAt + 2000,
      contextMode: 'group',
      messageSeq: null,
    });
    assert.ok(started);
    h.pincer.store.taskRuns.finish(started.id, {
      status: 'error',
      endedAt: dueAt + 5000,
      durationMs: 3000,
      result: null,
      error: 'the model failed',
      costUsd: null,
    });

    // Calls run side by side where their order does not matter: each child start costs about half a second.
    const [list, table, pause] = await Promise.all([
      pincer(at, 'tasks', 'list', '--json'),
      pincer(at, 'tasks', 'list'),
      pincer(at, 'tasks', 'pause', String(cronId)),
    ]);
    ok(list, 'tasks list --json');
    const tasks = (JSON.parse(list.stdout) as { tasks: Array<{ id: number; group: string; lastRun: { status: string } | null }> }).tasks;
    assert.deepEqual(
      tasks.map((t) => t.id),
      [cronId, everyId, onceId].sort((a, b) => a - b),
    );
    assert.equal(tasks.find((t) => t.id === cronId)?.lastRun?.status, 'error');
    ok(table, 'tasks list');
    assert.match(table.stdout, /^ID\s+GROUP\s+STATUS\s+SCHEDULE\s+NEXT RUN\s+LAST RUN\s+PROMPT\n/);
    assert.match(
      table.stdout,
      new RegExp(`\\n${onceId}\\s+main\\s+\\w+\\s+once on 2099-01-01 09:00 \\(UTC\\)\\s+2099-01-01 09:00 UTC\\s+-\\s+happy new year\\n`),
    );
    ok(pause, 'tasks pause');
    assert.equal(pause.stdout, `task ${cronId} paused\n`);
    assert.equal(h.pincer.store.tasks.get(cronId)?.status, 'paused');

    const [resume, cancel, runs, runsTable] = await Promise.all([
      pincer(at, 'tasks', 'resume', String(cronId)),
      pincer(at, 'tasks', 'cancel', String(everyId)),
      pincer(at, 'tasks', 'runs', String(cronId), '--json'),
      pincer(at, 'tasks', 'runs', String(cronId), '--limit', '5'),
    ]);
    ok(resume, 'tasks resume');
    assert.match(resume.stdout, new RegExp(`^task ${cronId} resumed; next run \\d{4}-\\d\\d-\\d\\d 09:00 Europe/Berlin\\n$`));
    assert.equal(h.pincer.store.tasks.get(cronId)?.status, 'active');
    ok(cancel, 'tasks cancel');
    assert.equal(cancel.stdout, `task ${everyId} cancelled\n`);
    assert.equal(h.pincer.store.tasks.get(everyId)?.status, 'cancelled');
    ok(runs, 'tasks runs --json');
    const [r] = (JSON.parse(runs.stdout) as { runs: Array<Record<string, unknown>> }).runs;
    assert.equal(r?.dueAt, dueAt);
    assert.equal(r?.error, 'the model failed');
    assert.equal(r?.dueAtIso, '2030-01-01T08:00:00.000Z');
    ok(runsTable, 'tasks runs');
    assert.match(runsTable.stdout, /^DUE\s+STARTED\s+LATE\s+STATUS\s+DURATION\s+COST\s+RESULT OR ERROR\n/);
    assert.match(runsTable.stdout, /\n2030-01-01 09:00\s+2030-01-01 09:00\s+2\.0 s\s+error\s+3\.0 s\s+-\s+the model failed\n$/);
  });
});

// The authorization matrix: every tool × acting group (main / other) × target (own / other group), called
// through the real tool handlers a session gets. Refusals change nothing.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { Control } from '../src/service/control.js';
import { registerGroup } from '../src/service/groups.js';
import { prepareState, type StateLayout } from '../src/service/layout.js';
import { Store } from '../src/store/index.js';
import { sessionTools } from '../src/tools/pincer-server.js';
import { standaloneControl } from './helpers/control.js';

type Target = 'own' | 'other';
type Actor = 'main' | 'team';
type Expect = 'ok' | 'refused' | 'absent';

let home: string;
let layout: StateLayout;
let store: Store;
let control: Control;
let spare = 0;

const FOLDER: Record<Actor, string> = { main: 'main', team: 'team' };
const OTHER = 'family';

function join_(folder: string, isMain = false) {
  return registerGroup(store, layout, { chatId: `local:${folder}`, folder, trigger: '@Andy', respondToAll: true, isMain }, Date.now());
}

function taskIn(folder: string): number {
  return control.scheduleTask(
    { kind: 'owner' },
    { prompt: 'p', scheduleType: 'interval', scheduleValue: '1h', contextMode: 'group', targetGroup: folder },
  ).id;
}

/** Everything authorization protects, to compare before and after a refused call. */
function snapshot(): string {
  return JSON.stringify([
    store.db.prepare('SELECT * FROM tasks ORDER BY id').all(),
    store.db.prepare('SELECT * FROM groups ORDER BY chat_id').all(),
    store.db.prepare('SELECT * FROM budgets ORDER BY scope').all(),
  ]);
}

const targetFolder = (actor: Actor, target: Target) => (target === 'own' ? FOLDER[actor] : OTHER);

/** The arguments of each tool for an acting group and a target. */
const CASES: Record<string, (actor: Actor, target: Target) => Record<string, unknown>> = {
  schedule_task: (_a, t) => ({
    prompt: 'briefing',
    schedule_type: 'cron',
    schedule_value: '0 9 * * 1',
    ...(t === 'other' ? { target_group: OTHER } : {}),
  }),
  list_tasks: (_a, t) => (t === 'other' ? { group: OTHER } : {}),
  update_task: (a, t) => ({ task_id: taskIn(targetFolder(a, t)), prompt: 'changed' }),
  pause_task: (a, t) => ({ task_id: taskIn(targetFolder(a, t)) }),
  resume_task: (a, t) => {
    const id = taskIn(targetFolder(a, t));
    control.pauseTask({ kind: 'owner' }, id);
    return { task_id: id };
  },
  cancel_task: (a, t) => ({ task_id: taskIn(targetFolder(a, t)) }),
  list_groups: () => ({}),
  list_chats: () => ({}),
  register_group: () => {
    spare++;
    store.chats.seen({ id: `tg:${spare}`, channel: 'tg', name: `Chat ${spare}`, isGroup: true }, Date.now());
    return { chat_id: `tg:${spare}` };
  },
  unregister_group: (a, t) => {
    if (t === 'own') return { folder: FOLDER[a] };
    spare++;
    join_(`spare-${spare}`);
    return { folder: `spare-${spare}` };
  },
  set_egress_policy: (a, t) => ({ folder: targetFolder(a, t), mode: 'none' }),
  set_extra_mounts: (a, t) => ({ folder: targetFolder(a, t), mounts: [] }),
  show_spend: () => ({}),
  set_budget: (a, t) => ({ group: targetFolder(a, t), daily_usd: 50 }),
  list_mcp_servers: (a, t) => ({ folder: targetFolder(a, t) }),
  set_mcp_servers: (a, t) => ({ folder: targetFolder(a, t), servers: [{ name: 'shell', type: 'stdio', command: '/bin/sh' }] }),
  // A non-main group's search_memory has no group argument; a call that names one anyway is refused.
  search_memory: (_a, t) => ({ query: 'plumber', ...(t === 'other' ? { group: OTHER } : {}) }),
  get_memory: (a, t) => ({ message_id: said(targetFolder(a, t), 'the plumber came') }),
};

/** Stores a message in a group's chat; its id. */
function said(folder: string, text: string): number {
  spare++;
  return store.messages.insert({
    chatId: `local:${folder}`,
    channel: 'local',
    platformId: `said-${spare}`,
    senderId: 'u',
    senderName: 'User',
    text,
    sentAt: Date.now(),
    fromAssistant: false,
    engages: false,
  }).seq;
}

const ADMIN = new Set([
  'list_groups',
  'list_chats',
  'register_group',
  'unregister_group',
  'set_egress_policy',
  'set_extra_mounts',
  'show_spend',
  'set_budget',
  'list_mcp_servers',
  'set_mcp_servers',
]);

function expected(tool: string, actor: Actor, target: Target): Expect {
  if (actor === 'main') return tool === 'unregister_group' && target === 'own' ? 'refused' : 'ok';
  if (ADMIN.has(tool)) return 'absent';
  return target === 'own' ? 'ok' : 'refused';
}

before(() => {
  home = mkdtempSync(join(tmpdir(), 'pincer-authz-'));
  layout = prepareState(home);
  store = new Store(layout.db);
  control = standaloneControl(layout, store);
  join_('main', true);
  join_('team');
  join_(OTHER);
});
after(() => {
  store.close();
  rmSync(home, { recursive: true, force: true });
});

describe('authorization matrix: tool × acting group × target', () => {
  const rows: string[] = [];
  after(() => process.stdout.write(`\nAuthorization matrix (tool, acting group, target: result)\n${rows.join('\n')}\n`));

  for (const tool of Object.keys(CASES)) {
    for (const actor of ['main', 'team'] as const) {
      for (const target of ['own', 'other'] as const) {
        const want = expected(tool, actor, target);
        test(`${tool} by ${actor} on ${target} group: ${want}`, async () => {
          const tools = sessionTools({
            chatId: `local:${FOLDER[actor]}`,
            isMain: actor === 'main',
            send: () => {},
            sendFile: async () => {},
            control,
          });
          const t = tools.find((x) => x.name === tool);
          if (want === 'absent') {
            assert.equal(t, undefined, `${actor} must not have ${tool}`);
            rows.push(`${tool.padEnd(18)} ${actor.padEnd(5)} ${target.padEnd(5)} absent`);
            return;
          }
          assert.ok(t, `${actor} lacks ${tool}`);
          const args = CASES[tool]?.(actor, target) ?? {};
          const before = snapshot();
          const result = await t.handler(args as never, {});
          const text = result.content.map((c) => ('text' in c ? c.text : '')).join('');
          if (want === 'ok') assert.ok(!result.isError, `${tool} failed: ${text}`);
          else {
            assert.equal(result.isError, true, `${tool} should be refused: ${text}`);
            assert.match(text, /^Error: /);
            assert.equal(snapshot(), before, 'a refused call changed something');
          }
          rows.push(`${tool.padEnd(18)} ${actor.padEnd(5)} ${target.padEnd(5)} ${want}`);
        });
      }
    }
  }
});

describe('Control refuses what the tools would not even offer', () => {
  const team = { kind: 'group' as const, chatId: 'local:team' };
  for (const [name, call] of [
    ['listGroups', () => control.listGroups(team)],
    ['listChats', () => control.listChats(team)],
    ['registerGroup', () => control.registerGroup(team, { chatId: 'local:x' })],
    ['unregisterGroup', () => control.unregisterGroup(team, OTHER)],
    ['setEgressPolicy', () => control.setEgressPolicy(team, 'team', { mode: 'open' })],
    ['setExtraMounts', () => control.setExtraMounts(team, 'team', [])],
    ['listMcpServers', () => control.listMcpServers(team, 'team')],
    ['setMcpServers', () => control.setMcpServers(team, 'team', [])],
  ] as const) {
    test(`${name} by a non-main group is forbidden`, () => {
      assert.throws(call, (err: Error & { code?: string }) => err.code === 'forbidden');
    });
  }

  test("a group's memory search never returns another group's messages; the main group may search all", async () => {
    said(OTHER, 'the secret code of the family safe is 4711');
    said('team', 'the team safe is elsewhere');
    const seen = await control.memory.search(team, { text: 'safe' });
    assert.deepEqual(
      seen.hits.map((h) => h.chat),
      ['team'],
    );
    assert.ok(!JSON.stringify(seen).includes('4711'));
    assert.equal((await control.memory.search(team, { text: '4711' })).hits.length, 0);
    const forbidden = (err: Error & { code?: string }) => err.code === 'forbidden';
    await assert.rejects(control.memory.search(team, { text: 'safe', group: 'all' }), forbidden);
    await assert.rejects(control.memory.search(team, { text: 'safe', group: OTHER }), forbidden);
    const all = await control.memory.search({ kind: 'group', chatId: 'local:main' }, { text: 'safe', group: 'all' });
    assert.deepEqual(all.hits.map((h) => h.chat).sort(), [OTHER, 'team']);
    const family = all.hits.find((h) => h.chat === OTHER);
    assert.ok(family && 'id' in family);
    assert.throws(() => control.memory.around(team, Number(family.id), 2, 2), /there is no message \d+ in this group's memory/);
  });

  test("get_memory reads lines of a group's own memory files; another group's only from the main group", async () => {
    const own = await control.memory.fileLines(team, { file: 'CLAUDE.md', line: 1, before: 0, after: 1 });
    assert.match(own, /^1: # /);
    const main = { kind: 'group' as const, chatId: 'local:main' };
    assert.match(await control.memory.fileLines(main, { file: 'CLAUDE.md', line: 1, before: 0, after: 0, group: OTHER }), /^1: /);
    await assert.rejects(
      control.memory.fileLines(team, { file: 'CLAUDE.md', line: 1, before: 0, after: 0, group: OTHER }),
      (err: Error & { code?: string }) => err.code === 'forbidden',
    );
    for (const file of ['../main/CLAUDE.md', 'notes.txt', '/etc/passwd'])
      await assert.rejects(control.memory.fileLines(team, { file, line: 1, before: 0, after: 0 }), /is not a memory file/, file);
    await assert.rejects(control.memory.fileLines(team, { file: 'memory/none.md', line: 1, before: 0, after: 0 }), /does not exist/);
  });

  test("another group's task is reported as missing, not as forbidden", () => {
    const id = taskIn(OTHER);
    assert.throws(() => control.pauseTask(team, id), /there is no task/);
  });

  test('bad arguments are refused with a clear reason and change nothing', () => {
    const before = snapshot();
    const main = { kind: 'group' as const, chatId: 'local:main' };
    assert.throws(
      () => control.scheduleTask(main, { prompt: 'x', scheduleType: 'cron', scheduleValue: '61 * * * *', contextMode: 'group' }),
      /invalid cron/,
    );
    assert.throws(() => control.registerGroup(main, { chatId: 'local:evil', folder: '../x' }), /must match/);
    assert.throws(() => control.pauseTask(main, 999_999), /there is no task 999999/);
    assert.throws(() => control.scheduleTask(main, { prompt: 'x', scheduleType: 'interval', scheduleValue: '5s', contextMode: 'group' }));
    assert.throws(
      () => control.scheduleTask(main, { prompt: '   ', scheduleType: 'interval', scheduleValue: '1h', contextMode: 'group' }),
      /empty/,
    );
    assert.throws(() => control.updateGroup(main, 'team', { timezone: 'Mars/Olympus' }), /unknown time zone/);
    assert.equal(snapshot(), before);
  });

  test('joining a seen chat names its folder from the chat name and gives it its memory', () => {
    store.chats.seen({ id: 'tg:-100555', channel: 'tg', name: 'Family Chat!', isGroup: true }, Date.now());
    const g = control.registerGroup({ kind: 'group', chatId: 'local:main' }, { chatId: 'tg:-100555' });
    assert.equal(g.folder, 'family-chat');
    assert.ok(existsSync(join(layout.groupsDir, 'family-chat', 'CLAUDE.md')));
  });
});

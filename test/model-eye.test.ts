// What a real model is shown. Each usage phrase of the seed's README and of ours ("Talking to it") goes to a real
// pincer (real Claude Code in a real sandbox), and the model request is checked as a real model would receive it:
// the pincer tool meant for it is offered with its schema, up front; none of Claude Code's look-alikes is offered
// or named; the system prompt names the capability. Then the scripted model does what a real one would, calling
// only what it was offered (the fake refuses anything else), and the effect is checked in the store.
// After an SDK upgrade, the inventory test lists what the first request offers and fails on anything unreviewed.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BUILTIN_TOOL_NAMES } from '@anthropic-ai/claude-agent-sdk';
import { BUILTIN_TOOLS, WITHHELD_BUILTIN_TOOLS } from '../src/agent/tool-surface.js';
import {
  deferredToolNames,
  isAgentTurn,
  isRecord,
  isToolResult,
  lastUserText,
  type ModelReply,
  type ModelRequest,
  offeredTools,
  offers,
  promptText,
  startFakeModel,
  systemText,
  useTool,
} from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();
const pincer = (name: string) => `mcp__pincer__${name}`;

const TASK_TOOLS = ['schedule_task', 'list_tasks', 'update_task', 'pause_task', 'resume_task', 'cancel_task'].map(pincer);
const MESSAGE_TOOLS = ['send_message', 'send_file'].map(pincer);
const MEMORY_TOOLS = ['search_memory', 'get_memory'].map(pincer);
const ADMIN_TOOLS = [
  'list_groups',
  'list_chats',
  'register_group',
  'unregister_group',
  'set_egress_policy',
  'set_extra_mounts',
  'list_mcp_servers',
  'set_mcp_servers',
  'show_spend',
  'set_budget',
  'set_group_model',
].map(pincer);

/**
 * Everything the first request of a session offers or names, reviewed: the built-ins as Claude Code enables them
 * under pincer's table (src/agent/tool-surface.ts), then pincer's own. A new SDK that changes it fails here.
 */
const REVIEWED_UP_FRONT = ['Agent', 'Bash', 'Edit', 'Glob', 'Grep', 'Read', 'Skill', 'ToolSearch', 'Write'];
const REVIEWED_DEFERRED = ['NotebookEdit', 'WebFetch', 'WebSearch'];
/** The API-level marker Claude Code sends to keep tool search on: a schema-less placeholder, never callable. */
const PLACEHOLDER = 'DeferredToolPlaceholder';

/** A step of the scripted model: its reply to the request it answers. */
type Step = (req: ModelRequest) => ModelReply;

interface Phrase {
  chat: string;
  text: string;
  /** The tools a real model needs for it: each must be offered with its schema in the turn's first request. */
  expect: string[];
  /** Words the system prompt must say for the model to know the capability. */
  named: RegExp[];
  steps: Step[];
  /** The effect, checked once the turn is answered. */
  check?: (h: Harness, reply: string) => void | Promise<void>;
}

const call =
  (name: string, input: unknown): Step =>
  (req) =>
    useTool(req, name, input);

/** The task whose prompt starts with `start`, as the store has it. */
function taskNamed(h: Harness, start: string) {
  const task = h.pincer.store.tasks.list().find((t) => t.prompt.startsWith(start));
  assert.ok(task, `a task "${start}…" exists`);
  return task;
}

/** The id a list_tasks result gives the task whose prompt starts with `start` (as a model reads it off the result). */
function idFromListing(req: ModelRequest, start: string): number {
  const text = lastUserText(req);
  const at = text.indexOf(start);
  const id = /"id": (\d+)/g;
  let found = 0;
  for (let m = id.exec(text); m && m.index < at; m = id.exec(text)) found = Number(m[1]);
  return found;
}

const PHRASES: Phrase[] = [
  // The seed's usage examples.
  {
    chat: 'local:main',
    text: '@Andy send an overview of the sales pipeline every weekday morning at 9am (has access to my Obsidian vault folder)',
    expect: [pincer('schedule_task')],
    named: [/schedule_task/, /cron/, /Europe\/Berlin/],
    steps: [
      call(pincer('schedule_task'), {
        prompt: 'Send an overview of the sales pipeline',
        schedule_type: 'cron',
        schedule_value: '0 9 * * 1-5',
      }),
    ],
    check: (h) => {
      const task = taskNamed(h, 'Send an overview of the sales pipeline');
      assert.equal(task.scheduleValue, '0 9 * * 1-5');
      assert.equal(task.timezone, 'Europe/Berlin');
    },
  },
  {
    chat: 'local:main',
    text: "@Andy review the git history for the past week each Friday and update the README if there's drift",
    expect: [pincer('schedule_task'), 'Bash', 'Edit'],
    named: [/schedule_task/],
    steps: [
      call(pincer('schedule_task'), {
        prompt: "Review the git history of the past week and update the README if there's drift",
        schedule_type: 'cron',
        schedule_value: '0 17 * * 5',
        context_mode: 'isolated',
      }),
    ],
    check: (h) => assert.equal(taskNamed(h, 'Review the git history').contextMode, 'isolated'),
  },
  {
    chat: 'local:main',
    text: '@Andy every Monday at 8am, compile news on AI developments from Hacker News and TechCrunch and message me a briefing',
    expect: [pincer('schedule_task'), 'ToolSearch'],
    named: [/schedule_task/, /WebSearch/, /WebFetch/],
    steps: [
      call(pincer('schedule_task'), {
        prompt: 'Compile news on AI developments from Hacker News and TechCrunch into a briefing',
        schedule_type: 'cron',
        schedule_value: '0 8 * * 1',
      }),
    ],
    check: (h) => assert.equal(taskNamed(h, 'Compile news on AI').scheduleValue, '0 8 * * 1'),
  },
  {
    chat: 'local:main',
    text: '@Andy list all scheduled tasks across groups',
    expect: [pincer('list_tasks')],
    named: [/list_tasks/],
    steps: [call(pincer('list_tasks'), {})],
    check: (_h, reply) => assert.match(reply, /Monday briefing/),
  },
  {
    chat: 'local:main',
    text: '@Andy pause the Monday briefing task',
    expect: [pincer('list_tasks'), pincer('pause_task')],
    named: [/pause_task/],
    steps: [
      call(pincer('list_tasks'), {}),
      (req) => useTool(req, pincer('pause_task'), { task_id: idFromListing(req, 'Monday briefing') }),
    ],
    check: (h) => assert.equal(taskNamed(h, 'Monday briefing').status, 'paused'),
  },
  {
    chat: 'local:main',
    text: '@Andy join the Family Chat group',
    expect: [pincer('list_chats'), pincer('register_group')],
    named: [/register_group/, /list_chats/],
    steps: [call(pincer('list_chats'), {}), call(pincer('register_group'), { chat_id: 'tg:-100777' })],
    check: (h) => assert.equal(h.pincer.store.groups.get('tg:-100777')?.folder, 'family-chat'),
  },
  // README, "Talking to it".
  {
    chat: 'local:main',
    text: '@Andy every 2 hours check whether the build is green',
    expect: [pincer('schedule_task')],
    named: [/interval/],
    steps: [call(pincer('schedule_task'), { prompt: 'Check whether the build is green', schedule_type: 'interval', schedule_value: '2h' })],
    check: (h) => assert.equal(taskNamed(h, 'Check whether the build').scheduleType, 'interval'),
  },
  {
    chat: 'local:main',
    text: '@Andy remind me tomorrow at 10:00 to call the bank',
    expect: [pincer('schedule_task')],
    named: [/once/],
    steps: [
      call(pincer('schedule_task'), {
        prompt: 'Remind the owner to call the bank',
        schedule_type: 'once',
        schedule_value: tomorrowAt('10:00'),
      }),
    ],
    check: (h) => assert.equal(taskNamed(h, 'Remind the owner to call the bank').scheduleType, 'once'),
  },
  {
    chat: 'local:main',
    text: '@Andy change the Monday briefing to 7am',
    expect: [pincer('list_tasks'), pincer('update_task')],
    named: [/update_task/],
    steps: [
      call(pincer('list_tasks'), {}),
      (req) => useTool(req, pincer('update_task'), { task_id: idFromListing(req, 'Monday briefing'), schedule_value: '0 7 * * 1' }),
    ],
    check: (h) => assert.equal(taskNamed(h, 'Monday briefing').scheduleValue, '0 7 * * 1'),
  },
  {
    chat: 'local:main',
    text: '@Andy remember in the future to make responses shorter',
    expect: ['Read', 'Edit'],
    named: [/\/workspace\/group\/CLAUDE\.md is your memory/],
    steps: [
      call('Read', { file_path: '/workspace/group/CLAUDE.md' }),
      call('Edit', {
        file_path: '/workspace/group/CLAUDE.md',
        old_string: '# Memory of this chat (main)',
        new_string: '# Memory of this chat (main)\n\n- Keep responses short.',
      }),
    ],
    check: (h) => assert.match(readFileSync(join(h.home, 'groups', 'main', 'CLAUDE.md'), 'utf8'), /Keep responses short/),
  },
  {
    chat: 'local:main',
    text: '@Andy what did we decide about the trip in March?',
    expect: [pincer('search_memory'), pincer('get_memory')],
    named: [/search_memory/, /decisions/],
    steps: [call(pincer('search_memory'), { query: 'trip March' })],
    // Planted a year ago (before): found through the real tool, from the store's index.
    check: (_h, reply) => assert.match(reply, /\[trip\] to Lisbon in \[March\]/),
  },
  {
    chat: 'local:main',
    text: '@Andy what do you remember about me?',
    expect: ['Read'],
    named: [/Asked what you remember .* read those files and show what they say/],
    steps: [call('Read', { file_path: '/workspace/group/CLAUDE.md' })],
    // The file as it is (an earlier phrase wrote to it), not a guess.
    check: (_h, reply) => assert.match(reply, /Keep responses short/),
  },
  {
    chat: 'local:main',
    text: '@Andy let the family group reach only wikipedia.org',
    expect: [pincer('set_egress_policy')],
    named: [/set_egress_policy/],
    steps: [call(pincer('set_egress_policy'), { folder: 'family-chat', mode: 'allowlist', domains: ['wikipedia.org'] })],
    check: (h) => assert.equal(h.pincer.store.groups.get('tg:-100777')?.egressPolicy.mode, 'allowlist'),
  },
  {
    chat: 'local:main',
    text: '@Andy give the family group my recipes folder, read-only',
    expect: [pincer('set_extra_mounts')],
    named: [/set_extra_mounts/],
    steps: [(req) => useTool(req, pincer('set_extra_mounts'), { folder: 'family-chat', mounts: [{ hostPath: recipes, readOnly: true }] })],
    check: (h) => assert.equal(h.pincer.store.groups.get('tg:-100777')?.extraMounts.length, 1),
  },
  {
    chat: 'local:main',
    text: '@Andy how much have we spent this month?',
    expect: [pincer('show_spend')],
    named: [/show_spend/],
    steps: [call(pincer('show_spend'), {})],
    check: (_h, reply) => assert.match(reply, /month/i),
  },
  {
    chat: 'local:main',
    text: '@Andy limit the family group to 2 dollars a day',
    expect: [pincer('set_budget')],
    named: [/set_budget/],
    steps: [call(pincer('set_budget'), { group: 'family-chat', daily_usd: 2 })],
    check: (h) => {
      const family = h.pincer.control.budgets({ kind: 'owner' }).groups.find((g) => g.folder === 'family-chat');
      assert.equal(family?.dailyUsd, 2);
    },
  },
  {
    chat: 'local:main',
    text: '@Andy use the cheaper model for the family group',
    expect: [pincer('set_group_model')],
    named: [/set_group_model/],
    steps: [call(pincer('set_group_model'), { folder: 'family-chat', model: 'claude-haiku-4-5', effort: 'low' })],
    check: (h) => {
      const family = h.pincer.store.groups.get('tg:-100777');
      assert.equal(family?.models.model, 'claude-haiku-4-5');
      assert.equal(family?.models.effort, 'low');
    },
  },
  {
    chat: 'local:main',
    text: '@Andy search the web for the opening hours of the city library',
    expect: ['ToolSearch'],
    named: [/WebSearch/],
    // Deferred: a real model loads it by name first; the next request then offers it with its schema.
    steps: [
      call('WebSearch', { query: 'city library opening hours' }),
      (req) => ({ text: offers(req, 'WebSearch') ? 'done: WebSearch loaded' : 'done: not loaded' }),
    ],
    check: (_h, reply) => assert.equal(reply, 'WebSearch loaded'),
  },
  {
    chat: 'local:main',
    text: '@Andy have a researcher look into three note-taking apps and report back in the chat as they go',
    expect: ['Agent', pincer('send_message')],
    named: [/sender set to its role/],
    steps: [call(pincer('send_message'), { text: 'Looking into three apps now.', sender: 'Researcher' })],
    check: async (h) => {
      const texts = (await h.messages('local:main')).map((m) => m.text);
      assert.ok(texts.includes('Researcher: Looking into three apps now.'), 'the message reached the chat under its sender');
    },
  },
  {
    chat: 'local:main',
    text: '@Andy leave the Family Chat group',
    expect: [pincer('list_groups'), pincer('unregister_group')],
    named: [/unregister_group/],
    steps: [call(pincer('unregister_group'), { folder: 'family-chat' })],
    check: (h) => assert.equal(h.pincer.store.groups.get('tg:-100777'), undefined),
  },
  // Another group: its own tasks and messages, no administration.
  {
    chat: 'local:team',
    text: '@Andy every Friday at 4pm remind us to fill in the timesheets',
    expect: [pincer('schedule_task'), pincer('send_message')],
    named: [/schedule_task/],
    steps: [
      call(pincer('schedule_task'), {
        prompt: 'Remind the team to fill in the timesheets',
        schedule_type: 'cron',
        schedule_value: '0 16 * * 5',
      }),
    ],
    check: (h) => assert.equal(taskNamed(h, 'Remind the team').chatId, 'local:team'),
  },
];

let recipes = '';

function tomorrowAt(time: string): string {
  const day = new Date(Date.now() + 86_400_000).toLocaleDateString('en-CA', { timeZone: 'Europe/Berlin' });
  return `${day}T${time}`;
}

/** Tools with their schemas in the request (not deferred), with the schema each came with. */
function schemas(req: ModelRequest): Map<string, unknown> {
  const tools = (req.body.tools ?? []) as Array<{ name: string; input_schema?: unknown; defer_loading?: boolean }>;
  return new Map(tools.filter((t) => !t.defer_loading).map((t) => [t.name, t.input_schema]));
}

describe("what a real model is shown, for each usage phrase (model's eye)", { skip }, () => {
  let h: Harness;
  const outside = mkdtempSync(join(tmpdir(), 'pincer-eye-'));
  /** The first request of each phrase's turn, as the model received it. */
  const firstRequests = new Map<string, ModelRequest>();
  /** Every request of a sub-agent or the main agent (for the look-alike check across all of them). */
  const agentRequests: ModelRequest[] = [];

  before(async () => {
    recipes = join(outside, 'vault', 'recipes');
    mkdirSync(recipes, { recursive: true });
    // The family group's sandbox user must be able to reach the folder (mkdtemp makes it 0700).
    chmodSync(outside, 0o755);
    const allowlist = join(outside, 'mount-allowlist.json');
    writeFileSync(allowlist, JSON.stringify({ allowedRoots: [{ path: join(outside, 'vault'), allowReadWrite: false }] }));
    h = await startHarness({
      env: { PINCER_MOUNT_ALLOWLIST: allowlist },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        agentRequests.push(req);
        const prompt = promptText(req);
        const phrase = PHRASES.find((p) => prompt.includes(p.text.replace(/'/g, '&apos;')));
        if (!phrase) return { text: 'ok' };
        // The step is how many tool calls this turn has made since its prompt.
        const msgs = req.body.messages ?? [];
        const start = msgs.findLastIndex((m) => m.role === 'user' && JSON.stringify(m.content).includes('<messages'));
        const step = msgs
          .slice(start)
          .filter(
            (m) => m.role === 'assistant' && Array.isArray(m.content) && m.content.some((b) => isRecord(b) && b.type === 'tool_use'),
          ).length;
        if (step === 0) firstRequests.set(phrase.text, req);
        const next = phrase.steps[step];
        return next ? next(req) : { text: `done: ${lastUserText(req).slice(0, 3000)}` };
      },
    });
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'local:team', folder: 'team' });
    h.pincer.control.scheduleTask(
      { kind: 'owner' },
      {
        prompt: 'Monday briefing: the week ahead',
        scheduleType: 'cron',
        scheduleValue: '0 8 * * 1',
        contextMode: 'group',
        targetGroup: 'team',
      },
    );
    h.pincer.store.chats.seen({ id: 'tg:-100777', channel: 'tg', name: 'Family Chat', isGroup: true }, Date.now());
    const yearAgo = Date.now() - 365 * 24 * 3600_000;
    const planted = h.pincer.store.messages.insert({
      chatId: 'local:main',
      channel: 'local',
      platformId: 'planted-trip',
      senderId: 'owner',
      senderName: 'Owner',
      text: 'Decided: we take the trip to Lisbon in March, hotel in Alfama, budget 900 EUR.',
      sentAt: yearAgo,
      fromAssistant: false,
      engages: false,
    });
    // Answered long ago: not part of any prompt from here on, only of the history.
    h.pincer.store.groups.advanceCursor('local:main', planted.seq);
  });
  after(async () => {
    await h?.stop();
    rmSync(outside, { recursive: true, force: true });
  });

  test("every built-in tool the SDK names is reviewed in pincer's table, and nothing else is", () => {
    assert.deepEqual(Object.keys(BUILTIN_TOOLS).sort(), [...BUILTIN_TOOL_NAMES].sort());
  });

  for (const phrase of PHRASES) {
    test(`"${phrase.text}" (${phrase.chat})`, async () => {
      // The turn's answer (messages it sent along the way come before it).
      let reply = await h.reply(phrase.chat, await h.send(phrase.chat, phrase.text), 60_000);
      while (!reply.text.startsWith('done: ') && !reply.text.startsWith('⚠️')) reply = await h.reply(phrase.chat, reply.id, 60_000);
      const req = firstRequests.get(phrase.text);
      assert.ok(req, 'the turn reached the model');
      const withSchema = schemas(req);
      for (const name of phrase.expect) {
        assert.ok(withSchema.has(name), `${name} is offered up front`);
        assert.ok(isRecord(withSchema.get(name)), `${name} comes with its schema`);
      }
      const offered = [...offeredTools(req), ...deferredToolNames(req)];
      for (const name of WITHHELD_BUILTIN_TOOLS) assert.ok(!offered.includes(name), `look-alike ${name} is neither offered nor named`);
      const system = systemText(req);
      for (const words of phrase.named) assert.match(system, words, 'the system prompt names the capability');
      for (const name of phrase.expect.filter((n) => n.startsWith('mcp__'))) assert.ok(system.includes(name), `the prompt names ${name}`);
      if (phrase.chat !== 'local:main') for (const name of ADMIN_TOOLS) assert.ok(!offered.includes(name), `${name} is main-only`);
      assert.doesNotMatch(reply.text, /could not finish|Error/, reply.text);
      await phrase.check?.(h, reply.text.slice('done: '.length));
    });
  }

  test('the first request offers exactly the reviewed tools: built-ins, then all of pincer\u2019s (main group)', () => {
    const req = firstRequests.get(PHRASES[0]?.text ?? '');
    assert.ok(req);
    const upFront = [...schemas(req).keys()].filter((n) => n !== PLACEHOLDER);
    assert.deepEqual(upFront.filter((n) => !n.startsWith('mcp__')).sort(), REVIEWED_UP_FRONT);
    assert.deepEqual(
      upFront.filter((n) => n.startsWith('mcp__')).sort(),
      [...TASK_TOOLS, ...MESSAGE_TOOLS, ...MEMORY_TOOLS, ...ADMIN_TOOLS].sort(),
    );
    assert.deepEqual(deferredToolNames(req).sort(), REVIEWED_DEFERRED);
    for (const name of [...REVIEWED_UP_FRONT, ...REVIEWED_DEFERRED])
      assert.equal(BUILTIN_TOOLS[name]?.offered, true, `${name} is reviewed as offered`);
  });

  test("another group's first request has its task and message tools up front, and no admin tool", () => {
    const req = firstRequests.get(PHRASES.at(-1)?.text ?? '');
    assert.ok(req);
    const pincerTools = [...schemas(req).keys()].filter((n) => n.startsWith('mcp__')).sort();
    assert.deepEqual(pincerTools, [...TASK_TOOLS, ...MESSAGE_TOOLS, ...MEMORY_TOOLS].sort());
  });

  test('no request of any agent in these turns offered or named a look-alike', () => {
    assert.ok(agentRequests.length >= PHRASES.length);
    for (const req of agentRequests) {
      const seen = [...(req.body.tools ?? []).map((t) => t.name), ...deferredToolNames(req)];
      for (const name of WITHHELD_BUILTIN_TOOLS) assert.ok(!seen.includes(name), `${name} in a request`);
    }
  });
});

describe('tool calls a model gets wrong: a clear error it can act on, and the turn goes on', { skip }, () => {
  let h: Harness;
  const results: string[] = [];
  /** What each prompt makes the model call, though not offered (the fake lets a call marked as a mistake through). */
  const mistakes: Record<string, ModelReply> = {
    'use the cron': { toolUse: { name: 'CronCreate', input: { cron: '0 9 * * 1-5', prompt: 'pipeline', recurring: true }, mistake: true } },
    'wake up later': { toolUse: { name: 'ScheduleWakeup', input: { delaySeconds: 3600, prompt: 'check' }, mistake: true } },
    'message the team agent': { toolUse: { name: 'SendMessage', input: { to: 'team', message: 'hi' }, mistake: true } },
    'fetch without loading': {
      toolUse: { name: 'WebFetch', input: { url: 'https://example.com/', prompt: 'what is it?' }, mistake: true },
    },
  };

  before(async () => {
    h = await startHarness({
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        const key = Object.keys(mistakes).find((k) => promptText(req).includes(k));
        if (!key) return { text: 'ok' };
        if (isToolResult(req)) {
          results.push(lastUserText(req));
          return { text: `went on after: ${lastUserText(req).slice(0, 500)}` };
        }
        return mistakes[key] as ModelReply;
      },
    });
  });
  after(async () => h?.stop());

  for (const [prompt, pattern] of [
    ['use the cron', /No such tool available: CronCreate\. CronCreate is disabled for this session/],
    ['wake up later', /No such tool available: ScheduleWakeup/],
    ['message the team agent', /No such tool available: SendMessage/],
    // Claude Code runs a deferred built-in called by name without loading it: here the egress policy answers.
    ['fetch without loading', /proxy refused the connection/],
  ] as const) {
    test(`"${prompt}": the model is told, and answers`, async () => {
      const reply = await h.reply('local:main', await h.send('local:main', prompt), 60_000);
      assert.match(reply.text, /^went on after: /);
      assert.match(reply.text, pattern);
    });
  }
});

describe('the scripted model calls only what its request offers', () => {
  const post = (url: string, body: unknown) =>
    fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const ask = { model: 'claude-test', max_tokens: 10, stream: false };

  test('a call of a tool the request does not offer is refused and recorded; a deferred one counts once loaded', async () => {
    let call = 'Shown';
    const fake = await startFakeModel(() => ({ toolUse: { name: call, input: {} } }));
    try {
      const tools = [
        { name: 'Shown', input_schema: { type: 'object' } },
        { name: 'Later', input_schema: { type: 'object' }, defer_loading: true },
      ];
      const messages = [{ role: 'user', content: 'hi' }];
      assert.equal((await post(fake.url, { ...ask, tools, messages })).status, 200, 'an offered tool');
      call = 'Hidden';
      const refused = await post(fake.url, { ...ask, tools, messages });
      assert.equal(refused.status, 400);
      assert.match(await refused.text(), /called Hidden, which this request did not offer/);
      call = 'Later';
      assert.equal((await post(fake.url, { ...ask, tools, messages })).status, 400, 'a deferred tool not loaded yet');
      const loaded = [
        ...messages,
        { role: 'assistant', content: [{ type: 'tool_use', id: 't1', name: 'ToolSearch', input: { query: 'select:Later' } }] },
        { role: 'user', content: [{ type: 'tool_result', tool_use_id: 't1', content: [{ type: 'tool_reference', tool_name: 'Later' }] }] },
      ];
      assert.equal((await post(fake.url, { ...ask, tools, messages: loaded })).status, 200, 'loaded by a tool search');
      assert.deepEqual(fake.unofferedCalls, ['Hidden', 'Later']);
    } finally {
      await fake.close();
    }
  });
});

// Memory across conversations: the group's CLAUDE.md (kept by the agent), the shared global CLAUDE.md, and
// the chat commands /compact and /clear, which archive the conversation into the group folder first. Real
// Claude Code in bubblewrap against the scripted fake model.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { registerGroup } from '../src/service/groups.js';
import { isAgentTurn, isToolResult, lastUserText, type ModelRequest, promptText } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();

/** Claude Code's summarization request (on /compact): text only, summary in <summary> tags. */
const isCompaction = (req: ModelRequest) => lastUserText(req).includes('Respond with TEXT ONLY');
const everything = (req: ModelRequest) => JSON.stringify(req.body);
const history = (req: ModelRequest) => JSON.stringify(req.body.messages ?? []);
const ARCHIVE = /conversations\/\d{4}-\d\d-\d\d-\d{4}-[a-z0-9]{1,8}(?:-\d+)?\.md/;

function script(req: ModelRequest) {
  if (isCompaction(req)) {
    const saw = history(req).includes('PINEAPPLE-42') ? 'the secret word is PINEAPPLE-42' : 'nothing';
    return { text: `<analysis>Short chat.</analysis>\n<summary>SUMMARY-MARKER: ${saw}.</summary>` };
  }
  if (!isAgentTurn(req)) return { text: 'side request' };
  const text = lastUserText(req);
  // pincer's silent turn before a /compact: what should last goes into a memory file, and nothing is said.
  if (promptText(req).includes('about to be compacted')) {
    if (isToolResult(req)) return { text: '<internal>done</internal>' };
    const saw = history(req).includes('PINEAPPLE-42') ? 'The secret word is PINEAPPLE-42.' : 'Nothing to keep.';
    const command = `mkdir -p memory && printf '%s\\n' '${saw}' >> memory/kept.md`;
    return { toolUse: { name: 'Bash', input: { command, description: 'keep what lasts' } } };
  }
  if (isToolResult(req)) {
    if (history(req).includes('write shared memory')) return { text: `write said: ${text.slice(0, 200)}` };
    return { text: 'Noted in my memory.' };
  }
  if (text.includes('remember that my cat')) {
    const command = `printf '%s\\n' '- The owner has a cat called Mittens (CAT-MEMORY-MARKER).' >> CLAUDE.md`;
    return { toolUse: { name: 'Bash', input: { command, description: 'remember the cat' } } };
  }
  if (text.includes('what is my cat called'))
    return { text: everything(req).includes('CAT-MEMORY-MARKER') ? 'Your cat is Mittens.' : 'I do not know.' };
  if (text.includes('change the shared memory')) {
    const command = 'echo "sneaky" >> /workspace/global/CLAUDE.md && echo GLOBAL-WRITTEN || echo GLOBAL-READONLY';
    return { toolUse: { name: 'Bash', input: { command, description: 'write shared memory' } } };
  }
  if (text.includes('what is shared'))
    return { text: everything(req).includes('SHARED-MEMORY-MARKER') ? 'I see the shared note.' : 'No shared note.' };
  // After a compaction the summary and the next message arrive as one user turn: the newest text decides.
  if (text.includes('still there')) return { text: history(req).includes('SUMMARY-MARKER') ? 'Yes, with the summary.' : 'Yes.' };
  if (text.includes('the secret word')) return { text: 'Got it, PINEAPPLE-42 it is.' };
  return { text: `echo: ${text.slice(-40)}` };
}

/** The newest agent request whose last user turn contains `needle`. */
function requestWith(h: Harness, needle: string): ModelRequest {
  const req = h.fake.requests.filter((r) => isAgentTurn(r) && !isCompaction(r) && lastUserText(r).includes(needle)).at(-1);
  assert.ok(req, `the fake model received a request with "${needle}"`);
  return req;
}

function commandEvents(h: Harness, chatId: string): string[] {
  const rows = h.pincer.store.db
    .prepare(`SELECT detail FROM events WHERE chat_id = ? AND stage IN ('command', 'archived') ORDER BY id`)
    .all(chatId) as Array<{ detail: string }>;
  return rows.map((r) => r.detail);
}

describe('memory, /compact and /clear', { skip }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ script });
  });
  after(async () => h?.stop());

  test('the agent writes what it is asked to remember into CLAUDE.md; after /clear a new session sees it there', async () => {
    const chat = 'local:main';
    const ask = await h.send(chat, 'please remember that my cat is called Mittens');
    const noted = await h.reply(chat, ask, 20_000);
    assert.equal(noted.text, 'Noted in my memory.');
    const memory = readFileSync(join(h.home, 'groups', 'main', 'CLAUDE.md'), 'utf8');
    assert.match(memory, /Mittens \(CAT-MEMORY-MARKER\)/, 'the Bash call appended to the group CLAUDE.md');
    const sessionBefore = h.pincer.store.groups.state(chat).sessionId;
    assert.ok(sessionBefore, 'the first turn stored its session id');

    const clear = await h.send(chat, '/clear');
    const cleared = await h.reply(chat, noted.id, 20_000);
    assert.match(cleared.text, /^Cleared: a new conversation starts with your next message \(the old one is in conversations\/.+\.md\)\.$/);
    assert.equal(h.pincer.store.groups.state(chat).sessionId, null, '/clear forgot the stored session');
    assert.ok(!h.fake.requests.some((r) => history(r).includes('/clear')), 'the command never reached the model');

    const archive = cleared.text.match(ARCHIVE)?.[0];
    assert.ok(archive, `the reply names the archive: ${cleared.text}`);
    const archived = readFileSync(join(h.home, 'groups', 'main', archive), 'utf8');
    assert.match(archived, /^# Conversation archived \d{4}-\d\d-\d\d \d\d:\d\d\n/);
    assert.match(archived, /please remember that my cat is called Mittens/);
    assert.match(archived, /→ Bash: printf/);
    assert.match(archived, /Noted in my memory\./);

    const next = await h.send(chat, 'what is my cat called?');
    const answer = await h.reply(chat, cleared.id, 20_000);
    assert.equal(answer.text, 'Your cat is Mittens.');
    const req = requestWith(h, 'what is my cat called');
    assert.match(everything(req), /Contents of \/workspace\/group\/CLAUDE\.md[^"]*CAT-MEMORY-MARKER/, 'CLAUDE.md is in the new context');
    assert.ok(!history(req).includes('please remember that my cat'), 'the new session does not carry the old conversation');
    const sessionAfter = h.pincer.store.groups.state(chat).sessionId;
    assert.ok(sessionAfter && sessionAfter !== sessionBefore, `a new session started (${sessionBefore} → ${sessionAfter})`);
    const stages = h.pincer.store.events.trace(Number(clear)).map((e) => e.stage);
    assert.ok(stages.includes('command') && stages.includes('archived'), `the /clear trace records the command: ${stages.join(',')}`);
    assert.ok(!stages.includes('prompted'), 'the command was not given to the agent');
    assert.ok(Number(next) > Number(clear));
  });

  test('the global memory reaches a non-main group, which cannot write it', async () => {
    const shared = join(h.home, 'groups', 'global', 'CLAUDE.md');
    writeFileSync(shared, '# Shared\nEvery chat knows SHARED-MEMORY-MARKER.\n');
    const chat = 'local:family';
    const id = await h.send(chat, 'what is shared?');
    const reply = await h.reply(chat, id, 20_000);
    assert.equal(reply.text, 'I see the shared note.');
    const req = requestWith(h, 'what is shared');
    assert.match(everything(req), /Contents of \/workspace\/global\/CLAUDE\.md[^"]*SHARED-MEMORY-MARKER/, 'global CLAUDE.md is loaded');

    const write = await h.send(chat, 'change the shared memory');
    const refused = await h.reply(chat, reply.id, 20_000);
    assert.match(refused.text, /GLOBAL-READONLY/);
    assert.doesNotMatch(refused.text, /GLOBAL-WRITTEN/);
    assert.equal(readFileSync(shared, 'utf8'), '# Shared\nEvery chat knows SHARED-MEMORY-MARKER.\n', 'the shared memory is unchanged');
    assert.ok(Number(write) > Number(id));
  });

  test('/compact archives the conversation as Markdown, compacts it, and the group goes on', async () => {
    const chat = 'local:compact';
    registerGroup(
      h.pincer.store,
      h.pincer.layout,
      { chatId: chat, folder: 'compact', trigger: '@Andy', respondToAll: true, isMain: false },
      Date.now(),
    );
    h.pincer.store.groups.updateSettings(chat, { senderAllowlist: ['Zoë'] });
    const first = await h.send(chat, 'remember the secret word: PINEAPPLE-42', 'Zoë');
    const got = await h.reply(chat, first, 20_000);
    assert.equal(got.text, 'Got it, PINEAPPLE-42 it is.');
    const compactionsBefore = h.fake.requests.filter(isCompaction).length;

    const compact = await h.send(chat, '  /compact  ', 'Zoë');
    const done = await h.reply(chat, got.id, 30_000);
    assert.match(done.text, /^Compacted: the conversation so far is archived in conversations\/.+\.md\.$/);
    const summaryRequests = h.fake.requests.filter(isCompaction).slice(compactionsBefore);
    assert.equal(summaryRequests.length, 1, 'Claude Code asked the model for one summary');
    assert.match(history(summaryRequests[0] as ModelRequest), /PINEAPPLE-42/, 'the summary request carries the earlier exchange');
    assert.ok(
      !h.fake.requests.some((r) => /<message sender="[^"]*" time="[^"]*">\s*\/compact/.test(lastUserText(r))),
      'the command is not formatted into a <messages> prompt',
    );

    // Before compacting, the agent had a silent turn to keep what lasts: it wrote it, and the chat heard nothing of it.
    assert.equal(readFileSync(join(h.home, 'groups', 'compact', 'memory', 'kept.md'), 'utf8'), 'The secret word is PINEAPPLE-42.\n');
    assert.ok(!(await h.messages(chat)).some((m) => m.text.includes('done')), 'the flush turn says nothing to the chat');
    const flushAt = h.fake.requests.findIndex((r) => isAgentTurn(r) && promptText(r).includes('about to be compacted'));
    assert.ok(flushAt >= 0 && flushAt < h.fake.requests.indexOf(summaryRequests[0] as ModelRequest), 'the flush comes before the summary');

    const archive = done.text.match(ARCHIVE)?.[0];
    assert.ok(archive, `the reply names the archive: ${done.text}`);
    const markdown = readFileSync(join(h.home, 'groups', 'compact', archive), 'utf8');
    assert.match(markdown, /### Zoë · \d{4}-\d\d-\d\d \d\d:\d\d\n\nremember the secret word: PINEAPPLE-42\n/);
    assert.match(markdown, /### Andy · [^\n]+\n\nGot it, PINEAPPLE-42 it is\.\n/);
    assert.match(markdown, /- Archived because the chat sent \/compact/);

    // Claude Code keeps the flush turn's exchange after the summary, so a /compact right away compacts that (with no
    // flush of its own: nothing was said since); one more then finds too little, says so, and archives nothing.
    await h.send(chat, '/compact', 'Zoë');
    const second = await h.reply(chat, done.id, 30_000);
    assert.match(second.text, /^Compacted: /);
    const again = await h.send(chat, '/compact', 'Zoë');
    const nothing = await h.reply(chat, second.id, 20_000);
    assert.equal(nothing.text, 'Nothing was compacted: Not enough messages to compact.');
    assert.equal(readdirSync(join(h.home, 'groups', 'compact', 'conversations')).length, 2, 'a failed compaction leaves no archive');

    const more = await h.send(chat, 'are you still there?', 'Zoë');
    const answer = await h.reply(chat, nothing.id, 20_000);
    assert.equal(answer.text, 'Yes, with the summary.');
    const req = requestWith(h, 'still there');
    assert.ok(!history(req).includes('remember the secret word'), 'after compaction the old messages are replaced by the summary');
    const events = commandEvents(h, chat);
    assert.ok(
      events.some((d) => /^archived \d+ message\(s\) in conversations\//.test(d)),
      `an archived event is recorded: ${events.join(' | ')}`,
    );
    assert.ok(
      events.some((d) => d === 'memory written before compaction'),
      `the flush is on record: ${events.join(' | ')}`,
    );
    assert.equal(events.filter((d) => d.startsWith('memory written')).length, 1, 'right after a compaction there is nothing to flush');
    assert.ok(
      events.some((d) => d.startsWith('conversation compacted')),
      `a command event is recorded: ${events.join(' | ')}`,
    );
    assert.equal(h.pincer.store.groups.state(chat).sessionId !== null, true, 'the compacted session stays the stored one');
    assert.ok(
      events.some((d) => d === 'compaction failed: Not enough messages to compact.'),
      `the failed compaction is recorded: ${events.join(' | ')}`,
    );
    assert.ok(Number(more) > Number(again) && Number(again) > Number(compact));
  });

  test('/compact from a group without a sender allowlist is refused with who may; the agent never sees it', async () => {
    const chat = 'local:guests';
    const hello = await h.send(chat, 'hello there', 'Guest');
    const hi = await h.reply(chat, hello, 20_000);
    const requestsBefore = h.fake.requests.length;
    const compact = await h.send(chat, '/compact', 'Guest');
    const refusal = await h.reply(chat, hi.id, 20_000);
    assert.equal(
      refusal.text,
      "⚠️ /compact works only in the owner's main chat, or in a group for the senders on its sender allowlist. This group has no sender allowlist.",
    );
    assert.equal(h.fake.requests.length, requestsBefore, 'no model request for a refused command');
    assert.ok(!existsSync(join(h.home, 'groups', 'guests', 'conversations')), 'nothing was archived');
    const trace = h.pincer.store.events.trace(Number(compact));
    assert.ok(
      trace.some((e) => e.stage === 'command' && e.detail === '/compact from Guest refused'),
      `the refusal is traced: ${JSON.stringify(trace)}`,
    );
  });

  test('in a group with a sender allowlist, a listed sender may /clear; an unlisted one is not heard', async () => {
    const chat = 'local:club';
    registerGroup(
      h.pincer.store,
      h.pincer.layout,
      { chatId: chat, folder: 'club', trigger: '@Andy', respondToAll: false, isMain: false },
      Date.now(),
    );
    h.pincer.store.groups.updateSettings(chat, { senderAllowlist: ['alice'] });
    const hello = await h.send(chat, '@Andy hello club', 'alice');
    const hi = await h.reply(chat, hello, 20_000);
    assert.match(hi.text, /hello club/);

    // Not on the allowlist: kept as context like any message of theirs, never run, never shown to the agent.
    const stranger = await h.send(chat, '@Andy /clear', 'mallory');
    const sessionId = h.pincer.store.groups.state(chat).sessionId;
    const ask = await h.send(chat, '@Andy ping', 'alice');
    const pong = await h.reply(chat, hi.id, 20_000);
    assert.match(pong.text, /ping/);
    assert.equal(h.pincer.store.groups.state(chat).sessionId, sessionId, "the stranger's /clear did nothing");
    assert.ok(!lastUserText(requestWith(h, '@Andy ping')).includes('/clear'), 'the command-like message is not shown to the agent');
    assert.ok(
      h.pincer.store.events.trace(Number(stranger)).some((e) => e.stage === 'ignored'),
      "the stranger's message is traced as not answered",
    );

    const clear = await h.send(chat, '@Andy /clear', 'alice');
    const cleared = await h.reply(chat, pong.id, 20_000);
    assert.match(cleared.text, /^Cleared: a new conversation starts with your next message \(the old one is in conversations\/.+\.md\)\.$/);
    assert.equal(h.pincer.store.groups.state(chat).sessionId, null);
    const archives = readdirSync(join(h.home, 'groups', 'club', 'conversations'));
    assert.equal(archives.length, 1, `one archive: ${archives.join(', ')}`);
    assert.ok(Number(clear) > Number(ask));
  });
});

describe('commands after the idle close', { skip }, () => {
  test('/compact resumes the stored session to compact it; /clear needs no agent at all', async () => {
    // Prewarming would start the session again at once: here no agent may run between the commands.
    const h = await startHarness({ script, env: { PINCER_IDLE_TIMEOUT_SEC: '1', PINCER_PREWARM: '0' } });
    const chat = 'local:main';
    const closed = async () => {
      const deadline = Date.now() + 10_000;
      while (h.pincer.dispatcher.isLive(chat) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      assert.equal(h.pincer.dispatcher.isLive(chat), false, 'the idle session closed');
    };
    const spawned = () =>
      (h.pincer.store.db.prepare(`SELECT COUNT(*) AS n FROM events WHERE chat_id = ? AND stage = 'spawned'`).get(chat) as { n: number }).n;
    try {
      const first = await h.send(chat, 'remember the secret word: PINEAPPLE-42');
      const got = await h.reply(chat, first, 20_000);
      const sessionId = h.pincer.store.groups.state(chat).sessionId;
      await closed();

      await h.send(chat, '/compact');
      const done = await h.reply(chat, got.id, 30_000);
      assert.match(done.text, /^Compacted: the conversation so far is archived in conversations\/.+\.md\.$/);
      assert.equal(h.pincer.store.groups.state(chat).sessionId, sessionId, 'the resumed session was compacted, not a new one');
      await closed();

      const before = spawned();
      await h.send(chat, '/clear');
      const cleared = await h.reply(chat, done.id, 20_000);
      assert.match(
        cleared.text,
        /^Cleared: a new conversation starts with your next message \(the old one is in conversations\/.+\.md\)\.$/,
      );
      assert.equal(spawned(), before, 'no sandbox was started for /clear');
      const archives = readdirSync(join(h.home, 'groups', 'main', 'conversations'));
      assert.equal(archives.length, 2, `one archive per command: ${archives.join(', ')}`);

      await h.send(chat, 'are you still there?');
      const answer = await h.reply(chat, cleared.id, 20_000);
      assert.equal(answer.text, 'Yes.', 'the new session has no summary of the old conversation');
      assert.notEqual(h.pincer.store.groups.state(chat).sessionId, sessionId);
    } finally {
      await h.stop();
    }
  });
});

describe('a conversation grown large is compacted by pincer, memory first', { skip }, () => {
  test('past PINCER_COMPACT_AT_TOKENS: a silent memory turn, then the compaction, archived; the chat hears nothing of it', async () => {
    // The reply to the long talk reports a large prompt (as the real API would for a full conversation).
    const big = (req: ModelRequest) =>
      isAgentTurn(req) && !isToolResult(req) && lastUserText(req).includes('the long talk')
        ? { text: 'That was a long talk about PINEAPPLE-42.', usage: { input_tokens: 5_000 } }
        : script(req);
    const h = await startHarness({ script: big, env: { PINCER_COMPACT_AT_TOKENS: '2000', PINCER_PREWARM: '0' } });
    const chat = 'local:main';
    try {
      const first = await h.send(chat, 'remember the secret word: PINEAPPLE-42');
      const got = await h.reply(chat, first, 20_000);
      const long = await h.send(chat, 'the long talk');
      const answered = await h.reply(chat, got.id, 20_000);
      assert.equal(answered.text, 'That was a long talk about PINEAPPLE-42.');
      const events = async () => {
        const deadline = Date.now() + 30_000;
        for (;;) {
          const all = commandEvents(h, chat);
          if (all.some((d) => d.startsWith('conversation compacted by pincer')) || Date.now() > deadline) return all;
          await new Promise((r) => setTimeout(r, 100));
        }
      };
      const seen = await events();
      assert.ok(
        seen.some((d) => /^the conversation reached 5000 tokens: compacting it, memory first$/.test(d)),
        seen.join(' | '),
      );
      assert.ok(seen.includes('memory written before compaction'), seen.join(' | '));
      assert.ok(
        seen.some((d) => /^conversation compacted by pincer \(archived in conversations\/.+\.md\)$/.test(d)),
        seen.join(' | '),
      );
      assert.equal(readFileSync(join(h.home, 'groups', 'main', 'memory', 'kept.md'), 'utf8'), 'The secret word is PINEAPPLE-42.\n');
      const summaries = h.fake.requests.filter(isCompaction);
      assert.equal(summaries.length, 1, 'one compaction');
      // Nothing of it reached the chat, and the conversation goes on from the summary.
      assert.deepEqual(
        (await h.messages(chat, answered.id)).map((m) => m.text),
        [],
        'no message about the compaction',
      );
      const next = await h.send(chat, 'are you still there?');
      const after = await h.reply(chat, answered.id, 20_000);
      assert.equal(after.text, 'Yes, with the summary.');
      const trace = (await h.request('GET', `/api/v1/messages/${long}/trace`)).body.stages as Array<{
        stage: string;
        detail: string | null;
      }>;
      assert.ok(!trace.some((s) => s.stage === 'tool'), "the compaction's own tool calls are not the long talk's");
      assert.ok(Number(next) > Number(long));
    } finally {
      await h.stop();
    }
  });
});

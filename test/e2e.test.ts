// The whole path of a message: HTTP API → store → queue → real SDK → real Claude Code in real bubblewrap →
// host proxy → fake model → outbox → HTTP API.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAgentTurn, isToolResult, lastUserText, type ModelRequest } from './helpers/fake-model.js';
import { type Harness, REAL_KEY, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();

/** All text the model was shown in a request (user turns, tool results, mid-turn notes). */
function allText(req: ModelRequest): string {
  return JSON.stringify(req.body.messages ?? []);
}

describe('a message reaches a sandboxed agent and its reply comes back', { skip }, () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        const text = lastUserText(req);
        const history = JSON.stringify(req.body.messages ?? []);
        if (isToolResult(req) && history.includes('make the report')) {
          if (/Error: .*link\.txt/.test(text)) return { text: `link refused: ${text.slice(0, 300)}` };
          if (text.includes('File out/report.txt queued'))
            return { toolUse: { name: 'mcp__pincer__send_file', input: { path: '/workspace/group/out/link.txt' } } };
          if (!history.includes('"name":"mcp__pincer__send_file"'))
            return { toolUse: { name: 'mcp__pincer__send_file', input: { path: 'out/report.txt', caption: 'the report' } } };
        }
        if (text.includes('send me the report')) {
          const command = 'mkdir -p out && echo REPORT-BODY > out/report.txt && ln -sf /etc/passwd out/link.txt';
          return { toolUse: { name: 'Bash', input: { command, description: 'make the report' } } };
        }
        if (isToolResult(req) && text.includes('Message queued')) return { text: 'final after progress <internal>private note</internal>' };
        if (isToolResult(req)) return { text: `Tool said: ${text.slice(0, 3000)}` };
        if (text.includes('write the proof')) {
          const command = [
            'echo made-in-sandbox > proof.txt',
            `cat ${join(process.cwd(), 'package.json')} || echo OUTSIDE-UNREADABLE`,
            'cat /etc/shadow || echo SHADOW-UNREADABLE',
            'id -u',
            'env | grep -E "API_KEY|TOKEN" || true',
          ].join('; ');
          return { toolUse: { name: 'Bash', input: { command, description: 'prove the sandbox' } } };
        }
        if (text.includes('touch shared memory')) {
          const command = 'echo "note from $(pwd)" >> /workspace/global/CLAUDE.md && echo GLOBAL-WRITTEN || echo GLOBAL-READONLY';
          return { toolUse: { name: 'Bash', input: { command, description: 'write shared memory' } } };
        }
        if (text.includes('slow one')) return { text: 'slow answer', delayMs: 1500 };
        if (text.includes('report progress')) {
          return { toolUse: { name: 'mcp__pincer__send_message', input: { text: 'working on it', sender: 'Researcher' } } };
        }
        return { text: `echo: ${text.slice(-60)}` };
      },
    });
  });
  after(async () => h?.stop());

  test('the agent runs Bash in its own folder, cannot read outside it, and never sees the real key', async () => {
    const id = await h.send('local:main', 'please write the proof');
    const reply = await h.reply('local:main', id);
    assert.match(reply.text, /Tool said:/);
    assert.match(reply.text, /OUTSIDE-UNREADABLE/, 'a file outside the sandbox must not be readable');
    assert.match(reply.text, /SHADOW-UNREADABLE/);
    assert.match(reply.text, /ANTHROPIC_API_KEY=placeholder/);
    assert.doesNotMatch(reply.text, /REAL-KEY/);
    if (process.getuid?.() === 0)
      assert.match(reply.text, /\n1000001\n/, "root pincer runs the main group's agent as its own unprivileged uid (base + slot 1)");
    assert.equal(readFileSync(join(h.home, 'groups', 'main', 'proof.txt'), 'utf8'), 'made-in-sandbox\n');
    const agentRequests = h.fake.requests.filter(isAgentTurn);
    assert.ok(agentRequests.length >= 2);
    for (const r of h.fake.requests) assert.equal(r.headers['x-api-key'], REAL_KEY, 'the proxy swaps in the real key');
    // The trace records every stage of the message.
    const stages = h.pincer.store.events.trace(Number(id)).map((e) => e.stage);
    for (const s of ['received', 'engaged', 'queued', 'prompted', 'model_request', 'replied', 'delivered']) {
      assert.ok(stages.includes(s as never), `trace has ${s}: ${stages.join(',')}`);
    }
    // Its sandbox started on its path, or (the main group's, by default) ahead of it, recorded without a message.
    const ahead = h.pincer.store.db
      .prepare(`SELECT COUNT(*) AS n FROM events WHERE stage = 'spawned' AND chat_id = 'local:main' AND message_seq IS NULL`)
      .get() as { n: number };
    assert.ok(stages.includes('spawned') || ahead.n === 1, `a sandbox was started: ${stages.join(',')}; ${ahead.n} ahead`);
  });

  test('a follow-up goes into the live session: no second sandbox, the agent sees the earlier turn', async () => {
    const spawnedBefore = h.pincer.store.db.prepare(`SELECT COUNT(*) AS n FROM events WHERE stage = 'spawned'`).get() as { n: number };
    const first = await h.send('local:main', 'the slow one');
    await h.fake.nextRequest((r) => isAgentTurn(r) && lastUserText(r).includes('slow one'));
    const second = await h.send('local:main', 'and a follow-up');
    const r1 = await h.reply('local:main', first);
    assert.equal(r1.text, 'slow answer');
    const r2 = await h.reply('local:main', r1.id);
    assert.match(r2.text, /follow-up/);
    const spawnedAfter = h.pincer.store.db.prepare(`SELECT COUNT(*) AS n FROM events WHERE stage = 'spawned'`).get() as { n: number };
    assert.equal(spawnedAfter.n, spawnedBefore.n, 'no new sandbox for a message to a live session');
    const last = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('follow-up')).at(-1);
    assert.ok(last && allText(last).includes('slow answer'), 'the follow-up turn carries the earlier conversation');
    assert.ok(Number(second) > Number(first));
  });

  test('send_message posts into the chat mid-turn; <internal> text is never sent', async () => {
    const id = await h.send('local:main', 'please report progress');
    const progress = await h.reply('local:main', id);
    assert.equal(progress.text, 'Researcher: working on it');
    const final = await h.reply('local:main', progress.id);
    assert.equal(final.text, 'final after progress');
  });

  test('the group CLAUDE.md and the global CLAUDE.md reach the agent as memory', async () => {
    const { registerGroup } = await import('../src/service/groups.js');
    registerGroup(
      h.pincer.store,
      h.pincer.layout,
      { chatId: 'local:mem', folder: 'mem', trigger: '@Andy', respondToAll: true, isMain: false },
      Date.now(),
    );
    writeFileSync(join(h.home, 'groups', 'mem', 'CLAUDE.md'), '# Memory\nThe owner likes GROUP-MEMORY-MARKER.\n');
    writeFileSync(join(h.home, 'groups', 'global', 'CLAUDE.md'), '# Shared\nEveryone knows GLOBAL-MEMORY-MARKER.\n');
    const id = await h.send('local:mem', 'what do you remember?');
    await h.reply('local:mem', id);
    const req = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('what do you remember')).at(-1);
    assert.ok(req);
    const seen = JSON.stringify(req.body);
    assert.ok(seen.includes('GROUP-MEMORY-MARKER'), 'group memory is loaded');
    assert.ok(seen.includes('GLOBAL-MEMORY-MARKER'), 'global memory is loaded');
  });

  test('send_file delivers a file from the group folder; a link out of it is refused to the agent', async () => {
    const id = await h.send('local:main', 'send me the report');
    const file = await h.reply('local:main', id);
    assert.match(file.text, /the report\n\[file: out\/report\.txt\]/);
    const sent = h.pincer.store.db.prepare(`SELECT file_path, status FROM outbox WHERE file_path IS NOT NULL`).all();
    assert.deepEqual(sent, [{ file_path: 'out/report.txt', status: 'sent' }]);
    const final = await h.reply('local:main', file.id);
    assert.match(final.text, /link refused: Error: .*link\.txt/);
  });

  test('only the main group can write the shared memory', async () => {
    const fromMain = await h.send('local:main', 'touch shared memory');
    assert.match((await h.reply('local:main', fromMain)).text, /GLOBAL-WRITTEN/);
    const fromOther = await h.send('local:other', 'touch shared memory');
    const reply = await h.reply('local:other', fromOther);
    assert.match(reply.text, /GLOBAL-READONLY/);
    assert.doesNotMatch(reply.text, /GLOBAL-WRITTEN/);
    const shared = readFileSync(join(h.home, 'groups', 'global', 'CLAUDE.md'), 'utf8');
    assert.equal(shared.match(/note from/g)?.length, 1, "exactly one write landed: the main group's");
  });

  test('messages are escaped XML with sender and local time in the group timezone', async () => {
    const id = await h.send('local:main', 'a <b>tag</b> & "quote"', 'Zoë');
    await h.reply('local:main', id);
    const req = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('tag')).at(-1);
    assert.ok(req);
    const text = lastUserText(req);
    assert.match(text, /<messages timezone="Europe\/Berlin">/);
    assert.match(
      text,
      /<message sender="Zoë" time="\d{4}-\d\d-\d\d \d\d:\d\d">a &lt;b&gt;tag&lt;\/b&gt; &amp; &quot;quote&quot;<\/message>/,
    );
  });

  test('in a group with a trigger, only the trigger starts a turn, and the turn sees the context before it', async () => {
    h.pincer.store.transaction(() => {
      h.pincer.store.chats.seen({ id: 'local:team', channel: 'local', isGroup: true }, Date.now());
      h.pincer.store.groups.register(
        { chatId: 'local:team', folder: 'team', trigger: '@Andy', respondToAll: false, isMain: false },
        Date.now(),
        0,
      );
    });
    const quiet = await h.send('local:team', 'context without trigger', 'Bob');
    const requestsBefore = h.fake.requests.length;
    const loud = await h.send('local:team', '@andy what did Bob say?', 'Alice');
    const reply = await h.reply('local:team', loud);
    assert.match(reply.text, /what did Bob say/);
    const turn = h.fake.requests.slice(requestsBefore).find((r) => isAgentTurn(r) && lastUserText(r).includes('what did Bob say'));
    assert.ok(turn && lastUserText(turn).includes('context without trigger'), 'the prompt includes the message before the trigger');
    const quietStages = h.pincer.store.events.trace(Number(quiet)).map((e) => e.stage);
    assert.ok(quietStages.includes('ignored'));
    assert.ok(!quietStages.includes('queued'));
  });
});

describe('sessions resume and the concurrency cap holds', { skip }, () => {
  test('after the idle close, the next message resumes the same SDK session', async () => {
    const h = await startHarness({
      // Prewarming would start the session again at once (test/prewarm.test.ts covers that).
      env: { PINCER_IDLE_TIMEOUT_SEC: '1', PINCER_PREWARM: '0' },
      script: (req) => ({ text: isAgentTurn(req) ? `answer ${req.body.messages?.length ?? 0}` : 'side' }),
    });
    try {
      const first = await h.send('local:main', 'remember the word pelican');
      await h.reply('local:main', first);
      const sessionId = h.pincer.store.groups.state('local:main').sessionId;
      assert.ok(sessionId);
      const deadline = Date.now() + 10_000;
      while (h.pincer.dispatcher.isLive('local:main') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
      assert.equal(h.pincer.dispatcher.isLive('local:main'), false, 'the idle session closed');
      const second = await h.send('local:main', 'what was the word?');
      await h.reply('local:main', second);
      assert.equal(h.pincer.store.groups.state('local:main').sessionId, sessionId);
      const req = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('what was the word')).at(-1);
      assert.ok(req && allText(req).includes('pelican'), 'the resumed session carries the first turn');
    } finally {
      await h.stop();
    }
  });

  test('with MAX_CONCURRENT_AGENTS=2, three busy groups never run three sandboxes at once', async () => {
    const h = await startHarness({
      env: { MAX_CONCURRENT_AGENTS: '2', PINCER_IDLE_TIMEOUT_SEC: '1' },
      script: (req) => (isAgentTurn(req) ? { text: 'done', delayMs: 700 } : { text: 'side' }),
    });
    try {
      const choice = h.pincer.runtime;
      assert.ok(choice.ok);
      const runtime = choice.runtime;
      const spawn = runtime.spawn.bind(runtime);
      let live = 0;
      let peak = 0;
      runtime.spawn = (spec) => {
        const child = spawn(spec);
        live++;
        peak = Math.max(peak, live);
        child.on('exit', () => live--);
        return child;
      };
      const ids = await Promise.all(['a', 'b', 'c'].map((g) => h.send(`local:${g}`, `work for ${g}`)));
      const replies = await Promise.all(['a', 'b', 'c'].map((g, i) => h.reply(`local:${g}`, ids[i] as string)));
      assert.deepEqual(
        replies.map((r) => r.text),
        ['done', 'done', 'done'],
      );
      assert.equal(peak, 2, `peak live sandboxes was ${peak}`);
    } finally {
      await h.stop();
    }
  });
});

// Agents started ahead of a message (prewarm): the pool of recently active groups, a hint from a chat's
// activity, and the bounds (slots, memory, switched off). Real pincer, real bubblewrap sandboxes, real
// Claude Code against the fake model; "started ahead" is read from the store's events: a `spawned` event
// with no message of its own.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { Channel, InboundSink } from '../src/channels/types.js';
import { HARNESS_TOKEN, type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();

interface SpawnEvent {
  messageSeq: number | null;
  detail: string | null;
}

function spawns(h: Harness, chatId: string): SpawnEvent[] {
  return h.pincer.store.db
    .prepare<[string], SpawnEvent>(
      `SELECT message_seq AS messageSeq, detail FROM events WHERE chat_id = ? AND stage = 'spawned' ORDER BY id`,
    )
    .all(chatId);
}

const ahead = (h: Harness, chatId: string) => spawns(h, chatId).filter((e) => e.messageSeq === null);

function stagesOf(h: Harness, seq: number): string[] {
  return h.pincer.store.events.trace(seq).map((e) => e.stage);
}

async function waitFor(what: string, check: () => boolean, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/** A pincer of its own for one test, stopped after it. */
async function withPincer(env: Record<string, string>, run: (h: Harness) => Promise<void>): Promise<void> {
  const h = await startHarness({ env });
  try {
    await run(h);
  } finally {
    await h.stop();
  }
}

/** A channel that only hands its sink to the test, to play a platform that says someone is typing. */
class HintChannel implements Channel {
  readonly name = 'hint';
  readonly maxTextLength = 4000;
  sink: InboundSink | undefined;
  owns(chatId: string): boolean {
    return chatId.startsWith('hint:');
  }
  async start(sink: InboundSink): Promise<void> {
    this.sink = sink;
  }
  async send(): Promise<{ platformId: string }> {
    return { platformId: 'sent' };
  }
  async stop(): Promise<void> {}
}

describe('prewarm: agents started ahead of a message', { skip }, () => {
  describe('the pool of recently active groups', () => {
    let h: Harness;
    before(async () => {
      h = await startHarness({ env: { PINCER_PREWARM: '1', PINCER_IDLE_TIMEOUT_SEC: '2' } });
    });
    after(async () => {
      await h?.stop();
    });

    test('at start the main group gets its agent, and its first message starts no sandbox', async () => {
      await waitFor('the main group to be started ahead', () => ahead(h, 'local:main').length === 1);
      assert.match(ahead(h, 'local:main')[0]?.detail ?? '', /ahead of a message/, 'the event says why no message is attached');
      // Started and prepared (MCP servers, system prompt, tools) without a word to the model.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      assert.equal(h.fake.requests.length, 0, 'an agent started ahead sends the model nothing');
      const id = await h.send('local:main', 'hello, are you there?');
      const reply = await h.reply('local:main', id);
      assert.equal(reply.text, 'ok', 'the prewarmed agent answered');
      const stages = stagesOf(h, Number(id));
      assert.ok(stages.includes('model_request'), `the message reached the model: ${stages.join(' → ')}`);
      assert.ok(!stages.includes('spawned'), `no sandbox was started on the message's path: ${stages.join(' → ')}`);
      assert.equal(spawns(h, 'local:main').length, 1, 'one sandbox in all so far: the one started ahead');
    });

    test('when its session ends (idle timeout), the most recently active group is started again, and a later message finds it ready', async () => {
      // The first test's session idles out after 2 s; the pool starts it again.
      await waitFor('the main group to be started ahead a second time', () => ahead(h, 'local:main').length >= 2, 20_000);
      const id = await h.send('local:main', 'still there?');
      await h.reply('local:main', id);
      assert.ok(!stagesOf(h, Number(id)).includes('spawned'), 'the second message found its agent started ahead too');
      // The session started again ahead resumed the stored conversation: the new turn carries the first one.
      const request = h.fake.requests.filter((r) => JSON.stringify(r.body.messages ?? []).includes('still there?')).at(0);
      assert.match(JSON.stringify(request?.body.messages ?? []), /hello, are you there\?/, 'the resumed conversation reached the model');
      const turns = h.pincer.store.db
        .prepare<[string], { status: string; n: number }>('SELECT status, COUNT(*) AS n FROM turns WHERE chat_id = ? GROUP BY status')
        .all('local:main');
      assert.deepEqual(turns, [{ status: 'success', n: 2 }], 'both turns ran in prewarmed sessions and succeeded');
    });

    test('the pool follows activity: another group answered last is the one kept warm', async () => {
      const id = await h.send('local:other', 'a new chat');
      await h.reply('local:other', id);
      await waitFor('local:other to be started ahead after its session idled out', () => ahead(h, 'local:other').length >= 1, 20_000);
      assert.ok(h.pincer.dispatcher.isLive('local:other'), 'the most recently active group has a live agent');
    });
  });

  describe('hints from a chat', () => {
    let h: Harness;
    const hint = new HintChannel();
    const say = (platformId: string, text: string) =>
      hint.sink?.ingest({
        chatId: 'hint:team',
        channel: 'hint',
        platformId,
        senderId: 'u1',
        senderName: 'Ann',
        text,
        sentAt: Date.now(),
        isGroup: true,
      });
    before(async () => {
      // A 1 s idle timeout: an agent no message uses goes away soon, so that each hint's effect shows.
      h = await startHarness({ env: { PINCER_PREWARM: '1', PINCER_IDLE_TIMEOUT_SEC: '1' }, channels: [hint] });
      await say('p0', 'hello all');
    });
    after(async () => {
      await h?.stop();
    });

    test('joining a chat starts its agent ahead of its first message', async () => {
      assert.equal(spawns(h, 'hint:team').length, 0, 'nothing started for a chat not joined');
      // A group that answers its trigger only, joined through the control API.
      const joined = await h.request('POST', '/api/v1/groups', { chatId: 'hint:team', folder: 'team', trigger: '@Andy' });
      assert.equal(joined.status, 201, `joined: ${JSON.stringify(joined.body)}`);
      await waitFor('the joined group to be started ahead', () => ahead(h, 'hint:team').length === 1);
      // Unused, it idles out; the pool keeps the main group (no group has had a turn), not this one.
      await waitFor('the unused agent to idle out', () => !h.pincer.dispatcher.isLive('hint:team'), 20_000);
    });

    test('someone typing starts the agent; a message without the trigger keeps it; the trigger message then starts no sandbox', async () => {
      const before = ahead(h, 'hint:team').length;
      hint.sink?.typing('hint:team');
      await waitFor('the typing hint to start the group agent', () => ahead(h, 'hint:team').length === before + 1);
      await say('p1', 'talking among ourselves');
      const asked = await say('p2', '@Andy what is 2+2?');
      assert.equal(asked?.engaged, true, 'the trigger engaged the agent');
      const seq = asked?.seq ?? 0;
      await waitFor('the turn to be answered', () => stagesOf(h, seq).includes('replied'));
      assert.ok(!stagesOf(h, seq).includes('spawned'), `no sandbox on the path: ${stagesOf(h, seq).join(' → ')}`);
      assert.equal(spawns(h, 'hint:team').length, before + 1, 'the agent started by the hint was the one that answered');
    });

    test('a message without the trigger starts the agent of a group whose session ended', async () => {
      // The main group answers last, so the pool keeps it, and this group's agent idles out for good.
      const id = await h.send('local:main', 'the newest turn is mine');
      await h.reply('local:main', id);
      await waitFor('the group agent to idle out', () => !h.pincer.dispatcher.isLive('hint:team'), 20_000);
      const count = ahead(h, 'hint:team').length;
      await say('p3', 'just chatting, no trigger');
      await waitFor('the message to start the agent', () => ahead(h, 'hint:team').length === count + 1);
    });

    test('typing in a new local chat (the web page, pincer chat) joins it and starts its agent before its first message', async () => {
      const res = await fetch(`${h.base}/api/v1/typing`, {
        method: 'POST',
        headers: { authorization: `Bearer ${HARNESS_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ chat: 'local:fresh' }),
      });
      assert.equal(res.status, 204, await res.text());
      await waitFor('the new chat to be started ahead', () => ahead(h, 'local:fresh').length === 1);
      const id = await h.send('local:fresh', 'my very first message');
      await h.reply('local:fresh', id);
      assert.ok(
        !stagesOf(h, Number(id)).includes('spawned'),
        `no sandbox on the first message's path: ${stagesOf(h, Number(id)).join(' → ')}`,
      );
    });

    test('a hint for a chat pincer has not joined starts nothing', async () => {
      hint.sink?.typing('hint:stranger');
      await new Promise((resolve) => setTimeout(resolve, 500));
      assert.equal(spawns(h, 'hint:stranger').length, 0, 'no agent for an unjoined chat');
      assert.ok(!h.pincer.dispatcher.isLive('hint:stranger'), 'no lane for an unjoined chat');
    });
  });

  describe('bounds', () => {
    test('PINCER_PREWARM=0: nothing is started ahead, and the first message starts its sandbox', async () => {
      await withPincer({ PINCER_PREWARM: '0' }, async (h) => {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        assert.equal(spawns(h, 'local:main').length, 0, 'no agent at start');
        const id = await h.send('local:main', 'hi');
        await h.reply('local:main', id);
        assert.ok(stagesOf(h, Number(id)).includes('spawned'), 'the message started its own sandbox');
      });
    });

    test('too little memory available: nothing is started ahead', async () => {
      // More than any machine has: the bound always refuses.
      await withPincer({ PINCER_PREWARM: '1', PINCER_PREWARM_MIN_FREE_MB: String(1024 * 1024 * 1024) }, async (h) => {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        assert.equal(spawns(h, 'local:main').length, 0, 'no agent at start without the memory for it');
        assert.ok(!h.pincer.dispatcher.isLive('local:main'), 'no lane holds a slot');
      });
    });

    test('an agent started ahead that crashes is not started again and again', async () => {
      // 16 MB cannot hold Claude Code: each sandbox dies as it starts.
      await withPincer({ PINCER_PREWARM: '1', PINCER_SANDBOX_MEMORY_MB: '16' }, async (h) => {
        await waitFor('the main group to be started ahead', () => ahead(h, 'local:main').length === 1);
        await waitFor('its crash to end the lane', () => !h.pincer.dispatcher.isLive('local:main'), 20_000);
        await new Promise((resolve) => setTimeout(resolve, 2000));
        assert.equal(ahead(h, 'local:main').length, 1, 'no second start within the pause after a crash');
        assert.ok(!h.pincer.dispatcher.isLive('local:main'), 'no lane holds a slot');
      });
    });

    test("a change to the group's settings ends the agent started with the old ones, and one with the new ones starts", async () => {
      // A long idle timeout: only the change can end the first agent.
      await withPincer({ PINCER_PREWARM: '1', PINCER_IDLE_TIMEOUT_SEC: '600' }, async (h) => {
        await waitFor('the main group to be started ahead', () => ahead(h, 'local:main').length === 1);
        const changed = await h.request('PATCH', '/api/v1/groups/main', { timezone: 'Asia/Tokyo' });
        assert.equal(changed.status, 200, JSON.stringify(changed.body));
        await waitFor('an agent with the new settings', () => ahead(h, 'local:main').length === 2, 10_000);
        const id = await h.send('local:main', 'what time is it?');
        await h.reply('local:main', id);
        assert.ok(!stagesOf(h, Number(id)).includes('spawned'), 'the message found the new agent ready');
        const request = h.fake.requests.filter((r) => JSON.stringify(r.body.messages ?? []).includes('what time is it?')).at(0);
        assert.match(JSON.stringify(request?.body.messages ?? []), /\+09:00|Asia\/Tokyo|JST/, 'the prompt is in the new time zone');
      });
    });

    test('one slot: the agent started ahead gives it up to a group with a message', async () => {
      await withPincer({ PINCER_PREWARM: '1', MAX_CONCURRENT_AGENTS: '1' }, async (h) => {
        await waitFor('the main group to be started ahead', () => ahead(h, 'local:main').length === 1);
        const id = await h.send('local:elsewhere', 'I need the only slot');
        const reply = await h.reply('local:elsewhere', id, 60_000);
        assert.equal(reply.text, 'ok', 'the other group was answered');
        assert.ok(stagesOf(h, Number(id)).includes('spawned'), 'it started its own sandbox in the freed slot');
      });
    });
  });
});

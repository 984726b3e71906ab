// The model API misbehaves (the fake answers 429, 529, 500, cuts the stream, or never answers) under a real
// pincer with a real Claude Code in its sandbox. A fault that passes is retried and the user gets the answer;
// one that lasts ends the turn with one plain ⚠️ line; either way the group goes on with the next message.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isAgentTurn, lastUserText, type ModelReply, type ModelRequest } from './helpers/fake-model.js';
import { type Harness, REAL_KEY, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();

/** Claude Code's retries in these tests (PINCER_MODEL_MAX_RETRIES): each request is sent up to 3 times. */
const RETRIES = 2;
const TRIES = RETRIES + 1;

interface Fault {
  name: string;
  reply: ModelReply;
  /** The plain words the chat's line must say. */
  says: RegExp;
  /** The least time between two tries: the `retry-after` asked for, or Claude Code's own back-off (≥ 500 ms). */
  minGapMs: number;
}

const FAULTS: Fault[] = [
  {
    name: '429 with retry-after',
    reply: { status: 429, error: 'Number of request tokens has exceeded your per-minute rate limit', headers: { 'retry-after': '1' } },
    says: /the model service is rate limiting requests \(429\); tried 3 times\./,
    minGapMs: 1000,
  },
  {
    name: '529 overloaded',
    reply: { status: 529, error: 'Overloaded' },
    says: /the model service is overloaded \(529\); tried 3 times\./,
    minGapMs: 450,
  },
  {
    name: '500',
    reply: { status: 500, error: 'Internal server error' },
    says: /the model service had an internal error \(500\); tried 3 times\./,
    minGapMs: 450,
  },
  {
    name: 'a stream cut midway',
    reply: { cutAfterEvents: 3 },
    says: /the connection to the model service was cut off before the answer was complete; tried 3 times\./,
    minGapMs: 450,
  },
];

/** The agent-loop requests that carried a message (retries included), oldest first. */
function requestsFor(h: Harness, marker: string): ModelRequest[] {
  return h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes(marker));
}

for (const fault of FAULTS) {
  test(`model fault: ${fault.name} — retried when it passes, one clear line when it lasts`, { skip }, async () => {
    const h = await startHarness({
      env: { PINCER_MODEL_MAX_RETRIES: String(RETRIES) },
      script: (req) => {
        const text = lastUserText(req);
        // The newest marker first: a request may also carry earlier turns of the conversation.
        if (text.includes('m3-passing')) return (req.attempt ?? 1) <= 2 ? fault.reply : { text: 'answered after two failures' };
        if (text.includes('m2-healthy')) return { text: 'healthy again' };
        if (text.includes('m1-lasting')) return fault.reply;
        return { text: 'side' };
      },
    });
    try {
      // (b) A fault that lasts: one line, in plain words, after Claude Code's retries.
      const m1 = await h.send('local:main', 'm1-lasting');
      const failed = await h.reply('local:main', m1, 30_000);
      const raw = h.pincer.store.turns.recent('local:main', 1)[0]?.error;
      assert.match(failed.text, /^⚠️ The agent could not finish: /, `a failure line: ${failed.text} (raw: ${raw})`);
      assert.match(failed.text, fault.says, `what happened, in plain words (raw: ${raw})`);
      assert.doesNotMatch(failed.text, /\n/, 'one line');
      assert.doesNotMatch(failed.text, /[{}]|3129|REAL-KEY/, 'no JSON, no in-sandbox port, no key');
      assert.ok(!failed.text.includes(REAL_KEY), 'the real key is never shown');
      const lasting = requestsFor(h, 'm1-lasting').filter((r) => r.body.stream !== false);
      assert.equal(lasting.length, TRIES, `Claude Code tried ${lasting.length} times, expected ${TRIES}`);

      // The fake is healthy again: the next message is answered normally.
      const m2 = await h.send('local:main', 'm2-healthy');
      const healthy = await h.reply('local:main', m2, 30_000);
      assert.equal(healthy.text, 'healthy again');

      // (a) A fault that passes: two failures, then the normal answer, with back-off between the tries.
      const m3 = await h.send('local:main', 'm3-passing');
      const passed = await h.reply('local:main', m3, 30_000);
      assert.equal(passed.text, 'answered after two failures');
      const tries = requestsFor(h, 'm3-passing');
      assert.deepEqual(
        tries.map((r) => r.attempt),
        [1, 2, 3],
        'the same request, sent three times',
      );
      const gaps = tries.slice(1).map((r, i) => r.receivedAt - (tries[i] as ModelRequest).receivedAt);
      for (const gap of gaps) assert.ok(gap >= fault.minGapMs, `tries ${Math.round(gap)} ms apart, expected ≥ ${fault.minGapMs} ms`);

      const replies = (await h.messages('local:main')).filter((m) => m.fromAssistant).map((m) => m.text);
      assert.equal(replies.length, 3, `one reply per message: ${JSON.stringify(replies)}`);
      const statuses = h.pincer.store.turns.recent('local:main', 5).map((t) => t.status);
      assert.deepEqual(statuses, ['success', 'success', 'error']);
    } finally {
      await h.stop();
    }
  });
}

test('model fault: a request that is never answered ends at the turn timeout, and the group continues', { skip }, async () => {
  const h = await startHarness({
    env: { PINCER_TURN_TIMEOUT_SEC: '2', PINCER_MODEL_MAX_RETRIES: String(RETRIES) },
    script: (req) => {
      const text = lastUserText(req);
      if (text.includes('after the hang')) return { text: 'answered after the hang' };
      if (text.includes('hang-forever')) return { hang: true };
      return { text: 'side' };
    },
  });
  try {
    const id = await h.send('local:main', 'hang-forever');
    const started = Date.now();
    const reply = await h.reply('local:main', id, 30_000);
    assert.match(reply.text, /^⚠️ That took longer than 2 s and was stopped/);
    assert.ok(Date.now() - started < 10_000, `the timeout line came after ${Date.now() - started} ms`);
    // Claude Code's own request timeout (API_TIMEOUT_MS, 600 s by default) had not fired: one try only.
    const hung = requestsFor(h, 'hang-forever');
    assert.equal(hung.length, 1, `the hung request was sent ${hung.length} times`);
    // The sandbox is killed with the turn, and the proxy drops the request upstream with it.
    const deadline = Date.now() + 5000;
    while (hung[0]?.closedAt === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    assert.notEqual(hung[0]?.closedAt, undefined, 'the hung request is closed once the sandbox is gone');

    const next = await h.send('local:main', 'after the hang');
    const ok = await h.reply('local:main', next, 30_000);
    assert.equal(ok.text, 'answered after the hang');
    const statuses = h.pincer.store.turns.recent('local:main', 5).map((t) => t.status);
    assert.deepEqual(statuses, ['success', 'timeout']);
  } finally {
    await h.stop();
  }
});

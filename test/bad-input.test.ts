// The bad input corpus, run through the local API and each channel's fake: oversized, binary, malformed and
// mis-encoded bodies; emoji and right-to-left text in and out; a burst of 10,000 messages into one group; malformed
// tool arguments from the agent; links, FIFOs and paths out of the group folder named to send_file.
// Nothing crashes, nothing is lost, each refusal is explained, and the group answers the next message.
//
// A case marked TODO documents a finding in code this suite does not own: it states the behaviour wanted and
// fails (without failing the run) until that code is fixed; the reason names the fix.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { pino } from 'pino';
import { MAX_TEXT_CHARS } from '../src/channels/local/http-api.js';
import { TELEGRAM_MAX_TEXT } from '../src/channels/telegram.js';
import { WhatsAppChannel } from '../src/channels/whatsapp.js';
import { escapeXml } from '../src/router/prompt.js';
import { PROMPT_MESSAGE_LIMIT } from '../src/service/group-lane.js';
import {
  digestOf,
  EMOJI_RTL,
  echoReply,
  FAMILY,
  hardText,
  hasLoneSurrogate,
  lastPromptMessage,
  longText,
  promptMessages,
  textOfUnits,
} from './helpers/bad-input.js';
import { FakeDiscord } from './helpers/fake-discord.js';
import { isAgentTurn, isToolResult, lastUserText, type ModelReply, type ModelScript } from './helpers/fake-model.js';
import { startFakeSignalCli } from './helpers/fake-signal-cli.js';
import { messageEvent, startFakeSlack } from './helpers/fake-slack.js';
import { type FakeTelegram, startFakeTelegram } from './helpers/fake-telegram.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';
import { FakeWaSocket, SELF, SELF_CHAT, selfChat } from './helpers/whatsapp-fixtures.js';

const skip = await sandboxUnavailable();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** What the host's /etc/passwd starts with: no outbound message or upload may ever carry it. */
const PASSWD = readFileSync('/etc/passwd', 'utf8').split('\n')[0] ?? 'root:x:0:0';

async function until<T>(probe: () => T | undefined | false | Promise<T | undefined | false>, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** Inbound (not assistant) messages stored in a chat. */
const inboundCount = (h: Harness, chat: string) =>
  (h.pincer.store.db.prepare('SELECT COUNT(*) AS n FROM messages WHERE chat_id = ? AND from_assistant = 0').get(chat) as { n: number }).n;

/** A stored message with its text's bytes as SQLite holds them. */
const storedRow = (h: Harness, seq: number) =>
  h.pincer.store.db.prepare('SELECT text, hex(text) AS hex, sender_name FROM messages WHERE seq = ?').get(seq) as
    | { text: string; hex: string; sender_name: string }
    | undefined;

const utf8Hex = (s: string) => Buffer.from(s, 'utf8').toString('hex').toUpperCase();

/** POSTs a raw body (string or bytes, never re-encoded) to /api/v1/messages. */
async function post(h: Harness, body: string | Buffer, contentType = 'application/json') {
  const res = await fetch(`${h.base}/api/v1/messages`, {
    method: 'POST',
    headers: { authorization: 'Bearer test-token-0123456789', ...(contentType ? { 'content-type': contentType } : {}) },
    body,
  });
  const answer = (await res.json()) as { id?: string; error?: string };
  return { status: res.status, ...answer };
}

/** Resolves once every inbound message of the chat is answered and every reply delivered (or the chat has no group). */
async function settled(h: Harness, chat: string): Promise<void> {
  const { store } = h.pincer;
  await until(
    () => {
      if (!store.groups.get(chat)) return true;
      const last =
        store.messages
          .latest(chat, 1_000)
          .filter((m) => !m.fromAssistant)
          .at(-1)?.seq ?? 0;
      const pending = store.db.prepare(`SELECT COUNT(*) AS n FROM outbox WHERE chat_id = ? AND status = 'pending'`).get(chat) as {
        n: number;
      };
      return store.groups.state(chat).cursor >= last && pending.n === 0;
    },
    60_000,
    `${chat} to settle`,
  );
}

/** After a case, the group still answers an ordinary message (the echo with a sandbox, the reason without one). */
async function stillAnswers(h: Harness, chat: string, tag: string): Promise<void> {
  const text = `ping after ${tag}`.replace(/[^\p{L}\p{N}]+/gu, ' ').trim();
  const id = await h.send(chat, text);
  // Replies to earlier messages may still come first: wait for the one that answers this message.
  const expected = (t: string) => (skip ? t.startsWith('⚠️') : t === text);
  await until(
    async () => (await h.messages(chat, id)).some((m) => m.fromAssistant && expected(m.text)),
    60_000,
    `${chat} to answer the message after ${tag}`,
  );
}

/** Everything pincer stored as sent by the assistant, in every chat. */
const assistantTexts = (h: Harness) =>
  (h.pincer.store.db.prepare('SELECT text FROM messages WHERE from_assistant = 1').all() as Array<{ text: string }>).map((r) => r.text);

// ─── the local API ─────────────────────────────────────────────────────────────────────────────────────────────

interface ApiRow {
  name: string;
  body: string | Buffer;
  contentType?: string;
  status: number;
  /** What the error says (it names the field or the limit); none for an accepted body. */
  error?: RegExp;
}

const CHAT = 'local:bad';
const json = (v: unknown) => JSON.stringify(v);
/** Invalid UTF-8: a lone continuation byte, an overlong encoding, a truncated sequence, and 0xFF. */
const INVALID_UTF8 = Buffer.concat([
  Buffer.from(`{"chat":"${CHAT}","text":"bad `),
  Buffer.from([0x80, 0xc0, 0xaf, 0xe2, 0x82, 0xff]),
  Buffer.from(' bytes"}'),
]);

const apiRows: ApiRow[] = [
  { name: '1 MB of text', body: json({ chat: CHAT, text: 'x'.repeat(1 << 20) }), status: 413, error: /larger than 665536 bytes/ },
  {
    name: '1 MB of emoji and RTL text',
    body: json({ chat: CHAT, text: longText(1 << 20) }),
    status: 413,
    error: /larger than 665536 bytes/,
  },
  {
    name: 'one UTF-16 unit over the text limit',
    body: json({ chat: CHAT, text: 'y'.repeat(MAX_TEXT_CHARS + 1) }),
    status: 400,
    error: new RegExp(`^text: must be at most ${MAX_TEXT_CHARS} characters$`),
  },
  { name: '1 MB raw body that is not JSON', body: Buffer.from(longText(1 << 20)).subarray(0, 1 << 20), status: 413, error: /larger than/ },
  {
    name: 'binary (bytes 0-255) as JSON',
    body: Buffer.from(Array.from({ length: 4096 }, (_, i) => i % 256)),
    status: 400,
    error: /^body is not valid UTF-8$/,
  },
  {
    name: 'binary as application/octet-stream',
    body: Buffer.from(Array.from({ length: 4096 }, (_, i) => (i * 7) % 256)),
    contentType: 'application/octet-stream',
    status: 415,
    error: /Unsupported Media Type/,
  },
  { name: 'a NUL character in the text', body: json({ chat: CHAT, text: 'a\u0000b' }), status: 400, error: /^text: must not contain NUL/ },
  {
    name: 'a raw NUL byte inside the JSON',
    body: Buffer.from(`{"chat":"${CHAT}","text":"a\u0000b"}`),
    status: 400,
    error: /not valid JSON/,
  },
  { name: 'truncated JSON', body: `{"chat":"${CHAT}","text":"cut off`, status: 400, error: /JSON/ },
  { name: 'an empty body', body: '', status: 400, error: /Body cannot be empty/ },
  { name: 'a JSON string, not an object', body: '"hello"', status: 400, error: /^body: .*expected object, received string$/ },
  { name: 'a JSON array', body: '[{"chat":"local:bad","text":"hi"}]', status: 400, error: /^body: .*expected object, received array$/ },
  { name: 'JSON null', body: 'null', status: 400, error: /^body: .*expected object, received null$/ },
  { name: 'a number for text', body: json({ chat: CHAT, text: 42 }), status: 400, error: /^text: .*expected string, received number$/ },
  {
    name: 'an object for text',
    body: json({ chat: CHAT, text: { t: 'x' } }),
    status: 400,
    error: /^text: .*expected string, received object$/,
  },
  { name: 'no chat', body: json({ text: 'hi' }), status: 400, error: /^chat: .*expected string, received undefined$/ },
  {
    name: 'a number for id',
    body: json({ chat: CHAT, text: 'hi', id: 7 }),
    status: 400,
    error: /^id: .*expected string, received number$/,
  },
  { name: 'an extra field', body: json({ chat: CHAT, text: 'hi', admin: true }), status: 400, error: /^body: Unrecognized key: "admin"$/ },
  {
    name: 'an empty array for sender (only the type is wrong)',
    body: json({ chat: CHAT, text: 'hi', sender: [] }),
    status: 400,
    error: /^sender: Invalid input: expected string, received array$/,
  },
  {
    name: 'invalid UTF-8 bytes in a raw body',
    body: INVALID_UTF8,
    status: 400,
    error: /UTF-8/,
  },
  {
    name: 'a lone surrogate (\\ud800) in the text',
    body: `{"chat":"${CHAT}","text":"lone \\ud800 surrogate"}`,
    status: 400,
    error: /text: .*(surrogate|Unicode|UTF)/,
  },
  {
    name: `${MAX_TEXT_CHARS} CJK characters written as \\u escapes (within the text limit)`,
    body: `{"chat":"${CHAT}","text":"${'\\u4e2d'.repeat(MAX_TEXT_CHARS)}"}`,
    status: 202,
  },
];

describe('bad input through the local API', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ script: echoReply });
  });
  after(async () => h?.stop());

  for (const row of apiRows) {
    test(`${row.status === 202 ? 'accepted' : 'refused'}: ${row.name}`, async () => {
      await settled(h, CHAT);
      const before = inboundCount(h, CHAT);
      const res = await post(h, row.body, row.contentType);
      assert.equal(res.status, row.status, `${row.name}: answered ${res.status} ${res.error ?? ''}`);
      if (row.error) assert.match(res.error ?? '(no error)', row.error, 'the refusal says what is wrong');
      assert.equal(inboundCount(h, CHAT), before + (row.status === 202 ? 1 : 0), row.status === 202 ? 'stored once' : 'nothing stored');
      const health = await fetch(`${h.base}/healthz`);
      assert.equal(health.status, 200, 'pincer is up');
      await stillAnswers(h, CHAT, row.name);
    });
  }

  test('a lone surrogate that gets in is never stored as invalid UTF-8: one U+FFFD, as it reads back', async () => {
    await settled(h, CHAT);
    const res = await post(h, `{"chat":"${CHAT}","text":"high \\ud800 low \\udfff pair \\ud83d\\ude00"}`);
    if (res.status === 400) return; // the API refuses it (the fix described above): nothing to store
    assert.equal(res.status, 202, `answered ${res.status} ${res.error ?? ''}`);
    const row = storedRow(h, Number(res.id));
    const expected = 'high \uFFFD low \uFFFD pair 😀';
    assert.equal(row?.text, expected, 'each unpaired surrogate became one U+FFFD; the pair stayed');
    assert.equal(row?.hex, utf8Hex(expected), 'SQLite holds valid UTF-8 (no ED A0 80 surrogate bytes)');
    await stillAnswers(h, CHAT, 'lone surrogate');
  });

  test('emoji, RTL with bidi marks and combining characters: stored byte for byte and answered byte for byte', { skip }, async () => {
    const sender = 'זואי 🦊 Zoë';
    await settled(h, CHAT);
    const res = await post(h, json({ chat: CHAT, text: EMOJI_RTL, sender }));
    assert.equal(res.status, 202, `answered ${res.status} ${res.error ?? ''}`);
    const row = storedRow(h, Number(res.id));
    assert.equal(row?.hex, utf8Hex(EMOJI_RTL), 'the stored bytes are the UTF-8 of what was sent');
    assert.equal(row?.sender_name, sender, 'the sender name is stored intact too');
    const reply = await h.reply(CHAT, res.id ?? '');
    assert.equal(reply.text, EMOJI_RTL, 'the model saw it exactly and its echo came back exactly');
    const prompt = h.fake.requests.filter((r) => isAgentTurn(r) && lastPromptMessage(r) === EMOJI_RTL).at(-1);
    assert.ok(prompt, 'a prompt carried the text');
    assert.ok(lastUserText(prompt).includes(`sender="${escapeXml(sender)}"`), 'and the sender name, intact');
    const [listed] = await h.messages(CHAT, String(Number(res.id) - 1));
    assert.equal(listed?.text, EMOJI_RTL, 'the API lists it intact');
  });

  test(`a text of exactly ${MAX_TEXT_CHARS} UTF-16 units is stored intact and reaches the model intact`, { skip }, async () => {
    const text = textOfUnits('DIGEST ', MAX_TEXT_CHARS);
    assert.equal(text.length, MAX_TEXT_CHARS, 'the corpus text is exactly at the limit');
    await settled(h, CHAT);
    const res = await post(h, json({ chat: CHAT, text }));
    assert.equal(res.status, 202, `answered ${res.status} ${res.error ?? ''}`);
    const row = storedRow(h, Number(res.id));
    assert.ok(row?.text === text, 'stored text equals the text sent');
    assert.ok(row?.hex === utf8Hex(text), 'stored bytes equal its UTF-8');
    const reply = await h.reply(CHAT, res.id ?? '');
    assert.equal(reply.text, digestOf(text), 'the model saw the same length and SHA-256');
    const seen = h.fake.requests.filter((r) => isAgentTurn(r) && lastPromptMessage(r) === text);
    assert.equal(seen.length, 1, "the model request's prompt holds the text, unaltered, once");
  });
});

// ─── a burst of 10,000 ─────────────────────────────────────────────────────────────────────────────────────────

interface LoadResult {
  statuses?: Record<string, number>;
  /** The seq each new message got, by its index. */
  seqs?: Record<string, number>;
  error?: string;
}

/** The burst's HTTP client, run in a worker thread: `concurrency` loops POSTing `sends` (each with its id). */
const LOAD_CLIENT = `
const { parentPort, workerData } = require('node:worker_threads');
const { base, token, chat, sends, concurrency, suffix } = workerData;
(async () => {
  const statuses = {};
  const seqs = {};
  let next = 0;
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < sends.length) {
      const s = sends[next++];
      const res = await fetch(base + '/api/v1/messages', {
        method: 'POST',
        headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' },
        body: JSON.stringify({ chat, text: 'burst #' + s.i + ' ' + suffix, id: 'burst-' + s.i }),
      });
      const body = await res.json();
      statuses[res.status] = (statuses[res.status] || 0) + 1;
      if (res.status === 202) seqs[s.i] = Number(body.id);
    }
  }));
  parentPort.postMessage({ statuses, seqs });
})().catch((err) => parentPort.postMessage({ error: String((err && err.stack) || err) }));
`;

describe('a burst of 10,000 messages into one group while the agent is slow', { skip }, () => {
  const N = 10_000;
  const CONCURRENCY = 50;
  const MODEL_DELAY_MS = 1_500;
  const chat = 'local:burst';
  let h: Harness;
  /** Seqs of the burst, by message index. */
  const seqOf = new Map<number, number>();
  /** /healthz latencies measured during the burst, ms. */
  const health: number[] = [];

  before(async () => {
    h = await startHarness({
      script: (req) => {
        const messages = isAgentTurn(req) ? promptMessages(req) : [];
        if (messages.some((m) => m.startsWith('burst #'))) return { text: `saw ${messages.length} message(s)`, delayMs: MODEL_DELAY_MS };
        return echoReply(req);
      },
    });
  });
  after(async () => h?.stop());

  // A bound, so a wedged pincer fails the case instead of holding the run (it takes 10-40 s, by the host's load).
  test('all 10,000 are stored exactly once (retries included), /healthz probed throughout', {
    timeout: 120_000,
  }, async (t) => {
    // Every 20th send retries one sent 10 before: the same id, so it must be recognised, not stored again.
    const sends: Array<{ i: number; retry: boolean }> = [];
    for (let i = 0; i < N; i++) {
      sends.push({ i, retry: false });
      if (i % 20 === 19) sends.push({ i: i - 10, retry: true });
    }
    const retries = sends.filter((s) => s.retry).length;
    let done = false;
    const probe = (async () => {
      while (!done) {
        const t0 = performance.now();
        const res = await fetch(`${h.base}/healthz`);
        await res.arrayBuffer();
        health.push(performance.now() - t0);
        await sleep(50);
      }
    })();
    // The client runs on its own thread: what /healthz shows is pincer's event loop, not the client's JSON work.
    const client = new Worker(LOAD_CLIENT, {
      eval: true,
      workerData: { base: h.base, token: 'test-token-0123456789', chat, sends, concurrency: CONCURRENCY, suffix: EMOJI_RTL },
    });
    const t0 = performance.now();
    const result = await new Promise<LoadResult>((resolve, reject) => {
      client.once('message', resolve);
      client.once('error', reject);
    }).finally(async () => {
      await client.terminate();
      done = true;
      await probe;
    });
    const ms = performance.now() - t0;
    if (result.error) assert.fail(`the load client failed: ${result.error}`);
    const statuses = new Map(Object.entries(result.statuses ?? {}).map(([k, v]) => [Number(k), v]));
    for (const [i, seq] of Object.entries(result.seqs ?? {})) seqOf.set(Number(i), seq);
    const sorted = [...health].sort((a, b) => a - b);
    const p50 = sorted[Math.floor(sorted.length / 2)] ?? 0;
    const max = sorted.at(-1) ?? 0;
    t.diagnostic(
      `burst: ${sends.length} POSTs (${N} new + ${retries} retries) in ${Math.round(ms)} ms = ${Math.round((sends.length / ms) * 1000)} messages/s at concurrency ${CONCURRENCY}`,
    );
    t.diagnostic(
      `/healthz during the burst: ${health.length} probes, p50 ${p50.toFixed(1)} ms, max ${max.toFixed(1)} ms ` +
        `(host load average ${loadavg()[0]?.toFixed(1)} on ${availableParallelism()} CPUs)`,
    );
    assert.deepEqual(Object.fromEntries(statuses), { 202: N, 200: retries }, 'each new message 202, each retry 200 (duplicate)');
    assert.ok(health.length > 0, 'healthz was probed');
    const counts = h.pincer.store.db
      .prepare('SELECT COUNT(*) AS n, COUNT(DISTINCT platform_id) AS ids FROM messages WHERE chat_id = ? AND from_assistant = 0')
      .get(chat) as { n: number; ids: number };
    assert.deepEqual(counts, { n: N, ids: N }, 'every message stored, none twice');
    const rows = h.pincer.store.db
      .prepare('SELECT platform_id, text FROM messages WHERE chat_id = ? AND from_assistant = 0')
      .all(chat) as Array<{
      platform_id: string;
      text: string;
    }>;
    const wrong = rows.filter((r) => r.text !== `burst #${r.platform_id.slice('burst-'.length)} ${EMOJI_RTL}`);
    assert.equal(wrong.length, 0, `every stored text is the one sent under its id (${wrong.length} differ)`);
  });

  // A generous bound: this is "never stalls", not a speed target (those are in npm run bench), and CI hosts are shared.
  test('pincer stayed responsive: /healthz answered within 3 s throughout the burst', () => {
    const max = Math.max(...health);
    assert.ok(health.length > 0, 'healthz was probed during the burst');
    assert.ok(max < 3_000, `the slowest /healthz took ${max.toFixed(1)} ms (host load average ${loadavg()[0]?.toFixed(1)})`);
  });

  test(`the agent is prompted in batches of at most ${PROMPT_MESSAGE_LIMIT}, not 10,000 turns; what it never saw is counted`, async (t) => {
    const last = Math.max(...seqOf.values());
    const replies = () =>
      (h.pincer.store.db.prepare('SELECT COUNT(*) AS n FROM messages WHERE chat_id = ? AND from_assistant = 1').get(chat) as { n: number })
        .n;
    // Worked off: the cursor is past the burst and every turn's reply is delivered.
    await until(
      () => h.pincer.store.groups.state(chat).cursor >= last && replies() === h.pincer.store.turns.recent(chat, 1_000).length,
      60_000,
      'the burst to be worked off',
    );
    const turns = h.pincer.store.turns.recent(chat, 1_000);
    const prompts = h.fake.requests.filter(
      (r) => isAgentTurn(r) && !isToolResult(r) && promptMessages(r).some((m) => m.startsWith('burst #')),
    );
    const sizes = prompts.map((r) => promptMessages(r).length);
    const prompted = promptedSeqs(h, chat);
    const skipped = [...seqOf.values()].filter((seq) => !prompted.has(seq));
    const omittedFlag = prompts.filter((r) => /earlier_messages_omitted="\d+"/.test(lastUserText(r))).length;
    t.diagnostic(
      `burst turns: ${turns.length}; prompt sizes ${sizes.join(', ')}; the agent saw ${prompted.size} of ${N}; ` +
        `${skipped.length} were never shown to it (${omittedFlag} prompt(s) carried earlier_messages_omitted="N")`,
    );
    assert.ok(turns.length >= 1 && turns.length <= 100, `${turns.length} turns for ${N} messages`);
    assert.ok(
      turns.every((turn) => turn.status === 'success'),
      'every turn succeeded',
    );
    assert.ok(
      sizes.every((n) => n <= PROMPT_MESSAGE_LIMIT),
      `no prompt over ${PROMPT_MESSAGE_LIMIT} messages: ${sizes.join(', ')}`,
    );
    assert.ok(prompted.has(last), 'the newest message of the burst was shown to the agent');
    assert.equal(prompted.size + skipped.length, N, 'every message is either prompted or counted as never shown');
    if (skipped.length > 0) assert.ok(omittedFlag > 0, 'a prompt that left messages out says so to the agent');
    assert.equal(replies(), turns.length, 'one reply per turn, each delivered');
  });

  test('a message the agent never saw says why in its trace', async (t) => {
    const prompted = promptedSeqs(h, chat);
    const unseen = [...seqOf.values()].find((seq) => !prompted.has(seq));
    if (unseen === undefined) {
      t.skip('the agent saw every message of the burst: no unseen message to check');
      return;
    }
    const stages = h.pincer.store.events.trace(unseen).map((e) => `${e.stage}: ${e.detail ?? ''}`);
    assert.ok(
      stages.some((s) => /omit|skip|limit/i.test(s)),
      `the trace of message ${unseen} explains it was not shown: ${stages.join(' | ')}`,
    );
  });

  test('after the burst the group answers an ordinary message', async () => {
    await stillAnswers(h, chat, 'the burst');
  });
});

/** The messages of a chat that went into some turn's prompt. */
function promptedSeqs(h: Harness, chat: string): Set<number> {
  const rows = h.pincer.store.db
    .prepare<[string], { seq: number }>(`SELECT DISTINCT message_seq AS seq FROM events WHERE chat_id = ? AND stage = 'prompted'`)
    .all(chat);
  return new Set(rows.map((r) => r.seq));
}

// ─── malformed tool arguments ──────────────────────────────────────────────────────────────────────────────────

/** A scripted exchange: step 0 answers the prompt `scenario: <name>`, step k the k-th tool result after it. */
interface Scenario {
  name: string;
  steps: Array<ModelReply | (() => ModelReply)>;
}

/**
 * Runs scenarios one at a time: the tool results the agent got are kept per scenario, and after the last step the
 * agent answers `<name> done: <the last tool result>` (so the chat sees what the agent was told).
 */
function scenarioScript(scenarios: () => Scenario[], results: Map<string, string[]>): ModelScript {
  let current: Scenario | undefined;
  let step = 0;
  const reply = (r: ModelReply | (() => ModelReply)) => (typeof r === 'function' ? r() : r);
  return (req) => {
    if (!isAgentTurn(req)) return { text: 'side request' };
    if (isToolResult(req)) {
      if (!current) return { text: 'a tool result outside a scenario' };
      const seen = results.get(current.name) ?? [];
      seen.push(lastUserText(req));
      results.set(current.name, seen);
      const next = current.steps[step++];
      return next ? reply(next) : { text: `${current.name} done: ${(seen.at(-1) ?? '').slice(0, 1500)}` };
    }
    const message = lastPromptMessage(req);
    current = scenarios().find((s) => message === `scenario: ${s.name}`);
    step = 0;
    if (!current) return echoReply(req);
    results.set(current.name, []);
    return reply(current.steps[step++] ?? { text: 'empty scenario' });
  };
}

describe('malformed tool arguments from the agent', { skip }, () => {
  const chat = 'local:tools';
  const results = new Map<string, string[]>();
  let h: Harness;
  let mainTask = 0;
  const call = (name: string, input: unknown): ModelReply => ({ toolUse: { name: `mcp__pincer__${name}`, input } });
  const cases: Array<{ name: string; call: ModelReply; error: RegExp }> = [
    {
      name: 'send_message with a number for text',
      call: call('send_message', { text: 42 }),
      error: /Invalid arguments for tool send_message[\s\S]*"text"[\s\S]*expected string, received number/,
    },
    { name: 'send_message without text', call: call('send_message', {}), error: /send_message[\s\S]*expected string, received undefined/ },
    {
      name: 'send_message with a string for its input',
      call: call('send_message', 'just a string'),
      error: /Invalid arguments for tool send_message/,
    },
    { name: 'send_message with only whitespace', call: call('send_message', { text: ' \n\t ' }), error: /send_message[\s\S]*Too small/ },
    {
      name: 'send_file with a number for path',
      call: call('send_file', { path: 42 }),
      error: /Invalid arguments for tool send_file[\s\S]*"path"[\s\S]*expected string, received number/,
    },
    {
      name: 'schedule_task with an invalid cron',
      call: call('schedule_task', { prompt: 'p', schedule_type: 'cron', schedule_value: '99 * * * *' }),
      error: /Error: invalid cron "99 \* \* \* \*": Invalid value for minute: 99/,
    },
    {
      name: 'schedule_task with an unknown schedule type',
      call: call('schedule_task', { prompt: 'p', schedule_type: 'sometimes', schedule_value: 'x' }),
      error: /Invalid arguments for tool schedule_task[\s\S]*"schedule_type"/,
    },
    {
      name: 'schedule_task for another group from a non-main group',
      call: call('schedule_task', { prompt: 'p', schedule_type: 'cron', schedule_value: '0 9 * * *', target_group: 'main' }),
      error: /Error: only the main group can schedule tasks for other groups/,
    },
    { name: "pause_task of another group's task", call: call('pause_task', { task_id: 0 }), error: /Error: there is no task \d+/ },
    {
      name: 'a negative task id',
      call: call('cancel_task', { task_id: -3 }),
      error: /Invalid arguments for tool cancel_task[\s\S]*task_id/,
    },
    {
      name: 'a tool that does not exist',
      // A real model may still name a tool it was not offered: this one is not (so the fake lets it through).
      call: { toolUse: { name: 'mcp__pincer__delete_everything', input: { all: true }, mistake: true } },
      error: /No such tool available: mcp__pincer__delete_everything/,
    },
    // Last: the session's history carries the 10 MB call from here on.
    {
      name: 'send_message with a 10 MB text',
      call: call('send_message', { text: 'x'.repeat(10 * 1024 * 1024) }),
      error: /send_message[\s\S]*Too big: expected string to have <=20000 characters/,
    },
  ];

  before(async () => {
    h = await startHarness({
      script: scenarioScript(() => cases.map((c) => ({ name: c.name, steps: [c.call] })), results),
    });
    // A task of the main group, which the other group must not be able to touch.
    mainTask = h.pincer.control.scheduleTask(
      { kind: 'owner' },
      { prompt: 'main only', scheduleType: 'cron', scheduleValue: '0 9 * * *', contextMode: 'group', targetGroup: 'main' },
    ).id;
    const pause = cases.find((c) => c.name.startsWith('pause_task'));
    if (pause) pause.call = call('pause_task', { task_id: mainTask });
  });
  after(async () => h?.stop());

  const tasks = () => JSON.stringify(h.pincer.store.tasks.list().map((t) => [t.id, t.chatId, t.status, t.scheduleValue]));

  for (const c of cases) {
    test(`${c.name}: the agent gets an error it can read, the turn completes, nothing changes`, async () => {
      const tasksBefore = tasks();
      const id = await h.send(chat, `scenario: ${c.name}`);
      const reply = await h.reply(chat, id, 60_000);
      const [result] = results.get(c.name) ?? [];
      assert.ok(result !== undefined, 'the model got a tool result back');
      assert.match(result, c.error, 'the tool result explains what was wrong');
      assert.ok(result.length < 20_000, `the error is short (${result.length} chars), not an echo of the input`);
      assert.ok(reply.text.startsWith(`${c.name} done: `), `the turn ended with the agent's reply: ${reply.text.slice(0, 200)}`);
      assert.equal(tasks(), tasksBefore, 'no task was created or changed');
      const later = (await h.messages(chat, id)).filter((m) => m.fromAssistant);
      assert.equal(later.length, 1, 'the broken call sent nothing; only the final reply');
      const [turn] = h.pincer.store.turns.recent(chat, 1);
      assert.equal(turn?.status, 'success');
      await stillAnswers(h, chat, c.name);
    });
  }
});

// ─── files the agent asks to send ──────────────────────────────────────────────────────────────────────────────

describe('links, FIFOs and paths out of the folder, named to send_file', { skip }, () => {
  const chat = 'local:files';
  const results = new Map<string, string[]>();
  let h: Harness;
  let victimDir = '';
  const bash = (command: string): ModelReply => ({ toolUse: { name: 'Bash', input: { command, description: 'prepare the file' } } });
  const sendFile = (path: string): ModelReply => ({ toolUse: { name: 'mcp__pincer__send_file', input: { path, caption: 'here it is' } } });
  const cases: Array<{ name: string; command: () => string; path: string; error: RegExp }> = [
    {
      name: 'a symlink to /etc/passwd',
      command: () => 'ln -s /etc/passwd out.txt',
      path: 'out.txt',
      error: /\/workspace\/group\/out\.txt: is a symbolic link/,
    },
    {
      name: 'the same link named by its absolute sandbox path',
      command: () => 'ln -s /etc/passwd abs.txt',
      path: '/workspace/group/abs.txt',
      error: /\/workspace\/group\/abs\.txt: is a symbolic link/,
    },
    {
      name: "a symlink to another group's file (by its host path)",
      command: () => `ln -s '${victimDir}/secret.txt' victim.txt`,
      path: 'victim.txt',
      error: /victim\.txt: is a symbolic link/,
    },
    {
      name: "a symlink to another group's folder, a file through it",
      command: () => `ln -s '${victimDir}' victimdir`,
      path: 'victimdir/secret.txt',
      error: /victimdir\/secret\.txt: victimdir is a symbolic link/,
    },
    { name: 'a FIFO', command: () => 'mkfifo pipe.txt', path: 'pipe.txt', error: /pipe\.txt: is a FIFO/ },
    { name: 'a symlink to /dev/zero', command: () => 'ln -s /dev/zero zero.bin', path: 'zero.bin', error: /zero\.bin: is a symbolic link/ },
    {
      name: 'a hard link to /etc/passwd (refused by the kernel across the mount)',
      command: () => 'ln /etc/passwd hard.txt || true',
      path: 'hard.txt',
      error: /hard\.txt: does not exist/,
    },
    { name: 'a directory', command: () => 'mkdir -p adir', path: 'adir', error: /adir: is a directory/ },
    { name: '.. out of the folder', command: () => 'true', path: '../../../etc/passwd', error: /path must not contain \.\./ },
    {
      name: 'an absolute path outside',
      command: () => 'true',
      path: '/etc/passwd',
      error: /Error: \/etc\/passwd: not inside \/workspace\/group; only files there can be sent/,
    },
  ];

  before(async () => {
    h = await startHarness({
      script: scenarioScript(() => cases.map((c) => ({ name: c.name, steps: [bash(c.command()), sendFile(c.path)] })), results),
    });
    // Another group with a secret in its folder.
    await h.reply('local:victim', await h.send('local:victim', 'hello'));
    victimDir = join(h.home, 'groups', 'victim');
    writeFileSync(join(victimDir, 'secret.txt'), 'VICTIM-SECRET');
  });
  after(async () => h?.stop());

  for (const c of cases) {
    test(`${c.name}: refused with the reason, nothing sent, no hang`, async () => {
      const started = Date.now();
      const id = await h.send(chat, `scenario: ${c.name}`);
      const reply = await h.reply(chat, id, 30_000);
      const elapsed = Date.now() - started;
      const refusal = (results.get(c.name) ?? [])[1] ?? '';
      assert.match(refusal, c.error, `the agent was told why: ${refusal.slice(0, 300)}`);
      assert.match(refusal, /^Error: /m);
      assert.ok(!refusal.includes(h.home), 'the refusal names the sandbox path, not the host path');
      assert.ok(reply.text.includes(refusal.split('\n')[0] ?? '\u0000'), 'the chat sees the refusal in the answer');
      assert.ok(elapsed < 20_000, `answered in ${elapsed} ms`);
      const files = h.pincer.store.db.prepare('SELECT file_path FROM outbox WHERE chat_id = ? AND file_path IS NOT NULL').all(chat);
      assert.deepEqual(files, [], 'no file was queued');
      for (const text of assistantTexts(h)) {
        assert.ok(!text.includes(PASSWD) && !text.includes('VICTIM-SECRET'), 'no outbound message carries the target');
      }
      await stillAnswers(h, chat, c.name);
    });
  }
});

// ─── each channel's fake ───────────────────────────────────────────────────────────────────────────────────────

interface Driver {
  h: Harness;
  chatId: string;
  /** The longest part the platform takes, in UTF-16 units (WhatsApp: after the "Andy: " prefix). */
  limit: number;
  send(text: string): void;
  /** The texts the bot sent into the chat so far, in order. */
  sent(): string[];
  stop(): Promise<void>;
}

const log = pino({ level: 'silent' });

const drivers: Array<{ name: string; start(script: ModelScript): Promise<Driver> }> = [
  {
    name: 'Telegram',
    async start(script) {
      const fake = await startFakeTelegram();
      const h = await startHarness({ env: { TELEGRAM_BOT_TOKEN: fake.token, TELEGRAM_API_ROOT: fake.url }, script });
      const chatId = 'tg:4242';
      fake.pushMessage({ text: 'hello?' });
      await until(() => h.pincer.store.chats.get(chatId), 10_000, 'the DM to be listed');
      h.pincer.control.registerGroup({ kind: 'owner' }, { chatId, folder: 'tg-dm', respondToAll: true });
      return {
        h,
        chatId,
        limit: TELEGRAM_MAX_TEXT,
        send: (text) => void fake.pushMessage({ text }),
        sent: () => fake.sent.filter((s) => s.chatId === 4242 && s.text !== undefined).map((s) => s.text ?? ''),
        stop: async () => {
          await h.stop();
          await fake.close();
        },
      };
    },
  },
  {
    name: 'Slack',
    async start(script) {
      const fake = await startFakeSlack();
      fake.users.set('UOWNER', { name: 'owner', realName: 'Olivia Owner' });
      const h = await startHarness({
        env: {
          SLACK_BOT_TOKEN: fake.botToken,
          SLACK_APP_TOKEN: fake.appToken,
          SLACK_API_URL: fake.apiUrl,
          PINCER_MAIN_CHAT: 'slack:DOWNER',
        },
        script,
      });
      await fake.waitFor(() => fake.isConnected(), 10_000, 'pincer to connect');
      return {
        h,
        chatId: 'slack:DOWNER',
        limit: 40_000,
        send: (text) => void fake.sendEvent(messageEvent(fake, { channel: 'DOWNER', user: 'UOWNER', text })),
        sent: () => fake.posted.filter((p) => p.channel === 'DOWNER' && !p.file).map((p) => p.text),
        stop: async () => {
          await h.stop();
          await fake.close();
        },
      };
    },
  },
  {
    name: 'Discord',
    async start(script) {
      const fake = await FakeDiscord.start();
      const alice = fake.user('alice', 'Alice');
      const dm = fake.addDm(alice);
      const h = await startHarness({ env: { DISCORD_BOT_TOKEN: fake.token, DISCORD_API_URL: fake.apiUrl }, script });
      const chatId = `discord:${dm.id}`;
      fake.post({ channelId: dm.id, author: alice, content: 'hello?' });
      await until(() => h.pincer.store.chats.get(chatId), 10_000, 'the DM to be listed');
      h.pincer.control.registerGroup({ kind: 'owner' }, { chatId, folder: 'alice', respondToAll: true });
      return {
        h,
        chatId,
        limit: 2000,
        send: (text) => void fake.post({ channelId: dm.id, author: alice, content: text }),
        sent: () => fake.sent.filter((s) => s.channelId === dm.id && s.content).map((s) => s.content),
        stop: async () => {
          await h.stop();
          await fake.close();
        },
      };
    },
  },
  {
    name: 'Signal',
    async start(script) {
      const account = '+15550000000';
      const owner = '+15551230001';
      const fake = await startFakeSignalCli({ account, groups: [] });
      const chatId = `signal:${owner}`;
      const h = await startHarness({ env: { SIGNAL_ACCOUNT: account, SIGNAL_CLI_URL: fake.httpUrl, PINCER_MAIN_CHAT: chatId }, script });
      return {
        h,
        chatId,
        limit: 2000,
        send: (text) => fake.receive(fake.dataMessage({ from: owner, name: 'Owner', text })),
        sent: () =>
          fake
            .callsOf('send')
            .filter((c) => JSON.stringify(c.params.recipient) === JSON.stringify([owner]) && typeof c.params.message === 'string')
            .map((c) => String(c.params.message)),
        stop: async () => {
          await h.stop();
          await fake.close();
        },
      };
    },
  },
  {
    name: 'WhatsApp',
    async start(script) {
      const home = mkdtempSync(join(tmpdir(), 'pincer-wa-bad-'));
      const socket = new FakeWaSocket();
      const channel = new WhatsAppChannel({
        authDir: join(home, 'whatsapp-auth'),
        assistantName: 'Andy',
        log,
        rateLimitWaitMs: 300,
        typingRefreshMs: 200,
        socketFactory: async () => {
          setImmediate(() => socket.open());
          return socket;
        },
        downloadMedia: async () => Buffer.alloc(0),
      });
      const h = await startHarness({ home, channels: [channel], env: { PINCER_MAIN_CHAT: SELF_CHAT }, script });
      const prefix = 'Andy: ';
      return {
        h,
        chatId: SELF_CHAT,
        limit: channel.maxTextLength,
        send: (text) => socket.deliver([selfChat(text)]),
        sent: () =>
          socket.sent
            .filter((s) => s.jid === SELF.jid && 'text' in s.content)
            .map((s) => {
              const text = 'text' in s.content ? String(s.content.text) : '';
              assert.ok(text.startsWith(prefix) && text.length <= 4096, `a WhatsApp part of ${text.length} chars with the prefix`);
              return text.slice(prefix.length);
            }),
        stop: async () => {
          await h.stop();
          rmSync(home, { recursive: true, force: true });
        },
      };
    },
  },
];

for (const driver of drivers) {
  describe(`bad input through ${driver.name}'s fake`, { skip }, () => {
    let d: Driver;
    /** The parts of the reply without whitespace, for the grapheme check. */
    let hardParts: string[] = [];
    before(async () => {
      d = await driver.start(echoReply);
    });
    after(async () => d?.stop());

    /** Waits for the bot's parts after `from` until `done` holds for them. */
    const partsAfter = (from: number, done: (parts: string[]) => boolean, what: string) =>
      until(
        () => {
          const parts = d.sent().slice(from);
          return done(parts) ? parts : undefined;
        },
        60_000,
        what,
      );

    test('emoji and RTL text in: stored intact, the same text out', async () => {
      const from = d.sent().length;
      d.send(EMOJI_RTL);
      const [reply] = await partsAfter(from, (p) => p.length > 0, 'the reply');
      assert.equal(reply, EMOJI_RTL, 'the echo arrived byte for byte');
      const stored = d.h.pincer.store.messages.latest(d.chatId, 20).filter((m) => !m.fromAssistant && m.text === EMOJI_RTL);
      assert.equal(stored.length, 1, 'stored once, exactly');
    });

    test('an over-long message in (3x the platform limit): stored whole, the model sees it whole', async () => {
      const text = textOfUnits('DIGEST ', Math.max(3 * d.limit, 12_000));
      const from = d.sent().length;
      d.send(text);
      const [reply] = await partsAfter(from, (p) => p.length > 0, 'the digest');
      assert.equal(reply, digestOf(text), 'same length and SHA-256 at the model');
      const stored = d.h.pincer.store.messages.latest(d.chatId, 20).filter((m) => !m.fromAssistant && m.text.startsWith('DIGEST'));
      assert.ok(stored.at(-1)?.text === text, 'the stored text is the text sent');
    });

    test('a long RTL reply goes out in parts within the limit, in order, nothing lost', async (t) => {
      const expected = longText(Math.round(2.5 * d.limit));
      const from = d.sent().length;
      d.send(`LONG-REPLY ${Math.round(2.5 * d.limit)}`);
      const parts = await partsAfter(from, (p) => p.join('\n\n').length >= expected.length, 'every part');
      t.diagnostic(`${driver.name}: ${expected.length} chars in ${parts.length} parts of ${parts.map((p) => p.length).join(', ')}`);
      for (const p of parts) assert.ok(p.length <= d.limit, `a part of ${p.length} > ${d.limit}`);
      assert.ok(parts.length >= Math.ceil(expected.length / d.limit), `${parts.length} parts`);
      assert.equal(parts.join('\n\n'), expected, 'cut between paragraphs, nothing lost, in order');
    });

    test('a reply without whitespace is hard-cut within the limit, never inside a surrogate pair', async () => {
      const expected = hardText(Math.round(2.5 * d.limit));
      const from = d.sent().length;
      d.send(`HARD-REPLY ${Math.round(2.5 * d.limit)}`);
      hardParts = await partsAfter(from, (p) => p.join('').length >= expected.length, 'every part');
      for (const p of hardParts) {
        assert.ok(p.length <= d.limit, `a part of ${p.length} > ${d.limit}`);
        assert.ok(!hasLoneSurrogate(p), 'no part starts or ends with half an emoji');
      }
      assert.equal(hardParts.join(''), expected, 'nothing lost, in order');
    });

    test('a hard cut keeps each ZWJ emoji sequence whole', () => {
      assert.ok(hardParts.length > 1, 'the previous case produced parts');
      for (const p of hardParts) assert.equal(p.split(FAMILY).join(''), '', 'each part holds whole families only');
    });

    test('the chat still answers an ordinary message', async () => {
      const from = d.sent().length;
      d.send('still there?');
      const [reply] = await partsAfter(from, (p) => p.length > 0, 'the reply');
      assert.equal(reply, 'still there?');
    });
  });
}

// ─── a link out, sent through a channel: what is uploaded ──────────────────────────────────────────────────────

describe('files through Telegram: what the platform receives', { skip }, () => {
  const results = new Map<string, string[]>();
  let fake: FakeTelegram;
  let h: Harness;
  const bash = (command: string): ModelReply => ({ toolUse: { name: 'Bash', input: { command, description: 'files' } } });
  const sendFile = (path: string): ModelReply => ({ toolUse: { name: 'mcp__pincer__send_file', input: { path } } });
  const scenarios: Scenario[] = [
    { name: 'regular', steps: [bash("printf 'REGULAR-FILE-BODY' > regular.txt"), sendFile('regular.txt')] },
    { name: 'passwd link', steps: [bash('ln -s /etc/passwd passwd.txt'), sendFile('passwd.txt')] },
    {
      // The file is regular when send_file checks it; the delivery fails (the platform is unreachable for a
      // moment), and before the retry the agent swaps it for a link to /etc/passwd. The retry reads it again.
      name: 'swapped for a link before delivery',
      steps: [
        bash("printf 'harmless' > swap.txt"),
        () => {
          fake.dropPolls(2_500);
          return sendFile('swap.txt');
        },
        bash('rm swap.txt && ln -s /etc/passwd swap.txt'),
      ],
    },
  ];
  const uploads = () => fake.sent.filter((s) => s.file);

  before(async () => {
    fake = await startFakeTelegram();
    h = await startHarness({
      env: { TELEGRAM_BOT_TOKEN: fake.token, TELEGRAM_API_ROOT: fake.url },
      script: scenarioScript(() => scenarios, results),
    });
    fake.pushMessage({ text: 'hello?' });
    await until(() => h.pincer.store.chats.get('tg:4242'), 10_000, 'the DM to be listed');
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'tg:4242', folder: 'tg-files', respondToAll: true });
  });
  after(async () => {
    await h?.stop();
    await fake?.close();
  });

  const textsAfter = (from: number) => fake.sent.slice(from).filter((s) => s.chatId === 4242 && s.text !== undefined);

  test('control: a regular file is uploaded, so an upload would be seen', async () => {
    const from = fake.sent.length;
    fake.pushMessage({ text: 'scenario: regular' });
    await until(() => textsAfter(from).find((s) => s.text?.startsWith('regular done')), 60_000, 'the answer');
    const file = uploads().find((s) => s.file?.name === 'regular.txt');
    assert.equal(file?.file?.data.toString(), 'REGULAR-FILE-BODY');
  });

  test('a link to /etc/passwd: the agent and the chat are told why, nothing is uploaded', async () => {
    const from = fake.sent.length;
    fake.pushMessage({ text: 'scenario: passwd link' });
    const answer = await until(() => textsAfter(from).find((s) => s.text?.startsWith('passwd link done')), 60_000, 'the answer');
    assert.match(answer.text ?? '', /\/workspace\/group\/passwd\.txt: is a symbolic link/, 'the chat sees the reason');
    assert.equal(uploads().filter((s) => s.file?.name === 'passwd.txt').length, 0, 'nothing uploaded under that name');
    for (const s of fake.sent) {
      assert.ok(!(s.file?.data.toString('utf8') ?? '').includes(PASSWD), 'no upload carries /etc/passwd');
      assert.ok(!(s.text ?? s.caption ?? '').includes(PASSWD), 'no message carries /etc/passwd');
    }
  });

  test('swapped for a link between the check and the delivery: never uploaded, given up at once, the chat told', async (t) => {
    const from = fake.sent.length;
    const t0 = Date.now();
    fake.pushMessage({ text: 'scenario: swapped for a link before delivery' });
    const row = await until(
      () =>
        h.pincer.store.db
          .prepare(`SELECT status, attempts, last_error FROM outbox WHERE file_path = 'swap.txt' AND status != 'pending'`)
          .get() as { status: string; attempts: number; last_error: string } | undefined,
      60_000,
      'the file to be given up',
    );
    t.diagnostic(`swap: given up after ${row.attempts} attempt(s), ${Date.now() - t0} ms: ${row.last_error}`);
    assert.equal(row.status, 'failed');
    assert.match(row.last_error, /^swap\.txt: is a symbolic link$/);
    assert.ok(row.attempts <= 3, `given up when the link was found, not after the whole retry schedule (${row.attempts} attempts)`);
    const notice = await until(() => textsAfter(from).find((s) => s.text?.startsWith('⚠️ A file was not sent')), 60_000, 'the notice');
    assert.equal(notice.text, '⚠️ A file was not sent: swap.txt: is a symbolic link.');
    assert.equal(uploads().filter((s) => s.file?.name === 'swap.txt').length, 0, 'never uploaded');
    for (const s of fake.sent) assert.ok(!(s.file?.data.toString('utf8') ?? '').includes(PASSWD), 'no upload carries /etc/passwd');
  });

  test('the chat still answers an ordinary message', async () => {
    const from = fake.sent.length;
    fake.pushMessage({ text: 'still there?' });
    const reply = await until(() => textsAfter(from).find((s) => s.text === 'still there?'), 60_000, 'the reply');
    assert.equal(reply.replyTo !== undefined, true, 'the reply quotes the message it answers');
  });
});

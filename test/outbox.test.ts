// OutboxWorker against a real Store and an in-test platform channel whose sends can be made to fail.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChannelRegistry } from '../src/channels/registry.js';
import { type Channel, type Outbound, RateLimitedError } from '../src/channels/types.js';
import { createLogger } from '../src/log.js';
import { OutboxWorker, RETRY_DELAYS_MS } from '../src/service/outbox-worker.js';
import { Store } from '../src/store/index.js';

const MAIN = 'test:main';
const TEAM = 'test:team';

/** A stand-in for a chat platform: owns `test:*` chats, records sends, fails for chats in `failing`. */
class TestPlatform implements Channel {
  readonly name = 'test';
  maxTextLength = 1000;
  /** Set to play a channel that formats replies itself (and cuts them into this many parts). */
  partsOf?: (markdown: string, sender?: string) => number;
  /** Set to play a channel that shows a sub-agent's name itself. */
  postsAsSender?: boolean;
  readonly sent: { chatId: string; text: string; platformId: string }[] = [];
  readonly failing = new Set<string>();
  readonly outs: Outbound[] = [];
  /** Fail the n-th send (1-based) once, e.g. in the middle of a long reply. */
  failAt = 0;
  rateLimitMs = 0;
  attempts = 0;

  owns(chatId: string): boolean {
    return chatId.startsWith('test:');
  }

  async start(): Promise<void> {}

  async send(chatId: string, out: Outbound): Promise<{ platformId: string }> {
    this.attempts++;
    await Promise.resolve();
    if (this.failing.has(chatId)) throw new Error('platform unavailable');
    if (this.attempts === this.failAt) throw new Error('dropped mid-reply');
    if (this.rateLimitMs > 0) {
      const ms = this.rateLimitMs;
      this.rateLimitMs = 0;
      throw new RateLimitedError(ms, `429: retry after ${ms} ms`);
    }
    this.outs.push(out);
    const platformId = `out-${this.attempts}`;
    this.sent.push({ chatId, text: out.text, platformId });
    return { platformId };
  }

  async stop(): Promise<void> {}
}

interface OutboxRow {
  id: number;
  chat_id: string;
  text: string;
  status: string;
  attempts: number;
  next_attempt_at: number;
  last_error: string | null;
  platform_id: string | null;
}

let dir: string;
let store: Store;
let platform: TestPlatform;
let worker: OutboxWorker;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pincer-outbox-'));
  store = new Store(join(dir, 'pincer.db'));
  const now = Date.now();
  for (const id of [MAIN, TEAM, 'other:x']) store.chats.seen({ id, channel: id.split(':')[0] ?? 'test', isGroup: id !== MAIN }, now);
  store.groups.register({ chatId: MAIN, folder: 'main', trigger: '@Andy', respondToAll: false, isMain: true }, now, 0);
  store.groups.register({ chatId: TEAM, folder: 'team', trigger: '@Andy', respondToAll: false, isMain: false }, now, 0);
  platform = new TestPlatform();
  const channels = new ChannelRegistry();
  channels.add(platform);
  worker = new OutboxWorker({
    store,
    channels,
    assistantName: 'Andy',
    log: createLogger('silent'),
    readGroupFile: async (_chatId, path) => ({ name: path, data: Buffer.from(`contents of ${path}`) }),
    mainChatId: () => store.groups.list().find((g) => g.isMain)?.chatId,
  });
});

afterEach(async () => {
  await worker.stop();
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const row = (id: number) => store.db.prepare('SELECT * FROM outbox WHERE id = ?').get(id) as OutboxRow;
const rowsFor = (chatId: string) => store.db.prepare('SELECT * FROM outbox WHERE chat_id = ? ORDER BY id').all(chatId) as OutboxRow[];

/** Polls until `check` holds; fails after `timeoutMs` (short: everything here is local). */
async function until(what: string, check: () => boolean, timeoutMs = 1000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for: ${what}`);
    await sleep(5);
  }
}

/** An inbound message in a chat, so that an outbox item can reply to it. */
function inbound(chatId: string, text: string): number {
  return store.messages.insert({
    chatId,
    channel: 'test',
    platformId: `in-${Math.random()}`,
    senderId: 'u1',
    senderName: 'Bob',
    text,
    sentAt: Date.now(),
    fromAssistant: false,
    engages: true,
  }).seq;
}

describe('OutboxWorker', () => {
  test('a queued item is delivered on wake(), recorded as an assistant message and as a delivered event', async () => {
    const question = inbound(TEAM, '@Andy hi');
    const id = store.outbox.add(TEAM, 'Hello from Andy', question, Date.now());
    worker.wake();
    await until('the item is sent', () => row(id).status === 'sent');
    assert.deepEqual(platform.sent, [{ chatId: TEAM, text: 'Hello from Andy', platformId: 'out-1' }]);
    assert.equal(row(id).platform_id, 'out-1');
    assert.equal(row(id).attempts, 1);

    const mine = store.messages.after(TEAM, question, 10);
    assert.equal(mine.length, 1);
    assert.deepEqual(
      { ...mine[0], seq: 0, sentAt: 0 },
      {
        seq: 0,
        sentAt: 0,
        chatId: TEAM,
        channel: 'test',
        platformId: 'out-1',
        senderId: 'assistant',
        senderName: 'Andy',
        text: 'Hello from Andy',
        fromAssistant: true,
        engages: false,
        threadId: null,
      },
    );
    assert.equal(store.messages.pendingInput(TEAM, question, 10).length, 0, 'the reply is not input for the agent');

    const delivered = store.events.trace(question).filter((e) => e.stage === 'delivered');
    assert.equal(delivered.length, 1);
    assert.equal(delivered[0]?.detail, 'via test as out-1');
  });

  test('several items are delivered in order, and a sent item is not sent again on a later wake', async () => {
    const ids = ['one', 'two', 'three'].map((t) => store.outbox.add(TEAM, t, null, Date.now()));
    worker.wake();
    await until('all are sent', () => ids.every((id) => row(id).status === 'sent'));
    worker.wake();
    await sleep(50);
    assert.deepEqual(
      platform.sent.map((s) => s.text),
      ['one', 'two', 'three'],
    );
  });

  test('an item queued while a delivery is in flight is delivered too', async () => {
    const first = store.outbox.add(TEAM, 'first', null, Date.now());
    worker.wake();
    const second = store.outbox.add(TEAM, 'second', null, Date.now());
    worker.wake();
    await until('both are sent', () => row(first).status === 'sent' && row(second).status === 'sent');
    assert.equal(platform.sent.length, 2);
  });

  test('an item that is not yet due is left alone', async () => {
    const id = store.outbox.add(TEAM, 'later', null, Date.now() + 60_000);
    worker.wake();
    await sleep(50);
    assert.equal(row(id).status, 'pending');
    assert.equal(platform.attempts, 0);
  });

  test('a failing send is scheduled for retry with the error; a wake after the due time delivers it', async () => {
    platform.failing.add(TEAM);
    const question = inbound(TEAM, '@Andy hi');
    const id = store.outbox.add(TEAM, 'retry me', question, Date.now());
    const before = Date.now();
    worker.wake();
    await until('the first attempt is counted', () => row(id).attempts === 1);
    const after = Date.now();
    const r = row(id);
    assert.equal(r.status, 'pending');
    assert.equal(r.last_error, 'platform unavailable');
    assert.ok(
      r.next_attempt_at >= before + (RETRY_DELAYS_MS[0] ?? 0) && r.next_attempt_at <= after + (RETRY_DELAYS_MS[0] ?? 0),
      `next attempt ${r.next_attempt_at - before} ms after the failure`,
    );
    assert.ok(store.events.trace(question).some((e) => e.stage === 'delivery_retry'));
    assert.equal(store.messages.after(TEAM, question, 10).length, 0, 'nothing was recorded as delivered');

    // Not due yet: a wake does not try again.
    worker.wake();
    await sleep(50);
    assert.equal(platform.attempts, 1);

    platform.failing.delete(TEAM);
    store.db.prepare('UPDATE outbox SET next_attempt_at = ? WHERE id = ?').run(Date.now() - 1, id);
    worker.wake();
    await until('the retry is sent', () => row(id).status === 'sent');
    assert.equal(row(id).attempts, 2);
    assert.equal(platform.sent.length, 1);
    assert.equal(store.messages.after(TEAM, question, 10)[0]?.text, 'retry me');
  });

  test('the retry timer delivers a failed item at its due time without another wake', async () => {
    platform.failing.add(TEAM);
    const id = store.outbox.add(TEAM, 'timed', null, Date.now());
    worker.wake();
    await until('the first attempt is counted', () => row(id).attempts === 1);
    platform.failing.delete(TEAM);
    const delay = RETRY_DELAYS_MS[0] ?? 0;
    assert.ok(delay <= 1000, 'the first retry delay is short enough for this test');
    await until('the timer sends it', () => row(id).status === 'sent', delay + 500);
    assert.equal(row(id).attempts, 2);
  });

  test('each failure moves to the next retry delay', async () => {
    platform.failing.add(TEAM);
    const id = store.outbox.add(TEAM, 'again', null, Date.now());
    store.db.prepare('UPDATE outbox SET attempts = 2 WHERE id = ?').run(id);
    const before = Date.now();
    worker.wake();
    await until('the attempt is counted', () => row(id).attempts === 3);
    const waited = row(id).next_attempt_at - before;
    const expected = RETRY_DELAYS_MS[2] ?? 0;
    assert.ok(waited >= expected && waited < expected + 1000, `retry after ${waited} ms, expected ${expected}`);
  });

  test('after the last retry the item fails for good and the main chat is told, naming the chat', async () => {
    platform.failing.add(TEAM);
    const question = inbound(TEAM, '@Andy hi');
    const id = store.outbox.add(TEAM, 'this reply never arrives', question, Date.now());
    store.db.prepare('UPDATE outbox SET attempts = ? WHERE id = ?').run(RETRY_DELAYS_MS.length, id);
    worker.wake();
    await until('the item is failed', () => row(id).status === 'failed');
    assert.equal(row(id).attempts, RETRY_DELAYS_MS.length + 1);
    assert.equal(row(id).last_error, 'platform unavailable');
    assert.ok(store.events.trace(question).some((e) => e.stage === 'delivery_failed'));

    const notices = rowsFor(MAIN);
    assert.equal(notices.length, 1);
    const notice = notices[0];
    assert.ok(notice);
    assert.match(notice.text, /test:team/);
    assert.match(notice.text, /platform unavailable/);
    assert.match(notice.text, /this reply never arrives/);
    await until('the notice is delivered to the main chat', () => row(notice.id).status === 'sent');
    assert.deepEqual(
      platform.sent.map((s) => s.chatId),
      [MAIN],
    );
  });

  test('a long failed reply is shortened in the notice', async () => {
    platform.failing.add(TEAM);
    const id = store.outbox.add(TEAM, 'x'.repeat(200), null, Date.now());
    store.db.prepare('UPDATE outbox SET attempts = ? WHERE id = ?').run(RETRY_DELAYS_MS.length, id);
    worker.wake();
    await until('the item is failed', () => row(id).status === 'failed');
    const text = rowsFor(MAIN)[0]?.text ?? '';
    assert.ok(text.includes(`${'x'.repeat(80)}…`));
    assert.ok(!text.includes('x'.repeat(81)));
  });

  test('a reply to the main chat that fails for good does not notify the main chat about itself', async () => {
    platform.failing.add(MAIN);
    const id = store.outbox.add(MAIN, 'to main', null, Date.now());
    store.db.prepare('UPDATE outbox SET attempts = ? WHERE id = ?').run(RETRY_DELAYS_MS.length, id);
    worker.wake();
    await until('the item is failed', () => row(id).status === 'failed');
    await sleep(50);
    assert.deepEqual(
      rowsFor(MAIN).map((r) => r.id),
      [id],
    );
  });

  test('an item for a chat that no channel delivers to fails at once, and the main chat is told', async () => {
    const id = store.outbox.add('other:x', 'nowhere', null, Date.now());
    worker.wake();
    await until('the item is failed', () => row(id).status === 'failed');
    assert.equal(row(id).attempts, 1);
    assert.match(row(id).last_error ?? '', /no enabled channel/);
    await until('the notice is sent', () => rowsFor(MAIN).some((r) => r.status === 'sent' && r.text.includes('other:x')));
  });

  test('after stop() a wake delivers nothing', async () => {
    await worker.stop();
    const id = store.outbox.add(TEAM, 'too late', null, Date.now());
    worker.wake();
    await sleep(50);
    assert.equal(row(id).status, 'pending');
    assert.equal(platform.attempts, 0);
  });

  test('a reply longer than the platform allows goes out in parts, in order; a retry resumes after the last confirmed part', async () => {
    platform.maxTextLength = 20;
    platform.failAt = 3;
    const text = 'First paragraph here.\n\nSecond paragraph here.\n\nThird paragraph here.\n\nFourth one.';
    const id = store.outbox.add(TEAM, text, null, Date.now());
    worker.wake();
    await until('the item is sent', () => row(id).status === 'sent', 5000);
    const texts = platform.sent.map((x) => x.text);
    assert.ok(
      texts.every((t) => t.length <= 20),
      JSON.stringify(texts),
    );
    assert.equal(texts.join(' ').replace(/\s+/g, ' '), text.replace(/\s+/g, ' '), 'every part once, in order');
    assert.equal(platform.attempts, texts.length + 1, 'one failed attempt, then only the parts not yet confirmed');
  });

  test('a channel that formats replies is handed the whole Markdown and told which part; a retry resumes at the unconfirmed one', async () => {
    platform.partsOf = () => 3;
    platform.failAt = 2;
    const question = inbound(TEAM, '@Andy long one please');
    const id = store.outbox.add(TEAM, '# Long\n\n**reply**', question, Date.now());
    worker.wake();
    await until('the item is sent', () => row(id).status === 'sent', 5000);
    assert.deepEqual(
      platform.outs.map((o) => [o.part, o.text, o.replyTo !== undefined]),
      [
        [0, '# Long\n\n**reply**', true],
        [1, '# Long\n\n**reply**', true],
        [2, '# Long\n\n**reply**', true],
      ],
      'each part once, part 1 again only after its failure',
    );
    assert.equal(platform.attempts, 4);
  });

  test("a platform's rate limit (retry after) is honoured instead of the usual schedule", async () => {
    platform.rateLimitMs = 300;
    const id = store.outbox.add(TEAM, 'slow down', null, Date.now());
    const started = Date.now();
    worker.wake();
    await until('the item is sent', () => row(id).status === 'sent', 5000);
    const waited = Date.now() - started;
    assert.ok(waited >= 280 && waited < 900, `waited ${waited} ms`);
    assert.match(row(id).last_error ?? '', /429/);
  });

  test('a file row sends the file read from the group folder, threaded to the message it answers', async () => {
    const question = inbound(TEAM, '@Andy send me the report');
    store.db.prepare(`UPDATE messages SET thread_id = 'T-1' WHERE seq = ?`).run(question);
    const id = store.outbox.addFile(TEAM, 'out/report.pdf', 'here it is', question, Date.now());
    worker.wake();
    await until('the item is sent', () => row(id).status === 'sent');
    const out = platform.outs.at(-1);
    assert.equal(out?.text, 'here it is');
    assert.equal(out?.file?.name, 'out/report.pdf');
    assert.equal(out?.file?.data.toString(), 'contents of out/report.pdf');
    assert.equal(out?.replyTo?.threadId, 'T-1');
  });

  test("a sub-agent's message goes to a channel that shows senders with its name beside it, the parts leaving room for it", async () => {
    platform.postsAsSender = true;
    const asked: Array<string | undefined> = [];
    platform.partsOf = (_markdown, sender) => {
      asked.push(sender);
      return 2;
    };
    platform.failAt = 2;
    const id = store.outbox.add(TEAM, 'otters **hold hands**', null, Date.now(), 'Researcher');
    worker.wake();
    await until('the item is sent', () => row(id).status === 'sent', 5000);
    assert.deepEqual(
      platform.outs.map((o) => [o.part, o.text, o.sender]),
      [
        [0, 'otters **hold hands**', 'Researcher'],
        [1, 'otters **hold hands**', 'Researcher'],
      ],
      'the text untouched, the name beside it; after a failure only the unconfirmed part again',
    );
    assert.ok(asked.length > 0 && asked.every((s) => s === 'Researcher'), 'the parts were counted for a named sender');
    const stored = store.messages.latest(TEAM, 1)[0];
    assert.equal(stored?.text, 'Researcher: otters **hold hands**', 'the history says who spoke');
    assert.equal(stored?.platformId, row(id).platform_id, 'the last part sent is the recorded message id');
  });

  test("any other channel gets a sub-agent's message with its name in front, as before", async () => {
    const id = store.outbox.add(TEAM, 'drafting the answer', null, Date.now(), 'Writer');
    worker.wake();
    await until('the item is sent', () => row(id).status === 'sent');
    assert.equal(platform.outs.at(-1)?.text, 'Writer: drafting the answer');
    assert.equal(platform.outs.at(-1)?.sender, undefined);
  });
});

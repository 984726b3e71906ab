// Sub-agents on Telegram: send_message with `sender` through the real outbox and the Telegram adapter (real grammY)
// into a fake Bot API written from its docs, with a pool of extra bots (TELEGRAM_POOL_TOKENS): each answers getMe
// and setMyName (the bot's name, 0–64 characters; Telegram limits renames with 429 and retry_after) under its own
// token, posts only in groups it was added to (403 elsewhere), and is never asked for updates.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { TelegramChannel } from '../src/channels/telegram.js';
import type { Store } from '../src/store/index.js';
import { type ExtraBot, type FakeTelegram, startFakeTelegram } from './helpers/fake-telegram.js';
import { capturedLog, quietSink, type SenderOutbox, senderOutbox, tempStore } from './helpers/sender-outbox.js';

const GROUP = -100_123;
const OTHER_GROUP = -100_999;
const PRIVATE = 4242;
const POOL = ['5550001:POOL-one_secret-token-aaaaaaaaaaaa', '5550002:POOL-two_secret-token-bbbbbbbbbbbb'];

describe('Telegram: sub-agents post as pool bots renamed to their roles', () => {
  let fake: FakeTelegram;
  let pool: ExtraBot[];
  let channel: TelegramChannel;
  let outbox: SenderOutbox;
  let store: Store;
  let logs: string[];
  let removeStore: () => void;

  before(async () => {
    fake = await startFakeTelegram();
  });
  after(async () => {
    await fake.close();
  });

  async function start(options: { tokens?: string[]; keepStore?: boolean } = {}): Promise<void> {
    const captured = capturedLog();
    logs = captured.lines;
    if (!options.keepStore) {
      const temp = tempStore();
      store = temp.store;
      removeStore = temp.remove;
    }
    channel = new TelegramChannel({
      token: fake.token,
      apiRoot: fake.url,
      assistantName: 'Andy',
      log: captured.log,
      pollTimeoutSeconds: 1,
      pool: { tokens: options.tokens ?? POOL, assignments: store.telegramPool },
    });
    await channel.start(quietSink);
    outbox = senderOutbox(store, channel, captured.log);
  }
  async function stop(): Promise<void> {
    await outbox.close();
    await channel.stop();
  }

  beforeEach(async () => {
    pool = POOL.map((token, i) =>
      fake.addBot(token, { id: 5550001 + i, username: `pincer_pool${i + 1}_bot`, first_name: `Pool ${i + 1}` }, [GROUP]),
    );
    await start();
  });
  afterEach(async () => {
    await stop();
    removeStore();
  });

  const sentSince = (n: number) => fake.sent.slice(n).map((m) => [m.from, m.text]);

  test("a sub-agent's message comes from a pool bot renamed to its role, formatted, its id recorded; a role keeps its bot", async () => {
    const sent = fake.sent.length;
    const first = await outbox.deliver(`tg:${GROUP}`, 'Otters **hold hands**', 'Researcher');
    const second = await outbox.deliver(`tg:${GROUP}`, 'drafting now', 'Writer');
    const third = await outbox.deliver(`tg:${GROUP}`, 'and they float', 'Researcher');
    const researcher = pool.find((p) => p.bot.first_name === 'Researcher');
    const writer = pool.find((p) => p.bot.first_name === 'Writer');
    assert.ok(researcher && writer && researcher !== writer, 'each role has a bot of its own');
    assert.deepEqual(sentSince(sent), [
      [researcher.bot.username, 'Otters hold hands'],
      [writer.bot.username, 'drafting now'],
      [researcher.bot.username, 'and they float'],
    ]);
    assert.deepEqual(fake.sent[sent]?.entities, [{ type: 'bold', offset: 7, length: 10 }], 'Markdown as entities, as for the main bot');
    assert.deepEqual(
      pool.map((p) => p.renames),
      pool.map((p) => (p === researcher ? ['Researcher'] : ['Writer'])),
      'renamed once each, when the role was given the bot',
    );
    assert.equal(first.platformId, String(fake.sent[sent]?.messageId), 'the pool message id is what the outbox recorded');
    assert.equal(second.status, 'sent');
    assert.equal(third.status, 'sent');
    assert.equal(store.telegramPool.botOf(`tg:${GROUP}`, 'Researcher'), researcher.bot.id, 'kept in the store');
  });

  test('after a restart a role keeps its bot and name: no rename', async () => {
    await outbox.deliver(`tg:${GROUP}`, 'one', 'Researcher');
    const renames = pool.map((p) => p.renames.length);
    await stop();
    await start({ keepStore: true });
    const sent = fake.sent.length;
    await outbox.deliver(`tg:${GROUP}`, 'two', 'Researcher');
    assert.deepEqual(
      pool.map((p) => p.renames.length),
      renames,
    );
    assert.equal(fake.sent[sent]?.from, pool.find((p) => p.bot.first_name === 'Researcher')?.bot.username);
  });

  test('pool bots only send: they never ask for updates', async () => {
    await outbox.deliver(`tg:${GROUP}`, 'hello', 'Researcher');
    const usernames = new Set(pool.map((p) => p.bot.username));
    assert.ok(
      fake.calls.some((c) => c.method === 'getUpdates' && c.by === fake.bot.username),
      'the main bot polls',
    );
    assert.deepEqual(
      fake.calls.filter((c) => usernames.has(c.by) && c.method === 'getUpdates'),
      [],
    );
  });

  test('a pool bot not in the group gives way to the main bot, with the name in front and the formatting moved along', async () => {
    const sent = fake.sent.length;
    const first = await outbox.deliver(`tg:${OTHER_GROUP}`, 'Otters **hold hands**', 'Researcher');
    const tries = fake.calls.filter((c) => c.method === 'sendMessage').length;
    await outbox.deliver(`tg:${OTHER_GROUP}`, 'still reading', 'Researcher');
    assert.equal(first.status, 'sent');
    assert.equal(first.attempts, 1, 'on its first attempt, not after a retry');
    assert.deepEqual(sentSince(sent), [
      [fake.bot.username, 'Researcher: Otters hold hands'],
      [fake.bot.username, 'Researcher: still reading'],
    ]);
    assert.deepEqual(fake.sent[sent]?.entities, [{ type: 'bold', offset: 19, length: 10 }]);
    assert.equal(fake.calls.filter((c) => c.method === 'sendMessage').length, tries + 1, 'the pool bot is not tried again there');
    const warnings = logs.filter((l) => (JSON.parse(l) as { level: number }).level >= 40 && l.includes('pool bot'));
    assert.equal(warnings.length, 1);
  });

  test('in a private chat the main bot posts, with the name in front', async () => {
    const sent = fake.sent.length;
    await outbox.deliver(`tg:${PRIVATE}`, 'just us', 'Researcher');
    assert.deepEqual(sentSince(sent), [[fake.bot.username, 'Researcher: just us']]);
  });

  test('a rename Telegram refuses (429) is not waited for: the main bot posts, and no rename is tried until retry_after', async () => {
    fake.failNextRename(3600);
    const sent = fake.sent.length;
    const renames = fake.calls.filter((c) => c.method === 'setMyName').length;
    const item = await outbox.deliver(`tg:${GROUP}`, 'first', 'Researcher');
    await outbox.deliver(`tg:${GROUP}`, 'second', 'Critic');
    assert.equal(item.status, 'sent');
    assert.deepEqual(sentSince(sent), [
      [fake.bot.username, 'Researcher: first'],
      [fake.bot.username, 'Critic: second'],
    ]);
    assert.equal(fake.calls.filter((c) => c.method === 'setMyName').length, renames + 1, 'one refused rename, none after it');
  });

  test('without a pool, the name goes in front', async () => {
    await stop();
    removeStore();
    await start({ tokens: [] });
    const sent = fake.sent.length;
    await outbox.deliver(`tg:${GROUP}`, 'hello', 'Researcher');
    assert.deepEqual(sentSince(sent), [[fake.bot.username, 'Researcher: hello']]);
  });

  test('pool tokens are credentials: never in logs or in the store', async () => {
    await outbox.deliver(`tg:${GROUP}`, 'one', 'Researcher');
    await outbox.deliver(`tg:${OTHER_GROUP}`, 'two', 'Researcher');
    fake.failNextRename(5);
    await outbox.deliver(`tg:${GROUP}`, 'three', 'Critic');
    assert.ok(logs.length > 0);
    for (const token of POOL) {
      assert.ok(!logs.some((l) => l.includes(token) || l.includes(token.split(':')[1] ?? token)), 'not in the logs');
      assert.ok(!outbox.storedText([]).includes(token.split(':')[1] ?? token), 'not in any table');
    }
  });
});

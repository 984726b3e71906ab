// Sub-agents on Discord: send_message with `sender` through the real outbox and the Discord adapter (real
// discord.js and its REST client) into a fake Discord written from the webhook docs: Get Channel Webhooks and
// Create Webhook need Manage Webhooks (403, code 50013 without), Execute Webhook takes `username` and `avatar_url`
// (1–80 characters, never "discord" or "clyde") and answers the message with `?wait=true`.
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { DiscordChannel } from '../src/channels/discord.js';
import type { InboundMessage, InboundSink } from '../src/channels/types.js';
import type { Store } from '../src/store/index.js';
import { type FakeChannel, FakeDiscord } from './helpers/fake-discord.js';
import { capturedLog, type SenderOutbox, senderOutbox, tempStore } from './helpers/sender-outbox.js';

describe('Discord: sub-agents post as themselves through a webhook pincer makes', () => {
  let fake: FakeDiscord;
  let general: FakeChannel;
  let locked: FakeChannel;
  let thread: FakeChannel;
  let dm: FakeChannel;
  let channel: DiscordChannel;
  let outbox: SenderOutbox;
  let store: Store;
  let logs: string[];
  let removeStore: () => void;
  const inbound: InboundMessage[] = [];
  const sink: InboundSink = {
    ingest: async (m) => {
      inbound.push(m);
      return { seq: inbound.length, duplicate: false, engaged: false };
    },
    isJoined: () => true,
    seen: () => false,
    maxMediaBytes: 0,
    typing: () => {},
  };

  before(async () => {
    fake = await FakeDiscord.start({ heartbeatIntervalMs: 300 });
    general = fake.addTextChannel('general');
    locked = fake.addTextChannel('announcements');
    fake.noManageWebhooks.add(locked.id);
    thread = fake.addThread(general, 'planning');
    dm = fake.addDm(fake.user('alice', 'Alice'));
  });
  after(async () => {
    await fake.close();
  });

  async function start(options: { avatar?: string; keepStore?: boolean } = {}): Promise<void> {
    const captured = capturedLog();
    logs = captured.lines;
    if (!options.keepStore) {
      const temp = tempStore();
      store = temp.store;
      removeStore = temp.remove;
    }
    channel = new DiscordChannel({
      token: fake.token,
      apiUrl: fake.apiUrl,
      assistantName: 'Andy',
      log: captured.log,
      webhooks: store.discordWebhooks,
      ...(options.avatar ? { senderAvatarUrl: options.avatar } : {}),
    });
    await channel.start(sink);
    outbox = senderOutbox(store, channel, captured.log);
  }
  async function stop(): Promise<void> {
    await outbox.close();
    await channel.stop();
  }

  beforeEach(async () => {
    fake.webhooks.clear();
    await start();
  });
  afterEach(async () => {
    await stop();
    removeStore();
  });

  /** Webhook management calls so far (listing or creating). */
  const managing = () => fake.calls.filter((c) => /\/channels\/\d+\/webhooks$/.test(c)).length;

  test("the first sub-agent message makes a webhook; each message appears under the sub-agent's name, its id recorded", async () => {
    const posts = fake.webhookPosts.length;
    const sent = fake.sent.length;
    const first = await outbox.deliver(`discord:${general.id}`, '## Findings\n\nOtters **hold hands** @everyone', 'Researcher');
    const second = await outbox.deliver(`discord:${general.id}`, 'drafting now', 'Writer');
    const made = [...fake.webhooks.values()];
    assert.equal(made.length, 1, 'one webhook for the channel');
    assert.equal(made[0]?.name, 'pincer');
    const [a, b] = fake.webhookPosts.slice(posts);
    assert.equal(a?.username, 'Researcher');
    assert.equal(a?.content, '**Findings**\n\nOtters **hold hands** @everyone', "formatted as Discord's, no prefix");
    assert.deepEqual(a?.allowedMentions, { parse: ['users'] }, 'no @everyone ping');
    assert.equal(b?.username, 'Writer');
    assert.equal(a?.authorization, undefined, "the bot's token is not sent to a webhook");
    assert.equal(first.status, 'sent');
    assert.equal(first.platformId, a?.id, 'the message id (wait=true) is what the outbox recorded');
    assert.equal(second.platformId, b?.id);
    assert.equal(fake.sent.length, sent, 'nothing from the bot itself');
    assert.equal(store.discordWebhooks.get(general.id)?.id, made[0]?.id, 'kept in the store');
    await sleep(200);
    assert.equal(inbound.length, 0, "the webhook's echo over the gateway is not taken for a person's message");
  });

  test('the webhook is found again: from the store after a restart, by name when the store lost it; never made twice', async () => {
    await outbox.deliver(`discord:${general.id}`, 'one', 'Researcher');
    const before = managing();
    await stop();
    await start({ keepStore: true });
    await outbox.deliver(`discord:${general.id}`, 'two', 'Researcher');
    assert.equal(managing(), before, 'the stored webhook was used as it is');
    await stop();
    removeStore();
    await start();
    await outbox.deliver(`discord:${general.id}`, 'three', 'Researcher');
    assert.equal(fake.webhooks.size, 1, 'the one named "pincer" was listed and taken, not another made');
    assert.deepEqual(
      fake.webhookPosts.slice(-3).map((p) => p.content),
      ['one', 'two', 'three'],
    );
  });

  test('a webhook a moderator deleted is made again, and the message goes out once', async () => {
    await outbox.deliver(`discord:${general.id}`, 'before', 'Researcher');
    fake.webhooks.clear();
    const posts = fake.webhookPosts.length;
    const item = await outbox.deliver(`discord:${general.id}`, 'after', 'Researcher');
    assert.equal(item.status, 'sent');
    assert.deepEqual(
      fake.webhookPosts.slice(posts).map((p) => p.content),
      ['after'],
    );
    assert.equal(fake.webhooks.size, 1);
  });

  test('without Manage Webhooks the bot posts with the name in front; said once, not asked again every message', async () => {
    const sent = fake.sent.length;
    const first = await outbox.deliver(`discord:${locked.id}`, 'reading *up*', 'Researcher');
    const asked = managing();
    await outbox.deliver(`discord:${locked.id}`, 'still reading', 'Researcher');
    assert.equal(first.status, 'sent');
    assert.deepEqual(
      fake.sent.slice(sent).map((m) => m.content),
      ['Researcher: reading *up*', 'Researcher: still reading'],
    );
    assert.equal(managing(), asked, 'the refusal is remembered');
    const warnings = logs.filter((l) => (JSON.parse(l) as { level: number }).level >= 40 && l.includes('Manage Webhooks'));
    assert.equal(warnings.length, 1);
  });

  test("Discord's name rules: marks it refuses are dropped, a name it would refuse goes in front instead", async () => {
    const posts = fake.webhookPosts.length;
    const sent = fake.sent.length;
    await outbox.deliver(`discord:${general.id}`, 'hello', '@Re#search:er');
    await outbox.deliver(`discord:${general.id}`, 'hi', 'Discord Helper');
    assert.equal(fake.webhookPosts[posts]?.username, 'Researcher');
    assert.deepEqual(
      fake.sent.slice(sent).map((m) => m.content),
      ['Discord Helper: hi'],
    );
  });

  test('a name Discord refuses at execution goes in front instead, in the same delivery', async () => {
    fake.refusedUsernames.add('Moderator');
    await outbox.deliver(`discord:${general.id}`, 'warm up', 'Researcher');
    const sent = fake.sent.length;
    const item = await outbox.deliver(`discord:${general.id}`, 'rules first', 'Moderator');
    assert.equal(item.status, 'sent');
    assert.equal(item.attempts, 1);
    assert.deepEqual(
      fake.sent.slice(sent).map((m) => m.content),
      ['Moderator: rules first'],
    );
  });

  test('in a thread the webhook posts into it; in a DM (no webhooks) the name goes in front', async () => {
    const posts = fake.webhookPosts.length;
    const sent = fake.sent.length;
    await channel.send(`discord:${general.id}`, {
      text: 'in the thread',
      sender: 'Researcher',
      replyTo: { platformId: '1', threadId: thread.id },
    });
    await outbox.deliver(`discord:${dm.id}`, 'just us', 'Researcher');
    assert.equal(fake.webhookPosts[posts]?.channelId, thread.id);
    assert.deepEqual(
      fake.sent.slice(sent).map((m) => [m.channelId, m.content]),
      [[dm.id, 'Researcher: just us']],
    );
  });

  test('a configured picture address goes with the name', async () => {
    await stop();
    removeStore();
    await start({ avatar: 'https://avatars.example/{name}.png' });
    await outbox.deliver(`discord:${general.id}`, 'hi', 'Fact Checker');
    assert.equal(fake.webhookPosts.at(-1)?.avatarUrl, 'https://avatars.example/Fact%20Checker.png');
  });

  test('a rate-limited webhook (429) is retried after Retry-After by the outbox; the message appears once, its id recorded', async () => {
    await outbox.deliver(`discord:${general.id}`, 'warm up', 'Researcher');
    fake.rateLimitNext(1, 300);
    const posts = fake.webhookPosts.length;
    const first = await outbox.deliver(`discord:${general.id}`, 'slowly now', 'Researcher');
    assert.equal(first.status, 'pending', 'refused once, waiting');
    assert.match(first.lastError ?? '', /rate limit/i);
    const deadline = Date.now() + 5_000;
    while (store.outbox.get(first.id)?.status !== 'sent') {
      if (Date.now() > deadline) assert.fail('the retry did not deliver');
      await sleep(20);
    }
    assert.deepEqual(
      fake.webhookPosts.slice(posts).map((p) => [p.username, p.content]),
      [['Researcher', 'slowly now']],
    );
    assert.equal(store.outbox.get(first.id)?.platformId, fake.webhookPosts.at(-1)?.id);
    const token = store.discordWebhooks.get(general.id)?.token ?? '';
    assert.ok(token && !logs.some((l) => l.includes(token)) && !outbox.storedText(['discord_webhooks']).includes(token));
  });

  test("the webhook's token is a credential: only in its table, never in logs or anything else stored", async () => {
    await outbox.deliver(`discord:${general.id}`, 'one', 'Researcher');
    const token = [...fake.webhooks.values()][0]?.token ?? '';
    assert.ok(token.length > 10);
    // A failing execute too: its error is logged and stored as the outbox row's last error.
    const hook = [...fake.webhooks.values()][0];
    if (hook) hook.token = 'rotated';
    store.discordWebhooks.put(general.id, { id: hook?.id ?? '', token });
    fake.noManageWebhooks.add(general.id);
    const item = await outbox.deliver(`discord:${general.id}`, 'two', 'Researcher');
    fake.noManageWebhooks.delete(general.id);
    assert.equal(item.status, 'sent', 'fell back to the bot');
    assert.ok(!logs.some((l) => l.includes(token)), 'not in the logs');
    assert.ok(!outbox.storedText(['discord_webhooks']).includes(token), 'not in messages, events, the outbox or any other table');
  });
});

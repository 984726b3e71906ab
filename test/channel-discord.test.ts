// The Discord adapter: its pure mapping, then the real discord.js against a fake Discord speaking the real
// gateway and REST protocol on loopback, then the whole path (fake Discord → pincer → sandboxed agent → fake
// model → reply on the fake Discord).
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { DiscordAPIError, GatewayIntentBits, RateLimitError } from 'discord.js';
import {
  attachmentKind,
  backoffDelay,
  channelIdOf,
  chatIdOf,
  DiscordChannel,
  type DiscordChannelOptions,
  downloadBounded,
  type MessageFacts,
  mentionsBot,
  rewriteMentions,
  sendError,
  toInbound,
} from '../src/channels/discord.js';
import { type InboundMessage, type InboundSink, RateLimitedError } from '../src/channels/types.js';
import { createLogger } from '../src/log.js';
import { AGENT_REPLY, longAgentReply } from './helpers/agent-reply.js';
import { FakeDiscord, type FakeUser } from './helpers/fake-discord.js';
import { isAgentTurn, lastUserText, type ModelRequest } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const log = createLogger(process.env.PINCER_TEST_LOG ?? 'silent');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(predicate: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A sink that records what the adapter hands over; joined and seen as the test says. */
function recordingSink(options: { joined?: boolean; maxMediaBytes?: number } = {}) {
  const messages: InboundMessage[] = [];
  /** The chat ids the adapter said someone is typing in, in order. */
  const typed: string[] = [];
  const stored = new Set<string>();
  const sink: InboundSink = {
    maxMediaBytes: options.maxMediaBytes ?? 1024 * 1024,
    isJoined: () => options.joined ?? true,
    typing: (chatId) => void typed.push(chatId),
    seen: (chatId, platformId) => stored.has(`${chatId}/${platformId}`),
    async ingest(m) {
      const key = `${m.chatId}/${m.platformId}`;
      const duplicate = stored.has(key);
      stored.add(key);
      messages.push(m);
      return { seq: messages.length, duplicate, engaged: false };
    },
  };
  return { sink, messages, typed };
}

function adapter(fake: FakeDiscord, extra: Partial<DiscordChannelOptions> = {}): DiscordChannel {
  return new DiscordChannel({
    token: fake.token,
    apiUrl: fake.apiUrl,
    assistantName: 'Andy',
    log,
    typingIntervalMs: 200,
    stallTimeoutMs: 1_000,
    backoff: { initialMs: 200, maxMs: 1_000 },
    ...extra,
  });
}

const BOT = '900';
const facts = (over: Partial<MessageFacts> = {}): MessageFacts => ({
  id: '1000',
  channelId: '50',
  parentId: null,
  isDm: false,
  channelName: 'general',
  guildName: 'Home',
  authorId: '7',
  authorName: 'Alice',
  authorIsBot: false,
  system: false,
  content: 'hello',
  createdAt: 1_700_000_000_000,
  mentionedUsers: [],
  mentionedRoles: [],
  mentionedChannels: [],
  repliedUserId: null,
  stickers: [],
  attachments: [],
  ...over,
});

describe('discord mapping', () => {
  test('chat ids are discord:<channel id>; only those are owned', () => {
    assert.equal(chatIdOf('123'), 'discord:123');
    assert.equal(channelIdOf('discord:123'), '123');
    assert.throws(() => channelIdOf('tg:123'));
    assert.throws(() => channelIdOf('discord:abc'));
    const channel = new DiscordChannel({ token: 't', apiUrl: 'http://127.0.0.1:1/api', assistantName: 'Andy', log });
    assert.equal(channel.owns('discord:1'), true);
    assert.equal(channel.owns('slack:C1'), false);
    assert.equal(channel.maxTextLength, 2000);
    assert.equal(channel.state(), 'disconnected');
  });

  test('mentions of the bot (as user, nickname form or its managed role) read as @Andy; others by name', () => {
    const f = {
      mentionedUsers: [
        { id: BOT, name: 'pincer-bot' },
        { id: '8', name: 'Bob' },
      ],
      mentionedRoles: [
        { id: '70', name: 'pincer-bot', botId: BOT },
        { id: '71', name: 'mods', botId: null },
      ],
    };
    assert.equal(rewriteMentions(`<@${BOT}> hi <@!${BOT}>, ask <@8>`, f, BOT, 'Andy'), '@Andy hi @Andy, ask @Bob');
    assert.equal(rewriteMentions('<@&70> and <@&71>', f, BOT, 'Andy'), '@Andy and @mods');
    assert.equal(rewriteMentions('<@12345> <@&999>', f, BOT, 'Andy'), '<@12345> <@&999>', 'unknown ids stay as they are');
    const withChannels = { ...f, mentionedChannels: [{ id: '55', name: 'random' }] };
    assert.equal(rewriteMentions('see <#55> <:party:123> <a:dance:456>', withChannels, BOT, 'Andy'), 'see #random :party: :dance:');
  });

  test('the bot is addressed by a mention, a mention of its role, or a reply to it', () => {
    const none = { mentionedUsers: [], mentionedRoles: [], repliedUserId: null };
    assert.equal(mentionsBot(none, BOT), false);
    assert.equal(mentionsBot({ ...none, mentionedUsers: [{ id: BOT, name: 'b' }] }, BOT), true);
    assert.equal(mentionsBot({ ...none, mentionedRoles: [{ id: '1', name: 'b', botId: BOT }] }, BOT), true);
    assert.equal(mentionsBot({ ...none, repliedUserId: BOT }, BOT), true);
    assert.equal(mentionsBot({ ...none, repliedUserId: '8', mentionedUsers: [{ id: '8', name: 'Bob' }] }, BOT), false);
  });

  test('guild message → group chat named #channel (server); DM → direct chat named after the partner', () => {
    const group = toInbound(facts({ content: `<@${BOT}> hi`, mentionedUsers: [{ id: BOT, name: 'b' }] }), BOT, 'Andy');
    assert.deepEqual(group, {
      chatId: 'discord:50',
      channel: 'discord',
      platformId: '1000',
      senderId: 'discord:7',
      senderName: 'Alice',
      text: '@Andy hi',
      sentAt: 1_700_000_000_000,
      chatName: '#general (Home)',
      isGroup: true,
      mentionsBot: true,
    });
    const dm = toInbound(facts({ isDm: true, channelName: null, guildName: null }), BOT, 'Andy');
    assert.equal(dm?.chatName, 'Alice');
    assert.equal(dm?.isGroup, false);
    assert.equal(dm?.mentionsBot, undefined);
  });

  test('a thread message belongs to its parent channel chat, with the thread as threadId', () => {
    const m = toInbound(facts({ channelId: '60', parentId: '50' }), BOT, 'Andy');
    assert.equal(m?.chatId, 'discord:50');
    assert.equal(m?.threadId, '60');
  });

  test('own echoes, other bots, webhooks, system notices and empty messages are not ingested', () => {
    assert.equal(toInbound(facts({ authorId: BOT }), BOT, 'Andy'), undefined);
    assert.equal(toInbound(facts({ authorIsBot: true }), BOT, 'Andy'), undefined);
    assert.equal(toInbound(facts({ system: true }), BOT, 'Andy'), undefined);
    assert.equal(toInbound(facts({ content: '' }), BOT, 'Andy'), undefined);
    assert.equal(toInbound(facts({ content: '', stickers: ['wave'] }), BOT, 'Andy')?.text, '[sticker: wave]');
    const onlyFile = toInbound(
      facts({ content: '', attachments: [{ url: 'u', name: 'a.png', size: 1, contentType: 'image/png' }] }),
      BOT,
      'Andy',
    );
    assert.equal(onlyFile?.text, '');
  });

  test('attachment kinds from the content type, else the file name', () => {
    assert.equal(attachmentKind('image/png', 'x'), 'image');
    assert.equal(attachmentKind('audio/ogg', 'voice-message.ogg'), 'audio');
    assert.equal(attachmentKind('video/mp4', 'x'), 'video');
    assert.equal(attachmentKind('application/pdf', 'x.pdf'), 'document');
    assert.equal(attachmentKind(null, 'photo.JPG'), 'image');
    assert.equal(attachmentKind(null, 'notes.txt'), 'document');
  });

  test('reconnect backoff doubles from 1 s to a 60 s cap, with jitter between half and all of it', () => {
    assert.equal(backoffDelay(0, 1), 1_000);
    assert.equal(backoffDelay(0, 0), 500);
    assert.equal(backoffDelay(3, 1), 8_000);
    assert.equal(backoffDelay(10, 1), 60_000);
    assert.equal(backoffDelay(1_000, 0), 30_000);
    for (let i = 0; i < 50; i++) {
      const d = backoffDelay(i, Math.random());
      assert.ok(d >= 500 && d <= 60_000, `delay ${d}`);
    }
  });

  test('REST failures: a rate limit becomes RateLimitedError(ms); other refusals say what Discord said', () => {
    const limited = sendError(
      new RateLimitError({
        timeToReset: 1_500,
        limit: 5,
        method: 'post',
        hash: 'h',
        url: 'u',
        route: '/channels/:id/messages',
        majorParameter: '1',
        global: false,
        retryAfter: 2_050,
        sublimitTimeout: 0,
        scope: 'user',
      }),
    );
    assert.ok(limited instanceof RateLimitedError);
    assert.equal(limited.retryAfterMs, 2_050);
    const tooMany = { message: 'You are being rate limited.', code: 0, retry_after: 0.75, global: false };
    const api429 = sendError(new DiscordAPIError(tooMany, 0, 429, 'POST', 'u', {}));
    assert.ok(api429 instanceof RateLimitedError);
    assert.equal(api429.retryAfterMs, 750);
    const refused = sendError(new DiscordAPIError({ message: 'Missing Permissions', code: 50013 }, 50013, 403, 'POST', 'u', {}));
    assert.ok(!(refused instanceof RateLimitedError));
    assert.match(refused.message, /Missing Permissions.*50013.*403/);
  });

  describe('bounded downloads', () => {
    let server: Server;
    let base: string;
    before(async () => {
      server = createServer((req, res) => {
        if (req.url === '/declared-big') {
          res.writeHead(200, { 'content-length': String(5_000_000) });
          res.write(Buffer.alloc(1000));
          return; // never finishes: the client must not wait for it
        }
        if (req.url === '/chunked-big') {
          res.writeHead(200, { 'content-type': 'application/octet-stream' });
          const timer = setInterval(() => res.write(Buffer.alloc(64 * 1024)), 5);
          res.on('close', () => clearInterval(timer));
          return; // endless: the client must stop reading past the limit
        }
        res.writeHead(200, { 'content-length': '5' });
        res.end('small');
      });
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    });

    test('a file within the limit is read whole', async () => {
      const data = await downloadBounded(`${base}/small`, 100, AbortSignal.timeout(5_000));
      assert.equal(data?.toString(), 'small');
    });

    test('a declared size over the limit is refused before reading; an endless body is cut at the limit', async () => {
      assert.equal(await downloadBounded(`${base}/declared-big`, 100_000, AbortSignal.timeout(5_000)), undefined);
      const started = Date.now();
      assert.equal(await downloadBounded(`${base}/chunked-big`, 300_000, AbortSignal.timeout(5_000)), undefined);
      assert.ok(Date.now() - started < 4_000);
    });
  });
});

describe('discord adapter against a fake Discord (real discord.js)', () => {
  let fake: FakeDiscord;
  let channel: DiscordChannel;
  let rec: ReturnType<typeof recordingSink>;
  let alice: FakeUser;
  let general: ReturnType<FakeDiscord['addTextChannel']>;
  let dm: ReturnType<FakeDiscord['addDm']>;
  let thread: ReturnType<FakeDiscord['addThread']>;

  before(async () => {
    fake = await FakeDiscord.start({ heartbeatIntervalMs: 300 });
    general = fake.addTextChannel('general');
    thread = fake.addThread(general, 'planning');
    alice = fake.user('alice', 'Alice');
    dm = fake.addDm(alice);
    rec = recordingSink();
    channel = adapter(fake);
    await channel.start(rec.sink);
  });
  after(async () => {
    await channel?.stop();
    await fake?.close();
  });

  const next = async (count: number, what: string) => until(() => rec.messages.length >= count, 5_000, what);

  test('start resolves connected: gateway/bot, IDENTIFY with its intents (typing too), READY; heartbeats are acknowledged', async () => {
    assert.equal(channel.state(), 'connected');
    assert.equal(fake.identifies, 1);
    const wanted = [
      GatewayIntentBits.Guilds,
      GatewayIntentBits.GuildMessages,
      GatewayIntentBits.DirectMessages,
      GatewayIntentBits.MessageContent,
      GatewayIntentBits.GuildMessageTyping,
      GatewayIntentBits.DirectMessageTyping,
    ];
    assert.deepEqual(
      wanted.filter((bit) => ((fake.identifyIntents[0] ?? 0) & bit) === 0).map((bit) => GatewayIntentBits[bit]),
      [],
      `intents missing from IDENTIFY (${fake.identifyIntents[0]})`,
    );
    assert.ok(fake.calls.includes('GET /api/v10/gateway/bot'));
    await until(() => fake.heartbeats >= 2, 3_000, 'two heartbeats');
    assert.equal(channel.state(), 'connected', 'acknowledged heartbeats keep the session');
  });

  test('a DM, a guild message with a mention, a reply to the bot and a thread message map to pincer messages', async () => {
    const start = rec.messages.length;
    fake.post({ channelId: dm.id, author: alice, content: 'hi in private' });
    fake.post({ channelId: general.id, author: alice, content: `<@${fake.bot.id}> what is up?`, mentions: [fake.bot] });
    const { platformId: botMessage } = await channel.send(chatIdOf(general.id), { text: 'I am here' });
    fake.post({ channelId: general.id, author: alice, content: 'thanks!', replyTo: botMessage });
    fake.post({ channelId: thread.id, author: alice, content: 'in the thread' });
    await next(start + 4, 'four messages');
    const [inDm, mention, reply, inThread] = rec.messages.slice(start);
    assert.deepEqual(
      [inDm?.chatId, inDm?.isGroup, inDm?.chatName, inDm?.senderId, inDm?.senderName, inDm?.text],
      [`discord:${dm.id}`, false, 'Alice', `discord:${alice.id}`, 'Alice', 'hi in private'],
    );
    assert.deepEqual(
      [mention?.chatId, mention?.isGroup, mention?.chatName, mention?.mentionsBot, mention?.text],
      [`discord:${general.id}`, true, '#general (Test Server)', true, '@Andy what is up?'],
    );
    assert.equal(reply?.mentionsBot, true, 'a reply to the bot addresses it');
    assert.deepEqual(
      [inThread?.chatId, inThread?.threadId, inThread?.chatName],
      [`discord:${general.id}`, thread.id, '#general (Test Server)'],
    );
    assert.ok(Math.abs((inDm?.sentAt ?? 0) - Date.now()) < 5_000, 'sentAt comes from the snowflake');
  });

  test("the bot's own echoes and other bots' messages are ignored", async () => {
    await channel.send(chatIdOf(general.id), { text: 'my own words' });
    const robot = fake.user('other-bot', null, true);
    fake.post({ channelId: general.id, author: robot, content: 'beep' });
    fake.post({ channelId: general.id, author: alice, content: 'marker after' });
    await until(() => rec.messages.at(-1)?.text === 'marker after', 5_000, 'the marker');
    assert.ok(!rec.messages.some((m) => m.text === 'my own words' || m.text === 'beep'));
  });

  test("someone typing reaches sink.typing with the chat id (a thread's is its parent's); the bot's own and other bots' do not", async () => {
    // discord.js passes on DM typing only for a DM channel it knows: a message there makes it known.
    const start = rec.messages.length;
    fake.post({ channelId: dm.id, author: alice, content: 'about to type more' });
    await next(start + 1, 'the DM message');
    const from = rec.typed.length;
    const robot = fake.user('typing-bot', null, true);
    const dispatched = [
      fake.typingStart(general.id, fake.bot),
      fake.typingStart(general.id, robot),
      fake.typingStart(general.id, alice),
      fake.typingStart(thread.id, alice),
      fake.typingStart(dm.id, alice),
    ];
    assert.deepEqual(dispatched, [true, true, true, true, true], 'the session asked for the typing intents, so Discord sends them');
    await until(() => rec.typed.length >= from + 3, 5_000, 'three typing hints');
    // The gateway keeps order: had the bot's or the other bot's typing been passed on, it would come first.
    await sleep(100);
    assert.deepEqual(rec.typed.slice(from), [chatIdOf(general.id), chatIdOf(general.id), chatIdOf(dm.id)]);
  });

  test('send: text with a reply reference and no mass pings; a thread reply goes into the thread', async () => {
    const { platformId } = await channel.send(chatIdOf(general.id), { text: 'answer', replyTo: { platformId: '123456789' } });
    const sent = fake.sent.find((s) => s.id === platformId);
    assert.equal(sent?.channelId, general.id);
    assert.equal(sent?.content, 'answer');
    assert.equal(sent?.replyTo, '123456789');
    assert.deepEqual(sent?.allowedMentions, { parse: ['users'], replied_user: true });
    const inThread = await channel.send(chatIdOf(general.id), { text: 'threaded', replyTo: { platformId: '1', threadId: thread.id } });
    assert.equal(fake.sent.find((s) => s.id === inThread.platformId)?.channelId, thread.id);
  });

  test("send: an agent's reply as Markdown Discord shows rightly (a table as a code block); a long one in parts, only the first replying", async () => {
    const { platformId } = await channel.send(chatIdOf(general.id), { text: AGENT_REPLY, replyTo: { platformId: '123456789' } });
    const shown = fake.sent.find((s) => s.id === platformId);
    assert.equal(
      shown?.content,
      [
        '**Trip plan for Zoë 🚀**',
        '',
        "Here's **what I booked** for *Tuesday*: the ~~9:00~~ 10:30 train.",
        '',
        '• **Train:** ICE 123 to [München](<https://bahn.de/tickets?id=42>)',
        '• Hotel: 東京ホテル 🏨',
        '• Budget checked with `budget.py`',
        '',
        '1. Pack',
        '2. Leave',
        '',
        '> The museum closes at 17:00.',
        '',
        '```',
        'Day | Plan 🗺️',
        '----+--------',
        'Tue | Museum',
        'Wed | Hike ⛰️',
        '```',
        '',
        '```python',
        'total = sum(costs)  # **not bold**',
        'print(f"{total} €")',
        '```',
      ].join('\n'),
    );
    assert.equal(shown?.replyTo, '123456789');
    // Plain text that Discord would read as markup is escaped; a web address is left whole.
    const escaped = await channel.send(chatIdOf(general.id), { text: 'snake\\_case and 2\\*3 at https://x.io/a_b' });
    assert.equal(fake.sent.find((s) => s.id === escaped.platformId)?.content, 'snake\\_case and 2\\*3 at https://x.io/a_b');

    const long = longAgentReply(100);
    const count = channel.partsOf(long);
    const before = fake.sent.length;
    await channel.send(chatIdOf(general.id), { text: long, replyTo: { platformId: '123456789' } });
    const parts = fake.sent.slice(before);
    assert.equal(parts.length, count);
    assert.ok(count >= 4, `${count} parts`);
    assert.ok(parts.every((p) => p.content.length <= 2000));
    assert.deepEqual(
      parts.map((p) => p.replyTo),
      ['123456789', ...Array(count - 1).fill(undefined)],
      'only the first part replies (and so pings)',
    );
    for (const p of parts) assert.equal((p.content.match(/```/g) ?? []).length % 2, 0, `code fences paired in: ${p.content.slice(0, 80)}`);
    assert.ok(parts.filter((p) => p.content.includes('```python\nstep_')).length >= 2, 'the code block reopened with its language');
  });

  test('send: a file goes as a multipart upload with its caption; a caption over 2000 characters goes ahead as text', async () => {
    const data = Buffer.from('%PDF-1.4 fake report');
    const { platformId } = await channel.send(chatIdOf(dm.id), { text: 'the report', file: { name: 'report.pdf', data } });
    const sent = fake.sent.find((s) => s.id === platformId);
    assert.equal(sent?.content, 'the report');
    assert.equal(sent?.files.length, 1);
    assert.equal(sent?.files[0]?.name, 'report.pdf');
    assert.deepEqual(sent?.files[0]?.data, data);
    const before = fake.sent.length;
    const long = `${'word '.repeat(500)}\n\n${'more '.repeat(100)}`;
    const last = await channel.send(chatIdOf(dm.id), { text: long, file: { name: 'a.txt', data: Buffer.from('x') } });
    const parts = fake.sent.slice(before);
    assert.equal(parts.length, 2);
    assert.ok(parts.every((p) => p.content.length <= 2000));
    assert.equal(parts[1]?.id, last.platformId);
    assert.equal(parts[1]?.files.length, 1);
  });

  test('send: a 429 becomes RateLimitedError with the retry_after (no silent wait), then sending works again', async () => {
    fake.rateLimitNext(1, 1_000);
    const started = Date.now();
    await assert.rejects(channel.send(chatIdOf(dm.id), { text: 'limited' }), (err: unknown) => {
      assert.ok(err instanceof RateLimitedError, String(err));
      assert.ok(err.retryAfterMs >= 1_000 && err.retryAfterMs <= 1_500, `retryAfterMs ${err.retryAfterMs}`);
      return true;
    });
    assert.ok(Date.now() - started < 900, 'discord.js did not sleep on the limit itself');
    await assert.rejects(channel.send(chatIdOf(dm.id), { text: 'still limited' }), RateLimitedError, 'the bucket is known to be empty');
    await sleep(1_100);
    const ok = await channel.send(chatIdOf(dm.id), { text: 'after the wait' });
    assert.equal(fake.sent.find((s) => s.id === ok.platformId)?.content, 'after the wait');
  });

  test('send: an unknown channel fails with what Discord said', async () => {
    await assert.rejects(channel.send('discord:42', { text: 'x' }), /Unknown Channel.*10003.*404/);
  });

  test('typing is re-sent while on and stops when off', async () => {
    const chat = chatIdOf(general.id);
    const t0 = Date.now();
    await channel.setTyping(chat, true);
    await channel.setTyping(chat, true); // idempotent: still one timer
    await sleep(700);
    await channel.setTyping(chat, false);
    const during = fake.typing.filter((t) => t.at >= t0 && t.channelId === general.id).length;
    assert.ok(during >= 3 && during <= 5, `typing sent ${during} times in 700 ms at a 200 ms interval`);
    await sleep(500);
    assert.equal(fake.typing.filter((t) => t.at >= t0).length, during, 'no typing after off');
  });

  test('typing shows in the thread of the newest message', async () => {
    fake.post({ channelId: thread.id, author: alice, content: 'a question in the thread' });
    await until(() => rec.messages.at(-1)?.text === 'a question in the thread', 5_000, 'the thread message');
    const t0 = Date.now();
    await channel.setTyping(chatIdOf(general.id), true);
    await channel.setTyping(chatIdOf(general.id), false);
    assert.deepEqual(
      fake.typing.filter((t) => t.at >= t0).map((t) => t.channelId),
      [thread.id],
    );
  });

  test('media of a joined chat is downloaded; too large is skipped with a note; a redelivered message is not downloaded again', async () => {
    const start = rec.messages.length;
    const png = Buffer.from([0x89, 0x50, 0x4e, 0x47, 1, 2, 3]);
    const message = fake.post({
      channelId: dm.id,
      author: alice,
      content: 'look',
      attachments: [
        { name: 'cat.png', contentType: 'image/png', data: png },
        { name: 'huge.mp4', contentType: 'video/mp4', data: Buffer.from('tiny'), declaredSize: 50 * 1024 * 1024 },
      ],
    });
    await next(start + 1, 'the media message');
    const got = rec.messages[start];
    assert.equal(got?.attachments?.length, 1);
    assert.deepEqual(got?.attachments?.[0], { kind: 'image', name: 'cat.png', mime: 'image/png', data: png });
    assert.match(got?.text ?? '', /^look\n\[attachment huge\.mp4 not kept: larger than 1 MB\]$/);
    assert.equal(fake.attachmentFetches.filter((p) => p.endsWith('huge.mp4')).length, 0, 'the declared size was enough to skip it');
    const fetches = fake.attachmentFetches.length;
    // Discord replays the message (RESUME after a drop): the store has it, so nothing is downloaded again.
    fake.drop({ code: 4000, replayLast: 1 });
    await next(start + 2, 'the redelivery');
    assert.equal(rec.messages[start + 1]?.platformId, message.id);
    assert.equal(rec.messages[start + 1]?.attachments, undefined);
    assert.equal(fake.attachmentFetches.length, fetches);
  });

  test('a resumable drop: RESUME replays what was said meanwhile (no new IDENTIFY)', async (t) => {
    await until(() => fake.connected && channel.state() === 'connected', 5_000, 'connected');
    const identifies = fake.identifies;
    const resumes = fake.resumes;
    const t0 = Date.now();
    fake.drop({ code: 4000 });
    fake.post({ channelId: general.id, author: alice, content: 'said while the socket was down' });
    await until(() => rec.messages.some((m) => m.text === 'said while the socket was down'), 10_000, 'the message after RESUME');
    t.diagnostic(`resumed and replayed in ${Date.now() - t0} ms`);
    assert.equal(fake.resumes, resumes + 1);
    assert.equal(fake.identifies, identifies);
    await until(() => channel.state() === 'connected', 2_000, 'connected');
  });

  test('a non-resumable drop: a new session, and what was missed is caught up from the channel history', async (t) => {
    const identifies = fake.identifies;
    const t0 = Date.now();
    fake.drop({ code: 4007 });
    fake.post({ channelId: general.id, author: alice, content: 'said in the gap' });
    await until(() => rec.messages.some((m) => m.text === 'said in the gap'), 15_000, 'the caught-up message');
    t.diagnostic(`new session and catch-up in ${Date.now() - t0} ms`);
    assert.equal(fake.identifies, identifies + 1);
    assert.ok(fake.calls.some((c) => c === `GET /api/v10/channels/${general.id}/messages`));
  });

  test('Discord down for a while: backoff, a new client when it is back, and the gap caught up', async (t) => {
    await until(() => channel.state() === 'connected', 10_000, 'connected');
    await fake.goOffline();
    fake.post({ channelId: dm.id, author: alice, content: 'said while Discord was down' });
    await until(() => channel.state() === 'connecting', 5_000, 'connecting');
    await sleep(1_500);
    const gatewayFetches = fake.calls.filter((c) => c === 'GET /api/v10/gateway/bot').length;
    await fake.goOnline();
    const t0 = Date.now();
    await until(() => rec.messages.some((m) => m.text === 'said while Discord was down'), 15_000, 'the caught-up message');
    t.diagnostic(`back and caught up ${Date.now() - t0} ms after Discord returned`);
    assert.equal(channel.state(), 'connected');
    assert.ok(fake.calls.filter((c) => c === 'GET /api/v10/gateway/bot').length > gatewayFetches, 'a fresh client fetched the gateway');
  });
});

describe('discord adapter: start and stop', () => {
  test('an invalid token (401) rejects start with what to fix', async () => {
    const fake = await FakeDiscord.start();
    const channel = new DiscordChannel({ token: 'wrong', apiUrl: fake.apiUrl, assistantName: 'Andy', log });
    try {
      await assert.rejects(channel.start(recordingSink().sink), /DISCORD_BOT_TOKEN/);
      assert.equal(channel.state(), 'disconnected');
    } finally {
      await channel.stop();
      await fake.close();
    }
  });

  test('the Message Content intent not enabled (gateway close 4014) rejects start with the portal setting to change', async () => {
    const fake = await FakeDiscord.start({ identifyCloseCode: 4014 });
    const channel = adapter(fake);
    try {
      await assert.rejects(channel.start(recordingSink().sink), /Message Content Intent/);
    } finally {
      await channel.stop();
      await fake.close();
    }
  });

  test('Discord unreachable at start: start resolves, keeps trying, and connects once Discord is there', async () => {
    const fake = await FakeDiscord.start();
    await fake.goOffline();
    const channel = adapter(fake);
    try {
      const t0 = Date.now();
      await channel.start(recordingSink().sink);
      assert.ok(Date.now() - t0 < 2_000, 'start does not hang on a connection failure');
      assert.equal(channel.state(), 'connecting');
      await sleep(600);
      await fake.goOnline();
      await until(() => channel.state() === 'connected', 10_000, 'connected');
      assert.equal(fake.identifies, 1);
    } finally {
      await channel.stop();
      await fake.close();
    }
  });

  test('stop while a connection attempt hangs (no READY) ends it and closes its socket', async () => {
    const fake = await FakeDiscord.start({ ignoreIdentify: true });
    const channel = adapter(fake, { connectTimeoutMs: 20_000 });
    try {
      const starting = channel.start(recordingSink().sink);
      await fake.waitFor(() => fake.identifyAttempts > 0, 5_000, 'IDENTIFY');
      const t0 = Date.now();
      await channel.stop();
      await starting;
      assert.ok(Date.now() - t0 < 3_000, `start settled ${Date.now() - t0} ms after stop`);
      assert.equal(channel.state(), 'disconnected');
      await until(() => fake.sockets === 0, 2_000, 'the socket closed');
    } finally {
      await fake.close();
    }
  });

  test('a reply to a chat this process has not seen (after a restart) fetches the channel first', async () => {
    const fake = await FakeDiscord.start();
    const bob = fake.user('bob', 'Bob');
    const dm = fake.addDm(bob);
    const channel = adapter(fake);
    try {
      await channel.start(recordingSink().sink);
      const { platformId } = await channel.send(chatIdOf(dm.id), { text: 'hello again', replyTo: { platformId: '77' } });
      assert.ok(fake.calls.includes(`GET /api/v10/channels/${dm.id}`));
      assert.equal(fake.sent.find((s) => s.id === platformId)?.channelId, dm.id);
    } finally {
      await channel.stop();
      await fake.close();
    }
  });

  test('stop closes the gateway and every timer', async () => {
    const fake = await FakeDiscord.start({ heartbeatIntervalMs: 200 });
    const general = fake.addTextChannel('general');
    const channel = adapter(fake);
    await channel.start(recordingSink().sink);
    await channel.setTyping(chatIdOf(general.id), true);
    await channel.stop();
    assert.equal(channel.state(), 'disconnected');
    await until(() => !fake.connected, 2_000, 'the socket closed');
    const typing = fake.typing.length;
    const beats = fake.heartbeats;
    await sleep(600);
    assert.equal(fake.typing.length, typing);
    assert.equal(fake.heartbeats, beats);
    await fake.close();
  });
});

// ---- the whole path: fake Discord → pincer → sandboxed agent → fake model → fake Discord ----

const skip = await sandboxUnavailable();

describe('a Discord message becomes a turn and the reply goes back to Discord', { skip }, () => {
  let fake: FakeDiscord;
  let h: Harness;
  let alice: FakeUser;
  let dm: ReturnType<FakeDiscord['addDm']>;
  let team: ReturnType<FakeDiscord['addTextChannel']>;
  const LONG = Array.from({ length: 45 }, (_, i) => `Paragraph ${i + 1}: ${'lorem ipsum '.repeat(8).trim()}.`).join('\n\n');

  const turnsAbout = (needle: string) => h.fake.requests.filter((r: ModelRequest) => isAgentTurn(r) && lastUserText(r).includes(needle));
  const repliesTo = (messageId: string) => fake.sent.filter((s) => s.replyTo === messageId);

  before(async () => {
    fake = await FakeDiscord.start();
    alice = fake.user('alice', 'Alice');
    dm = fake.addDm(alice);
    team = fake.addTextChannel('team');
    h = await startHarness({
      env: { DISCORD_BOT_TOKEN: fake.token, DISCORD_API_URL: fake.apiUrl },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        const text = lastUserText(req);
        if (text.includes('write a long answer')) return { text: LONG };
        if (text.includes('take your time')) return { text: 'done slowly', delayMs: 1_500 };
        return { text: `echo: ${text.slice(-100)}` };
      },
    });
  });
  after(async () => {
    await h?.stop();
    await fake?.close();
  });

  test('an unjoined DM is listed, not answered; joined, a message is answered as a reply, with typing while the agent works', async (t) => {
    const first = fake.post({ channelId: dm.id, author: alice, content: 'hello?' });
    const chatId = `discord:${dm.id}`;
    await until(() => h.pincer.store.chats.get(chatId) !== undefined, 5_000, 'the chat stored');
    assert.equal(h.pincer.store.chats.get(chatId)?.name, 'Alice');
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId, folder: 'alice', respondToAll: true });
    const t0 = Date.now();
    const m = fake.post({ channelId: dm.id, author: alice, content: 'please take your time' });
    await fake.waitFor(() => repliesTo(String(m.id)).length > 0, 60_000, 'the reply');
    const reply = repliesTo(String(m.id))[0];
    assert.equal(reply?.content, 'done slowly');
    assert.equal(repliesTo(String(first.id)).length, 0, 'the message before the join got no answer');
    const typing = fake.typing.filter((x) => x.channelId === dm.id && x.at >= t0);
    t.diagnostic(
      `first turn answered in ${(reply?.at ?? 0) - t0} ms; typing sent ${typing.length}x, first after ${(typing[0]?.at ?? 0) - t0} ms`,
    );
    assert.ok(typing.length >= 1 && (typing[0]?.at ?? 0) < (reply?.at ?? 0), 'typing shown before the reply');
    await sleep(1_000);
    assert.ok(
      fake.typing.filter((x) => x.channelId === dm.id).every((x) => x.at <= (reply?.at ?? 0)),
      'no typing after the reply',
    );
  });

  test('in a group that needs the trigger, plain talk is context and a mention of the bot engages', async () => {
    const chatId = `discord:${team.id}`;
    const plain = fake.post({ channelId: team.id, author: alice, content: 'just chatting' });
    await until(() => h.pincer.store.chats.get(chatId) !== undefined, 5_000, 'the chat stored');
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId, folder: 'team' });
    const quiet = fake.post({ channelId: team.id, author: alice, content: 'context for later' });
    const loud = fake.post({ channelId: team.id, author: alice, content: `<@${fake.bot.id}> what did I say?`, mentions: [fake.bot] });
    await fake.waitFor(() => repliesTo(String(loud.id)).length > 0, 60_000, 'the reply to the mention');
    const turn = turnsAbout('what did I say?').at(-1);
    assert.ok(turn);
    const prompt = lastUserText(turn);
    assert.match(prompt, /@Andy what did I say\?/, 'the mention reads as @Andy');
    assert.match(prompt, /context for later/, 'the turn sees the context before it');
    assert.equal(repliesTo(String(quiet.id)).length + repliesTo(String(plain.id)).length, 0);
    // A reply to the bot's message engages too.
    const botReply = repliesTo(String(loud.id))[0];
    const followUp = fake.post({ channelId: team.id, author: alice, content: 'and one more thing', replyTo: botReply?.id });
    await fake.waitFor(() => repliesTo(String(followUp.id)).length > 0, 60_000, 'the reply to the reply');
  });

  test('a redelivered MESSAGE_CREATE (replayed after RESUME) makes no second turn', async () => {
    const m = fake.post({ channelId: dm.id, author: alice, content: 'only once please' });
    await fake.waitFor(() => repliesTo(String(m.id)).length > 0, 60_000, 'the reply');
    const resumes = fake.resumes;
    fake.drop({ code: 4000, replayLast: 3 });
    await fake.waitFor(() => fake.resumes > resumes && fake.connected, 10_000, 'the resume');
    await sleep(1_500);
    assert.equal(turnsAbout('only once please').length, 1);
    assert.equal(repliesTo(String(m.id)).length, 1);
    const stored = h.pincer.store.db.prepare('SELECT COUNT(*) AS n FROM messages WHERE platform_id = ?').get(String(m.id)) as { n: number };
    assert.equal(stored.n, 1);
  });

  test('after a dropped connection, a message sent meanwhile still arrives and is answered', async () => {
    fake.drop({ code: 4000 });
    const m = fake.post({ channelId: dm.id, author: alice, content: 'are you back?' });
    await fake.waitFor(() => repliesTo(String(m.id)).length > 0, 60_000, 'the reply after the reconnect');
  });

  test('a 429 on the reply is honoured: it arrives after retry_after', async (t) => {
    fake.rateLimitNext(1, 2_000);
    const m = fake.post({ channelId: dm.id, author: alice, content: 'answer despite the limit' });
    await fake.waitFor(() => repliesTo(String(m.id)).length > 0, 60_000, 'the reply after the limit');
    const limitedAt = fake.rateLimited.at(-1)?.at ?? 0;
    const reply = repliesTo(String(m.id))[0];
    assert.ok(limitedAt > 0);
    const waited = (reply?.at ?? 0) - limitedAt;
    t.diagnostic(`reply sent ${waited} ms after the 429 (retry_after 2000 ms)`);
    assert.ok(waited >= 2_000, `waited ${waited} ms`);
    assert.ok(waited < 8_000, `waited ${waited} ms, not the outbox's longer schedule`);
  });

  test('a long reply is split into parts within 2000 characters, in order; only the first replies to (pings) the asker', async () => {
    const m = fake.post({ channelId: dm.id, author: alice, content: 'write a long answer' });
    const expected = Math.ceil(LONG.length / 2000);
    const after = () => {
      const first = fake.sent.findIndex((s) => s.replyTo === String(m.id));
      return first < 0 ? [] : fake.sent.slice(first).filter((s) => s.channelId === dm.id);
    };
    await fake.waitFor(() => after().length >= expected, 60_000, 'all parts');
    await sleep(300);
    const parts = after();
    assert.ok(parts.length >= expected && parts.length <= expected + 1, `${parts.length} parts for ${LONG.length} characters`);
    assert.ok(parts.every((p) => p.content.length <= 2000));
    assert.deepEqual(
      parts.map((p) => p.replyTo),
      [String(m.id), ...Array(parts.length - 1).fill(undefined)],
    );
    assert.equal(parts.map((p) => p.content).join('\n\n'), LONG);
  });

  test("a photo lands in the group's inbox/ and the prompt names it", async () => {
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const m = fake.post({
      channelId: dm.id,
      author: alice,
      content: 'what is in this picture?',
      attachments: [{ name: 'holiday.png', contentType: 'image/png', data: png }],
    });
    await fake.waitFor(() => repliesTo(String(m.id)).length > 0, 60_000, 'the reply');
    const inbox = join(h.home, 'groups', 'alice', 'inbox');
    assert.ok(existsSync(inbox));
    const file = readdirSync(inbox).find((f) => f.endsWith('holiday.png'));
    assert.ok(file, `inbox has ${readdirSync(inbox).join(', ')}`);
    assert.deepEqual(readFileSync(join(inbox, file)), png);
    const turn = turnsAbout('what is in this picture?').at(-1);
    assert.ok(turn && lastUserText(turn).includes(`inbox/${file}`), 'the prompt names the file');
  });
});

// The Telegram adapter: its pure mapping, then the real grammY client against a fake Bot API on loopback
// (long polling, reconnects, media, sends, typing), then whole turns through pincer with the fake model.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { GrammyError, HttpError } from 'grammy';
import type { Message } from 'grammy/types';
import {
  backoffDelay,
  commandOf,
  describeError,
  mediaOf,
  platformChatId,
  rewriteMentions,
  sendFailure,
  TelegramChannel,
  telegramChatId,
  toInbound,
} from '../src/channels/telegram.js';
import { type InboundMessage, type InboundSink, type IngestResult, RateLimitedError } from '../src/channels/types.js';
import { createLogger } from '../src/log.js';
import { AGENT_REPLY, longAgentReply, MARKDOWN_SYNTAX } from './helpers/agent-reply.js';
import { isAgentTurn, lastUserText } from './helpers/fake-model.js';
import { type FakeTelegram, type Json, type SentRecord, startFakeTelegram } from './helpers/fake-telegram.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const BOT = { id: 777000111, username: 'pincer_test_bot' };
const USER = { id: 4242, is_bot: false, first_name: 'Olive', last_name: 'Owner', username: 'olive' };
const GROUP = { id: -100555, type: 'supergroup', title: 'Team' };
const log = createLogger(process.env.PINCER_TEST_LOG ?? 'silent');

/** Test messages are written as the JSON Telegram sends; this names that JSON as grammY's type. */
const msg = (fields: Json): Message =>
  ({ message_id: 7, date: 1_700_000_000, chat: { id: USER.id, type: 'private', first_name: 'Olive' }, from: USER, ...fields }) as Message;

describe('telegram mapping', () => {
  test('chat ids are tg:<chat id>, negative for groups; other ids are refused', () => {
    assert.equal(telegramChatId(-100123), 'tg:-100123');
    assert.equal(platformChatId('tg:-100123'), -100123);
    assert.equal(platformChatId('tg:42'), 42);
    assert.throws(() => platformChatId('slack:C1'), /not a Telegram chat id/);
    assert.throws(() => platformChatId('tg:abc'), /not a Telegram chat id/);
  });

  test('a direct message maps with sender, chat name, time and the message id as platform id', () => {
    const m = toInbound(msg({ text: 'hello there' }), BOT, 'Andy');
    assert.deepEqual(m, {
      chatId: 'tg:4242',
      channel: 'telegram',
      platformId: '7',
      senderId: 'tg:4242',
      senderName: 'Olive Owner',
      text: 'hello there',
      sentAt: 1_700_000_000_000,
      chatName: 'Olive',
      isGroup: false,
    });
  });

  test('a mention entity of the bot engages and reads as @<assistantName>, also after an emoji (UTF-16 offsets)', () => {
    const text = '👋 @Pincer_Test_Bot what did Bob say?';
    const m = toInbound(msg({ chat: GROUP, text, entities: [{ type: 'mention', offset: 3, length: 16 }] }), BOT, 'Andy');
    assert.equal(m?.text, '👋 @Andy what did Bob say?');
    assert.equal(m?.mentionsBot, true);
    assert.equal(m?.isGroup, true);
    assert.equal(m?.chatName, 'Team');
    assert.equal(m?.chatId, 'tg:-100555');
  });

  test('a mention of another user does not engage; a text mention of the bot does; a bare @botname does', () => {
    const other = toInbound(msg({ chat: GROUP, text: '@bob look', entities: [{ type: 'mention', offset: 0, length: 4 }] }), BOT, 'Andy');
    assert.equal(other?.mentionsBot, undefined);
    assert.equal(other?.text, '@bob look');
    const textMention = rewriteMentions(
      'Pincer, help',
      [{ type: 'text_mention', offset: 0, length: 6, user: { ...USER, id: BOT.id } }],
      BOT,
      'Andy',
    );
    assert.deepEqual(textMention, { text: '@Andy, help', mentioned: true });
    assert.deepEqual(rewriteMentions('ask @pincer_test_bot now', [], BOT, 'Andy'), { text: 'ask @Andy now', mentioned: true });
    assert.deepEqual(rewriteMentions('mail x@pincer_test_bot or @pincer_test_botty', [], BOT, 'Andy'), {
      text: 'mail x@pincer_test_bot or @pincer_test_botty',
      mentioned: false,
    });
  });

  test('a reply to the bot engages; the bot’s own messages are ignored', () => {
    const reply = toInbound(
      msg({ chat: GROUP, text: 'and then?', reply_to_message: msg({ from: { ...BOT, is_bot: true, first_name: 'P' } }) }),
      BOT,
      'Andy',
    );
    assert.equal(reply?.mentionsBot, true);
    assert.equal(reply?.text, 'and then?');
    assert.equal(toInbound(msg({ text: 'echo', from: { ...BOT, is_bot: true, first_name: 'P' } }), BOT, 'Andy'), undefined);
  });

  test('anonymous admins speak as the chat; forum topics give the thread; captions are the text', () => {
    const anon = toInbound(msg({ chat: GROUP, sender_chat: GROUP, text: 'notice', author_signature: 'Boss' }), BOT, 'Andy');
    assert.equal(anon?.senderId, 'tg:-100555');
    assert.equal(anon?.senderName, 'Boss');
    const topic = toInbound(msg({ chat: GROUP, text: 'in a topic', is_topic_message: true, message_thread_id: 12 }), BOT, 'Andy');
    assert.equal(topic?.threadId, '12');
    const caption = toInbound(
      msg({
        caption: '@pincer_test_bot see this',
        caption_entities: [{ type: 'mention', offset: 0, length: 16 }],
        photo: [{ file_id: 'a', file_unique_id: 'a', width: 90, height: 90 }],
      }),
      BOT,
      'Andy',
    );
    assert.equal(caption?.text, '@Andy see this');
    assert.equal(caption?.mentionsBot, true);
  });

  test('the bot being added is noted; other service messages are ignored', () => {
    const added = toInbound(msg({ chat: GROUP, new_chat_members: [{ ...BOT, is_bot: true, first_name: 'P' }] }), BOT, 'Andy');
    assert.equal(added?.text, '[Olive Owner added Andy to this chat]');
    assert.equal(toInbound(msg({ chat: GROUP, pinned_message: msg({ text: 'x' }) }), BOT, 'Andy'), undefined);
  });

  test('media: the largest photo size, documents, voice notes, audio, video', () => {
    const photo = mediaOf(
      msg({
        photo: [
          { file_id: 'small', file_unique_id: 's', width: 90, height: 60, file_size: 1_000 },
          { file_id: 'large', file_unique_id: 'l', width: 1280, height: 853, file_size: 90_000 },
          { file_id: 'mid', file_unique_id: 'm', width: 320, height: 213, file_size: 9_000 },
        ],
      }),
    );
    assert.deepEqual(photo, [{ kind: 'image', label: 'photo', fileId: 'large', size: 90_000, mime: 'image/jpeg' }]);
    assert.deepEqual(
      mediaOf(
        msg({ document: { file_id: 'd', file_unique_id: 'd', file_name: 'report.pdf', mime_type: 'application/pdf', file_size: 5 } }),
      ),
      [{ kind: 'document', label: 'document', fileId: 'd', size: 5, name: 'report.pdf', mime: 'application/pdf' }],
    );
    assert.deepEqual(mediaOf(msg({ voice: { file_id: 'v', file_unique_id: 'v', duration: 3 } })), [
      { kind: 'audio', label: 'voice note', fileId: 'v', mime: 'audio/ogg' },
    ]);
    assert.equal(mediaOf(msg({ audio: { file_id: 'a', file_unique_id: 'a', duration: 3, mime_type: 'audio/mpeg' } }))[0]?.kind, 'audio');
    assert.equal(mediaOf(msg({ video: { file_id: 'v', file_unique_id: 'v', width: 1, height: 1, duration: 3 } }))[0]?.kind, 'video');
    assert.deepEqual(mediaOf(msg({ text: 'no files' })), []);
  });

  test('commands: /chatid and /chatid@thisbot are ours, /chatid@otherbot and mid-text commands are not', () => {
    const cmd = (text: string) => msg({ text, entities: [{ type: 'bot_command', offset: 0, length: text.split(' ')[0]?.length ?? 0 }] });
    assert.equal(commandOf(cmd('/chatid'), BOT.username), 'chatid');
    assert.equal(commandOf(cmd('/START@Pincer_Test_Bot hi'), BOT.username), 'start');
    assert.equal(commandOf(cmd('/chatid@other_bot'), BOT.username), undefined);
    assert.equal(
      commandOf(msg({ text: 'say /chatid', entities: [{ type: 'bot_command', offset: 4, length: 7 }] }), BOT.username),
      undefined,
    );
  });

  test('a 429 becomes RateLimitedError(retry_after s); other errors say what Telegram said, never the token', () => {
    const limited = sendFailure(
      new GrammyError(
        "Call to 'sendMessage' failed!",
        { ok: false, error_code: 429, description: 'Too Many Requests: retry after 3', parameters: { retry_after: 3 } },
        'sendMessage',
        {},
      ),
      'sendMessage',
      'SECRET',
    );
    assert.ok(limited instanceof RateLimitedError);
    assert.equal(limited.retryAfterMs, 3000);
    const refused = sendFailure(
      new GrammyError(
        "Call to 'sendMessage' failed!",
        { ok: false, error_code: 403, description: 'Forbidden: bot was blocked by the user' },
        'sendMessage',
        {},
      ),
      'sendMessage',
      'SECRET',
    );
    assert.ok(!(refused instanceof RateLimitedError));
    assert.match(refused.message, /sendMessage failed: Telegram said 403: Forbidden: bot was blocked by the user/);
    const moved = describeError(
      new GrammyError(
        'x',
        { ok: false, error_code: 400, description: 'Bad Request: group chat was upgraded', parameters: { migrate_to_chat_id: -1009 } },
        'sendMessage',
        {},
      ),
      'SECRET',
    );
    assert.match(moved, /now tg:-1009/);
    const network = describeError(
      new HttpError("Network request for 'getMe' failed!", new Error('request to http://x/botSECRET/getMe failed')),
      'SECRET',
    );
    assert.match(network, /unreachable/);
    assert.doesNotMatch(network, /SECRET/);
  });

  test('backoff doubles from the minimum up to the cap, with jitter in the upper half', () => {
    assert.equal(
      backoffDelay(1, 1000, 60_000, () => 0),
      500,
    );
    assert.equal(
      backoffDelay(1, 1000, 60_000, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(4, 1000, 60_000, () => 1),
      8000,
    );
    assert.equal(
      backoffDelay(30, 1000, 60_000, () => 1),
      60_000,
    );
    assert.equal(
      backoffDelay(30, 1000, 60_000, () => 0),
      30_000,
    );
  });
});

/** A sink that records what it is given; the dedup of redeliveries is the store's, so it only remembers ids. */
class RecordingSink implements InboundSink {
  maxMediaBytes = 256 * 1024;
  /** The next this many ingests throw, as a store that cannot write would. */
  failures = 0;
  attempts = 0;
  readonly joined = new Set<string>();
  readonly messages: InboundMessage[] = [];
  /** Chats the adapter said someone is typing in. */
  readonly typed: string[] = [];
  readonly #ids = new Set<string>();

  typing(chatId: string): void {
    this.typed.push(chatId);
  }

  isJoined(chatId: string): boolean {
    return this.joined.has(chatId);
  }

  seen(chatId: string, platformId: string): boolean {
    return this.#ids.has(`${chatId}/${platformId}`);
  }

  async ingest(message: InboundMessage): Promise<IngestResult> {
    this.attempts++;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('database is locked');
    }
    const key = `${message.chatId}/${message.platformId}`;
    const duplicate = this.#ids.has(key);
    this.#ids.add(key);
    this.messages.push(message);
    return { seq: this.messages.length, duplicate, engaged: false };
  }
}

describe('telegram adapter against a fake Bot API (real grammY)', () => {
  let fake: FakeTelegram;
  let channel: TelegramChannel;
  const sink = new RecordingSink();

  /** The next message the sink gets that matches, within a bound. */
  const ingested = (predicate: (m: InboundMessage) => boolean, what: string, timeoutMs = 5_000) =>
    fake.waitFor(() => sink.messages.find(predicate), timeoutMs, what);

  before(async () => {
    fake = await startFakeTelegram();
    channel = new TelegramChannel({
      token: fake.token,
      apiRoot: fake.url,
      assistantName: 'Andy',
      log,
      backoffMs: { min: 50, max: 400 },
      typingIntervalMs: 100,
    });
    await channel.start(sink);
  });
  after(async () => {
    await channel?.stop();
    await fake?.close();
  });

  test('start asks who the bot is, removes a webhook, registers /start and /chatid, then long-polls', async () => {
    const methods = fake.calls.map((c) => c.method);
    assert.deepEqual(methods.slice(0, 3), ['getMe', 'deleteWebhook', 'setMyCommands']);
    assert.deepEqual(
      fake.commands.map((c) => (c as { command: string }).command),
      ['start', 'chatid'],
    );
    assert.equal(channel.state(), 'connected');
    assert.deepEqual(channel.bot, { id: fake.bot.id, username: fake.bot.username });
    await fake.waitFor(() => (fake.heldPolls() === 1 ? true : undefined), 2_000, 'a held getUpdates');
    assert.ok(channel.owns('tg:1') && !channel.owns('local:main'));
    assert.equal(channel.maxTextLength, 4096);
  });

  test('a token Telegram refuses makes start reject; an unreachable API does not', async () => {
    const wrong = new TelegramChannel({ token: '1:wrong', apiRoot: fake.url, assistantName: 'Andy', log });
    await assert.rejects(wrong.start(new RecordingSink()), /refused the bot token.*401.*TELEGRAM_BOT_TOKEN/);
    assert.equal(wrong.state(), 'disconnected');
    await wrong.stop();
    // A port nothing listens on: start resolves and keeps trying; stop ends it at once.
    const closed = await startFakeTelegram();
    const url = closed.url;
    await closed.close();
    const away = new TelegramChannel({ token: fake.token, apiRoot: url, assistantName: 'Andy', log, backoffMs: { min: 20, max: 100 } });
    const t0 = performance.now();
    await away.start(new RecordingSink());
    assert.equal(away.state(), 'connecting');
    await sleep(150);
    await away.stop();
    assert.equal(away.state(), 'disconnected');
    assert.ok(performance.now() - t0 < 2_000);
  });

  test('started while Telegram is down, the adapter connects once it is back and gets what was sent meanwhile', async () => {
    const later = await startFakeTelegram();
    const laterSink = new RecordingSink();
    const late = new TelegramChannel({
      token: later.token,
      apiRoot: later.url,
      assistantName: 'Andy',
      log,
      backoffMs: { min: 50, max: 200 },
    });
    try {
      later.dropPolls(500);
      await late.start(laterSink);
      assert.equal(late.state(), 'connecting');
      const m = later.pushMessage({ text: 'before you were up' });
      await later.waitFor(() => laterSink.messages.find((x) => x.platformId === String(m.message_id)), 5_000, 'the message');
      assert.equal(late.state(), 'connected');
      assert.ok(
        later.calls.some((c) => c.method === 'setMyCommands'),
        'the start sequence ran once reachable',
      );
    } finally {
      await late.stop();
      await later.close();
    }
  });

  test('text in a DM and in a group arrives; the offset confirms each update', async () => {
    const dm = fake.pushMessage({ text: 'hi from a DM' });
    const group = fake.pushMessage({ chat: GROUP, text: 'hi all' });
    const a = await ingested((m) => m.platformId === String(dm.message_id), 'the DM');
    const b = await ingested((m) => m.platformId === String(group.message_id), 'the group message');
    assert.equal(a.chatId, 'tg:4242');
    assert.equal(b.chatId, 'tg:-100555');
    assert.equal(b.isGroup, true);
    // The poll after them asks for the update after the last one: Telegram then forgets both.
    await fake.waitFor(() => fake.calls.find((c) => c.method === 'getUpdates' && (c.offset ?? 0) > 501), 2_000, 'a confirming offset');
  });

  test('an update the sink cannot store is retried from the same offset, and given up after 5 tries', async () => {
    sink.failures = 2;
    const attempts = sink.attempts;
    const m = fake.pushMessage({ text: 'store me eventually' });
    await ingested((x) => x.platformId === String(m.message_id), 'the retried message');
    assert.equal(sink.attempts - attempts, 3);
    sink.failures = 100;
    const poison = fake.pushMessage({ text: 'never storable' });
    await fake.waitFor(() => (sink.attempts - attempts >= 8 ? true : undefined), 5_000, 'five tries of the poison update');
    sink.failures = 0;
    const next = fake.pushMessage({ text: 'the chat goes on' });
    await ingested((x) => x.platformId === String(next.message_id), 'the message after it');
    assert.equal(sink.attempts - attempts, 9, 'the failing update was tried 5 times, then skipped');
    assert.ok(!sink.messages.some((x) => x.platformId === String(poison.message_id)));
  });

  test('/chatid is answered with tg:<id> and lists an unjoined chat; /start in a joined chat does not reach the agent', async () => {
    const chat = { id: -100999, type: 'group', title: 'Family' };
    const cmd = fake.pushMessage({ chat, text: '/chatid', entities: [{ type: 'bot_command', offset: 0, length: 7 }] });
    const answer = await fake.waitFor(() => fake.sent.find((s) => s.chatId === -100999), 3_000, 'the /chatid answer');
    assert.match(answer.text ?? '', /^tg:-100999\n/);
    assert.match(answer.text ?? '', /PINCER_MAIN_CHAT=tg:-100999/);
    assert.equal(answer.replyTo, cmd.message_id);
    await ingested((m) => m.chatId === 'tg:-100999', 'the unjoined chat being listed');

    sink.joined.add('tg:4242');
    const before = sink.messages.length;
    fake.pushMessage({ text: '/start', entities: [{ type: 'bot_command', offset: 0, length: 6 }] });
    const hello = await fake.waitFor(
      () => fake.sent.find((s) => s.chatId === USER.id && /Hi, I'm Andy/.test(s.text ?? '')),
      3_000,
      'the greeting',
    );
    assert.match(hello.text ?? '', /listening/);
    const marker = fake.pushMessage({ text: 'after start' });
    await ingested((m) => m.platformId === String(marker.message_id), 'the next message');
    assert.deepEqual(
      sink.messages.slice(before).map((m) => m.text),
      ['after start'],
      'the /start itself was not ingested',
    );
  });

  test('media of a joined chat is downloaded within the limit; too large is skipped with a note; unjoined is not fetched', async () => {
    sink.joined.add('tg:4242');
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff]), Buffer.alloc(100_000, 7)]);
    const photo = fake.addFile(jpeg, { path: 'photos/file_1.jpg' });
    const pdf = fake.addFile(Buffer.from('%PDF-1.4 tiny'), { path: 'documents/file_2.pdf' });
    const m1 = fake.pushMessage({
      caption: 'look',
      photo: [
        { file_id: 'thumb', file_unique_id: 't', width: 90, height: 90, file_size: 900 },
        { file_id: photo, file_unique_id: 'p', width: 1280, height: 960, file_size: jpeg.length },
      ],
    });
    const got = await ingested((m) => m.platformId === String(m1.message_id), 'the photo');
    assert.equal(got.text, 'look');
    assert.equal(got.attachments?.length, 1);
    assert.equal(got.attachments?.[0]?.kind, 'image');
    assert.equal(got.attachments?.[0]?.mime, 'image/jpeg');
    assert.ok(got.attachments?.[0]?.data.equals(jpeg));

    // Declared too large: not even asked for.
    const getFiles = () => fake.calls.filter((c) => c.method === 'getFile').length;
    const before = getFiles();
    const m2 = fake.pushMessage({ document: { file_id: 'huge', file_unique_id: 'h', file_name: 'big.zip', file_size: 50 * 1024 * 1024 } });
    const big = await ingested((m) => m.platformId === String(m2.message_id), 'the oversized document');
    assert.equal(big.attachments, undefined);
    assert.match(big.text, /\[document big\.zip \(50 MB\) not downloaded: larger than 0\.3 MB\]/);
    assert.equal(getFiles(), before);

    // Declared small but larger on the wire (no length header): reading stops past the limit.
    const liar = fake.addFile(Buffer.alloc(2 * 1024 * 1024, 1), { path: 'documents/liar.bin', declaredSize: 10, chunked: true });
    const m3 = fake.pushMessage({
      caption: 'two files',
      document: { file_id: liar, file_unique_id: 'l', file_name: 'liar.bin', file_size: 10 },
    });
    const lied = await ingested((m) => m.platformId === String(m3.message_id), 'the lying document');
    assert.equal(lied.attachments, undefined);
    assert.match(lied.text, /^two files\n\[document liar\.bin not downloaded: larger than 0\.3 MB\]$/);

    // A redelivered message is not downloaded again; an unjoined chat's media is never downloaded.
    const afterLiar = getFiles();
    fake.redeliver(m1);
    const m4 = fake.pushMessage({ chat: GROUP, document: { file_id: pdf, file_unique_id: 'd', file_name: 'x.pdf', file_size: 13 } });
    const unjoined = await ingested((m) => m.chatId === 'tg:-100555' && m.platformId === String(m4.message_id), 'the unjoined document');
    assert.equal(unjoined.attachments, undefined);
    assert.equal(sink.messages.filter((m) => m.platformId === String(m1.message_id)).length, 2, 'the redelivery reached the sink');
    assert.equal(sink.messages.filter((m) => m.platformId === String(m1.message_id))[1]?.attachments, undefined);
    assert.equal(getFiles(), afterLiar);
  });

  test('after the fake drops the held poll (and refuses connections for a while), a message sent meanwhile arrives', async () => {
    await fake.waitFor(() => (fake.heldPolls() === 1 ? true : undefined), 2_000, 'a held poll');
    const t0 = performance.now();
    assert.equal(fake.dropPolls(600), 1);
    const during = fake.pushMessage({ text: 'sent while the connection was down' });
    await fake.waitFor(() => (channel.state() === 'connecting' ? true : undefined), 2_000, 'the adapter noticing');
    const got = await ingested((m) => m.platformId === String(during.message_id), 'the message after reconnect', 5_000);
    const ms = performance.now() - t0;
    assert.equal(got.text, 'sent while the connection was down');
    assert.equal(channel.state(), 'connected');
    assert.ok(ms >= 600 && ms < 3_000, `arrived ${Math.round(ms)} ms after the drop`);
  });

  test('send: Markdown as entities (no parse mode), replying to the answered message in a topic; files as photo or document', async () => {
    const t = await channel.send('tg:-100555', { text: '*in italics* <b>x</b>', replyTo: { platformId: '41', threadId: '12' } });
    const text = fake.sent.find((s) => String(s.messageId) === t.platformId);
    assert.equal(text?.text, 'in italics x');
    assert.deepEqual(text?.entities, [{ type: 'italic', offset: 0, length: 10 }]);
    assert.equal(text?.parseMode, undefined);
    assert.equal(text?.replyTo, 41);
    assert.equal(text?.threadId, 12);

    const png = Buffer.from('89504e470d0a1a0a-fake-png');
    const p = await channel.send('tg:4242', { text: 'the chart', file: { name: 'chart.png', data: png } });
    const photo = fake.sent.find((s) => String(s.messageId) === p.platformId);
    assert.equal(photo?.method, 'sendPhoto');
    assert.equal(photo?.caption, 'the chart');
    assert.ok(photo?.file?.data.equals(png));

    const pdf = Buffer.from('%PDF-1.4 report');
    const d = await channel.send('tg:4242', { text: 'x'.repeat(1500), file: { name: 'report.pdf', data: pdf } });
    const doc = fake.sent.find((s) => String(s.messageId) === d.platformId);
    assert.equal(doc?.method, 'sendDocument');
    assert.equal(doc?.file?.name, 'report.pdf');
    assert.ok(doc?.file?.data.equals(pdf));
    assert.equal(doc?.caption, undefined, 'a caption over 1024 characters goes as its own message first');
    const before = fake.sent[fake.sent.indexOf(doc as SentRecord) - 1];
    assert.equal(before?.text?.length, 1500);
  });

  test("an agent's reply shows as Telegram formats text: entities at UTF-16 offsets, no Markdown syntax left", async () => {
    const { platformId } = await channel.send('tg:4242', { text: AGENT_REPLY, replyTo: { platformId: '7' } });
    const shown = fake.sent.find((s) => String(s.messageId) === platformId);
    assert.ok(shown?.text && shown.entities);
    // Code is shown as written (its `**` included); everything else carries no Markdown syntax.
    let prose = shown.text;
    for (const e of shown.entities.filter((e) => e.type === 'pre' || e.type === 'code').reverse())
      prose = prose.slice(0, e.offset) + prose.slice(e.offset + e.length);
    for (const syntax of [...MARKDOWN_SYNTAX, '```', '`']) assert.ok(!prose.includes(syntax), `no ${syntax} in ${prose}`);
    const covered = (type: string) =>
      (shown.entities ?? []).filter((e) => e.type === type).map((e) => shown.text?.slice(e.offset, e.offset + e.length));
    // An emoji in the heading before every other entity: UTF-16 offsets or every span would be off by one.
    assert.deepEqual(covered('bold'), ['Trip plan for Zoë 🚀', 'what I booked', 'Train:']);
    assert.deepEqual(covered('italic'), ['Tuesday']);
    assert.deepEqual(covered('strikethrough'), ['9:00']);
    assert.deepEqual(covered('code'), ['budget.py']);
    assert.deepEqual(covered('text_link'), ['München']);
    assert.equal(shown.entities.find((e) => e.type === 'text_link')?.url, 'https://bahn.de/tickets?id=42');
    assert.deepEqual(covered('blockquote'), ['The museum closes at 17:00.']);
    const pre = shown.entities.filter((e) => e.type === 'pre');
    assert.deepEqual(
      pre.map((e) => [e.language, shown.text?.slice(e.offset, e.offset + e.length)]),
      [
        [undefined, 'Day | Plan 🗺️\n----+--------\nTue | Museum\nWed | Hike ⛰️'],
        ['python', 'total = sum(costs)  # **not bold**\nprint(f"{total} €")'],
      ],
    );
    assert.match(shown.text, /^• Train: ICE 123 to München\n• Hotel: 東京ホテル 🏨\n• Budget checked with budget\.py$/m);
    assert.match(shown.text, /^1\. Pack\n2\. Leave$/m);
    assert.equal(shown.replyTo, 7);
  });

  test('a long reply goes in parts within 4096: each formatted on its own, the code block reopened, only the first quoting', async () => {
    const reply = longAgentReply(150);
    const count = channel.partsOf(reply);
    const before = fake.sent.length;
    await channel.send('tg:-100555', { text: reply, replyTo: { platformId: '41', threadId: '12' } });
    const parts = fake.sent.slice(before);
    assert.equal(parts.length, count);
    assert.ok(count >= 3, `${count} parts`);
    assert.ok(parts.every((p) => (p.text?.length ?? 0) <= 4096));
    assert.deepEqual(
      parts.map((p) => p.replyTo),
      [41, ...Array(count - 1).fill(undefined)],
      'only the first part quotes',
    );
    assert.ok(
      parts.every((p) => p.threadId === 12),
      'every part in the topic',
    );
    const withCode = parts.filter((p) => p.entities?.some((e) => e.type === 'pre' && e.language === 'python'));
    assert.ok(withCode.length >= 2, 'the code block is cut in two, a pre entity with its language in each part');
    for (const p of parts) {
      const bold = (p.entities ?? []).filter((e) => e.type === 'bold').map((e) => p.text?.slice(e.offset, e.offset + e.length));
      assert.ok(
        bold.every((b) => b === 'Recipe' || /^Point \d+$/.test(b ?? '')),
        `bold spans whole: ${bold.join(', ')}`,
      );
    }
    const all = parts.map((p) => p.text).join('\n');
    assert.equal((all.match(/step_\d+ =/g) ?? []).length, 150, 'every line of code once');
    assert.ok(all.endsWith('Buon appetito! 🇮🇹'));
  });

  test('the fake refuses entities as the Bot API does: past the text, or overlapping wrongly', async () => {
    const call = (entities: unknown[]) =>
      fetch(`${fake.url}/bot${fake.token}/sendMessage`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ chat_id: 4242, text: 'ab😀', entities }),
      }).then((r) => r.status);
    assert.equal(await call([{ type: 'bold', offset: 2, length: 2 }]), 200, 'the emoji is two UTF-16 code units');
    assert.equal(await call([{ type: 'bold', offset: 2, length: 3 }]), 400);
    assert.equal(
      await call([
        { type: 'bold', offset: 0, length: 2 },
        { type: 'italic', offset: 1, length: 2 },
      ]),
      400,
    );
    assert.equal(
      await call([
        { type: 'code', offset: 0, length: 3 },
        { type: 'bold', offset: 0, length: 1 },
      ]),
      400,
    );
  });

  test('send: a 429 throws RateLimitedError with retry_after; another refusal says what Telegram said', async () => {
    fake.failNextSend(2);
    await assert.rejects(channel.send('tg:4242', { text: 'hello' }), (err: unknown) => {
      assert.ok(err instanceof RateLimitedError);
      assert.equal(err.retryAfterMs, 2000);
      return true;
    });
    await assert.rejects(channel.send('tg:4242', { text: ' ' }), /the reply has no text to send/);
    await assert.rejects(channel.send('local:main', { text: 'x' }), /not a Telegram chat id/);
  });

  test('typing is renewed on a timer while on and stops when off', async () => {
    const count = () => fake.actions.filter((a) => a.chatId === USER.id && a.action === 'typing').length;
    const start = count();
    await channel.setTyping('tg:4242', true);
    await channel.setTyping('tg:4242', true);
    await sleep(350);
    const during = count() - start;
    assert.ok(during >= 3 && during <= 5, `${during} typing actions in 350 ms at a 100 ms interval`);
    await channel.setTyping('tg:4242', false);
    await sleep(50);
    const off = count();
    await sleep(300);
    assert.equal(count(), off, 'no typing after it was turned off');
  });

  test('stop ends the held poll and every timer', async () => {
    await channel.setTyping('tg:4242', true);
    await channel.stop();
    assert.equal(channel.state(), 'disconnected');
    const actions = fake.actions.length;
    await sleep(250);
    assert.equal(fake.actions.length, actions);
    await fake.waitFor(() => (fake.heldPolls() === 0 ? true : undefined), 1_000, 'the poll to be closed');
  });
});

const skip = await sandboxUnavailable();

describe('telegram through pincer: turns with the fake model', { skip }, () => {
  let fake: FakeTelegram;
  let h: Harness;
  const LONG = Array.from({ length: 60 }, (_, i) => `Paragraph ${i + 1}: ${'lorem ipsum dolor sit amet '.repeat(5).trim()}.`).join('\n\n');

  /** The next message the bot sent to a chat after `from` (an index into fake.sent). */
  const sentTo = (chatId: number, from: number, timeoutMs = 30_000) =>
    fake.waitFor(() => fake.sent.slice(from).find((s) => s.chatId === chatId), timeoutMs, `a message to ${chatId}`);
  const agentRequests = (needle: string) => h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes(needle));

  before(async () => {
    fake = await startFakeTelegram();
    h = await startHarness({
      env: { TELEGRAM_BOT_TOKEN: fake.token, TELEGRAM_API_ROOT: fake.url },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        const text = lastUserText(req);
        if (text.includes('LONG')) return { text: LONG };
        if (text.includes('SLOW')) return { text: 'slow done', delayMs: 6_000 };
        return {
          text: `echo: ${text
            .replace(/<[^>]+>/g, ' ')
            .replace(/\s+/g, ' ')
            .trim()
            .slice(-60)}`,
        };
      },
    });
    // First contact lists the DM; the owner joins it (answering everything, like a DM should).
    fake.pushMessage({ text: 'hello?' });
    await fake.waitFor(() => h.pincer.store.chats.get('tg:4242'), 10_000, 'the DM to be listed');
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'tg:4242', folder: 'tg-dm', respondToAll: true });
  });
  after(async () => {
    await h?.stop();
    await fake?.close();
  });

  test('a DM becomes a turn and the reply quotes it, as plain text', async (t) => {
    const from = fake.sent.length;
    const t0 = performance.now();
    const m = fake.pushMessage({ text: 'what is two plus two' });
    const reply = await sentTo(USER.id, from);
    const ms = performance.now() - t0;
    assert.match(reply.text ?? '', /^echo: .*what is two plus two/);
    assert.equal(reply.replyTo, m.message_id);
    assert.equal(reply.parseMode, undefined);
    const stored = h.pincer.store.messages.after('tg:4242', 0, 100).find((s) => s.platformId === String(m.message_id));
    assert.equal(stored?.senderName, 'Olive Owner');
    assert.equal(stored?.senderId, 'tg:4242');
    t.diagnostic(`# telegram DM → reply: ${Math.round(ms)} ms`);
  });

  test('in a group that needs the trigger, plain talk is context; a mention of the bot and a reply to it engage', async () => {
    fake.pushMessage({ chat: GROUP, text: 'first words here' });
    await fake.waitFor(() => h.pincer.store.chats.get('tg:-100555'), 10_000, 'the group to be listed');
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'tg:-100555', folder: 'tg-team' });
    const from = fake.sent.length;
    const quiet = fake.pushMessage({
      chat: GROUP,
      text: 'Bob thinks we ship on Friday',
      from: { id: 51, is_bot: false, first_name: 'Bob' },
    });
    await fake.waitFor(
      () => (h.pincer.store.messages.has('tg:-100555', String(quiet.message_id)) ? true : undefined),
      5_000,
      'context stored',
    );
    const loud = fake.pushMessage({
      chat: GROUP,
      text: '@pincer_test_bot what did Bob say?',
      entities: [{ type: 'mention', offset: 0, length: 16 }],
    });
    const reply = await sentTo(GROUP.id, from);
    assert.equal(reply.replyTo, loud.message_id);
    assert.equal(fake.sent.slice(from).filter((s) => s.chatId === GROUP.id).length, 1, 'the context message did not answer');
    const prompt = lastUserText(agentRequests('what did Bob say').at(-1) ?? { headers: {}, body: {}, receivedAt: 0 });
    assert.match(prompt, /@Andy what did Bob say\?/, 'the mention reads as the assistant’s name');
    assert.match(prompt, /Bob thinks we ship on Friday/, 'the context before the mention is in the turn');

    const next = fake.sent.length;
    const answer = fake.pushMessage({
      chat: GROUP,
      text: 'and why?',
      reply_to_message: { message_id: reply.messageId, date: 0, chat: GROUP, from: { ...fake.bot, is_bot: true }, text: reply.text },
    });
    const second = await sentTo(GROUP.id, next);
    assert.equal(second.replyTo, answer.message_id);
  });

  test('a redelivered message (same message_id) produces no second turn', async () => {
    const from = fake.sent.length;
    const m = fake.pushMessage({ text: 'only once please' });
    await sentTo(USER.id, from);
    const turns = agentRequests('only once please').length;
    const sentAfter = fake.sent.length;
    const updateId = fake.redeliver(m);
    // Processed once the adapter confirms past it; then give a wrong second turn time to show up.
    await fake.waitFor(() => fake.calls.find((c) => c.method === 'getUpdates' && (c.offset ?? 0) > updateId), 5_000, 'the redelivery');
    await sleep(1_500);
    assert.equal(fake.sent.length, sentAfter, 'nothing more was sent');
    assert.equal(agentRequests('only once please').length, turns, 'the model was not asked again');
    const seq = h.pincer.store.messages.after('tg:4242', 0, 1000).find((s) => s.platformId === String(m.message_id))?.seq;
    assert.ok(seq);
    assert.ok(h.pincer.store.events.trace(seq).some((e) => e.stage === 'duplicate'));
  });

  test('after the fake drops the connection, a message sent meanwhile still gets its answer', async (t) => {
    await fake.waitFor(() => (fake.heldPolls() === 1 ? true : undefined), 5_000, 'a held poll');
    const from = fake.sent.length;
    const t0 = performance.now();
    fake.dropPolls(1_000);
    fake.pushMessage({ text: 'are you still there' });
    const reply = await sentTo(USER.id, from, 30_000);
    assert.match(reply.text ?? '', /are you still there/);
    t.diagnostic(`# telegram reply after a 1 s outage: ${Math.round(performance.now() - t0)} ms after the drop`);
  });

  test('a 429 on send is honoured: the reply arrives after retry_after', async (t) => {
    const from = fake.sent.length;
    const calls = fake.calls.length;
    fake.failNextSend(1);
    fake.pushMessage({ text: 'rate limit me' });
    const reply = await sentTo(USER.id, from, 30_000);
    const refused = fake.calls.slice(calls).find((c) => c.method === 'sendMessage');
    assert.ok(refused);
    const waited = reply.at - refused.at;
    assert.ok(waited >= 1_000 && waited < 4_000, `sent ${waited} ms after the 429 (retry_after 1 s)`);
    t.diagnostic(`# telegram 429 retry_after=1 s honoured: resent after ${waited} ms`);
  });

  test('a long reply goes out in parts within 4096 characters, in order', async () => {
    const from = fake.sent.length;
    fake.pushMessage({ text: 'LONG answer please' });
    await fake.waitFor(
      () => {
        const parts = fake.sent.slice(from).filter((s) => s.chatId === USER.id);
        return parts.map((p) => p.text).join('\n\n').length >= LONG.length ? parts : undefined;
      },
      30_000,
      'every part',
    );
    const parts = fake.sent.slice(from).filter((s) => s.chatId === USER.id);
    assert.ok(parts.length >= Math.ceil(LONG.length / 4096) && parts.length <= Math.ceil(LONG.length / 4096) + 1, `${parts.length} parts`);
    for (const p of parts) assert.ok((p.text?.length ?? 0) <= 4096);
    assert.equal(parts.map((p) => p.text).join('\n\n'), LONG, 'cut between paragraphs, nothing lost, in order');
    assert.deepEqual(
      parts.map((p) => p.messageId),
      [...parts.map((p) => p.messageId)].sort((a, b) => a - b),
    );
  });

  test('a photo lands in groups/<folder>/inbox/ and is named in the prompt', async () => {
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8, 0xff, 0xe0]), Buffer.alloc(30_000, 3)]);
    const fileId = fake.addFile(jpeg, { path: 'photos/file_9.jpg' });
    const from = fake.sent.length;
    fake.pushMessage({
      caption: 'what is in this picture',
      photo: [{ file_id: fileId, file_unique_id: 'p9', width: 800, height: 600, file_size: jpeg.length }],
    });
    await sentTo(USER.id, from);
    const inbox = join(h.home, 'groups', 'tg-dm', 'inbox');
    const saved = readdirSync(inbox).filter((f) => f.endsWith('.jpg'));
    assert.equal(saved.length, 1);
    assert.ok(readFileSync(join(inbox, saved[0] as string)).equals(jpeg));
    const prompt = lastUserText(agentRequests('what is in this picture').at(-1) ?? { headers: {}, body: {}, receivedAt: 0 });
    assert.ok(prompt.includes(`/workspace/group/inbox/${saved[0]}`), 'the prompt names the saved file');
    assert.match(prompt, /image image\/jpeg, 29 KB/);
  });

  test('typing shows while the agent works (renewed every ~4.5 s) and stops after the reply', async (t) => {
    const from = fake.sent.length;
    const actionsFrom = fake.actions.length;
    fake.pushMessage({ text: 'SLOW one' });
    const reply = await sentTo(USER.id, from, 40_000);
    assert.equal(reply.text, 'slow done');
    const during = fake.actions.slice(actionsFrom).filter((a) => a.chatId === USER.id && a.action === 'typing');
    assert.ok(during.length >= 2, `${during.length} typing actions during a 6 s turn`);
    const gaps = during.slice(1).map((a, i) => a.at - (during[i]?.at ?? 0));
    for (const gap of gaps) assert.ok(gap >= 4_000 && gap <= 5_000, `renewed after ${gap} ms`);
    const atReply = fake.actions.length;
    await sleep(5_000);
    const later = fake.actions.slice(atReply).filter((a) => a.chatId === USER.id);
    assert.equal(later.length, 0, 'no typing after the reply');
    t.diagnostic(`# telegram typing: ${during.length} actions, gaps ${gaps.join(', ')} ms`);
  });
});

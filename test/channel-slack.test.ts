// The Slack adapter: pure mapping, then the adapter driven by the real @slack/bolt against a fake Slack that speaks
// Socket Mode and the Web API, then the whole pipeline (real pincer, sandboxed agent, fake model) through it.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { webApi } from '@slack/bolt';
import { slackParts, toSlackMrkdwn } from '../src/channels/format/slack.js';
import {
  attachmentKind,
  backoffDelay,
  downloadSlackFile,
  mapMessageEvent,
  mentionedUsers,
  parseMessageEvent,
  SlackChannel,
  type SlackMessageEvent,
  slackFailure,
  slackToPlainText,
} from '../src/channels/slack.js';
import { type InboundMessage, type InboundSink, RateLimitedError } from '../src/channels/types.js';
import { createLogger } from '../src/log.js';
import { AGENT_REPLY, longAgentReply } from './helpers/agent-reply.js';
import { isAgentTurn, lastUserText } from './helpers/fake-model.js';
import { type FakeSlack, messageEvent, startFakeSlack } from './helpers/fake-slack.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const log = createLogger(process.env.PINCER_TEST_LOG ?? 'silent');
const BOT = { userId: 'UBOT', botId: 'BBOT' };

const event = (fields: Partial<SlackMessageEvent> & { text?: string }): SlackMessageEvent => {
  const parsed = parseMessageEvent({
    type: 'message',
    channel: 'C1',
    channel_type: 'channel',
    user: 'U1',
    ts: '1700000000.000100',
    ...fields,
  });
  assert.ok(parsed, 'fixture parses');
  return parsed;
};

describe('slack mapping (pure)', () => {
  test('a channel message is answered in its own thread; a DM only in the thread it is in', () => {
    const top = mapMessageEvent(event({ text: 'hi' }), BOT);
    assert.ok(!('ignored' in top));
    assert.equal(top.chatId, 'slack:C1');
    assert.equal(top.platformId, '1700000000.000100');
    assert.equal(top.threadId, '1700000000.000100');
    assert.equal(top.isGroup, true);
    assert.equal(top.sentAt, 1_700_000_000_000);
    assert.equal(top.senderId, 'slack:U1');
    assert.equal(top.userId, 'U1');
    assert.equal(top.mentionsBot, false);
    const reply = mapMessageEvent(event({ text: 'more', ts: '1700000001.000200', thread_ts: '1700000000.000100' }), BOT);
    assert.ok(!('ignored' in reply));
    assert.equal(reply.threadId, '1700000000.000100');
    const dm = mapMessageEvent(event({ channel: 'D1', channel_type: 'im', text: 'hello' }), BOT);
    assert.ok(!('ignored' in dm));
    assert.equal(dm.isGroup, false);
    assert.equal(dm.threadId, undefined);
    const dmThread = mapMessageEvent(event({ channel: 'D1', channel_type: 'im', thread_ts: '1699999999.000001' }), BOT);
    assert.ok(!('ignored' in dmThread));
    assert.equal(dmThread.threadId, '1699999999.000001');
    const mpim = mapMessageEvent(event({ channel: 'G1', channel_type: 'mpim' }), BOT);
    assert.ok(!('ignored' in mpim) && mpim.isGroup);
  });

  test('a mention of the bot, an app_mention, or a reply in a thread the bot is in addresses it', () => {
    for (const text of ['<@UBOT> hi', 'hey <@UBOT|andy>, look']) {
      const m = mapMessageEvent(event({ text }), BOT);
      assert.ok(!('ignored' in m) && m.mentionsBot, text);
    }
    const other = mapMessageEvent(event({ text: '<@UOTHER> hi' }), BOT);
    assert.ok(!('ignored' in other) && !other.mentionsBot);
    const appMention = mapMessageEvent(event({ type: 'app_mention', channel_type: undefined, text: 'x' }), BOT);
    assert.ok(!('ignored' in appMention) && appMention.mentionsBot && appMention.isGroup);
    const underBot = mapMessageEvent(event({ thread_ts: '1.0', parent_user_id: 'UBOT' }), BOT);
    assert.ok(!('ignored' in underBot) && underBot.mentionsBot);
    const answered = mapMessageEvent(event({ thread_ts: '5.0', parent_user_id: 'U1' }), BOT, (c, t) => c === 'C1' && t === '5.0');
    assert.ok(!('ignored' in answered) && answered.mentionsBot);
    const elsewhere = mapMessageEvent(event({ thread_ts: '6.0', parent_user_id: 'U1' }), BOT, (c, t) => c === 'C1' && t === '5.0');
    assert.ok(!('ignored' in elsewhere) && !elsewhere.mentionsBot);
  });

  test('bots, our own echoes, edits, joins and hidden events are skipped; file shares and broadcasts are kept', () => {
    const skipped = [
      event({ bot_id: 'B2', text: 'from a bot' }),
      event({ subtype: 'bot_message', text: 'x' }),
      event({ user: 'UBOT', text: 'our own' }),
      event({ subtype: 'message_changed' }),
      event({ subtype: 'message_deleted' }),
      event({ subtype: 'channel_join', text: '<@U1> has joined the channel' }),
      event({ hidden: true }),
      event({ user: undefined }),
    ];
    for (const e of skipped) assert.ok('ignored' in mapMessageEvent(e, BOT), JSON.stringify(e));
    for (const subtype of ['file_share', 'thread_broadcast', 'me_message'])
      assert.ok(!('ignored' in mapMessageEvent(event({ subtype }), BOT)), subtype);
    assert.equal(parseMessageEvent({ type: 'reaction_added', user: 'U1' }), undefined);
    assert.equal(parseMessageEvent({ type: 'message', channel: 'C1', ts: 'not-a-ts' }), undefined);
  });

  test("Slack's markup reads naturally: the bot becomes @<assistant>, others their names, links their labels", () => {
    const names = new Map([['U2', 'Bob']]);
    assert.equal(slackToPlainText('<@UBOT> ask <@U2> about <#C9|general>', 'UBOT', 'Andy', names), '@Andy ask @Bob about #general');
    assert.equal(slackToPlainText('<@U3|carol> and <@U4>', 'UBOT', 'Andy', names), '@carol and @U4');
    assert.equal(
      slackToPlainText('see <https://x.io/a?b=1&amp;c=2|the docs> or <https://y.io>', 'UBOT', 'Andy', names),
      'see the docs (https://x.io/a?b=1&c=2) or https://y.io',
    );
    assert.equal(slackToPlainText('<mailto:a@b.io|a@b.io> <!here> <!channel>', 'UBOT', 'Andy', names), 'a@b.io @here @channel');
    assert.equal(slackToPlainText('1 &lt; 2 &amp;&amp; 3 &gt; 2; &amp;lt;', 'UBOT', 'Andy', names), '1 < 2 && 3 > 2; &lt;');
    assert.deepEqual(mentionedUsers('<@U2> <@U3|c> <@U2> <#C1>'), ['U2', 'U3']);
  });

  test('replies are Slack mrkdwn: escaped (no @channel pings, no hidden links), formatting converted outside code', () => {
    assert.equal(toSlackMrkdwn('<!channel> a & b <https://evil|click>'), '&lt;!channel&gt; a &amp; b &lt;https://evil|click&gt;');
    assert.equal(toSlackMrkdwn('**bold** and *italic* and ~~gone~~'), '*bold* and _italic_ and ~gone~');
    assert.equal(toSlackMrkdwn('## Title\ntext'), '*Title*\n\ntext');
    assert.equal(toSlackMrkdwn('[docs](https://x.io/a?b=1&c=2)'), '<https://x.io/a?b=1&amp;c=2|docs>');
    assert.equal(toSlackMrkdwn('* item\n* item 2\n\n2 * 3 * 4'), '• item\n• item 2\n\n2 * 3 * 4');
    assert.equal(
      toSlackMrkdwn('use `**x** <y>` then\n```\n**raw** & <z>\n```'),
      'use `**x** &lt;y&gt;` then\n\n```\n**raw** &amp; &lt;z&gt;\n```',
    );
  });

  test('long replies are cut at the 4,000 characters Slack advises, each part within it after escaping', () => {
    assert.deepEqual(slackParts('short & sweet', 4_000), ['short &amp; sweet']);
    const parts = slackParts(Array.from({ length: 1500 }, () => '<<<< >>>>').join(' '), 4_000);
    assert.ok(parts.length >= 4, `${parts.length} parts`);
    assert.ok(parts.every((p) => p.length <= 4_000));
  });

  test('kinds, backoff bounds and failures', () => {
    assert.equal(attachmentKind('image/png'), 'image');
    assert.equal(attachmentKind('audio/webm'), 'audio');
    assert.equal(attachmentKind('video/mp4'), 'video');
    assert.equal(attachmentKind('application/pdf'), 'document');
    assert.equal(attachmentKind(undefined), 'document');
    assert.equal(
      backoffDelay(0, 1000, 60_000, () => 0),
      500,
    );
    assert.equal(
      backoffDelay(0, 1000, 60_000, () => 1),
      1000,
    );
    assert.equal(
      backoffDelay(3, 1000, 60_000, () => 1),
      8000,
    );
    assert.equal(
      backoffDelay(20, 1000, 60_000, () => 1),
      60_000,
    );
    assert.ok(backoffDelay(20, 1000, 60_000, () => 0) >= 30_000);
    const limited = slackFailure('chat.postMessage', new webApi.WebAPIRateLimitedError(3));
    assert.ok(limited instanceof RateLimitedError);
    assert.equal(limited.retryAfterMs, 3000);
    const refused = slackFailure('chat.postMessage', new webApi.WebAPIPlatformError({ ok: false, error: 'not_in_channel' }));
    assert.equal(refused.message, 'slack chat.postMessage: not_in_channel');
    assert.ok(!(refused instanceof RateLimitedError));
    // Slack names the missing scope in `needed`, a field the library's result type does not list.
    const missingScope = { ok: false, error: 'missing_scope', needed: 'files:write' };
    const scope = slackFailure('files.uploadV2', new webApi.WebAPIPlatformError(missingScope));
    assert.match(scope.message, /missing_scope \(needs scope files:write\)/);
  });
});

/** A sink like pincer's: records what it is given; DMs and mentions engage; `joined` chats get media. */
function recordingSink(options: { joined?: string[]; maxMediaBytes?: number } = {}) {
  const messages: InboundMessage[] = [];
  const joined = new Set(options.joined ?? []);
  const typing: string[] = [];
  const sink: InboundSink & { messages: InboundMessage[]; joined: Set<string>; typed: string[] } = {
    messages,
    joined,
    typed: typing,
    typing: (chatId) => void typing.push(chatId),
    maxMediaBytes: options.maxMediaBytes ?? 1024 * 1024,
    isJoined: (chatId) => joined.has(chatId),
    seen: (chatId, platformId) => messages.some((m) => m.chatId === chatId && m.platformId === platformId),
    async ingest(m) {
      const duplicate = sink.seen(m.chatId, m.platformId);
      messages.push(m);
      return { seq: messages.length, duplicate, engaged: !duplicate && (m.mentionsBot === true || !m.isGroup) };
    },
  };
  return sink;
}

async function until<T>(check: () => T | undefined | false, timeoutMs: number, what: string): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const channelFor = (fake: FakeSlack, extra: Partial<ConstructorParameters<typeof SlackChannel>[0]> = {}) =>
  new SlackChannel({
    botToken: fake.botToken,
    appToken: fake.appToken,
    apiUrl: fake.apiUrl,
    assistantName: 'Andy',
    log,
    reconnectMinMs: 100,
    reconnectMaxMs: 1000,
    ...extra,
  });

describe('slack adapter against a fake Slack (real Bolt, Socket Mode)', () => {
  let fake: FakeSlack;
  let channel: SlackChannel;
  let sink: ReturnType<typeof recordingSink>;
  before(async () => {
    fake = await startFakeSlack();
    fake.users.set('U1', { name: 'alice', realName: 'Alice Liddell', displayName: 'Alice' });
    fake.users.set('U2', { name: 'bob', realName: 'Bob Builder' });
    fake.channels.set('C1', { name: 'general' });
    channel = channelFor(fake);
    sink = recordingSink({ joined: ['slack:C1', 'slack:D1'], maxMediaBytes: 100_000 });
    await channel.start(sink);
  });
  after(async () => {
    await channel?.stop();
    await fake?.close();
  });

  test('start connects: auth.test with the bot token, apps.connections.open with the app token, then hello', () => {
    assert.equal(channel.state(), 'connected');
    assert.equal(fake.connections(), 1);
    const auth = fake.calls.find((c) => c.method === 'auth.test');
    const open = fake.calls.find((c) => c.method === 'apps.connections.open');
    assert.equal(auth?.token, fake.botToken);
    assert.equal(open?.token, fake.appToken);
    assert.ok(channel.owns('slack:C1'));
    assert.ok(!channel.owns('tg:1'));
  });

  test('a DM arrives with names, is acked by envelope id, and keeps no thread', async () => {
    const e = messageEvent(fake, { channel: 'D1', user: 'U1', text: 'hello &amp; welcome' });
    const envelope = fake.sendEvent(e);
    const got = await until(() => sink.messages.find((m) => m.platformId === e.ts), 5000, 'the DM');
    assert.deepEqual(
      { ...got, sentAt: 0 },
      {
        chatId: 'slack:D1',
        channel: 'slack',
        platformId: e.ts,
        senderId: 'slack:U1',
        senderName: 'Alice',
        text: 'hello & welcome',
        sentAt: 0,
        chatName: 'Alice',
        isGroup: false,
      },
    );
    await fake.waitFor(() => fake.acked.has(envelope), 5000, 'the ack');
  });

  test('a mention in a channel: the message and app_mention events (same ts) both map to the same message', async () => {
    const ts = fake.nextTs();
    fake.sendEvent(messageEvent(fake, { channel: 'C1', user: 'U2', text: '<@UBOT> what about <@U1>?', ts }));
    fake.sendEvent(messageEvent(fake, { type: 'app_mention', channel: 'C1', user: 'U2', text: '<@UBOT> what about <@U1>?', ts }));
    await until(() => sink.messages.filter((m) => m.platformId === ts).length === 2, 5000, 'both events');
    const [first, second] = sink.messages.filter((m) => m.platformId === ts);
    assert.deepEqual(first, second, 'whichever arrives first, the stored message is the same');
    assert.equal(first?.text, '@Andy what about @Alice?');
    assert.equal(first?.senderName, 'Bob Builder');
    assert.equal(first?.chatName, '#general');
    assert.equal(first?.mentionsBot, true);
    assert.equal(first?.threadId, ts);
    assert.equal(first?.isGroup, true);
  });

  test('bot messages, own echoes and edits never reach the sink', async () => {
    const before = sink.messages.length;
    fake.sendEvent(messageEvent(fake, { channel: 'C1', user: 'UBOT', text: 'echo' }));
    fake.sendEvent(messageEvent(fake, { channel: 'C1', user: 'U9', text: 'bot', botId: 'B9' }));
    fake.sendEvent({ ...messageEvent(fake, { channel: 'C1', user: 'U1', text: '' }), subtype: 'message_changed' });
    const marker = messageEvent(fake, { channel: 'C1', user: 'U1', text: 'marker' });
    fake.sendEvent(marker);
    await until(() => sink.messages.some((m) => m.platformId === marker.ts), 5000, 'the marker');
    assert.deepEqual(
      sink.messages.slice(before).map((m) => m.text),
      ['marker'],
    );
  });

  test('files of a joined chat are fetched with the bot token; over the limit (declared or actual) they are skipped', async () => {
    const small = fake.addFile({ id: 'FSMALL', name: 'photo.png', mimetype: 'image/png', data: Buffer.from('PNGDATA') });
    const declaredBig = fake.addFile({
      id: 'FBIG',
      name: 'big.pdf',
      mimetype: 'application/pdf',
      data: Buffer.alloc(10),
      declaredSize: 500_000,
    });
    const lying = fake.addFile({
      id: 'FLIE',
      name: 'lie.bin',
      mimetype: 'application/octet-stream',
      data: Buffer.alloc(300_000),
      declaredSize: 10,
      chunked: true,
    });
    const e = messageEvent(fake, { channel: 'C1', user: 'U1', text: 'see these', files: [small, declaredBig, lying] });
    fake.sendEvent(e);
    const got = await until(() => sink.messages.find((m) => m.platformId === e.ts), 5000, 'the message with files');
    assert.equal(got.attachments?.length, 1);
    assert.deepEqual(got.attachments?.[0], { kind: 'image', name: 'photo.png', mime: 'image/png', data: Buffer.from('PNGDATA') });
    assert.ok(fake.downloads.filter((d) => d.id === 'FSMALL').every((d) => d.authorization === `Bearer ${fake.botToken}`));
    assert.ok(!fake.downloads.some((d) => d.id === 'FBIG'), 'a file declared too large is not even requested');
    // In a chat nobody joined, nothing is downloaded.
    const unjoined = messageEvent(fake, {
      channel: 'C7',
      user: 'U1',
      text: 'x',
      files: [fake.addFile({ id: 'FC7', name: 'a.png', mimetype: 'image/png', data: Buffer.from('A') })],
    });
    fake.sendEvent(unjoined);
    const plain = await until(() => sink.messages.find((m) => m.platformId === unjoined.ts), 5000, 'the unjoined message');
    assert.equal(plain.attachments, undefined);
    assert.ok(!fake.downloads.some((d) => d.id === 'FC7'));
  });

  test('the bot token goes only to Slack hosts or the configured API origin; a sign-in page is not a file', async () => {
    const foreign = await downloadSlackFile({ id: 'F1', url_private: 'https://evil.example/f' }, 'xoxb-secret', 1000, fake.apiUrl);
    assert.deepEqual(foreign, { ok: false, reason: 'not a Slack host: evil.example' });
    const file = fake.addFile({ id: 'FAUTH', name: 'a.txt', mimetype: 'text/plain', data: Buffer.from('secret') });
    const wrongToken = await downloadSlackFile(
      { id: 'FAUTH', url_private: String(file.url_private), mimetype: 'text/plain' },
      'xoxb-wrong',
      1000,
      fake.apiUrl,
    );
    assert.equal(wrongToken.ok, false);
    assert.match(wrongToken.ok ? '' : wrongToken.reason, /files:read/);
  });

  test('send: text in the thread it answers, mrkdwn-escaped; the ts is the platform id', async () => {
    const { platformId } = await channel.send('slack:C1', { text: '**Done** <!channel>', replyTo: { platformId: '1.1', threadId: '1.1' } });
    const post = fake.posted.find((p) => p.ts === platformId);
    assert.deepEqual(post && { channel: post.channel, text: post.text, threadTs: post.threadTs }, {
      channel: 'C1',
      text: '*Done* &lt;!channel&gt;',
      threadTs: '1.1',
    });
    const top = await channel.send('slack:D1', { text: 'no thread' });
    assert.equal(fake.posted.find((p) => p.ts === top.platformId)?.threadTs, undefined);
    assert.equal(channel.maxTextLength, 4_000);
  });

  test("send: an agent's reply in mrkdwn; a long one in parts of at most 4,000 characters, all in the thread", async () => {
    const { platformId } = await channel.send('slack:C1', { text: AGENT_REPLY, replyTo: { platformId: '2.1', threadId: '2.1' } });
    const shown = fake.posted.find((p) => p.ts === platformId);
    assert.equal(
      shown?.text,
      [
        '*Trip plan for Zoë 🚀*',
        '',
        "Here's *what I booked* for _Tuesday_: the ~9:00~ 10:30 train.",
        '',
        '• *Train:* ICE 123 to <https://bahn.de/tickets?id=42|München>',
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
        '```',
        'total = sum(costs)  # **not bold**',
        'print(f"{total} €")',
        '```',
      ].join('\n'),
    );
    const long = longAgentReply(200);
    const count = channel.partsOf(long);
    const before = fake.posted.length;
    await channel.send('slack:C1', { text: long, replyTo: { platformId: '2.1', threadId: '2.1' } });
    const parts = fake.posted.slice(before);
    assert.equal(parts.length, count);
    assert.ok(count >= 3, `${count} parts`);
    assert.ok(parts.every((p) => p.text.length <= 4_000 && p.threadTs === '2.1'));
    for (const p of parts) assert.equal((p.text.match(/```/g) ?? []).length % 2, 0, 'code fences paired in every part');
  });

  test('send: a 429 becomes RateLimitedError with Retry-After; other refusals say what Slack said', async () => {
    fake.failNext('chat.postMessage', { status: 429, retryAfter: 2 });
    await assert.rejects(
      channel.send('slack:C1', { text: 'x' }),
      (err: unknown) => err instanceof RateLimitedError && err.retryAfterMs === 2000,
    );
    fake.failNext('chat.postMessage', { error: 'not_in_channel' });
    await assert.rejects(channel.send('slack:C1', { text: 'x' }), /slack chat\.postMessage: not_in_channel/);
    fake.failNext('chat.postMessage', { status: 503 });
    await assert.rejects(channel.send('slack:C1', { text: 'x' }), /HTTP 503/);
  });

  test('send: a file goes through the external upload flow, with its caption, in the thread', async () => {
    const data = Buffer.from('%PDF-1.4 report');
    const { platformId } = await channel.send('slack:C1', {
      text: 'the *report*',
      file: { name: 'report.pdf', data },
      replyTo: { platformId: '2.2', threadId: '2.2' },
    });
    const post = fake.posted.find((p) => p.file && `file:${p.file.id}` === platformId);
    assert.ok(post?.file);
    assert.deepEqual(post.file.data, data);
    assert.equal(post.file.name, 'report.pdf');
    assert.equal(post.text, 'the _report_');
    assert.equal(post.threadTs, '2.2');
    const methods = fake.calls.map((c) => c.method);
    assert.ok(methods.includes('files.getUploadURLExternal') && methods.includes('files.completeUploadExternal'));
  });

  test('typing: the assistant status is set in the thread of the engaging message, and cleared when off', async () => {
    const e = messageEvent(fake, { channel: 'C1', user: 'U1', text: '<@UBOT> think' });
    fake.sendEvent(e);
    await until(() => sink.messages.some((m) => m.platformId === e.ts), 5000, 'the mention');
    await channel.setTyping('slack:C1', true);
    await channel.setTyping('slack:C1', true);
    await channel.setTyping('slack:C1', false);
    const statuses = fake.calls.filter((c) => c.method === 'assistant.threads.setStatus').map((c) => c.params);
    assert.deepEqual(statuses, [
      { channel_id: 'C1', thread_ts: String(e.ts), status: 'is thinking…' },
      { channel_id: 'C1', thread_ts: String(e.ts), status: '' },
    ]);
    // A DM outside a thread has no status to show; where Slack refuses one, it is not tried again.
    await channel.setTyping('slack:D1', true);
    await channel.setTyping('slack:D1', false);
    fake.statusError = 'not_allowed';
    const e2 = messageEvent(fake, { channel: 'C1', user: 'U1', text: '<@UBOT> again' });
    fake.sendEvent(e2);
    await until(() => sink.messages.some((m) => m.platformId === e2.ts), 5000, 'the second mention');
    await channel.setTyping('slack:C1', true);
    await channel.setTyping('slack:C1', false);
    await channel.setTyping('slack:C1', true);
    fake.statusError = undefined;
    assert.equal(fake.calls.filter((c) => c.method === 'assistant.threads.setStatus').length, 3);
  });

  test('a dropped socket is re-established, and what Slack sent meanwhile (or was not acked) arrives', async () => {
    const connections = fake.connections();
    fake.dropSocket('terminate');
    await until(() => channel.state() === 'connecting', 5000, 'the channel to notice');
    const during = messageEvent(fake, { channel: 'D1', user: 'U1', text: 'sent while down' });
    fake.sendEvent(during);
    await fake.waitFor(() => fake.connections() > connections && fake.isConnected(), 10_000, 'a new connection');
    await until(() => sink.messages.some((m) => m.platformId === during.ts), 5000, 'the message sent during the drop');
    assert.equal(channel.state(), 'connected');
    // Slack's own rotation (a `disconnect` message) is followed just the same.
    fake.dropSocket('disconnect-message');
    await fake.waitFor(() => fake.connections() > connections + 1 && fake.isConnected(), 10_000, 'the rotated connection');
    const afterwards = messageEvent(fake, { channel: 'D1', user: 'U1', text: 'after rotation' });
    fake.sendEvent(afterwards);
    await until(() => sink.messages.some((m) => m.platformId === afterwards.ts), 5000, 'the message after rotation');
  });
});

describe('slack adapter start and stop', () => {
  test('a refused bot token or app token rejects start, naming the variable', async () => {
    const fake = await startFakeSlack();
    try {
      const badBot = channelFor(fake, { botToken: 'xoxb-revoked' });
      await assert.rejects(badBot.start(recordingSink()), /SLACK_BOT_TOKEN \(auth\.test: invalid_auth\)/);
      assert.equal(badBot.state(), 'disconnected');
      const badApp = channelFor(fake, { appToken: fake.botToken });
      await assert.rejects(badApp.start(recordingSink()), /SLACK_APP_TOKEN \(apps\.connections\.open: not_allowed_token_type\)/);
      assert.equal(fake.connections(), 0);
    } finally {
      await fake.close();
    }
  });

  test('Slack unreachable at start: start resolves, the adapter keeps trying and connects when Slack is back', async () => {
    const probe = await startFakeSlack();
    const port = probe.port;
    await probe.close();
    const down = { botToken: probe.botToken, appToken: probe.appToken, apiUrl: probe.apiUrl };
    const channel = new SlackChannel({ ...down, assistantName: 'Andy', log, reconnectMinMs: 200, reconnectMaxMs: 400 });
    const sink = recordingSink();
    const started = Date.now();
    await channel.start(sink);
    assert.ok(Date.now() - started < 3000, 'start does not wait for Slack');
    assert.equal(channel.state(), 'connecting');
    await new Promise((r) => setTimeout(r, 700));
    const fake = await startFakeSlack({ port });
    try {
      await until(() => channel.state() === 'connected', 10_000, 'the connection once Slack is back');
      const e = messageEvent(fake, { channel: 'D5', user: 'U1', text: 'finally' });
      fake.sendEvent(e);
      await until(() => sink.messages.some((m) => m.platformId === e.ts), 5000, 'the message');
    } finally {
      await channel.stop();
      await fake.close();
    }
    assert.equal(channel.state(), 'disconnected');
  });

  test('stop closes the socket', async () => {
    const fake = await startFakeSlack();
    const channel = channelFor(fake);
    try {
      await channel.start(recordingSink());
      assert.ok(fake.isConnected());
      await channel.stop();
      await fake.waitFor(() => !fake.isConnected(), 5000, 'the socket to close');
      assert.equal(channel.state(), 'disconnected');
    } finally {
      await fake.close();
    }
  });
});

// ---- the whole pipeline: Slack → pincer → sandboxed agent → fake model → Slack ----

const skip = await sandboxUnavailable();

describe('a Slack conversation through pincer', { skip }, () => {
  let fake: FakeSlack;
  let h: Harness;
  const LONG = Array.from({ length: 3 }, (_, i) => `Part ${i + 1}. ${'word '.repeat(6000).trim()}`).join('\n\n');
  const agentTurns = (needle: string) => h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes(needle));
  const postsTo = (channel: string) => fake.posted.filter((p) => p.channel === channel);

  before(async () => {
    fake = await startFakeSlack();
    fake.users.set('UOWNER', { name: 'owner', realName: 'Olivia Owner' });
    fake.users.set('U1', { name: 'alice', displayName: 'Alice' });
    fake.channels.set('CTEAM', { name: 'team' });
    fake.channels.set('CMEDIA', { name: 'media' });
    h = await startHarness({
      env: {
        SLACK_BOT_TOKEN: fake.botToken,
        SLACK_APP_TOKEN: fake.appToken,
        SLACK_API_URL: fake.apiUrl,
        PINCER_MAIN_CHAT: 'slack:DOWNER',
      },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side' };
        const text = lastUserText(req);
        if (text.includes('write long')) return { text: LONG };
        if (text.includes('think slowly')) return { text: 'slow answer', delayMs: 1500 };
        if (text.includes('inbox/')) return { text: `files: ${text.match(/\/workspace\/group\/inbox\/[^\]\s]+/g)?.join(', ') ?? 'none'}` };
        return { text: `echo: ${text.slice(-40)}` };
      },
    });
    await fake.waitFor(() => fake.isConnected(), 10_000, 'pincer to connect');
  });
  after(async () => {
    await h?.stop();
    await fake?.close();
  });

  test("the owner's DM (PINCER_MAIN_CHAT) gets its answer, as a top-level DM reply", async () => {
    const e = messageEvent(fake, { channel: 'DOWNER', user: 'UOWNER', text: 'hello there' });
    fake.sendEvent(e);
    const reply = await fake.waitFor(() => postsTo('DOWNER')[0], 60_000, 'the reply');
    assert.match(reply.text, /echo: .*hello there/);
    assert.equal(reply.threadTs, undefined);
    const turn = agentTurns('hello there').at(-1);
    assert.ok(turn && lastUserText(turn).includes('sender="Olivia Owner"'));
  });

  test('a group that needs the trigger: chatter is context, the bot mention engages and the reply goes in-thread', async () => {
    const first = messageEvent(fake, { channel: 'CTEAM', user: 'U1', text: 'just chatting' });
    fake.sendEvent(first);
    await until(() => h.pincer.store.chats.get('slack:CTEAM'), 10_000, 'the chat to be seen');
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'slack:CTEAM', folder: 'team' });
    const quiet = messageEvent(fake, { channel: 'CTEAM', user: 'U1', text: 'the build is red again' });
    fake.sendEvent(quiet);
    await until(() => h.pincer.store.messages.has('slack:CTEAM', String(quiet.ts)), 10_000, 'the quiet message stored');
    const ts = fake.nextTs();
    fake.sendEvent(messageEvent(fake, { channel: 'CTEAM', user: 'U1', text: '<@UBOT> what is red?', ts }));
    fake.sendEvent(messageEvent(fake, { type: 'app_mention', channel: 'CTEAM', user: 'U1', text: '<@UBOT> what is red?', ts }));
    const reply = await fake.waitFor(() => postsTo('CTEAM')[0], 60_000, 'the reply in #team');
    assert.equal(reply.threadTs, ts, 'answered in the thread of the mention');
    const turns = agentTurns('what is red');
    assert.equal(turns.length, 1, 'message + app_mention of one ts make one turn');
    const prompt = lastUserText(turns[0] as never);
    assert.match(prompt, /@Andy what is red\?/);
    assert.match(prompt, /the build is red again/, 'the chatter before the mention is context');
    assert.equal(postsTo('CTEAM').length, 1);
  });

  test('a redelivered event (Slack retry, same ts) produces no second turn', async () => {
    const e = messageEvent(fake, { channel: 'DOWNER', user: 'UOWNER', text: 'count me once' });
    fake.sendEvent(e);
    await fake.waitFor(() => postsTo('DOWNER').find((p) => p.text.includes('count me once')), 60_000, 'the reply');
    fake.sendEvent(e, { retryAttempt: 1 });
    const marker = messageEvent(fake, { channel: 'DOWNER', user: 'UOWNER', text: 'marker after retry' });
    fake.sendEvent(marker);
    await fake.waitFor(() => postsTo('DOWNER').find((p) => p.text.includes('marker after retry')), 60_000, 'the marker reply');
    assert.equal(agentTurns('count me once').filter((r) => !lastUserText(r).includes('marker')).length, 1);
    assert.equal(postsTo('DOWNER').filter((p) => p.text.includes('count me once')).length, 1);
    const stored = h.pincer.store.messages.after('slack:DOWNER', 0, 1000).find((m) => m.platformId === e.ts);
    assert.ok(stored);
    const stages = h.pincer.store.events.trace(stored.seq).map((t) => t.stage);
    assert.ok(stages.includes('duplicate'), `the retry was recognised: ${stages.join(',')}`);
  });

  test('after the fake drops the connection, a message sent afterwards still arrives and is answered', async () => {
    const connections = fake.connections();
    fake.dropSocket('terminate');
    const e = messageEvent(fake, { channel: 'DOWNER', user: 'UOWNER', text: 'are you back?' });
    fake.sendEvent(e);
    await fake.waitFor(() => fake.connections() > connections && fake.isConnected(), 15_000, 'the reconnection');
    const reply = await fake.waitFor(() => postsTo('DOWNER').find((p) => p.text.includes('are you back')), 60_000, 'the reply');
    assert.ok(reply);
  });

  test('a 429 on send is honoured: the reply comes after Retry-After', async () => {
    fake.failNext('chat.postMessage', { status: 429, retryAfter: 1 });
    const e = messageEvent(fake, { channel: 'DOWNER', user: 'UOWNER', text: 'rate me' });
    fake.sendEvent(e);
    const reply = await fake.waitFor(() => postsTo('DOWNER').find((p) => p.text.includes('rate me')), 60_000, 'the reply');
    const limited = fake.calls.filter((c) => c.method === 'chat.postMessage' && c.params.text?.includes('rate me'));
    assert.equal(limited.length, 2, 'refused once, then sent');
    const waited = reply.at - (limited[0]?.at ?? 0);
    assert.ok(waited >= 1000, `retried after ${waited} ms`);
  });

  test('a long reply arrives in parts of at most the 4,000 characters Slack advises, in order', async () => {
    const e = messageEvent(fake, { channel: 'DOWNER', user: 'UOWNER', text: 'please write long' });
    const before = postsTo('DOWNER').length;
    const words = (texts: string[]) => texts.join(' ').split(/\s+/).filter(Boolean);
    const expected = words([LONG]);
    fake.sendEvent(e);
    await fake.waitFor(
      () =>
        words(
          postsTo('DOWNER')
            .slice(before)
            .map((p) => p.text),
        ).length >= expected.length,
      60_000,
      'the last part',
    );
    const parts = postsTo('DOWNER').slice(before);
    assert.ok(parts.length >= 3 * 8, `${parts.length} parts`);
    assert.ok(parts.every((p) => p.text.length <= 4_000));
    assert.deepEqual(words(parts.map((p) => p.text)), expected, 'every word once, in order');
    assert.ok(parts[0]?.text.startsWith('Part 1.'));
  });

  test('a shared file lands in the group inbox and the prompt names it', async () => {
    fake.sendEvent(messageEvent(fake, { channel: 'CMEDIA', user: 'U1', text: 'hi' }));
    await until(() => h.pincer.store.chats.get('slack:CMEDIA'), 10_000, 'the chat to be seen');
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'slack:CMEDIA', folder: 'media', respondToAll: true });
    const png = Buffer.from('89504e470d0a1a0a0000000d49484452', 'hex');
    const file = fake.addFile({ id: 'FPIC', name: 'chart.png', mimetype: 'image/png', data: png });
    fake.sendEvent(messageEvent(fake, { channel: 'CMEDIA', user: 'U1', text: 'look at this', files: [file] }));
    const reply = await fake.waitFor(() => postsTo('CMEDIA').find((p) => p.text.startsWith('files:')), 60_000, 'the reply');
    assert.match(reply.text, /inbox\/.*chart\.png/);
    const inbox = join(h.home, 'groups', 'media', 'inbox');
    assert.ok(existsSync(inbox));
    const saved = readdirSync(inbox).find((f) => f.endsWith('chart.png'));
    assert.ok(saved, 'the file is in the inbox');
    assert.deepEqual(readFileSync(join(inbox, saved)), png);
    const turn = agentTurns('look at this').at(-1);
    assert.ok(turn && lastUserText(turn).includes(`/workspace/group/inbox/${saved}`));
  });

  test('typing: the thread status shows while the agent works and is cleared after', async () => {
    const ts = fake.nextTs();
    fake.sendEvent(messageEvent(fake, { channel: 'CTEAM', user: 'U1', text: '<@UBOT> think slowly', ts }));
    const status = await fake.waitFor(
      () => fake.calls.find((c) => c.method === 'assistant.threads.setStatus' && c.params.thread_ts === ts && c.params.status),
      60_000,
      'the status',
    );
    const reply = await fake.waitFor(() => postsTo('CTEAM').find((p) => p.text === 'slow answer'), 60_000, 'the reply');
    const cleared = await fake.waitFor(
      () => fake.calls.find((c) => c.method === 'assistant.threads.setStatus' && c.params.thread_ts === ts && c.params.status === ''),
      10_000,
      'the status cleared',
    );
    assert.equal(status.params.channel_id, 'CTEAM');
    assert.ok(status.at < reply.at, 'shown before the reply');
    assert.ok(cleared.at >= status.at);
  });
});

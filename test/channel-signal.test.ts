// The Signal adapter: our own JSON-RPC client of signal-cli's daemon, against a fake daemon speaking both of its
// wire protocols (--tcp and --http with SSE). Mapping functions, the adapter against a recording sink over each
// transport, and the whole path through a real pincer (sandboxed agent, fake model) end to end.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import {
  applyMentions,
  attachmentDataUri,
  LineSplitter,
  mapEnvelope,
  parsePlatformId,
  parseSignalChatId,
  SignalChannel,
  SignalRpcError,
  SseParser,
  sendError,
  sendFailure,
  signalChatId,
} from '../src/channels/signal.js';
import { type InboundMessage, type InboundSink, type IngestResult, RateLimitedError } from '../src/channels/types.js';
import { createLogger } from '../src/log.js';
import { groupPaths } from '../src/service/layout.js';
import { AGENT_REPLY, longAgentReply } from './helpers/agent-reply.js';
import { isAgentTurn, lastUserText, type ModelScript } from './helpers/fake-model.js';
import { type FakeSignalCli, type RpcCall, startFakeSignalCli, textStyleError } from './helpers/fake-signal-cli.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const ACCOUNT = '+15550000000';
const ACCOUNT_UUID = '00000000-0000-4000-8000-00000000b07a';
const OWNER = '+15551230001';
const ALICE = '+15551110001';
const BOB = '+15551110002';
const GROUP_ID = 'Pmpi+EfPWmsxiomLe9Nx2XF9HOE483p6iKiFj65iMwI=';
const log = createLogger(process.env.PINCER_TEST_LOG ?? 'silent');
const self = { account: ACCOUNT, uuid: ACCOUNT_UUID };
/** A real PNG header and a little body: enough for the inbox to name it. */
const PNG = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.alloc(200, 7)]);

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(what: string, check: () => boolean, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

function envelope(data: Record<string, unknown>, source: Record<string, unknown> = { sourceNumber: ALICE, sourceName: 'Alice' }) {
  return {
    envelope: { source: source.sourceNumber ?? source.sourceUuid, timestamp: 1_700_000_000_000, ...source, dataMessage: data },
    account: ACCOUNT,
  };
}

describe('Signal mapping (pure functions)', () => {
  test('the fake refuses text styles signal-cli would not take, or that point past the message', () => {
    assert.equal(textStyleError('ab😀', ['2:2:BOLD']), undefined, 'the emoji is two UTF-16 code units');
    assert.match(textStyleError('ab😀', ['2:3:BOLD']) ?? '', /outside the message/);
    assert.match(textStyleError('ab', ['0:1:SHOUTING']) ?? '', /Invalid text style/);
  });

  test('chat ids: direct by number or uuid, groups by group id; platform ids are <sender>:<timestamp>', () => {
    assert.equal(signalChatId({ kind: 'direct', recipient: ALICE }), `signal:${ALICE}`);
    assert.equal(signalChatId({ kind: 'group', groupId: GROUP_ID }), `signal:group.${GROUP_ID}`);
    assert.deepEqual(parseSignalChatId(`signal:group.${GROUP_ID}`), { kind: 'group', groupId: GROUP_ID });
    assert.deepEqual(parseSignalChatId('signal:3f1c6d8e-0000-4000-8000-000000000001'), {
      kind: 'direct',
      recipient: '3f1c6d8e-0000-4000-8000-000000000001',
    });
    assert.equal(parseSignalChatId('tg:123'), undefined);
    assert.equal(parseSignalChatId('signal:'), undefined);
    assert.deepEqual(parsePlatformId(`${ALICE}:1700000000000`), { author: ALICE, timestamp: 1700000000000 });
    assert.equal(parsePlatformId('reply-abc'), undefined);
  });

  test('a mention of us becomes @Andy and engages; others keep a readable name; offsets are UTF-16', () => {
    const text = '😀 \uFFFC and \uFFFC look at this';
    const mentions = [
      { start: 3, length: 1, number: null, uuid: ACCOUNT_UUID },
      { start: 9, length: 1, number: BOB, uuid: 'b0b' },
    ];
    assert.deepEqual(applyMentions(text, mentions, self, 'Andy'), { text: `😀 @Andy and @${BOB} look at this`, mentionsBot: true });
    assert.deepEqual(applyMentions('\uFFFC hi', [{ start: 0, length: 1, number: BOB }], self, 'Andy'), {
      text: `@${BOB} hi`,
      mentionsBot: false,
    });
    assert.deepEqual(applyMentions('\uFFFC hi', [{ start: 0, length: 1, number: ACCOUNT }], { account: ACCOUNT }, 'Andy'), {
      text: '@Andy hi',
      mentionsBot: true,
    });
  });

  test('a direct message and a group message map to pincer’s shape', () => {
    const dm = mapEnvelope(envelope({ timestamp: 1_700_000_000_001, message: 'hello' }), self, 'Andy');
    assert.equal(dm.kind, 'message');
    if (dm.kind !== 'message') return;
    assert.deepEqual(dm.message, {
      chatId: `signal:${ALICE}`,
      channel: 'signal',
      platformId: `${ALICE}:1700000000001`,
      senderId: `signal:${ALICE}`,
      senderName: 'Alice',
      text: 'hello',
      sentAt: 1_700_000_000_001,
      isGroup: false,
      chatName: 'Alice',
    });
    const group = mapEnvelope(
      envelope({
        timestamp: 5,
        message: '\uFFFC what time is it?',
        mentions: [{ name: ACCOUNT, number: ACCOUNT, uuid: ACCOUNT_UUID, start: 0, length: 1 }],
        groupInfo: { groupId: GROUP_ID, groupName: null, revision: 2, type: 'DELIVER' },
      }),
      self,
      'Andy',
      new Map([[GROUP_ID, 'Family']]),
    );
    assert.equal(group.kind, 'message');
    if (group.kind !== 'message') return;
    assert.equal(group.message.chatId, `signal:group.${GROUP_ID}`);
    assert.equal(group.message.chatName, 'Family', 'the name listGroups gave');
    assert.equal(group.message.isGroup, true);
    assert.equal(group.message.mentionsBot, true);
    assert.equal(group.message.text, '@Andy what time is it?');
  });

  test('a sender known only by uuid gets a uuid chat id; a quote of our message engages', () => {
    const uuid = '3f1c6d8e-0000-4000-8000-000000000001';
    const m = mapEnvelope(
      envelope(
        { timestamp: 9, message: 'and this?', quote: { id: 8, author: ACCOUNT, authorNumber: ACCOUNT, authorUuid: null } },
        { sourceUuid: uuid },
      ),
      self,
      'Andy',
    );
    assert.equal(m.kind, 'message');
    if (m.kind !== 'message') return;
    assert.equal(m.message.chatId, `signal:${uuid}`);
    assert.equal(m.message.platformId, `${uuid}:9`);
    assert.equal(m.message.senderName, uuid);
    assert.equal(m.message.mentionsBot, true);
  });

  test('own echoes, receipts, typing, reactions, empty and foreign-account events are not messages', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ envelope: { sourceNumber: ACCOUNT, timestamp: 1, syncMessage: { sentMessage: { message: 'mine' } } }, account: ACCOUNT }, /sync/],
      [{ envelope: { sourceNumber: ALICE, timestamp: 1, receiptMessage: { isRead: true } } }, /receipt/],
      [{ envelope: { sourceNumber: ALICE, timestamp: 1, typingMessage: { action: 'STOPPED', timestamp: 1 } } }, /typing stopped/],
      [{ envelope: { sourceNumber: ACCOUNT, timestamp: 1, typingMessage: { action: 'STARTED', timestamp: 1 } } }, /our own typing/],
      [{ envelope: { sourceNumber: ALICE, timestamp: 1, typingMessage: { timestamp: 1 } } }, /unrecognised/],
      [envelope({ timestamp: 1, message: 'x' }, { sourceNumber: ACCOUNT }), /own/],
      [envelope({ timestamp: 1, message: null, reaction: { emoji: '👍' } }), /reaction/],
      [envelope({ timestamp: 1, message: null }), /no text/],
      [{ ...envelope({ timestamp: 1, message: 'x' }), account: '+19999999999' }, /another account/],
      [{ nonsense: true }, /unrecognised/],
    ];
    for (const [raw, reason] of cases) {
      const m = mapEnvelope(raw, self, 'Andy');
      assert.equal(m.kind, 'ignored', JSON.stringify(raw));
      if (m.kind === 'ignored') assert.match(m.reason, reason);
    }
    // The SSE payload may be the whole notification, and manual-receive subscriptions wrap it: both unwrap.
    const wrapped = {
      jsonrpc: '2.0',
      method: 'receive',
      params: { subscription: 0, result: envelope({ timestamp: 3, message: 'wrapped' }) },
    };
    assert.equal(mapEnvelope(wrapped, self, 'Andy').kind, 'message');
  });

  test('typing STARTED is a typing hint for the chat it is in: the sender for a DM, the group by its id', () => {
    const typing = (source: Record<string, unknown>, typingMessage: Record<string, unknown>) =>
      mapEnvelope({ envelope: { timestamp: 5, ...source, typingMessage }, account: ACCOUNT }, self, 'Andy');
    assert.deepEqual(typing({ sourceNumber: ALICE }, { action: 'STARTED', timestamp: 5 }), { kind: 'typing', chatId: `signal:${ALICE}` });
    assert.deepEqual(typing({ sourceNumber: BOB, sourceUuid: 'b0b' }, { action: 'STARTED', timestamp: 5, groupId: GROUP_ID }), {
      kind: 'typing',
      chatId: `signal:group.${GROUP_ID}`,
    });
    const uuid = '7ccae375-cd51-4c82-8b1e-7be3280aa485';
    assert.deepEqual(typing({ sourceUuid: uuid }, { action: 'STARTED', timestamp: 5 }), { kind: 'typing', chatId: `signal:${uuid}` });
    const own = typing({ sourceUuid: ACCOUNT_UUID.toUpperCase() }, { action: 'STARTED', timestamp: 5, groupId: GROUP_ID });
    assert.deepEqual(own, { kind: 'ignored', reason: 'our own typing' });
  });

  test('send results: every failing recipient named; a rate limit with a known wait is a RateLimitedError', () => {
    const ok = { recipientAddress: { number: ALICE, uuid: null }, type: 'SUCCESS' };
    assert.equal(sendFailure([ok]), undefined);
    const unregistered = sendFailure([ok, { recipientAddress: { number: BOB, uuid: null }, type: 'UNREGISTERED_FAILURE' }]);
    assert.ok(unregistered && !(unregistered instanceof RateLimitedError), 'a plain error');
    assert.match(unregistered.message, /1 of 2 recipient\(s\): \+15551110002: not registered on Signal/);
    const limited = sendFailure([{ recipientAddress: { number: BOB }, type: 'RATE_LIMIT_FAILURE', retryAfterSeconds: 7 }]);
    assert.ok(limited instanceof RateLimitedError, 'a RateLimitedError');
    assert.equal(limited.retryAfterMs, 7000);
    const unknownWait = sendFailure([{ recipientAddress: { number: BOB }, type: 'RATE_LIMIT_FAILURE' }]);
    assert.ok(unknownWait && !(unknownWait instanceof RateLimitedError), 'no retry time: the usual schedule');
    // signal-cli's error answer for a rate-limited send (code -5) carries the results in data.response.
    const rpc = new SignalRpcError(-5, 'Failed to send message due to rate limiting', {
      response: {
        timestamp: 1,
        results: [{ recipientAddress: { uuid: 'u', number: ALICE }, type: 'RATE_LIMIT_FAILURE', token: 't', retryAfterSeconds: 60 }],
      },
    });
    const mapped = sendError(rpc);
    assert.ok(mapped instanceof RateLimitedError, 'a RateLimitedError');
    assert.equal(mapped.retryAfterMs, 60_000);
    assert.match(mapped.message, /rate limiting.*captcha/);
    assert.match(sendError(new SignalRpcError(-1, 'Group not found: x', null)).message, /^signal-cli: Group not found/);
    assert.match(sendError(new SignalRpcError(-5, 'Failed to send message due to rate limiting', null)).message, /no retry time/);
  });

  test('files go out as data URIs with their name and type', () => {
    assert.equal(attachmentDataUri({ name: 'chart.png', data: Buffer.from('hi') }), 'data:image/png;filename=chart.png;base64,aGk=');
    assert.equal(
      attachmentDataUri({ name: 'a b;c.bin', data: Buffer.from('') }),
      'data:application/octet-stream;filename=a_b_c.bin;base64,',
    );
  });

  test('SSE framing: ids, event names, multi-line data, comments, CRLF, split chunks; oversize fails', () => {
    const p = new SseParser(1000);
    assert.deepEqual(p.feed(':\n\nid:1-1\nevent:receive\ndata:{"a":'), []);
    assert.deepEqual(p.feed('1}\n\r\ndata: x\r\ndata: y\n\n'), [
      { event: 'receive', data: '{"a":1}', id: '1-1' },
      { event: 'message', data: 'x\ny' },
    ]);
    assert.throws(() => new SseParser(10).feed(`data:${'x'.repeat(20)}`), /exceeded/);
  });

  test('line framing: lines across chunks; an oversize line is dropped with its tail, the next line survives', () => {
    const s = new LineSplitter(20);
    assert.deepEqual(s.feed('{"a":1}\n{"b"'), [{ line: '{"a":1}' }]);
    assert.deepEqual(s.feed(':2}\n'), [{ line: '{"b":2}' }]);
    const out = s.feed(`{"result":"${'x'.repeat(40)}","id":"7"}\n{"c":3}\n`);
    assert.equal(out.length, 2);
    assert.ok('overflow' in (out[0] ?? {}), 'the long line is reported as overflow');
    assert.deepEqual(out[1], { line: '{"c":3}' });
  });
});

/** A sink that records what the adapter hands it, deduplicating like ingest does. */
function recordingSink(maxMediaBytes = 64 * 1024) {
  const messages: InboundMessage[] = [];
  const stored = new Set<string>();
  const joined = new Set<string>();
  const typed: string[] = [];
  const sink: InboundSink & {
    messages: InboundMessage[];
    joined: Set<string>;
    /** The chat ids the adapter said someone is typing in, in order. */
    typed: string[];
    next(from: number, timeoutMs?: number): Promise<InboundMessage>;
  } = {
    maxMediaBytes,
    messages,
    joined,
    typed,
    typing: (chatId) => void typed.push(chatId),
    isJoined: (chatId) => joined.has(chatId),
    seen: (chatId, platformId) => stored.has(`${chatId} ${platformId}`),
    async ingest(m): Promise<IngestResult> {
      const key = `${m.chatId} ${m.platformId}`;
      const duplicate = stored.has(key);
      stored.add(key);
      messages.push(m);
      return { seq: messages.length, duplicate, engaged: !duplicate && joined.has(m.chatId) };
    },
    async next(from, timeoutMs = 5_000) {
      await until(`inbound message #${from + 1}`, () => messages.length > from, timeoutMs);
      return messages[from] as InboundMessage;
    },
  };
  return sink;
}

for (const transport of ['tcp', 'http'] as const) {
  describe(`Signal adapter over --${transport}`, () => {
    let fake: FakeSignalCli;
    let channel: SignalChannel;
    let sink: ReturnType<typeof recordingSink>;
    const dm = `signal:${ALICE}`;
    const group = `signal:group.${GROUP_ID}`;

    before(async () => {
      fake = await startFakeSignalCli({
        account: ACCOUNT,
        accountUuid: ACCOUNT_UUID,
        groups: [{ id: GROUP_ID, name: 'Family', members: [ACCOUNT, ALICE, BOB] }],
      });
      sink = recordingSink();
      channel = new SignalChannel({
        account: ACCOUNT,
        url: transport === 'tcp' ? fake.tcpUrl : fake.httpUrl,
        assistantName: 'Andy',
        log,
        reconnectMinMs: 50,
        reconnectMaxMs: 200,
        typingRefreshMs: 100,
      });
      await channel.start(sink);
    });
    after(async () => {
      await channel?.stop();
      await fake?.close();
    });

    test('starts connected, having listed the groups', async () => {
      assert.equal(channel.state(), 'connected');
      assert.equal(channel.owns(dm), true);
      assert.equal(channel.owns('tg:1'), false);
      assert.ok(
        fake.callsOf('listGroups').some((c) => c.params.account === ACCOUNT && c.transport === transport),
        'listGroups was called',
      );
    });

    test('a direct message arrives; its redelivery carries the same platform id', async () => {
      const from = sink.messages.length;
      const env = fake.dataMessage({ from: ALICE, name: 'Alice', text: 'hello there' });
      fake.receive(env);
      const m = await sink.next(from);
      assert.equal(m.chatId, dm);
      assert.equal(m.text, 'hello there');
      assert.equal(m.senderName, 'Alice');
      assert.equal(m.platformId, `${ALICE}:${env.timestamp}`);
      fake.receive(env);
      const again = await sink.next(from + 1);
      assert.equal(again.platformId, m.platformId, 'same identity: ingest stores it once');
    });

    test('own echoes, receipts and typing notifications are not ingested', async () => {
      const from = sink.messages.length;
      fake.receive(fake.syncEcho('my own reply', ALICE));
      fake.receive(fake.receipt(ALICE, [1]));
      fake.receive(fake.typing(ALICE));
      fake.receive(fake.dataMessage({ from: ALICE, text: 'marker after noise' }));
      const m = await sink.next(from);
      assert.equal(m.text, 'marker after noise');
      await sleep(50);
      assert.equal(sink.messages.length, from + 1);
    });

    test('someone typing reaches sink.typing with the chat id (DM or group); STOPPED and our own typing do not', async () => {
      const from = sink.messages.length;
      const typedFrom = sink.typed.length;
      fake.receive(fake.typing(ACCOUNT));
      fake.receive(fake.typing(ACCOUNT, { groupId: GROUP_ID }));
      fake.receive(fake.typing(ALICE, { action: 'STOPPED' }));
      fake.receive(fake.typing(ALICE));
      fake.receive(fake.typing(BOB, { groupId: GROUP_ID }));
      fake.receive(fake.dataMessage({ from: ALICE, text: 'marker after typing' }));
      // Events are handled one at a time in order: once the marker is in, every typing before it was handled.
      const m = await sink.next(from);
      assert.equal(m.text, 'marker after typing', 'typing notifications are not messages');
      assert.deepEqual(sink.typed.slice(typedFrom), [dm, group]);
    });

    test('a mention of the bot in a group reads @Andy and engages; a quote of our message engages too', async () => {
      const from = sink.messages.length;
      fake.receive(
        fake.dataMessage({
          from: BOB,
          group: { id: GROUP_ID },
          text: 'hey \uFFFC, the plan?',
          mentions: [{ start: 4, number: ACCOUNT, uuid: ACCOUNT_UUID }],
        }),
      );
      const m = await sink.next(from);
      assert.equal(m.chatId, group);
      assert.equal(m.isGroup, true);
      assert.equal(m.chatName, 'Family');
      assert.equal(m.text, 'hey @Andy, the plan?');
      assert.equal(m.mentionsBot, true);
      fake.receive(fake.dataMessage({ from: BOB, group: { id: GROUP_ID }, text: 'plain chatter' }));
      assert.equal((await sink.next(from + 1)).mentionsBot, undefined);
      fake.receive(
        fake.dataMessage({ from: BOB, group: { id: GROUP_ID }, text: 'about that', quote: { id: 123, authorUuid: ACCOUNT_UUID } }),
      );
      assert.equal((await sink.next(from + 2)).mentionsBot, true);
    });

    test('send: text to a direct chat, the platform id is our account and the timestamp', async () => {
      const { platformId } = await channel.send(dm, { text: 'hi Alice', replyTo: { platformId: `${ALICE}:1700000000001` } });
      const call = fake.callsOf('send').at(-1) as RpcCall;
      assert.deepEqual(call.params.recipient, [ALICE]);
      assert.equal(call.params.message, 'hi Alice');
      assert.equal(call.params.account, ACCOUNT);
      assert.equal(call.params.quoteTimestamp, undefined, 'no quotes in direct chats by default');
      assert.match(platformId, /^\+15550000000:\d{13}$/);
    });

    test('send in a group quotes the message answered, once per reply', async () => {
      const replyTo = { platformId: `${BOB}:1700000000123` };
      await channel.send(group, { text: 'part one', replyTo });
      await channel.send(group, { text: 'part two', replyTo });
      const [one, two] = fake.callsOf('send').slice(-2) as [RpcCall, RpcCall];
      assert.equal(one.params.groupId, GROUP_ID);
      assert.equal(one.params.quoteTimestamp, 1700000000123);
      assert.equal(one.params.quoteAuthor, BOB);
      assert.equal(two.params.quoteTimestamp, undefined);
    });

    test("send: an agent's reply as plain text with signal-cli text styles at UTF-16 offsets; a long one in parts", async () => {
      await channel.send(group, { text: AGENT_REPLY, replyTo: { platformId: `${BOB}:1700000000555` } });
      const call = fake.callsOf('send').at(-1) as RpcCall;
      const text = String(call.params.message);
      assert.ok(Array.isArray(call.params.textStyle));
      const styled = (call.params.textStyle as string[]).map((entry) => {
        const [start, length, style] = entry.split(':');
        return [style, text.slice(Number(start), Number(start) + Number(length))];
      });
      // The heading's emoji is two UTF-16 code units: every later range would be off by one if counted otherwise.
      assert.deepEqual(styled, [
        ['BOLD', 'Trip plan for Zoë 🚀'],
        ['BOLD', 'what I booked'],
        ['ITALIC', 'Tuesday'],
        ['STRIKETHROUGH', '9:00'],
        ['BOLD', 'Train:'],
        ['MONOSPACE', 'budget.py'],
        ['ITALIC', 'The museum closes at 17:00.'],
        ['MONOSPACE', 'Day | Plan 🗺️\n----+--------\nTue | Museum\nWed | Hike ⛰️'],
        ['MONOSPACE', 'total = sum(costs)  # **not bold**\nprint(f"{total} €")'],
      ]);
      assert.match(text, /^• Train: ICE 123 to München \(https:\/\/bahn\.de\/tickets\?id=42\)$/m);
      assert.ok(!text.includes('##') && !text.includes('```') && !text.includes('|---'));
      assert.equal(call.params.quoteTimestamp, 1700000000555);

      const long = longAgentReply(60);
      const count = channel.partsOf(long);
      const before = fake.callsOf('send').length;
      await channel.send(group, { text: long, replyTo: { platformId: `${BOB}:1700000000556` } });
      const parts = fake.callsOf('send').slice(before);
      assert.equal(parts.length, count);
      assert.ok(count >= 3, `${count} parts`);
      assert.ok(parts.every((p) => String(p.params.message).length <= 2000));
      assert.deepEqual(
        parts.map((p) => p.params.quoteTimestamp),
        [1700000000556, ...Array(count - 1).fill(undefined)],
        'only the first part quotes',
      );
      const monospaced = parts.filter((p) => (p.params.textStyle as string[] | undefined)?.some((t) => t.endsWith(':MONOSPACE')));
      assert.ok(monospaced.length >= 2, 'the code block is cut in two, monospace in each part');
    });

    test('send a file: a data URI attachment with the text as its caption', async () => {
      await channel.send(dm, { text: 'the chart', file: { name: 'chart.png', data: PNG } });
      const call = fake.callsOf('send').at(-1) as RpcCall;
      assert.equal(call.params.message, 'the chart');
      assert.deepEqual(call.params.attachments, [`data:image/png;filename=chart.png;base64,${PNG.toString('base64')}`]);
    });

    test('a recipient that fails fails the send, naming it and why', async () => {
      fake.failSends({ type: 'UNREGISTERED_FAILURE', recipient: BOB });
      await assert.rejects(channel.send(group, { text: 'to all' }), (err: Error) => {
        assert.ok(!(err instanceof RateLimitedError), 'not a rate limit');
        assert.match(err.message, /\+15551110002: not registered on Signal/);
        return true;
      });
      fake.failSends({ rpcError: { code: -1, message: 'Failed to send message', data: null } });
      await assert.rejects(channel.send(dm, { text: 'x' }), /signal-cli: Failed to send message/);
    });

    test('a rate limit with a retry time becomes a RateLimitedError (result or error answer)', async () => {
      fake.failSends({ type: 'RATE_LIMIT_FAILURE', retryAfterSeconds: 3 });
      await assert.rejects(channel.send(dm, { text: 'x' }), (err: Error) => err instanceof RateLimitedError && err.retryAfterMs === 3000);
      fake.failSends({
        rpcError: {
          code: -5,
          message: 'Failed to send message due to rate limiting',
          data: {
            response: {
              timestamp: 1,
              results: [{ recipientAddress: { uuid: 'u', number: ALICE }, type: 'RATE_LIMIT_FAILURE', retryAfterSeconds: 42 }],
            },
          },
        },
      });
      await assert.rejects(channel.send(dm, { text: 'x' }), (err: Error) => err instanceof RateLimitedError && err.retryAfterMs === 42_000);
    });

    test('after the daemon drops the connection, a message sent meanwhile still arrives', async (t) => {
      const from = sink.messages.length;
      fake.setAccepting(false);
      fake.dropConnections();
      await until('the adapter to notice', () => channel.state() === 'connecting');
      fake.receive(fake.dataMessage({ from: ALICE, text: 'sent while you were away' }));
      assert.equal(fake.undelivered(), 1, 'the daemon keeps it');
      await sleep(400); // a few refused reconnects
      const refusedAt = Date.now();
      fake.setAccepting(true);
      const m = await sink.next(from);
      assert.equal(m.text, 'sent while you were away');
      t.diagnostic(`delivered ${Date.now() - refusedAt} ms after the daemon accepted connections again`);
      assert.ok(Date.now() - refusedAt < 2_000, 'reconnected within the capped backoff');
      assert.equal(channel.state(), 'connected');
      // Calls work again on the new connection.
      await channel.send(dm, { text: 'back' });
    });

    test('typing: sent at once, renewed while on, stopped when off, nothing after', async () => {
      const before = fake.callsOf('sendTyping').length;
      await channel.setTyping(dm, true);
      await until('a renewal', () => fake.callsOf('sendTyping').length >= before + 3, 3_000);
      await channel.setTyping(dm, false);
      const typing = fake.callsOf('sendTyping').slice(before);
      assert.deepEqual(typing[0]?.params.recipient, [ALICE]);
      assert.equal(typing.at(-1)?.params.stop, true);
      assert.ok(
        typing.slice(0, -1).every((c) => c.params.stop === undefined),
        'only starts before the stop',
      );
      const count = fake.callsOf('sendTyping').length;
      await sleep(300);
      assert.equal(fake.callsOf('sendTyping').length, count, 'the renewal timer is gone');
      await channel.setTyping(group, true);
      await channel.setTyping(group, false);
      assert.equal(fake.callsOf('sendTyping').at(-1)?.params.groupId, GROUP_ID);
    });

    test('media: downloaded for joined chats, a file over the limit skipped, nothing fetched for others', async () => {
      const from = sink.messages.length;
      const photo = fake.addAttachment(PNG, 'image/png', 'photo.png');
      const big = fake.addAttachment(Buffer.alloc(sink.maxMediaBytes + 1, 1), 'video/mp4', 'big.mp4');
      const voice = fake.addAttachment(Buffer.from('OggS voice'), 'audio/ogg');
      sink.joined.add(dm);
      const fetchesBefore = fake.callsOf('getAttachment').length;
      fake.receive(fake.dataMessage({ from: ALICE, text: 'look', attachments: [photo, big, voice] }));
      const m = await sink.next(from);
      assert.equal(m.attachments?.length, 2);
      assert.deepEqual(m.attachments?.[0], { kind: 'image', name: 'photo.png', mime: 'image/png', data: PNG });
      assert.equal(m.attachments?.[1]?.kind, 'audio');
      assert.match(m.text, /^look\n\[big\.mp4 \(0\.1 MB\) was not downloaded: larger than/);
      assert.equal(fake.callsOf('getAttachment').length - fetchesBefore, 2, 'the big one is not even fetched');
      sink.joined.delete(dm);
      fake.receive(fake.dataMessage({ from: BOB, text: 'unjoined', attachments: [fake.addAttachment(PNG, 'image/png')] }));
      const other = await sink.next(from + 1);
      assert.equal(other.attachments, undefined);
      assert.equal(fake.callsOf('getAttachment').length - fetchesBefore, 2);
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

describe('Signal adapter: starting', () => {
  test('start rejects when signal-cli confirms it does not have the account', async () => {
    const fake = await startFakeSignalCli({ account: ACCOUNT });
    const channel = new SignalChannel({ account: '+19990000000', url: fake.httpUrl, assistantName: 'Andy', log });
    try {
      await assert.rejects(channel.start(recordingSink()), /does not have the account \+19990000000/);
      assert.equal(channel.state(), 'disconnected');
    } finally {
      await channel.stop();
      await fake.close();
    }
  });

  test('a URL that names no transport is refused at once', () => {
    assert.throws(() => new SignalChannel({ account: ACCOUNT, url: 'ws://127.0.0.1:1', assistantName: 'Andy', log }), /use http/);
  });

  for (const transport of ['tcp', 'http'] as const) {
    test(`over --${transport}, start resolves while signal-cli is down and connects when it comes up`, async () => {
      const port = await freePort();
      const channel = new SignalChannel({
        account: ACCOUNT,
        url: `${transport}://127.0.0.1:${port}`,
        assistantName: 'Andy',
        log,
        reconnectMinMs: 50,
        reconnectMaxMs: 100,
        callTimeoutMs: 1_000,
      });
      const sink = recordingSink();
      let fake: FakeSignalCli | undefined;
      try {
        await channel.start(sink);
        assert.equal(channel.state(), 'connecting');
        await assert.rejects(channel.send(`signal:${ALICE}`, { text: 'x' }), /not reachable/);
        fake = await startFakeSignalCli(transport === 'tcp' ? { tcpPort: port } : { httpPort: port });
        fake.receive(fake.dataMessage({ from: ALICE, text: 'first words' }));
        assert.equal((await sink.next(0)).text, 'first words');
        assert.equal(channel.state(), 'connected');
      } finally {
        await channel.stop();
        await fake?.close();
      }
    });
  }

  test('attachments can be read from signal-cli’s attachments folder instead, bounded the same', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-signal-att-'));
    const fake = await startFakeSignalCli({ account: ACCOUNT });
    const sink = recordingSink(1024);
    sink.joined.add(`signal:${ALICE}`);
    const channel = new SignalChannel({ account: ACCOUNT, url: fake.tcpUrl, assistantName: 'Andy', log, attachmentsDir: dir });
    try {
      writeFileSync(join(dir, 'small.png'), PNG);
      // Declares a small size but is larger on disk: reading stops past the limit.
      writeFileSync(join(dir, 'liar.bin'), Buffer.alloc(5000));
      await channel.start(sink);
      fake.receive(
        fake.dataMessage({
          from: ALICE,
          text: 'files',
          attachments: [
            { id: 'small.png', contentType: 'image/png', size: PNG.length },
            { id: 'liar.bin', contentType: 'application/pdf', filename: 'liar.pdf', size: 10 },
            { id: '../etc', contentType: 'text/plain', size: 3 },
          ],
        }),
      );
      const m = await sink.next(0);
      assert.equal(m.attachments?.length, 1);
      assert.deepEqual(m.attachments?.[0]?.data, PNG);
      assert.match(m.text, /liar\.pdf .*not downloaded: larger than/);
      assert.match(m.text, /could not be downloaded: unexpected attachment id/);
      assert.equal(fake.callsOf('getAttachment').length, 0);
    } finally {
      await channel.stop();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

// ---- end to end: fake signal-cli → pincer (ingest, store, queue, sandboxed agent, fake model) → outbox → fake ----

const skip = await sandboxUnavailable();
const LONG = Array.from({ length: 100 }, (_, i) => `Sentence number ${i + 1} of a long answer that goes on for a while.`).join(' ');

const script: ModelScript = (req) => {
  if (!isAgentTurn(req)) return { text: 'side request' };
  const text = lastUserText(req);
  if (text.includes('long please')) return { text: LONG };
  if (text.includes('slow please')) return { text: 'slow answer', delayMs: 1500 };
  const marker = [...text.matchAll(/marker-[\w-]+/g)].at(-1)?.[0] ?? 'none';
  return { text: `echo ${marker}` };
};

const sendsWith = (fake: FakeSignalCli, needle: string) =>
  fake.callsOf('send').filter((c) => String(c.params.message ?? '').includes(needle));

describe('Signal end to end through pincer (--http)', { skip }, () => {
  let fake: FakeSignalCli;
  let h: Harness;
  const ownerChat = `signal:${OWNER}`;
  const groupChat = `signal:group.${GROUP_ID}`;

  before(async () => {
    fake = await startFakeSignalCli({ account: ACCOUNT, groups: [{ id: GROUP_ID, name: 'Family', members: [ACCOUNT, OWNER, ALICE] }] });
    h = await startHarness({ env: { SIGNAL_ACCOUNT: ACCOUNT, SIGNAL_CLI_URL: fake.httpUrl, PINCER_MAIN_CHAT: ownerChat }, script });
  });
  after(async () => {
    await h?.stop();
    await fake?.close();
  });

  test('the owner’s DM (the main group) gets an answer through the sandboxed agent', async () => {
    fake.receive(fake.dataMessage({ from: OWNER, name: 'Owner', text: 'hi marker-dm-1' }));
    const reply = await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'echo marker-dm-1', 60_000);
    assert.deepEqual(reply.params.recipient, [OWNER]);
    assert.equal(reply.transport, 'http');
    const stored = h.pincer.store.chats.get(ownerChat);
    assert.equal(stored?.name, 'Owner');
    const receipt = await fake.waitForCall((c) => c.method === 'sendReceipt' && c.params.recipient === OWNER, 5_000);
    assert.equal(receipt.params.type, 'read', 'the owner sees the message was read');
  });

  test('in a joined group only a mention of the bot starts a turn; the answer quotes it', async () => {
    fake.receive(fake.dataMessage({ from: ALICE, group: { id: GROUP_ID, name: 'Family' }, text: 'before joining marker-g-0' }));
    await until('the group to be seen', () => h.pincer.store.chats.get(groupChat) !== undefined);
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: groupChat, folder: 'family' });
    fake.receive(fake.dataMessage({ from: ALICE, group: { id: GROUP_ID }, text: 'just chatting marker-g-1' }));
    const ts = Date.now() + 1000;
    fake.receive(
      fake.dataMessage({
        from: ALICE,
        group: { id: GROUP_ID },
        timestamp: ts,
        text: '\uFFFC what did I say? marker-g-2',
        mentions: [{ start: 0, number: ACCOUNT }],
      }),
    );
    const reply = await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'echo marker-g-2', 60_000);
    assert.equal(reply.params.groupId, GROUP_ID);
    assert.equal(reply.params.quoteTimestamp, ts);
    assert.equal(reply.params.quoteAuthor, ALICE);
    assert.equal(sendsWith(fake, 'marker-g-1').length, 0, 'no turn for the message without a mention');
    const turn = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('marker-g-2')).at(-1);
    assert.ok(turn && lastUserText(turn).includes('@Andy what did I say?'), 'the agent reads the mention as @Andy');
    assert.ok(turn && lastUserText(turn).includes('marker-g-1'), 'the earlier message is context');
  });

  test('a redelivered message produces no second turn', async () => {
    const env = fake.dataMessage({ from: OWNER, text: 'once only marker-redeliver' });
    fake.receive(env);
    await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'echo marker-redeliver', 60_000);
    fake.receive(env);
    fake.receive(fake.dataMessage({ from: OWNER, text: 'next marker-after-redeliver' }));
    await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'echo marker-after-redeliver', 60_000);
    assert.equal(sendsWith(fake, 'marker-redeliver').length, 1);
    const turns = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('once only marker-redeliver'));
    assert.equal(turns.length, 1, 'the model saw it once');
    const dup = h.pincer.store.db.prepare(`SELECT COUNT(*) AS n FROM events WHERE stage = 'duplicate' AND chat_id = ?`).get(ownerChat) as {
      n: number;
    };
    assert.equal(dup.n, 1);
  });

  test('a message sent while the event stream is down arrives after the reconnect and is answered', async () => {
    fake.setAccepting(false);
    fake.dropConnections();
    fake.receive(fake.dataMessage({ from: OWNER, text: 'while down marker-reconnect' }));
    await sleep(500);
    assert.equal(fake.undelivered(), 1);
    fake.setAccepting(true);
    const reply = await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'echo marker-reconnect', 60_000);
    assert.deepEqual(reply.params.recipient, [OWNER]);
  });

  test('a rate-limited send is retried after the time Signal gave, then delivered', async (t) => {
    fake.failSends({ type: 'RATE_LIMIT_FAILURE', retryAfterSeconds: 2 });
    fake.receive(fake.dataMessage({ from: OWNER, text: 'please marker-429' }));
    const delivered = await fake.waitForCall(
      (c) => c.method === 'send' && c.params.message === 'echo marker-429' && sendsWith(fake, 'marker-429').indexOf(c) === 1,
      60_000,
    );
    const [refused] = sendsWith(fake, 'marker-429') as [RpcCall];
    const waited = delivered.at - refused.at;
    t.diagnostic(`retried ${waited} ms after the refused send (Signal said 2 s)`);
    assert.ok(waited >= 1900, `retried after ${waited} ms, not before the 2 s Signal asked for`);
    assert.ok(waited < 10_000, `retried after ${waited} ms`);
  });

  test('a long reply goes out in parts within 2000 characters, in order', async () => {
    const from = fake.callsOf('send').length;
    fake.receive(fake.dataMessage({ from: OWNER, text: 'long please' }));
    await fake.waitForCall(
      (c) => c.method === 'send' && String(c.params.message).endsWith('Sentence number 100 of a long answer that goes on for a while.'),
      60_000,
    );
    const parts = fake
      .callsOf('send')
      .slice(from)
      .filter((c) => String(c.params.message).includes('Sentence number'))
      .map((c) => String(c.params.message));
    assert.ok(parts.length >= 3, `${parts.length} parts`);
    for (const p of parts) assert.ok(p.length <= 2000, `part of ${p.length}`);
    assert.equal(parts.join(' '), LONG);
  });

  test('a photo lands in the group’s inbox/ and the prompt names it', async () => {
    const photo = fake.addAttachment(PNG, 'image/png', 'holiday.png');
    fake.receive(fake.dataMessage({ from: OWNER, text: 'what is this marker-photo', attachments: [photo] }));
    await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'echo marker-photo', 60_000);
    const group = h.pincer.store.groups.get(ownerChat);
    assert.ok(group, 'the owner chat is a group');
    const inbox = join(groupPaths(h.pincer.layout, group.folder, group.isMain).groupDir, 'inbox');
    const files = readdirSync(inbox).filter((f) => f.endsWith('holiday.png'));
    assert.equal(files.length, 1);
    assert.deepEqual(readFileSync(join(inbox, files[0] as string)), PNG);
    const turn = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('marker-photo')).at(-1);
    assert.ok(turn && lastUserText(turn).includes(`inbox/${files[0]}`), 'the prompt names the saved file');
  });

  test('typing shows while the agent works and stops after', async () => {
    const typingTo = () => fake.callsOf('sendTyping').filter((c) => JSON.stringify(c.params.recipient) === JSON.stringify([OWNER]));
    // The earlier turns' typing must be over, so this turn's start is its own.
    await until(
      'the earlier turns to go idle',
      () => {
        const last = typingTo().at(-1);
        return last === undefined || (last.params.stop === true && Date.now() - last.at > 300);
      },
      30_000,
    );
    const from = fake.calls.length;
    fake.receive(fake.dataMessage({ from: OWNER, text: 'slow please' }));
    const reply = await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'slow answer', 60_000);
    const stop = await fake.waitForCall(
      (c) => c.method === 'sendTyping' && c.params.stop === true && fake.calls.indexOf(c) >= from,
      10_000,
    );
    const start = fake.calls.slice(from).find((c) => c.method === 'sendTyping' && c.params.stop === undefined);
    const seen = JSON.stringify(fake.calls.slice(from).map((c) => [c.method, c.params.stop ?? null, c.at]));
    assert.ok(start, `typing was shown: ${seen}`);
    assert.deepEqual(start.params.recipient, [OWNER]);
    assert.ok(start.at <= reply.at, `typing began before the answer: ${seen}`);
    assert.ok(reply.at - start.at >= 1000, `typing stayed on while the model took 1.5 s: ${seen}`);
    assert.ok(stop.at >= start.at, `typing stopped after it began: ${seen}`);
    assert.deepEqual(stop.params.recipient, [OWNER]);
  });
});

describe('Signal end to end through pincer (--tcp)', { skip }, () => {
  let fake: FakeSignalCli;
  let h: Harness;

  before(async () => {
    fake = await startFakeSignalCli({ account: ACCOUNT });
    h = await startHarness({ env: { SIGNAL_ACCOUNT: ACCOUNT, SIGNAL_CLI_URL: fake.tcpUrl, PINCER_MAIN_CHAT: `signal:${OWNER}` }, script });
  });
  after(async () => {
    await h?.stop();
    await fake?.close();
  });

  test('a message in, an answer out, on one socket', async () => {
    fake.receive(fake.dataMessage({ from: OWNER, text: 'hello marker-tcp-1' }));
    const reply = await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'echo marker-tcp-1', 60_000);
    assert.equal(reply.transport, 'tcp');
    assert.deepEqual(reply.params.recipient, [OWNER]);
  });

  test('after the socket drops, a message sent meanwhile is answered', async () => {
    fake.setAccepting(false);
    fake.dropConnections();
    fake.receive(fake.dataMessage({ from: OWNER, text: 'while down marker-tcp-2' }));
    await sleep(500);
    fake.setAccepting(true);
    await fake.waitForCall((c) => c.method === 'send' && c.params.message === 'echo marker-tcp-2', 60_000);
  });
});

// WhatsApp adapter: pure mapping on baileys-shaped messages, the adapter driven through baileys' real event
// emitter behind the socket seam (reconnects, media, sends, typing), the login command, and the real pipeline
// (store, dispatcher, sandboxed agent, fake model, outbox worker) with the adapter feeding it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import type * as Baileys from 'baileys';
import { encryptedStream, makeEventBuffer, normalizeMessageContent, type proto, type WAMessage } from 'baileys';
import { pino } from 'pino';
import { splitText } from '../src/channels/split-text.js';
import { type InboundMessage, type InboundSink, RateLimitedError } from '../src/channels/types.js';
import {
  type BaileysModule,
  bareJid,
  errorCode,
  fileContent,
  loadBaileys,
  type MapContext,
  type MediaSource,
  mapWhatsAppMessage,
  readBounded,
  selfFromUser,
  sendFailure,
  typingChatOf,
  unwrapContent,
  type WaConnectionUpdate,
  type WaMessage,
  WhatsAppChannel,
  type WhatsAppChannelOptions,
  WhatsAppSetupError,
  type WhatsAppSocket,
} from '../src/channels/whatsapp.js';
import { type LoginSocket, pairingPhone, runWhatsAppLogin } from '../src/cli/whatsapp.js';
import type { Logger } from '../src/log.js';
import { AGENT_REPLY, longAgentReply } from './helpers/agent-reply.js';
import { isAgentTurn, lastUserText } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';
import {
  ALICE,
  BOB,
  chatstate,
  content,
  countingStream,
  dm,
  documentContent,
  ephemeral,
  FakeWaSocket,
  GROUP,
  groupMessage,
  imageContent,
  lidDm,
  newId,
  presenceUpdatesFromBaileys,
  reaction,
  SELF,
  SELF_CHAT,
  selfChat,
  startMediaHost,
  statusUpdate,
  viewOnce,
  voiceNoteContent,
} from './helpers/whatsapp-fixtures.js';

/** Compile-time proof that baileys' own types fit the subset the adapter describes (tsc checks the test tree). */
export function baileysTypesFit(
  module: typeof Baileys,
  socket: Baileys.WASocket,
  message: Baileys.WAMessage,
  update: Partial<Baileys.ConnectionState>,
): [BaileysModule, WhatsAppSocket, WaMessage, WaConnectionUpdate] {
  return [module, socket, message, update];
}

const silent = pino({ level: 'silent' });
const GROUP_CHAT = `wa:${GROUP.jid}`;
const ALICE_CHAT = `wa:${ALICE.jid}`;
const self = selfFromUser({ id: SELF.deviceId, lid: SELF.deviceLid, name: SELF.name });

function ctx(over: Partial<MapContext> = {}): MapContext {
  const now = Date.now();
  return {
    type: 'notify',
    self,
    assistantName: 'Andy',
    sentByUs: () => false,
    pnForLid: () => undefined,
    liveSince: now - 60_000,
    now,
    ...over,
  };
}

function mapped(msg: WAMessage, over: Partial<MapContext> = {}) {
  const m = mapWhatsAppMessage(msg, ctx(over));
  if ('ignore' in m) assert.fail(`expected a message, got ignored: ${m.ignore}`);
  return m;
}

function ignored(msg: WAMessage, over: Partial<MapContext> = {}): string {
  const m = mapWhatsAppMessage(msg, ctx(over));
  assert.ok('ignore' in m, `expected ignored, got ${JSON.stringify('message' in m ? m.message : m)}`);
  return m.ignore;
}

async function waitFor<T>(what: string, probe: () => T | undefined | false, timeoutMs = 5_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

function captureLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: pino({ level: 'debug' }, { write: (s: string) => void lines.push(s) }), lines };
}

describe('mapping baileys messages', () => {
  test('a DM: chat and sender by phone number, the message id as platform id, seconds as time', () => {
    const msg = dm('hello there', { t: 1_700_000_000 });
    const { message, media } = mapped(msg);
    assert.deepEqual(message, {
      chatId: ALICE_CHAT,
      channel: 'whatsapp',
      platformId: msg.key.id,
      senderId: `wa:${ALICE.jid}`,
      senderName: 'Alice',
      text: 'hello there',
      sentAt: 1_700_000_000_000,
      chatName: 'Alice',
      isGroup: false,
    });
    assert.equal(media, undefined);
  });

  test('a DM addressed by LID keeps the phone-number chat id (remoteJidAlt)', () => {
    const { message } = mapped(lidDm('via lid'));
    assert.equal(message.chatId, ALICE_CHAT);
    assert.equal(message.senderId, `wa:${ALICE.jid}`);
    // Without the alternative, a learned LID → number mapping is used; else the LID itself.
    const bare = lidDm('no alt');
    delete bare.key.remoteJidAlt;
    assert.equal(mapped(bare, { pnForLid: (lid) => (lid === ALICE.lid ? ALICE.jid : undefined) }).message.chatId, ALICE_CHAT);
    assert.equal(mapped(bare).message.chatId, `wa:${ALICE.lid}`);
  });

  test('a group message from an @lid participant: sender by number, mention of our LID engages as @Andy', () => {
    const { message } = mapped(groupMessage(`@${SELF.lidUser} what time is it?`, { mentions: [SELF.lid] }));
    assert.equal(message.chatId, GROUP_CHAT);
    assert.equal(message.isGroup, true);
    assert.equal(message.senderId, `wa:${BOB.jid}`);
    assert.equal(message.senderName, 'Bob');
    assert.equal(message.mentionsBot, true);
    assert.equal(message.text, '@Andy what time is it?');
    // A mention by phone number (older clients) too; another person's mention does not engage.
    const byNumber = mapped(groupMessage(`hey @${SELF.number}`, { mentions: [SELF.jid] })).message;
    assert.equal(byNumber.text, 'hey @Andy');
    assert.equal(byNumber.mentionsBot, true);
    const other = mapped(groupMessage(`@${ALICE.number} hi`, { mentions: [ALICE.jid] })).message;
    assert.equal(other.mentionsBot, undefined);
    assert.equal(other.text, `@${ALICE.number} hi`);
    // Without the number as alternative, the LID is the sender.
    const noAlt = groupMessage('plain');
    delete noAlt.key.participantAlt;
    assert.equal(mapped(noAlt).message.senderId, `wa:${BOB.lid}`);
  });

  test('a reply to one of our messages addresses the bot; a reply to the owner does not', () => {
    const ours = newId();
    const reply = groupMessage('yes please', { quoted: { id: ours, participant: SELF.lid, text: 'Andy: shall I?' } });
    assert.equal(mapped(reply, { sentByUs: (id) => id === ours }).message.mentionsBot, true);
    // After a restart the id is forgotten: the prefix still tells our message from the owner's.
    assert.equal(mapped(reply).message.mentionsBot, true);
    const toOwner = groupMessage('ok', { quoted: { id: newId(), participant: SELF.lid, text: 'see you' } });
    assert.equal(mapped(toOwner).message.mentionsBot, undefined);
  });

  test('ephemeral and view-once wrappers are unwrapped, as baileys itself would', () => {
    const wrapped = dm('', { message: ephemeral({ extendedTextMessage: { text: 'disappearing hello' } }) });
    assert.equal(mapped(wrapped).message.text, 'disappearing hello');
    const once = dm('', { message: viewOnce(imageContent('look once', 2048)) });
    const m = mapped(once);
    assert.equal(m.message.text, 'look once');
    assert.equal(m.media?.kind, 'image');
    for (const c of [wrapped.message, once.message, ephemeral(viewOnce({ conversation: 'deep' })), imageContent('x', 1)]) {
      assert.deepEqual(unwrapContent(c), normalizeMessageContent(c), 'same unwrapping as baileys.normalizeMessageContent');
    }
  });

  test('an image with caption, a voice note and a document: their media, declared sizes (Long) and names', () => {
    const image = mapped(dm('', { message: imageContent('our new flat', 123_456) }));
    assert.equal(image.message.text, 'our new flat');
    assert.deepEqual(image.media, { kind: 'image', mime: 'image/jpeg', name: 'image.jpg', declaredBytes: 123_456, placeholder: '[image]' });
    const voice = mapped(dm('', { message: voiceNoteContent(9_000) }));
    assert.equal(voice.message.text, '');
    assert.deepEqual(voice.media, {
      kind: 'audio',
      mime: 'audio/ogg',
      name: 'voice-note.ogg',
      declaredBytes: 9_000,
      placeholder: '[voice note]',
    });
    const doc = mapped(dm('', { message: documentContent('invoice.pdf', 50_000) }));
    assert.equal(doc.media?.name, 'invoice.pdf');
    assert.equal(doc.media?.placeholder, '[document: invoice.pdf]');
  });

  test('reactions, status updates, protocol messages and notifications are not input', () => {
    const original = dm('nice');
    assert.equal(ignored(dm('', { message: reaction(original, '👍') })), 'reaction');
    assert.equal(ignored(statusUpdate('on holiday')), 'status update');
    assert.match(ignored(dm('', { message: content({ protocolMessage: { type: 0, key: original.key } }) })), /protocol/);
    const stub: WAMessage = { key: { remoteJid: GROUP.jid, id: newId(), participant: BOB.lid }, messageStubType: 27 };
    assert.match(ignored(stub), /no content/);
  });

  test('own echoes are ignored; the owner typing in the self-chat (by number or LID) is input', () => {
    const sentId = newId();
    const echo: WAMessage = { ...selfChat('Andy: 4'), key: { remoteJid: SELF.jid, fromMe: true, id: sentId } };
    assert.match(ignored(echo, { sentByUs: (id) => id === sentId }), /own echo/);
    const fileEcho: WAMessage = { key: { remoteJid: ALICE.jid, fromMe: true, id: sentId }, message: documentContent('a.pdf', 3) };
    assert.match(ignored(fileEcho, { sentByUs: (id) => id === sentId }), /own echo/);
    // A restart forgets sent ids: the reply prefix still marks our text.
    assert.match(ignored(selfChat('Andy: something')), /own echo/);
    for (const msg of [selfChat('what is 2+2?'), selfChat('what is 2+2?', { viaLid: true })]) {
      const { message } = mapped(msg);
      assert.equal(message.chatId, SELF_CHAT);
      assert.equal(message.senderId, `wa:${SELF.jid}`);
      assert.equal(message.chatName, 'Owner (self-chat)');
      assert.equal(message.isGroup, false);
    }
  });

  test("'append' upserts older than the last running time are history; newer ones (offline delivery) are input", () => {
    const now = Date.now();
    const old = dm('from last week', { t: Math.floor((now - 7 * 86_400_000) / 1000) });
    assert.match(ignored(old, { type: 'append', liveSince: now - 60_000 }), /history/);
    const missed = dm('sent while we reconnected', { t: Math.floor((now - 20_000) / 1000) });
    assert.equal(mapped(missed, { type: 'append', liveSince: now - 60_000 }).message.text, 'sent while we reconnected');
    // A live notify is input whatever its time.
    assert.equal(mapped(old).message.text, 'from last week');
  });

  test('outgoing files, errors, jids and phone numbers', () => {
    assert.deepEqual(fileContent({ name: 'chart.PNG', data: Buffer.from('p') }, 'Andy: the chart'), {
      image: Buffer.from('p'),
      mimetype: 'image/png',
      caption: 'Andy: the chart',
    });
    assert.deepEqual(fileContent({ name: 'report.pdf', data: Buffer.from('d') }, undefined), {
      document: Buffer.from('d'),
      fileName: 'report.pdf',
      mimetype: 'application/pdf',
    });
    assert.deepEqual(fileContent({ name: 'notes', data: Buffer.from('') }, undefined), {
      document: Buffer.from(''),
      fileName: 'notes',
      mimetype: 'application/octet-stream',
    });
    const limited = sendFailure(Object.assign(new Error('rate-overlimit'), { data: 429 }), 500);
    assert.ok(limited instanceof RateLimitedError);
    assert.equal(limited.retryAfterMs, 500);
    const other = sendFailure(Object.assign(new Error('not-authorized'), { data: 401 }));
    assert.ok(!(other instanceof RateLimitedError));
    assert.match(other.message, /not-authorized/);
    assert.equal(errorCode(Object.assign(new Error('x'), { output: { statusCode: 515 } })), 515);
    assert.equal(errorCode('nope'), undefined);
    assert.equal(bareJid('15550001111:7@s.whatsapp.net'), '15550001111@s.whatsapp.net');
    assert.equal(bareJid(GROUP.jid), GROUP.jid);
    assert.equal(pairingPhone('+49 151 2345-678'), '491512345678');
    assert.equal(pairingPhone('call me'), undefined);
  });

  test('a long reply is split so that every part, with the name prefix, fits 4096 characters', () => {
    const channel = new WhatsAppChannel({ authDir: '/nonexistent', assistantName: 'Andy', log: silent });
    const parts = splitText('word '.repeat(3000), channel.maxTextLength);
    assert.ok(parts.length >= 4);
    for (const p of parts) assert.ok(`Andy: ${p}`.length <= 4096);
  });

  test('reading media stops past the limit', async () => {
    const small = countingStream(3, 100);
    assert.equal((await readBounded(small, 1_000))?.length, 300);
    const big = countingStream(100, 1_000);
    assert.equal(await readBounded(big, 5_500), undefined);
    assert.equal(big.pulled(), 6, 'reading stopped at the first chunk past the limit');
    assert.equal(await readBounded(Buffer.alloc(10), 5), undefined);
  });
});

describe('typing from presence updates', () => {
  test("baileys' own presence updates: someone composing names the chat; we, paused and recording do not", async () => {
    const updates = await presenceUpdatesFromBaileys([
      chatstate(GROUP.jid, 'composing', BOB.lid),
      chatstate(ALICE.jid, 'composing'),
      chatstate(ALICE.lid, 'composing'),
      chatstate(GROUP.jid, 'composing', SELF.lid),
      chatstate(SELF.jid, 'composing'),
      chatstate(GROUP.jid, 'paused', BOB.lid),
      chatstate(ALICE.jid, 'recording'),
    ]);
    assert.equal(updates.length, 7, `baileys turned every chat state into a presence.update: ${JSON.stringify(updates)}`);
    assert.deepEqual(updates[0], { id: GROUP.jid, presences: { [BOB.lid]: { lastKnownPresence: 'composing' } } }, 'the shape pincer reads');
    const knownLid = (lid: string) => (lid === ALICE.lid ? ALICE.jid : undefined);
    assert.deepEqual(
      updates.map((u) => typingChatOf(u, self, knownLid)),
      [GROUP_CHAT, ALICE_CHAT, ALICE_CHAT, undefined, undefined, undefined, undefined],
    );
    // A LID nobody has named yet stays the chat's id, as it does for its messages.
    assert.equal(
      typingChatOf(updates[2] as (typeof updates)[number], self, () => undefined),
      `wa:${ALICE.lid}`,
    );
  });
});

/** A sink that records what it is given, as the real ingest would see it. */
class RecordingSink implements InboundSink {
  readonly messages: InboundMessage[] = [];
  readonly joined = new Set<string>();
  readonly stored = new Set<string>();
  /** The chat ids the adapter said someone is typing in, in order. */
  readonly typed: string[] = [];
  maxMediaBytes = 1_000_000;
  typing(chatId: string): void {
    this.typed.push(chatId);
  }
  async ingest(m: InboundMessage) {
    const key = `${m.chatId}/${m.platformId}`;
    const duplicate = this.stored.has(key);
    this.stored.add(key);
    this.messages.push(m);
    return { seq: this.messages.length, duplicate, engaged: false };
  }
  isJoined(chatId: string): boolean {
    return this.joined.has(chatId);
  }
  seen(chatId: string, platformId: string): boolean {
    return this.stored.has(`${chatId}/${platformId}`);
  }
}

interface Rig {
  channel: WhatsAppChannel;
  sink: RecordingSink;
  sockets: FakeWaSocket[];
  factoryCalls: number[];
  authDir: string;
}

const rigs: Rig[] = [];

/** A channel on fake sockets; each new socket opens by itself unless `onSocket` says otherwise. */
async function rig(
  over: Partial<WhatsAppChannelOptions> & { onSocket?: (s: FakeWaSocket, n: number) => void; failFirst?: number } = {},
): Promise<Rig> {
  const sockets: FakeWaSocket[] = [];
  const factoryCalls: number[] = [];
  const authDir = mkdtempSync(join(tmpdir(), 'pincer-wa-'));
  const { onSocket, failFirst = 0, ...options } = over;
  const channel = new WhatsAppChannel({
    authDir,
    assistantName: 'Andy',
    log: silent,
    reconnectBaseMs: 50,
    reconnectMaxMs: 400,
    socketFactory: async () => {
      factoryCalls.push(Date.now());
      if (factoryCalls.length <= failFirst) throw new Error('getaddrinfo ENOTFOUND web.whatsapp.com');
      const s = new FakeWaSocket();
      sockets.push(s);
      // baileys opens later, after its handshake: after the adapter has attached its listeners.
      setImmediate(() => (onSocket ? onSocket(s, sockets.length) : s.open()));
      return s;
    },
    ...options,
  });
  const sink = new RecordingSink();
  const r = { channel, sink, sockets, factoryCalls, authDir };
  rigs.push(r);
  await channel.start(sink);
  return r;
}

describe('the adapter behind the socket seam', () => {
  afterEach(async () => {
    for (const r of rigs.splice(0)) {
      await r.channel.stop();
      rmSync(r.authDir, { recursive: true, force: true });
    }
  });

  test('start resolves once connected; messages flow through baileys’ event buffer in order, with group names', async () => {
    const { channel, sink, sockets } = await rig();
    assert.equal(channel.state(), 'connected');
    assert.ok(channel.owns(GROUP_CHAT) && !channel.owns('tg:1'));
    const s = sockets[0] as FakeWaSocket;
    // baileys buffers events during its initial sync and flushes them together.
    s.ev.buffer();
    s.deliver([dm('one'), groupMessage('two')]);
    s.deliver([statusUpdate('ignored'), dm('three')]);
    assert.equal(sink.messages.length, 0);
    s.ev.flush();
    await waitFor('three messages', () => sink.messages.length === 3);
    assert.deepEqual(
      sink.messages.map((m) => m.text),
      ['one', 'two', 'three'],
    );
    assert.equal(sink.messages[1]?.chatName, GROUP.subject);
  });

  test('a LID learned from one message (or from baileys) names the chat of the next by phone number', async () => {
    const { sink, sockets } = await rig();
    const s = sockets[0] as FakeWaSocket;
    s.deliver([dm('addressed by number, LID as alternative')]);
    const bare = lidDm('addressed by LID alone');
    delete bare.key.remoteJidAlt;
    s.deliver([bare]);
    s.ev.emit('lid-mapping.update', { lid: BOB.lid, pn: BOB.jid });
    const fromBob = lidDm('Bob by LID alone', { from: BOB });
    delete fromBob.key.remoteJidAlt;
    s.deliver([fromBob]);
    await waitFor('three', () => sink.messages.length === 3);
    assert.deepEqual(
      sink.messages.map((m) => m.chatId),
      [ALICE_CHAT, ALICE_CHAT, `wa:${BOB.jid}`],
    );
  });

  test('media is downloaded only for joined chats, never twice, and within the size limit', async () => {
    const downloads: string[] = [];
    let next: () => MediaSource = () => Buffer.from('JPEG-BYTES');
    const { sink, sockets } = await rig({
      downloadMedia: async (m) => {
        downloads.push(m.key.id ?? '');
        return next();
      },
    });
    const s = sockets[0] as FakeWaSocket;
    // Not joined: no download, the text says what was there.
    s.deliver([dm('', { message: imageContent('unjoined photo', 10) })]);
    await waitFor('first', () => sink.messages.length === 1);
    assert.equal(downloads.length, 0);
    assert.equal(sink.messages[0]?.text, 'unjoined photo\n[image]');
    sink.joined.add(ALICE_CHAT);
    const photo = dm('', { message: imageContent('joined photo', 10) });
    s.deliver([photo]);
    await waitFor('second', () => sink.messages.length === 2);
    assert.deepEqual(sink.messages[1]?.attachments, [
      { kind: 'image', data: Buffer.from('JPEG-BYTES'), name: 'image.jpg', mime: 'image/jpeg' },
    ]);
    assert.equal(sink.messages[1]?.text, 'joined photo');
    // A redelivery is not downloaded again.
    s.deliver([photo]);
    await waitFor('third', () => sink.messages.length === 3);
    assert.equal(downloads.length, 1);
    // Declared too large: not even asked for.
    sink.maxMediaBytes = 1_000;
    s.deliver([dm('', { message: voiceNoteContent(5_000) })]);
    await waitFor('fourth', () => sink.messages.length === 4);
    assert.equal(downloads.length, 1);
    assert.equal(sink.messages[3]?.text, '[voice note]');
    assert.equal(sink.messages[3]?.attachments, undefined);
    // Declared small but larger when read: reading stops, the message still arrives.
    const stream = countingStream(50, 100);
    next = () => stream;
    s.deliver([dm('', { message: voiceNoteContent(500) })]);
    await waitFor('fifth', () => sink.messages.length === 5);
    assert.equal(stream.pulled(), 11);
    assert.equal(sink.messages[4]?.text, '[voice note]');
    // A failed download does not lose the message either.
    next = () => {
      throw new Error('media host 403');
    };
    s.deliver([dm('', { message: documentContent('a.pdf', 10) })]);
    await waitFor('sixth', () => sink.messages.length === 6);
    assert.equal(sink.messages[5]?.text, '[document: a.pdf]');
  });

  test("send: an agent's reply in WhatsApp's own formatting; a long one in parts, only the first quoted", async () => {
    const { channel, sink, sockets } = await rig();
    const s = sockets[0] as FakeWaSocket;
    const question = groupMessage('@Andy plan my trip', { mentions: [SELF.lid] });
    s.deliver([question]);
    await waitFor('question', () => sink.messages.length === 1);
    await channel.send(GROUP_CHAT, { text: AGENT_REPLY, replyTo: { platformId: question.key.id ?? '' } });
    assert.deepEqual(s.sent[0]?.content, {
      text: [
        'Andy: *Trip plan for Zoë 🚀*',
        '',
        "Here's *what I booked* for _Tuesday_: the ~9:00~ 10:30 train.",
        '',
        '- *Train:* ICE 123 to München (https://bahn.de/tickets?id=42)',
        '- Hotel: 東京ホテル 🏨',
        '- Budget checked with `budget.py`',
        '',
        '1. Pack',
        '2. Leave',
        '',
        '> The museum closes at 17:00.',
        '',
        '```Day | Plan 🗺️',
        '----+--------',
        'Tue | Museum',
        'Wed | Hike ⛰️```',
        '',
        '```total = sum(costs)  # **not bold**',
        'print(f"{total} €")```',
      ].join('\n'),
    });
    assert.equal(s.sent[0]?.quoted, question);

    const long = longAgentReply(150);
    const count = channel.partsOf(long);
    const before = s.sent.length;
    await channel.send(GROUP_CHAT, { text: long, replyTo: { platformId: question.key.id ?? '' } });
    const parts = s.sent.slice(before).map((p) => ({ text: 'text' in p.content ? String(p.content.text) : '', quoted: p.quoted }));
    assert.equal(parts.length, count);
    assert.ok(count >= 2, `${count} parts`);
    assert.deepEqual(
      parts.map((p) => p.quoted),
      [question, ...Array(count - 1).fill(undefined)],
      'only the first part quotes',
    );
    for (const part of parts) {
      assert.ok(part.text.startsWith('Andy: ') && part.text.length <= 4096, `a part of ${part.text.length} characters`);
      assert.equal((part.text.match(/```/g) ?? []).length % 2, 0, 'a code block cut in two is closed and reopened');
    }
    assert.ok(parts.filter((p) => p.text.includes('```step_') || p.text.includes('```\nstep_')).length >= 1);
    assert.equal(
      (
        parts
          .map((p) => p.text)
          .join('\n')
          .match(/step_\d+ =/g) ?? []
      ).length,
      150,
    );
  });

  test('send: the name prefix, quoted replies from the recent cache, files, rate limits, and its echo ignored', async () => {
    const { channel, sink, sockets } = await rig({ rateLimitWaitMs: 1234 });
    const s = sockets[0] as FakeWaSocket;
    const question = groupMessage('@Andy what is 2+2?', { mentions: [SELF.lid] });
    s.deliver([question]);
    await waitFor('question', () => sink.messages.length === 1);
    const { platformId } = await channel.send(GROUP_CHAT, { text: '4', replyTo: { platformId: question.key.id ?? '' } });
    const first = s.sent[0];
    assert.equal(first?.jid, GROUP.jid);
    assert.deepEqual(first?.content, { text: 'Andy: 4' });
    assert.equal(first?.quoted, question, 'quoted with the original message');
    assert.equal(first?.id, platformId);
    assert.ok(await channel.getMessage({ id: platformId }), 'kept for baileys’ retry requests');
    // Unknown reply target: sent without a quote.
    await channel.send(GROUP_CHAT, { text: 'later', replyTo: { platformId: 'gone' } });
    assert.equal(s.sent[1]?.quoted, undefined);
    await channel.send(ALICE_CHAT, { text: 'here', file: { name: 'report.pdf', data: Buffer.from('%PDF') } });
    assert.deepEqual(s.sent[2]?.content, {
      document: Buffer.from('%PDF'),
      fileName: 'report.pdf',
      mimetype: 'application/pdf',
      caption: 'Andy: here',
    });
    s.failures.push(Object.assign(new Error('rate-overlimit'), { data: 429 }));
    await assert.rejects(
      channel.send(ALICE_CHAT, { text: 'x' }),
      (err: unknown) => err instanceof RateLimitedError && err.retryAfterMs === 1234,
    );
    s.failures.push(new Error('not-acceptable'));
    await assert.rejects(channel.send(ALICE_CHAT, { text: 'x' }), /WhatsApp refused the message: not-acceptable/);
    // Our sends come back as own events ('append') and, from the server, as fromMe: neither is input.
    for (const sent of s.sent) {
      const echo: WAMessage = { key: { remoteJid: sent.jid, fromMe: true, id: sent.id }, message: content({ conversation: 'x' }) };
      s.deliver([echo], 'append');
      s.deliver([echo], 'notify');
    }
    s.deliver([dm('after the echoes')]);
    await waitFor('marker', () => sink.messages.length === 2);
    assert.equal(sink.messages[1]?.text, 'after the echoes');
  });

  test('the self-chat: the owner’s messages there are input; the assistant’s replies there are not', async () => {
    const { channel, sink, sockets } = await rig();
    const s = sockets[0] as FakeWaSocket;
    s.deliver([selfChat('remind me to call mum')]);
    await waitFor('self message', () => sink.messages.length === 1);
    assert.equal(sink.messages[0]?.chatId, SELF_CHAT);
    const { platformId } = await channel.send(SELF_CHAT, { text: 'will do' });
    assert.equal(s.sent[0]?.jid, SELF.jid);
    // WhatsApp shows that reply on the phone as the owner's; it comes back to the linked device.
    s.deliver([{ ...selfChat('Andy: will do'), key: { remoteJid: SELF.jid, fromMe: true, id: platformId } }], 'append');
    s.deliver([selfChat('thanks')]);
    await waitFor('second', () => sink.messages.length === 2);
    assert.deepEqual(
      sink.messages.map((m) => m.text),
      ['remind me to call mum', 'thanks'],
    );
  });

  test('typing: composing now and renewed while on, paused when off, timers gone at stop', async () => {
    const { channel, sockets } = await rig({ typingRefreshMs: 40 });
    const s = sockets[0] as FakeWaSocket;
    await channel.setTyping(ALICE_CHAT, true);
    await channel.setTyping(ALICE_CHAT, true);
    await sleep(300);
    await channel.setTyping(ALICE_CHAT, false);
    const composing = s.presence.filter((p) => p.type === 'composing');
    assert.ok(composing.length >= 3, `renewed: ${composing.length}`);
    assert.ok(composing.every((p) => p.jid === ALICE.jid));
    assert.equal(s.presence.at(-1)?.type, 'paused');
    const count = s.presence.length;
    await sleep(100);
    assert.equal(s.presence.length, count, 'no renewal after off');
    await channel.setTyping(GROUP_CHAT, true);
    await channel.stop();
    const atStop = s.presence.length;
    await sleep(100);
    assert.equal(s.presence.length, atStop, 'no renewal after stop');
    assert.equal(s.ended, true);
  });

  test('presence: joined chats subscribed once per connection; someone typing reaches sink.typing, our own typing does not', async () => {
    const { channel, sink, sockets } = await rig();
    sink.joined.add(GROUP_CHAT);
    sink.joined.add(ALICE_CHAT);
    const s = sockets[0] as FakeWaSocket;
    s.deliver([groupMessage('one'), groupMessage('two'), dm('hi'), dm('from an unjoined chat', { from: BOB })]);
    await waitFor('four messages', () => sink.messages.length === 4);
    assert.deepEqual(s.presenceSubscriptions, [GROUP.jid, ALICE.jid], 'joined chats only, each once');
    const [bobInGroup, usInGroup, aliceByLid, usInSelfChat] = await presenceUpdatesFromBaileys([
      chatstate(GROUP.jid, 'composing', BOB.lid),
      chatstate(GROUP.jid, 'composing', SELF.lid),
      chatstate(ALICE.lid, 'composing'),
      chatstate(SELF.jid, 'composing'),
    ]);
    for (const u of [usInGroup, bobInGroup, usInSelfChat, aliceByLid]) if (u) s.ev.emit('presence.update', u);
    await sleep(20);
    assert.deepEqual(
      sink.typed,
      [GROUP_CHAT, ALICE_CHAT],
      "the chats' ids as their messages have them (Alice's LID learned from her message)",
    );
    // A new connection subscribes again, at the chat's next message.
    s.close(428);
    await waitFor('a second socket', () => sockets.length === 2);
    const second = sockets[1] as FakeWaSocket;
    await waitFor('connected again', () => channel.state() === 'connected');
    second.deliver([groupMessage('three')]);
    await waitFor('the fifth message', () => sink.messages.length === 5);
    assert.deepEqual(second.presenceSubscriptions, [GROUP.jid]);
  });

  test('a dropped connection reconnects with backoff; what was sent meanwhile still arrives', async () => {
    const { channel, sink, sockets, factoryCalls } = await rig();
    const first = sockets[0] as FakeWaSocket;
    first.close(428);
    assert.equal(channel.state(), 'connecting');
    await waitFor('a second socket', () => sockets.length === 2);
    const gap = (factoryCalls[1] ?? 0) - (factoryCalls[0] ?? 0);
    assert.ok(gap >= 40, `waited before reconnecting: ${gap} ms`);
    assert.ok(
      (first.savedAt[0] ?? Number.POSITIVE_INFINITY) <= (factoryCalls[1] ?? 0),
      'the login was written before the next socket read it',
    );
    await waitFor('connected again', () => channel.state() === 'connected');
    const second = sockets[1] as FakeWaSocket;
    // Missed messages come as an offline delivery ('append') on the new connection.
    second.deliver([dm('sent during the drop', { t: Math.floor(Date.now() / 1000) - 2 })], 'append');
    second.deliver([dm('live again')]);
    // The old socket is dead to the adapter.
    first.deliver([dm('stale socket')]);
    await waitFor('two messages', () => sink.messages.length === 2);
    await sleep(50);
    assert.deepEqual(
      sink.messages.map((m) => m.text),
      ['sent during the drop', 'live again'],
    );
    await channel.send(ALICE_CHAT, { text: 'via the new socket' });
    assert.equal(second.sent.length, 1);
  });

  test('connection failures back off: each wait longer than the last', async () => {
    const { channel, factoryCalls } = await rig({ failFirst: 3, startTimeoutMs: 5_000 });
    // start resolved after the first failure (it keeps trying in the background).
    assert.equal(channel.state(), 'connecting');
    await waitFor('connected', () => channel.state() === 'connected', 5_000);
    assert.equal(factoryCalls.length, 4);
    const gaps = factoryCalls.slice(1).map((t, i) => t - (factoryCalls[i] ?? t));
    // 50 ms doubling, each within ±20 % jitter: never shorter than 80 % of its step.
    for (const [i, gap] of gaps.entries()) assert.ok(gap >= 0.8 * 50 * 2 ** i - 2, `gaps ${gaps.join(', ')}`);
  });

  test('logged out: no reconnect, and the log says to run pincer whatsapp login', async () => {
    const { log, lines } = captureLog();
    const { channel, sockets, factoryCalls } = await rig({ log });
    (sockets[0] as FakeWaSocket).close(401);
    await sleep(300);
    assert.equal(factoryCalls.length, 1);
    assert.equal(channel.state(), 'disconnected');
    assert.ok(lines.some((l) => l.includes('pincer whatsapp login') && l.includes('"level":50')));
    await assert.rejects(channel.send(ALICE_CHAT, { text: 'x' }), /disconnected/);
  });

  test('start rejects when WhatsApp says the login is gone, or when there is none', async () => {
    await assert.rejects(
      rig({ onSocket: (s) => s.close(401) }),
      (err: unknown) => err instanceof WhatsAppSetupError && /login/.test(err.message),
    );
    await assert.rejects(rig({ onSocket: (s) => s.ev.emit('connection.update', { qr: '2@abc' }) }), /pincer whatsapp login/);
    // The real socket path with real baileys on an empty login folder: refused before any connection is tried.
    const authDir = mkdtempSync(join(tmpdir(), 'pincer-wa-empty-'));
    try {
      const channel = new WhatsAppChannel({ authDir, assistantName: 'Andy', log: silent });
      await assert.rejects(channel.start(new RecordingSink()), /not linked yet.*pincer whatsapp login/);
      assert.equal(statSync(authDir).mode & 0o777, 0o700);
      await channel.stop();
    } finally {
      rmSync(authDir, { recursive: true, force: true });
    }
  });

  test('without baileys installed the error says how to install it', async () => {
    await assert.rejects(
      loadBaileys('baileys-not-installed-here'),
      /needs baileys, an optional dependency that could not be loaded.*npm install baileys@7\.0\.0-rc14/,
    );
    const real = await loadBaileys();
    assert.equal(real.DisconnectReason.loggedOut, 401);
  });

  test('after a restart, what arrived while pincer was down is input; what came before it ran is history', async () => {
    const first = await rig();
    await first.channel.stop();
    const alive = JSON.parse(readFileSync(join(first.authDir, 'pincer-alive.json'), 'utf8')) as { aliveAt: number };
    assert.ok(Math.abs(alive.aliveAt - Date.now()) < 5_000);
    // Two hours later, on the same login.
    const later = alive.aliveAt + 2 * 3600_000;
    const sink = new RecordingSink();
    const socket = new FakeWaSocket();
    const channel = new WhatsAppChannel({
      authDir: first.authDir,
      assistantName: 'Andy',
      log: silent,
      now: () => later,
      socketFactory: async () => {
        setImmediate(() => socket.open());
        return socket;
      },
    });
    rigs.push({ channel, sink, sockets: [socket], factoryCalls: [], authDir: first.authDir });
    await channel.start(sink);
    const seconds = (ms: number) => Math.floor(ms / 1000);
    socket.deliver(
      [
        dm('before pincer ran', { t: seconds(alive.aliveAt - 3600_000) }),
        dm('while pincer was down', { t: seconds(alive.aliveAt + 3600_000) }),
      ],
      'append',
    );
    await waitFor('one', () => sink.messages.length === 1);
    await sleep(50);
    assert.deepEqual(
      sink.messages.map((m) => m.text),
      ['while pincer was down'],
    );
  });
});

const sha256 = (data: Buffer) => createHash('sha256').update(data).digest('hex');

// The adapter with its default media path: baileys' downloadMediaMessage fetching from an HTTPS media host and
// decrypting. Node 20 can only be taught a CA at start, so this runs in a child process with NODE_EXTRA_CA_CERTS.
const CHILD = `
const { createHash } = await import('node:crypto');
const { pino } = await import('pino');
const { WhatsAppChannel } = await import(process.env.WA_SRC);
const { FakeWaSocket, content, dm } = await import(process.env.WA_FIX);
const contents = JSON.parse(process.env.WA_MEDIA);
const socket = new FakeWaSocket();
const got = [];
const sink = {
  maxMediaBytes: 1000000,
  isJoined: () => true,
  typing: () => {},
  seen: () => false,
  async ingest(m) {
    const files = (m.attachments ?? []).map((a) => ({ kind: a.kind, mime: a.mime, bytes: a.data.length, sha: createHash('sha256').update(a.data).digest('hex') }));
    got.push({ text: m.text, files });
    return { seq: got.length, duplicate: false, engaged: false };
  },
};
const channel = new WhatsAppChannel({ authDir: process.env.WA_AUTH, assistantName: 'Andy', log: pino({ level: 'silent' }), socketFactory: async () => { setImmediate(() => socket.open()); return socket; } });
await channel.start(sink);
socket.deliver(contents.map((c) => dm('', { message: content(c) })));
const deadline = Date.now() + 30000;
while (got.length < contents.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
await channel.stop();
process.stdout.write(JSON.stringify(got));
`;

describe("media through baileys' own download and decryption", () => {
  test('a photo is fetched and decrypted whole; a file past the limit and an undecryptable one still bring their message', async () => {
    const photo = randomBytes(300_000);
    const big = randomBytes(3_000_000);
    const encPhoto = await encryptedStream(photo, 'image');
    const encBig = await encryptedStream(big, 'document');
    const host = await startMediaHost({
      '/v/photo.enc': readFileSync(encPhoto.encFilePath),
      '/v/big.enc': readFileSync(encBig.encFilePath),
    });
    const authDir = mkdtempSync(join(tmpdir(), 'pincer-wa-child-'));
    try {
      const media = (path: string, key: Buffer) => ({ url: `${host.origin}${path}`, directPath: path, mediaKey: key.toString('base64') });
      const contents = [
        {
          imageMessage: {
            ...media('/v/photo.enc', encPhoto.mediaKey),
            mimetype: 'image/jpeg',
            caption: 'the real thing',
            fileLength: photo.length,
          },
        },
        // Declares less than it is: reading stops at the limit.
        {
          documentMessage: { ...media('/v/big.enc', encBig.mediaKey), mimetype: 'application/pdf', fileName: 'big.pdf', fileLength: 1_000 },
        },
        // The wrong key: decryption fails.
        { audioMessage: { ...media('/v/photo.enc', randomBytes(32)), mimetype: 'audio/ogg; codecs=opus', ptt: true, fileLength: 100 } },
      ];
      const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', CHILD], {
        env: {
          ...process.env,
          NODE_EXTRA_CA_CERTS: host.caPath,
          WA_SRC: pathToFileURL(join(import.meta.dirname, '../src/channels/whatsapp.ts')).href,
          WA_FIX: pathToFileURL(join(import.meta.dirname, 'helpers/whatsapp-fixtures.ts')).href,
          WA_MEDIA: JSON.stringify(contents),
          WA_AUTH: authDir,
        },
        timeout: 60_000,
      });
      const got = JSON.parse(stdout) as Array<{ text: string; files: Array<{ kind: string; mime: string; bytes: number; sha: string }> }>;
      assert.deepEqual(got[0], {
        text: 'the real thing',
        files: [{ kind: 'image', mime: 'image/jpeg', bytes: photo.length, sha: sha256(photo) }],
      });
      assert.deepEqual(got[1], { text: '[document: big.pdf]', files: [] });
      assert.deepEqual(got[2], { text: '[voice note]', files: [] });
      assert.deepEqual(host.requests, ['/v/photo.enc', '/v/big.enc', '/v/photo.enc']);
    } finally {
      await host.close();
      rmSync(authDir, { recursive: true, force: true });
      for (const f of [encPhoto.encFilePath, encBig.encFilePath]) rmSync(f, { force: true });
    }
  });
});

/** A stand-in for the login socket, with baileys' real event buffer. */
class FakeLoginSocket implements LoginSocket {
  readonly ev = makeEventBuffer(silent);
  user: LoginSocket['user'];
  readonly pairingRequests: string[] = [];
  saved = 0;
  ended = false;
  constructor(readonly registered: boolean) {}
  async requestPairingCode(phone: string): Promise<string> {
    this.pairingRequests.push(phone);
    return 'ABCD1234';
  }
  async saveCreds(): Promise<void> {
    this.saved++;
  }
  async end(): Promise<void> {
    this.ended = true;
  }
  update(u: WaConnectionUpdate): void {
    this.ev.emit('connection.update', u as Partial<Baileys.ConnectionState>);
  }
}

describe('pincer whatsapp login', () => {
  let home: string;
  before(() => {
    home = mkdtempSync(join(tmpdir(), 'pincer-wa-login-'));
  });
  after(() => rmSync(home, { recursive: true, force: true }));

  async function login(
    script: (s: FakeLoginSocket, n: number) => Promise<void>,
    pairingCode?: string,
  ): Promise<{ code: number; out: string; sockets: FakeLoginSocket[]; dirs: string[] }> {
    let out = '';
    const sockets: FakeLoginSocket[] = [];
    const dirs: string[] = [];
    const code = await runWhatsAppLogin({
      home,
      ...(pairingCode ? { pairingCode } : {}),
      out: (t) => {
        out += t;
      },
      retryDelayMs: 10,
      openSocket: async (dir) => {
        dirs.push(dir);
        const s = new FakeLoginSocket(sockets.length > 0);
        sockets.push(s);
        setImmediate(() => void script(s, sockets.length));
        return s;
      },
    });
    return { code, out, sockets, dirs };
  }

  test('QR code in the terminal; once linked it saves the login, names the self-chat and exits 0', async () => {
    const { code, out, sockets, dirs } = await login(async (s) => {
      s.update({ connection: 'connecting', qr: '2@Vx1hXkq3bP0aLm9,Q2hhbGxlbmdl,c2VjcmV0,YWR2' });
      await sleep(100);
      s.user = { id: SELF.deviceId, lid: SELF.deviceLid, name: SELF.name };
      s.update({ connection: 'open' });
    });
    assert.equal(code, 0);
    assert.match(out, /Linked devices/);
    assert.match(out, /[█▀▄]{5,}/, 'a QR code drawn with block characters');
    assert.match(out, new RegExp(`PINCER_MAIN_CHAT=wa:${SELF.jid}`));
    assert.equal(sockets[0]?.saved, 1);
    assert.equal(sockets[0]?.ended, true);
    assert.equal(dirs[0], join(home, 'whatsapp-auth'));
    assert.equal(statSync(join(home, 'whatsapp-auth')).mode & 0o777, 0o700);
  });

  test('pairing code: asked once for the number, shown grouped; the restart WhatsApp requests after linking is followed', async () => {
    const { code, out, sockets } = await login(async (s, n) => {
      if (n === 1) {
        s.update({ qr: 'first' });
        s.update({ qr: 'second' });
        await sleep(50);
        s.update({
          connection: 'close',
          lastDisconnect: { error: Object.assign(new Error('restart required'), { output: { statusCode: 515 } }) },
        });
      } else {
        s.user = { id: SELF.deviceId, name: SELF.name };
        s.update({ connection: 'open' });
      }
    }, '+1 555 000 1111');
    assert.equal(code, 0);
    assert.deepEqual(sockets[0]?.pairingRequests, ['15550001111']);
    assert.equal(sockets[0]?.saved, 1, 'the new link was written before reconnecting');
    assert.match(out, /ABCD-1234/);
    assert.doesNotMatch(out, /█/, 'no QR code in pairing mode');
    assert.equal(sockets.length, 2);
  });

  test('a QR code left unscanned ends with a clear message', async () => {
    const { code, out } = await login(async (s) => {
      s.update({ qr: 'x' });
      await sleep(20);
      s.update({
        connection: 'close',
        lastDisconnect: { error: Object.assign(new Error('QR refs attempts ended'), { output: { statusCode: 408 } }) },
      });
    });
    assert.equal(code, 1);
    assert.match(out, /not completed in time/);
  });
});

const skip = await sandboxUnavailable();

describe('WhatsApp into the real pipeline: ingest, sandboxed agent, fake model, outbox worker, typing, adapter', { skip }, () => {
  let h: Harness;
  let channel: WhatsAppChannel | undefined;
  let socket: FakeWaSocket;
  const downloads: string[] = [];
  const PHOTO = Buffer.from('\x89PNG\r\n\x1a\n fake photo bytes');
  let home: string;

  before(async () => {
    home = mkdtempSync(join(tmpdir(), 'pincer-wa-'));
    socket = new FakeWaSocket();
    channel = new WhatsAppChannel({
      authDir: join(home, 'whatsapp-auth'),
      assistantName: 'Andy',
      log: silent,
      rateLimitWaitMs: 300,
      typingRefreshMs: 200,
      socketFactory: async () => {
        setImmediate(() => socket.open());
        return socket;
      },
      downloadMedia: async (m) => {
        downloads.push(m.key.id ?? '');
        return PHOTO;
      },
    });
    // The adapter is one of pincer's channels: the real ingest, outbox worker and typing calls reach it.
    h = await startHarness({
      home,
      channels: [channel],
      env: { PINCER_MAIN_CHAT: SELF_CHAT },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side' };
        const text = lastUserText(req);
        if (text.includes('long answer')) return { text: Array.from({ length: 900 }, (_, i) => `line${i}`).join(' ') };
        const inbox = text.match(/inbox\/[^\]\s]+/);
        if (inbox) return { text: `I see ${inbox[0]}` };
        if (text.includes('slowly')) return { text: `echo: ${text.slice(-40)}`, delayMs: 1_500 };
        return { text: `echo: ${text.slice(-40)}` };
      },
    });
  });
  after(async () => {
    await h?.stop();
    rmSync(home, { recursive: true, force: true });
  });

  const sentCount = (count: number) => waitFor(`${count} sent`, () => socket.sent.length >= count, 90_000);
  const textOf = (sent: { content: unknown } | undefined): string => {
    const c = sent?.content;
    return typeof c === 'object' && c !== null && 'text' in c && typeof c.text === 'string' ? c.text : '';
  };
  const turnsFor = (needle: string) => h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes(needle)).length;

  test('the self-chat is the main group: the owner asks, typing shows while the agent works, the answer quotes the question', async () => {
    const question = selfChat('tell me slowly: what is the capital of France?');
    socket.deliver([question]);
    await sentCount(1);
    const reply = socket.sent[0];
    assert.equal(reply?.jid, SELF.jid);
    assert.match(textOf(reply), /^Andy: echo: .*capital of France\?/);
    assert.equal(reply?.quoted?.key.id, question.key.id);
    assert.ok(h.pincer.store.messages.has(SELF_CHAT, reply?.id ?? ''), 'the worker stored the reply under the id the adapter returned');
    // Typing: on before the reply (renewed during the 1.5 s model delay), paused after it.
    await waitFor('paused', () => socket.presence.some((p) => p.type === 'paused'));
    const composing = socket.presence.filter((p) => p.type === 'composing' && p.jid === SELF.jid);
    assert.ok(composing.length >= 3, `composing renewed while the agent worked: ${composing.length}`);
    assert.ok((composing[0]?.at ?? Infinity) < (reply?.at ?? 0));
    const paused = socket.presence.find((p) => p.type === 'paused');
    assert.equal(paused?.jid, SELF.jid);
    // The reply coming back (own event, then from the server) starts no turn.
    const before = h.fake.requests.length;
    const echo: WAMessage = { ...selfChat('Andy: echo'), key: { remoteJid: SELF.jid, fromMe: true, id: reply?.id ?? '' } };
    socket.deliver([echo], 'append');
    socket.deliver([echo], 'notify');
    await sleep(1_500);
    assert.equal(h.fake.requests.length, before);
  });

  test('a group: seen, joined by the owner; only a mention engages; a redelivery is no second turn', async () => {
    socket.deliver([groupMessage('hello everyone')]);
    await waitFor('group seen', () => h.pincer.store.chats.get(GROUP_CHAT));
    assert.equal(h.pincer.store.chats.get(GROUP_CHAT)?.name, GROUP.subject);
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: GROUP_CHAT, folder: 'family' });
    const sentBefore = socket.sent.length;
    socket.deliver([groupMessage('just chatting, no mention')]);
    const mention = groupMessage(`@${SELF.lidUser} what did I just say?`, { mentions: [SELF.lid] });
    socket.deliver([mention]);
    await sentCount(sentBefore + 1);
    const reply = socket.sent.at(-1);
    assert.equal(reply?.jid, GROUP.jid);
    assert.match(textOf(reply), /^Andy: echo: .*did I just say\?/);
    const turn = h.fake.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('what did I just say')).at(-1);
    assert.ok(turn && lastUserText(turn).includes('just chatting, no mention'), 'the unmentioned message is context');
    assert.match(lastUserText(turn), /sender="Bob"[^>]*>@Andy what did I just say\?/, 'the agent reads its own name for the mention');
    assert.equal(turnsFor('just chatting'), 1, 'the unmentioned message started no turn of its own');
    socket.deliver([mention]);
    await sleep(1_500);
    assert.equal(turnsFor('what did I just say'), 1, 'redelivery: no second turn');
    assert.equal(socket.sent.length, sentBefore + 1);
    const row = h.pincer.store.db
      .prepare('SELECT seq FROM messages WHERE chat_id = ? AND platform_id = ?')
      .get(GROUP_CHAT, mention.key.id) as { seq: number } | undefined;
    const stages = h.pincer.store.events.trace(row?.seq ?? -1).map((e) => e.stage);
    assert.ok(stages.includes('duplicate'), stages.join(','));
  });

  test('a photo in the joined group lands in its inbox/ and is named in the prompt', async () => {
    const sentBefore = socket.sent.length;
    const photo = groupMessage('', { message: imageContent(`@${SELF.lidUser} what is in this photo?`, PHOTO.length) });
    // A mention in a caption lives in the image's contextInfo.
    const image = (photo.message as proto.IMessage).imageMessage as proto.Message.IImageMessage;
    image.contextInfo = { mentionedJid: [SELF.lid] };
    socket.deliver([photo]);
    await sentCount(sentBefore + 1);
    assert.deepEqual(downloads, [photo.key.id]);
    const inbox = join(h.home, 'groups', 'family', 'inbox');
    const files = readdirSync(inbox);
    assert.equal(files.length, 1);
    assert.ok(files[0]?.endsWith('image.jpg'));
    assert.deepEqual(readFileSync(join(inbox, files[0] ?? '')), PHOTO);
    assert.match(textOf(socket.sent.at(-1)), new RegExp(`^Andy: I see inbox/${files[0]}`));
  });

  test('a long reply goes out in parts within the limit, in order, after a rate limit is honoured', async () => {
    const sentBefore = socket.sent.length;
    socket.failures.push(Object.assign(new Error('rate-overlimit'), { data: 429 }));
    socket.deliver([selfChat('please give a long answer')]);
    await waitFor('the whole reply', () => textOf(socket.sent.at(-1)).endsWith('line899'), 90_000);
    const parts = socket.sent.slice(sentBefore).map(textOf);
    assert.ok(parts.length >= 2, `${parts.length} parts`);
    for (const p of parts) {
      assert.ok(p.length <= 4096, `part of ${p.length}`);
      assert.ok(p.startsWith('Andy: '));
    }
    const order = [...parts.join(' ').matchAll(/line(\d+)/g)].map((m) => Number(m[1]));
    assert.deepEqual(
      order,
      Array.from({ length: 900 }, (_, i) => i),
    );
    const retries = h.pincer.store.db
      .prepare(`SELECT detail FROM events WHERE chat_id = ? AND stage = 'delivery_retry' AND detail LIKE '%WhatsApp rate limit%'`)
      .all(SELF_CHAT);
    assert.equal(retries.length, 1, 'the rate limit was met once and retried');
    const waited = (socket.sent[sentBefore]?.at ?? 0) - (socket.failedAt.at(-1) ?? Number.POSITIVE_INFINITY);
    assert.ok(waited >= 290, `waited ${waited} ms after the rate limit`);
    assert.ok(existsSync(join(h.home, 'whatsapp-auth', 'pincer-alive.json')));
  });
});

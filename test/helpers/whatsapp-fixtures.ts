// WhatsApp at baileys' socket boundary: a real-wire fake is impossible (WhatsApp signs the handshake), so the
// tests drive the adapter through baileys' own event emitter with messages shaped as baileys delivers them:
// keys as its decodeMessageNode builds them, contents encoded and decoded with its protobufs (uint64 → Long).
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpsServer } from 'node:https';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BaileysEventMap,
  type BinaryNode,
  type ConnectionState,
  decodeBinaryNode,
  encodeBinaryNode,
  makeEventBuffer,
  makeWASocket,
  proto,
  useMultiFileAuthState,
  type WAMessage,
} from 'baileys';
import { pino } from 'pino';
import type { MediaSource, WaMessage, WaOutgoing, WhatsAppSocket } from '../../src/channels/whatsapp.js';

/** Our account: the linked device (device 7) of the owner's number. */
export const SELF = {
  number: '15550001111',
  lidUser: '987650001111',
  deviceId: '15550001111:7@s.whatsapp.net',
  deviceLid: '987650001111:7@lid',
  jid: '15550001111@s.whatsapp.net',
  lid: '987650001111@lid',
  name: 'Owner',
};
export const SELF_CHAT = `wa:${SELF.jid}`;

export const ALICE = { number: '4915112345678', jid: '4915112345678@s.whatsapp.net', lid: '210987654321098@lid', name: 'Alice' };
export const BOB = { number: '4917612345678', jid: '4917612345678@s.whatsapp.net', lid: '123456789012345@lid', name: 'Bob' };
export const GROUP = { jid: '120363012345678901@g.us', subject: 'Family Chat' };

/** A message id as WhatsApp phones make them. */
export const newId = (): string => `3EB0${randomBytes(8).toString('hex').toUpperCase()}`;
const nowSeconds = (): number => Math.floor(Date.now() / 1000);

/** Message content as baileys hands it over: decoded from the wire protobuf. */
export function content(fields: proto.IMessage): proto.IMessage {
  return proto.Message.decode(proto.Message.encode(proto.Message.fromObject(fields)).finish());
}

interface Common {
  id?: string;
  /** Seconds since the epoch (WhatsApp's unit). */
  t?: number;
  pushName?: string;
}

/** A DM from a contact, addressed by phone number (the LID as the alternative id). */
export function dm(text: string, o: Common & { from?: typeof ALICE; message?: proto.IMessage } = {}): WAMessage {
  const from = o.from ?? ALICE;
  return {
    key: { remoteJid: from.jid, remoteJidAlt: from.lid, fromMe: false, id: o.id ?? newId(), addressingMode: 'pn' },
    messageTimestamp: o.t ?? nowSeconds(),
    pushName: o.pushName ?? from.name,
    broadcast: false,
    message: o.message ?? content({ conversation: text }),
  };
}

/** A DM addressed by LID (WhatsApp's newer addressing): the phone number comes as remoteJidAlt. */
export function lidDm(text: string, o: Common & { from?: typeof ALICE } = {}): WAMessage {
  const from = o.from ?? ALICE;
  return {
    key: { remoteJid: from.lid, remoteJidAlt: from.jid, fromMe: false, id: o.id ?? newId(), addressingMode: 'lid' },
    messageTimestamp: o.t ?? nowSeconds(),
    pushName: o.pushName ?? from.name,
    broadcast: false,
    message: content({ conversation: text }),
  };
}

/** A group message whose sender is an @lid participant (phone number as participantAlt). */
export function groupMessage(
  text: string,
  o: Common & {
    from?: typeof BOB;
    mentions?: string[];
    quoted?: { id: string; participant: string; text: string };
    message?: proto.IMessage;
  } = {},
): WAMessage {
  const from = o.from ?? BOB;
  const contextInfo: proto.IContextInfo = {};
  if (o.mentions) contextInfo.mentionedJid = o.mentions;
  if (o.quoted) {
    contextInfo.stanzaId = o.quoted.id;
    contextInfo.participant = o.quoted.participant;
    contextInfo.quotedMessage = { conversation: o.quoted.text };
  }
  const hasContext = o.mentions !== undefined || o.quoted !== undefined;
  return {
    key: {
      remoteJid: GROUP.jid,
      fromMe: false,
      id: o.id ?? newId(),
      participant: from.lid,
      participantAlt: from.jid,
      addressingMode: 'lid',
    },
    messageTimestamp: o.t ?? nowSeconds(),
    pushName: o.pushName ?? from.name,
    broadcast: false,
    message: o.message ?? content(hasContext ? { extendedTextMessage: { text, contextInfo } } : { conversation: text }),
  };
}

/** What the owner types into their own chat ("Message yourself") on the phone. */
export function selfChat(text: string, o: Common & { viaLid?: boolean } = {}): WAMessage {
  return {
    key: { remoteJid: o.viaLid ? SELF.lid : SELF.jid, fromMe: true, id: o.id ?? newId(), addressingMode: o.viaLid ? 'lid' : 'pn' },
    messageTimestamp: o.t ?? nowSeconds(),
    pushName: SELF.name,
    broadcast: false,
    message: content({ conversation: text }),
  };
}

const MEDIA = {
  mediaKey: Buffer.alloc(32, 7),
  url: 'https://mmg.whatsapp.net/v/t62.7118-24/fixture.enc',
  directPath: '/v/t62.7118-24/fixture.enc',
};

export const imageContent = (caption: string, bytes: number): proto.IMessage =>
  content({ imageMessage: { ...MEDIA, caption, mimetype: 'image/jpeg', fileLength: bytes, width: 640, height: 480 } });

export const voiceNoteContent = (bytes: number): proto.IMessage =>
  content({ audioMessage: { ...MEDIA, mimetype: 'audio/ogg; codecs=opus', fileLength: bytes, seconds: 4, ptt: true } });

export const documentContent = (fileName: string, bytes: number): proto.IMessage =>
  content({ documentMessage: { ...MEDIA, fileName, mimetype: 'application/pdf', fileLength: bytes } });

export const ephemeral = (inner: proto.IMessage): proto.IMessage =>
  content({ ephemeralMessage: { message: inner }, messageContextInfo: { deviceListMetadataVersion: 2 } });

export const viewOnce = (inner: proto.IMessage): proto.IMessage => content({ viewOnceMessageV2: { message: inner } });

export const reaction = (to: WAMessage, emoji: string): proto.IMessage =>
  content({ reactionMessage: { key: to.key, text: emoji, senderTimestampMs: Date.now() } });

/** A status update from a contact: it comes through messages.upsert too. */
export function statusUpdate(text: string): WAMessage {
  return {
    key: { remoteJid: 'status@broadcast', fromMe: false, id: newId(), participant: ALICE.jid },
    messageTimestamp: nowSeconds(),
    pushName: ALICE.name,
    broadcast: true,
    message: content({ extendedTextMessage: { text } }),
  };
}

/** baileys' close error: a Boom whose output.statusCode is the DisconnectReason. */
export function closeError(statusCode: number, message = 'Connection Closed'): Error {
  return Object.assign(new Error(message), { isBoom: true, output: { statusCode, payload: { statusCode, message } } });
}

export interface SentCall {
  jid: string;
  content: WaOutgoing;
  quoted?: WaMessage;
  id: string;
  at: number;
}

export type FakeEv = ReturnType<typeof makeEventBuffer>;

/** A stand-in for baileys' socket: baileys' real event buffer as `ev`, the calls recorded. */
export class FakeWaSocket implements WhatsAppSocket {
  readonly ev: FakeEv = makeEventBuffer(pino({ level: 'silent' }));
  user: WhatsAppSocket['user'] = { id: SELF.deviceId, lid: SELF.deviceLid, name: SELF.name };
  readonly sent: SentCall[] = [];
  readonly presence: Array<{ type: string; jid: string | undefined; at: number }> = [];
  /** The jids presenceSubscribe was called for, in order. */
  readonly presenceSubscriptions: string[] = [];
  ended = false;
  /** Thrown by the next sendMessage calls, one each. */
  readonly failures: Error[] = [];
  readonly failedAt: number[] = [];
  groups = new Map([[GROUP.jid, GROUP.subject]]);

  async sendMessage(jid: string, c: WaOutgoing, options?: { quoted?: WaMessage }): Promise<WAMessage> {
    const failure = this.failures.shift();
    if (failure) {
      this.failedAt.push(Date.now());
      throw failure;
    }
    const id = newId();
    this.sent.push({ jid, content: c, id, at: Date.now(), ...(options?.quoted ? { quoted: options.quoted } : {}) });
    const message = 'text' in c ? content({ conversation: c.text }) : content({ documentMessage: { fileName: 'x' } });
    return { key: { remoteJid: jid, fromMe: true, id }, message, messageTimestamp: nowSeconds() };
  }

  async sendPresenceUpdate(type: 'composing' | 'paused', jid?: string): Promise<void> {
    this.presence.push({ type, jid, at: Date.now() });
  }

  async presenceSubscribe(jid: string): Promise<void> {
    this.presenceSubscriptions.push(jid);
  }

  async groupMetadata(jid: string): Promise<{ id: string; subject: string }> {
    const subject = this.groups.get(jid);
    if (!subject) throw closeError(404, 'item-not-found');
    return { id: jid, subject };
  }

  async end(): Promise<void> {
    this.ended = true;
  }

  readonly savedAt: number[] = [];
  async saveCreds(): Promise<void> {
    await new Promise((r) => setTimeout(r, 20));
    this.savedAt.push(Date.now());
  }

  open(): void {
    this.ev.emit('connection.update', { connection: 'open' } satisfies Partial<ConnectionState>);
  }

  close(statusCode: number): void {
    this.ev.emit('connection.update', { connection: 'close', lastDisconnect: { error: closeError(statusCode), date: new Date() } });
  }

  deliver(messages: WAMessage[], type: 'notify' | 'append' = 'notify'): void {
    this.ev.emit('messages.upsert', { messages, type });
  }
}

/**
 * A chat state as WhatsApp's server sends it (`<chatstate from=… participant=…><composing/></chatstate>`; a
 * group's names the participant; `media="audio"` is recording a voice note).
 */
export function chatstate(from: string, state: 'composing' | 'paused' | 'recording', participant?: string): BinaryNode {
  const child: BinaryNode = state === 'recording' ? { tag: 'composing', attrs: { media: 'audio' } } : { tag: state, attrs: {} };
  return { tag: 'chatstate', attrs: { from, ...(participant ? { participant } : {}) }, content: [child] };
}

/**
 * What baileys itself makes of these stanzas: each is encoded and decoded by its binary codec (what its noise
 * layer hands on after decryption, which cannot be faked: WhatsApp signs the handshake) and given to a real
 * baileys socket's stanza listeners, whose 'presence.update' events are returned. The socket points at a closed
 * loopback port, so it never reaches WhatsApp.
 */
export async function presenceUpdatesFromBaileys(stanzas: BinaryNode[]): Promise<Array<BaileysEventMap['presence.update']>> {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-wa-presence-'));
  const closed = createTcpServer();
  await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const { port } = closed.address() as AddressInfo;
  await new Promise<void>((resolve) => closed.close(() => resolve()));
  const { state } = await useMultiFileAuthState(dir);
  const socket = makeWASocket({ auth: state, logger: pino({ level: 'silent' }), waWebSocketUrl: `ws://127.0.0.1:${port}/ws` });
  const updates: Array<BaileysEventMap['presence.update']> = [];
  socket.ev.on('presence.update', (u) => updates.push(u));
  try {
    for (const stanza of stanzas) {
      const frame = await decodeBinaryNode(encodeBinaryNode(stanza));
      socket.ws.emit(`CB:${frame.tag}`, frame);
    }
    await new Promise((r) => setImmediate(r));
    return updates;
  } finally {
    await socket.end(undefined);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** A stream of `chunks` chunks of `size` bytes that counts how many were read. */
export function countingStream(chunks: number, size: number): MediaSource & { pulled(): number } {
  let pulled = 0;
  async function* generate() {
    for (let i = 0; i < chunks; i++) {
      pulled++;
      yield Buffer.alloc(size, i % 256);
    }
  }
  return Object.assign(generate(), { pulled: () => pulled });
}

export interface MediaHost {
  /** `https://127.0.0.1:<port>`: media URLs in fixtures point here. */
  origin: string;
  /** The throwaway CA that signed the host's certificate (for NODE_EXTRA_CA_CERTS). */
  caPath: string;
  requests: string[];
  close(): Promise<void>;
}

/** A loopback HTTPS stand-in for WhatsApp's media host, serving encrypted files by path, under a CA made here. */
export async function startMediaHost(files: Record<string, Buffer>): Promise<MediaHost> {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-wa-media-'));
  const at = (name: string) => join(dir, name);
  const openssl = (...args: string[]) => execFileSync('openssl', args, { stdio: 'pipe' });
  openssl(
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    at('ca.key'),
    '-subj',
    '/CN=wa media test CA',
    '-days',
    '1',
    '-out',
    at('ca.pem'),
  );
  openssl(
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    at('host.key'),
    '-subj',
    '/CN=127.0.0.1',
    '-out',
    at('host.csr'),
  );
  writeFileSync(at('host.ext'), 'basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\nsubjectAltName=IP:127.0.0.1\n');
  openssl(
    'x509',
    '-req',
    '-in',
    at('host.csr'),
    '-CA',
    at('ca.pem'),
    '-CAkey',
    at('ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    at('host.ext'),
    '-out',
    at('host.pem'),
  );
  const requests: string[] = [];
  const server = createHttpsServer({ key: readFileSync(at('host.key')), cert: readFileSync(at('host.pem')) }, (req, res) => {
    requests.push(req.url ?? '');
    const body = files[req.url ?? ''];
    if (!body) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': body.length }).end(body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `https://127.0.0.1:${port}`,
    caPath: at('ca.pem'),
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(dir, { recursive: true, force: true });
          resolve();
        });
      }),
  };
}

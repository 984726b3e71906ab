// WhatsApp through baileys (unofficial WhatsApp Web protocol), linked as a device of the owner's own number.
// baileys is an optional dependency (it pulls in GPL-3.0 libsignal): it is loaded only when WhatsApp is enabled,
// and its types are described here by the small subset pincer uses, so pincer builds and runs without it.
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { lastRendered, sendParts } from './format/parts.js';
import { whatsappParts } from './format/whatsapp.js';
import {
  type Channel,
  type ConnectionState,
  type InboundAttachment,
  type InboundMessage,
  type InboundSink,
  type Outbound,
  RateLimitedError,
} from './types.js';

export const WHATSAPP_PREFIX = 'wa:';
const TEXT_LIMIT = 4096;
const RECENT_INBOUND = 500;
const REMEMBERED_SENT = 2000;
const REMEMBERED_LIDS = 5000;
const HISTORY_MAX_AGE_MS = 24 * 3600_000;
const HISTORY_GRACE_MS = 60_000;
const ALIVE_EVERY_MS = 60_000;
const ALIVE_FILE = 'pincer-alive.json';
const GROUP_NAME_TIMEOUT_MS = 5_000;

// ---- The subset of baileys pincer uses (baileys' own types fit these; the tests check that they do) ----

/** `Long` from protobufjs, or a plain number: uint64 fields such as `fileLength` decode as either. */
export type WaLong = number | { toNumber(): number } | null | undefined;

export interface WaKey {
  remoteJid?: string | null;
  /** For a DM: the other id form (PN when addressed by LID, LID when by PN). */
  remoteJidAlt?: string | null;
  fromMe?: boolean | null;
  id?: string | null;
  participant?: string | null;
  participantAlt?: string | null;
}

export interface WaContextInfo {
  mentionedJid?: string[] | null;
  stanzaId?: string | null;
  participant?: string | null;
  quotedMessage?: WaContent | null;
}

interface WaMedia {
  mimetype?: string | null;
  fileLength?: WaLong;
  caption?: string | null;
  contextInfo?: WaContextInfo | null;
}

interface WaWrapper {
  message?: WaContent | null;
}

export interface WaContent {
  conversation?: string | null;
  extendedTextMessage?: { text?: string | null; contextInfo?: WaContextInfo | null } | null;
  imageMessage?: WaMedia | null;
  videoMessage?: WaMedia | null;
  audioMessage?: (WaMedia & { ptt?: boolean | null }) | null;
  documentMessage?: (WaMedia & { fileName?: string | null; title?: string | null }) | null;
  stickerMessage?: WaMedia | null;
  locationMessage?: { degreesLatitude?: number | null; degreesLongitude?: number | null; name?: string | null } | null;
  contactMessage?: { displayName?: string | null } | null;
  reactionMessage?: { text?: string | null } | null;
  protocolMessage?: object | null;
  ephemeralMessage?: WaWrapper | null;
  viewOnceMessage?: WaWrapper | null;
  viewOnceMessageV2?: WaWrapper | null;
  viewOnceMessageV2Extension?: WaWrapper | null;
  documentWithCaptionMessage?: WaWrapper | null;
}

export interface WaMessage {
  key: WaKey;
  message?: WaContent | null;
  messageTimestamp?: WaLong;
  pushName?: string | null;
}

export interface WaConnectionUpdate {
  connection?: 'open' | 'connecting' | 'close';
  lastDisconnect?: { error: Error | undefined; date?: Date };
  qr?: string;
}

export interface WaUpsert {
  messages: WaMessage[];
  /** 'notify': arrived live; 'append': anything else (our own sends, history, and what arrived while offline). */
  type: string;
}

/** baileys' 'presence.update': a chat (`id`) and what each participant in it is doing. */
export interface WaPresenceUpdate {
  id: string;
  presences: Record<string, { lastKnownPresence: string }>;
}

export interface WaEvents {
  on(event: 'connection.update', listener: (update: WaConnectionUpdate) => void): void;
  on(event: 'messages.upsert', listener: (upsert: WaUpsert) => void): void;
  on(event: 'groups.update', listener: (groups: Array<{ id?: string; subject?: string }>) => void): void;
  on(event: 'lid-mapping.update', listener: (mapping: { lid: string; pn: string }) => void): void;
  on(event: 'presence.update', listener: (update: WaPresenceUpdate) => void): void;
  removeAllListeners(event: 'connection.update' | 'messages.upsert' | 'groups.update' | 'lid-mapping.update' | 'presence.update'): void;
}

export type WaOutgoing =
  | { text: string }
  | { image: Buffer; caption?: string; mimetype?: string }
  | { document: Buffer; fileName: string; mimetype: string; caption?: string };

/** What the adapter needs of a baileys socket (`makeWASocket`'s result fits it). */
export interface WhatsAppSocket {
  ev: WaEvents;
  /** Our own account once known: `id` is the phone-number JID with a device suffix, `lid` the LID form. */
  user?: { id: string; lid?: string; name?: string } | undefined;
  sendMessage(jid: string, content: WaOutgoing, options?: { quoted?: WaMessage }): Promise<WaMessage | undefined>;
  sendPresenceUpdate(type: 'composing' | 'paused', toJid?: string): Promise<void>;
  /** Asks WhatsApp for this chat's presence updates (typing…), which it sends only after this. */
  presenceSubscribe(toJid: string): Promise<void>;
  groupMetadata(jid: string): Promise<{ id: string; subject: string }>;
  end(error: Error | undefined): void | Promise<void>;
  /** Writes the login's latest keys (the real socket from openWhatsAppSocket has it). */
  saveCreds?(): Promise<void>;
}

/** A readable stream (baileys gives a Transform) or bytes already in hand. */
export type MediaSource = AsyncIterable<Uint8Array> | Buffer;

interface BaileysAuthState {
  creds: { registered?: boolean; me?: { id: string; lid?: string; name?: string } | null };
  keys: object;
}

/** The functions pincer calls on the baileys module. */
export interface BaileysModule {
  makeWASocket(config: {
    auth: BaileysAuthState;
    // baileys wants a pino-like logger; a pino child is one.
    logger?: object;
    browser?: [string, string, string];
    markOnlineOnConnect?: boolean;
    syncFullHistory?: boolean;
    shouldSyncHistoryMessage?(notification: object): boolean;
    getMessage?(key: WaKey): Promise<WaContent | undefined>;
  }): WhatsAppSocket & {
    ev: WaEvents & { on(event: 'creds.update', listener: () => void): void };
    requestPairingCode(phoneNumber: string): Promise<string>;
  };
  useMultiFileAuthState(folder: string): Promise<{ state: BaileysAuthState; saveCreds(): Promise<void> }>;
  makeCacheableSignalKeyStore(keys: BaileysAuthState['keys'], logger: Logger): BaileysAuthState['keys'];
  downloadMediaMessage(message: WaMessage, type: 'stream', options: Record<string, never>): Promise<AsyncIterable<Uint8Array>>;
  DisconnectReason: { loggedOut: number; connectionReplaced: number; restartRequired: number };
  Browsers: { appropriate(browser: string): [string, string, string] };
}

/** A setup problem no retry can fix (baileys missing, not linked, logged out): `start()` rejects with it. */
export class WhatsAppSetupError extends Error {}

// baileys' DisconnectReason values, for code that runs before (or without) the module being loaded.
const LOGGED_OUT = 401;
const CONNECTION_REPLACED = 440;
const RESTART_REQUIRED = 515;

/** Loads the optional dependency, or says clearly how to get it. `name` exists for the test of the missing case. */
export async function loadBaileys(name = 'baileys'): Promise<BaileysModule> {
  const specifier: string = name;
  let mod: unknown;
  try {
    mod = await import(specifier);
  } catch (err) {
    const why = err instanceof Error ? err.message : String(err);
    throw new WhatsAppSetupError(
      `WhatsApp needs baileys, an optional dependency that could not be loaded (${why}). ` +
        'Install it with `npm install baileys@7.0.0-rc14` (see docs/channels/whatsapp.md), or unset WHATSAPP_ENABLED.',
    );
  }
  if (!isBaileysModule(mod)) throw new WhatsAppSetupError(`${name} does not look like baileys 7 (makeWASocket and friends are missing)`);
  return mod;
}

function isBaileysModule(mod: unknown): mod is BaileysModule {
  if (typeof mod !== 'object' || mod === null) return false;
  const m = mod as Record<string, unknown>;
  const functions = ['makeWASocket', 'useMultiFileAuthState', 'makeCacheableSignalKeyStore', 'downloadMediaMessage'];
  return functions.every((k) => typeof m[k] === 'function') && typeof m.DisconnectReason === 'object' && typeof m.Browsers === 'object';
}

/** The folder holding the login (0700: it is the key to the owner's WhatsApp account). */
export async function prepareAuthDir(authDir: string): Promise<void> {
  await mkdir(authDir, { recursive: true, mode: 0o700 });
  await chmod(authDir, 0o700);
}

/** baileys logs a lot at info; pincer shows its warnings and errors unless pincer itself is quieter. */
export function baileysLogger(log: Logger): Logger {
  const warn = 40;
  return log.child({ lib: 'baileys' }, { level: log.levelVal > warn ? log.level : 'warn' });
}

/** A real baileys socket on the login in `authDir`; `requireLogin` refuses to start a QR login (the service never does). */
export async function openWhatsAppSocket(options: {
  authDir: string;
  log: Logger;
  requireLogin: boolean;
  getMessage?: (key: WaKey) => Promise<WaContent | undefined>;
  baileys?: BaileysModule;
}): Promise<ReturnType<BaileysModule['makeWASocket']> & { saveCreds(): Promise<void>; registered: boolean }> {
  const b = options.baileys ?? (await loadBaileys());
  await prepareAuthDir(options.authDir);
  const { state, saveCreds } = await b.useMultiFileAuthState(options.authDir);
  // A pairing-code login sets `registered`; a QR login only sets `me`: either way the device is linked.
  const registered = state.creds.registered === true || Boolean(state.creds.me?.id);
  if (options.requireLogin && !registered) {
    throw new WhatsAppSetupError(`WhatsApp is not linked yet (no login in ${options.authDir}): run \`pincer whatsapp login\``);
  }
  const logger = baileysLogger(options.log);
  const socket = b.makeWASocket({
    auth: { creds: state.creds, keys: b.makeCacheableSignalKeyStore(state.keys, logger) },
    logger,
    browser: b.Browsers.appropriate('Chrome'),
    // Staying "offline" keeps the owner's phone getting its notifications.
    markOnlineOnConnect: false,
    // pincer answers what arrives from now on; old history is not its input.
    syncFullHistory: false,
    shouldSyncHistoryMessage: () => false,
    getMessage: options.getMessage ?? (async () => undefined),
  });
  socket.ev.on('creds.update', () => {
    saveCreds().catch((err: unknown) => options.log.error({ err }, 'could not save the WhatsApp login'));
  });
  return Object.assign(socket, { saveCreds, registered });
}

// ---- Pure mapping (exported for the tests) ----

/** `15551234567:12@s.whatsapp.net` → `15551234567@s.whatsapp.net` (the device part dropped). */
export function bareJid(jid: string): string {
  const at = jid.indexOf('@');
  if (at < 0) return jid;
  return `${jid.slice(0, at).split(':')[0]}${jid.slice(at)}`;
}

const userOf = (jid: string): string => bareJid(jid).split('@')[0] ?? jid;
const isGroupJid = (jid: string): boolean => jid.endsWith('@g.us');
const isPnJid = (jid: string): boolean => jid.endsWith('@s.whatsapp.net');
const isLidJid = (jid: string): boolean => jid.endsWith('@lid');

/** Our own account: phone-number JID, LID and name, each without device. */
export interface WaSelf {
  pn?: string;
  lid?: string;
  name?: string;
}

export function selfFromUser(user: WhatsAppSocket['user']): WaSelf {
  const self: WaSelf = {};
  if (!user) return self;
  for (const id of [user.id, user.lid]) {
    if (!id) continue;
    if (isPnJid(id)) self.pn = bareJid(id);
    else if (isLidJid(id)) self.lid = bareJid(id);
  }
  if (user.name) self.name = user.name;
  return self;
}

function isSelf(jid: string | null | undefined, self: WaSelf): boolean {
  if (!jid) return false;
  const bare = bareJid(jid);
  return bare === self.pn || bare === self.lid;
}

function longValue(value: WaLong): number | undefined {
  if (value === null || value === undefined) return undefined;
  const n = typeof value === 'number' ? value : value.toNumber();
  return Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** WhatsApp timestamps are seconds. */
export function toMillis(ts: WaLong): number | undefined {
  const seconds = longValue(ts);
  return seconds ? seconds * 1000 : undefined;
}

/** Media a message carries, before it is downloaded. */
export interface WaMediaRef {
  kind: InboundAttachment['kind'];
  mime?: string;
  name?: string;
  declaredBytes?: number;
  /** What the stored text says when the file is not attached (an unjoined chat, too large, failed). */
  placeholder: string;
}

/** Unwraps disappearing-message and view-once envelopes (nested at most a few deep). */
export function unwrapContent(content: WaContent | null | undefined): WaContent | undefined {
  let c = content ?? undefined;
  for (let depth = 0; c && depth < 5; depth++) {
    const inner =
      c.ephemeralMessage?.message ??
      c.viewOnceMessage?.message ??
      c.viewOnceMessageV2?.message ??
      c.viewOnceMessageV2Extension?.message ??
      c.documentWithCaptionMessage?.message;
    if (!inner) return c;
    c = inner;
  }
  return c;
}

const EXT_BY_MIME: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/webp': 'webp',
  'audio/ogg': 'ogg',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a',
  'video/mp4': 'mp4',
  'application/pdf': 'pdf',
};

/** `audio/ogg; codecs=opus` → `audio/ogg`: the host names saved files by the bare type. */
const bareMime = (mime: string | null | undefined): string | undefined => mime?.split(';')[0]?.trim().toLowerCase() || undefined;

function mediaRef(kind: WaMediaRef['kind'], m: WaMedia, name: string | undefined, placeholder: string): WaMediaRef {
  const mime = bareMime(m.mimetype);
  const declared = longValue(m.fileLength);
  const fallbackName = `${kind === 'audio' && placeholder === '[voice note]' ? 'voice-note' : kind}.${(mime && EXT_BY_MIME[mime]) ?? 'bin'}`;
  return {
    kind,
    ...(mime ? { mime } : {}),
    name: name || fallbackName,
    ...(declared !== undefined ? { declaredBytes: declared } : {}),
    placeholder,
  };
}

interface Body {
  text: string;
  context?: WaContextInfo | null;
  media?: WaMediaRef;
}

function bodyOf(c: WaContent): Body | undefined {
  if (c.conversation) return { text: c.conversation };
  if (c.extendedTextMessage?.text) return { text: c.extendedTextMessage.text, context: c.extendedTextMessage.contextInfo };
  if (c.imageMessage) {
    const m = c.imageMessage;
    return { text: m.caption ?? '', context: m.contextInfo, media: mediaRef('image', m, undefined, '[image]') };
  }
  if (c.videoMessage) {
    const m = c.videoMessage;
    return { text: m.caption ?? '', context: m.contextInfo, media: mediaRef('video', m, undefined, '[video]') };
  }
  if (c.audioMessage) {
    const m = c.audioMessage;
    return { text: '', context: m.contextInfo, media: mediaRef('audio', m, undefined, m.ptt ? '[voice note]' : '[audio]') };
  }
  if (c.documentMessage) {
    const m = c.documentMessage;
    const name = m.fileName ?? m.title ?? undefined;
    return { text: m.caption ?? '', context: m.contextInfo, media: mediaRef('document', m, name, `[document${name ? `: ${name}` : ''}]`) };
  }
  if (c.stickerMessage) return { text: '[sticker]', context: c.stickerMessage.contextInfo };
  if (c.locationMessage) {
    const l = c.locationMessage;
    return { text: `[location: ${l.degreesLatitude ?? '?'}, ${l.degreesLongitude ?? '?'}${l.name ? ` (${l.name})` : ''}]` };
  }
  if (c.contactMessage) return { text: `[contact: ${c.contactMessage.displayName ?? 'unnamed'}]` };
  return undefined;
}

function quotedText(c: WaContent | null | undefined): string {
  const inner = unwrapContent(c);
  return inner ? (bodyOf(inner)?.text ?? '') : '';
}

export interface MapContext {
  type: string;
  self: WaSelf;
  assistantName: string;
  /** Ids of messages pincer sent (their echoes are not input; a reply to one addresses the bot). */
  sentByUs(id: string): boolean;
  /** The phone-number JID behind a LID, when known. */
  pnForLid(lid: string): string | undefined;
  /** 'append' messages older than this are history, not input. */
  liveSince: number;
  now: number;
}

export type Mapped = { ignore: string } | { message: Omit<InboundMessage, 'attachments'>; jid: string; media?: WaMediaRef };

/** The chat a message belongs to, as a JID: DMs by phone number where it is known, the self-chat always so. */
export function chatJidOf(key: WaKey, self: WaSelf, pnForLid: (lid: string) => string | undefined): string | undefined {
  if (!key.remoteJid) return undefined;
  if (isGroupJid(key.remoteJid)) return key.remoteJid;
  const jid = bareJid(key.remoteJid);
  if (!isLidJid(jid)) return jid;
  if (jid === self.lid && self.pn) return self.pn;
  // For our own messages the alt is our own other form, not the peer's.
  const alt = !key.fromMe && key.remoteJidAlt && isPnJid(key.remoteJidAlt) ? bareJid(key.remoteJidAlt) : undefined;
  return alt ?? pnForLid(jid) ?? jid;
}

/** The chat a 'presence.update' says someone other than us is typing in ('composing'), as a chat id; else undefined. */
export function typingChatOf(update: WaPresenceUpdate, self: WaSelf, pnForLid: (lid: string) => string | undefined): string | undefined {
  const typing = Object.entries(update.presences).some(([who, p]) => p.lastKnownPresence === 'composing' && !isSelf(who, self));
  if (!typing || update.id.endsWith('@broadcast') || update.id.endsWith('@newsletter')) return undefined;
  const jid = chatJidOf({ remoteJid: update.id, fromMe: false }, self, pnForLid);
  return jid ? `${WHATSAPP_PREFIX}${jid}` : undefined;
}

/** Turns one `messages.upsert` entry into an inbound message, or says why it is not one. */
export function mapWhatsAppMessage(msg: WaMessage, ctx: MapContext): Mapped {
  const { key } = msg;
  if (!key.id || !key.remoteJid) return { ignore: 'no message id or chat' };
  if (key.remoteJid.endsWith('@broadcast')) return { ignore: key.remoteJid === 'status@broadcast' ? 'status update' : 'broadcast list' };
  if (key.remoteJid.endsWith('@newsletter')) return { ignore: 'channel (newsletter) post' };
  if (ctx.type !== 'notify' && ctx.type !== 'append') return { ignore: `upsert of type ${ctx.type}` };
  const content = unwrapContent(msg.message);
  if (!content) return { ignore: 'no content (a notification or an undecryptable message)' };
  if (content.reactionMessage) return { ignore: 'reaction' };
  if (content.protocolMessage) return { ignore: 'protocol message (edit, deletion, settings)' };
  const body = bodyOf(content);
  if (!body) return { ignore: `unsupported content: ${Object.keys(content).join(',')}` };
  const prefix = `${ctx.assistantName}: `;
  if (key.fromMe && (ctx.sentByUs(key.id) || body.text.startsWith(prefix))) return { ignore: 'sent by pincer (own echo)' };
  const sentAt = toMillis(msg.messageTimestamp) ?? ctx.now;
  if (ctx.type === 'append' && sentAt < ctx.liveSince) return { ignore: 'history (older than this login was last running)' };

  const jid = chatJidOf(key, ctx.self, ctx.pnForLid);
  if (!jid) return { ignore: 'no chat' };
  const isGroup = isGroupJid(jid);
  let sender: string;
  if (key.fromMe) sender = ctx.self.pn ?? ctx.self.lid ?? 'me';
  else if (isGroup) {
    const participant = key.participant ? bareJid(key.participant) : 'unknown';
    const alt = key.participantAlt && isPnJid(key.participantAlt) ? bareJid(key.participantAlt) : undefined;
    sender = isLidJid(participant) ? (alt ?? ctx.pnForLid(participant) ?? participant) : participant;
  } else sender = jid;

  const mentioned = (body.context?.mentionedJid ?? []).some((j) => isSelf(j, ctx.self));
  const quoted = body.context?.stanzaId;
  const repliesToBot =
    !!quoted &&
    (ctx.sentByUs(quoted) || (isSelf(body.context?.participant, ctx.self) && quotedText(body.context?.quotedMessage).startsWith(prefix)));
  let text = body.text;
  if (mentioned) {
    // WhatsApp writes a mention as @<number>: the agent reads its own name instead.
    for (const id of [ctx.self.pn, ctx.self.lid]) {
      if (id) text = text.replace(new RegExp(`@${userOf(id)}(?!\\d)`, 'g'), `@${ctx.assistantName}`);
    }
  }
  const isSelfChat = !isGroup && jid === ctx.self.pn;
  const pushName = msg.pushName?.trim() || undefined;
  const senderName = pushName ?? (key.fromMe ? (ctx.self.name ?? 'me') : userOf(sender));
  const chatName = isGroup ? undefined : isSelfChat ? `${ctx.self.name ?? 'me'} (self-chat)` : key.fromMe ? undefined : pushName;
  return {
    jid,
    message: {
      chatId: `${WHATSAPP_PREFIX}${jid}`,
      channel: 'whatsapp',
      platformId: key.id,
      senderId: `${WHATSAPP_PREFIX}${sender}`,
      senderName,
      text,
      sentAt,
      ...(chatName ? { chatName } : {}),
      isGroup,
      ...(mentioned || repliesToBot ? { mentionsBot: true } : {}),
    },
    ...(body.media ? { media: body.media } : {}),
  };
}

const MIME_BY_EXT: Record<string, string> = {
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.png': 'image/png',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.pdf': 'application/pdf',
  '.txt': 'text/plain',
  '.md': 'text/markdown',
  '.csv': 'text/csv',
  '.json': 'application/json',
  '.html': 'text/html',
  '.zip': 'application/zip',
  '.mp3': 'audio/mpeg',
  '.ogg': 'audio/ogg',
  '.m4a': 'audio/mp4',
  '.mp4': 'video/mp4',
  '.docx': 'application/vnd.openxmlformats-officedocument.wordprocessingml.document',
  '.xlsx': 'application/vnd.openxmlformats-officedocument.spreadsheetml.sheet',
  '.pptx': 'application/vnd.openxmlformats-officedocument.presentationml.presentation',
};
const SENT_AS_IMAGE = new Set(['image/jpeg', 'image/png', 'image/webp']);

/** A file the agent sends: photos as images, everything else as a document, the text as caption. */
export function fileContent(file: { name: string; data: Buffer }, caption: string | undefined): WaOutgoing {
  const mimetype = MIME_BY_EXT[extname(file.name).toLowerCase()] ?? 'application/octet-stream';
  const withCaption = caption ? { caption } : {};
  if (SENT_AS_IMAGE.has(mimetype)) return { image: file.data, mimetype, ...withCaption };
  return { document: file.data, fileName: file.name, mimetype, ...withCaption };
}

const boomShape = z.object({
  message: z.string().optional(),
  data: z.unknown().optional(),
  output: z.object({ statusCode: z.number().optional() }).optional(),
});

/** The status code of a baileys (Boom) error: `output.statusCode`, or the WhatsApp error code baileys puts in `data`. */
export function errorCode(err: unknown): number | undefined {
  const parsed = boomShape.safeParse(err);
  if (!parsed.success) return undefined;
  if (typeof parsed.data.data === 'number') return parsed.data.data;
  return parsed.data.output?.statusCode;
}

/** How long to wait after WhatsApp's rate limit (it says no time). */
export const RATE_LIMIT_WAIT_MS = 15_000;

/** A failed send as the outbox worker understands it: rate limits are retried after a pause. */
export function sendFailure(err: unknown, rateLimitWaitMs = RATE_LIMIT_WAIT_MS): Error {
  const message = err instanceof Error ? err.message : String(err);
  if (errorCode(err) === 429 || /rate-overlimit/i.test(message)) {
    return new RateLimitedError(rateLimitWaitMs, `WhatsApp rate limit: ${message}`);
  }
  return new Error(`WhatsApp refused the message: ${message}`);
}

/** A Map that forgets its oldest entries past `max`. */
class Recent<V> {
  readonly #map = new Map<string, V>();
  constructor(readonly max: number) {}
  set(key: string, value: V): void {
    this.#map.delete(key);
    this.#map.set(key, value);
    if (this.#map.size > this.max) {
      const oldest = this.#map.keys().next().value;
      if (oldest !== undefined) this.#map.delete(oldest);
    }
  }
  get(key: string): V | undefined {
    return this.#map.get(key);
  }
  has(key: string): boolean {
    return this.#map.has(key);
  }
}

// ---- The adapter ----

export type WhatsAppSocketFactory = (ctx: {
  authDir: string;
  log: Logger;
  /** baileys asks for a message we sent when a recipient could not decrypt it. */
  getMessage(key: WaKey): Promise<WaContent | undefined>;
}) => Promise<WhatsAppSocket>;

export type WhatsAppChannelOptions = { authDir: string } & {
  assistantName: string;
  log: Logger;
  /** Test seam: makes the socket (default: a real baileys socket on the login in `authDir`). */
  socketFactory?: WhatsAppSocketFactory;
  /** Test seam: fetches a message's media (default: baileys' downloadMediaMessage, as a stream). */
  downloadMedia?: (message: WaMessage, socket: WhatsAppSocket) => Promise<MediaSource>;
  /** First reconnect delay; it doubles up to `reconnectMaxMs`, with jitter. */
  reconnectBaseMs?: number;
  reconnectMaxMs?: number;
  /** How often "typing…" is renewed while on (WhatsApp drops it after about 10 s). */
  typingRefreshMs?: number;
  /** The pause after WhatsApp's rate limit (default 15 s). */
  rateLimitWaitMs?: number;
  /** `start()` resolves after this long even if the first connection has not opened (it keeps trying). */
  startTimeoutMs?: number;
  now?: () => number;
};

export class WhatsAppChannel implements Channel {
  readonly name = 'whatsapp';
  readonly maxTextLength: number;
  readonly #o: WhatsAppChannelOptions;
  readonly #log: Logger;
  readonly #prefix: string;
  readonly #recentInbound = new Recent<WaMessage>(RECENT_INBOUND);
  readonly #sent = new Recent<WaContent | undefined>(REMEMBERED_SENT);
  readonly #lidToPn = new Recent<string>(REMEMBERED_LIDS);
  readonly #groupNames = new Map<string, string>();
  readonly #typing = new Map<string, NodeJS.Timeout>();
  readonly #inflight = new Set<Promise<unknown>>();
  /** Chats whose presence (typing) the current socket subscribed to: joined chats, once per connection. */
  readonly #presenceSubscribed = new Set<string>();
  #sink: InboundSink | undefined;
  #socket: WhatsAppSocket | undefined;
  #state: ConnectionState = 'disconnected';
  #self: WaSelf = {};
  #stopped = true;
  #attempt = 0;
  #reconnectTimer: NodeJS.Timeout | undefined;
  #aliveTimer: NodeJS.Timeout | undefined;
  #liveSince = 0;
  #inbound: Promise<void> = Promise.resolve();
  #flushing: Promise<void> = Promise.resolve();
  #baileys: BaileysModule | undefined;
  #firstOutcome: { resolve(): void; reject(err: Error): void } | undefined;

  constructor(options: WhatsAppChannelOptions) {
    this.#o = options;
    this.#log = options.log;
    this.#prefix = `${options.assistantName}: `;
    // Every part carries the prefix, so the limit leaves room for it.
    this.maxTextLength = TEXT_LIMIT - this.#prefix.length;
  }

  owns(chatId: string): boolean {
    return chatId.startsWith(WHATSAPP_PREFIX);
  }

  state(): ConnectionState {
    return this.#state;
  }

  /** Resolves once connected, or once the first attempt failed in a way a retry may fix (it goes on retrying). */
  async start(sink: InboundSink): Promise<void> {
    this.#sink = sink;
    this.#stopped = false;
    await prepareAuthDir(this.#o.authDir);
    const now = this.#now();
    const lastAlive = await this.#readAlive();
    // What arrives as 'append' (offline delivery) after this is input; before it, history.
    this.#liveSince = Math.max(now - HISTORY_MAX_AGE_MS, Math.min(lastAlive ?? now, now) - HISTORY_GRACE_MS);
    const first = new Promise<void>((resolve, reject) => {
      this.#firstOutcome = { resolve, reject };
    });
    const timeout = setTimeout(() => this.#settleStart(), this.#o.startTimeoutMs ?? 15_000);
    void this.#connect();
    try {
      await first;
    } finally {
      clearTimeout(timeout);
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#reconnectTimer);
    clearInterval(this.#aliveTimer);
    for (const timer of this.#typing.values()) clearInterval(timer);
    this.#typing.clear();
    this.#settleStart();
    const socket = this.#socket;
    this.#socket = undefined;
    this.#state = 'disconnected';
    if (socket) {
      this.#detach(socket);
      await this.#writeAlive();
      try {
        await socket.end(undefined);
      } catch (err) {
        this.#log.debug({ err }, 'closing the WhatsApp socket failed');
      }
    }
    await this.#inbound;
  }

  readonly #parts = lastRendered((markdown: string) => whatsappParts(markdown, this.maxTextLength));

  partsOf(markdown: string): number {
    return this.#parts(markdown).length;
  }

  async send(chatId: string, out: Outbound): Promise<{ platformId: string }> {
    const jid = this.#jidOf(chatId);
    const socket = this.#socket;
    if (!socket || this.#state !== 'connected') throw new Error(`WhatsApp is ${this.#state}: the reply waits for the connection`);
    const quoted = out.replyTo ? this.#recentInbound.get(out.replyTo.platformId) : undefined;
    // Only a reply's first message quotes the question.
    const sendOne = async (content: WaOutgoing, first: boolean) => {
      const sending = socket.sendMessage(jid, content, first && quoted ? { quoted } : undefined);
      this.#inflight.add(sending);
      let id: string | null | undefined;
      try {
        const sent = await sending;
        id = sent?.key.id;
        // Known before the in-flight mark is lifted: the echo handler waits on that mark.
        if (id) this.#sent.set(id, sent?.message ?? undefined);
      } catch (err) {
        throw sendFailure(err, this.#o.rateLimitWaitMs);
      } finally {
        this.#inflight.delete(sending);
      }
      if (!id) throw new Error('WhatsApp returned no id for the sent message');
      return id;
    };
    if (out.file) {
      // A caption is one with its file, however long.
      const caption = whatsappParts(out.text, Number.MAX_SAFE_INTEGER)[0];
      return { platformId: await sendOne(fileContent(out.file, caption && `${this.#prefix}${caption}`), true) };
    }
    return sendParts(this.#parts(out.text), out.part, (part, first) => sendOne({ text: `${this.#prefix}${part}` }, first));
  }

  async setTyping(chatId: string, on: boolean): Promise<void> {
    const jid = this.#jidOf(chatId);
    const running = this.#typing.get(chatId);
    if (!on) {
      if (!running) return;
      clearInterval(running);
      this.#typing.delete(chatId);
      await this.#socket?.sendPresenceUpdate('paused', jid);
      return;
    }
    if (running || this.#stopped) return;
    const renew = () => {
      this.#socket?.sendPresenceUpdate('composing', jid).catch((err: unknown) => this.#log.debug({ err, chatId }, 'typing failed'));
    };
    this.#typing.set(chatId, setInterval(renew, this.#o.typingRefreshMs ?? 10_000));
    await this.#socket?.sendPresenceUpdate('composing', jid);
  }

  /** Remembered sends, for baileys' retry of a message a recipient could not decrypt. */
  async getMessage(key: WaKey): Promise<WaContent | undefined> {
    return key.id ? this.#sent.get(key.id) : undefined;
  }

  #now(): number {
    return this.#o.now?.() ?? Date.now();
  }

  #jidOf(chatId: string): string {
    if (!this.owns(chatId)) throw new Error(`${chatId} is not a WhatsApp chat`);
    return chatId.slice(WHATSAPP_PREFIX.length);
  }

  #settleStart(err?: Error): void {
    const outcome = this.#firstOutcome;
    this.#firstOutcome = undefined;
    if (!outcome) return;
    if (err) outcome.reject(err);
    else outcome.resolve();
  }

  async #connect(): Promise<void> {
    if (this.#stopped) return;
    this.#state = 'connecting';
    let socket: WhatsAppSocket;
    // The next socket reads the login from disk: the closed one's last key updates must be there first.
    await this.#flushing;
    try {
      const factory = this.#o.socketFactory ?? ((ctx) => this.#realSocket(ctx));
      socket = await factory({ authDir: this.#o.authDir, log: this.#log, getMessage: (key) => this.getMessage(key) });
    } catch (err) {
      if (err instanceof WhatsAppSetupError) {
        this.#state = 'disconnected';
        // Before start() settles, its rejection is what reports it.
        if (this.#firstOutcome) this.#settleStart(err);
        else this.#log.error({ error: err.message }, 'WhatsApp cannot reconnect');
        return;
      }
      this.#log.warn({ err }, 'WhatsApp connection could not be made; retrying');
      this.#settleStart();
      this.#scheduleReconnect();
      return;
    }
    if (this.#stopped) {
      await Promise.resolve(socket.end(undefined)).catch(() => {});
      return;
    }
    this.#socket = socket;
    this.#presenceSubscribed.clear();
    socket.ev.on('connection.update', (u) => this.#onConnection(socket, u));
    socket.ev.on('messages.upsert', (u) => this.#onUpsert(socket, u));
    socket.ev.on('groups.update', (groups) => {
      for (const g of groups) if (g.id && g.subject) this.#groupNames.set(g.id, g.subject);
    });
    socket.ev.on('lid-mapping.update', ({ lid, pn }) => this.#learnLid(lid, pn));
    socket.ev.on('presence.update', (u) => this.#onPresence(socket, u));
  }

  async #realSocket(ctx: Parameters<WhatsAppSocketFactory>[0]): Promise<WhatsAppSocket> {
    this.#baileys ??= await loadBaileys();
    return openWhatsAppSocket({
      authDir: ctx.authDir,
      log: ctx.log,
      requireLogin: true,
      getMessage: ctx.getMessage,
      baileys: this.#baileys,
    });
  }

  #detach(socket: WhatsAppSocket): void {
    for (const event of ['connection.update', 'messages.upsert', 'groups.update', 'lid-mapping.update', 'presence.update'] as const) {
      socket.ev.removeAllListeners(event);
    }
  }

  #onConnection(socket: WhatsAppSocket, u: WaConnectionUpdate): void {
    if (socket !== this.#socket || this.#stopped) return;
    if (u.qr) {
      // A QR code means baileys wants a new login: the service never does that (the CLI does).
      this.#giveUp(socket, 'WhatsApp asks for a new login: run `pincer whatsapp login`, then restart pincer');
      return;
    }
    if (u.connection === 'open') {
      this.#state = 'connected';
      this.#attempt = 0;
      this.#self = selfFromUser(socket.user);
      if (this.#self.lid && this.#self.pn) this.#learnLid(this.#self.lid, this.#self.pn);
      this.#log.info({ account: this.#self.pn, lid: this.#self.lid }, 'WhatsApp connected');
      clearInterval(this.#aliveTimer);
      this.#aliveTimer = setInterval(() => void this.#writeAlive(), ALIVE_EVERY_MS);
      this.#aliveTimer.unref();
      void this.#writeAlive();
      this.#settleStart();
      return;
    }
    if (u.connection !== 'close') return;
    const code = errorCode(u.lastDisconnect?.error);
    const reason = u.lastDisconnect?.error?.message ?? 'closed';
    const known = this.#baileys?.DisconnectReason;
    if (code === (known?.loggedOut ?? LOGGED_OUT)) {
      this.#giveUp(socket, 'WhatsApp logged this device out (removed on the phone?): run `pincer whatsapp login`, then restart pincer');
      return;
    }
    if (code === (known?.connectionReplaced ?? CONNECTION_REPLACED)) {
      // Reconnecting would push the other client off, which would push us off: no loop.
      this.#giveUp(socket, 'another client connected with this WhatsApp login (a second pincer?); restart pincer to take over');
      return;
    }
    this.#detach(socket);
    this.#socket = undefined;
    this.#state = 'connecting';
    this.#flushing = socket.saveCreds
      ? socket.saveCreds().catch((err: unknown) => this.#log.warn({ err }, 'login not saved'))
      : Promise.resolve();
    const restart = code === (known?.restartRequired ?? RESTART_REQUIRED);
    this.#log.warn({ code, reason }, 'WhatsApp connection closed; reconnecting');
    this.#settleStart();
    this.#scheduleReconnect(restart ? 0 : undefined);
  }

  #giveUp(socket: WhatsAppSocket, message: string): void {
    this.#detach(socket);
    this.#socket = undefined;
    this.#state = 'disconnected';
    clearInterval(this.#aliveTimer);
    Promise.resolve(socket.end(undefined)).catch(() => {});
    // Before start() settles, its rejection is what reports it.
    if (this.#firstOutcome) this.#settleStart(new WhatsAppSetupError(message));
    else this.#log.error(message);
  }

  #scheduleReconnect(delayMs?: number): void {
    if (this.#stopped) return;
    const base = this.#o.reconnectBaseMs ?? 1_000;
    const max = this.#o.reconnectMaxMs ?? 60_000;
    const backoff = Math.min(max, base * 2 ** Math.min(this.#attempt, 16));
    const delay = delayMs ?? Math.round(backoff * (0.8 + Math.random() * 0.4));
    this.#attempt++;
    clearTimeout(this.#reconnectTimer);
    this.#reconnectTimer = setTimeout(() => void this.#connect(), delay);
  }

  /** Remembers which phone number a LID stands for (the two ids of one person, in either order). */
  #learnLid(a: string, b: string): void {
    if (isLidJid(a) && isPnJid(b)) this.#lidToPn.set(bareJid(a), bareJid(b));
    else if (isPnJid(a) && isLidJid(b)) this.#lidToPn.set(bareJid(b), bareJid(a));
  }

  /** Someone typing in a chat whose presence we subscribed to: a hint for the sink. */
  #onPresence(socket: WhatsAppSocket, update: WaPresenceUpdate): void {
    if (socket !== this.#socket || this.#stopped) return;
    try {
      const chatId = typingChatOf(update, this.#self, (lid) => this.#lidToPn.get(lid));
      if (chatId) this.#sink?.typing(chatId);
    } catch (err) {
      this.#log.debug({ err, chat: update.id }, 'WhatsApp typing hint not passed on');
    }
  }

  /** WhatsApp tells who types only in chats we subscribed to: a joined chat's, once per connection, as it addressed it. */
  #subscribePresence(socket: WhatsAppSocket, remoteJid: string): void {
    const jid = bareJid(remoteJid);
    if (socket !== this.#socket || this.#presenceSubscribed.has(jid) || isSelf(jid, this.#self)) return;
    this.#presenceSubscribed.add(jid);
    Promise.resolve()
      .then(() => socket.presenceSubscribe(jid))
      .catch((err: unknown) => {
        // The next message from the chat tries again.
        if (socket === this.#socket) this.#presenceSubscribed.delete(jid);
        this.#log.debug({ err, jid }, 'WhatsApp presence subscription failed');
      });
  }

  #onUpsert(socket: WhatsAppSocket, upsert: WaUpsert): void {
    if (socket !== this.#socket) return;
    for (const msg of upsert.messages) {
      // One at a time, in order: ingest order is the conversation's order.
      this.#inbound = this.#inbound
        .then(() => this.#handle(socket, msg, upsert.type))
        .catch((err: unknown) => this.#log.error({ err, id: msg.key.id }, 'WhatsApp message could not be taken in'));
    }
  }

  async #handle(socket: WhatsAppSocket, msg: WaMessage, type: string): Promise<void> {
    const sink = this.#sink;
    if (!sink) return;
    const { key } = msg;
    if (key.remoteJid && key.remoteJidAlt && !key.fromMe) this.#learnLid(key.remoteJid, key.remoteJidAlt);
    if (key.participant && key.participantAlt) this.#learnLid(key.participant, key.participantAlt);
    // Our own send's echo can race the send's return: its id must be known before deciding.
    if (key.fromMe && this.#inflight.size > 0) await Promise.allSettled([...this.#inflight]);
    const mapped = mapWhatsAppMessage(msg, {
      type,
      self: this.#self,
      assistantName: this.#o.assistantName,
      sentByUs: (id) => this.#sent.has(id),
      pnForLid: (lid) => this.#lidToPn.get(lid),
      liveSince: this.#liveSince,
      now: this.#now(),
    });
    if ('ignore' in mapped) {
      this.#log.debug({ id: key.id, chat: key.remoteJid, type, why: mapped.ignore }, 'WhatsApp message not taken in');
      return;
    }
    const message: InboundMessage = { ...mapped.message };
    if (key.id) this.#recentInbound.set(key.id, msg);
    if (key.remoteJid && sink.isJoined(message.chatId)) this.#subscribePresence(socket, key.remoteJid);
    if (message.isGroup) {
      const name = await this.#groupName(socket, mapped.jid);
      if (name) message.chatName = name;
    }
    if (mapped.media) {
      const attachment = await this.#attachment(socket, msg, mapped.media, message, sink);
      if (attachment) message.attachments = [attachment];
      else message.text = message.text ? `${message.text}\n${mapped.media.placeholder}` : mapped.media.placeholder;
    }
    await sink.ingest(message);
  }

  async #groupName(socket: WhatsAppSocket, jid: string): Promise<string | undefined> {
    const known = this.#groupNames.get(jid);
    if (known !== undefined) return known;
    let timer: NodeJS.Timeout | undefined;
    try {
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('timed out')), GROUP_NAME_TIMEOUT_MS);
      });
      const meta = await Promise.race([socket.groupMetadata(jid), timeout]);
      this.#groupNames.set(jid, meta.subject);
      return meta.subject;
    } catch (err) {
      this.#log.debug({ err, jid }, 'group name unavailable');
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Downloads a joined chat's media once (never a redelivery's), bounded by the sink's limit. */
  async #attachment(
    socket: WhatsAppSocket,
    msg: WaMessage,
    ref: WaMediaRef,
    message: InboundMessage,
    sink: InboundSink,
  ): Promise<InboundAttachment | undefined> {
    if (!sink.isJoined(message.chatId) || sink.seen(message.chatId, message.platformId)) return undefined;
    const max = sink.maxMediaBytes;
    if (ref.declaredBytes !== undefined && ref.declaredBytes > max) {
      this.#log.info({ id: message.platformId, bytes: ref.declaredBytes, max }, 'WhatsApp media larger than the limit: not downloaded');
      return undefined;
    }
    try {
      const source = await (this.#o.downloadMedia ?? ((m) => this.#downloadWithBaileys(m)))(msg, socket);
      const data = await readBounded(source, max);
      if (!data) {
        this.#log.info({ id: message.platformId, max }, 'WhatsApp media larger than the limit: download stopped');
        return undefined;
      }
      return { kind: ref.kind, data, ...(ref.name ? { name: ref.name } : {}), ...(ref.mime ? { mime: ref.mime } : {}) };
    } catch (err) {
      this.#log.warn({ err, id: message.platformId }, 'WhatsApp media could not be downloaded');
      return undefined;
    }
  }

  /** Media is fetched as it arrives, while its URL is fresh: no re-upload request to the phone is needed. */
  async #downloadWithBaileys(msg: WaMessage): Promise<MediaSource> {
    this.#baileys ??= await loadBaileys();
    return this.#baileys.downloadMediaMessage(msg, 'stream', {});
  }

  async #readAlive(): Promise<number | undefined> {
    try {
      const parsed = z.object({ aliveAt: z.number() }).safeParse(JSON.parse(await readFile(join(this.#o.authDir, ALIVE_FILE), 'utf8')));
      return parsed.success ? parsed.data.aliveAt : undefined;
    } catch {
      return undefined;
    }
  }

  /** When this login was last running: after a restart, what arrived since then is still answered. */
  async #writeAlive(): Promise<void> {
    const file = join(this.#o.authDir, ALIVE_FILE);
    try {
      await writeFile(`${file}.tmp`, JSON.stringify({ aliveAt: this.#now() }), { mode: 0o600 });
      await rename(`${file}.tmp`, file);
    } catch (err) {
      this.#log.debug({ err }, 'could not record the WhatsApp alive time');
    }
  }
}

/** The whole source, or undefined as soon as it passes `max` bytes (reading stops there). */
export async function readBounded(source: MediaSource, max: number): Promise<Buffer | undefined> {
  if (Buffer.isBuffer(source)) return source.length > max ? undefined : source;
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of source) {
    total += chunk.length;
    // Leaving the loop destroys the stream: nothing more is fetched.
    if (total > max) return undefined;
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

// Signal through signal-cli's JSON-RPC daemon: our own small client, no Signal library. Two transports behind
// one interface, chosen by the URL: `tcp://host:port` (`daemon --tcp`, newline-delimited JSON-RPC both ways) and
// `http://host:port` (`daemon --http`: POST /api/v1/rpc for calls, GET /api/v1/events as an SSE stream of
// received messages). Chats are `signal:<number or uuid>` (direct) and `signal:group.<groupId>`; a message's
// platform id is `<sender>:<timestamp>`, Signal's own identity of a message.
import { open } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { join } from 'node:path';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { lastRendered, sendParts } from './format/parts.js';
import { type SignalText, signalParts } from './format/signal.js';
import {
  type Channel,
  type ConnectionState,
  type InboundAttachment,
  type InboundMessage,
  type InboundSink,
  type Outbound,
  RateLimitedError,
} from './types.js';

export type SignalChannelOptions = { account: string; url: string } & { assistantName: string; log: Logger } & {
  /** Our account's ACI (UUID): mentions and quotes may name us by it alone. Otherwise learned from our own devices' messages. */
  accountUuid?: string;
  /** signal-cli's attachments folder (`~/.local/share/signal-cli/attachments`), read directly instead of `getAttachment`. */
  attachmentsDir?: string;
  /** Longest wait for one call's answer (a send to a big group takes a while). */
  callTimeoutMs?: number;
  /** Reconnect backoff: doubles from min to max, with jitter. */
  reconnectMinMs?: number;
  reconnectMaxMs?: number;
  /** Signal shows typing for 15 s unless renewed. */
  typingRefreshMs?: number;
  /** Which replies quote the message they answer: in groups only (default), always, or never. */
  quoteReplies?: 'groups' | 'always' | 'never';
};

const PREFIX = 'signal:';
const GROUP_PREFIX = `${PREFIX}group.`;
/** U+FFFC OBJECT REPLACEMENT CHARACTER: where Signal's text holds a mention. */
const MENTION_MARK = '\uFFFC';
/** How long a call waits for a dropped connection to come back before it fails (the outbox retries later). */
const CONNECT_WAIT_MS = 5_000;
const SMALL_CALL_TIMEOUT_MS = 15_000;
const MIN_MESSAGE_CHARS = 8 * 1024 * 1024;

// ---- what signal-cli sends (validated; unknown fields are dropped) ----

const addressSchema = z.object({ number: z.string().nullish(), uuid: z.string().nullish() });
const mentionSchema = z.object({
  name: z.string().nullish(),
  number: z.string().nullish(),
  uuid: z.string().nullish(),
  start: z.number().int().nonnegative(),
  length: z.number().int().nonnegative(),
});
const attachmentSchema = z.object({
  id: z.string().nullish(),
  contentType: z.string().nullish(),
  filename: z.string().nullish(),
  size: z.number().nullish(),
});
const dataMessageSchema = z.object({
  timestamp: z.number().int(),
  message: z.string().nullish(),
  mentions: z.array(mentionSchema).nullish(),
  attachments: z.array(attachmentSchema).nullish(),
  quote: z
    .object({
      id: z.number().nullish(),
      author: z.string().nullish(),
      authorNumber: z.string().nullish(),
      authorUuid: z.string().nullish(),
    })
    .nullish(),
  groupInfo: z.object({ groupId: z.string().min(1), groupName: z.string().nullish(), type: z.string().nullish() }).nullish(),
  reaction: z.unknown().optional(),
  remoteDelete: z.unknown().optional(),
});
/** signal-cli's JsonTypingMessage: `groupId` (base64, as in groupInfo) only when typing in a group. */
const typingMessageSchema = z.object({
  action: z.string(),
  timestamp: z.number().int().nullish(),
  groupId: z.string().min(1).nullish(),
});
const envelopeSchema = z.object({
  source: z.string().nullish(),
  sourceNumber: z.string().nullish(),
  sourceUuid: z.string().nullish(),
  sourceName: z.string().nullish(),
  timestamp: z.number().int(),
  dataMessage: dataMessageSchema.nullish(),
  syncMessage: z.unknown().optional(),
  receiptMessage: z.unknown().optional(),
  typingMessage: typingMessageSchema.nullish(),
});
const receiveParamsSchema = z.object({ envelope: envelopeSchema, account: z.string().nullish() });

const sendResultSchema = z.object({
  timestamp: z.number().int().nullish(),
  results: z
    .array(
      z.object({
        recipientAddress: addressSchema.nullish(),
        groupId: z.string().nullish(),
        type: z.string(),
        token: z.string().nullish(),
        retryAfterSeconds: z.number().nullish(),
      }),
    )
    .nullish(),
});
export type SendResult = NonNullable<z.infer<typeof sendResultSchema>['results']>[number];

const rpcMessageSchema = z.object({
  id: z.union([z.string(), z.number()]).nullish(),
  method: z.string().optional(),
  params: z.unknown().optional(),
  result: z.unknown().optional(),
  error: z.object({ code: z.number(), message: z.string(), data: z.unknown().optional() }).nullish(),
});
const groupsSchema = z.array(z.object({ id: z.string(), name: z.string().nullish() }));
const attachmentDataSchema = z.union([z.object({ data: z.string() }), z.string()]);

// ---- pure mapping (exported for tests) ----

export type SignalTarget = { kind: 'direct'; recipient: string } | { kind: 'group'; groupId: string };

export function signalChatId(target: SignalTarget): string {
  return target.kind === 'group' ? `${GROUP_PREFIX}${target.groupId}` : `${PREFIX}${target.recipient}`;
}

export function parseSignalChatId(chatId: string): SignalTarget | undefined {
  if (chatId.startsWith(GROUP_PREFIX)) {
    const groupId = chatId.slice(GROUP_PREFIX.length);
    return groupId ? { kind: 'group', groupId } : undefined;
  }
  if (!chatId.startsWith(PREFIX)) return undefined;
  const recipient = chatId.slice(PREFIX.length);
  return recipient ? { kind: 'direct', recipient } : undefined;
}

/** `<author>:<timestamp>` back into its parts (authors are numbers or UUIDs: no colon in them). */
export function parsePlatformId(platformId: string): { author: string; timestamp: number } | undefined {
  const at = platformId.lastIndexOf(':');
  if (at <= 0) return undefined;
  const timestamp = Number(platformId.slice(at + 1));
  return Number.isSafeInteger(timestamp) && timestamp > 0 ? { author: platformId.slice(0, at), timestamp } : undefined;
}

export interface SignalSelf {
  account: string;
  uuid?: string | undefined;
}

function isSelf(self: SignalSelf, ids: Array<string | null | undefined>): boolean {
  return ids.some((id) => !!id && (id === self.account || (!!self.uuid && id.toLowerCase() === self.uuid.toLowerCase())));
}

/**
 * Puts names where Signal's text has U+FFFC for a mention: ours becomes `@<assistantName>` (so the agent and
 * the trigger read it naturally), others `@<their number or id>`. Offsets are UTF-16 units, as in JS strings.
 */
export function applyMentions(
  text: string,
  mentions: ReadonlyArray<z.infer<typeof mentionSchema>>,
  self: SignalSelf,
  assistantName: string,
): { text: string; mentionsBot: boolean } {
  let out = text;
  let mentionsBot = false;
  for (const m of [...mentions].sort((a, b) => b.start - a.start)) {
    if (m.start > out.length) continue;
    const ours = isSelf(self, [m.number, m.uuid, m.name]);
    mentionsBot ||= ours;
    const name = ours ? assistantName : (m.number ?? m.name ?? m.uuid ?? 'someone');
    out = `${out.slice(0, m.start)}@${name}${out.slice(m.start + Math.max(m.length, 1))}`;
  }
  // A mention signal-cli could not place still must not reach the agent as a bare U+FFFC.
  return { text: out.replaceAll(MENTION_MARK, ''), mentionsBot };
}

export function attachmentKind(mime: string | null | undefined): InboundAttachment['kind'] {
  if (mime?.startsWith('image/')) return 'image';
  if (mime?.startsWith('audio/')) return 'audio';
  if (mime?.startsWith('video/')) return 'video';
  return 'document';
}

export type SignalAttachmentRef = z.infer<typeof attachmentSchema>;

export type MappedEnvelope =
  | { kind: 'message'; message: InboundMessage; sender: string; attachments: SignalAttachmentRef[] }
  /** Someone started typing in this chat (a hint for `InboundSink.typing`). */
  | { kind: 'typing'; chatId: string }
  | { kind: 'ignored'; reason: string };

/** The params of a `receive` notification, however the daemon wrapped them. */
export function receiveParams(raw: unknown): unknown {
  let value = raw;
  // Some SSE versions carry the whole notification; manual-receive subscriptions wrap it as {subscription, result}.
  if (isRecord(value) && value.method === 'receive') value = value.params;
  if (isRecord(value) && isRecord(value.result) && 'envelope' in value.result) value = value.result;
  return value;
}

/** A `receive` notification's params as pincer's inbound message, or why it is not one. */
export function mapEnvelope(
  raw: unknown,
  self: SignalSelf,
  assistantName: string,
  groupNames: ReadonlyMap<string, string> = new Map(),
): MappedEnvelope {
  const parsed = receiveParamsSchema.safeParse(receiveParams(raw));
  if (!parsed.success) return { kind: 'ignored', reason: `unrecognised notification: ${parsed.error.issues[0]?.message ?? ''}` };
  const { envelope: env, account } = parsed.data;
  if (account && !isSelf(self, [account])) return { kind: 'ignored', reason: `for another account (${account})` };
  if (env.syncMessage !== undefined) return { kind: 'ignored', reason: "sync message from our own devices (our own sent messages' echo)" };
  if (env.receiptMessage !== undefined) return { kind: 'ignored', reason: 'receipt' };
  const sender = env.sourceNumber ?? env.sourceUuid ?? env.source;
  const typing = env.typingMessage;
  if (typing) {
    if (typing.action !== 'STARTED') return { kind: 'ignored', reason: `typing ${typing.action.toLowerCase()}` };
    if (!sender) return { kind: 'ignored', reason: 'typing notification without a sender' };
    if (isSelf(self, [env.sourceNumber, env.sourceUuid, env.source])) return { kind: 'ignored', reason: 'our own typing' };
    const target: SignalTarget = typing.groupId ? { kind: 'group', groupId: typing.groupId } : { kind: 'direct', recipient: sender };
    return { kind: 'typing', chatId: signalChatId(target) };
  }
  const data = env.dataMessage;
  if (!data) return { kind: 'ignored', reason: 'no data message (edit, story, call or other)' };
  if (!sender) return { kind: 'ignored', reason: 'no sender' };
  if (isSelf(self, [env.sourceNumber, env.sourceUuid, env.source])) return { kind: 'ignored', reason: 'our own message (echo)' };
  if (data.reaction !== undefined) return { kind: 'ignored', reason: 'reaction' };
  if (data.remoteDelete !== undefined) return { kind: 'ignored', reason: 'remote delete' };
  const attachments = (data.attachments ?? []).filter((a) => a.id);
  const rawText = data.message ?? '';
  if (!rawText && attachments.length === 0) return { kind: 'ignored', reason: 'no text and no attachment (sticker, group update…)' };
  const { text, mentionsBot: mentioned } = applyMentions(rawText, data.mentions ?? [], self, assistantName);
  const quotesUs = !!data.quote && isSelf(self, [data.quote.authorNumber, data.quote.authorUuid, data.quote.author]);
  const group = data.groupInfo;
  const senderName = env.sourceName?.trim() || sender;
  const chatName = group ? (group.groupName ?? groupNames.get(group.groupId)) : senderName;
  const message: InboundMessage = {
    chatId: signalChatId(group ? { kind: 'group', groupId: group.groupId } : { kind: 'direct', recipient: sender }),
    channel: 'signal',
    platformId: `${sender}:${data.timestamp}`,
    senderId: `${PREFIX}${sender}`,
    senderName,
    text,
    sentAt: data.timestamp,
    isGroup: !!group,
    ...(chatName ? { chatName } : {}),
    ...(mentioned || quotesUs ? { mentionsBot: true } : {}),
  };
  return { kind: 'message', message, sender, attachments };
}

const FAILURE_TEXT: Record<string, string> = {
  UNREGISTERED_FAILURE: 'not registered on Signal',
  IDENTITY_FAILURE: 'safety number changed (untrusted identity: trust it with `signal-cli trust`)',
  NETWORK_FAILURE: 'network failure',
  RATE_LIMIT_FAILURE: 'rate limited',
  INVALID_PRE_KEY_FAILURE: 'invalid pre-key',
};

function describeFailure(r: SendResult): string {
  const who = r.recipientAddress?.number ?? r.recipientAddress?.uuid ?? 'unknown recipient';
  let why = FAILURE_TEXT[r.type] ?? r.type;
  if (r.token) why += ', a captcha challenge is required (`signal-cli submitRateLimitChallenge`)';
  if (r.retryAfterSeconds != null) why += `, retry after ${r.retryAfterSeconds} s`;
  return `${who}: ${why}`;
}

/** Any recipient whose result is not SUCCESS fails the send; a rate limit that says when becomes a RateLimitedError. */
export function sendFailure(results: readonly SendResult[]): Error | undefined {
  const failed = results.filter((r) => r.type !== 'SUCCESS');
  if (failed.length === 0) return undefined;
  const detail = `Signal did not deliver to ${failed.length} of ${results.length} recipient(s): ${failed.map(describeFailure).join('; ')}`;
  const limited = failed.filter((r) => r.type === 'RATE_LIMIT_FAILURE' || !!r.token);
  const waits = limited.flatMap((r) => (r.retryAfterSeconds != null && r.retryAfterSeconds >= 0 ? [r.retryAfterSeconds] : []));
  if (limited.length > 0 && waits.length > 0) return new RateLimitedError(Math.max(...waits) * 1000, detail);
  return new Error(detail);
}

/** An error answer of signal-cli's JSON-RPC. */
export class SignalRpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
    readonly data: unknown,
  ) {
    super(message);
  }
}

/** signal-cli's JSON-RPC code for a send refused by rate limiting. */
const RATE_LIMIT_ERROR = -5;

/** A send's error answer as what the outbox understands: failing recipients named, rate limits with their wait. */
export function sendError(err: unknown): Error {
  if (!(err instanceof SignalRpcError)) return err instanceof Error ? err : new Error(String(err));
  const response = isRecord(err.data) ? sendResultSchema.safeParse(err.data.response) : undefined;
  const results = response?.success ? (response.data.results ?? []) : [];
  const failure = sendFailure(results);
  if (failure instanceof RateLimitedError)
    return new RateLimitedError(failure.retryAfterMs, `signal-cli: ${err.message}; ${failure.message}`);
  const suffix = failure ? `; ${failure.message}` : err.code === RATE_LIMIT_ERROR ? ' (rate limited; Signal gave no retry time)' : '';
  return new Error(`signal-cli: ${err.message}${suffix}`);
}

const MIME_BY_EXTENSION: Record<string, string> = {
  png: 'image/png',
  jpg: 'image/jpeg',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
  pdf: 'application/pdf',
  txt: 'text/plain',
  md: 'text/markdown',
  csv: 'text/csv',
  json: 'application/json',
  html: 'text/html',
  zip: 'application/zip',
  mp3: 'audio/mpeg',
  ogg: 'audio/ogg',
  m4a: 'audio/mp4',
  mp4: 'video/mp4',
};

/** A file as signal-cli's attachment data URI (`data:<mime>;filename=<name>;base64,<data>`). */
export function attachmentDataUri(file: { name: string; data: Buffer }): string {
  const ext = file.name.split('.').pop()?.toLowerCase() ?? '';
  const mime = MIME_BY_EXTENSION[ext] ?? 'application/octet-stream';
  const name = file.name.replace(/[;,\s]+/g, '_') || 'file';
  return `data:${mime};filename=${name};base64,${file.data.toString('base64')}`;
}

// ---- stream framing (exported for tests) ----

/** Splits a text stream into lines; a line longer than `maxChars` is dropped, and its tail kept to name the call it answered. */
export class LineSplitter {
  #buf = '';
  #skipping = false;
  #tail = '';
  constructor(readonly maxChars: number) {}

  feed(chunk: string): Array<{ line: string } | { overflow: true; tail: string }> {
    const out: Array<{ line: string } | { overflow: true; tail: string }> = [];
    let rest = chunk;
    for (;;) {
      const nl = rest.indexOf('\n');
      const piece = nl === -1 ? rest : rest.slice(0, nl);
      if (this.#skipping) this.#tail = (this.#tail + piece).slice(-256);
      else this.#buf += piece;
      if (!this.#skipping && this.#buf.length > this.maxChars) {
        this.#skipping = true;
        this.#tail = this.#buf.slice(-256);
        this.#buf = '';
      }
      if (nl === -1) return out;
      if (this.#skipping) out.push({ overflow: true, tail: this.#tail });
      else if (this.#buf.trim()) out.push({ line: this.#buf.replace(/\r$/, '') });
      this.#buf = '';
      this.#tail = '';
      this.#skipping = false;
      rest = rest.slice(nl + 1);
    }
  }
}

export interface SseEvent {
  event: string;
  data: string;
  id?: string;
}

/** A Server-Sent Events parser (the WHATWG format: `field: value` lines, a blank line ends an event). */
export class SseParser {
  #buf = '';
  #data: string[] = [];
  #event = '';
  #id: string | undefined;
  constructor(readonly maxChars: number) {}

  feed(chunk: string): SseEvent[] {
    this.#buf += chunk;
    const out: SseEvent[] = [];
    let nl = this.#buf.indexOf('\n');
    while (nl !== -1) {
      const line = this.#buf.slice(0, nl).replace(/\r$/, '');
      this.#buf = this.#buf.slice(nl + 1);
      this.#line(line, out);
      nl = this.#buf.indexOf('\n');
    }
    const pending = this.#buf.length + this.#data.reduce((n, d) => n + d.length, 0);
    if (pending > this.maxChars) throw new Error(`an SSE event exceeded ${this.maxChars} characters`);
    return out;
  }

  #line(line: string, out: SseEvent[]): void {
    if (line === '') {
      if (this.#data.length > 0)
        out.push({ event: this.#event || 'message', data: this.#data.join('\n'), ...(this.#id ? { id: this.#id } : {}) });
      this.#data = [];
      this.#event = '';
      this.#id = undefined;
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    const value = colon === -1 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'data') this.#data.push(value);
    else if (field === 'event') this.#event = value;
    else if (field === 'id' && !value.includes('\0')) this.#id = value;
  }
}

// ---- transports ----

interface RpcTransport {
  /** Connects, and reconnects with backoff whenever the connection drops, until stop(). */
  start(onReceive: (params: unknown) => void): void;
  /** Settles after the first connection attempt, whatever its outcome. */
  readonly firstAttempt: Promise<void>;
  call(method: string, params: Record<string, unknown>, opts: { timeoutMs: number; maxResponseChars?: number }): Promise<unknown>;
  state(): ConnectionState;
  stop(): Promise<void>;
}

interface TransportOptions {
  log: Logger;
  minDelayMs: number;
  maxDelayMs: number;
  /** Longest single message (line or event) accepted from the daemon. */
  maxMessageChars: number;
}

class Backoff {
  #attempt = 0;
  constructor(
    readonly minMs: number,
    readonly maxMs: number,
  ) {}
  /** Doubles each time up to the cap; a random half of it is jitter, so many clients do not come back in step. */
  next(): number {
    const base = Math.min(this.maxMs, this.minMs * 2 ** Math.min(this.#attempt++, 30));
    return Math.round(base / 2 + (Math.random() * base) / 2);
  }
  reset(): void {
    this.#attempt = 0;
  }
  get attempts(): number {
    return this.#attempt;
  }
}

/** Routes a parsed JSON-RPC message: notifications to `onReceive`, answers to their pending call. */
function routeRpcMessage(
  value: unknown,
  onReceive: (params: unknown) => void,
  answer: (id: string, outcome: { result: unknown } | { error: SignalRpcError }) => void,
  log: Logger,
): void {
  const msg = rpcMessageSchema.safeParse(value);
  if (!msg.success) {
    log.warn({ issue: msg.error.issues[0]?.message }, 'signal-cli sent something that is not JSON-RPC; ignored');
    return;
  }
  if (msg.data.method) {
    if (msg.data.method === 'receive') onReceive(msg.data.params);
    return;
  }
  if (msg.data.id === null || msg.data.id === undefined) {
    if (msg.data.error) log.warn({ error: msg.data.error }, 'signal-cli reported an error for no request');
    return;
  }
  const { error } = msg.data;
  answer(String(msg.data.id), error ? { error: new SignalRpcError(error.code, error.message, error.data) } : { result: msg.data.result });
}

/** First-attempt bookkeeping shared by both transports. */
function settleOnce(): { promise: Promise<void>; settle: () => void } {
  let settle: () => void = () => {};
  const promise = new Promise<void>((resolve) => {
    settle = resolve;
  });
  return { promise, settle };
}

/** A failure the transport itself names (timeout, oversize, stopped), passed on as it is. */
class TransportError extends Error {}

interface Pending {
  method: string;
  resolve(value: unknown): void;
  reject(err: Error): void;
  timer: NodeJS.Timeout;
}

/** `daemon --tcp`: one socket carries calls, answers and notifications, a JSON object per line. */
class TcpTransport implements RpcTransport {
  readonly firstAttempt: Promise<void>;
  readonly #settleFirst: () => void;
  readonly #host: string;
  readonly #port: number;
  readonly #o: TransportOptions;
  readonly #backoff: Backoff;
  readonly #pending = new Map<string, Pending>();
  readonly #connectWaiters = new Set<() => void>();
  #socket: net.Socket | undefined;
  #connected = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #nextId = 1;
  #onReceive: (params: unknown) => void = () => {};

  constructor(host: string, port: number, o: TransportOptions) {
    this.#host = host;
    this.#port = port;
    this.#o = o;
    this.#backoff = new Backoff(o.minDelayMs, o.maxDelayMs);
    const first = settleOnce();
    this.firstAttempt = first.promise;
    this.#settleFirst = first.settle;
  }

  start(onReceive: (params: unknown) => void): void {
    this.#onReceive = onReceive;
    this.#connect();
  }

  state(): ConnectionState {
    return this.#stopped ? 'disconnected' : this.#connected ? 'connected' : 'connecting';
  }

  #connect(): void {
    if (this.#stopped) return;
    const { log } = this.#o;
    const socket = net.createConnection({ host: this.#host, port: this.#port });
    this.#socket = socket;
    const lines = new LineSplitter(this.#o.maxMessageChars);
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.setNoDelay(true);
      // signal-cli sends nothing while no message comes: keepalive notices a peer that vanished.
      socket.setKeepAlive(true, 30_000);
      this.#connected = true;
      const after = this.#backoff.attempts;
      this.#backoff.reset();
      log.info({ url: `tcp://${this.#host}:${this.#port}`, ...(after > 0 ? { afterAttempts: after } : {}) }, 'connected to signal-cli');
      this.#settleFirst();
      for (const wake of this.#connectWaiters) wake();
    });
    socket.on('data', (chunk: string) => {
      for (const piece of lines.feed(chunk)) {
        if ('overflow' in piece) {
          this.#overflow(piece.tail);
          continue;
        }
        let value: unknown;
        try {
          value = JSON.parse(piece.line);
        } catch {
          log.warn({ line: piece.line.slice(0, 200) }, 'signal-cli sent a line that is not JSON; ignored');
          continue;
        }
        routeRpcMessage(value, this.#onReceive, (id, outcome) => this.#answer(id, outcome), log);
      }
    });
    socket.on('error', (err) => log.debug({ err: err.message }, 'signal-cli socket error'));
    socket.on('close', () => {
      if (this.#socket !== socket) return;
      this.#socket = undefined;
      const wasConnected = this.#connected;
      this.#connected = false;
      for (const [id, p] of this.#pending) {
        clearTimeout(p.timer);
        p.reject(new Error(`the connection to signal-cli closed before it answered ${p.method}`));
        this.#pending.delete(id);
      }
      this.#settleFirst();
      if (this.#stopped) return;
      const delay = this.#backoff.next();
      log.warn(
        { url: `tcp://${this.#host}:${this.#port}`, attempt: this.#backoff.attempts, retryInMs: delay },
        wasConnected ? 'connection to signal-cli lost; reconnecting' : 'signal-cli is not reachable; retrying',
      );
      this.#timer = setTimeout(() => this.#connect(), delay);
    });
  }

  /** A line too long to keep: fail the call it answered (its id ends the line), leave the rest of the stream intact. */
  #overflow(tail: string): void {
    const id = /"id"\s*:\s*"?([^",}]+)"?\s*}\s*$/.exec(tail)?.[1];
    this.#o.log.warn({ id, limit: this.#o.maxMessageChars }, 'signal-cli sent a message too large to keep; dropped');
    if (id) this.#answer(id, { error: new SignalRpcError(-32000, `answer larger than ${this.#o.maxMessageChars} characters`, null) });
  }

  #answer(id: string, outcome: { result: unknown } | { error: SignalRpcError }): void {
    const p = this.#pending.get(id);
    if (!p) return;
    this.#pending.delete(id);
    clearTimeout(p.timer);
    if ('error' in outcome) p.reject(outcome.error);
    else p.resolve(outcome.result);
  }

  async #waitConnected(ms: number): Promise<void> {
    if (this.#connected) return;
    if (this.#stopped) throw new Error('the signal channel is stopped');
    await new Promise<void>((resolve, reject) => {
      const done = () => {
        clearTimeout(timer);
        this.#connectWaiters.delete(done);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#connectWaiters.delete(done);
        reject(new Error(`signal-cli is not reachable at tcp://${this.#host}:${this.#port}`));
      }, ms);
      this.#connectWaiters.add(done);
    });
  }

  async call(method: string, params: Record<string, unknown>, opts: { timeoutMs: number }): Promise<unknown> {
    await this.#waitConnected(Math.min(CONNECT_WAIT_MS, opts.timeoutMs));
    const socket = this.#socket;
    if (!socket) throw new Error(`signal-cli is not reachable at tcp://${this.#host}:${this.#port}`);
    const id = String(this.#nextId++);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`signal-cli did not answer ${method} within ${opts.timeoutMs} ms`));
      }, opts.timeoutMs);
      this.#pending.set(id, { method, resolve, reject, timer });
      socket.write(`${JSON.stringify({ jsonrpc: '2.0', id, method, params })}\n`);
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#socket?.destroy();
    // Calls waiting for a connection give up now (they find no socket) rather than hold the process open.
    for (const wake of this.#connectWaiters) wake();
    this.#settleFirst();
  }
}

/** `daemon --http`: calls are POSTs to /api/v1/rpc; received messages come on the /api/v1/events SSE stream. */
class HttpTransport implements RpcTransport {
  readonly firstAttempt: Promise<void>;
  readonly #settleFirst: () => void;
  readonly #base: URL;
  readonly #o: TransportOptions;
  readonly #backoff: Backoff;
  readonly #inFlight = new Set<http.ClientRequest>();
  #events: http.ClientRequest | undefined;
  #connected = false;
  #stopped = false;
  #timer: NodeJS.Timeout | undefined;
  #nextId = 1;
  /** signal-cli keeps recent events and replays those after this id when we come back. */
  #lastEventId: string | undefined;
  #onReceive: (params: unknown) => void = () => {};

  constructor(base: URL, o: TransportOptions) {
    this.#base = new URL(base.href.endsWith('/') ? base.href : `${base.href}/`);
    this.#o = o;
    this.#backoff = new Backoff(o.minDelayMs, o.maxDelayMs);
    const first = settleOnce();
    this.firstAttempt = first.promise;
    this.#settleFirst = first.settle;
  }

  start(onReceive: (params: unknown) => void): void {
    this.#onReceive = onReceive;
    this.#connectEvents();
  }

  state(): ConnectionState {
    return this.#stopped ? 'disconnected' : this.#connected ? 'connected' : 'connecting';
  }

  #request(url: URL, options: http.RequestOptions): http.ClientRequest {
    // No keep-alive agent: nothing lingers after stop(), and a restarted daemon never meets a stale socket.
    return (url.protocol === 'https:' ? https : http).request(url, { ...options, agent: false });
  }

  #connectEvents(): void {
    if (this.#stopped) return;
    const { log } = this.#o;
    const url = new URL('api/v1/events', this.#base);
    const headers: Record<string, string> = { accept: 'text/event-stream', 'cache-control': 'no-cache' };
    if (this.#lastEventId) headers['last-event-id'] = this.#lastEventId;
    const req = this.#request(url, { method: 'GET', headers });
    this.#events = req;
    let closed = false;
    let wasConnected = false;
    const onClosed = (why: string) => {
      if (closed) return;
      closed = true;
      this.#connected = false;
      this.#settleFirst();
      if (this.#stopped || this.#events !== req) return;
      this.#events = undefined;
      const delay = this.#backoff.next();
      log.warn(
        { url: url.href, attempt: this.#backoff.attempts, retryInMs: delay, why },
        wasConnected ? 'signal-cli event stream lost; reconnecting' : 'signal-cli is not reachable; retrying',
      );
      this.#timer = setTimeout(() => this.#connectEvents(), delay);
    };
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        res.resume();
        req.destroy();
        onClosed(`HTTP ${res.statusCode}`);
        return;
      }
      res.socket.setKeepAlive(true, 30_000);
      res.setEncoding('utf8');
      wasConnected = true;
      this.#connected = true;
      const after = this.#backoff.attempts;
      this.#backoff.reset();
      log.info({ url: url.href, ...(after > 0 ? { afterAttempts: after } : {}) }, 'connected to signal-cli');
      this.#settleFirst();
      const parser = new SseParser(this.#o.maxMessageChars);
      res.on('data', (chunk: string) => {
        let events: SseEvent[];
        try {
          events = parser.feed(chunk);
        } catch (err) {
          log.warn({ err: (err as Error).message }, 'signal-cli event stream broke its framing; reconnecting');
          req.destroy();
          return;
        }
        for (const ev of events) {
          if (ev.id) this.#lastEventId = ev.id;
          if (ev.event !== 'receive' && ev.event !== 'message') continue;
          let value: unknown;
          try {
            value = JSON.parse(ev.data);
          } catch {
            log.warn({ data: ev.data.slice(0, 200) }, 'signal-cli sent an event that is not JSON; ignored');
            continue;
          }
          this.#onReceive(receiveParams(value));
        }
      });
      res.on('error', (err) => onClosed(err.message));
      res.on('close', () => onClosed('stream ended'));
    });
    req.on('error', (err) => onClosed(err.message));
    req.end();
  }

  async call(method: string, params: Record<string, unknown>, opts: { timeoutMs: number; maxResponseChars?: number }): Promise<unknown> {
    if (this.#stopped) throw new Error('the signal channel is stopped');
    const id = String(this.#nextId++);
    const body = JSON.stringify({ jsonrpc: '2.0', id, method, params });
    const url = new URL('api/v1/rpc', this.#base);
    const limit = opts.maxResponseChars ?? this.#o.maxMessageChars;
    const { status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = this.#request(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), accept: 'application/json' },
      });
      this.#inFlight.add(req);
      const timer = setTimeout(
        () => req.destroy(new TransportError(`signal-cli did not answer ${method} within ${opts.timeoutMs} ms`)),
        opts.timeoutMs,
      );
      const finish = () => {
        clearTimeout(timer);
        this.#inFlight.delete(req);
      };
      req.on('response', (res) => {
        res.setEncoding('utf8');
        let text = '';
        res.on('data', (chunk: string) => {
          text += chunk;
          if (text.length > limit) req.destroy(new TransportError(`signal-cli's answer to ${method} is larger than ${limit} characters`));
        });
        res.on('end', () => {
          finish();
          resolve({ status: res.statusCode ?? 0, text });
        });
        res.on('error', (err) => {
          finish();
          reject(err);
        });
      });
      req.on('error', (err) => {
        finish();
        reject(err instanceof TransportError ? err : new Error(`signal-cli is not reachable at ${this.#base.origin}: ${err.message}`));
      });
      req.end(body);
    });
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch {
      throw new Error(`signal-cli answered ${method} with HTTP ${status}: ${text.slice(0, 200)}`);
    }
    let outcome: { result: unknown } | { error: SignalRpcError } | undefined;
    routeRpcMessage(
      value,
      () => {},
      (_id, o) => {
        outcome = o;
      },
      this.#o.log,
    );
    if (!outcome) throw new Error(`signal-cli answered ${method} with HTTP ${status} and no JSON-RPC response`);
    if ('error' in outcome) throw outcome.error;
    return outcome.result;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#events?.destroy();
    for (const req of this.#inFlight) req.destroy(new TransportError('the signal channel is stopped'));
    this.#connected = false;
    this.#settleFirst();
  }
}

/** Which transport a URL names; a URL naming none is a configuration error. */
function transportFor(url: string): { kind: 'tcp'; host: string; port: number } | { kind: 'http'; base: URL } {
  const parsed = new URL(url);
  if (parsed.protocol === 'tcp:') {
    const port = Number(parsed.port);
    if (!parsed.hostname || !Number.isInteger(port) || port < 1)
      throw new Error(`SIGNAL_CLI_URL ${url} needs a host and a port (tcp://127.0.0.1:7583)`);
    return { kind: 'tcp', host: parsed.hostname.replace(/^\[|\]$/g, ''), port };
  }
  if (parsed.protocol === 'http:' || parsed.protocol === 'https:') return { kind: 'http', base: parsed };
  throw new Error(`SIGNAL_CLI_URL ${url}: use http://host:port (daemon --http) or tcp://host:port (daemon --tcp)`);
}

function createTransport(url: string, o: TransportOptions): RpcTransport {
  const t = transportFor(url);
  return t.kind === 'tcp' ? new TcpTransport(t.host, t.port, o) : new HttpTransport(t.base, o);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

// ---- the channel ----

interface Typing {
  timer: NodeJS.Timeout;
  last: Promise<unknown>;
}

export class SignalChannel implements Channel {
  readonly name = 'signal';
  /** Signal sends longer texts as a "long text" attachment; parts of at most 2000 stay plain messages every client shows. */
  readonly maxTextLength = 2000;
  readonly #o: SignalChannelOptions;
  readonly #log: Logger;
  readonly #groupNames = new Map<string, string>();
  readonly #groupLookups = new Set<string>();
  readonly #typing = new Map<string, Typing>();
  /** Messages we quoted already: the later parts of a long reply do not quote it again. */
  readonly #quoted = new Set<string>();
  #rpc: RpcTransport | undefined;
  #sink: InboundSink | undefined;
  #uuid: string | undefined;
  #inbound: Promise<void> = Promise.resolve();
  #stopped = false;

  constructor(options: SignalChannelOptions) {
    this.#o = options;
    this.#log = options.log;
    this.#uuid = options.accountUuid;
    // A bad URL is a configuration error: say so at once.
    transportFor(options.url);
  }

  owns(chatId: string): boolean {
    return chatId.startsWith(PREFIX);
  }

  state(): ConnectionState {
    return this.#rpc?.state() ?? 'disconnected';
  }

  get #self(): SignalSelf {
    return { account: this.#o.account, uuid: this.#uuid };
  }

  get #timeout(): number {
    return this.#o.callTimeoutMs ?? 60_000;
  }

  /** Resolves once the first connection attempt is done; retries in the background when signal-cli is down. */
  async start(sink: InboundSink): Promise<void> {
    this.#sink = sink;
    this.#stopped = false;
    // Room for the largest attachment as base64 in one JSON-RPC answer.
    const maxMessageChars = Math.max(MIN_MESSAGE_CHARS, Math.ceil((sink.maxMediaBytes * 4) / 3) + 1024 * 1024);
    const rpc = createTransport(this.#o.url, {
      log: this.#log,
      minDelayMs: this.#o.reconnectMinMs ?? 1_000,
      maxDelayMs: this.#o.reconnectMaxMs ?? 60_000,
      maxMessageChars,
    });
    this.#rpc = rpc;
    rpc.start((params) => this.#enqueue(params));
    await rpc.firstAttempt;
    if (rpc.state() !== 'connected') {
      this.#log.warn({ url: this.#o.url }, 'signal-cli is not reachable yet; pincer keeps trying in the background');
      return;
    }
    try {
      await this.#refreshGroups();
    } catch (err) {
      if (err instanceof SignalRpcError && err.code === -32602 && /account/i.test(err.message)) {
        await this.stop();
        throw new Error(
          `signal-cli at ${this.#o.url} does not have the account ${this.#o.account} (${err.message}): register or link it first (docs/channels/signal.md)`,
        );
      }
      this.#log.warn({ err: (err as Error).message }, 'listing Signal groups failed; group names come with their messages');
    }
  }

  async #refreshGroups(): Promise<void> {
    const rpc = this.#rpc;
    if (!rpc) return;
    const result = await rpc.call('listGroups', { account: this.#o.account }, { timeoutMs: SMALL_CALL_TIMEOUT_MS });
    const groups = groupsSchema.safeParse(result);
    if (!groups.success) throw new Error(`unexpected listGroups answer: ${groups.error.issues[0]?.message ?? ''}`);
    for (const g of groups.data) if (g.name) this.#groupNames.set(g.id, g.name);
  }

  #enqueue(params: unknown): void {
    // One at a time, in order: a redelivery must find its first copy stored.
    this.#inbound = this.#inbound
      .then(() => this.#receive(params))
      .catch((err: unknown) => this.#log.error({ err }, 'inbound Signal message failed'));
  }

  async #receive(raw: unknown): Promise<void> {
    const sink = this.#sink;
    if (!sink || this.#stopped) return;
    this.#learnSelf(raw);
    let mapped = mapEnvelope(raw, this.#self, this.#o.assistantName, this.#groupNames);
    if (mapped.kind === 'typing') {
      try {
        sink.typing(mapped.chatId);
      } catch (err) {
        this.#log.debug({ err: (err as Error).message, chatId: mapped.chatId }, 'Signal typing hint not passed on');
      }
      return;
    }
    if (mapped.kind === 'ignored') {
      this.#log.debug({ reason: mapped.reason }, 'Signal event ignored');
      return;
    }
    const target = parseSignalChatId(mapped.message.chatId);
    if (target?.kind === 'group' && !mapped.message.chatName && !this.#groupLookups.has(target.groupId)) {
      // Older signal-cli versions do not name the group in the message: ask once.
      this.#groupLookups.add(target.groupId);
      await this.#refreshGroups().catch((err: unknown) => this.#log.debug({ err }, 'listGroups failed'));
      mapped = mapEnvelope(raw, this.#self, this.#o.assistantName, this.#groupNames);
      if (mapped.kind !== 'message') return;
    }
    const { message, attachments, sender } = mapped;
    const files: InboundAttachment[] = [];
    const notes: string[] = [];
    if (attachments.length > 0 && sink.isJoined(message.chatId) && !sink.seen(message.chatId, message.platformId)) {
      for (const ref of attachments) {
        const got = await this.#download(ref, sink.maxMediaBytes);
        if ('file' in got) files.push(got.file);
        else notes.push(got.note);
      }
    }
    const text = notes.length > 0 ? `${message.text}${message.text ? '\n' : ''}${notes.join('\n')}` : message.text;
    const result = await sink.ingest({ ...message, text, ...(files.length > 0 ? { attachments: files } : {}) });
    if (result.engaged && !result.duplicate) this.#readReceipt(sender, message.sentAt);
  }

  /** Our own devices' messages carry our UUID, which mentions and quotes may name us by. */
  #learnSelf(raw: unknown): void {
    if (this.#uuid) return;
    const parsed = receiveParamsSchema.safeParse(receiveParams(raw));
    const env = parsed.success ? parsed.data.envelope : undefined;
    if (env?.sourceUuid && env.sourceNumber === this.#o.account) {
      this.#uuid = env.sourceUuid;
      this.#log.debug({ uuid: env.sourceUuid }, 'learned our Signal UUID');
    }
  }

  /** One attachment, bounded by `max` bytes: the declared size first, then what actually comes. */
  async #download(ref: SignalAttachmentRef, max: number): Promise<{ file: InboundAttachment } | { note: string }> {
    const label = ref.filename ?? ref.contentType ?? 'attachment';
    const tooLarge = (size: number) => ({
      note: `[${label} (${(size / 1024 / 1024).toFixed(1)} MB) was not downloaded: larger than ${Math.round(max / 1024 / 1024)} MB]`,
    });
    if (ref.size != null && ref.size > max) return tooLarge(ref.size);
    const id = ref.id;
    if (!id) return { note: `[${label} could not be downloaded: no attachment id]` };
    try {
      const data = this.#o.attachmentsDir ? await this.#readAttachmentFile(id, max) : await this.#fetchAttachment(id, max);
      if (!data) return tooLarge(ref.size ?? max + 1);
      const file: InboundAttachment = { kind: attachmentKind(ref.contentType), data };
      if (ref.filename) file.name = ref.filename;
      if (ref.contentType) file.mime = ref.contentType;
      return { file };
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, id }, 'Signal attachment download failed');
      return { note: `[${label} could not be downloaded: ${(err as Error).message}]` };
    }
  }

  async #fetchAttachment(id: string, max: number): Promise<Buffer | undefined> {
    const rpc = this.#rpc;
    if (!rpc) throw new Error('the signal channel is not started');
    const limit = Math.ceil((max * 4) / 3) + 64 * 1024;
    let result: unknown;
    try {
      result = await rpc.call('getAttachment', { account: this.#o.account, id }, { timeoutMs: this.#timeout, maxResponseChars: limit });
    } catch (err) {
      if ((err as Error).message.includes('larger than')) return undefined;
      throw err;
    }
    const parsed = attachmentDataSchema.safeParse(result);
    if (!parsed.success) throw new Error('unexpected getAttachment answer');
    const base64 = typeof parsed.data === 'string' ? parsed.data : parsed.data.data;
    if (base64.length > limit) return undefined;
    const data = Buffer.from(base64, 'base64');
    return data.length > max ? undefined : data;
  }

  async #readAttachmentFile(id: string, max: number): Promise<Buffer | undefined> {
    if (!/^[A-Za-z0-9._-]+$/.test(id) || id.startsWith('.')) throw new Error(`unexpected attachment id ${id}`);
    const dir = this.#o.attachmentsDir ?? '';
    const handle = await open(join(dir, id), 'r');
    try {
      // Read one byte past the limit: if it comes, the file is too large, whatever it said.
      const buf = Buffer.alloc(max + 1);
      let n = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buf, n, buf.length - n, n);
        if (bytesRead === 0) break;
        n += bytesRead;
        if (n > max) return undefined;
      }
      return buf.subarray(0, n);
    } finally {
      await handle.close();
    }
  }

  #readReceipt(sender: string, timestamp: number): void {
    this.#rpc
      ?.call(
        'sendReceipt',
        { account: this.#o.account, recipient: sender, targetTimestamp: [timestamp], type: 'read' },
        { timeoutMs: SMALL_CALL_TIMEOUT_MS },
      )
      .catch((err: unknown) => this.#log.debug({ err: (err as Error).message }, 'read receipt failed'));
  }

  #targetParams(chatId: string): Record<string, unknown> {
    const target = parseSignalChatId(chatId);
    if (!target) throw new Error(`${chatId} is not a Signal chat`);
    return target.kind === 'group' ? { groupId: target.groupId } : { recipient: [target.recipient] };
  }

  readonly #parts = lastRendered((markdown: string) => signalParts(markdown, this.maxTextLength));

  partsOf(markdown: string): number {
    return this.#parts(markdown).length;
  }

  async send(chatId: string, out: Outbound): Promise<{ platformId: string }> {
    const rpc = this.#rpc;
    if (!rpc) throw new Error('the signal channel is not started');
    const sendOne = async (part: SignalText | undefined, first: boolean) => {
      const params: Record<string, unknown> = { account: this.#o.account, ...this.#targetParams(chatId) };
      if (part?.text) params.message = part.text;
      if (part?.textStyle.length) params.textStyle = part.textStyle;
      if (out.file && first) params.attachments = [attachmentDataUri(out.file)];
      // Only a reply's first message quotes the question.
      const quote = first ? this.#quoteFor(chatId, out) : undefined;
      if (quote) {
        params.quoteTimestamp = quote.timestamp;
        params.quoteAuthor = quote.author;
      }
      let result: unknown;
      try {
        result = await rpc.call('send', params, { timeoutMs: this.#timeout });
      } catch (err) {
        throw sendError(err);
      }
      const parsed = sendResultSchema.safeParse(result);
      if (!parsed.success || parsed.data.timestamp == null)
        throw new Error(`signal-cli answered send with something unexpected: ${JSON.stringify(result).slice(0, 200)}`);
      const failure = sendFailure(parsed.data.results ?? []);
      if (failure) throw failure;
      if (quote && out.replyTo) this.#rememberQuoted(`${chatId} ${out.replyTo.platformId}`);
      return `${this.#o.account}:${parsed.data.timestamp}`;
    };
    // A file's caption is one message with it, however long (Signal sends a long text as its own attachment).
    if (out.file) return { platformId: await sendOne(signalParts(out.text, Number.MAX_SAFE_INTEGER)[0], true) };
    return sendParts(this.#parts(out.text), out.part, sendOne);
  }

  #quoteFor(chatId: string, out: Outbound): { author: string; timestamp: number } | undefined {
    const mode = this.#o.quoteReplies ?? 'groups';
    if (!out.replyTo || mode === 'never') return undefined;
    if (mode === 'groups' && !chatId.startsWith(GROUP_PREFIX)) return undefined;
    if (this.#quoted.has(`${chatId} ${out.replyTo.platformId}`)) return undefined;
    return parsePlatformId(out.replyTo.platformId);
  }

  #rememberQuoted(key: string): void {
    this.#quoted.add(key);
    if (this.#quoted.size > 1000) {
      const oldest = this.#quoted.values().next().value;
      if (oldest !== undefined) this.#quoted.delete(oldest);
    }
  }

  async setTyping(chatId: string, on: boolean): Promise<void> {
    const rpc = this.#rpc;
    if (!rpc || this.#stopped || !parseSignalChatId(chatId)) return;
    const target = this.#targetParams(chatId);
    const typing = (stop: boolean) =>
      rpc
        .call('sendTyping', { account: this.#o.account, ...target, ...(stop ? { stop: true } : {}) }, { timeoutMs: SMALL_CALL_TIMEOUT_MS })
        .catch((err: unknown) => this.#log.debug({ err: (err as Error).message, chatId }, 'typing indicator failed'));
    const current = this.#typing.get(chatId);
    if (on) {
      if (current) return;
      const entry: Typing = {
        timer: setInterval(() => {
          entry.last = typing(false);
        }, this.#o.typingRefreshMs ?? 10_000),
        last: typing(false),
      };
      this.#typing.set(chatId, entry);
      await entry.last;
      return;
    }
    if (!current) return;
    clearInterval(current.timer);
    this.#typing.delete(chatId);
    // After the start that may still be in flight, so the stop is the last word.
    await current.last;
    await typing(true);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    for (const t of this.#typing.values()) clearInterval(t.timer);
    this.#typing.clear();
    await this.#rpc?.stop();
  }
}

// Slack through Bolt in Socket Mode: events arrive over a WebSocket the app opens itself (no public URL needed),
// replies go out through the Web API. Chats are `slack:<channel id>`; a channel message is answered in its thread.
import { App, type Logger as BoltLogger, LogLevel, SocketModeReceiver, webApi } from '@slack/bolt';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { readBounded } from './bounded-body.js';
import { lastRendered, sendParts } from './format/parts.js';
import { slackParts, slackSenderPrefix, toSlackMrkdwn } from './format/slack.js';
import { senderFace } from './sender-face.js';
import {
  type Channel,
  type ConnectionState,
  type InboundAttachment,
  type InboundMessage,
  type InboundSink,
  type Outbound,
  RateLimitedError,
} from './types.js';

export type SlackChannelOptions = { botToken: string; appToken: string; apiUrl: string } & {
  assistantName: string;
  log: Logger;
  /** First reconnect delay; it doubles up to `reconnectMaxMs` (both jittered). Default 1 s. */
  reconnectMinMs?: number;
  /** Default 60 s. */
  reconnectMaxMs?: number;
  /** How long one Web API call may take. Default 60 s. */
  requestTimeoutMs?: number;
  /** A sub-agent's picture: an address with `{name}` in it. Without it, an emoji per name. */
  senderAvatarUrl?: string;
};

const PREFIX = 'slack:';
/**
 * Slack truncates `text` past 40,000 characters, but its chat.postMessage docs advise at most 4,000 for best
 * results: longer replies go in parts of that length, which read well in a channel.
 */
const SLACK_READING_LENGTH = 4_000;
/** Socket Mode sends `hello` right after the WebSocket opens; a socket that stays silent is given up. */
const HELLO_TIMEOUT_MS = 20_000;
const STOP_TIMEOUT_MS = 5_000;
const STABLE_CONNECTION_MS = 30_000;
const LOOKUP_TIMEOUT_MS = 5_000;
const NAME_TTL_MS = 3_600_000;
/** Slack clears an assistant status after two minutes without a reply: refresh well before. */
const STATUS_REFRESH_MS = 60_000;
const STATUS_TEXT = 'is thinking…';
/** Threads the bot answered in: a later message there is addressed to it. Bounded, newest kept. */
const BOT_THREADS_KEPT = 2_000;
/** Message subtypes that are a person's own words; the rest (edits, joins, bots…) is not a new message. */
const USER_SUBTYPES = new Set(['file_share', 'thread_broadcast', 'me_message']);
/** Platform answers that mean a token is wrong, not that Slack is unreachable. */
const CONFIG_ERRORS = new Set([
  'invalid_auth',
  'not_authed',
  'account_inactive',
  'token_revoked',
  'token_expired',
  'team_disabled',
  'user_removed_from_team',
  'not_allowed_token_type',
  'missing_scope',
]);

// ---- Slack payloads (validated: they are parsed by hand) ----

const slackFile = z.object({
  id: z.string(),
  name: z.string().optional(),
  title: z.string().optional(),
  mimetype: z.string().optional(),
  size: z.number().optional(),
  url_private_download: z.string().optional(),
  url_private: z.string().optional(),
  mode: z.string().optional(),
});
export type SlackFile = z.infer<typeof slackFile>;

const slackMessageEvent = z.object({
  type: z.enum(['message', 'app_mention']),
  subtype: z.string().optional(),
  hidden: z.boolean().optional(),
  channel: z.string().min(1),
  channel_type: z.string().optional(),
  user: z.string().optional(),
  bot_id: z.string().optional(),
  text: z.string().optional(),
  ts: z.string().regex(/^\d+(\.\d+)?$/),
  thread_ts: z.string().optional(),
  parent_user_id: z.string().optional(),
  files: z.array(slackFile).optional(),
});
export type SlackMessageEvent = z.infer<typeof slackMessageEvent>;

const authTestAnswer = z.object({
  user_id: z.string().min(1),
  bot_id: z.string().min(1),
  team_id: z.string().optional(),
  // The Web API client puts Slack's `x-oauth-scopes` header (the token's scopes) here.
  response_metadata: z.object({ scopes: z.array(z.string()).optional() }).optional(),
});
const userInfoAnswer = z.object({
  user: z.object({
    name: z.string().optional(),
    real_name: z.string().optional(),
    profile: z.object({ display_name: z.string().optional(), real_name: z.string().optional() }).optional(),
  }),
});
const conversationInfoAnswer = z.object({ channel: z.object({ name: z.string().optional(), is_im: z.boolean().optional() }) });
const postMessageAnswer = z.object({ ts: z.string().min(1), message: z.object({ username: z.string().optional() }).optional() });
/** The scope that lets a bot post under another name and picture (chat.postMessage's `username`, `icon_*`). */
export const CUSTOMIZE_SCOPE = 'chat:write.customize';
/** A sub-agent's face when no picture address is configured: one of these, the same for the same name. */
const SENDER_EMOJI = [':fox_face:', ':owl:', ':octopus:', ':turtle:', ':penguin:', ':whale:', ':bee:', ':hedgehog:', ':otter:', ':parrot:'];
/** Slack cuts longer names; the sender is at most 64 characters anyway. */
const MAX_USERNAME = 80;
const scopeAnswer = z.object({ needed: z.string() });
const uploadAnswer = z.object({ files: z.array(z.object({ files: z.array(z.object({ id: z.string() })).optional() })) });

export interface BotIdentity {
  userId: string;
  botId: string;
}

/** A message event as pincer sees it, before names are looked up and files fetched. */
export interface MappedMessage {
  chatId: string;
  channelId: string;
  platformId: string;
  /** `slack:<user id>`, as sender allowlists name people. */
  senderId: string;
  userId: string;
  /** Slack's text, still with `<@U…>` mentions and `&amp;` escapes. */
  rawText: string;
  sentAt: number;
  isGroup: boolean;
  isDirect: boolean;
  mentionsBot: boolean;
  threadId?: string;
  files: SlackFile[];
}

export function parseMessageEvent(raw: unknown): SlackMessageEvent | undefined {
  const parsed = slackMessageEvent.safeParse(raw);
  return parsed.success ? parsed.data : undefined;
}

/**
 * Maps a `message` / `app_mention` event, or says why it is not one of a person's messages. `inBotThread` tells
 * whether the bot answered in a thread: a reply there is addressed to the bot, like a mention.
 */
export function mapMessageEvent(
  event: SlackMessageEvent,
  bot: BotIdentity,
  inBotThread: (channelId: string, threadTs: string) => boolean = () => false,
): MappedMessage | { ignored: string } {
  if (event.bot_id || event.subtype === 'bot_message') return { ignored: 'a bot message' };
  if (event.user === bot.userId) return { ignored: 'our own message' };
  if (event.hidden || (event.subtype !== undefined && !USER_SUBTYPES.has(event.subtype)))
    return { ignored: `subtype ${event.subtype ?? 'hidden'}` };
  if (!event.user) return { ignored: 'no sender' };
  const isDirect = event.channel_type ? event.channel_type === 'im' : event.channel.startsWith('D');
  const rawText = event.text ?? '';
  // A channel message is answered in its thread (a new one under it if it was not in one); a DM only in a thread it is in.
  const threadId = isDirect ? event.thread_ts : (event.thread_ts ?? event.ts);
  const mentionsBot =
    event.type === 'app_mention' ||
    new RegExp(`<@${escapeRegExp(bot.userId)}(\\|[^>]*)?>`).test(rawText) ||
    (event.thread_ts !== undefined && (event.parent_user_id === bot.userId || inBotThread(event.channel, event.thread_ts)));
  return {
    chatId: `${PREFIX}${event.channel}`,
    channelId: event.channel,
    platformId: event.ts,
    senderId: `${PREFIX}${event.user}`,
    userId: event.user,
    rawText,
    sentAt: Math.round(Number(event.ts) * 1000),
    isGroup: !isDirect,
    isDirect,
    mentionsBot,
    ...(threadId ? { threadId } : {}),
    files: (event.files ?? []).filter((f) => f.mode !== 'tombstone' && f.mode !== 'hidden_by_limit'),
  };
}

/** The user ids mentioned in Slack text (`<@U123>`), for looking their names up. */
export function mentionedUsers(text: string): string[] {
  return [...new Set([...text.matchAll(/<@([A-Z0-9]+)(?:\|[^>]*)?>/g)].map((m) => m[1] as string))];
}

/**
 * Slack's markup made readable: the bot's mention becomes `@<assistantName>` (so the trigger matches), other
 * mentions become `@name`, channel and link markup their label, and `&amp; &lt; &gt;` the characters.
 */
export function slackToPlainText(text: string, botUserId: string, assistantName: string, names: ReadonlyMap<string, string>): string {
  const marked = text.replace(/<([^<>]+)>/g, (_whole, inner: string) => {
    const bar = inner.indexOf('|');
    const target = bar < 0 ? inner : inner.slice(0, bar);
    const label = bar < 0 ? undefined : inner.slice(bar + 1);
    if (target.startsWith('@')) {
      const id = target.slice(1);
      return id === botUserId ? `@${assistantName}` : `@${names.get(id) ?? label ?? id}`;
    }
    if (target.startsWith('#')) return `#${label ?? target.slice(1)}`;
    if (target.startsWith('!')) {
      const special = target.slice(1).split('^')[0] ?? '';
      if (['here', 'channel', 'everyone'].includes(special)) return `@${special}`;
      return label ?? `@${special}`;
    }
    const url = target.startsWith('mailto:') ? target.slice('mailto:'.length) : target;
    return label && label !== url && label !== target ? `${label} (${url})` : url;
  });
  return marked.replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

export function attachmentKind(mime: string | undefined): InboundAttachment['kind'] {
  if (mime?.startsWith('image/')) return 'image';
  if (mime?.startsWith('audio/')) return 'audio';
  if (mime?.startsWith('video/')) return 'video';
  return 'document';
}

/** The delay before reconnect attempt `attempt` (0-based): doubling from `min` up to `max`, jittered to 50–100%. */
export function backoffDelay(attempt: number, minMs: number, maxMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** A failed Web API call as the outbox worker needs it: a 429 says when to come back, the rest what Slack said. */
export function slackFailure(method: string, err: unknown): Error {
  if (err instanceof webApi.WebAPIRateLimitedError)
    return new RateLimitedError(err.retryAfter * 1000, `slack ${method}: rate limited, retry after ${err.retryAfter} s`);
  if (err instanceof webApi.WebAPIPlatformError) {
    const needed = scopeAnswer.safeParse(err.data).data?.needed;
    return new Error(`slack ${method}: ${err.data.error}${needed ? ` (needs scope ${needed})` : ''}`);
  }
  if (err instanceof webApi.WebAPIHTTPError) return new Error(`slack ${method}: HTTP ${err.statusCode} ${err.statusMessage}`);
  if (err instanceof webApi.WebAPIRequestError) {
    // Node's fetch says only "fetch failed"; the cause says why (ECONNREFUSED, a timeout…).
    const cause: unknown = err.original.cause;
    const why = cause instanceof Error ? `: ${'code' in cause && typeof cause.code === 'string' ? cause.code : cause.message}` : '';
    return new Error(`slack ${method}: ${err.original.message}${why}`);
  }
  return new Error(`slack ${method}: ${err instanceof Error ? err.message : String(err)}`);
}

function platformErrorCode(err: unknown): string | undefined {
  return err instanceof webApi.WebAPIPlatformError ? err.data.error : undefined;
}

export type DownloadResult = { ok: true; data: Buffer } | { ok: false; reason: string };

/**
 * Fetches a Slack file with the bot token, never reading more than `maxBytes`. The token goes only to Slack's own
 * hosts (or the configured API's origin, for self-hosted gateways and tests).
 */
export async function downloadSlackFile(
  file: SlackFile,
  token: string,
  maxBytes: number,
  apiUrl: string,
  timeoutMs = 60_000,
): Promise<DownloadResult> {
  const url = file.url_private_download ?? file.url_private;
  if (!url) return { ok: false, reason: 'no download URL' };
  if (file.size !== undefined && file.size > maxBytes) return { ok: false, reason: `declared size ${file.size} B is over the limit` };
  let target: URL;
  try {
    target = new URL(url);
  } catch {
    return { ok: false, reason: 'malformed download URL' };
  }
  const slackHost = target.protocol === 'https:' && (target.hostname === 'slack.com' || target.hostname.endsWith('.slack.com'));
  if (!slackHost && target.origin !== new URL(apiUrl).origin) return { ok: false, reason: `not a Slack host: ${target.host}` };
  const res = await fetch(target, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok || !res.body) {
    await res.body?.cancel();
    return { ok: false, reason: `HTTP ${res.status}` };
  }
  // Without the files:read scope Slack answers a file URL with its sign-in page, not an error.
  if (res.headers.get('content-type')?.startsWith('text/html') && !file.mimetype?.startsWith('text/html')) {
    await res.body.cancel();
    return { ok: false, reason: 'Slack answered with a web page (does the app have the files:read scope?)' };
  }
  const data = await readBounded(res, maxBytes);
  return data ? { ok: true, data } : { ok: false, reason: `larger than the ${maxBytes} B limit` };
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Bolt's logger interface on top of pino, one level down: what matters is logged by the adapter itself. */
function boltLogger(parent: Logger): BoltLogger {
  const log = parent.child({ lib: 'slack-sdk' });
  const text = (msg: unknown[]) =>
    msg.map((m) => (m instanceof Error ? m.message : typeof m === 'string' ? m : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => log.trace(text(msg)),
    info: (...msg: unknown[]) => log.debug(text(msg)),
    warn: (...msg: unknown[]) => log.info(text(msg)),
    error: (...msg: unknown[]) => log.info(text(msg)),
    setLevel: () => {},
    setName: () => {},
    getLevel: () =>
      log.isLevelEnabled('trace')
        ? LogLevel.DEBUG
        : log.isLevelEnabled('debug')
          ? LogLevel.INFO
          : log.isLevelEnabled('info')
            ? LogLevel.WARN
            : LogLevel.ERROR,
  };
}

class ConfigurationError extends Error {}

function withTimeout<T>(promise: Promise<T>, ms: number, onTimeout: () => void): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new Error(`timed out after ${ms} ms`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

interface Cached {
  value: string;
  at: number;
}

// The Events API does not tell bots that a user is typing: this adapter never calls sink.typing.
export class SlackChannel implements Channel {
  readonly name = 'slack';
  readonly maxTextLength = SLACK_READING_LENGTH;
  readonly #o: SlackChannelOptions;
  readonly #log: Logger;
  readonly #web: webApi.WebClient;
  readonly #boltLog: BoltLogger;
  #sink: InboundSink | undefined;
  #identity: BotIdentity | undefined;
  #receiver: SocketModeReceiver | undefined;
  #state: ConnectionState = 'disconnected';
  #stopping = false;
  #everConnected = false;
  #attempt = 0;
  #connectedAt = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #connecting: Promise<void> | undefined;
  /** One chain per chat: a chat's messages are stored in the order Slack sent them. */
  readonly #chains = new Map<string, Promise<void>>();
  readonly #userNames = new Map<string, Cached>();
  readonly #chatNames = new Map<string, Cached>();
  readonly #botThreads = new Set<string>();
  /** The thread of the latest message that engaged the agent, per chat: where a status is shown. */
  readonly #engagedThread = new Map<string, string>();
  readonly #typing = new Map<string, { channelId: string; threadTs: string; timer: NodeJS.Timeout }>();
  /** Chats where Slack refused an assistant status: not tried again there. */
  readonly #noStatus = new Set<string>();
  /** Whether the token may post under a sub-agent's name (its scopes say; undefined: Slack did not say). */
  #customize: boolean | undefined;

  constructor(options: SlackChannelOptions) {
    this.#o = options;
    this.#log = options.log;
    this.#boltLog = boltLogger(options.log);
    this.#web = new webApi.WebClient(options.botToken, this.#clientOptions());
  }

  /** Retries are the outbox worker's and the reconnect loop's job; a 429 is reported, not waited out. */
  #clientOptions(): webApi.WebClientOptions {
    return {
      slackApiUrl: this.#o.apiUrl,
      retryConfig: { retries: 0 },
      rejectRateLimitedCalls: true,
      timeout: this.#o.requestTimeoutMs ?? 60_000,
      logger: this.#boltLog,
    };
  }

  owns(chatId: string): boolean {
    return chatId.startsWith(PREFIX);
  }

  state(): ConnectionState {
    return this.#state;
  }

  /** Resolves once connected, or once a connection failure is being retried; rejects when Slack refuses a token. */
  async start(sink: InboundSink): Promise<void> {
    if (this.#sink) throw new Error('the slack channel is already started');
    this.#sink = sink;
    this.#stopping = false;
    this.#state = 'connecting';
    try {
      await this.#attemptConnect(true);
    } catch (err) {
      await this.stop();
      this.#sink = undefined;
      throw err;
    }
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    clearTimeout(this.#retryTimer);
    this.#retryTimer = undefined;
    for (const t of this.#typing.values()) clearInterval(t.timer);
    this.#typing.clear();
    // An attempt in flight would open a socket after we closed: let it finish (it is bounded), then close.
    if (this.#connecting) await withTimeout(this.#connecting, HELLO_TIMEOUT_MS + STOP_TIMEOUT_MS, () => {}).catch(() => {});
    const client = this.#receiver?.client;
    if (client) await withTimeout(client.disconnect(), STOP_TIMEOUT_MS, () => {}).catch(() => {});
    await withTimeout(Promise.allSettled([...this.#chains.values()]), STOP_TIMEOUT_MS, () => {}).catch(() => {});
    this.#state = 'disconnected';
  }

  // ---- connection ----

  /**
   * One attempt; any failure schedules the next one, except a token refused at start, which start() reports.
   * The returned promise rejects only in that case.
   */
  #attemptConnect(fromStart: boolean): Promise<void> {
    const attempt = (async () => {
      try {
        await this.#connect();
      } catch (err) {
        if (fromStart && err instanceof ConfigurationError) throw err;
        if (this.#stopping) return;
        const level = err instanceof ConfigurationError ? 'error' : 'warn';
        this.#log[level](
          { error: err instanceof Error ? err.message : String(err), attempt: this.#attempt + 1 },
          'slack: could not connect; will retry',
        );
      }
    })();
    const settled = attempt.then(
      () => {},
      () => {},
    );
    this.#connecting = settled;
    void settled.then(() => {
      this.#connecting = undefined;
      if (this.#state !== 'connected') this.#scheduleReconnect();
    });
    return attempt;
  }

  #scheduleReconnect(): void {
    if (this.#stopping || this.#retryTimer || this.#connecting) return;
    this.#state = 'connecting';
    const delay = backoffDelay(this.#attempt++, this.#o.reconnectMinMs ?? 1_000, this.#o.reconnectMaxMs ?? 60_000);
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      void this.#attemptConnect(false);
    }, delay);
  }

  async #connect(): Promise<void> {
    if (!this.#identity) this.#identity = await this.#authTest();
    if (this.#stopping) return;
    const receiver = this.#receiver ?? this.#buildApp(this.#identity);
    try {
      await withTimeout(receiver.client.start(), HELLO_TIMEOUT_MS, () => void receiver.client.disconnect());
    } catch (err) {
      const code = platformErrorCode(err);
      if (code && CONFIG_ERRORS.has(code)) throw new ConfigurationError(`Slack refused SLACK_APP_TOKEN (apps.connections.open: ${code})`);
      // Bolt rejects with nothing when the socket closes before `hello`.
      throw err instanceof Error ? err : new Error('the Socket Mode connection closed before Slack said hello');
    }
  }

  async #authTest(): Promise<BotIdentity> {
    try {
      const answer = authTestAnswer.parse(await this.#web.auth.test());
      this.#log.debug({ botUserId: answer.user_id, botId: answer.bot_id, team: answer.team_id }, 'slack: bot token accepted');
      const scopes = answer.response_metadata?.scopes;
      if (scopes && !scopes.includes(CUSTOMIZE_SCOPE)) this.#withoutCustomize(`the token's scopes are ${scopes.join(', ')}`);
      else if (scopes) this.#customize = true;
      return { userId: answer.user_id, botId: answer.bot_id };
    } catch (err) {
      const code = platformErrorCode(err);
      if (code && CONFIG_ERRORS.has(code)) throw new ConfigurationError(`Slack refused SLACK_BOT_TOKEN (auth.test: ${code})`);
      throw slackFailure('auth.test', err);
    }
  }

  /** Bolt's app on a Socket Mode receiver whose reconnects are ours (with backoff, without unhandled rejections). */
  #buildApp(identity: BotIdentity): SocketModeReceiver {
    const receiver = new SocketModeReceiver({
      appToken: this.#o.appToken,
      logger: this.#boltLog,
      autoReconnectEnabled: false,
      installerOptions: { clientOptions: this.#clientOptions() },
    });
    const app = new App({
      receiver,
      token: this.#o.botToken,
      botId: identity.botId,
      botUserId: identity.userId,
      tokenVerificationEnabled: false,
      convoStore: false,
      logger: this.#boltLog,
      clientOptions: this.#clientOptions(),
    });
    app.event('message', async ({ event }) => this.#onEvent(event));
    app.event('app_mention', async ({ event }) => this.#onEvent(event));
    app.error(async (err) => {
      this.#log.warn({ error: err.message }, 'slack: event handling failed');
    });
    receiver.client.on('connected', () => {
      this.#state = 'connected';
      this.#connectedAt = Date.now();
      this.#log.info(this.#everConnected ? 'slack: reconnected' : 'slack: connected (Socket Mode)');
      this.#everConnected = true;
    });
    receiver.client.on('disconnected', () => {
      if (this.#stopping) return;
      if (this.#state === 'connected') this.#log.warn('slack: connection lost; reconnecting');
      // Backoff starts over only after a connection that held: a socket that keeps dropping at once is not hammered.
      if (Date.now() - this.#connectedAt >= STABLE_CONNECTION_MS) this.#attempt = 0;
      this.#state = 'connecting';
      this.#scheduleReconnect();
    });
    this.#receiver = receiver;
    return receiver;
  }

  // ---- inbound ----

  #onEvent(raw: unknown): Promise<void> {
    const event = parseMessageEvent(raw);
    const identity = this.#identity;
    if (!event || !identity) {
      this.#log.debug('slack: event without the fields of a message; ignored');
      return Promise.resolve();
    }
    const mapped = mapMessageEvent(event, identity, (channel, thread) => this.#botThreads.has(`${channel}/${thread}`));
    if ('ignored' in mapped) {
      this.#log.trace({ channel: event.channel, ts: event.ts, why: mapped.ignored }, 'slack: event skipped');
      return Promise.resolve();
    }
    const previous = this.#chains.get(mapped.chatId) ?? Promise.resolve();
    const next = previous
      .then(() => this.#deliver(mapped, identity))
      .catch((err: unknown) => {
        this.#log.error({ err, chatId: mapped.chatId, ts: mapped.platformId }, 'slack: inbound message could not be stored');
      })
      .finally(() => {
        if (this.#chains.get(mapped.chatId) === next) this.#chains.delete(mapped.chatId);
      });
    this.#chains.set(mapped.chatId, next);
    return next;
  }

  async #deliver(m: MappedMessage, identity: BotIdentity): Promise<void> {
    const sink = this.#sink;
    if (!sink) return;
    const senderName = await this.#userName(m.userId);
    const names = new Map<string, string>();
    for (const id of mentionedUsers(m.rawText)) if (id !== identity.userId) names.set(id, await this.#userName(id));
    const chatName = m.isDirect ? senderName : await this.#chatName(m.channelId);
    const attachments =
      m.files.length > 0 && sink.isJoined(m.chatId) && !sink.seen(m.chatId, m.platformId)
        ? await this.#download(m, sink.maxMediaBytes)
        : [];
    const message: InboundMessage = {
      chatId: m.chatId,
      channel: this.name,
      platformId: m.platformId,
      senderId: m.senderId,
      senderName,
      text: slackToPlainText(m.rawText, identity.userId, this.#o.assistantName, names),
      sentAt: m.sentAt,
      chatName,
      isGroup: m.isGroup,
      ...(m.mentionsBot ? { mentionsBot: true } : {}),
      ...(m.threadId ? { threadId: m.threadId } : {}),
      ...(attachments.length > 0 ? { attachments } : {}),
    };
    // The turn (and its typing status) may start before ingest returns: name the thread first, undo if not engaged.
    const before = this.#engagedThread.get(m.chatId);
    const setThread = (thread: string | undefined) =>
      thread ? this.#engagedThread.set(m.chatId, thread) : this.#engagedThread.delete(m.chatId);
    setThread(m.threadId);
    const result = await sink.ingest(message).catch((err: unknown) => {
      setThread(before);
      throw err;
    });
    if (!result.engaged) setThread(before);
  }

  async #download(m: MappedMessage, maxBytes: number): Promise<InboundAttachment[]> {
    const out: InboundAttachment[] = [];
    for (const file of m.files) {
      try {
        const got = await downloadSlackFile(file, this.#o.botToken, maxBytes, this.#o.apiUrl, this.#o.requestTimeoutMs);
        if (!got.ok) {
          this.#log.warn({ chatId: m.chatId, file: file.id, reason: got.reason }, 'slack: file not downloaded');
          continue;
        }
        out.push({
          kind: attachmentKind(file.mimetype),
          data: got.data,
          ...(file.name ? { name: file.name } : {}),
          ...(file.mimetype ? { mime: file.mimetype } : {}),
        });
      } catch (err) {
        this.#log.warn(
          { chatId: m.chatId, file: file.id, error: err instanceof Error ? err.message : String(err) },
          'slack: file download failed',
        );
      }
    }
    return out;
  }

  /** The name people see (display name, else real name), cached; the id when Slack cannot say. */
  async #userName(userId: string): Promise<string> {
    return this.#cachedLookup(this.#userNames, userId, async () => {
      const { user } = userInfoAnswer.parse(await this.#web.users.info({ user: userId }));
      return user.profile?.display_name || user.real_name || user.profile?.real_name || user.name;
    });
  }

  async #chatName(channelId: string): Promise<string> {
    return this.#cachedLookup(this.#chatNames, channelId, async () => {
      const { channel } = conversationInfoAnswer.parse(await this.#web.conversations.info({ channel: channelId }));
      return channel.name ? `#${channel.name}` : undefined;
    });
  }

  async #cachedLookup(cache: Map<string, Cached>, id: string, lookup: () => Promise<string | undefined>): Promise<string> {
    const hit = cache.get(id);
    if (hit && Date.now() - hit.at < NAME_TTL_MS) return hit.value;
    try {
      const value = (await withTimeout(lookup(), LOOKUP_TIMEOUT_MS, () => {})) || id;
      cache.set(id, { value, at: Date.now() });
      return value;
    } catch (err) {
      this.#log.debug({ id, error: err instanceof Error ? err.message : String(err) }, 'slack: name lookup failed');
      return hit?.value ?? id;
    }
  }

  // ---- outbound ----

  readonly postsAsSender = true;
  readonly #parts = lastRendered((markdown: string, room: number) => slackParts(markdown, SLACK_READING_LENGTH - room));

  partsOf(markdown: string, sender?: string): number {
    return this.#parts(markdown, sender === undefined ? 0 : slackSenderPrefix(sender).length).length;
  }

  /** Without the scope Slack posts the message under the app's own name: sub-agents get a prefix instead. Said once. */
  #withoutCustomize(why: string): void {
    if (this.#customize === false) return;
    this.#customize = false;
    this.#log.warn(
      { why },
      `slack: the app lacks the ${CUSTOMIZE_SCOPE} scope: sub-agents' messages carry their name in front (add the scope and reinstall the app to show them as themselves)`,
    );
  }

  /** chat.postMessage's fields for a message under a sub-agent's name and picture. */
  #face(sender: string): { username: string; icon_url: string } | { username: string; icon_emoji: string } {
    const username = sender.slice(0, MAX_USERNAME);
    const face = senderFace(sender, this.#o.senderAvatarUrl, SENDER_EMOJI);
    return 'url' in face ? { username, icon_url: face.url } : { username, icon_emoji: face.emoji };
  }

  async #post(args: webApi.ChatPostMessageArguments): Promise<z.infer<typeof postMessageAnswer>> {
    const parsed = postMessageAnswer.safeParse(await this.#web.chat.postMessage(args));
    if (!parsed.success) throw new Error('slack chat.postMessage: the answer has no ts');
    return parsed.data;
  }

  async send(chatId: string, out: Outbound): Promise<{ platformId: string }> {
    const channelId = this.#channelId(chatId);
    const threadTs = out.replyTo?.threadId;
    if (out.file) {
      const text = out.text.trim();
      let answer: unknown;
      try {
        const upload = {
          channel_id: channelId,
          file: out.file.data,
          filename: out.file.name,
          ...(text ? { initial_comment: toSlackMrkdwn(text) } : {}),
        };
        answer = await this.#web.files.uploadV2(threadTs ? { ...upload, thread_ts: threadTs } : upload);
      } catch (err) {
        throw slackFailure('files.uploadV2', err);
      }
      const id = uploadAnswer.safeParse(answer).data?.files[0]?.files?.[0]?.id;
      if (!id) throw new Error('slack files.uploadV2: Slack did not name the uploaded file');
      if (threadTs) this.#rememberThread(channelId, threadTs);
      return { platformId: `file:${id}` };
    }
    // Every part goes to the thread the question was asked in; Slack has no quoting of a message to add. A
    // sub-agent's message goes under its own name where the app may do that, else with its name in front.
    const sender = out.sender;
    const prefix = sender === undefined ? '' : slackSenderPrefix(sender);
    const where = { channel: channelId, ...(threadTs ? { thread_ts: threadTs } : {}) };
    const sent = await sendParts(this.#parts(out.text, prefix.length), out.part, async (part) => {
      try {
        if (sender !== undefined && this.#customize !== false) {
          try {
            const answer = await this.#post({ ...where, text: part, ...this.#face(sender) });
            // Slack did not say the token's scopes, and ignored the name: this message is the app's, the next get a prefix.
            if (this.#customize === undefined && answer.message && answer.message.username === undefined)
              this.#withoutCustomize('Slack posted without the name');
            return answer.ts;
          } catch (err) {
            if (platformErrorCode(err) !== 'missing_scope') throw err;
            // Refused, so not posted: the same part goes out again with the name in front.
            this.#withoutCustomize(slackFailure('chat.postMessage', err).message);
          }
        }
        return (await this.#post({ ...where, text: prefix + part })).ts;
      } catch (err) {
        throw slackFailure('chat.postMessage', err);
      }
    });
    if (threadTs) this.#rememberThread(channelId, threadTs);
    return sent;
  }

  /** Slack shows a bot typing only as an assistant thread status, which lives in a thread: elsewhere nothing is shown. */
  async setTyping(chatId: string, on: boolean): Promise<void> {
    const current = this.#typing.get(chatId);
    if (!on) {
      if (!current) return;
      clearInterval(current.timer);
      this.#typing.delete(chatId);
      await this.#setStatus(chatId, current.channelId, current.threadTs, '');
      return;
    }
    const threadTs = this.#engagedThread.get(chatId);
    if (current || !threadTs || this.#noStatus.has(chatId) || this.#stopping) return;
    const channelId = this.#channelId(chatId);
    const timer = setInterval(() => void this.#setStatus(chatId, channelId, threadTs, STATUS_TEXT), STATUS_REFRESH_MS);
    this.#typing.set(chatId, { channelId, threadTs, timer });
    await this.#setStatus(chatId, channelId, threadTs, STATUS_TEXT);
  }

  async #setStatus(chatId: string, channelId: string, threadTs: string, status: string): Promise<void> {
    try {
      await this.#web.assistant.threads.setStatus({ channel_id: channelId, thread_ts: threadTs, status });
    } catch (err) {
      const code = platformErrorCode(err);
      if (code === undefined) throw slackFailure('assistant.threads.setStatus', err);
      // Not an assistant thread, or the app lacks the feature: say so once and stop trying in this chat.
      this.#noStatus.add(chatId);
      const t = this.#typing.get(chatId);
      if (t) clearInterval(t.timer);
      this.#typing.delete(chatId);
      this.#log.info({ chatId, error: code }, 'slack: no thread status in this chat (typing is not shown there)');
    }
  }

  #channelId(chatId: string): string {
    if (!this.owns(chatId)) throw new Error(`not a slack chat: ${chatId}`);
    return chatId.slice(PREFIX.length);
  }

  #rememberThread(channelId: string, threadTs: string): void {
    const key = `${channelId}/${threadTs}`;
    this.#botThreads.delete(key);
    this.#botThreads.add(key);
    if (this.#botThreads.size > BOT_THREADS_KEPT) {
      const oldest = this.#botThreads.values().next().value;
      if (oldest !== undefined) this.#botThreads.delete(oldest);
    }
  }
}

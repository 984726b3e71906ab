// A fake of Discord on loopback that speaks its real wire protocol to discord.js: the REST routes a bot uses
// (`/api/v10/…`, `Bot <token>` auth, 429s with Retry-After) and the gateway (HELLO, IDENTIFY → READY and
// GUILD_CREATE, heartbeats, dispatches with sequence numbers, RESUME with replay of what was missed).
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';
import { z } from 'zod';

const DISCORD_EPOCH = 1_420_070_400_000n;
let increment = 0n;

/** A real-looking snowflake: discord.js reads a message's creation time from its id. */
export function snowflake(at = Date.now()): string {
  increment = (increment + 1n) % 4096n;
  return (((BigInt(at) - DISCORD_EPOCH) << 22n) | increment).toString();
}

export interface FakeUser {
  id: string;
  username: string;
  global_name: string | null;
  bot?: boolean;
}

export interface FakeChannel {
  id: string;
  /** 0 guild text, 1 DM, 11 public thread. */
  type: 0 | 1 | 11;
  name?: string;
  guildId?: string;
  parentId?: string;
  /** The other person of a DM. */
  recipient?: FakeUser;
}

export interface SentMessage {
  id: string;
  channelId: string;
  content: string;
  replyTo?: string;
  allowedMentions?: unknown;
  files: Array<{ name: string; data: Buffer; contentType: string }>;
  at: number;
}

export interface PostOptions {
  channelId: string;
  author: FakeUser;
  content: string;
  /** Users mentioned (`<@id>` in the content is up to the caller, as on Discord). */
  mentions?: FakeUser[];
  mentionRoles?: string[];
  /** A reply to this message, which the fake must have (it sends it as `referenced_message`). */
  replyTo?: string;
  attachments?: Array<{ name: string; contentType: string; data: Buffer; declaredSize?: number }>;
  /** Only stored in the channel's history (as if sent while no gateway was listening), not dispatched. */
  historyOnly?: boolean;
}

type Json = Record<string, unknown>;

/** An incoming webhook of a channel (Discord's webhook object, type 1). */
export interface FakeWebhook {
  id: string;
  token: string;
  channelId: string;
  name: string;
  /** The app that made it: Discord lists a webhook's token only to that app. */
  applicationId: string | null;
}

/** A message executed through a webhook, as Discord shows it: under the name and picture it was given. */
export interface WebhookPost {
  id: string;
  webhookId: string;
  /** Where it appeared: the thread if `thread_id` was given, else the webhook's channel. */
  channelId: string;
  content: string;
  username: string | undefined;
  avatarUrl: string | undefined;
  allowedMentions: unknown;
  /** The request's Authorization header: a webhook needs none (its token is in the URL). */
  authorization: string | undefined;
}

const webhookExecuteBody = z.object({
  content: z.string().optional(),
  username: z.string().optional(),
  avatar_url: z.string().optional(),
  allowed_mentions: z.unknown().optional(),
});
/** Webhook names and the names a message is executed under (Discord's docs: 1–80, no "clyde" or "discord"). */
const validWebhookName = (name: string) => name.length >= 1 && name.length <= 80 && !/clyde|discord/i.test(name);

const gatewayFrame = z.object({ op: z.number(), d: z.unknown(), s: z.number().nullish(), t: z.string().nullish() });
const identifyData = z.object({ token: z.string(), intents: z.number(), properties: z.record(z.string(), z.unknown()) });
const resumeData = z.object({ token: z.string(), session_id: z.string(), seq: z.number() });
const messageBody = z.object({
  content: z.string().optional(),
  message_reference: z.object({ message_id: z.string(), fail_if_not_exists: z.boolean().optional() }).optional(),
  allowed_mentions: z.unknown().optional(),
  attachments: z.array(z.object({ id: z.union([z.string(), z.number()]), filename: z.string().optional() })).optional(),
});

interface Session {
  id: string;
  seq: number;
  /** Every dispatch of the session, for replay on RESUME. */
  events: Array<{ s: number; t: string; d: unknown }>;
  socket: WebSocket | undefined;
  /** Set by drop({ replayLast }): the next RESUME replays this many already delivered events again. */
  replayExtra: number;
  /** The intents the client identified with: Discord sends only the events they ask for. */
  intents: number;
}

/** Gateway intent bits the fake honours (Discord's values). */
const GUILD_MESSAGE_TYPING = 1 << 11;
const DIRECT_MESSAGE_TYPING = 1 << 14;

export interface FakeDiscordOptions {
  token?: string;
  heartbeatIntervalMs?: number;
  /** Close code sent right after IDENTIFY instead of READY (e.g. 4014: disallowed intents). */
  identifyCloseCode?: number;
  /** IDENTIFY is never answered (a gateway that hangs). */
  ignoreIdentify?: boolean;
}

export class FakeDiscord {
  readonly token: string;
  readonly bot: FakeUser = { id: snowflake(), username: 'pincer-bot', global_name: null, bot: true };
  readonly botRoleId = snowflake();
  readonly guild = { id: snowflake(), name: 'Test Server' };
  readonly channels = new Map<string, FakeChannel>();
  readonly history = new Map<string, Json[]>();
  readonly sent: SentMessage[] = [];
  readonly typing: Array<{ channelId: string; at: number }> = [];
  readonly rateLimited: Array<{ at: number; retryAfterMs: number }> = [];
  readonly attachmentFetches: string[] = [];
  /** Every REST call as `METHOD /path`, for tests to inspect. */
  readonly calls: string[] = [];
  readonly webhooks = new Map<string, FakeWebhook>();
  readonly webhookPosts: WebhookPost[] = [];
  /** Channels where the bot lacks Manage Webhooks: listing and creating webhooks there is refused (403, 50013). */
  readonly noManageWebhooks = new Set<string>();
  /** Names an execute is refused under (400, 50035), beyond the documented rules: Discord refuses others too. */
  readonly refusedUsernames = new Set<string>();
  identifies = 0;
  identifyAttempts = 0;
  /** The intents bitfield of every accepted IDENTIFY, in order. */
  readonly identifyIntents: number[] = [];
  resumes = 0;
  heartbeats = 0;
  readonly #server: Server;
  readonly #wss: WebSocketServer;
  readonly #options: FakeDiscordOptions;
  readonly #sessions = new Map<string, Session>();
  readonly #files = new Map<string, { data: Buffer; contentType: string }>();
  readonly #waiters = new Set<() => void>();
  #current: Session | undefined;
  #rateLimit: { count: number; retryAfterMs: number } | undefined;
  #port = 0;

  private constructor(options: FakeDiscordOptions) {
    this.#options = options;
    this.token = options.token ?? 'fake-discord-token';
    this.#server = createServer((req, res) => {
      void this.#rest(req, res).catch((err: unknown) => {
        if (!res.headersSent) this.#json(res, 500, { message: String(err), code: 0 });
      });
    });
    this.#wss = new WebSocketServer({ noServer: true });
    this.#server.on('upgrade', (req, socket, head) => {
      if (!(req.url ?? '').startsWith('/gateway')) {
        socket.destroy();
        return;
      }
      this.#wss.handleUpgrade(req, socket, head, (ws) => this.#onSocket(ws));
    });
  }

  /** Starts listening on 127.0.0.1 (on `port` when given, to come back on the same address after close()). */
  static async start(options: FakeDiscordOptions & { port?: number } = {}): Promise<FakeDiscord> {
    const fake = new FakeDiscord(options);
    await new Promise<void>((resolve, reject) => {
      fake.#server.once('error', reject);
      fake.#server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
    });
    fake.#port = (fake.#server.address() as AddressInfo).port;
    return fake;
  }

  get port(): number {
    return this.#port;
  }

  get apiUrl(): string {
    return `http://127.0.0.1:${this.#port}/api`;
  }

  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.#port}/gateway`;
  }

  /** True while a client holds an identified (or resumed) gateway session. */
  get connected(): boolean {
    return this.#current?.socket !== undefined;
  }

  /** Open gateway sockets, identified or not. */
  get sockets(): number {
    return this.#wss.clients.size;
  }

  addTextChannel(name: string): FakeChannel {
    const channel: FakeChannel = { id: snowflake(), type: 0, name, guildId: this.guild.id };
    this.channels.set(channel.id, channel);
    return channel;
  }

  addThread(parent: FakeChannel, name: string): FakeChannel {
    const channel: FakeChannel = { id: snowflake(), type: 11, name, guildId: this.guild.id, parentId: parent.id };
    this.channels.set(channel.id, channel);
    return channel;
  }

  addDm(recipient: FakeUser): FakeChannel {
    const channel: FakeChannel = { id: snowflake(), type: 1, recipient };
    this.channels.set(channel.id, channel);
    return channel;
  }

  user(username: string, globalName: string | null = null, bot = false): FakeUser {
    return { id: snowflake(), username, global_name: globalName, ...(bot ? { bot } : {}) };
  }

  /** A user's message: stored in the channel's history and dispatched as MESSAGE_CREATE. */
  post(o: PostOptions): Json {
    const channel = this.#channel(o.channelId);
    const id = snowflake();
    const attachments = (o.attachments ?? []).map((a) => {
      const attachmentId = snowflake();
      const path = `/attachments/${o.channelId}/${attachmentId}/${encodeURIComponent(a.name)}`;
      this.#files.set(path, { data: a.data, contentType: a.contentType });
      const url = `http://127.0.0.1:${this.#port}${path}`;
      return {
        id: attachmentId,
        filename: a.name,
        size: a.declaredSize ?? a.data.length,
        url,
        proxy_url: url,
        content_type: a.contentType,
      };
    });
    const referenced = o.replyTo ? this.history.get(o.channelId)?.find((m) => m.id === o.replyTo) : undefined;
    const message: Json = {
      id,
      channel_id: o.channelId,
      author: this.#userJson(o.author),
      content: o.content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: (o.mentions ?? []).map((u) => this.#userJson(u)),
      mention_roles: o.mentionRoles ?? [],
      attachments,
      embeds: [],
      pinned: false,
      type: referenced ? 19 : 0,
      flags: 0,
      ...(referenced ? { message_reference: { message_id: referenced.id, channel_id: o.channelId }, referenced_message: referenced } : {}),
    };
    this.#remember(o.channelId, message);
    if (!o.historyOnly) this.#dispatchMessage(channel, message);
    return message;
  }

  /**
   * A user starts typing: TYPING_START as Discord sends it (channel_id, guild_id and member in a guild,
   * user_id, timestamp in Unix seconds). Like Discord, only to a session that identified with the typing intent
   * for that kind of channel; returns whether it was dispatched.
   */
  typingStart(channelId: string, user: FakeUser): boolean {
    const channel = this.#channel(channelId);
    const inGuild = channel.type !== 1;
    const intent = inGuild ? GUILD_MESSAGE_TYPING : DIRECT_MESSAGE_TYPING;
    if (!this.#current || (this.#current.intents & intent) === 0) return false;
    this.dispatch('TYPING_START', {
      channel_id: channel.id,
      user_id: user.id,
      timestamp: Math.floor(Date.now() / 1000),
      ...(inGuild
        ? {
            guild_id: channel.guildId,
            member: {
              user: this.#userJson(user),
              nick: null,
              roles: [],
              joined_at: new Date().toISOString(),
              deaf: false,
              mute: false,
              flags: 0,
            },
          }
        : {}),
    });
    return true;
  }

  /** Sends a dispatch (op 0) to the current session; buffered for RESUME while no socket is attached. */
  dispatch(t: string, d: unknown): void {
    const session = this.#current;
    if (!session) throw new Error('no gateway session to dispatch to');
    session.seq += 1;
    const event = { s: session.seq, t, d };
    session.events.push(event);
    session.socket?.send(JSON.stringify({ op: 0, ...event }));
  }

  /**
   * Closes the gateway socket. A resumable code (4000) keeps the session: what is dispatched meanwhile is
   * replayed on RESUME, plus the last `replayLast` events the client already had (a redelivery).
   * A non-resumable code (4007) ends the session: the client identifies again and misses what happened.
   */
  drop(options: { code?: number; replayLast?: number } = {}): void {
    const session = this.#current;
    const code = options.code ?? 4000;
    if (!session?.socket) throw new Error('no connected gateway session');
    session.replayExtra = options.replayLast ?? 0;
    session.socket.close(code, 'fake drop');
    session.socket = undefined;
    if (code === 4007 || code === 4004 || code === 1000) {
      this.#sessions.delete(session.id);
      this.#current = undefined;
    }
  }

  /** The next `count` message POSTs (or webhook executions) are answered 429 with this Retry-After. */
  rateLimitNext(count: number, retryAfterMs: number): void {
    this.#rateLimit = { count, retryAfterMs };
  }

  /** Resolves once the predicate holds (checked on every fake event), or rejects after the timeout. */
  waitFor(predicate: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    if (predicate()) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const check = () => {
        if (!predicate()) return;
        clearTimeout(timer);
        this.#waiters.delete(check);
        resolve();
      };
      const timer = setTimeout(() => {
        this.#waiters.delete(check);
        reject(new Error(`fake discord: timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      this.#waiters.add(check);
    });
  }

  /** Discord is unreachable: sockets cut, sessions forgotten, nothing listens on the port until goOnline(). */
  async goOffline(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    this.#sessions.clear();
    this.#current = undefined;
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  async goOnline(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', reject);
      this.#server.listen(this.#port, '127.0.0.1', () => resolve());
    });
  }

  async close(): Promise<void> {
    for (const client of this.#wss.clients) client.terminate();
    this.#wss.close();
    this.#server.closeAllConnections();
    if (this.#server.listening) await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #notify(): void {
    for (const check of [...this.#waiters]) check();
  }

  #channel(id: string): FakeChannel {
    const channel = this.channels.get(id);
    if (!channel) throw new Error(`fake discord has no channel ${id}`);
    return channel;
  }

  #remember(channelId: string, message: Json): void {
    const list = this.history.get(channelId) ?? [];
    list.push(message);
    this.history.set(channelId, list);
  }

  #userJson(u: FakeUser): Json {
    return {
      id: u.id,
      username: u.username,
      global_name: u.global_name,
      discriminator: '0',
      avatar: null,
      ...(u.bot ? { bot: true } : {}),
    };
  }

  #channelJson(c: FakeChannel): Json {
    if (c.type === 1) return { id: c.id, type: 1, recipients: c.recipient ? [this.#userJson(c.recipient)] : [], last_message_id: null };
    const base = { id: c.id, type: c.type, name: c.name, guild_id: c.guildId, position: 0, permission_overwrites: [], nsfw: false };
    if (c.type === 11) {
      return {
        ...base,
        parent_id: c.parentId,
        owner_id: this.bot.id,
        thread_metadata: { archived: false, auto_archive_duration: 1440, archive_timestamp: new Date().toISOString(), locked: false },
        message_count: 0,
        member_count: 1,
      };
    }
    return { ...base, parent_id: null, topic: null, rate_limit_per_user: 0, last_message_id: null };
  }

  #dispatchMessage(channel: FakeChannel, message: Json): void {
    if (!this.#current) return;
    const inGuild = channel.type !== 1;
    this.dispatch('MESSAGE_CREATE', {
      ...message,
      channel_type: channel.type,
      ...(inGuild
        ? {
            guild_id: channel.guildId,
            member: { nick: null, roles: [], joined_at: new Date().toISOString(), deaf: false, mute: false, flags: 0 },
          }
        : {}),
    });
  }

  // ---- gateway ----

  #onSocket(ws: WebSocket): void {
    ws.send(JSON.stringify({ op: 10, d: { heartbeat_interval: this.#options.heartbeatIntervalMs ?? 41_250 }, s: null, t: null }));
    ws.on('message', (raw) => {
      const parsed = gatewayFrame.safeParse(JSON.parse(String(raw)));
      if (!parsed.success) {
        ws.close(4002, 'Error while decoding payload.');
        return;
      }
      const frame = parsed.data;
      if (frame.op === 1) {
        this.heartbeats += 1;
        ws.send(JSON.stringify({ op: 11, d: null, s: null, t: null }));
      } else if (frame.op === 2) this.#identify(ws, frame.d);
      else if (frame.op === 6) this.#resume(ws, frame.d);
      this.#notify();
    });
    ws.on('close', () => {
      for (const s of this.#sessions.values()) if (s.socket === ws) s.socket = undefined;
      this.#notify();
    });
  }

  #identify(ws: WebSocket, d: unknown): void {
    this.identifyAttempts += 1;
    if (this.#options.ignoreIdentify) return;
    const data = identifyData.safeParse(d);
    if (!data.success || data.data.token !== this.token) {
      ws.close(4004, 'Authentication failed.');
      return;
    }
    if (this.#options.identifyCloseCode) {
      ws.close(this.#options.identifyCloseCode, 'Disallowed intent(s).');
      return;
    }
    this.identifies += 1;
    this.identifyIntents.push(data.data.intents);
    const session: Session = {
      id: `session-${snowflake()}`,
      seq: 0,
      events: [],
      socket: ws,
      replayExtra: 0,
      intents: data.data.intents,
    };
    this.#sessions.set(session.id, session);
    this.#current = session;
    this.dispatch('READY', {
      v: 10,
      user: { ...this.#userJson(this.bot), verified: true, mfa_enabled: false, flags: 0 },
      guilds: [{ id: this.guild.id, unavailable: true }],
      session_id: session.id,
      resume_gateway_url: this.gatewayUrl,
      shard: [0, 1],
      application: { id: this.bot.id, flags: 0 },
      private_channels: [],
      relationships: [],
      presences: [],
      guild_join_requests: [],
      user_settings: {},
    });
    this.dispatch('GUILD_CREATE', this.#guildJson());
  }

  #resume(ws: WebSocket, d: unknown): void {
    const data = resumeData.safeParse(d);
    const session = data.success ? this.#sessions.get(data.data.session_id) : undefined;
    if (!data.success || data.data.token !== this.token || !session) {
      ws.send(JSON.stringify({ op: 9, d: false, s: null, t: null }));
      return;
    }
    this.resumes += 1;
    session.socket = ws;
    this.#current = session;
    const from = Math.max(0, data.data.seq - session.replayExtra);
    session.replayExtra = 0;
    for (const event of session.events) if (event.s > from) ws.send(JSON.stringify({ op: 0, ...event }));
    this.dispatch('RESUMED', {});
  }

  #guildJson(): Json {
    const channels = [...this.channels.values()].filter((c) => c.guildId === this.guild.id);
    return {
      id: this.guild.id,
      name: this.guild.name,
      icon: null,
      owner_id: snowflake(),
      afk_channel_id: null,
      afk_timeout: 300,
      verification_level: 0,
      default_message_notifications: 0,
      explicit_content_filter: 0,
      mfa_level: 0,
      system_channel_id: null,
      system_channel_flags: 0,
      premium_tier: 0,
      preferred_locale: 'en-US',
      nsfw_level: 0,
      features: [],
      roles: [
        {
          id: this.guild.id,
          name: '@everyone',
          color: 0,
          hoist: false,
          position: 0,
          permissions: '0',
          managed: false,
          mentionable: false,
          flags: 0,
        },
        {
          id: this.botRoleId,
          name: this.bot.username,
          color: 0,
          hoist: false,
          position: 1,
          permissions: '0',
          managed: true,
          mentionable: false,
          flags: 0,
          tags: { bot_id: this.bot.id },
        },
      ],
      emojis: [],
      stickers: [],
      joined_at: new Date().toISOString(),
      large: false,
      unavailable: false,
      member_count: 2,
      members: [],
      voice_states: [],
      presences: [],
      channels: channels.filter((c) => c.type !== 11).map((c) => this.#channelJson(c)),
      threads: channels.filter((c) => c.type === 11).map((c) => this.#channelJson(c)),
      stage_instances: [],
      guild_scheduled_events: [],
    };
  }

  // ---- REST ----

  async #rest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const body = await new Promise<Buffer>((resolve) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => resolve(Buffer.concat(chunks)));
    });
    const method = req.method ?? 'GET';
    this.calls.push(`${method} ${url.pathname}`);
    if (url.pathname.startsWith('/attachments/')) {
      this.attachmentFetches.push(url.pathname);
      this.#notify();
      const file = this.#files.get(url.pathname);
      if (!file) return this.#json(res, 404, { message: 'Not Found', code: 0 });
      res.writeHead(200, { 'content-type': file.contentType, 'content-length': String(file.data.length) });
      res.end(file.data);
      return;
    }
    if (!url.pathname.startsWith('/api/v10/')) return this.#json(res, 404, { message: '404: Not Found', code: 0 });
    const [, hookId, hookToken] = url.pathname.match(/^\/api\/v10\/webhooks\/(\d+)\/([^/]+)$/) ?? [];
    if (hookId !== undefined && hookToken !== undefined && method === 'POST')
      return this.#executeWebhook(req, res, hookId, hookToken, url.searchParams, body);
    if (req.headers.authorization !== `Bot ${this.token}`) return this.#json(res, 401, { message: '401: Unauthorized', code: 0 });
    const path = url.pathname.slice('/api/v10'.length);
    if (method === 'GET' && path === '/gateway/bot') {
      return this.#json(res, 200, {
        url: this.gatewayUrl,
        shards: 1,
        session_start_limit: { total: 1000, remaining: 999, reset_after: 14_400_000, max_concurrency: 1 },
      });
    }
    if (method === 'GET' && path === '/users/@me') return this.#json(res, 200, this.#userJson(this.bot));
    const [, channelId, rest] = path.match(/^\/channels\/(\d+)(\/typing|\/messages|\/webhooks)?$/) ?? [];
    if (channelId !== undefined) {
      const channel = this.channels.get(channelId);
      if (!channel) return this.#json(res, 404, { message: 'Unknown Channel', code: 10003 });
      if (rest === undefined && method === 'GET') return this.#json(res, 200, this.#channelJson(channel));
      if (rest === '/typing' && method === 'POST') {
        this.typing.push({ channelId, at: Date.now() });
        res.writeHead(204).end();
        this.#notify();
        return;
      }
      if (rest === '/messages' && method === 'GET') return this.#json(res, 200, this.#page(channelId, url.searchParams));
      if (rest === '/messages' && method === 'POST') return this.#createMessage(req, res, channel, body);
      if (rest === '/webhooks') return this.#channelWebhooks(res, channel, method, body);
    }
    return this.#json(res, 404, { message: '404: Not Found', code: 0 });
  }

  /** Newest first, as Discord answers `?after=` too. */
  #page(channelId: string, params: URLSearchParams): Json[] {
    const after = BigInt(params.get('after') ?? '0');
    const limit = Math.min(100, Number(params.get('limit') ?? 50));
    const newer = (this.history.get(channelId) ?? []).filter((m) => BigInt(String(m.id)) > after).slice(0, limit);
    return newer.reverse();
  }

  async #createMessage(req: IncomingMessage, res: ServerResponse, channel: FakeChannel, raw: Buffer): Promise<void> {
    if (this.#refusedByRateLimit(res)) return;
    const type = req.headers['content-type'] ?? '';
    const files: SentMessage['files'] = [];
    let json: unknown;
    if (type.startsWith('multipart/form-data')) {
      const form = await new Response(raw, { headers: { 'content-type': type } }).formData();
      json = JSON.parse(String(form.get('payload_json') ?? '{}'));
      for (const [key, value] of form.entries()) {
        if (key.startsWith('files[') && typeof value !== 'string') {
          files.push({ name: value.name, data: Buffer.from(await value.arrayBuffer()), contentType: value.type });
        }
      }
    } else json = JSON.parse(raw.toString('utf8') || '{}');
    const parsed = messageBody.safeParse(json);
    if (!parsed.success) return this.#json(res, 400, { message: 'Invalid Form Body', code: 50035 });
    const { content = '', message_reference, allowed_mentions } = parsed.data;
    if (content.length > 2000) return this.#json(res, 400, { message: 'Invalid Form Body: content too long', code: 50035 });
    if (!content && files.length === 0) return this.#json(res, 400, { message: 'Cannot send an empty message', code: 50006 });
    const id = snowflake();
    const message: Json = {
      id,
      channel_id: channel.id,
      author: this.#userJson(this.bot),
      content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: files.map((f) => ({ id: snowflake(), filename: f.name, size: f.data.length, url: 'http://127.0.0.1/x', proxy_url: '' })),
      embeds: [],
      pinned: false,
      type: message_reference ? 19 : 0,
      flags: 0,
      ...(message_reference ? { message_reference: { message_id: message_reference.message_id, channel_id: channel.id } } : {}),
    };
    this.#remember(channel.id, message);
    this.sent.push({
      id,
      channelId: channel.id,
      content,
      ...(message_reference ? { replyTo: message_reference.message_id } : {}),
      allowedMentions: allowed_mentions,
      files,
      at: Date.now(),
    });
    // Like Discord, every answer names the bucket; only a 429 says it is empty.
    res.setHeader('x-ratelimit-bucket', 'fake-bucket');
    res.setHeader('x-ratelimit-limit', '5');
    res.setHeader('x-ratelimit-remaining', '4');
    res.setHeader('x-ratelimit-reset-after', '1.000');
    this.#json(res, 200, message);
    // Discord echoes the bot's own message over the gateway: the adapter must ignore it.
    this.#dispatchMessage(channel, message);
    this.#notify();
  }

  /** Answers 429 while `rateLimitNext` has refusals left (message creates and webhook executes alike). */
  #refusedByRateLimit(res: ServerResponse): boolean {
    if (this.#rateLimit && this.#rateLimit.count > 0) {
      this.#rateLimit.count -= 1;
      const retryAfterMs = this.#rateLimit.retryAfterMs;
      this.rateLimited.push({ at: Date.now(), retryAfterMs });
      this.#notify();
      res.writeHead(429, {
        'content-type': 'application/json',
        'retry-after': String(Math.ceil(retryAfterMs / 1000)),
        'x-ratelimit-limit': '5',
        'x-ratelimit-remaining': '0',
        'x-ratelimit-reset-after': (retryAfterMs / 1000).toFixed(3),
        'x-ratelimit-bucket': 'fake-bucket',
        'x-ratelimit-scope': 'user',
      });
      res.end(JSON.stringify({ message: 'You are being rate limited.', retry_after: retryAfterMs / 1000, global: false }));
      return true;
    }
    return false;
  }

  /** Get Channel Webhooks and Create Webhook: both need Manage Webhooks; DMs have no webhooks. */
  async #channelWebhooks(res: ServerResponse, channel: FakeChannel, method: string, raw: Buffer): Promise<void> {
    if (channel.type === 1) return this.#json(res, 400, { message: 'Cannot execute action on a DM channel', code: 50003 });
    if (this.noManageWebhooks.has(channel.id)) return this.#json(res, 403, { message: 'Missing Permissions', code: 50013 });
    const json = (w: FakeWebhook): Json => ({
      id: w.id,
      type: 1,
      channel_id: w.channelId,
      guild_id: channel.guildId,
      name: w.name,
      avatar: null,
      application_id: w.applicationId,
      ...(w.applicationId === this.bot.id ? { token: w.token } : {}),
    });
    if (method === 'GET') return this.#json(res, 200, [...this.webhooks.values()].filter((w) => w.channelId === channel.id).map(json));
    if (method !== 'POST') return this.#json(res, 405, { message: '405: Method Not Allowed', code: 0 });
    const parsed = z.object({ name: z.string() }).safeParse(JSON.parse(raw.toString('utf8') || '{}'));
    if (!parsed.success || !validWebhookName(parsed.data.name)) return this.#json(res, 400, { message: 'Invalid Form Body', code: 50035 });
    const hook: FakeWebhook = {
      id: snowflake(),
      token: `hook-token-${snowflake()}-secret`,
      channelId: channel.id,
      name: parsed.data.name,
      applicationId: this.bot.id,
    };
    this.webhooks.set(hook.id, hook);
    return this.#json(res, 200, json(hook));
  }

  /** Execute Webhook: `?wait=true` answers the message, else 204; `thread_id` posts into a thread of the channel. */
  async #executeWebhook(
    req: IncomingMessage,
    res: ServerResponse,
    id: string,
    token: string,
    params: URLSearchParams,
    raw: Buffer,
  ): Promise<void> {
    const hook = this.webhooks.get(id);
    if (!hook || hook.token !== token) return this.#json(res, 404, { message: 'Unknown Webhook', code: 10015 });
    if (this.#refusedByRateLimit(res)) return;
    const parsed = webhookExecuteBody.safeParse(JSON.parse(raw.toString('utf8') || '{}'));
    if (!parsed.success) return this.#json(res, 400, { message: 'Invalid Form Body', code: 50035 });
    const { content = '', username, avatar_url, allowed_mentions } = parsed.data;
    if (!content) return this.#json(res, 400, { message: 'Cannot send an empty message', code: 50006 });
    if (content.length > 2000 || (username !== undefined && (!validWebhookName(username) || this.refusedUsernames.has(username))))
      return this.#json(res, 400, { message: 'Invalid Form Body', code: 50035 });
    const threadId = params.get('thread_id');
    const where = threadId ? this.channels.get(threadId) : this.channels.get(hook.channelId);
    if (!where || (threadId && where.parentId !== hook.channelId)) return this.#json(res, 400, { message: 'Unknown Channel', code: 10003 });
    const messageId = snowflake();
    const message: Json = {
      id: messageId,
      channel_id: where.id,
      webhook_id: hook.id,
      author: { id: hook.id, username: username ?? hook.name, avatar: null, discriminator: '0000', bot: true },
      content,
      timestamp: new Date().toISOString(),
      edited_timestamp: null,
      tts: false,
      mention_everyone: false,
      mentions: [],
      mention_roles: [],
      attachments: [],
      embeds: [],
      pinned: false,
      type: 0,
      flags: 0,
    };
    this.#remember(where.id, message);
    this.webhookPosts.push({
      id: messageId,
      webhookId: hook.id,
      channelId: where.id,
      content,
      username,
      avatarUrl: avatar_url,
      allowedMentions: allowed_mentions,
      authorization: req.headers.authorization,
    });
    if (params.get('wait') === 'true') this.#json(res, 200, message);
    else {
      res.writeHead(204).end();
      this.#notify();
    }
    // Everyone in the channel sees it, the bot too: the adapter must not take it for a person's message.
    this.#dispatchMessage(where, message);
  }

  #json(res: ServerResponse, status: number, body: unknown): void {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
    this.#notify();
  }
}

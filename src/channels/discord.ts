// Discord through discord.js: the gateway brings messages in (resumed after a drop, so nothing is missed; after
// a fresh session the channels seen are caught up from their history), REST sends replies, files and typing.
// Chats are channels (`discord:<channel id>`); a thread belongs to its parent channel's chat and is its threadId.
import {
  Client,
  DiscordAPIError,
  Events,
  GatewayCloseCodes,
  GatewayIntentBits,
  HTTPError,
  type Message,
  type MessageCreateOptions,
  MessageType,
  Options,
  Partials,
  RateLimitError,
  SimpleShardingStrategy,
  type Typing,
} from 'discord.js';
import { z } from 'zod';
import type { Logger } from '../log.js';
import { readBounded } from './bounded-body.js';
import { DiscordWebhooks, type WebhookStore, webhookUsername } from './discord-webhooks.js';
import { discordParts, discordSenderPrefix } from './format/discord.js';
import { lastRendered, sendParts } from './format/parts.js';
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

export type DiscordChannelOptions = { token: string; apiUrl: string } & {
  assistantName: string;
  log: Logger;
  /** How often typing is re-sent while on; Discord shows it for 10 s. */
  typingIntervalMs?: number;
  /** How long one connection attempt may take until READY. */
  connectTimeoutMs?: number;
  /** How long discord.js may try to get a dropped gateway back before we rebuild the client with backoff. */
  stallTimeoutMs?: number;
  /** Reconnect backoff: doubles from `initialMs` up to `maxMs`, with jitter. */
  backoff?: { initialMs: number; maxMs: number };
  /** Limit on one attachment download. */
  downloadTimeoutMs?: number;
  /** Where the webhooks sub-agents post through are kept; without it they post with their name in front. */
  webhooks?: WebhookStore;
  /** A sub-agent's picture: an address with `{name}` in it. Without it, the webhook's default picture. */
  senderAvatarUrl?: string;
};

export const DISCORD_PREFIX = 'discord:';
const MAX_TEXT = 2000;
/** Channels remembered for catching up after a fresh gateway session. */
const MAX_TRACKED_CHANNELS = 500;
/** How long stop() waits for discord.js to close the gateway socket. */
const DESTROY_WAIT_MS = 2_000;

/** A configuration problem Discord confirmed (bad token, intents not enabled): retrying will not help. */
export class DiscordConfigError extends Error {}

// ---- pure mapping (unit-tested) ----

export interface AttachmentFacts {
  url: string;
  name: string;
  size: number;
  contentType: string | null;
}

/** What the adapter needs from a discord.js Message, as plain data. */
export interface MessageFacts {
  id: string;
  /** The channel it was posted in: a thread's own id for a thread message. */
  channelId: string;
  /** For a thread message: the thread's parent channel, which is the chat. */
  parentId: string | null;
  isDm: boolean;
  /** For a thread: the parent's name. */
  channelName: string | null;
  guildName: string | null;
  authorId: string;
  authorName: string;
  authorIsBot: boolean;
  /** Not an ordinary message or reply (a join, a pin, a thread starter…). */
  system: boolean;
  content: string;
  createdAt: number;
  mentionedUsers: Array<{ id: string; name: string }>;
  mentionedRoles: Array<{ id: string; name: string; botId: string | null }>;
  mentionedChannels: Array<{ id: string; name: string }>;
  repliedUserId: string | null;
  stickers: string[];
  attachments: AttachmentFacts[];
}

export const chatIdOf = (channelId: string): string => `${DISCORD_PREFIX}${channelId}`;

export function channelIdOf(chatId: string): string {
  if (!chatId.startsWith(DISCORD_PREFIX)) throw new Error(`not a Discord chat id: ${chatId}`);
  const id = chatId.slice(DISCORD_PREFIX.length);
  if (!/^\d{1,25}$/.test(id)) throw new Error(`not a Discord channel id: ${chatId}`);
  return id;
}

/**
 * Mentions as a reader sees them: the bot (as a user or through its managed role) becomes `@<assistantName>`,
 * other users, roles and channels their names, custom emoji `:name:`.
 */
export function rewriteMentions(
  content: string,
  facts: Pick<MessageFacts, 'mentionedUsers' | 'mentionedRoles'> & Partial<Pick<MessageFacts, 'mentionedChannels'>>,
  botId: string,
  assistantName: string,
): string {
  const users = new Map(facts.mentionedUsers.map((u) => [u.id, u.name]));
  const roles = new Map(facts.mentionedRoles.map((r) => [r.id, r]));
  const channels = new Map((facts.mentionedChannels ?? []).map((c) => [c.id, c.name]));
  return content
    .replace(/<#(\d+)>/g, (raw, id: string) => (channels.has(id) ? `#${channels.get(id)}` : raw))
    .replace(/<a?:(\w+):\d+>/g, ':$1:')
    .replace(/<@!?(\d+)>/g, (raw, id: string) => (id === botId ? `@${assistantName}` : users.has(id) ? `@${users.get(id)}` : raw))
    .replace(/<@&(\d+)>/g, (raw, id: string) => {
      const role = roles.get(id);
      if (!role) return raw;
      return role.botId === botId ? `@${assistantName}` : `@${role.name}`;
    });
}

export function mentionsBot(facts: Pick<MessageFacts, 'mentionedUsers' | 'mentionedRoles' | 'repliedUserId'>, botId: string): boolean {
  return (
    facts.mentionedUsers.some((u) => u.id === botId) || facts.mentionedRoles.some((r) => r.botId === botId) || facts.repliedUserId === botId
  );
}

export function attachmentKind(contentType: string | null, name: string): InboundAttachment['kind'] {
  const type = (contentType ?? '').toLowerCase();
  if (type.startsWith('image/')) return 'image';
  if (type.startsWith('audio/')) return 'audio';
  if (type.startsWith('video/')) return 'video';
  if (!type && /\.(png|jpe?g|gif|webp)$/i.test(name)) return 'image';
  if (!type && /\.(ogg|mp3|m4a|wav)$/i.test(name)) return 'audio';
  if (!type && /\.(mp4|mov|webm)$/i.test(name)) return 'video';
  return 'document';
}

/**
 * The message in pincer's shape, or undefined for what pincer must not see: its own echoes, other bots and
 * webhooks, system notices, and messages with nothing in them.
 */
export function toInbound(facts: MessageFacts, botId: string, assistantName: string): InboundMessage | undefined {
  if (facts.authorId === botId || facts.authorIsBot || facts.system) return undefined;
  const stickers = facts.stickers.map((s) => `[sticker: ${s}]`).join(' ');
  const content = rewriteMentions(facts.content, facts, botId, assistantName);
  const text = [content, stickers].filter(Boolean).join('\n');
  if (!text && facts.attachments.length === 0) return undefined;
  const chatChannel = facts.parentId ?? facts.channelId;
  const chatName = facts.isDm ? facts.authorName : `#${facts.channelName ?? chatChannel}${facts.guildName ? ` (${facts.guildName})` : ''}`;
  return {
    chatId: chatIdOf(chatChannel),
    channel: 'discord',
    platformId: facts.id,
    senderId: chatIdOf(facts.authorId),
    senderName: facts.authorName,
    text,
    sentAt: facts.createdAt,
    chatName,
    isGroup: !facts.isDm,
    ...(mentionsBot(facts, botId) ? { mentionsBot: true } : {}),
    ...(facts.parentId ? { threadId: facts.channelId } : {}),
  };
}

/** Delay before reconnect attempt `attempt` (0-based): doubling, capped, between half and all of it. */
export function backoffDelay(attempt: number, random: number, initialMs = 1_000, maxMs = 60_000): number {
  const base = Math.min(maxMs, initialMs * 2 ** Math.min(attempt, 30));
  return Math.round(base / 2 + (base / 2) * random);
}

/** What a failed REST call becomes: a rate limit the outbox waits out, or an Error saying what Discord said. */
export function sendError(err: unknown): Error {
  if (err instanceof RateLimitError) {
    const wait = Math.max(err.retryAfter, err.timeToReset, err.sublimitTimeout, 0);
    return new RateLimitedError(wait || 1_000, `Discord rate limit on ${err.method.toUpperCase()} ${err.route}: retry in ${wait} ms`);
  }
  if (err instanceof DiscordAPIError) {
    if (err.status === 429) {
      const body = z.object({ retry_after: z.number().nonnegative() }).safeParse(err.rawError);
      const seconds = body.success ? body.data.retry_after : 1;
      return new RateLimitedError(Math.ceil(seconds * 1000), `Discord rate limit: ${err.message}`);
    }
    return new Error(`Discord refused: ${err.message} (code ${err.code}, HTTP ${err.status})`);
  }
  if (err instanceof HTTPError) return new Error(`Discord answered HTTP ${err.status} ${err.message}`);
  return new Error(`Discord request failed: ${err instanceof Error ? err.message : String(err)}`);
}

/** Why Discord closed the gateway for good, in words that say what to fix. */
function closeCodeError(code: number): DiscordConfigError {
  switch (code) {
    case GatewayCloseCodes.AuthenticationFailed:
      return new DiscordConfigError('Discord rejected the bot token (gateway close 4004): check DISCORD_BOT_TOKEN');
    case GatewayCloseCodes.DisallowedIntents:
      return new DiscordConfigError(
        'Discord refused the Message Content intent (gateway close 4014): enable "Message Content Intent" under Bot in the Developer Portal',
      );
    case GatewayCloseCodes.InvalidIntents:
      return new DiscordConfigError('Discord refused the intents (gateway close 4013)');
    default:
      return new DiscordConfigError(`Discord closed the gateway for good (code ${code})`);
  }
}

function isTokenInvalid(err: unknown): boolean {
  return err instanceof Error && (('code' in err && err.code === 'TokenInvalid') || (err instanceof DiscordAPIError && err.status === 401));
}

/** Downloads a file, refusing one that says or turns out to be larger than `maxBytes` (undefined then). */
export async function downloadBounded(url: string, maxBytes: number, signal: AbortSignal): Promise<Buffer | undefined> {
  const res = await fetch(url, { signal });
  if (!res.ok || !res.body) throw new Error(`download answered HTTP ${res.status}`);
  return readBounded(res, maxBytes);
}

/** discord.js Message → plain facts. */
export function factsOf(message: Message): MessageFacts {
  const channel = message.channel;
  const thread = channel.isThread() ? channel : null;
  const named = thread ? thread.parent : channel.isDMBased() ? null : channel;
  return {
    id: message.id,
    channelId: message.channelId,
    parentId: thread?.parentId ?? null,
    isDm: channel.isDMBased(),
    channelName: named && 'name' in named ? named.name : null,
    guildName: message.guild?.name ?? null,
    authorId: message.author.id,
    authorName: message.member?.displayName ?? message.author.displayName,
    authorIsBot: message.author.bot || message.webhookId !== null,
    system: message.type !== MessageType.Default && message.type !== MessageType.Reply,
    content: message.content,
    createdAt: message.createdTimestamp,
    mentionedUsers: message.mentions.users.map((u) => ({
      id: u.id,
      name: message.mentions.members?.get(u.id)?.displayName ?? u.displayName,
    })),
    mentionedRoles: message.mentions.roles.map((r) => ({ id: r.id, name: r.name, botId: r.tags?.botId ?? null })),
    mentionedChannels: message.mentions.channels.map((c) => ({ id: c.id, name: 'name' in c && c.name ? c.name : c.id })),
    repliedUserId: message.mentions.repliedUser?.id ?? null,
    stickers: message.stickers.map((s) => s.name),
    attachments: message.attachments.map((a) => ({ url: a.url, name: a.name, size: a.size, contentType: a.contentType })),
  };
}

const errorText = (err: unknown): string => (err instanceof Error ? err.message : String(err));

const compareSnowflakes = (a: string, b: string): number => (BigInt(a) < BigInt(b) ? -1 : BigInt(a) > BigInt(b) ? 1 : 0);

// ---- the adapter ----

export class DiscordChannel implements Channel {
  readonly name = 'discord';
  readonly maxTextLength = MAX_TEXT;
  readonly #o: DiscordChannelOptions;
  readonly #log: Logger;
  #sink: InboundSink | undefined;
  #client: Client | undefined;
  #state: ConnectionState = 'disconnected';
  #stopped = true;
  #connecting = false;
  /** Ends an attempt in flight when stop() comes first. */
  #abortConnect: (() => void) | undefined;
  #attempt = 0;
  #readies = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stallTimer: NodeJS.Timeout | undefined;
  #downloads = new AbortController();
  readonly #typing = new Map<string, NodeJS.Timeout>();
  /** Clients given up on: their shards must never connect again. */
  readonly #retired = new WeakSet<Client>();
  /** Platform channel id → newest message id handled from others there: where a catch-up starts. */
  readonly #lastSeen = new Map<string, string>();
  /** Chat → the thread of its newest message, where typing shows. */
  readonly #threadOf = new Map<string, string | undefined>();
  /** One chain per chat keeps its messages in order while media downloads. */
  readonly #chains = new Map<string, Promise<void>>();

  readonly #webhooks: DiscordWebhooks | undefined;

  constructor(options: DiscordChannelOptions) {
    this.#o = options;
    this.#log = options.log;
    this.#webhooks = options.webhooks && new DiscordWebhooks(options.webhooks, options.log);
  }

  owns(chatId: string): boolean {
    return chatId.startsWith(DISCORD_PREFIX);
  }

  state(): ConnectionState {
    return this.#state;
  }

  /** Connects; rejects only when Discord confirms a configuration error. Other failures retry in the background. */
  async start(sink: InboundSink): Promise<void> {
    this.#sink = sink;
    this.#stopped = false;
    this.#downloads = new AbortController();
    this.#state = 'connecting';
    try {
      await this.#connect();
    } catch (err) {
      if (err instanceof DiscordConfigError) {
        this.#stopped = true;
        this.#state = 'disconnected';
        throw err;
      }
      this.#log.warn({ err: errorText(err) }, 'could not connect to Discord; retrying in the background');
      this.#scheduleReconnect();
    }
  }

  readonly postsAsSender = true;
  readonly #parts = lastRendered((markdown: string, room: number) => discordParts(markdown, MAX_TEXT - room));

  partsOf(markdown: string, sender?: string): number {
    return this.#parts(markdown, sender === undefined ? 0 : discordSenderPrefix(sender).length).length;
  }

  async send(chatId: string, out: Outbound): Promise<{ platformId: string }> {
    // REST does not need the gateway: replies go out while it reconnects, only not between two clients.
    const client = this.#client;
    if (!client?.token) throw new Error('Discord is not connected (reconnecting)');
    const target = out.replyTo?.threadId ?? channelIdOf(chatId);
    try {
      const channel = await client.channels.fetch(target);
      if (!channel?.isSendable()) throw new Error(`Discord channel ${target} does not take messages`);
      // Only a reply's first message answers (and so pings) the asker; the parts after it simply follow.
      const reply = (first: boolean) =>
        first && out.replyTo ? { reply: { messageReference: out.replyTo.platformId, failIfNotExists: false } } : {};
      // Nobody is pinged by accident: no @everyone or role pings from the agent's text.
      const base = (first: boolean) => ({ allowedMentions: { parse: ['users' as const], repliedUser: true }, ...reply(first) });
      if (!out.file) {
        // A sub-agent's message goes through the channel's webhook under its name, where there is one (not in
        // a DM); else from the bot with the name in front. A webhook message quotes nothing.
        const sender = out.sender;
        const prefix = sender === undefined ? '' : discordSenderPrefix(sender);
        const username = sender === undefined || channel.isDMBased() ? undefined : webhookUsername(sender);
        const avatar = sender !== undefined && this.#o.senderAvatarUrl ? senderFace(sender, this.#o.senderAvatarUrl, []) : undefined;
        const hookChannel = channelIdOf(chatId);
        const thread = target === hookChannel ? undefined : target;
        return await sendParts(this.#parts(out.text, prefix.length), out.part, async (content, first) => {
          if (username !== undefined && this.#webhooks) {
            const id = await this.#webhooks.post(client.rest, client.application?.id, hookChannel, thread, {
              content,
              username,
              ...(avatar && 'url' in avatar ? { avatarUrl: avatar.url } : {}),
            });
            if (id !== undefined) return id;
          }
          const sent = await channel.send({ ...base(first), content: prefix + content } satisfies MessageCreateOptions);
          return sent.id;
        });
      }
      // A caption longer than one message goes first as text; the file carries the rest.
      const parts = out.text ? discordParts(out.text, MAX_TEXT) : [];
      const caption = parts.pop();
      for (const [i, part] of parts.entries()) await channel.send({ ...base(i === 0), content: part });
      const sent = await channel.send({
        ...base(parts.length === 0),
        ...(caption ? { content: caption } : {}),
        files: [{ attachment: out.file.data, name: out.file.name }],
      });
      return { platformId: sent.id };
    } catch (err) {
      throw err instanceof RateLimitedError ? err : sendError(err);
    }
  }

  async setTyping(chatId: string, on: boolean): Promise<void> {
    const timer = this.#typing.get(chatId);
    if (!on) {
      clearInterval(timer);
      this.#typing.delete(chatId);
      return;
    }
    if (timer) return;
    const tick = () => {
      this.#sendTyping(chatId).catch((err: unknown) => this.#log.debug({ err: errorText(err), chatId }, 'typing failed'));
    };
    this.#typing.set(chatId, setInterval(tick, this.#o.typingIntervalMs ?? 8_000));
    await this.#sendTyping(chatId);
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#retryTimer);
    clearTimeout(this.#stallTimer);
    this.#retryTimer = undefined;
    this.#stallTimer = undefined;
    for (const timer of this.#typing.values()) clearInterval(timer);
    this.#typing.clear();
    this.#downloads.abort();
    this.#abortConnect?.();
    const client = this.#client;
    this.#client = undefined;
    if (client) await this.#retire(client);
    await Promise.allSettled([...this.#chains.values()]);
    this.#state = 'disconnected';
  }

  async #sendTyping(chatId: string): Promise<void> {
    const client = this.#client;
    if (!client?.token) return;
    const channel = await client.channels.fetch(this.#threadOf.get(chatId) ?? channelIdOf(chatId));
    if (channel?.isSendable()) await channel.sendTyping();
  }

  #createClient(): Client {
    const client = new Client({
      intents: [
        GatewayIntentBits.Guilds,
        GatewayIntentBits.GuildMessages,
        GatewayIntentBits.DirectMessages,
        GatewayIntentBits.MessageContent,
        // TYPING_START: someone typing is a hint that pincer may start the chat's agent early.
        GatewayIntentBits.GuildMessageTyping,
        GatewayIntentBits.DirectMessageTyping,
      ],
      // DM channels are not announced by the gateway: without this partial their messages are dropped.
      partials: [Partials.Channel],
      // pincer's store is the record of messages; discord.js's cache would only hide redeliveries while it remembers.
      makeCache: Options.cacheWithLimits({ ...Options.DefaultMakeCacheSettings, MessageManager: 0 }),
      // Every rate limit is thrown, not slept on inside discord.js: the outbox reschedules the send.
      rest: { api: this.#o.apiUrl, retries: 0, rejectOnRateLimit: () => true },
      ws: {
        buildStrategy: (manager) => {
          // client.destroy() cannot stop a shard that is between two of discord.js's own reconnect attempts (the
          // destroy is a no-op then, and the loop goes on forever): a retired client's next attempt waits here,
          // for good, before it opens any socket.
          const retrieve = manager.options.retrieveSessionInfo.bind(manager.options);
          manager.options.retrieveSessionInfo = (shardId) => (this.#retired.has(client) ? new Promise(() => undefined) : retrieve(shardId));
          return new SimpleShardingStrategy(manager);
        },
      },
    });
    client.on(Events.MessageCreate, (message) => {
      if (client === this.#client) this.#onMessage(message);
    });
    client.on(Events.TypingStart, (typing) => {
      if (client === this.#client) this.#onTyping(typing);
    });
    client.on(Events.ShardReady, () => {
      if (client !== this.#client) return;
      this.#gatewayUp();
      // A READY after the first one is a fresh session: Discord does not replay what it missed, so fetch it.
      if (this.#readies++ > 0) void this.#catchUp(client);
    });
    client.on(Events.ShardResume, (_shard, replayed) => {
      if (client !== this.#client) return;
      this.#log.info({ replayed }, 'Discord gateway resumed');
      this.#gatewayUp();
    });
    client.on(Events.ShardReconnecting, () => {
      if (client !== this.#client || this.#connecting) return;
      if (this.#state === 'connected') this.#log.info('Discord gateway dropped; discord.js reconnects');
      this.#state = 'connecting';
      this.#stallTimer ??= setTimeout(() => {
        this.#stallTimer = undefined;
        if (client !== this.#client || this.#state === 'connected') return;
        this.#log.warn({ afterMs: this.#o.stallTimeoutMs ?? 30_000 }, 'Discord gateway did not come back; reconnecting with backoff');
        void this.#rebuild();
      }, this.#o.stallTimeoutMs ?? 30_000);
    });
    client.on(Events.ShardDisconnect, (event) => {
      if (client !== this.#client || this.#connecting) return;
      this.#log.error(
        { code: event.code, reason: closeCodeError(event.code).message },
        'Discord closed the gateway; retrying with backoff',
      );
      void this.#rebuild();
    });
    client.on(Events.Error, (err) => this.#log.error({ err }, 'discord.js error'));
    client.on(Events.ShardError, (err) => this.#log.warn({ err: err.message }, 'Discord gateway error'));
    client.on(Events.Warn, (message) => this.#log.warn({ discord: message }, 'discord.js warning'));
    client.on(Events.Debug, (message) => this.#log.trace({ discord: message }, 'discord.js'));
    client.rest.on('rateLimited', (info) => this.#log.debug({ route: info.route, retryAfter: info.retryAfter }, 'Discord rate limit'));
    return client;
  }

  /** One connection attempt: a new client, logged in until READY, or an error (classified for start()). */
  async #connect(): Promise<void> {
    const client = this.#createClient();
    this.#client = client;
    this.#connecting = true;
    const timeoutMs = this.#o.connectTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    let onClose: ((event: { code: number }) => void) | undefined;
    try {
      const loggedIn = client.login(this.#o.token);
      const ready = new Promise<void>((resolve) => client.once(Events.ClientReady, () => resolve()));
      const closed = new Promise<never>((_, reject) => {
        onClose = (event) => reject(closeCodeError(event.code));
        client.on(Events.ShardDisconnect, onClose);
      });
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no READY from the Discord gateway within ${timeoutMs} ms`)), timeoutMs);
        this.#abortConnect = () => reject(new Error('stopped while connecting'));
      });
      for (const p of [loggedIn, closed, timeout]) p.catch(() => undefined);
      await Promise.race([Promise.all([loggedIn, ready]), closed, timeout]);
    } catch (err) {
      if (this.#client === client) this.#client = undefined;
      await this.#retire(client);
      if (isTokenInvalid(err)) throw new DiscordConfigError('Discord rejected the bot token (401): check DISCORD_BOT_TOKEN');
      throw err;
    } finally {
      this.#connecting = false;
      this.#abortConnect = undefined;
      clearTimeout(timer);
      if (onClose) client.off(Events.ShardDisconnect, onClose);
    }
    if (this.#stopped || this.#client !== client) {
      await this.#retire(client);
      return;
    }
    this.#attempt = 0;
    this.#gatewayUp();
    this.#log.info({ bot: client.user?.tag }, 'connected to Discord');
  }

  #gatewayUp(): void {
    this.#state = 'connected';
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  /** Drops the current client and connects a new one after the backoff. */
  async #rebuild(): Promise<void> {
    const client = this.#client;
    this.#client = undefined;
    clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
    this.#state = 'connecting';
    if (client) await this.#retire(client);
    this.#scheduleReconnect();
  }

  async #retire(client: Client): Promise<void> {
    this.#retired.add(client);
    // Destroying a shard that waits for HELLO or READY starts a second destroy inside discord.js that takes the
    // first one's close handler, so client.destroy() may never resolve although the socket closes: wait boundedly.
    let timer: NodeJS.Timeout | undefined;
    const destroyed = client.destroy().catch((err: unknown) => this.#log.debug({ err }, 'discord.js client destroy failed'));
    await Promise.race([destroyed, new Promise((resolve) => (timer = setTimeout(resolve, DESTROY_WAIT_MS)))]);
    clearTimeout(timer);
  }

  #scheduleReconnect(): void {
    if (this.#stopped || this.#retryTimer) return;
    const { initialMs, maxMs } = this.#o.backoff ?? { initialMs: 1_000, maxMs: 60_000 };
    const delayMs = backoffDelay(this.#attempt++, Math.random(), initialMs, maxMs);
    this.#state = 'connecting';
    this.#log.info({ delayMs, attempt: this.#attempt }, 'reconnecting to Discord');
    this.#retryTimer = setTimeout(() => {
      this.#retryTimer = undefined;
      if (this.#stopped) return;
      this.#connect().catch((err: unknown) => {
        const level = err instanceof DiscordConfigError ? 'error' : 'warn';
        this.#log[level]({ err: errorText(err) }, 'Discord connection attempt failed');
        this.#scheduleReconnect();
      });
    }, delayMs);
  }

  /** Fetches what was said in the channels seen since the last message handled there (newest 100 each). */
  async #catchUp(client: Client): Promise<void> {
    for (const [channelId, after] of [...this.#lastSeen]) {
      if (client !== this.#client) return;
      try {
        const channel = await client.channels.fetch(channelId);
        if (!channel?.isTextBased()) continue;
        const page = await channel.messages.fetch({ after, limit: 100, cache: false });
        const missed = [...page.values()].sort((a, b) => compareSnowflakes(a.id, b.id));
        if (missed.length > 0)
          this.#log.info({ channelId, count: missed.length }, 'catching up on Discord messages missed while disconnected');
        for (const message of missed) this.#onMessage(message);
      } catch (err) {
        this.#log.warn({ err: errorText(err), channelId }, 'could not catch up on a Discord channel');
      }
    }
  }

  #onMessage(message: Message): void {
    const botId = message.client.user.id;
    let facts: MessageFacts;
    try {
      facts = factsOf(message);
    } catch (err) {
      this.#log.warn({ err, messageId: message.id }, 'unreadable Discord message skipped');
      return;
    }
    const inbound = toInbound(facts, botId, this.#o.assistantName);
    if (!inbound) return;
    this.#track(facts.channelId, facts.id);
    this.#threadOf.set(inbound.chatId, inbound.threadId);
    const previous = this.#chains.get(inbound.chatId) ?? Promise.resolve();
    const next = previous
      .then(() => this.#deliver(inbound, facts.attachments))
      .catch((err: unknown) =>
        this.#log.error({ err, chatId: inbound.chatId, platformId: inbound.platformId }, 'Discord message not stored'),
      )
      .finally(() => {
        if (this.#chains.get(inbound.chatId) === next) this.#chains.delete(inbound.chatId);
      });
    this.#chains.set(inbound.chatId, next);
  }

  /** Someone (not the bot, not another bot) typing: a hint for the chat, a thread's being its parent channel's. */
  #onTyping(typing: Typing): void {
    try {
      if (this.#stopped || typing.user.id === typing.client.user.id || typing.user.bot) return;
      const channel = typing.channel;
      const chatChannel = channel.isThread() ? channel.parentId : channel.id;
      if (chatChannel) this.#sink?.typing(chatIdOf(chatChannel));
    } catch (err) {
      this.#log.debug({ err: errorText(err), channelId: typing.channel.id }, 'Discord typing hint not passed on');
    }
  }

  #track(channelId: string, messageId: string): void {
    const known = this.#lastSeen.get(channelId);
    if (known && compareSnowflakes(known, messageId) >= 0) return;
    this.#lastSeen.delete(channelId);
    this.#lastSeen.set(channelId, messageId);
    if (this.#lastSeen.size > MAX_TRACKED_CHANNELS) {
      const oldest = this.#lastSeen.keys().next().value;
      if (oldest !== undefined) this.#lastSeen.delete(oldest);
    }
  }

  async #deliver(inbound: InboundMessage, files: AttachmentFacts[]): Promise<void> {
    const sink = this.#sink;
    if (!sink || this.#stopped) return;
    const attachments: InboundAttachment[] = [];
    const notes: string[] = [];
    if (files.length > 0 && sink.isJoined(inbound.chatId) && !sink.seen(inbound.chatId, inbound.platformId)) {
      for (const file of files) {
        const got = await this.#download(file, sink.maxMediaBytes);
        if (got.data) {
          attachments.push({
            kind: attachmentKind(file.contentType, file.name),
            name: file.name,
            data: got.data,
            ...(file.contentType ? { mime: file.contentType } : {}),
          });
        } else notes.push(`[attachment ${file.name} not kept: ${got.why}]`);
      }
    }
    const text = notes.length > 0 ? [inbound.text, ...notes].filter(Boolean).join('\n') : inbound.text;
    await sink.ingest({ ...inbound, text, ...(attachments.length > 0 ? { attachments } : {}) });
  }

  async #download(file: AttachmentFacts, maxBytes: number): Promise<{ data?: Buffer; why?: string }> {
    const limit = `${Math.round(maxBytes / 1024 / 1024)} MB`;
    if (file.size > maxBytes) return { why: `larger than ${limit}` };
    try {
      const signal = AbortSignal.any([this.#downloads.signal, AbortSignal.timeout(this.#o.downloadTimeoutMs ?? 60_000)]);
      const data = await downloadBounded(file.url, maxBytes, signal);
      return data ? { data } : { why: `larger than ${limit}` };
    } catch (err) {
      this.#log.warn({ err: errorText(err), name: file.name }, 'Discord attachment download failed');
      return { why: 'download failed' };
    }
  }
}

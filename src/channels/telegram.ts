// Telegram through the Bot API with grammY: long polling (Telegram holds each getUpdates call open until
// something happens), chats named `tg:<chat id>` (negative for groups), replies formatted with message entities.
import { setTimeout as sleep } from 'node:timers/promises';
import { Api, GrammyError, InputFile } from 'grammy';
import type { Chat, Message, MessageEntity, Update, User, UserFromGetMe } from 'grammy/types';
import type { Logger } from '../log.js';
import { lastRendered, sendParts } from './format/parts.js';
import { type TelegramText, telegramParts, withTelegramPrefix } from './format/telegram.js';
import { describeError, retryAfterMs, sendFailure } from './telegram-errors.js';
import { type PoolAssignments, type PoolBot, TelegramPool } from './telegram-pool.js';
import type { Channel, ConnectionState, InboundAttachment, InboundMessage, InboundSink, Outbound } from './types.js';

export { describeError, retryAfterMs, sendFailure } from './telegram-errors.js';

export const TELEGRAM_PREFIX = 'tg:';
/** Telegram's limits: message text, media caption, photos it accepts as photos (larger go as documents). */
export const TELEGRAM_MAX_TEXT = 4096;
export const TELEGRAM_MAX_CAPTION = 1024;
const MAX_PHOTO_BYTES = 10 * 1024 * 1024;
const PHOTO_NAME = /\.(jpe?g|png|webp)$/i;

/** Bot commands the adapter answers itself (registered with setMyCommands so clients offer them). */
const COMMANDS = [
  { command: 'start', description: 'Say hello' },
  { command: 'chatid', description: "Show this chat's id for pincer" },
] as const;

/** An update that keeps failing to be stored is given up after this many tries, so it cannot block the chat forever. */
const MAX_UPDATE_ATTEMPTS = 5;
/** Bounds of calls that are not long polls (the first getMe, a download): a silent network must not hang pincer. */
const CONNECT_TIMEOUT_MS = 30_000;
const DOWNLOAD_TIMEOUT_MS = 120_000;

export type TelegramChannelOptions = { token: string; apiRoot: string } & {
  assistantName: string;
  log: Logger;
  /** Seconds Telegram holds a getUpdates call open when nothing is new (default 30). */
  pollTimeoutSeconds?: number;
  /** Reconnect backoff, doubled per failure with jitter (default 1 s → 60 s). */
  backoffMs?: { min: number; max: number };
  /** How often the typing indicator is renewed while on (Telegram shows it for 5 s; default 4.5 s). */
  typingIntervalMs?: number;
  /** Extra bots that post as sub-agents in groups, and where their assignments are kept. */
  pool?: { tokens: string[]; assignments: PoolAssignments };
};

/** The bot as getMe names it: its id recognises replies to it, its username mentions of it. */
export interface BotIdentity {
  id: number;
  username: string;
}

/** A file a message carries, before it is downloaded. */
export interface MediaRef {
  kind: InboundAttachment['kind'];
  /** What the agent is told the file was ("photo", "voice note"). */
  label: string;
  fileId: string;
  size?: number;
  name?: string;
  mime?: string;
}

export function telegramChatId(id: number): string {
  return `${TELEGRAM_PREFIX}${id}`;
}

/** `tg:-100123` → -100123; anything else is not a chat this adapter can reach. */
export function platformChatId(chatId: string): number {
  const id = chatId.startsWith(TELEGRAM_PREFIX) ? Number(chatId.slice(TELEGRAM_PREFIX.length)) : Number.NaN;
  if (!Number.isSafeInteger(id) || id === 0) throw new Error(`not a Telegram chat id: ${chatId}`);
  return id;
}

export function userName(user: Pick<User, 'first_name' | 'last_name' | 'username'>): string {
  const full = [user.first_name, user.last_name].filter(Boolean).join(' ').trim();
  return full || user.username || 'unknown';
}

export function chatName(chat: Chat): string {
  if (chat.type === 'private') return userName(chat);
  return chat.title || String(chat.id);
}

/** The command (`/chatid`, `/chatid@thisbot`) a message starts with, when it is addressed to this bot. */
export function commandOf(msg: Message, botUsername: string): string | undefined {
  const entity = msg.entities?.[0];
  if (!msg.text || entity?.type !== 'bot_command' || entity.offset !== 0) return undefined;
  const [name = '', target] = msg.text.slice(1, entity.length).split('@');
  if (target !== undefined && target.toLowerCase() !== botUsername.toLowerCase()) return undefined;
  return name.toLowerCase();
}

/** grammY types signals as its abort-controller polyfill's; Node's own signal has all it uses (`aborted`, events). */
type GrammySignal = Parameters<Api['getMe']>[0];
const forGrammy = (signal: AbortSignal): GrammySignal => signal as unknown as GrammySignal;

/**
 * A signal for one call: aborted at stop or after `ms`. (Made by hand rather than with AbortSignal.any, whose
 * dependents of a long-lived signal are kept longer than needed on some Node 20 releases.)
 */
function callSignal(stop: AbortSignal, ms: number): { signal: AbortSignal; done(): void } {
  const controller = new AbortController();
  const abort = () => controller.abort();
  const timer = setTimeout(abort, ms);
  stop.addEventListener('abort', abort, { once: true });
  if (stop.aborted) abort();
  return {
    signal: controller.signal,
    done: () => {
      clearTimeout(timer);
      stop.removeEventListener('abort', abort);
    },
  };
}

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * Finds mentions of the bot (`@botname` entities, text mentions of its user, or the bare `@botname` in text
 * without entities) and rewrites each to `@<assistantName>`, so the agent and the trigger read its own name.
 */
export function rewriteMentions(
  text: string,
  entities: readonly MessageEntity[],
  bot: BotIdentity,
  assistantName: string,
): { text: string; mentioned: boolean } {
  const handle = `@${bot.username}`.toLowerCase();
  const spans = entities
    .filter(
      (e) =>
        (e.type === 'mention' && text.slice(e.offset, e.offset + e.length).toLowerCase() === handle) ||
        (e.type === 'text_mention' && e.user.id === bot.id),
    )
    .sort((a, b) => b.offset - a.offset);
  let out = text;
  // Entity offsets count UTF-16 code units, as JavaScript strings do; replacing from the end keeps earlier offsets valid.
  for (const e of spans) out = `${out.slice(0, e.offset)}@${assistantName}${out.slice(e.offset + e.length)}`;
  let mentioned = spans.length > 0;
  const bare = new RegExp(`(?<![\\w@])@${escapeRegExp(bot.username)}(?!\\w)`, 'gi');
  out = out.replace(bare, () => {
    mentioned = true;
    return `@${assistantName}`;
  });
  return { text: out, mentioned };
}

/** Telegram's service note that the bot was added to a chat (or a chat was made with it in). */
function botJoinedNote(msg: Message, bot: BotIdentity, assistantName: string): string | undefined {
  const added = msg.new_chat_members?.some((u) => u.id === bot.id);
  if (!added && !msg.group_chat_created && !msg.supergroup_chat_created) return undefined;
  return `[${msg.from ? userName(msg.from) : 'someone'} added ${assistantName} to this chat]`;
}

/** A message in pincer's shape (attachments are added by the adapter); undefined for what pincer ignores. */
export function toInbound(msg: Message, bot: BotIdentity, assistantName: string): InboundMessage | undefined {
  // The bot's own messages (and anything it posted through another client) are never input.
  if (msg.from?.id === bot.id) return undefined;
  const body = msg.text ?? msg.caption;
  const note = body === undefined ? botJoinedNote(msg, bot, assistantName) : undefined;
  if (body === undefined && note === undefined && mediaOf(msg).length === 0) return undefined;
  const { text, mentioned } = rewriteMentions(body ?? note ?? '', msg.entities ?? msg.caption_entities ?? [], bot, assistantName);
  // An anonymous admin or a linked channel speaks as a chat, not as a user.
  const sender = msg.sender_chat
    ? { id: telegramChatId(msg.sender_chat.id), name: msg.author_signature ?? chatName(msg.sender_chat) }
    : msg.from
      ? { id: telegramChatId(msg.from.id), name: userName(msg.from) }
      : { id: `${TELEGRAM_PREFIX}unknown`, name: 'unknown' };
  const repliesToBot = msg.reply_to_message?.from?.id === bot.id;
  return {
    chatId: telegramChatId(msg.chat.id),
    channel: 'telegram',
    // Message ids are unique within a chat and the same on every redelivery: the store's dedup key.
    platformId: String(msg.message_id),
    senderId: sender.id,
    senderName: sender.name,
    text,
    sentAt: msg.date * 1000,
    chatName: chatName(msg.chat),
    isGroup: msg.chat.type !== 'private',
    ...(mentioned || repliesToBot ? { mentionsBot: true } : {}),
    ...(msg.is_topic_message && msg.message_thread_id !== undefined ? { threadId: String(msg.message_thread_id) } : {}),
  };
}

/** The files a message carries: the largest size of a photo, documents, voice notes, audio, video. */
export function mediaOf(msg: Message): MediaRef[] {
  const refs: MediaRef[] = [];
  const size = (n: number | undefined) => (n === undefined ? {} : { size: n });
  if (msg.photo && msg.photo.length > 0) {
    const area = (p: { width: number; height: number; file_size?: number }) => p.file_size ?? p.width * p.height;
    const largest = msg.photo.reduce((a, b) => (area(b) > area(a) ? b : a));
    // Telegram re-encodes every photo as JPEG.
    refs.push({ kind: 'image', label: 'photo', fileId: largest.file_id, ...size(largest.file_size), mime: 'image/jpeg' });
  }
  const file = (
    kind: MediaRef['kind'],
    label: string,
    f: { file_id: string; file_size?: number; file_name?: string; mime_type?: string },
  ) => {
    refs.push({
      kind,
      label,
      fileId: f.file_id,
      ...size(f.file_size),
      ...(f.file_name ? { name: f.file_name } : {}),
      ...(f.mime_type ? { mime: f.mime_type } : {}),
    });
  };
  // An animation also comes as `document` (Telegram keeps both for old clients): the document covers it.
  if (msg.document) file('document', 'document', msg.document);
  if (msg.voice) file('audio', 'voice note', { mime_type: 'audio/ogg', ...msg.voice });
  if (msg.audio) file('audio', 'audio', msg.audio);
  if (msg.video) file('video', 'video', msg.video);
  if (msg.video_note) file('video', 'video note', { mime_type: 'video/mp4', ...msg.video_note });
  return refs;
}

/** A token Telegram refuses (401 revoked, 404 malformed): retrying cannot help. */
function isTokenRefused(err: unknown): boolean {
  return err instanceof GrammyError && (err.error_code === 401 || err.error_code === 404);
}

/** Doubling backoff with jitter: the n-th consecutive failure waits about min·2ⁿ⁻¹, at most max. */
export function backoffDelay(failures: number, min: number, max: number, random = Math.random): number {
  const ceiling = Math.min(max, min * 2 ** Math.max(0, failures - 1));
  return Math.round(ceiling / 2 + (random() * ceiling) / 2);
}

/** A formatted text's entities under the name the method takes them (none: no field, as Telegram's own clients send). */
function entitiesOf<K extends 'entities' | 'caption_entities'>(part: TelegramText, key: K): Partial<Record<K, MessageEntity[]>> {
  return part.entities.length > 0 ? ({ [key]: part.entities } as Partial<Record<K, MessageEntity[]>>) : {};
}

/** A sub-agent's name before its message, where no pool bot posts it. */
const senderPrefix = (sender: string) => `${sender}: `;

/** A file name grammY can put in a multipart header as is (it writes it unquoted). */
function safeUploadName(name: string): string {
  return name.replace(/[\r\n";\\]/g, '_') || 'file';
}

// The Bot API does not tell bots that a user is typing: this adapter never calls sink.typing.
export class TelegramChannel implements Channel {
  readonly name = 'telegram';
  readonly maxTextLength = TELEGRAM_MAX_TEXT;
  readonly #options: TelegramChannelOptions;
  readonly #log: Logger;
  readonly #api: Api;
  readonly #typing = new Map<string, NodeJS.Timeout>();
  readonly postsAsSender = true;
  readonly #parts = lastRendered((markdown: string, room: number) => telegramParts(markdown, TELEGRAM_MAX_TEXT - room));
  readonly #pool: TelegramPool | undefined;
  #bot: BotIdentity | undefined;
  #state: ConnectionState = 'disconnected';
  #stop = new AbortController();
  #loop: Promise<void> | undefined;
  /** The next update id to ask for: asking confirms (and makes Telegram drop) everything before it. */
  #offset = 0;
  #failedUpdate = { id: -1, attempts: 0 };

  constructor(options: TelegramChannelOptions) {
    this.#options = options;
    this.#log = options.log;
    // Other calls than long polls are bounded too; long polls get their own watchdog below.
    this.#api = new Api(options.token, { apiRoot: options.apiRoot, timeoutSeconds: 120 });
    const pool = options.pool;
    this.#pool = pool && pool.tokens.length > 0 ? new TelegramPool(pool.tokens, options.apiRoot, pool.assignments, this.#log) : undefined;
  }

  owns(chatId: string): boolean {
    return chatId.startsWith(TELEGRAM_PREFIX);
  }

  state(): ConnectionState {
    return this.#state;
  }

  /** Who the bot is, once getMe answered. */
  get bot(): BotIdentity | undefined {
    return this.#bot;
  }

  /**
   * Resolves once the bot is known and polling runs. Rejects only when Telegram refuses the token; when it
   * cannot be reached, resolves anyway and keeps trying in the background.
   */
  async start(sink: InboundSink): Promise<void> {
    if (this.#loop) throw new Error('telegram channel is already started');
    this.#stop = new AbortController();
    this.#state = 'connecting';
    try {
      await this.#connect();
    } catch (err) {
      if (isTokenRefused(err)) {
        this.#state = 'disconnected';
        throw new Error(`Telegram refused the bot token (${describeError(err, this.#options.token)}): check TELEGRAM_BOT_TOKEN`);
      }
      if (this.#stop.signal.aborted) return;
      this.#log.warn({ error: describeError(err, this.#options.token) }, 'Telegram is unreachable; retrying in the background');
    }
    this.#loop = this.#poll(sink);
  }

  async #connect(): Promise<void> {
    const call = callSignal(this.#stop.signal, CONNECT_TIMEOUT_MS);
    const signal = forGrammy(call.signal);
    let me: UserFromGetMe;
    try {
      me = await this.#api.getMe(signal);
      // A webhook left set (by another tool) makes getUpdates fail with 409; pending updates are kept.
      await this.#api.deleteWebhook({ drop_pending_updates: false }, signal);
      try {
        await this.#api.setMyCommands(COMMANDS, {}, signal);
      } catch (err) {
        this.#log.warn({ error: describeError(err, this.#options.token) }, 'bot commands could not be registered');
      }
    } finally {
      call.done();
    }
    this.#bot = { id: me.id, username: me.username };
    this.#state = 'connected';
    this.#log.info({ bot: me.username, id: me.id }, 'telegram connected');
  }

  /** The long-polling loop: one getUpdates held open at a time; failures back off and reconnect. */
  async #poll(sink: InboundSink): Promise<void> {
    const { min, max } = this.#options.backoffMs ?? { min: 1_000, max: 60_000 };
    const timeout = this.#options.pollTimeoutSeconds ?? 30;
    let failures = 0;
    while (!this.#stop.signal.aborted) {
      let updates: Update[];
      try {
        if (!this.#bot) await this.#connect();
        // A silently dead connection (no reset) is noticed by this watchdog instead of after minutes.
        const call = callSignal(this.#stop.signal, (timeout + 15) * 1000);
        try {
          updates = await this.#api.getUpdates({ offset: this.#offset, timeout, allowed_updates: ['message'] }, forGrammy(call.signal));
        } finally {
          call.done();
        }
      } catch (err) {
        if (this.#stop.signal.aborted) return;
        failures++;
        this.#state = 'connecting';
        // A refused token will not heal soon: ask again at the slowest pace.
        const delay = retryAfterMs(err) ?? (isTokenRefused(err) ? max : backoffDelay(failures, min, max));
        const error = describeError(err, this.#options.token);
        if (isTokenRefused(err)) this.#log.error({ error }, 'Telegram refuses the bot token now; check TELEGRAM_BOT_TOKEN');
        else this.#log.warn({ error, failures, retryInMs: delay }, 'telegram polling failed; reconnecting');
        if (!(await this.#pause(delay))) return;
        continue;
      }
      if (this.#state !== 'connected') this.#log.info('telegram connected again');
      this.#state = 'connected';
      failures = 0;
      for (const update of updates) {
        if (this.#stop.signal.aborted) return;
        if (!(await this.#handleOrGiveUp(update, sink))) {
          // Polled again from the same offset, Telegram hands the failed update over once more.
          if (!(await this.#pause(backoffDelay(this.#failedUpdate.attempts, min, max)))) return;
          break;
        }
        this.#offset = update.update_id + 1;
      }
    }
  }

  /** Waits, unless stopped meanwhile (then false). */
  async #pause(ms: number): Promise<boolean> {
    try {
      await sleep(ms, undefined, { signal: this.#stop.signal });
      return true;
    } catch {
      return false;
    }
  }

  /** Handles one update: true when done with it; false to retry it, until it has failed too often. */
  async #handleOrGiveUp(update: Update, sink: InboundSink): Promise<boolean> {
    try {
      await this.#handle(update, sink);
      return true;
    } catch (err) {
      if (this.#stop.signal.aborted) return false;
      const attempts = this.#failedUpdate.id === update.update_id ? this.#failedUpdate.attempts + 1 : 1;
      this.#failedUpdate = { id: update.update_id, attempts };
      const error = describeError(err, this.#options.token);
      if (attempts < MAX_UPDATE_ATTEMPTS) {
        this.#log.warn({ updateId: update.update_id, attempts, error }, 'telegram update could not be stored; retrying');
        return false;
      }
      this.#log.error({ updateId: update.update_id, error }, 'telegram update dropped after repeated failures');
      return true;
    }
  }

  async #handle(update: Update, sink: InboundSink): Promise<void> {
    const msg = update.message;
    const bot = this.#bot;
    if (!msg || !bot) return;
    const chatId = telegramChatId(msg.chat.id);
    if (msg.migrate_to_chat_id !== undefined) {
      this.#log.warn({ chatId, newChatId: telegramChatId(msg.migrate_to_chat_id) }, 'the group became a supergroup with a new id');
      return;
    }
    const command = commandOf(msg, bot.username);
    const known = command === 'start' || command === 'chatid';
    if (known) await this.#answerCommand(msg, command, sink.isJoined(chatId));
    const inbound = toInbound(msg, bot, this.#options.assistantName);
    if (!inbound) return;
    // Commands and "added to the chat" notes only make an unjoined chat known (listed for joining); a
    // joined chat's agent is not woken by them.
    const notice = known || (msg.text === undefined && msg.caption === undefined && mediaOf(msg).length === 0);
    if (notice && sink.isJoined(chatId)) return;
    const refs = mediaOf(msg);
    if (refs.length > 0 && sink.isJoined(chatId) && !sink.seen(chatId, inbound.platformId)) {
      const attachments: InboundAttachment[] = [];
      const notes: string[] = [];
      for (const ref of refs) {
        const got = await this.#download(ref, sink.maxMediaBytes);
        if (typeof got === 'string') notes.push(got);
        else attachments.push(got);
      }
      if (attachments.length > 0) inbound.attachments = attachments;
      if (notes.length > 0) inbound.text = [inbound.text, ...notes].filter(Boolean).join('\n');
    }
    await sink.ingest(inbound);
  }

  async #answerCommand(msg: Message, command: string, joined: boolean): Promise<void> {
    const id = telegramChatId(msg.chat.id);
    const name = this.#options.assistantName;
    const howToJoin = `join it with: pincer groups add ${id}\nor make it the main chat: PINCER_MAIN_CHAT=${id}`;
    const text =
      command === 'chatid'
        ? `${id}\n\nThis chat's id for pincer; ${howToJoin}`
        : joined
          ? `Hi, I'm ${name}. I'm listening in this chat.`
          : `Hi, I'm ${name}. pincer's owner has not joined this chat yet. Its id is ${id}; ${howToJoin}`;
    try {
      await this.#api.sendMessage(msg.chat.id, text, {
        reply_parameters: { message_id: msg.message_id, allow_sending_without_reply: true },
      });
    } catch (err) {
      this.#log.warn({ chatId: id, command, error: describeError(err, this.#options.token) }, 'command answer failed');
    }
  }

  /** Downloads one file within the limit; a string says why it was not (told to the agent instead). */
  async #download(ref: MediaRef, limit: number): Promise<InboundAttachment | string> {
    const mb = (n: number) => `${Math.round((n / 1024 / 1024) * 10) / 10} MB`;
    const tooLarge = (n?: number) =>
      `[${ref.label}${ref.name ? ` ${ref.name}` : ''}${n === undefined ? '' : ` (${mb(n)})`} not downloaded: larger than ${mb(limit)}]`;
    if (ref.size !== undefined && ref.size > limit) return tooLarge(ref.size);
    const call = callSignal(this.#stop.signal, DOWNLOAD_TIMEOUT_MS);
    const signal = call.signal;
    try {
      const file = await this.#api.getFile(ref.fileId, forGrammy(signal));
      if (file.file_size !== undefined && file.file_size > limit) return tooLarge(file.file_size);
      // Bots may only download files up to 20 MB; for larger ones Telegram gives no path.
      if (!file.file_path) return `[${ref.label} not downloaded: Telegram gives bots no download for it (over 20 MB?)]`;
      const path = file.file_path.split('/').map(encodeURIComponent).join('/');
      const res = await fetch(`${this.#options.apiRoot}/file/bot${this.#options.token}/${path}`, { signal });
      if (!res.ok || !res.body) {
        await res.body?.cancel();
        return `[${ref.label} not downloaded: Telegram answered ${res.status}]`;
      }
      const declared = Number(res.headers.get('content-length') ?? Number.NaN);
      if (declared > limit) {
        await res.body.cancel();
        return tooLarge(declared);
      }
      const chunks: Uint8Array[] = [];
      let total = 0;
      for await (const chunk of res.body) {
        total += chunk.byteLength;
        // Stop reading as soon as the limit is passed, whatever was declared.
        if (total > limit) return tooLarge();
        chunks.push(chunk);
      }
      const name = ref.name ?? file.file_path.split('/').pop();
      return { kind: ref.kind, data: Buffer.concat(chunks), ...(name ? { name } : {}), ...(ref.mime ? { mime: ref.mime } : {}) };
    } catch (err) {
      if (this.#stop.signal.aborted) throw err;
      const error = describeError(err, this.#options.token);
      this.#log.warn({ fileId: ref.fileId, error }, 'telegram file download failed');
      return `[${ref.label} not downloaded: ${error}]`;
    } finally {
      call.done();
    }
  }

  partsOf(markdown: string, sender?: string): number {
    return this.#parts(markdown, sender === undefined ? 0 : senderPrefix(sender).length).length;
  }

  async send(chatId: string, out: Outbound): Promise<{ platformId: string }> {
    const chat = platformChatId(chatId);
    const reply = out.replyTo && /^\d+$/.test(out.replyTo.platformId) ? Number(out.replyTo.platformId) : undefined;
    const thread = out.replyTo?.threadId && /^\d+$/.test(out.replyTo.threadId) ? Number(out.replyTo.threadId) : undefined;
    // The first message of a reply quotes the message it answers (if that one is gone the reply still goes out);
    // the rest follow it in the same topic.
    const inThread = thread === undefined ? {} : { message_thread_id: thread };
    const where = (first: boolean) => ({
      ...inThread,
      ...(first && reply !== undefined ? { reply_parameters: { message_id: reply, allow_sending_without_reply: true } } : {}),
    });
    const token = this.#options.token;
    const sendText = async (part: TelegramText, first: boolean) => {
      try {
        const sent = await this.#api.sendMessage(chat, part.text, { ...where(first), ...entitiesOf(part, 'entities') });
        return String(sent.message_id);
      } catch (err) {
        throw sendFailure(err, 'sendMessage', token);
      }
    };
    if (!out.file && out.sender !== undefined) return this.#sendAsSender(chatId, chat, out, out.sender, sendText, where);
    if (!out.file) return sendParts(this.#parts(out.text), out.part, sendText);
    const captions = telegramParts(out.text, TELEGRAM_MAX_CAPTION);
    // Too long for a caption: the text goes first as messages (the first quoting), then the file on its own.
    const textFirst = captions.length > 1;
    if (textFirst) await sendParts(telegramParts(out.text, TELEGRAM_MAX_TEXT), undefined, sendText);
    const caption = textFirst ? undefined : captions[0];
    const extra = { ...where(!textFirst), ...(caption ? { caption: caption.text, ...entitiesOf(caption, 'caption_entities') } : {}) };
    const name = safeUploadName(out.file.name);
    if (PHOTO_NAME.test(name) && out.file.data.length <= MAX_PHOTO_BYTES) {
      try {
        const sent = await this.#api.sendPhoto(chat, new InputFile(out.file.data, name), extra);
        return { platformId: String(sent.message_id) };
      } catch (err) {
        // A picture Telegram will not take as a photo (dimensions, format) still goes as a document.
        if (!(err instanceof GrammyError) || err.error_code !== 400) throw sendFailure(err, 'sendPhoto', token);
        this.#log.debug({ chatId, error: describeError(err, token) }, 'photo refused; sending it as a document');
      }
    }
    try {
      const sent = await this.#api.sendDocument(chat, new InputFile(out.file.data, name), extra);
      return { platformId: String(sent.message_id) };
    } catch (err) {
      throw sendFailure(err, 'sendDocument', token);
    }
  }

  /**
   * A sub-agent's message: from its pool bot in a group, else from the main bot with its name in front. A pool bot
   * Telegram will not let post there (not a member, removed) gives way to the main bot, for this and later messages.
   */
  async #sendAsSender(
    chatId: string,
    chat: number,
    out: Outbound,
    sender: string,
    sendText: (part: TelegramText, first: boolean) => Promise<string>,
    where: (first: boolean) => Parameters<Api['sendMessage']>[2],
  ): Promise<{ platformId: string }> {
    const prefix = senderPrefix(sender);
    // A private chat has no room for another bot: only the person and this one are in it.
    const bot: PoolBot | undefined = chat < 0 && this.#pool ? await this.#pool.botFor(chatId, sender) : undefined;
    return sendParts(this.#parts(out.text, prefix.length), out.part, async (part, first) => {
      if (bot) {
        try {
          const sent = await bot.api.sendMessage(chat, part.text, { ...where(first), ...entitiesOf(part, 'entities') });
          return String(sent.message_id);
        } catch (err) {
          if (!(err instanceof GrammyError) || (err.error_code !== 403 && err.error_code !== 400))
            throw sendFailure(err, 'sendMessage', bot.token);
          // Refused, so not posted: the main bot posts it (and from now on, where the pool bot is not in the chat).
          if (err.error_code === 403 || /chat not found|not a member|kicked/i.test(err.description))
            this.#pool?.notInChat(chatId, bot, describeError(err, bot.token));
        }
      }
      return sendText(withTelegramPrefix(part, prefix), first);
    });
  }

  /** Telegram shows "typing…" for 5 s per chat action: renewed on a timer per chat while on. */
  async setTyping(chatId: string, on: boolean): Promise<void> {
    const timer = this.#typing.get(chatId);
    if (!on) {
      clearInterval(timer);
      this.#typing.delete(chatId);
      return;
    }
    if (timer || this.#stop.signal.aborted) return;
    const chat = platformChatId(chatId);
    const show = () => {
      this.#api.sendChatAction(chat, 'typing', {}, forGrammy(this.#stop.signal)).catch((err: unknown) => {
        this.#log.debug({ chatId, error: describeError(err, this.#options.token) }, 'typing indicator failed');
      });
    };
    const interval = setInterval(show, this.#options.typingIntervalMs ?? 4_500);
    interval.unref();
    this.#typing.set(chatId, interval);
    show();
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    for (const timer of this.#typing.values()) clearInterval(timer);
    this.#typing.clear();
    await this.#loop;
    this.#loop = undefined;
    this.#state = 'disconnected';
  }
}

// A fake Telegram Bot API on loopback that speaks the real wire protocol (POST /bot<token>/<method>, JSON or
// multipart in, `{ok, result}` out; GET /file/bot<token>/<path>), with a real long-polling getUpdates.
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { z } from 'zod';

export type Json = Record<string, unknown>;

export interface FakeBot {
  id: number;
  username: string;
  first_name: string;
}

/** A message the bot sent (sendMessage, sendPhoto, sendDocument), as the fake understood it. */
export interface SentRecord {
  method: string;
  chatId: number;
  messageId: number;
  text?: string;
  caption?: string;
  replyTo?: number;
  threadId?: number;
  parseMode?: string;
  /** The message's (or caption's) entities, as the fake accepted them. */
  entities?: TelegramEntity[];
  file?: { name: string; data: Buffer };
  /** The username of the bot that sent it (the main bot, or a pool bot). */
  from: string;
  at: number;
}

export interface ChatActionRecord {
  chatId: number;
  action: string;
  at: number;
}

/** Another bot on the same fake Telegram (a pool bot): its own token, name and the chats it was added to. */
export interface ExtraBot {
  token: string;
  bot: FakeBot;
  /** Group chats it is a member of: sendMessage elsewhere is refused with 403, as Telegram does. */
  chats: Set<number>;
  /** Every name set with setMyName, in order. */
  renames: string[];
}

export interface FakeTelegram {
  url: string;
  token: string;
  bot: FakeBot;
  /** Every API call in order (method, when, which bot by username, the offset of getUpdates calls). */
  calls: Array<{ method: string; at: number; by: string; offset?: number }>;
  /** Adds another bot (a pool bot) that may call the API with its own token. */
  addBot(token: string, bot: FakeBot, chats?: number[]): ExtraBot;
  /** The next setMyName (by any bot) is refused with 429 and `retry_after` seconds (Telegram limits renames). */
  failNextRename(retryAfterSeconds: number): void;
  sent: SentRecord[];
  actions: ChatActionRecord[];
  commands: unknown[];
  /** Queues a user message as an update (filling message_id, date, from); returns the full message. */
  pushMessage(message: Json): Json;
  /** Queues an update carrying exactly this message again (a redelivery). */
  redeliver(message: Json): number;
  /** Stores a downloadable file; `declaredSize` makes getFile state another size, `chunked` hides the length. */
  addFile(data: Buffer, options?: { path?: string; declaredSize?: number; chunked?: boolean }): string;
  /** The next sendMessage is refused with 429 and `retry_after` seconds. */
  failNextSend(retryAfterSeconds: number): void;
  /** Destroys the sockets of held getUpdates calls; for `outageMs` after, every request's socket is destroyed too. */
  dropPolls(outageMs?: number): number;
  /** Number of getUpdates calls held open right now. */
  heldPolls(): number;
  /** Resolves with `probe()`'s first defined value, re-checked on every API call (and every 50 ms, for state
   *  outside the fake); rejects after `timeoutMs`. */
  waitFor<T>(probe: () => T | undefined, timeoutMs: number, what: string): Promise<T>;
  close(): Promise<void>;
}

const DEFAULT_USER = { id: 4242, is_bot: false, first_name: 'Olive', last_name: 'Owner', username: 'olive' };

const numeric = z.coerce.number().int();
/** Multipart fields arrive as strings, objects among them as JSON text. */
const jsonText = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => (typeof v === 'string' && /^[[{]/.test(v) ? JSON.parse(v) : v), schema);
const replyParameters = jsonText(z.object({ message_id: numeric }).passthrough()).optional();
const entitySchema = z.object({
  type: z.string(),
  offset: z.number().int(),
  length: z.number().int(),
  url: z.string().optional(),
  language: z.string().optional(),
});
export type TelegramEntity = z.infer<typeof entitySchema>;
const entitiesField = jsonText(z.array(entitySchema)).optional();
const sendMessageSchema = z.object({
  chat_id: numeric,
  text: z.string(),
  entities: entitiesField,
  reply_parameters: replyParameters,
  message_thread_id: numeric.optional(),
  parse_mode: z.string().optional(),
});
const sendFileSchema = z.object({
  chat_id: numeric,
  caption: z.string().optional(),
  caption_entities: entitiesField,
  reply_parameters: replyParameters,
  message_thread_id: numeric.optional(),
});

const ENTITY_TYPES = new Set([
  'mention',
  'hashtag',
  'cashtag',
  'bot_command',
  'url',
  'email',
  'phone_number',
  'bold',
  'italic',
  'underline',
  'strikethrough',
  'spoiler',
  'blockquote',
  'expandable_blockquote',
  'code',
  'pre',
  'text_link',
  'text_mention',
  'custom_emoji',
  'date_time',
]);
/** Entities that may contain, and be part of, any other entity except `pre` and `code`. */
const FREELY_NESTED = new Set(['bold', 'italic', 'underline', 'strikethrough', 'spoiler']);

/**
 * Why the Bot API would refuse these entities on this text, per its MessageEntity and "formatting options"
 * docs: offsets and lengths in UTF-16 code units within the text; two entities that share characters nest
 * wholly; bold/italic/underline/strikethrough/spoiler nest in anything but pre and code; nothing else nests.
 */
export function entityError(text: string, entities: readonly TelegramEntity[]): string | undefined {
  for (const e of entities) {
    if (!ENTITY_TYPES.has(e.type)) return `unsupported entity type "${e.type}"`;
    if (e.offset < 0 || e.length <= 0 || e.offset + e.length > text.length)
      return `entity ${e.type} at ${e.offset}+${e.length} is outside the text of ${text.length} UTF-16 code units`;
    if (e.type === 'text_link' && !/^(https?|tg|mailto):/.test(e.url ?? '')) return `text_link without a valid url: ${e.url}`;
  }
  for (const a of entities) {
    for (const b of entities) {
      if (a === b) continue;
      const aEnd = a.offset + a.length;
      const bEnd = b.offset + b.length;
      if (b.offset >= aEnd || a.offset >= bEnd) continue;
      const aHoldsB = a.offset <= b.offset && bEnd <= aEnd;
      const bHoldsA = b.offset <= a.offset && aEnd <= bEnd;
      if (!aHoldsB && !bHoldsA) return `entities ${a.type} and ${b.type} overlap without one containing the other`;
      const [outer, inner] = aHoldsB ? [a, b] : [b, a];
      const code = (t: string) => t === 'pre' || t === 'code';
      const allowed = (FREELY_NESTED.has(inner.type) && !code(outer.type)) || (FREELY_NESTED.has(outer.type) && !code(inner.type));
      if (!allowed) return `entity ${inner.type} cannot be nested in ${outer.type}`;
    }
  }
  return undefined;
}
const getUpdatesSchema = z.object({ offset: numeric.optional(), limit: numeric.optional(), timeout: numeric.optional() });
const chatActionSchema = z.object({ chat_id: numeric, action: z.string() });
const getFileSchema = z.object({ file_id: z.string() });
const commandsSchema = z.object({ commands: jsonText(z.array(z.unknown())) });
const setMyNameSchema = z.object({ name: z.string().optional(), language_code: z.string().optional() });
const jsonBody = z.record(z.string(), z.unknown());

interface Part {
  name: string;
  filename?: string;
  data: Buffer;
}

/** Parses multipart/form-data as grammY writes it (note: its filename is unquoted). */
export function parseMultipart(body: Buffer, boundary: string): Part[] {
  const delimiter = Buffer.from(`--${boundary}`);
  const parts: Part[] = [];
  let start = body.indexOf(delimiter);
  while (start !== -1) {
    const from = start + delimiter.length;
    if (body.subarray(from, from + 2).toString() === '--') break;
    const next = body.indexOf(delimiter, from);
    if (next === -1) break;
    // Each part: CRLF, headers, CRLF CRLF, data, CRLF, then the next delimiter.
    const part = body.subarray(from + 2, next - 2);
    const headerEnd = part.indexOf('\r\n\r\n');
    const headers = part.subarray(0, headerEnd).toString('utf8');
    const name = /name="([^"]*)"/i.exec(headers)?.[1] ?? '';
    const filename = /filename="?([^";\r\n]*)"?/i.exec(headers)?.[1];
    parts.push({ name, ...(filename === undefined ? {} : { filename }), data: part.subarray(headerEnd + 4) });
    start = next;
  }
  return parts;
}

export async function startFakeTelegram(options: { token?: string; bot?: Partial<FakeBot> } = {}): Promise<FakeTelegram> {
  const token = options.token ?? '123456:TEST-token_abcdefghijklmnopqrstuvwxyz';
  const bot: FakeBot = { id: 777000111, username: 'pincer_test_bot', first_name: 'Pincer', ...options.bot };
  const changed = new EventEmitter();
  changed.setMaxListeners(0);
  const calls: FakeTelegram['calls'] = [];
  const sent: SentRecord[] = [];
  const actions: ChatActionRecord[] = [];
  const commands: unknown[] = [];
  const queue: Array<{ update_id: number; message: Json }> = [];
  const chats = new Map<number, Json>();
  const files = new Map<string, { path: string; data: Buffer; declaredSize: number; chunked: boolean }>();
  const held = new Set<{ res: ServerResponse; offset: number; limit: number; timer: NodeJS.Timeout }>();
  let nextUpdateId = 500;
  let nextInboundId = 1;
  let nextSentId = 10_000;
  let rateLimitNext: number | undefined;
  let renameLimitNext: number | undefined;
  const extra = new Map<string, ExtraBot>();
  let outageUntil = 0;

  const reply = (res: ServerResponse, status: number, body: Json) => {
    if (res.writableEnded || res.destroyed) return;
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const ok = (res: ServerResponse, result: unknown) => reply(res, 200, { ok: true, result });
  const fail = (res: ServerResponse, code: number, description: string, parameters?: Json) =>
    reply(res, code, { ok: false, error_code: code, description, ...(parameters ? { parameters } : {}) });

  const pending = (offset: number, limit: number) => queue.filter((u) => u.update_id >= offset).slice(0, limit);
  const wakePolls = () => {
    for (const poll of [...held]) {
      const updates = pending(poll.offset, poll.limit);
      if (updates.length === 0) continue;
      held.delete(poll);
      clearTimeout(poll.timer);
      ok(poll.res, updates);
    }
  };
  const enqueue = (message: Json) => {
    const update_id = nextUpdateId++;
    queue.push({ update_id, message });
    wakePolls();
    return update_id;
  };

  const botMessage = (chatId: number, fields: Json, from: FakeBot = bot) => {
    const chat = chats.get(chatId) ?? { id: chatId, type: chatId < 0 ? 'supergroup' : 'private' };
    return { message_id: nextSentId++, date: Math.floor(Date.now() / 1000), chat, from: { ...from, is_bot: true }, ...fields };
  };

  /** What a pool bot may do: getMe, setMyName and sendMessage (the calls pincer makes with it), getUpdates to be seen. */
  const handleExtra = (self: ExtraBot, method: string, fields: Json, res: ServerResponse) => {
    switch (method) {
      case 'getMe':
        return ok(res, {
          ...self.bot,
          is_bot: true,
          can_join_groups: true,
          can_read_all_group_messages: false,
          supports_inline_queries: false,
        });
      case 'setMyName': {
        const { name = '' } = setMyNameSchema.parse(fields);
        if (renameLimitNext !== undefined) {
          const wait = renameLimitNext;
          renameLimitNext = undefined;
          return fail(res, 429, `Too Many Requests: retry after ${wait}`, { retry_after: wait });
        }
        if (name.length > 64) return fail(res, 400, 'Bad Request: bot name is too long');
        // The default name (no language code) is the bot's name: what getMe calls its first name.
        if (name) self.bot.first_name = name;
        self.renames.push(name);
        return ok(res, true);
      }
      case 'sendMessage': {
        const m = sendMessageSchema.parse(fields);
        if (m.chat_id < 0 && !self.chats.has(m.chat_id)) return fail(res, 403, 'Forbidden: bot is not a member of the supergroup chat');
        if (m.chat_id > 0) return fail(res, 403, "Forbidden: bot can't initiate conversation with a user");
        const wrong = m.entities && entityError(m.text, m.entities);
        if (wrong) return fail(res, 400, `Bad Request: can't parse entities: ${wrong}`);
        const message = botMessage(m.chat_id, { text: m.text, ...(m.entities ? { entities: m.entities } : {}) }, self.bot);
        sent.push({
          method,
          chatId: m.chat_id,
          messageId: message.message_id,
          text: m.text,
          ...(m.entities ? { entities: m.entities } : {}),
          ...(m.reply_parameters ? { replyTo: m.reply_parameters.message_id } : {}),
          ...(m.message_thread_id === undefined ? {} : { threadId: m.message_thread_id }),
          from: self.bot.username,
          at: Date.now(),
        });
        return ok(res, message);
      }
      case 'getUpdates':
        return ok(res, []);
      default:
        return fail(res, 404, 'Not Found');
    }
  };

  const handle = (method: string, fields: Json, parts: Part[], res: ServerResponse) => {
    const fileOf = (field: unknown) => {
      const ref = typeof field === 'string' && field.startsWith('attach://') ? field.slice('attach://'.length) : undefined;
      const part = parts.find((p) => p.name === ref);
      return part ? { name: part.filename ?? '', data: part.data } : undefined;
    };
    switch (method) {
      case 'getMe':
        return ok(res, { ...bot, is_bot: true, can_join_groups: true, can_read_all_group_messages: false, supports_inline_queries: false });
      case 'deleteWebhook':
        return ok(res, true);
      case 'setMyCommands':
        commands.push(...commandsSchema.parse(fields).commands);
        return ok(res, true);
      case 'getUpdates': {
        const q = getUpdatesSchema.parse(fields);
        const offset = q.offset ?? 0;
        const last = calls.at(-1);
        if (last) last.offset = offset;
        // Asking with an offset confirms every earlier update: Telegram forgets them.
        if (offset > 0) for (let i = queue.length - 1; i >= 0; i--) if ((queue[i]?.update_id ?? 0) < offset) queue.splice(i, 1);
        // Only one poller per bot: an older held call is ended the way Telegram does.
        for (const poll of [...held]) {
          held.delete(poll);
          clearTimeout(poll.timer);
          fail(poll.res, 409, 'Conflict: terminated by other getUpdates request; make sure that only one bot instance is running');
        }
        const limit = q.limit ?? 100;
        const ready = pending(offset, limit);
        if (ready.length > 0 || !q.timeout) return ok(res, ready);
        const poll = {
          res,
          offset,
          limit,
          timer: setTimeout(() => {
            held.delete(poll);
            ok(res, []);
          }, q.timeout * 1000),
        };
        held.add(poll);
        res.on('close', () => {
          held.delete(poll);
          clearTimeout(poll.timer);
        });
        return;
      }
      case 'sendMessage': {
        const m = sendMessageSchema.parse(fields);
        if (rateLimitNext !== undefined) {
          const wait = rateLimitNext;
          rateLimitNext = undefined;
          return fail(res, 429, `Too Many Requests: retry after ${wait}`, { retry_after: wait });
        }
        if (m.text.trim() === '') return fail(res, 400, 'Bad Request: message text is empty');
        if (m.text.length > 4096) return fail(res, 400, 'Bad Request: message is too long');
        const wrong = m.entities && entityError(m.text, m.entities);
        if (wrong) return fail(res, 400, `Bad Request: can't parse entities: ${wrong}`);
        const message = botMessage(m.chat_id, { text: m.text, ...(m.entities ? { entities: m.entities } : {}) });
        sent.push({
          method,
          chatId: m.chat_id,
          messageId: message.message_id,
          text: m.text,
          ...(m.entities ? { entities: m.entities } : {}),
          ...(m.reply_parameters ? { replyTo: m.reply_parameters.message_id } : {}),
          ...(m.message_thread_id === undefined ? {} : { threadId: m.message_thread_id }),
          ...(m.parse_mode ? { parseMode: m.parse_mode } : {}),
          from: bot.username,
          at: Date.now(),
        });
        return ok(res, message);
      }
      case 'sendPhoto':
      case 'sendDocument': {
        const m = sendFileSchema.parse(fields);
        const file = fileOf(fields[method === 'sendPhoto' ? 'photo' : 'document']);
        if (!file) return fail(res, 400, 'Bad Request: there is no file in the request');
        if ((m.caption?.length ?? 0) > 1024) return fail(res, 400, 'Bad Request: message caption is too long');
        const wrong = m.caption_entities && entityError(m.caption ?? '', m.caption_entities);
        if (wrong) return fail(res, 400, `Bad Request: can't parse caption entities: ${wrong}`);
        const message = botMessage(m.chat_id, m.caption ? { caption: m.caption } : {});
        sent.push({
          method,
          chatId: m.chat_id,
          messageId: message.message_id,
          ...(m.caption ? { caption: m.caption } : {}),
          ...(m.caption_entities ? { entities: m.caption_entities } : {}),
          ...(m.reply_parameters ? { replyTo: m.reply_parameters.message_id } : {}),
          file,
          from: bot.username,
          at: Date.now(),
        });
        return ok(res, message);
      }
      case 'sendChatAction': {
        const a = chatActionSchema.parse(fields);
        actions.push({ chatId: a.chat_id, action: a.action, at: Date.now() });
        return ok(res, true);
      }
      case 'getFile': {
        const { file_id } = getFileSchema.parse(fields);
        const file = files.get(file_id);
        if (!file) return fail(res, 400, 'Bad Request: invalid file_id');
        return ok(res, { file_id, file_unique_id: `u${file_id}`, file_size: file.declaredSize, file_path: file.path });
      }
      default:
        return fail(res, 404, 'Not Found');
    }
  };

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (Date.now() < outageUntil) {
      req.socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const url = new URL(req.url ?? '/', 'http://fake');
      const fileRoute = /^\/file\/bot([^/]+)\/(.+)$/.exec(url.pathname);
      if (req.method === 'GET' && fileRoute) {
        const path = decodeURIComponent(fileRoute[2] ?? '');
        const file = [...files.values()].find((f) => f.path === path);
        if (fileRoute[1] !== token || !file) return fail(res, 404, 'Not Found');
        res.writeHead(200, { 'content-type': 'application/octet-stream', ...(file.chunked ? {} : { 'content-length': file.data.length }) });
        // Written in pieces, as a network would deliver a large file.
        for (let i = 0; i < file.data.length; i += 64 * 1024) res.write(file.data.subarray(i, i + 64 * 1024));
        res.end();
        return;
      }
      const route = /^\/bot([^/]+)\/([A-Za-z]+)$/.exec(url.pathname);
      if (req.method !== 'POST' || !route) return fail(res, 404, 'Not Found');
      const other = extra.get(route[1] ?? '');
      if (route[1] !== token && !other) return fail(res, 401, 'Unauthorized');
      const method = route[2] ?? '';
      calls.push({ method, at: Date.now(), by: other ? other.bot.username : bot.username });
      const body = Buffer.concat(chunks);
      const type = req.headers['content-type'] ?? '';
      let fields: Json = {};
      let parts: Part[] = [];
      try {
        const boundary = /boundary=(.+)$/.exec(type)?.[1];
        if (boundary) {
          parts = parseMultipart(body, boundary);
          fields = Object.fromEntries(parts.filter((p) => p.filename === undefined).map((p) => [p.name, p.data.toString('utf8')]));
        } else if (body.length > 0) fields = jsonBody.parse(JSON.parse(body.toString('utf8')));
        if (other) handleExtra(other, method, fields, res);
        else handle(method, fields, parts, res);
      } catch (err) {
        fail(res, 400, `Bad Request: ${err instanceof Error ? err.message : String(err)}`);
      }
      changed.emit('change');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    token,
    bot,
    calls,
    sent,
    actions,
    commands,
    pushMessage(message) {
      const chat = (message.chat as Json | undefined) ?? { id: DEFAULT_USER.id, type: 'private', first_name: DEFAULT_USER.first_name };
      if (typeof chat.id === 'number') chats.set(chat.id, chat);
      const full: Json = {
        message_id: nextInboundId++,
        date: Math.floor(Date.now() / 1000),
        from: DEFAULT_USER,
        ...message,
        chat,
      };
      enqueue(full);
      return full;
    },
    redeliver: (message) => enqueue(message),
    addFile(data, fileOptions = {}) {
      const id = `file-${files.size + 1}`;
      files.set(id, {
        path: fileOptions.path ?? `documents/${id}.bin`,
        data,
        declaredSize: fileOptions.declaredSize ?? data.length,
        chunked: fileOptions.chunked ?? false,
      });
      return id;
    },
    failNextSend(retryAfterSeconds) {
      rateLimitNext = retryAfterSeconds;
    },
    addBot(botToken, extraBot, inChats = []) {
      const added: ExtraBot = { token: botToken, bot: extraBot, chats: new Set(inChats), renames: [] };
      extra.set(botToken, added);
      return added;
    },
    failNextRename(retryAfterSeconds) {
      renameLimitNext = retryAfterSeconds;
    },
    dropPolls(outageMs = 0) {
      outageUntil = Date.now() + outageMs;
      const dropped = held.size;
      for (const poll of [...held]) {
        held.delete(poll);
        clearTimeout(poll.timer);
        poll.res.socket?.destroy();
      }
      return dropped;
    },
    heldPolls: () => held.size,
    waitFor(probe, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const check = () => {
          const value = probe();
          if (value === undefined) return;
          done();
          resolve(value);
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`fake Telegram: ${what} did not happen within ${timeoutMs} ms`));
        }, timeoutMs);
        const tick = setInterval(check, 50);
        const done = () => {
          clearTimeout(timer);
          clearInterval(tick);
          changed.off('change', check);
        };
        changed.on('change', check);
        check();
      });
    },
    close: () =>
      new Promise((resolve) => {
        for (const poll of held) clearTimeout(poll.timer);
        held.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

// pincer's local HTTP API: send into a local chat, long-poll a chat's messages; the owner's administration
// (admin-api.ts), the web page (web-routes.ts) and its live updates (live.ts) on the same port.
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import fastifyCookie from '@fastify/cookie';
import fastifyWebsocket from '@fastify/websocket';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Logger } from '../../log.js';
import type { Control } from '../../service/control.js';
import type { Insight } from '../../service/insight.js';
import type { Store, StoredMessage } from '../../store/index.js';
import type { InboundSink } from '../types.js';
import { registerAdminRoutes } from './admin-api.js';
import { LOCAL_CHAT } from './chat-id.js';
import { LiveHub } from './live.js';
import { tokenMatches } from './token.js';
import { SESSION_COOKIE, type WebAuth } from './web-auth.js';
import { registerWebRoutes } from './web-routes.js';
import { hostCheck, SAFE_METHODS, sameOrigin } from './web-security.js';

export const MAX_TEXT_CHARS = 100_000;
/** A text at the limit written as \uXXXX escapes (Python's json.dumps does that) takes 6 bytes a character. */
const MAX_BODY_BYTES = 6 * MAX_TEXT_CHARS + 64 * 1024;
const PAGE = 200;

export interface TypingSource {
  readonly typingChanges: EventEmitter<{ typing: [chatId: string] }>;
  isTyping(chatId: string): boolean;
}

export interface HttpApiDeps {
  store: Store;
  token: string;
  sink: InboundSink;
  typing: TypingSource;
  control: Control;
  insight: Insight;
  log: Logger;
  web: {
    auth: WebAuth;
    /** Host names besides IP addresses and localhost that requests may name. */
    allowedHosts: readonly string[];
    assistantName: string;
    /** Where the token is, for error messages. */
    tokenHint: string;
    /** A fresh one-time login link for the owner. */
    loginLink(): string;
  };
}

const chatSchema = z
  .string()
  .regex(LOCAL_CHAT, 'must be local:<name>, the name of lowercase letters, digits, _ or - (at most 64, starting with a letter or digit)');

const postMessage = z.strictObject({
  chat: chatSchema,
  text: z
    .string()
    .refine((t) => t.trim().length > 0, 'must not be empty')
    .refine((t) => t.length <= MAX_TEXT_CHARS, `must be at most ${MAX_TEXT_CHARS} characters`)
    .refine((t) => !t.includes('\u0000'), 'must not contain NUL characters')
    .refine((t) => !/\p{Cs}/u.test(t), 'must be valid Unicode (it has an unpaired surrogate)'),
  // The type first: a transform on a non-string would add its own confusing complaints.
  sender: z.string().pipe(z.string().trim().min(1).max(64)).optional(),
  id: z.string().min(1).max(128).optional(),
});

const postTyping = z.strictObject({ chat: chatSchema });

const listMessages = z.object({
  chat: z.string().regex(/^[a-z]+:.{1,256}$/, 'must be a chat id such as local:main'),
  after: z.coerce.number().int().min(0).default(0),
  wait: z.coerce.number().min(0).max(60).default(0),
  /** The typing state the client last saw: a different current state answers at once. */
  typing: z.enum(['0', '1']).optional(),
  /** Instead of `after`: the newest this many, oldest first (a page opening a chat). */
  latest: z.coerce.number().int().min(1).max(PAGE).optional(),
});

const utf8 = new TextDecoder('utf-8', { fatal: true });

function describe(error: z.ZodError): string {
  return error.issues.map((i) => `${i.path.join('.') || 'body'}: ${i.message}`).join('; ');
}

function present(m: StoredMessage) {
  return {
    id: String(m.seq),
    chat: m.chatId,
    sender: m.senderName,
    text: m.text,
    time: new Date(m.sentAt).toISOString(),
    fromAssistant: m.fromAssistant,
  };
}

export interface HttpApi {
  app: FastifyInstance;
  live: LiveHub;
}

export function buildHttpApi(deps: HttpApiDeps): HttpApi {
  const { store, token, sink, typing, web } = deps;
  const app = Fastify({ bodyLimit: MAX_BODY_BYTES, logger: false });
  // JSON bodies must be UTF-8: the default parser would silently turn invalid bytes into U+FFFD.
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_req, body: Buffer, done) => {
    let text: string;
    try {
      text = utf8.decode(body);
    } catch {
      done(Object.assign(new Error('body is not valid UTF-8'), { statusCode: 400 }), undefined);
      return;
    }
    if (text.trim() === '') {
      done(Object.assign(new Error("Body cannot be empty when content-type is set to 'application/json'"), { statusCode: 400 }), undefined);
      return;
    }
    try {
      done(null, JSON.parse(text));
    } catch (err) {
      done(
        Object.assign(new Error(`body is not valid JSON: ${err instanceof Error ? err.message : String(err)}`), { statusCode: 400 }),
        undefined,
      );
    }
  });
  void app.register(fastifyCookie);
  // The page sends nothing over the socket; a large frame is an attack, not a message.
  void app.register(fastifyWebsocket, { options: { maxPayload: 4096 } });

  const hostAllowed = hostCheck(web.allowedHosts);
  app.addHook('onRequest', async (req, reply) => {
    if (!hostAllowed(req.headers.host))
      return reply
        .code(421)
        .send({ error: `requests naming host ${req.headers.host ?? '(none)'} are refused; add it to PINCER_ALLOWED_HOSTS if it is yours` });
  });

  app.setErrorHandler((err: Error & { statusCode?: number }, req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) deps.log.error({ err }, 'http api error');
    // A route may allow more than the default (a memory file is saved whole).
    const limit = req.routeOptions.bodyLimit ?? MAX_BODY_BYTES;
    const message = status === 413 ? `request body is larger than ${limit} bytes` : status >= 500 ? 'internal error' : err.message;
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => void reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

  /** The bearer token (scripts, the CLI) or a web session's cookie (the page). */
  const authenticate = (req: FastifyRequest): { ok: true; sessionKey: string | null } | { ok: false } => {
    const header = req.headers.authorization;
    if (header !== undefined)
      return header.startsWith('Bearer ') && tokenMatches(token, header.slice(7)) ? { ok: true, sessionKey: null } : { ok: false };
    const session = req.cookies[SESSION_COOKIE];
    return session !== undefined && web.auth.isValid(session) ? { ok: true, sessionKey: web.auth.sessionKey(session) } : { ok: false };
  };
  const authorized = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const auth = authenticate(req);
    if (!auth.ok) {
      void reply.code(401).send({ error: `missing or wrong bearer token (it is in ${web.tokenHint}), or log in to the web page` });
      return false;
    }
    // Beyond SameSite=Strict: a cookie may change something only when the browser says the page is ours.
    if (auth.sessionKey !== null && !SAFE_METHODS.has(req.method) && !sameOrigin(req)) {
      void reply.code(403).send({ error: 'cross-origin request refused' });
      return false;
    }
    return true;
  };

  const live = new LiveHub({ store, typing, assistantName: web.assistantName, log: deps.log, authenticate });
  void app.register(async (scope) => live.register(scope));
  registerWebRoutes(app, { auth: web.auth, tokenHint: web.tokenHint, onLogout: (key) => live.closeSession(key) });

  app.get('/healthz', async () => ({ ok: true }));

  // pincer stopping answers each long poll now (one waits up to a minute), and closes each connection once its
  // answer is sent: kept alive, one would hold the stop up to the keep-alive timeout (72 s).
  const closing = new AbortController();
  app.addHook('preClose', (done) => {
    closing.abort();
    done();
  });
  app.addHook('onSend', async (_req, reply, payload) => {
    if (closing.signal.aborted) void reply.header('connection', 'close');
    return payload;
  });

  app.post('/api/v1/messages', async (req, reply) => {
    if (!authorized(req, reply)) return reply;
    const parsed = postMessage.safeParse(req.body);
    if (!parsed.success) return reply.code(400).send({ error: describe(parsed.error) });
    const { chat, text, sender } = parsed.data;
    const idempotencyKey =
      parsed.data.id ?? (typeof req.headers['idempotency-key'] === 'string' ? req.headers['idempotency-key'] : undefined);
    const result = await sink.ingest({
      chatId: chat,
      channel: 'local',
      platformId: idempotencyKey ?? randomUUID(),
      senderId: sender ?? 'local-user',
      senderName: sender ?? 'User',
      text,
      sentAt: Date.now(),
      chatName: chat.slice('local:'.length),
      isGroup: false,
    });
    return reply.code(result.duplicate ? 200 : 202).send({ id: String(result.seq), duplicate: result.duplicate, engaged: result.engaged });
  });

  // Someone started typing: pincer may start the chat's agent ahead of the message. Only a hint, stored nowhere.
  app.post('/api/v1/typing', async (req, reply) => {
    if (!authorized(req, reply)) return reply;
    const parsed = postTyping.safeParse(req.body);
    if (!parsed.success) return reply.code(400).send({ error: describe(parsed.error) });
    const { chat } = parsed.data;
    // A new local chat is joined by the hint as by a first message; a name no folder may have joins nothing.
    sink.typing(chat);
    if (!sink.isJoined(chat))
      return reply.code(404).send({ error: `chat ${chat} cannot be joined: its name is reserved or taken by another group's folder` });
    return reply.code(204).send();
  });

  app.get('/api/v1/messages', async (req, reply) => {
    if (!authorized(req, reply)) return reply;
    const parsed = listMessages.safeParse(req.query);
    if (!parsed.success) return reply.code(400).send({ error: describe(parsed.error) });
    const { chat, after, wait, latest } = parsed.data;
    if (latest !== undefined) {
      const newest = store.messages.latest(chat, latest);
      const cursor = newest.at(-1)?.seq ?? 0;
      return reply.send({ messages: newest.map(present), cursor: String(cursor), typing: typing.isTyping(chat) });
    }
    let messages = store.messages.after(chat, after, PAGE);
    const typingKnown = parsed.data.typing === undefined || (parsed.data.typing === '1') === typing.isTyping(chat);
    if (messages.length === 0 && wait > 0 && typingKnown) {
      await changeOf(chat, wait * 1000, deps, reply, closing.signal);
      messages = store.messages.after(chat, after, PAGE);
    }
    const cursor = messages.at(-1)?.seq ?? after;
    return reply.send({ messages: messages.map(present), cursor: String(cursor), typing: typing.isTyping(chat) });
  });

  registerAdminRoutes(app, { control: deps.control, insight: deps.insight, authorized, loginLink: web.loginLink });

  return { app, live };
}

/**
 * Resolves when the chat gets a message or its typing state changes, after `ms`, when the client leaves, or when
 * pincer stops (`closing`).
 */
function changeOf(chatId: string, ms: number, deps: HttpApiDeps, reply: FastifyReply, closing: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const onChange = (id: string) => id === chatId && done();
    const timer = setTimeout(() => done(), ms);
    const done = () => {
      clearTimeout(timer);
      deps.store.messages.changes.off('appended', onChange);
      deps.typing.typingChanges.off('typing', onChange);
      reply.raw.off('close', done);
      closing.removeEventListener('abort', done);
      resolve();
    };
    if (closing.aborted) {
      done();
      return;
    }
    deps.store.messages.changes.on('appended', onChange);
    deps.typing.typingChanges.on('typing', onChange);
    reply.raw.on('close', done);
    closing.addEventListener('abort', done);
  });
}

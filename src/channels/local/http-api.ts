// pincer's local HTTP API: send into a local chat, long-poll a chat's messages; the owner's administration (admin-api.ts).
import { randomUUID } from 'node:crypto';
import type { EventEmitter } from 'node:events';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { Logger } from '../../log.js';
import type { Control } from '../../service/control.js';
import type { Insight } from '../../service/insight.js';
import type { Store, StoredMessage } from '../../store/index.js';
import type { InboundSink } from '../types.js';
import { registerAdminRoutes } from './admin-api.js';
import { LOCAL_CHAT } from './chat-id.js';
import { tokenMatches } from './token.js';

export const MAX_TEXT_CHARS = 100_000;
const MAX_BODY_BYTES = 512 * 1024;
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
    .refine((t) => !t.includes('\u0000'), 'must not contain NUL characters'),
  sender: z.string().trim().min(1).max(64).optional(),
  id: z.string().min(1).max(128).optional(),
});

const listMessages = z.object({
  chat: z.string().regex(/^[a-z]+:.{1,256}$/, 'must be a chat id such as local:main'),
  after: z.coerce.number().int().min(0).default(0),
  wait: z.coerce.number().min(0).max(60).default(0),
  /** The typing state the client last saw: a different current state answers at once. */
  typing: z.enum(['0', '1']).optional(),
});

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

export function buildHttpApi(deps: HttpApiDeps): FastifyInstance {
  const { store, token, sink, typing } = deps;
  const app = Fastify({ bodyLimit: MAX_BODY_BYTES, logger: false });

  app.setErrorHandler((err: Error & { statusCode?: number }, _req, reply) => {
    const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
    if (status >= 500) deps.log.error({ err }, 'http api error');
    const message = status === 413 ? `request body is larger than ${MAX_BODY_BYTES} bytes` : status >= 500 ? 'internal error' : err.message;
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => void reply.code(404).send({ error: `no route ${req.method} ${req.url.split('?')[0]}` }));

  const authorized = (req: FastifyRequest, reply: FastifyReply): boolean => {
    const header = req.headers.authorization;
    const presented = header?.startsWith('Bearer ') ? header.slice(7) : undefined;
    if (tokenMatches(token, presented)) return true;
    void reply.code(401).send({ error: 'missing or wrong bearer token (it is in PINCER_TOKEN or the file PINCER_HOME/token)' });
    return false;
  };

  app.get('/healthz', async () => ({ ok: true }));

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

  app.get('/api/v1/messages', async (req, reply) => {
    if (!authorized(req, reply)) return reply;
    const parsed = listMessages.safeParse(req.query);
    if (!parsed.success) return reply.code(400).send({ error: describe(parsed.error) });
    const { chat, after, wait } = parsed.data;
    let messages = store.messages.after(chat, after, PAGE);
    const typingKnown = parsed.data.typing === undefined || (parsed.data.typing === '1') === typing.isTyping(chat);
    if (messages.length === 0 && wait > 0 && typingKnown) {
      await changeOf(chat, wait * 1000, deps, reply);
      messages = store.messages.after(chat, after, PAGE);
    }
    const cursor = messages.at(-1)?.seq ?? after;
    return reply.send({ messages: messages.map(present), cursor: String(cursor), typing: typing.isTyping(chat) });
  });

  registerAdminRoutes(app, { control: deps.control, insight: deps.insight, authorized });

  return app;
}

/** Resolves when the chat gets a message or its typing state changes, after `ms`, or when the client leaves. */
function changeOf(chatId: string, ms: number, deps: HttpApiDeps, reply: FastifyReply): Promise<void> {
  return new Promise((resolve) => {
    const onChange = (id: string) => id === chatId && done();
    const timer = setTimeout(() => done(), ms);
    const done = () => {
      clearTimeout(timer);
      deps.store.messages.changes.off('appended', onChange);
      deps.typing.typingChanges.off('typing', onChange);
      reply.raw.off('close', done);
      resolve();
    };
    deps.store.messages.changes.on('appended', onChange);
    deps.typing.typingChanges.on('typing', onChange);
    reply.raw.on('close', done);
  });
}

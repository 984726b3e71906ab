// Live updates for the web page over one WebSocket: what changed, never the data itself. The page re-reads
// the JSON API, so a dropped or slow connection loses nothing: it reconnects and reads again. The one
// exception is the reply being written (`draft`), which exists nowhere else until it is committed.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { Logger } from '../../log.js';
import type { ReplyDraftUpdate } from '../../service/reply-draft.js';
import type { Store, TraceEvent } from '../../store/index.js';
import type { TypingSource } from './http-api.js';
import { sameOrigin } from './web-security.js';

export type LiveMessage =
  | { type: 'hello'; assistantName: string }
  | { type: 'messages'; chat: string }
  | { type: 'typing'; chat: string; typing: boolean }
  | { type: 'activity'; chat: string; message: string | null; stage: string; detail: string | null; at: string }
  | { type: 'tasks' }
  | { type: 'groups' }
  /** The reply being written: the chat's draft is now its first `from` characters followed by `text`. */
  | { type: 'draft'; chat: string; from: number; text: string }
  /** The reply is written: `reply` is what is delivered ('' when nothing is), replacing the draft. */
  | { type: 'draft-end'; chat: string; reply: string };

export interface LiveDeps {
  store: Store;
  typing: TypingSource;
  assistantName: string;
  log: Logger;
  /** Who may connect: the API token or a web session; returns the session's key for a cookie login, null for the token. */
  authenticate(req: FastifyRequest): { ok: true; sessionKey: string | null } | { ok: false };
}

/** A client that cannot keep up is dropped rather than buffered without bound; it reconnects and re-reads. */
const MAX_BUFFERED_BYTES = 1024 * 1024;
const HEARTBEAT_MS = 30_000;
/** A chat's draft goes out at most this often (10 a second), however fast the model writes. */
const DRAFT_INTERVAL_MS = 100;

interface Client {
  socket: WebSocket;
  sessionKey: string | null;
  alive: boolean;
  /** The draft text this client has of each chat: each update sends only what changed. */
  drafts: Map<string, string>;
}

interface Draft {
  visible: () => string;
  /** Set while an update waits for its turn. */
  timer: NodeJS.Timeout | undefined;
  lastSentAt: number;
}

/** How many leading characters two texts share. */
function sharedPrefix(a: string, b: string): number {
  const n = Math.min(a.length, b.length);
  let i = 0;
  while (i < n && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  // Never split a surrogate pair: the page joins the parts as UTF-16 strings.
  if (i > 0 && i < n && a.charCodeAt(i - 1) >= 0xd800 && a.charCodeAt(i - 1) <= 0xdbff) i--;
  return i;
}

export class LiveHub {
  readonly #clients = new Set<Client>();
  readonly #deps: LiveDeps;
  readonly #unsubscribe: Array<() => void> = [];
  /** Task and group changes come in bursts (the scheduler writes many rows); one notice per burst. */
  readonly #pending = new Set<'tasks' | 'groups'>();
  /** The reply being written in each chat, while it is. */
  readonly #drafts = new Map<string, Draft>();
  #heartbeat: NodeJS.Timeout | undefined;

  constructor(deps: LiveDeps) {
    this.#deps = deps;
  }

  /** `app` must have @fastify/websocket loaded already (its route hook only sees routes added after it). */
  register(app: FastifyInstance): void {
    app.get('/api/v1/live', { websocket: true, preValidation: (req, reply) => this.#admit(req, reply) }, (socket, req) =>
      this.#accept(socket, req),
    );
  }

  /** Ends the live connections of a session that logged out. */
  closeSession(sessionKey: string): void {
    for (const c of this.#clients) if (c.sessionKey === sessionKey) c.socket.close(4401, 'logged out');
  }

  /** The reply being written in a chat: sent at most every DRAFT_INTERVAL_MS, then ended with the reply. */
  replyDraft(chat: string, update: ReplyDraftUpdate): void {
    const draft = this.#drafts.get(chat);
    if (update.kind === 'done') {
      if (!draft) return;
      clearTimeout(draft.timer);
      this.#drafts.delete(chat);
      for (const c of this.#clients) c.drafts.delete(chat);
      this.#broadcast({ type: 'draft-end', chat, reply: update.reply });
      return;
    }
    if (this.#clients.size === 0) return;
    if (draft) draft.visible = update.visible;
    else this.#drafts.set(chat, { visible: update.visible, timer: undefined, lastSentAt: 0 });
    this.#scheduleDraft(chat);
  }

  #scheduleDraft(chat: string): void {
    const draft = this.#drafts.get(chat);
    if (!draft || draft.timer) return;
    const wait = Math.max(0, draft.lastSentAt + DRAFT_INTERVAL_MS - Date.now());
    draft.timer = setTimeout(() => {
      draft.timer = undefined;
      draft.lastSentAt = Date.now();
      this.#sendDraft(chat, draft.visible());
    }, wait);
  }

  #sendDraft(chat: string, text: string): void {
    for (const c of this.#clients) {
      const had = c.drafts.get(chat) ?? '';
      if (had === text) continue;
      const from = sharedPrefix(had, text);
      c.drafts.set(chat, text);
      this.#send(c, { type: 'draft', chat, from, text: text.slice(from) });
    }
  }

  get clientCount(): number {
    return this.#clients.size;
  }

  stop(): void {
    clearInterval(this.#heartbeat);
    this.#heartbeat = undefined;
    for (const d of this.#drafts.values()) clearTimeout(d.timer);
    this.#drafts.clear();
    for (const off of this.#unsubscribe.splice(0)) off();
    for (const c of this.#clients) c.socket.terminate();
    this.#clients.clear();
  }

  async #admit(req: FastifyRequest, reply: FastifyReply): Promise<void> {
    // A page on another origin must not drive the assistant, whatever it holds: the browser always sends Origin.
    if (req.headers.origin !== undefined && !sameOrigin(req)) {
      this.#deps.log.warn({ origin: req.headers.origin }, 'live connection from a foreign origin refused');
      await reply.code(403).send({ error: `WebSocket from origin ${req.headers.origin} refused: only pincer's own page may connect` });
      return;
    }
    if (!this.#deps.authenticate(req).ok) await reply.code(401).send({ error: 'log in first (or send the API token as a bearer token)' });
  }

  #accept(socket: WebSocket, req: FastifyRequest): void {
    const auth = this.#deps.authenticate(req);
    const client: Client = { socket, sessionKey: auth.ok ? auth.sessionKey : null, alive: true, drafts: new Map() };
    if (this.#clients.size === 0) this.#subscribe();
    this.#clients.add(client);
    socket.on('pong', () => {
      client.alive = true;
    });
    socket.on('close', () => {
      this.#clients.delete(client);
      if (this.#clients.size === 0) this.stop();
    });
    socket.on('error', (err) => this.#deps.log.debug({ err }, 'live connection error'));
    this.#send(client, { type: 'hello', assistantName: this.#deps.assistantName });
    // A page that connects while a reply is being written sees it from its start.
    for (const chat of this.#drafts.keys()) this.#scheduleDraft(chat);
  }

  /** Listens to the store only while someone watches. */
  #subscribe(): void {
    const { store, typing } = this.#deps;
    const onAppended = (chat: string) => this.#broadcast({ type: 'messages', chat });
    const onTyping = (chat: string) => this.#broadcast({ type: 'typing', chat, typing: typing.isTyping(chat) });
    const onEvent = (e: TraceEvent) =>
      this.#broadcast({
        type: 'activity',
        chat: e.chatId,
        message: e.messageSeq === null ? null : String(e.messageSeq),
        stage: e.stage,
        detail: e.detail,
        at: new Date(e.at).toISOString(),
      });
    const onTasks = () => this.#coalesce('tasks');
    const onGroups = () => this.#coalesce('groups');
    store.messages.changes.on('appended', onAppended);
    typing.typingChanges.on('typing', onTyping);
    store.changes.on('event', onEvent);
    store.changes.on('tasks', onTasks);
    store.changes.on('groups', onGroups);
    this.#unsubscribe.push(
      () => store.messages.changes.off('appended', onAppended),
      () => typing.typingChanges.off('typing', onTyping),
      () => store.changes.off('event', onEvent),
      () => store.changes.off('tasks', onTasks),
      () => store.changes.off('groups', onGroups),
    );
    this.#heartbeat = setInterval(() => this.#checkAlive(), HEARTBEAT_MS);
    this.#heartbeat.unref();
  }

  #coalesce(kind: 'tasks' | 'groups'): void {
    if (this.#pending.size === 0) setImmediate(() => this.#flush());
    this.#pending.add(kind);
  }

  #flush(): void {
    for (const kind of this.#pending) this.#broadcast({ type: kind });
    this.#pending.clear();
  }

  /** A connection that did not answer the last ping is gone (a sleeping laptop, a dropped network). */
  #checkAlive(): void {
    for (const c of this.#clients) {
      if (!c.alive) c.socket.terminate();
      else {
        c.alive = false;
        c.socket.ping();
      }
    }
  }

  #broadcast(message: LiveMessage): void {
    for (const c of this.#clients) this.#send(c, message);
  }

  #send(client: Client, message: LiveMessage): void {
    if (client.socket.readyState !== client.socket.OPEN) return;
    if (client.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      client.socket.terminate();
      return;
    }
    client.socket.send(JSON.stringify(message));
  }
}

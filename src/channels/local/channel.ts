// The local channel: chats named `local:<name>`, reached through pincer's own HTTP API (and `pincer chat`).
import { randomUUID } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { FastifyInstance } from 'fastify';
import type { Logger } from '../../log.js';
import type { Control } from '../../service/control.js';
import type { Insight } from '../../service/insight.js';
import type { ReplyDraftUpdate } from '../../service/reply-draft.js';
import type { Store } from '../../store/index.js';
import type { Channel, ConnectionState, InboundSink, Outbound } from '../types.js';
import { LOCAL_PREFIX } from './chat-id.js';
import { buildHttpApi } from './http-api.js';
import type { LiveHub } from './live.js';
import { WebAuth } from './web-auth.js';

export interface LocalChannelOptions {
  store: Store;
  host: string;
  port: number;
  token: string;
  /** The owner's administration behind /api/v1/groups, /chats and /tasks. */
  control: Control;
  insight: Insight;
  log: Logger;
  assistantName: string;
  /** Host names besides IP addresses and localhost that requests may name (PINCER_ALLOWED_HOSTS). */
  allowedHosts: readonly string[];
  /** Where the API token is kept, for error messages. */
  tokenHint: string;
}

export class LocalChannel implements Channel {
  readonly name = 'local';
  /** The API's own limit: a reply is stored whole. */
  readonly maxTextLength = Number.MAX_SAFE_INTEGER;
  /** Emits `typing` with the chat id whenever a chat's typing state changes. */
  readonly typingChanges = new EventEmitter<{ typing: [chatId: string] }>();
  readonly #typing = new Set<string>();
  readonly #options: LocalChannelOptions;
  #server: FastifyInstance | undefined;
  #live: LiveHub | undefined;
  #auth: WebAuth | undefined;

  constructor(options: LocalChannelOptions) {
    this.typingChanges.setMaxListeners(0);
    this.#options = options;
  }

  owns(chatId: string): boolean {
    return chatId.startsWith(LOCAL_PREFIX);
  }

  /** Starts the HTTP API; resolves once it listens. */
  async start(sink: InboundSink): Promise<void> {
    const { store, host, port, token, control, insight, log, assistantName, allowedHosts, tokenHint } = this.#options;
    const auth = new WebAuth(store.webSessions, token);
    const { app, live } = buildHttpApi({
      store,
      token,
      sink,
      control,
      insight,
      log,
      typing: this,
      web: { auth, allowedHosts, assistantName, tokenHint, loginLink: () => this.loginLink() },
    });
    this.#server = app;
    this.#live = live;
    this.#auth = auth;
    await app.listen({ host, port });
  }

  /** The web page's address. */
  get url(): string {
    const host = this.#options.host;
    // A wildcard bind is reached on loopback from this machine.
    const shown = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host.includes(':') ? `[${host}]` : host;
    return `http://${shown}:${this.port}`;
  }

  /** How many web pages are connected for live updates. */
  get liveClients(): number {
    return this.#live?.clientCount ?? 0;
  }

  /** A one-time link that logs a browser in to the web page (valid 15 minutes). */
  loginLink(): string {
    if (!this.#auth) throw new Error('local channel is not started');
    return `${this.url}/login?code=${this.#auth.createLoginCode()}`;
  }

  /** The port the API listens on (useful when configured as 0). */
  get port(): number {
    const address = this.#server?.server.address();
    if (!address || typeof address === 'string') throw new Error('local channel is not listening');
    return address.port;
  }

  /** Delivering is storing the reply, which the outbox worker does on success; this only names it. */
  async send(_chatId: string, _out: Outbound): Promise<{ platformId: string }> {
    return { platformId: `reply-${randomUUID()}` };
  }

  async setTyping(chatId: string, on: boolean): Promise<void> {
    if (on === this.#typing.has(chatId)) return;
    if (on) this.#typing.add(chatId);
    else this.#typing.delete(chatId);
    this.typingChanges.emit('typing', chatId);
  }

  /** The reply being written in a chat, for the web pages watching. */
  showReplyDraft(chatId: string, update: ReplyDraftUpdate): void {
    this.#live?.replyDraft(chatId, update);
  }

  isTyping(chatId: string): boolean {
    return this.#typing.has(chatId);
  }

  state(): ConnectionState {
    return this.#server?.server.listening ? 'connected' : 'disconnected';
  }

  async stop(): Promise<void> {
    // Open WebSockets would hold close() up until their clients leave.
    this.#live?.stop();
    await this.#server?.close();
  }
}

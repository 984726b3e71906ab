// A small client of pincer's local HTTP API, for the terminal commands.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { WebSocket } from 'ws';
import { z } from 'zod';
import type { Config } from '../config.js';

const messageSchema = z.object({
  id: z.string(),
  chat: z.string(),
  sender: z.string(),
  text: z.string(),
  time: z.string(),
  fromAssistant: z.boolean(),
});
const sentSchema = z.object({ id: z.string() });
const pageSchema = z.object({ messages: z.array(messageSchema), cursor: z.string(), typing: z.boolean() });

export type ApiMessage = z.infer<typeof messageSchema>;
export type MessagePage = z.infer<typeof pageSchema>;

/** pincer answered with an error; the message is the API's own `error` text. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Nothing answered at the API's address: the one thing to say is how to start pincer. */
export class PincerUnreachableError extends Error {
  constructor(base: string, reason?: string) {
    super(reason ? `cannot reach pincer at ${base}: ${reason}` : `pincer is not running at ${base} (start it with npm start)`);
  }
}

const REQUEST_TIMEOUT_MS = 30_000;
/** Errors that mean nobody listens there, as opposed to a network that misbehaves. */
const NOT_LISTENING = new Set(['ECONNREFUSED', 'ECONNRESET', 'EADDRNOTAVAIL']);

export class ApiClient {
  readonly #base: string;
  readonly #token: string;

  constructor(config: Config) {
    const host = config.host === '0.0.0.0' ? '127.0.0.1' : config.host;
    this.#base = `http://${host}:${config.port}`;
    this.#token = config.token ?? readFileSync(join(config.home, 'token'), 'utf8').trim();
  }

  get base(): string {
    return this.#base;
  }

  /** One JSON call of the API; resolves with the parsed body of a 2xx answer, throws ApiError otherwise. */
  async request(method: string, path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { authorization: `Bearer ${this.#token}` };
    // Fastify refuses an empty body sent as JSON, so the content type goes only with a body.
    if (body !== undefined) headers['content-type'] = 'application/json';
    let res: Response;
    try {
      res = await fetch(this.#base + path, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: AbortSignal.timeout(REQUEST_TIMEOUT_MS),
      });
    } catch (err) {
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      if (cause?.code && NOT_LISTENING.has(cause.code)) throw new PincerUnreachableError(this.#base);
      throw new PincerUnreachableError(this.#base, cause?.message ?? (err as Error).message);
    }
    const text = await res.text();
    let parsed: unknown;
    try {
      parsed = text ? JSON.parse(text) : undefined;
    } catch {
      throw new ApiError(res.status, `unexpected answer from ${this.#base} (HTTP ${res.status}, not JSON): is it pincer?`);
    }
    if (!res.ok) {
      const error = (parsed as { error?: unknown } | undefined)?.error;
      throw new ApiError(res.status, typeof error === 'string' ? error : `HTTP ${res.status}`);
    }
    return parsed;
  }

  /**
   * Stores a message in a local chat and answers its id. `id` is an idempotency key: sending the same message
   * again after a lost answer stores it once.
   */
  async send(chat: string, text: string, id?: string): Promise<string> {
    const body = sentSchema.parse(await this.request('POST', '/api/v1/messages', { chat, text, ...(id ? { id } : {}) }));
    return body.id;
  }

  /** Someone started typing in a local chat: a hint that may start its agent early (404 while the chat is not joined). */
  async typing(chat: string): Promise<void> {
    await this.request('POST', '/api/v1/typing', { chat });
  }

  async poll(chat: string, after: string, waitSeconds: number, typing: boolean): Promise<MessagePage> {
    const query = new URLSearchParams({ chat, after, wait: String(waitSeconds), typing: typing ? '1' : '0' });
    return pageSchema.parse(await this.request('GET', `/api/v1/messages?${query}`));
  }

  /** The newest `count` messages of a chat, oldest first, and the cursor after them. */
  async latest(chat: string, count: number): Promise<MessagePage> {
    const query = new URLSearchParams({ chat, latest: String(count) });
    return pageSchema.parse(await this.request('GET', `/api/v1/messages?${query}`));
  }

  /** The live WebSocket (`/api/v1/live`): notices of what changed, authorized by the token. */
  openLive(): WebSocket {
    return new WebSocket(`${this.#base.replace(/^http/, 'ws')}/api/v1/live`, { headers: { authorization: `Bearer ${this.#token}` } });
  }
}

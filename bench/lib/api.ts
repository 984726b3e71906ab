// A small client of pincer's local HTTP API, for a pincer running as a child process. It speaks node:http over
// keep-alive connections: the global fetch (undici behind WHATWG streams and Headers) cost 3–4× the client CPU
// per request, and the clients share two cores with pincer, so fetch measured the client as much as pincer.
import { Agent, request } from 'node:http';
import type { Socket } from 'node:net';
import type { ApiMessage } from '../../test/helpers/harness.js';
import { sleep } from './wait.js';

export interface ApiResponse {
  status: number;
  body: Record<string, unknown>;
}

export class Api {
  readonly #url: URL;
  readonly #authorization: string;
  /** One connection per concurrent request, each kept open for the next one (HTTP/1.1 without pipelining). */
  readonly #agent = new Agent({ keepAlive: true });
  readonly #sockets = new WeakSet<Socket>();
  #connections = 0;

  constructor(
    readonly base: string,
    readonly token: string,
  ) {
    this.#url = new URL(base);
    this.#authorization = `Bearer ${token}`;
  }

  /** TCP connections opened so far (each request reuses a free one first). */
  get connections(): number {
    return this.#connections;
  }

  #call(method: string, path: string, body?: unknown): Promise<ApiResponse> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const headers: Record<string, string | number> = { authorization: this.#authorization };
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = Buffer.byteLength(payload);
    }
    return new Promise((resolve, reject) => {
      const req = request({ host: this.#url.hostname, port: this.#url.port, path, method, headers, agent: this.#agent }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          try {
            resolve({ status: res.statusCode ?? 0, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} });
          } catch {
            reject(new Error(`${method} ${path}: ${res.statusCode} with a body that is not JSON: ${text.slice(0, 200)}`));
          }
        });
      });
      req.on('socket', (socket) => {
        if (this.#sockets.has(socket)) return;
        this.#sockets.add(socket);
        this.#connections++;
      });
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Posts a message; resolves with its id once pincer has stored it (202). */
  async send(chat: string, text: string): Promise<string> {
    const res = await this.#call('POST', '/api/v1/messages', { chat, text });
    if (res.status !== 202) throw new Error(`POST /api/v1/messages: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body.id as string;
  }

  /** Long-polls the chat until an assistant message after `after` arrives. */
  async reply(chat: string, after: string, timeoutMs: number): Promise<ApiMessage> {
    const deadline = Date.now() + timeoutMs;
    let cursor = after;
    while (Date.now() < deadline) {
      const wait = Math.max(1, Math.min(10, Math.ceil((deadline - Date.now()) / 1000)));
      const res = await this.#call('GET', `/api/v1/messages?chat=${encodeURIComponent(chat)}&after=${cursor}&wait=${wait}`);
      if (res.status !== 200) {
        await sleep(50);
        continue;
      }
      const page = res.body as { messages: ApiMessage[]; cursor: string };
      const found = page.messages.find((m) => m.fromAssistant);
      if (found) return found;
      cursor = page.cursor;
    }
    throw new Error(`no reply in ${chat} after ${after} within ${timeoutMs} ms`);
  }

  /** Closes the kept-alive connections. */
  close(): void {
    this.#agent.destroy();
  }
}

// A small client of pincer's local HTTP API, for a pincer running as a child process.
import type { ApiMessage } from '../../test/helpers/harness.js';
import { sleep } from './wait.js';

export class Api {
  constructor(
    readonly base: string,
    readonly token: string,
  ) {}

  async #call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
    const res = await fetch(this.base + path, {
      method,
      headers: { authorization: `Bearer ${this.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
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
}

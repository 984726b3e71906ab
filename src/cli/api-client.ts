// A small client of pincer's local HTTP API, for the terminal commands.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
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
const pageSchema = z.object({ messages: z.array(messageSchema), cursor: z.string(), typing: z.boolean() });

export type ApiMessage = z.infer<typeof messageSchema>;
export type MessagePage = z.infer<typeof pageSchema>;

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

  async send(chat: string, text: string): Promise<string> {
    const res = await fetch(`${this.#base}/api/v1/messages`, {
      method: 'POST',
      headers: { authorization: `Bearer ${this.#token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ chat, text }),
    });
    const body = (await res.json()) as { id?: string; error?: string };
    if (!res.ok) throw new Error(body.error ?? `HTTP ${res.status}`);
    return body.id ?? '';
  }

  async poll(chat: string, after: string, waitSeconds: number, typing: boolean): Promise<MessagePage> {
    const query = new URLSearchParams({ chat, after, wait: String(waitSeconds), typing: typing ? '1' : '0' });
    const res = await fetch(`${this.#base}/api/v1/messages?${query}`, { headers: { authorization: `Bearer ${this.#token}` } });
    const body: unknown = await res.json();
    if (!res.ok) throw new Error((body as { error?: string }).error ?? `HTTP ${res.status}`);
    return pageSchema.parse(body);
  }
}

// What the user types is sent to pincer; while pincer cannot be reached it waits here, in order, and is sent
// once the connection is back. Each message carries an idempotency key, so a send whose answer was lost and is
// tried again is stored once.
import { randomUUID } from 'node:crypto';
import { type ApiClient, ApiError } from '../api-client.js';
import type { ChatConnection } from './connection.js';

export interface OutboxEvents {
  /** pincer stored the message under `id`; `late`: it waited for the connection. */
  sent(text: string, id: string, late: boolean): void;
  /** Not sent yet: pincer is unreachable; it will be sent when the connection is back. */
  held(text: string): void;
  /** pincer refused the message (too long, a chat it cannot join): it will not be sent. */
  refused(text: string, reason: string): void;
}

interface Waiting {
  text: string;
  key: string;
}

export class Outbox {
  readonly #client: ApiClient;
  readonly #chat: string;
  readonly #connection: ChatConnection;
  readonly #events: OutboxEvents;
  readonly #waiting: Waiting[] = [];
  /** Ids of the messages this terminal sent: they are on screen already. */
  readonly sentIds = new Set<string>();

  constructor(client: ApiClient, chat: string, connection: ChatConnection, events: OutboxEvents) {
    this.#client = client;
    this.#chat = chat;
    this.#connection = connection;
    this.#events = events;
  }

  /** Messages typed but not sent yet. */
  get waiting(): readonly string[] {
    return this.#waiting.map((w) => w.text);
  }

  async send(text: string): Promise<void> {
    const message = { text, key: randomUUID() };
    // Behind messages already waiting, to keep the order; offline, without a request that cannot succeed.
    if (this.#waiting.length > 0 || this.#connection.down) {
      this.#hold(message);
      return;
    }
    if (!(await this.#attempt(message, false))) this.#hold(message);
  }

  /** Sends what waited, in order; stops at the first that cannot be sent yet. */
  async flush(): Promise<void> {
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0] as Waiting;
      if (!(await this.#attempt(next, true))) return;
      this.#waiting.shift();
    }
  }

  #hold(message: Waiting): void {
    this.#waiting.push(message);
    this.#events.held(message.text);
  }

  /** True when the message is done with (stored, or refused for good); false when pincer was unreachable. */
  async #attempt(message: Waiting, late: boolean): Promise<boolean> {
    try {
      const id = await this.#connection.serial(async () => {
        const stored = await this.#client.send(this.#chat, message.text, message.key);
        this.sentIds.add(stored);
        return stored;
      });
      this.#events.sent(message.text, id, late);
      return true;
    } catch (err) {
      if (err instanceof ApiError) {
        this.#events.refused(message.text, err.message);
        return true;
      }
      return false;
    }
  }
}

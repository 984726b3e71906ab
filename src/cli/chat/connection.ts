// One chat followed live: the live WebSocket says what changed (new messages, typing, the agent's steps) and
// the JSON API is re-read after the last message seen, so a dropped connection loses nothing. A dropped
// connection is retried with backoff; the chat hears "lost" once and "back" once it reconnects.
import type { WebSocket } from 'ws';
import { z } from 'zod';
import type { ApiClient, ApiMessage } from '../api-client.js';

export interface ConnectionEvents {
  messages(batch: ApiMessage[]): void;
  typing(working: boolean): void;
  activity(stage: string, detail: string | null): void;
  assistantName(name: string): void;
  lost(reason: string): void;
  back(): void;
}

const FIRST_RETRY_MS = 500;
const MAX_RETRY_MS = 8_000;
/** The API's page size: a shorter page is the last. */
const PAGE = 200;

const liveEvent = z.discriminatedUnion('type', [
  z.object({ type: z.literal('hello'), assistantName: z.string() }),
  z.object({ type: z.literal('messages'), chat: z.string() }),
  z.object({ type: z.literal('typing'), chat: z.string(), typing: z.boolean() }),
  z.object({ type: z.literal('activity'), chat: z.string(), stage: z.string(), detail: z.string().nullable() }),
]);

export class ChatConnection {
  readonly #client: ApiClient;
  readonly #chat: string;
  readonly #events: ConnectionEvents;
  #cursor: string;
  #socket: WebSocket | undefined;
  #lost = false;
  #stopped = false;
  #retryMs = FIRST_RETRY_MS;
  #retry: NodeJS.Timeout | undefined;
  /** Reads and sends run one at a time: a message this client sent has its id before a read can list it. */
  #chain: Promise<unknown> = Promise.resolve();

  constructor(client: ApiClient, chat: string, cursor: string, events: ConnectionEvents) {
    this.#client = client;
    this.#chat = chat;
    this.#cursor = cursor;
    this.#events = events;
  }

  /** The connection dropped and has not come back yet (not while the first one opens). */
  get down(): boolean {
    return this.#lost;
  }

  start(): void {
    this.#connect();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#retry);
    this.#socket?.terminate();
  }

  /** Runs `task` after the reads and sends before it, and before any after it. */
  serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#chain.then(task);
    this.#chain = run.catch(() => undefined);
    return run;
  }

  #connect(): void {
    const socket = this.#client.openLive();
    this.#socket = socket;
    socket.on('open', () => {
      this.#retryMs = FIRST_RETRY_MS;
      if (this.#lost) {
        this.#lost = false;
        this.#events.back();
      }
      // What happened while no notice could come.
      this.#pull();
    });
    socket.on('message', (data, isBinary) => {
      if (isBinary) return;
      const parsed = liveEvent.safeParse(safeJson(data.toString()));
      // Notices this client does not follow (tasks, groups, newer kinds) are not errors.
      if (parsed.success) this.#notice(parsed.data);
    });
    // The error is followed by a close, which handles it; the reason is what "lost" reports.
    let reason = 'connection closed';
    socket.on('error', (err) => {
      reason = err.message;
    });
    socket.on('close', () => {
      if (this.#stopped) return;
      if (!this.#lost) {
        this.#lost = true;
        this.#events.lost(reason);
      }
      this.#retry = setTimeout(() => this.#connect(), this.#retryMs);
      this.#retryMs = Math.min(this.#retryMs * 2, MAX_RETRY_MS);
    });
  }

  #notice(event: z.infer<typeof liveEvent>): void {
    if (event.type === 'hello') this.#events.assistantName(event.assistantName);
    else if (event.chat !== this.#chat) return;
    else if (event.type === 'messages') this.#pull();
    else if (event.type === 'typing') this.#events.typing(event.typing);
    else if (event.type === 'activity') this.#events.activity(event.stage, event.detail);
  }

  /** Reads every message after the cursor; a failed read drops the connection, which retries and reads again. */
  #pull(): void {
    void this.serial(async () => {
      for (;;) {
        const page = await this.#client.poll(this.#chat, this.#cursor, 0, false);
        this.#cursor = page.cursor;
        if (page.messages.length > 0) this.#events.messages(page.messages);
        if (page.messages.length < PAGE) {
          this.#events.typing(page.typing);
          return;
        }
      }
    }).catch(() => this.#socket?.terminate());
  }
}

function safeJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

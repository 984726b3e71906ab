// Embeds what a group has said and written, in the background, bounded: one request at a time, EMBED_BATCH texts
// each; new messages first, then changed memory files, then the history backward (newest first). Driven by the
// store's "appended" signal and the file index's changes, never by polling; a failing endpoint is retried with a
// growing pause (5 s up to 5 min), and recall meanwhile works on keywords (MemorySearch).
import type { Logger } from '../log.js';
import type { Store } from '../store/index.js';
import type { MemoryVectors } from '../store/memory-vectors.js';
import { EMBED_BATCH, type EmbeddingsClient, EmbeddingsError } from './embeddings-client.js';

const FIRST_PAUSE_MS = 5_000;
const LONGEST_PAUSE_MS = 5 * 60_000;
/** Between two batches of history: the endpoint and the event loop get room for the searches and messages of now. */
const HISTORY_PAUSE_MS = 100;

export interface EmbedderState {
  /** The last failure, until a request succeeds again. */
  failing: string | undefined;
}

export class BackgroundEmbedder {
  readonly #store: Store;
  readonly #vectors: MemoryVectors;
  readonly #client: EmbeddingsClient;
  readonly #log: Logger;
  readonly #changedChats = new Set<string>();
  readonly #abort = new AbortController();
  #running: Promise<void> | undefined;
  #wake: (() => void) | undefined;
  #pending = false;
  #pauseMs = 0;
  #failing: string | undefined;
  readonly #firstPauseMs: number;
  readonly #onAppended = () => this.#kick();

  /** `firstPauseMs`: the pause after a first failure (doubling up to 5 min). */
  constructor(store: Store, vectors: MemoryVectors, client: EmbeddingsClient, log: Logger, firstPauseMs = FIRST_PAUSE_MS) {
    this.#store = store;
    this.#vectors = vectors;
    this.#client = client;
    this.#log = log;
    this.#firstPauseMs = firstPauseMs;
  }

  get state(): EmbedderState {
    return { failing: this.#failing };
  }

  start(): void {
    this.#store.messages.changes.on('appended', this.#onAppended);
    // Memory files indexed before this start (or by an older pincer) are checked once.
    for (const chatId of this.#store.fileSearch.chats()) this.#changedChats.add(chatId);
    this.#running = this.#loop();
  }

  /** The file index changed a chat's passages: their vectors follow. */
  filesChanged(chatId: string): void {
    this.#changedChats.add(chatId);
    this.#kick();
  }

  async stop(): Promise<void> {
    this.#store.messages.changes.off('appended', this.#onAppended);
    this.#abort.abort();
    await this.#running;
  }

  #kick(): void {
    this.#pending = true;
    this.#wake?.();
  }

  async #loop(): Promise<void> {
    const signal = this.#abort.signal;
    while (!signal.aborted) {
      let more: boolean | 'history';
      try {
        more = await this.#step(signal);
        if (this.#failing) this.#log.info('the embeddings service answers again; recall by meaning goes on');
        this.#failing = undefined;
        this.#pauseMs = 0;
      } catch (err) {
        if (signal.aborted) return;
        const reason = err instanceof Error ? err.message : String(err);
        if (reason !== this.#failing)
          this.#log.warn({ reason }, 'embedding failed; recall works on keywords meanwhile, and embedding is retried');
        this.#failing = reason;
        this.#pauseMs = Math.min(LONGEST_PAUSE_MS, this.#pauseMs === 0 ? this.#firstPauseMs : this.#pauseMs * 2);
        await this.#sleep(this.#pauseMs, false);
        continue;
      }
      if (more === 'history') await this.#sleep(HISTORY_PAUSE_MS, false);
      else if (!more) await this.#sleep(Number.POSITIVE_INFINITY, true);
    }
  }

  /** Waits `ms`, or (`wakeOnWork`) until work comes; never past stop. Work that came meanwhile ends it at once. */
  #sleep(ms: number, wakeOnWork: boolean): Promise<void> {
    const signal = this.#abort.signal;
    if (signal.aborted) return Promise.resolve();
    if (wakeOnWork && this.#pending) {
      this.#pending = false;
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(timer);
        signal.removeEventListener('abort', done);
        this.#wake = undefined;
        if (wakeOnWork) this.#pending = false;
        resolve();
      };
      const timer = Number.isFinite(ms) ? setTimeout(done, ms) : undefined;
      signal.addEventListener('abort', done);
      if (wakeOnWork) this.#wake = done;
    });
  }

  /** One batch of work; whether more waits (`history`: only the backward fill, which goes gently). */
  async #step(signal: AbortSignal): Promise<boolean | 'history'> {
    const space = this.#vectors.space();
    if (space?.model !== this.#client.model) {
      // The model's size is learnt from its answer; another model's vectors go (they cannot be compared).
      const [probe] = await this.#client.embed(['pincer'], signal);
      if (!probe) throw new EmbeddingsError('the embeddings service answered no vector');
      if (space) this.#log.info({ from: space.model, to: this.#client.model }, 'the embedding model changed: messages are embedded again');
      this.#vectors.useSpace(this.#client.model, probe.length);
      return true;
    }
    const next = this.#vectors.nextMessages(EMBED_BATCH);
    if (next.direction === 'new' && next.messages.length > 0) {
      await this.#embedMessages(next.direction, next.messages, signal);
      return true;
    }
    const chatId = this.#changedChats.values().next().value;
    if (chatId !== undefined) {
      const todo = this.#vectors.passagesToEmbed(chatId, this.#store.fileSearch.passages(chatId));
      const batch = todo.slice(0, EMBED_BATCH);
      if (batch.length > 0) {
        const vectors = await this.#client.embed(
          batch.map((p) => `${p.path}\n${p.text}`),
          signal,
        );
        this.#vectors.putPassages(
          chatId,
          batch.map((passage, i) => ({ passage, vector: vectors[i] as Float32Array })),
        );
      }
      if (todo.length <= EMBED_BATCH) this.#changedChats.delete(chatId);
      return true;
    }
    if (next.messages.length === 0) return false;
    await this.#embedMessages(next.direction, next.messages, signal);
    return 'history';
  }

  async #embedMessages(
    direction: 'new' | 'old',
    messages: Array<{ seq: number; chatId: string; sentAt: number; text: string }>,
    signal: AbortSignal,
  ) {
    const withText = messages.filter((m) => m.text.trim() !== '');
    const vectors = await this.#client.embed(
      withText.map((m) => m.text),
      signal,
    );
    const last = messages[messages.length - 1] as { seq: number };
    this.#vectors.putMessages(
      direction,
      withText.map((m, i) => ({ seq: m.seq, chatId: m.chatId, sentAt: m.sentAt, vector: vectors[i] as Float32Array })),
      last.seq,
    );
  }
}

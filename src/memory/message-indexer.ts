// Keeps the full-text index of messages up to date: a burst of stored messages is indexed together, a few
// milliseconds later, in batches (one transaction each) that yield to the event loop between them. Driven by the
// store's own "appended" signal, never by a timer that polls; and at start it catches up on whatever a crash or
// an older pincer left unindexed. A search brings the index up to date itself first (see MemorySearch).
import type { Logger } from '../log.js';
import type { Store } from '../store/index.js';

/** Messages per transaction: large enough that FTS5 writes few segments, small enough to keep the loop free. */
export const INDEX_BATCH = 500;
/** How long after a message the index follows: a burst coming in meanwhile is indexed with it. */
const FOLLOW_MS = 25;

export class MessageIndexer {
  readonly #store: Store;
  readonly #log: Logger;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  readonly #onAppended = () => this.#schedule();

  constructor(store: Store, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  start(): void {
    this.#store.messages.changes.on('appended', this.#onAppended);
    this.#schedule();
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#store.messages.changes.off('appended', this.#onAppended);
  }

  #schedule(): void {
    if (this.#timer || this.#stopped) return;
    this.#timer = setTimeout(() => this.#run(), FOLLOW_MS);
  }

  #run(): void {
    this.#timer = undefined;
    if (this.#stopped) return;
    try {
      // A full batch means more may wait: the next one runs on a later turn of the event loop.
      if (this.#store.messageSearch.indexNext(INDEX_BATCH) === INDEX_BATCH) this.#timer = setTimeout(() => this.#run(), 0);
    } catch (err) {
      this.#log.error({ err }, 'indexing messages for search failed; the next search or message tries again');
    }
  }
}

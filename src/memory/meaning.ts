// Recall by meaning, put together when an embeddings endpoint is configured: the vector tables on the store's
// connection, the client, the background embedder, and the search's view of them. Without an endpoint, or where
// sqlite-vec does not load, recall works on keywords alone (and `pincer doctor` says which).
import type { EmbeddingsConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/index.js';
import { openMemoryVectors } from '../store/memory-vectors.js';
import { BackgroundEmbedder } from './embedder.js';
import { EmbeddingsClient } from './embeddings-client.js';
import type { MeaningSearch } from './memory-search.js';

export interface Meaning {
  search: MeaningSearch;
  embedder: BackgroundEmbedder;
  filesChanged(chatId: string): void;
}

export function recallByMeaning(config: EmbeddingsConfig | undefined, store: Store, log: Logger): Meaning | undefined {
  if (!config) return undefined;
  const vectors = openMemoryVectors(store.db);
  if ('unavailable' in vectors) {
    log.warn({ reason: vectors.unavailable }, 'PINCER_EMBEDDINGS_URL is set, but recall works on keywords alone');
    return undefined;
  }
  const client = new EmbeddingsClient(config);
  const embedder = new BackgroundEmbedder(store, vectors, client, log);
  return { search: { vectors, client }, embedder, filesChanged: (chatId) => embedder.filesChanged(chatId) };
}

// `pincer doctor`'s word on recall: keywords alone, or keywords and meaning; with an embeddings endpoint, one real
// request to it (through the same client pincer uses) and a load of the vector extension.
import Database from 'better-sqlite3';
import type { Config } from '../../config.js';
import { EmbeddingsClient, EmbeddingsError } from '../../memory/embeddings-client.js';
import { openMemoryVectors } from '../../store/memory-vectors.js';
import { type Check, fail, ok } from './check.js';

export async function memoryCheck(config: Config): Promise<Check> {
  const settings = config.embeddings;
  if (!settings)
    return ok(
      'memory',
      'recall by keywords (SQLite FTS5); for recall by meaning too, set PINCER_EMBEDDINGS_URL and PINCER_EMBEDDINGS_MODEL (and _KEY)',
    );
  const probe = new Database(':memory:');
  try {
    const vectors = openMemoryVectors(probe);
    if ('unavailable' in vectors)
      return fail(
        'memory',
        `recall by keywords only: ${vectors.unavailable}`,
        'reinstall with `npm ci` on this machine, or unset PINCER_EMBEDDINGS_URL',
      );
  } finally {
    probe.close();
  }
  const client = new EmbeddingsClient(settings);
  const started = performance.now();
  try {
    const [vector] = await client.embed(['pincer doctor']);
    const ms = Math.round(performance.now() - started);
    return ok(
      'memory',
      `recall by keywords and meaning: ${client.model} at ${client.endpoint} answered ${vector?.length} dimensions in ${ms} ms`,
      ms,
    );
  } catch (err) {
    const reason = err instanceof EmbeddingsError ? err.message : String(err);
    return fail(
      'memory',
      `recall by meaning is configured but ${reason}; search works on keywords meanwhile`,
      'check PINCER_EMBEDDINGS_URL, PINCER_EMBEDDINGS_MODEL and PINCER_EMBEDDINGS_KEY (docs/CONFIGURATION.md, Memory)',
    );
  }
}

import { createHash } from 'node:crypto';
import * as sqliteVec from 'sqlite-vec';
import type { Db } from './db.js';

/**
 * The vectors of messages and memory-file passages, for recall by meaning: two sqlite-vec `vec0` tables (exact
 * nearest neighbours in C over int8 vectors, partitioned by chat, so a search reads only the chats it may see). Their size is the
 * embedding model's, known only from its first answer, so they are made here, not by a migration: a change of
 * model drops them and starts over (vectors of two models cannot be compared).
 *
 * Messages are embedded from where embedding began in both directions: new ones forward from `high`, the history
 * backward from `low` (newest first: recent talk matters first). Passages are keyed by a hash of their text, so a
 * file edited elsewhere keeps the vectors of the passages that did not change.
 */

export interface EmbeddingSpace {
  model: string;
  dims: number;
}

export interface MessageToEmbed {
  seq: number;
  chatId: string;
  sentAt: number;
  text: string;
}

export interface EmbeddedMessage {
  seq: number;
  chatId: string;
  sentAt: number;
  vector: Float32Array;
}

export interface PassageToEmbed {
  path: string;
  line: number;
  hash: string;
  text: string;
}

export interface VectorHit {
  /** Cosine distance: 0 is the same direction, 2 the opposite. */
  distance: number;
}

const hashOf = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 22);

/**
 * A vector as stored: one signed byte a dimension, scaled so that its largest component is ±127. Cosine distance
 * ignores a vector's length, so the scale costs nothing; a quarter of float32's size (50,000 vectors of 1,536
 * dimensions: 77 MB, not 307), and the nearest ten stay ≈99 % the same as with floats (measured on random data).
 */
function int8Blob(v: Float32Array): Buffer {
  let largest = 0;
  for (const x of v) largest = Math.max(largest, Math.abs(x));
  const scale = largest > 0 ? 127 / largest : 0;
  const out = new Int8Array(v.length);
  for (let i = 0; i < v.length; i++) out[i] = Math.round((v[i] as number) * scale);
  return Buffer.from(out.buffer);
}

/** Opens the vector tables on the store's connection; a reason when sqlite-vec cannot load on this host. */
export function openMemoryVectors(db: Db): MemoryVectors | { unavailable: string } {
  try {
    sqliteVec.load(db);
  } catch (err) {
    return { unavailable: `the sqlite-vec extension does not load here: ${err instanceof Error ? err.message : String(err)}` };
  }
  return new MemoryVectors(db);
}

export class MemoryVectors {
  readonly #db: Db;

  constructor(db: Db) {
    this.#db = db;
  }

  space(): EmbeddingSpace | undefined {
    return this.#db.prepare<[], EmbeddingSpace>('SELECT model, dims FROM embedding_space WHERE id = 1').get();
  }

  /**
   * Makes `model` with `dims` the space vectors live in. Another model's vectors are dropped; embedding starts
   * over from the newest message.
   */
  useSpace(model: string, dims: number): void {
    if (!Number.isInteger(dims) || dims < 1 || dims > 8192) throw new Error(`an embedding of ${dims} dimensions cannot be stored`);
    const now = this.space();
    if (now?.model === model && now.dims === dims) return;
    this.#db.transaction(() => {
      this.#db.exec('DROP TABLE IF EXISTS message_vectors; DROP TABLE IF EXISTS passage_vectors; DELETE FROM passage_vector_keys;');
      this.#db.exec(
        `CREATE VIRTUAL TABLE message_vectors USING vec0(chat_id TEXT PARTITION KEY, sent_at INTEGER, embedding INT8[${dims}] distance_metric=cosine)`,
      );
      this.#db.exec(
        `CREATE VIRTUAL TABLE passage_vectors USING vec0(chat_id TEXT PARTITION KEY, embedding INT8[${dims}] distance_metric=cosine)`,
      );
      const newest = this.#db.prepare<[], { seq: number | null }>('SELECT MAX(seq) AS seq FROM messages').get()?.seq ?? 0;
      this.#db
        .prepare<[string, number, number, number]>(
          `INSERT INTO embedding_space (id, model, dims, high, low) VALUES (1, ?, ?, ?, ?)
           ON CONFLICT (id) DO UPDATE SET model = excluded.model, dims = excluded.dims, high = excluded.high, low = excluded.low`,
        )
        .run(model, dims, newest, newest + 1);
    })();
  }

  /** The next messages to embed: new ones first, then the history backward; `direction` says which. */
  nextMessages(limit: number): { direction: 'new' | 'old'; messages: MessageToEmbed[] } {
    const cursor = this.#cursor();
    const newer = this.#db
      .prepare<[number, number], MessageToEmbed>(
        'SELECT seq, chat_id AS chatId, sent_at AS sentAt, text FROM messages WHERE seq > ? ORDER BY seq LIMIT ?',
      )
      .all(cursor.high, limit);
    if (newer.length > 0) return { direction: 'new', messages: newer };
    const older = this.#db
      .prepare<[number, number], MessageToEmbed>(
        'SELECT seq, chat_id AS chatId, sent_at AS sentAt, text FROM messages WHERE seq < ? ORDER BY seq DESC LIMIT ?',
      )
      .all(cursor.low, limit);
    return { direction: 'old', messages: older };
  }

  /**
   * Stores the vectors of a batch from nextMessages and moves its cursor past `through` (the batch's last seq:
   * messages without text have no vector but are done too), in one transaction.
   */
  putMessages(direction: 'new' | 'old', vectors: EmbeddedMessage[], through: number): void {
    const insert = this.#db.prepare<[bigint, string, bigint, Buffer]>(
      'INSERT OR REPLACE INTO message_vectors (rowid, chat_id, sent_at, embedding) VALUES (?, ?, ?, vec_int8(?))',
    );
    this.#db.transaction(() => {
      // vec0 takes integers only as such: a JavaScript number is bound as a float.
      for (const v of vectors) insert.run(BigInt(v.seq), v.chatId, BigInt(v.sentAt), int8Blob(v.vector));
      this.#db.prepare(`UPDATE embedding_space SET ${direction === 'new' ? 'high' : 'low'} = ? WHERE id = 1`).run(through);
    })();
  }

  /**
   * What of a chat's passages (as the file index has them now) has no vector yet; the vectors of passages that
   * are gone are dropped.
   */
  passagesToEmbed(chatId: string, passages: Array<{ path: string; line: number; text: string }>): PassageToEmbed[] {
    const current = passages.map((p) => ({ ...p, hash: hashOf(p.text) }));
    const key = (p: { path: string; line: number; hash: string }) => `${p.line}:${p.hash}:${p.path}`;
    const wanted = new Set(current.map(key));
    const stored = this.#db
      .prepare<[string], { id: number; path: string; line: number; hash: string }>(
        'SELECT id, path, line, hash FROM passage_vector_keys WHERE chat_id = ?',
      )
      .all(chatId);
    const gone = stored.filter((s) => !wanted.has(key(s)));
    if (gone.length > 0) {
      const dropKey = this.#db.prepare<[number]>('DELETE FROM passage_vector_keys WHERE id = ?');
      const dropVector = this.#db.prepare<[bigint]>('DELETE FROM passage_vectors WHERE rowid = ?');
      this.#db.transaction(() => {
        for (const g of gone) {
          dropKey.run(g.id);
          dropVector.run(BigInt(g.id));
        }
      })();
    }
    const have = new Set(stored.filter((s) => wanted.has(key(s))).map(key));
    return current.filter((p) => !have.has(key(p)));
  }

  putPassages(chatId: string, embedded: Array<{ passage: PassageToEmbed; vector: Float32Array }>): void {
    const insertKey = this.#db.prepare<[string, string, number, string]>(
      'INSERT OR IGNORE INTO passage_vector_keys (chat_id, path, line, hash) VALUES (?, ?, ?, ?)',
    );
    const insertVector = this.#db.prepare<[bigint, string, Buffer]>(
      'INSERT OR REPLACE INTO passage_vectors (rowid, chat_id, embedding) VALUES (?, ?, vec_int8(?))',
    );
    this.#db.transaction(() => {
      for (const { passage, vector } of embedded) {
        const added = insertKey.run(chatId, passage.path, passage.line, passage.hash);
        if (added.changes === 1) insertVector.run(BigInt(added.lastInsertRowid), chatId, int8Blob(vector));
      }
    })();
  }

  /** The messages of these chats nearest to `vector`, sent between `from` and `to`, nearest first. */
  nearestMessages(vector: Float32Array, chatIds: string[], from: number, to: number, k: number): Array<VectorHit & { seq: number }> {
    return this.#db
      .prepare<[Buffer, number, string, bigint, bigint], VectorHit & { seq: number }>(
        `SELECT rowid AS seq, distance FROM message_vectors
         WHERE embedding MATCH vec_int8(?) AND k = ? AND chat_id IN (SELECT value FROM json_each(?)) AND sent_at BETWEEN ? AND ?
         ORDER BY distance`,
      )
      .all(int8Blob(vector), k, JSON.stringify(chatIds), BigInt(from), BigInt(to));
  }

  /** The passages of these chats' memory files nearest to `vector`, nearest first. */
  nearestPassages(vector: Float32Array, chatIds: string[], k: number): Array<VectorHit & { chatId: string; path: string; line: number }> {
    return this.#db
      .prepare<[Buffer, number, string], VectorHit & { chatId: string; path: string; line: number }>(
        `SELECT key.chat_id AS chatId, key.path, key.line, near.distance FROM (
           SELECT rowid, distance FROM passage_vectors
           WHERE embedding MATCH vec_int8(?) AND k = ? AND chat_id IN (SELECT value FROM json_each(?))
         ) AS near JOIN passage_vector_keys AS key ON key.id = near.rowid
         ORDER BY near.distance`,
      )
      .all(int8Blob(vector), k, JSON.stringify(chatIds));
  }

  /** How far embedding has come: messages with text that have a vector, of all with text; passages with one. */
  progress(): { messages: number; ofMessages: number; passages: number } {
    const cursor = this.#cursor();
    const counted = this.#db
      .prepare<[number, number], { done: number; all: number }>(
        `SELECT COUNT(*) FILTER (WHERE seq >= ? AND seq <= ?) AS done, COUNT(*) AS "all" FROM messages WHERE text <> ''`,
      )
      .get(cursor.low, cursor.high);
    const passages = this.#db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM passage_vector_keys').get()?.n ?? 0;
    return { messages: counted?.done ?? 0, ofMessages: counted?.all ?? 0, passages };
  }

  #cursor(): { high: number; low: number } {
    const row = this.#db.prepare<[], { high: number; low: number }>('SELECT high, low FROM embedding_space WHERE id = 1').get();
    if (!row) throw new Error('no embedding space chosen yet (useSpace first)');
    return row;
  }
}

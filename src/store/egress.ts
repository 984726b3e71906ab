import type { Db } from './db.js';

/** Rows kept per group: a sandbox that makes connections without end pushes out only its own oldest rows. */
export const EGRESS_ROWS_PER_GROUP = 10_000;
/** Rows older than this are forgotten. */
export const EGRESS_MAX_AGE_MS = 30 * 24 * 3600_000;
/** A group's rows beyond the bound are removed every this many of its inserts (cheap: one index range). */
const TRIM_EVERY = 200;
/** Old rows are looked for at most this often (a scan of a table that the bounds keep small). */
const AGE_PRUNE_EVERY_MS = 3600_000;

/** One connection (or refusal) a group's sandbox made through the egress proxy. */
export interface EgressEntry {
  chatId: string;
  method: string;
  host: string;
  port: number;
  allowed: boolean;
  reason: string | null;
  /** The address actually connected to, after the resolver and the address rules. */
  address: string | null;
  bytesUp: number;
  bytesDown: number;
  startedAt: number;
  durationMs: number;
  /** How many connections the row stands for: 1, or more for a summary of a sandbox's refusals. */
  count: number;
}

interface EgressRow {
  chat_id: string;
  method: string;
  host: string;
  port: number;
  allowed: number;
  reason: string | null;
  address: string | null;
  bytes_up: number;
  bytes_down: number;
  started_at: number;
  duration_ms: number;
  count: number;
}

/** The egress log, bounded by rows per group and by age, both kept while pincer runs. */
export class EgressTable {
  readonly #insert;
  readonly #recent;
  readonly #prune;
  readonly #trim;
  /** Inserts per group since its last trim. */
  readonly #sinceTrim = new Map<string, number>();
  #lastAgePrune = 0;

  constructor(db: Db) {
    this.#insert = db.prepare<
      [string, string, string, number, number, string | null, string | null, number, number, number, number, number]
    >(
      `INSERT INTO egress_log (chat_id, method, host, port, allowed, reason, address, bytes_up, bytes_down, started_at, duration_ms, count)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#prune = db.prepare<[number]>('DELETE FROM egress_log WHERE started_at < ?');
    // Everything of the group older than its newest EGRESS_ROWS_PER_GROUP rows: a walk down egress_by_chat.
    this.#trim = db.prepare<[string, string, number]>(
      `DELETE FROM egress_log WHERE chat_id = ? AND id <= (
         SELECT id FROM egress_log WHERE chat_id = ? ORDER BY id DESC LIMIT 1 OFFSET ?)`,
    );
    this.#recent = db.prepare<[string, number], EgressRow>('SELECT * FROM egress_log WHERE chat_id = ? ORDER BY id DESC LIMIT ?');
  }

  record(e: EgressEntry): void {
    this.#insert.run(
      e.chatId,
      e.method,
      e.host,
      e.port,
      e.allowed ? 1 : 0,
      e.reason,
      e.address,
      e.bytesUp,
      e.bytesDown,
      e.startedAt,
      e.durationMs,
      e.count,
    );
    // A group's first insert since start trims too: restarts do not let its rows creep past the bound.
    const inserts = (this.#sinceTrim.get(e.chatId) ?? TRIM_EVERY - 1) + 1;
    if (inserts >= TRIM_EVERY) {
      this.#trim.run(e.chatId, e.chatId, EGRESS_ROWS_PER_GROUP);
      this.#sinceTrim.set(e.chatId, 0);
    } else this.#sinceTrim.set(e.chatId, inserts);
    const now = e.startedAt + e.durationMs;
    if (now - this.#lastAgePrune >= AGE_PRUNE_EVERY_MS) {
      this.#lastAgePrune = now;
      this.prune(now - EGRESS_MAX_AGE_MS);
    }
  }

  /** The newest entries of a group, newest first. */
  recent(chatId: string, limit: number): EgressEntry[] {
    return this.#recent.all(chatId, limit).map((r) => ({
      chatId: r.chat_id,
      method: r.method,
      host: r.host,
      port: r.port,
      allowed: r.allowed === 1,
      reason: r.reason,
      address: r.address,
      bytesUp: r.bytes_up,
      bytesDown: r.bytes_down,
      startedAt: r.started_at,
      durationMs: r.duration_ms,
      count: r.count,
    }));
  }

  /** Forgets connections older than `before` (ms since the epoch); returns how many. */
  prune(before: number): number {
    return this.#prune.run(before).changes;
  }
}

import type { Db } from './db.js';

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
}

export class EgressTable {
  readonly #insert;
  readonly #recent;
  readonly #prune;

  constructor(db: Db) {
    this.#insert = db.prepare<[string, string, string, number, number, string | null, string | null, number, number, number, number]>(
      `INSERT INTO egress_log (chat_id, method, host, port, allowed, reason, address, bytes_up, bytes_down, started_at, duration_ms)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#prune = db.prepare<[number]>('DELETE FROM egress_log WHERE started_at < ?');
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
    );
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
    }));
  }

  /** Forgets connections older than `before` (ms since the epoch); returns how many. */
  prune(before: number): number {
    return this.#prune.run(before).changes;
  }
}

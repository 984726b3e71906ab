import type { Db } from './db.js';

export interface TurnRecord {
  chatId: string;
  firstSeq: number;
  lastSeq: number;
  sessionId: string | null;
  /** unavailable: no agent could run (no credentials or no sandbox runtime). */
  status: 'success' | 'error' | 'timeout' | 'crashed' | 'unavailable';
  error: string | null;
  startedAt: number;
  endedAt: number;
  durationMs: number | null;
  costUsd: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
}

export class TurnTable {
  readonly #insert;
  readonly #forChat;
  readonly #since;
  readonly #costSince;
  readonly #costSinceForChat;

  constructor(db: Db) {
    this.#insert = db.prepare(
      `INSERT INTO turns (chat_id, first_seq, last_seq, session_id, status, error, started_at, ended_at, duration_ms, cost_usd, input_tokens, output_tokens)
       VALUES (@chatId, @firstSeq, @lastSeq, @sessionId, @status, @error, @startedAt, @endedAt, @durationMs, @costUsd, @inputTokens, @outputTokens)`,
    );
    this.#forChat = db.prepare<[string, number], TurnRecord>(
      `SELECT chat_id AS chatId, first_seq AS firstSeq, last_seq AS lastSeq, session_id AS sessionId, status, error,
         started_at AS startedAt, ended_at AS endedAt, duration_ms AS durationMs, cost_usd AS costUsd,
         input_tokens AS inputTokens, output_tokens AS outputTokens
       FROM turns WHERE chat_id = ? ORDER BY id DESC LIMIT ?`,
    );
    this.#since = db.prepare<
      [number],
      { chatId: string; endedAt: number; costUsd: number | null; inputTokens: number | null; outputTokens: number | null }
    >(
      `SELECT chat_id AS chatId, ended_at AS endedAt, cost_usd AS costUsd, input_tokens AS inputTokens, output_tokens AS outputTokens
       FROM turns WHERE ended_at >= ? ORDER BY id`,
    );
    this.#costSince = db.prepare<[number], { total: number | null }>('SELECT SUM(cost_usd) AS total FROM turns WHERE ended_at >= ?');
    this.#costSinceForChat = db.prepare<[number, string], { total: number | null }>(
      'SELECT SUM(cost_usd) AS total FROM turns WHERE ended_at >= ? AND chat_id = ?',
    );
  }

  /** The total cost of turns that ended at or after `at`: all groups', or one chat's. */
  costSince(at: number, chatId?: string): number {
    const row = chatId === undefined ? this.#costSince.get(at) : this.#costSinceForChat.get(at, chatId);
    return row?.total ?? 0;
  }

  /** What every turn since `at` cost, for usage per group and day. */
  costsSince(
    at: number,
  ): Array<{ chatId: string; endedAt: number; costUsd: number | null; inputTokens: number | null; outputTokens: number | null }> {
    return this.#since.all(at);
  }

  record(t: TurnRecord): void {
    this.#insert.run(t);
  }

  recent(chatId: string, limit: number): TurnRecord[] {
    return this.#forChat.all(chatId, limit);
  }
}

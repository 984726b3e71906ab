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
  /** What the model proxy metered for the turn's calls; null when a model's price is not known. */
  costUsd: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
}

export class TurnTable {
  readonly #insert;
  readonly #forChat;
  readonly #endedSince;
  readonly #carrying;

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
    this.#carrying = db.prepare<[string, number, number], { lastSeq: number }>(
      'SELECT last_seq AS lastSeq FROM turns WHERE chat_id = ? AND first_seq <= ? AND last_seq >= ? ORDER BY id DESC LIMIT 1',
    );
    this.#endedSince = db.prepare<[number], { chatId: string; endedAt: number }>(
      'SELECT chat_id AS chatId, ended_at AS endedAt FROM turns WHERE ended_at >= ? ORDER BY id',
    );
  }

  /** When each turn since `at` ended, and for which chat: turns per group and day (their cost is metered per call). */
  endedSince(at: number): Array<{ chatId: string; endedAt: number }> {
    return this.#endedSince.all(at);
  }

  /** The newest finished turn whose messages included `seq`: its last message's seq, under which its events are. */
  carrying(chatId: string, seq: number): number | undefined {
    return this.#carrying.get(chatId, seq, seq)?.lastSeq;
  }

  record(t: TurnRecord): void {
    this.#insert.run(t);
  }

  recent(chatId: string, limit: number): TurnRecord[] {
    return this.#forChat.all(chatId, limit);
  }
}

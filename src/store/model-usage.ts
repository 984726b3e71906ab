import type { Db } from './db.js';

/** One model call a group's sandbox made, as the model proxy metered it from the endpoint's answer. */
export interface ModelUsageEntry {
  chatId: string;
  /** The configured provider the call went to. */
  provider: string;
  /** As the endpoint named it; null when it did not. */
  model: string | null;
  inputTokens: number;
  outputTokens: number;
  cacheWriteTokens: number;
  cacheReadTokens: number;
  webSearches: number;
  /** At list prices; null when the model's price is not known. */
  costUsd: number | null;
  /** What it counts against budgets: the cost, or for an unknown price the cost at the dearest known rates. */
  budgetUsd: number;
  at: number;
}

/** A chat's calls to one model within one quarter hour (every time zone's offset is a multiple of it, so days add up). */
export interface UsageSlot {
  chatId: string;
  /** Null for calls metered before providers were recorded (all of them the default provider's). */
  provider: string | null;
  model: string | null;
  /** The first call's time. */
  at: number;
  calls: number;
  /** Of the calls with a known price. */
  costUsd: number;
  /** Calls whose model's price is not known: left out of `costUsd`. */
  unpricedCalls: number;
  inputTokens: number;
  outputTokens: number;
}

const SLOT_MS = 15 * 60_000;
const MAX_KNOWN_TOTALS = 1000;

/** Every metered model call: the source of truth for spend (budgets) and usage. */
export class ModelUsageTable {
  readonly #insert;
  readonly #spent;
  readonly #spentForChat;
  readonly #since;
  /**
   * Totals asked for so far, by start and chat (every model call asks for up to four). Only this table writes
   * model_usage, outside any transaction, so adding each recorded call keeps them true.
   */
  readonly #totals = new Map<string, { at: number; chatId: string | undefined; total: number }>();

  constructor(db: Db) {
    this.#insert = db.prepare(
      `INSERT INTO model_usage (chat_id, provider, model, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, web_searches, cost_usd, budget_usd, at)
       VALUES (@chatId, @provider, @model, @inputTokens, @outputTokens, @cacheWriteTokens, @cacheReadTokens, @webSearches, @costUsd, @budgetUsd, @at)`,
    );
    this.#spent = db.prepare<[number], { total: number | null }>('SELECT SUM(budget_usd) AS total FROM model_usage WHERE at >= ?');
    this.#spentForChat = db.prepare<[number, string], { total: number | null }>(
      'SELECT SUM(budget_usd) AS total FROM model_usage WHERE at >= ? AND chat_id = ?',
    );
    this.#since = db.prepare<[number], UsageSlot>(
      `SELECT chat_id AS chatId, provider, model, MIN(at) AS at, COUNT(*) AS calls, COALESCE(SUM(cost_usd), 0) AS costUsd,
         COUNT(*) - COUNT(cost_usd) AS unpricedCalls, SUM(input_tokens) AS inputTokens, SUM(output_tokens) AS outputTokens
       FROM model_usage WHERE at >= ? GROUP BY chat_id, provider, model, at / ${SLOT_MS} ORDER BY MIN(at)`,
    );
  }

  record(e: ModelUsageEntry): void {
    this.#insert.run(e);
    for (const t of this.#totals.values()) if (e.at >= t.at && (t.chatId === undefined || t.chatId === e.chatId)) t.total += e.budgetUsd;
  }

  /** What calls at or after `at` count against budgets: all groups', or one chat's. */
  spentSince(at: number, chatId?: string): number {
    const key = `${at} ${chatId ?? ''}`;
    let known = this.#totals.get(key);
    if (!known) {
      // Old periods' totals are never asked again: a bound, not an eviction policy, keeps the map small.
      if (this.#totals.size >= MAX_KNOWN_TOTALS) this.#totals.clear();
      const row = chatId === undefined ? this.#spent.get(at) : this.#spentForChat.get(at, chatId);
      known = { at, chatId, total: row?.total ?? 0 };
      this.#totals.set(key, known);
    }
    return known.total;
  }

  /** The calls since `at` by chat, model and quarter hour, for usage per group, model and day. */
  usageSince(at: number): UsageSlot[] {
    return this.#since.all(at);
  }
}

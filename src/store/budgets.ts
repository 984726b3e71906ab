import type { Db } from './db.js';

/** A spending limit in US dollars per calendar day and per calendar month; null: no limit. */
export interface BudgetLimits {
  dailyUsd: number | null;
  monthlyUsd: number | null;
}

/** `global`, or a group's chat id. */
export type BudgetScope = string;
export const GLOBAL_SCOPE = 'global';

interface BudgetRow {
  scope: string;
  daily_usd: number | null;
  monthly_usd: number | null;
}

/** The budgets the owner set, and which "budget reached" notices each chat was already given. */
export class BudgetTable {
  readonly #get;
  readonly #list;
  readonly #upsert;
  readonly #remove;
  readonly #notice;
  /**
   * Limits read so far, by scope (null: no row). Asked for every engaged message; only this table writes
   * them, outside any transaction, so the copy stays true.
   */
  readonly #known = new Map<string, BudgetLimits | null>();

  constructor(db: Db) {
    this.#get = db.prepare<[string], BudgetRow>('SELECT * FROM budgets WHERE scope = ?');
    this.#list = db.prepare<[], BudgetRow>('SELECT * FROM budgets ORDER BY scope');
    this.#upsert = db.prepare<[string, number | null, number | null, number]>(
      `INSERT INTO budgets (scope, daily_usd, monthly_usd, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (scope) DO UPDATE SET daily_usd = excluded.daily_usd, monthly_usd = excluded.monthly_usd, updated_at = excluded.updated_at`,
    );
    this.#remove = db.prepare<[string]>('DELETE FROM budgets WHERE scope = ?');
    this.#notice = db.prepare<[string, string, number]>(
      'INSERT INTO budget_notices (chat_id, period, at) VALUES (?, ?, ?) ON CONFLICT DO NOTHING',
    );
  }

  get(scope: BudgetScope): BudgetLimits | undefined {
    let limits = this.#known.get(scope);
    if (limits === undefined) {
      const row = this.#get.get(scope);
      limits = row ? { dailyUsd: row.daily_usd, monthlyUsd: row.monthly_usd } : null;
      this.#known.set(scope, limits);
    }
    return limits ?? undefined;
  }

  list(): Array<{ scope: BudgetScope } & BudgetLimits> {
    return this.#list.all().map((r) => ({ scope: r.scope, dailyUsd: r.daily_usd, monthlyUsd: r.monthly_usd }));
  }

  set(scope: BudgetScope, limits: BudgetLimits, at: number): void {
    this.#upsert.run(scope, limits.dailyUsd, limits.monthlyUsd, at);
    this.#known.delete(scope);
  }

  remove(scope: BudgetScope): void {
    this.#remove.run(scope);
    this.#known.delete(scope);
  }

  /** Records that a chat is told about a reached budget for a period; false when it was told already. */
  noticeOnce(chatId: string, period: string, at: number): boolean {
    return this.#notice.run(chatId, period, at).changes > 0;
  }
}

// Spend limits: one per group and one over all groups, per calendar day and month in pincer's time zone.
// When one is reached no agent starts for the group; the chat is told once per period and limit; what it
// sent is kept and answered when the budget allows again (raised by the main group, or a new day/month).
// Spend is what the model proxy metered from the endpoint's answers, for every call a sandbox made; the
// proxy also refuses a group's calls once a limit is reached, whoever in the sandbox makes them.
import type { Logger } from '../log.js';
import { budgetCostUsd, callCostUsd, type MeteredCall } from '../proxy/model-metering.js';
import type { ModelMeter } from '../proxy/model-proxy.js';
import { wallAt, wallToInstant } from '../scheduler/schedule.js';
import { type BudgetLimits, GLOBAL_SCOPE, type Store } from '../store/index.js';

export interface SpendView extends BudgetLimits {
  spentTodayUsd: number;
  spentMonthUsd: number;
}

export type BudgetVerdict =
  | { ok: true }
  | { ok: false; scope: 'group' | 'global'; period: 'day' | 'month'; limitUsd: number; spentUsd: number };

export interface BudgetDeps {
  store: Store;
  timezone: string;
  /** The global budget when none is stored (PINCER_BUDGET_DAILY_USD / _MONTHLY_USD). */
  defaults: BudgetLimits;
  log: Logger;
  onOutbox(): void;
  now?: () => number;
}

const NO_LIMITS: BudgetLimits = { dailyUsd: null, monthlyUsd: null };

export const usd = (amount: number): string => `$${amount.toFixed(2)}`;

export class Budgets {
  readonly #d: BudgetDeps;
  readonly #now: () => number;

  constructor(deps: BudgetDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** The limits in force: a group's own (none by default), or the global one. */
  limits(scope: string): BudgetLimits {
    const stored = this.#d.store.budgets.get(scope);
    if (scope === GLOBAL_SCOPE) return stored ?? this.#d.defaults;
    return stored ?? NO_LIMITS;
  }

  /** Limits and what was spent today and this month, for a group's chat id or everything. */
  view(chatId?: string): SpendView {
    const now = this.#now();
    return {
      ...this.limits(chatId ?? GLOBAL_SCOPE),
      spentTodayUsd: this.#spentSince(startOfDay(now, this.#d.timezone), chatId),
      spentMonthUsd: this.#spentSince(startOfMonth(now, this.#d.timezone), chatId),
    };
  }

  /** Whether an agent may start for this chat now. */
  check(chatId: string): BudgetVerdict {
    for (const scope of ['group', 'global'] as const) {
      // Runs for every engaged message: without a limit there is no spend to add up.
      const limits = this.limits(scope === 'group' ? chatId : GLOBAL_SCOPE);
      if (limits.dailyUsd === null && limits.monthlyUsd === null) continue;
      const spend = this.view(scope === 'group' ? chatId : undefined);
      if (spend.dailyUsd !== null && spend.spentTodayUsd >= spend.dailyUsd)
        return { ok: false, scope, period: 'day', limitUsd: spend.dailyUsd, spentUsd: spend.spentTodayUsd };
      if (spend.monthlyUsd !== null && spend.spentMonthUsd >= spend.monthlyUsd)
        return { ok: false, scope, period: 'month', limitUsd: spend.monthlyUsd, spentUsd: spend.spentMonthUsd };
    }
    return { ok: true };
  }

  /**
   * The meter of a sandbox of this chat's group, on `provider`: its model calls are admitted against, and counted
   * in, the budgets. A call whose model has no known price counts at the dearest list rates, never as free.
   */
  meterFor(chatId: string, provider: string): ModelMeter {
    return {
      admit: () => {
        const verdict = this.check(chatId);
        return verdict.ok
          ? verdict
          : { ok: false, message: `pincer: ${describeVerdict(verdict)}; no model call goes out until it allows again` };
      },
      record: (call: MeteredCall) =>
        this.#d.store.modelUsage.record({
          chatId,
          provider,
          model: call.model,
          inputTokens: call.usage.input,
          outputTokens: call.usage.output,
          cacheWriteTokens: call.usage.cacheWrite5m + call.usage.cacheWrite1h,
          cacheReadTokens: call.usage.cacheRead,
          webSearches: call.usage.webSearches,
          costUsd: callCostUsd(call),
          budgetUsd: budgetCostUsd(call),
          at: this.#now(),
        }),
    };
  }

  /**
   * A message (or a scheduled run, seq null) gets no agent because of a budget: the trace says why, and the
   * chat is told, once per period and limit (a raised limit that is reached again is news).
   */
  /** `seqs`: the messages that wait (each one's trace says why); none for a scheduled run of its own. */
  refuse(chatId: string, seqs: readonly number[], verdict: Exclude<BudgetVerdict, { ok: true }>): void {
    const { store } = this.#d;
    const now = this.#now();
    const detail = describeVerdict(verdict);
    for (const messageSeq of seqs.length > 0 ? seqs : [null])
      store.events.record({ messageSeq, chatId, stage: 'over_budget', detail, at: now });
    const seq = seqs.at(-1) ?? null;
    const start = verdict.period === 'day' ? startOfDay(now, this.#d.timezone) : startOfMonth(now, this.#d.timezone);
    const period = `${verdict.scope}:${verdict.period}:${start}:${verdict.limitUsd}`;
    if (!store.budgets.noticeOnce(chatId, period, now)) return;
    const until = verdict.period === 'day' ? 'tomorrow' : 'next month';
    const notice =
      `⚠️ ${detail[0]?.toUpperCase()}${detail.slice(1)}, so I am not starting until ${until}, or until the main group raises it. ` +
      'Your messages are kept and will be answered then.';
    store.outbox.add(chatId, notice, seq, now);
    this.#d.log.warn({ chatId, ...verdict }, 'budget reached: no agent starts');
    this.#d.onOutbox();
  }

  #spentSince(at: number, chatId?: string): number {
    return this.#d.store.modelUsage.spentSince(at, chatId);
  }
}

/** "this group's daily budget is reached: $3.00 of $2.00" */
function describeVerdict(verdict: Exclude<BudgetVerdict, { ok: true }>): string {
  const what = `${verdict.scope === 'group' ? "this group's" : 'the overall'} ${verdict.period === 'day' ? 'daily' : 'monthly'} budget`;
  return `${what} is reached: ${usd(verdict.spentUsd)} of ${usd(verdict.limitUsd)}`;
}

const DAY_MS = 24 * 3600_000;

/** The instant the calendar day of `at` began in the zone (local midnight, or when a DST gap ended). */
export function startOfDay(at: number, timezone: string): number {
  const wall = wallAt(timezone, at);
  return wallToInstant(timezone, wall - (wall % DAY_MS));
}

/** The instant the calendar month of `at` began in the zone. */
export function startOfMonth(at: number, timezone: string): number {
  const wall = new Date(wallAt(timezone, at));
  return wallToInstant(timezone, Date.UTC(wall.getUTCFullYear(), wall.getUTCMonth(), 1));
}

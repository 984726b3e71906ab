// Keeps a sandbox that floods its egress proxy from turning every refused connection into a row of the
// store: per interval, a small burst of refusals is recorded one by one, the rest is only counted in memory
// and recorded as one summary at the interval's end. Allowed connections never pass through here.

import type { EgressRecord } from './egress-record.js';

export interface RefusalSummaryLimits {
  /** Refusals recorded one by one in each interval. */
  burst: number;
  /** Length of an interval; refusals beyond the burst are summarized once per interval. */
  intervalMs: number;
}

export const DEFAULT_REFUSAL_LIMITS: RefusalSummaryLimits = { burst: 20, intervalMs: 10_000 };

/** Destinations named one by one in a summary; the others are only counted (an attacker picks how many there are). */
const MAX_NAMED_DESTINATIONS = 5;
/** Destinations counted separately in memory; beyond, refusals go to "other destinations". */
const MAX_TRACKED_DESTINATIONS = 64;

interface Tally {
  first: EgressRecord;
  count: number;
}

export class RefusalSummarizer {
  readonly #limits: RefusalSummaryLimits;
  readonly #emit: (record: EgressRecord) => void;
  #intervalStart = 0;
  #recordedInInterval = 0;
  readonly #tallies = new Map<string, Tally>();
  #untracked = 0;
  #firstStart = 0;
  #lastEnd = 0;
  #timer: NodeJS.Timeout | undefined;

  constructor(limits: RefusalSummaryLimits, emit: (record: EgressRecord) => void) {
    this.#limits = limits;
    this.#emit = emit;
  }

  /** A refused connection: recorded now while the burst lasts, otherwise counted until the interval ends. */
  refused(record: EgressRecord, now = Date.now()): void {
    if (now - this.#intervalStart >= this.#limits.intervalMs) {
      this.#intervalStart = now;
      this.#recordedInInterval = 0;
    }
    if (this.#recordedInInterval < this.#limits.burst) {
      this.#recordedInInterval += 1;
      this.#emit(record);
      return;
    }
    this.#count(record);
    if (this.#timer === undefined) {
      this.#timer = setTimeout(() => this.flush(), Math.max(0, this.#intervalStart + this.#limits.intervalMs - now));
      this.#timer.unref();
    }
  }

  /** Records what has been counted so far as one summary (at the interval's end, and when the proxy closes). */
  flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    const tallies = [...this.#tallies.values()].sort((a, b) => b.count - a.count);
    const total = tallies.reduce((n, t) => n + t.count, this.#untracked);
    const top = tallies[0];
    if (top === undefined) return;
    const named = tallies.slice(0, MAX_NAMED_DESTINATIONS).map((t) => `${thousands(t.count)} × ${describe(t.first)}`);
    const others = tallies.slice(MAX_NAMED_DESTINATIONS).reduce((n, t) => n + t.count, this.#untracked);
    if (others > 0) named.push(`${thousands(others)} to other destinations`);
    const seconds = Math.max(1, Math.round((this.#lastEnd - this.#firstStart) / 1000));
    const reason = `${thousands(total)} more refused connections in ${seconds} s, summarized here instead of one row each: ${named.join('; ')}`;
    this.#tallies.clear();
    this.#untracked = 0;
    this.#emit({
      host: top.first.host,
      port: top.first.port,
      method: top.first.method,
      allowed: false,
      reason,
      bytesUp: 0,
      bytesDown: 0,
      startedAt: this.#firstStart,
      durationMs: this.#lastEnd - this.#firstStart,
      count: total,
    });
  }

  #count(record: EgressRecord): void {
    const end = record.startedAt + record.durationMs;
    if (this.#tallies.size === 0 && this.#untracked === 0) {
      this.#firstStart = record.startedAt;
      this.#lastEnd = end;
    }
    this.#firstStart = Math.min(this.#firstStart, record.startedAt);
    this.#lastEnd = Math.max(this.#lastEnd, end);
    const key = `${record.method} ${record.host}:${record.port} ${record.reason ?? ''}`;
    const tally = this.#tallies.get(key);
    if (tally !== undefined) tally.count += record.count;
    else if (this.#tallies.size < MAX_TRACKED_DESTINATIONS) this.#tallies.set(key, { first: record, count: record.count });
    else this.#untracked += record.count;
  }
}

function describe(record: EgressRecord): string {
  const target = record.host === '' ? '(no target)' : `${record.host}:${record.port}`;
  const what = record.method === '' ? target : `${record.method} ${target}`;
  return `${what}${record.reason === undefined ? '' : ` (${record.reason})`}`;
}

function thousands(n: number): string {
  return n.toLocaleString('en-US');
}

// What the suite runs and how much: `BENCH_QUICK=1` is a smoke run with few iterations; single sizes can be
// overridden by their own variable (e.g. `BENCH_N=30`); `BENCH_PINCER_ENV` adds configuration to every pincer
// the suite starts (e.g. `BENCH_PINCER_ENV="PINCER_SOME_FLAG=1"` to measure a feature switched on).

export const QUICK = /^(1|true|yes)$/i.test(process.env.BENCH_QUICK ?? '');

/** A size: its variable when set to a positive integer, else the full or quick default. */
function size(variable: string, full: number, quick: number): number {
  const raw = Number.parseInt(process.env[variable] ?? '', 10);
  return Number.isFinite(raw) && raw > 0 ? raw : QUICK ? quick : full;
}

export const SIZES = {
  /** Cold messages into a known group whose session has ended (measurements 1–3). */
  coldResumed: size('BENCH_N', 12, 3),
  /** Cold first messages of new chats. */
  coldFirst: size('BENCH_N_FIRST', 6, 2),
  /** Warm follow-ups into a live session. */
  warm: size('BENCH_N', 12, 3),
  /** Replies sent through the Telegram fake. */
  telegram: size('BENCH_N', 12, 3),
  /** Pause after a session closed before the next cold message: time for anything pincer does in the background. */
  settleMs: size('BENCH_SETTLE_MS', 1500, 500),
  /** Groups the ingest measurement spreads its messages over. */
  ingestGroups: size('BENCH_GROUPS', 1000, 1000),
  /** Messages ingested in-process. */
  ingestMessages: size('BENCH_INGEST', 20_000, 3_000),
  /** Messages posted to the HTTP API (after one per group to join them). */
  httpMessages: size('BENCH_HTTP', 5_000, 500),
  /** Concurrent HTTP clients. */
  httpConcurrency: size('BENCH_HTTP_CONCURRENCY', 16, 8),
  /** Scheduled tasks per case. */
  tasks: size('BENCH_TASKS', 1000, 200),
  /** The spread case's window. */
  spreadSec: size('BENCH_SPREAD_SEC', 60, 5),
  /** Live sessions for the memory measurement. */
  liveSessions: size('BENCH_SESSIONS', 3, 3),
  /** Messages in the polling baseline (each measured by both dispatchers). */
  baselineMessages: size('BENCH_BASELINE_N', 40, 8),
};

/** Extra configuration for every pincer under test, from `BENCH_PINCER_ENV="K=V K2=V2"`. */
export function pincerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const pair of (process.env.BENCH_PINCER_ENV ?? '').split(/\s+/)) {
    const at = pair.indexOf('=');
    if (at > 0) env[pair.slice(0, at)] = pair.slice(at + 1);
  }
  return env;
}

/** Which measurements run: `BENCH_ONLY=ingest,scheduler` (ids as printed), default all. */
export function selected(id: string): boolean {
  const only = (process.env.BENCH_ONLY ?? '').split(',').filter(Boolean);
  return only.length === 0 || only.includes(id);
}

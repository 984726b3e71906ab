// One finding of `pincer doctor`, and how the findings are shown to a person or a script.

/** `error` keeps pincer (or a part of it, such as one channel) from working; `warn` is worth knowing. */
export type CheckStatus = 'ok' | 'warn' | 'error';

export interface Check {
  name: string;
  status: CheckStatus;
  detail: string;
  /** What to do about it, one step a line: only for `warn` and `error`. */
  fix?: string[];
  /** How long the real action took (a sandbox start, a model request, a channel call). */
  ms?: number;
}

export const ok = (name: string, detail: string, ms?: number): Check => ({
  name,
  status: 'ok',
  detail,
  ...(ms === undefined ? {} : { ms }),
});
export const warn = (name: string, detail: string, ...fix: string[]): Check => ({
  name,
  status: 'warn',
  detail,
  ...(fix.length ? { fix } : {}),
});
export const fail = (name: string, detail: string, ...fix: string[]): Check => ({
  name,
  status: 'error',
  detail,
  ...(fix.length ? { fix } : {}),
});

const MARK: Record<CheckStatus, string> = { ok: '✔', warn: '⚠', error: '✖' };

/** `✔ name: detail`, and under a problem its `  fix: …` lines. */
export function renderText(checks: Check[]): string {
  const lines: string[] = [];
  for (const c of checks) {
    lines.push(`${MARK[c.status]} ${c.name}: ${c.detail}`);
    for (const f of c.fix ?? []) lines.push(`  fix: ${f}`);
  }
  const errors = checks.filter((c) => c.status === 'error').length;
  const warnings = checks.filter((c) => c.status === 'warn').length;
  lines.push('');
  if (errors) lines.push(`${errors} problem(s) keep pincer (or a channel) from working${warnings ? `; ${warnings} warning(s)` : ''}.`);
  else lines.push(warnings ? `pincer can run; ${warnings} warning(s).` : 'All good.');
  return `${lines.join('\n')}\n`;
}

export function renderJson(checks: Check[]): string {
  return `${JSON.stringify({ ok: exitCode(checks) === 0, checks }, null, 2)}\n`;
}

export function exitCode(checks: Check[]): number {
  return checks.some((c) => c.status === 'error') ? 1 : 0;
}

/** An error's message on one line, bounded: what a failed call said, never a wall of text. */
export function oneLine(err: unknown, max = 240): string {
  const e = err as { message?: unknown; cause?: { message?: unknown; code?: unknown } };
  let text = typeof e?.message === 'string' ? e.message : String(err);
  // fetch() says only "fetch failed"; the reason is in its cause.
  const cause = e?.cause;
  if (cause && typeof cause.message === 'string' && cause.message && !text.includes(cause.message)) text = `${text}: ${cause.message}`;
  else if (cause && typeof cause.code === 'string' && !text.includes(cause.code)) text = `${text}: ${cause.code}`;
  text = text.replace(/\s+/g, ' ').trim();
  return text.length > max ? `${text.slice(0, max - 1)}…` : text;
}

/** Milliseconds since `start` (from performance.now()), rounded. */
export function since(start: number): number {
  return Math.round(performance.now() - start);
}

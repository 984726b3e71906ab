// Order statistics of latency samples.

function sorted(values: number[]): number[] {
  return values.filter((v) => !Number.isNaN(v)).sort((a, b) => a - b);
}

/** The median (mean of the two middle values for an even count); NaN without values. */
export function median(values: number[]): number {
  const s = sorted(values);
  if (s.length === 0) return Number.NaN;
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

/** Nearest-rank percentile (q in 0..1): the smallest sample with at least q of the samples at or below it. */
export function percentile(values: number[], q: number): number {
  const s = sorted(values);
  if (s.length === 0) return Number.NaN;
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(q * s.length) - 1))] as number;
}

export const p95 = (values: number[]): number => percentile(values, 0.95);

export function max(values: number[]): number {
  const s = sorted(values);
  return s.length === 0 ? Number.NaN : (s[s.length - 1] as number);
}

/** Samples that are numbers (a stage missing from a trace gives NaN, which is left out and counted apart). */
export const present = (values: number[]): number[] => values.filter((v) => !Number.isNaN(v));

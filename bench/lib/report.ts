// Results of the measurements: printed as each one finishes, summed up at the end, and rendered as Markdown.
import { max, median, p95, present } from './stats.js';

export type Unit = 'ms' | 'msg/s' | 'MB' | '×' | 'tokens' | 'USD';
export type Stat = 'median' | 'p95' | 'max' | 'value';

/** A target of the issue: which statistic is judged, against what. */
export interface Target {
  stat: Stat;
  op: '<=' | '>=';
  limit: number;
}

/** One line of a table: a distribution of samples, or a single figure (a rate, a size). */
export interface Row {
  metric: string;
  unit: Unit;
  samples?: number[];
  value?: number;
  /** For a single figure: how many things it counts (messages, processes). */
  n?: number;
  target?: Target;
}

export interface Table {
  title: string;
  rows: Row[];
}

export interface Section {
  /** Short id, also for `BENCH_ONLY`. */
  id: string;
  /** The item of the issue this answers. */
  item: number;
  title: string;
  rows: Row[];
  /** Further tables without targets (where the time goes). */
  tables: Table[];
  notes: string[];
  /** Why it did not run here. */
  skipped?: string;
  /** Why it failed. */
  failed?: string;
}

export function section(id: string, item: number, title: string): Section {
  return { id, item, title, rows: [], tables: [], notes: [] };
}

export type Verdict = 'MET' | 'NOT MET' | 'NO DATA';

export function statOf(row: Row, stat: Stat): number {
  if (stat === 'value') return row.value ?? Number.NaN;
  const s = row.samples ?? [];
  return stat === 'median' ? median(s) : stat === 'p95' ? p95(s) : max(s);
}

export function verdict(row: Row): Verdict | undefined {
  const t = row.target;
  if (!t) return undefined;
  const v = statOf(row, t.stat);
  if (Number.isNaN(v)) return 'NO DATA';
  return (t.op === '<=' ? v <= t.limit : v >= t.limit) ? 'MET' : 'NOT MET';
}

export function fmt(v: number, unit: Unit): string {
  if (Number.isNaN(v)) return 'n/a';
  if (unit === 'msg/s') return `${Math.round(v).toLocaleString('en-US')} msg/s`;
  if (unit === '×') return `${v.toFixed(1)}×`;
  if (unit === 'tokens') return `≈${Math.round(v).toLocaleString('en-US')} tokens`;
  if (unit === 'USD') return `$${v.toFixed(4)}`;
  // Sub-millisecond steps (one ingest call) need more digits than whole-ms event gaps.
  return `${v.toFixed(unit === 'ms' && Math.abs(v) < 1 ? 2 : 1)} ${unit}`;
}

export function describeTarget(t: Target, unit: Unit): string {
  const what = t.stat === 'value' ? '' : `${t.stat} `;
  return `${what}${t.op} ${fmt(t.limit, unit)}`;
}

interface Cells {
  metric: string;
  n: string;
  median: string;
  p95: string;
  max: string;
  value: string;
  target: string;
  result: string;
}

function cells(row: Row): Cells {
  const dist = row.samples !== undefined;
  const n = dist ? present(row.samples ?? []).length : row.n;
  const missing = dist ? (row.samples ?? []).length - present(row.samples ?? []).length : 0;
  const s = (stat: Stat) => fmt(statOf(row, stat), row.unit);
  return {
    metric: row.metric,
    n: n === undefined ? '' : `${n}${missing > 0 ? ` (+${missing} n/a)` : ''}`,
    median: dist ? s('median') : '',
    p95: dist ? s('p95') : '',
    max: dist ? s('max') : '',
    value: dist ? '' : s('value'),
    target: row.target ? describeTarget(row.target, row.unit) : '',
    result: verdict(row) ?? '',
  };
}

const COLUMNS: Array<keyof Cells> = ['metric', 'n', 'median', 'p95', 'max', 'value', 'target', 'result'];

/** Only the columns some row fills. */
function usedColumns(rows: Cells[]): Array<keyof Cells> {
  return COLUMNS.filter((c) => c === 'metric' || rows.some((r) => r[c] !== ''));
}

export function textTable(rows: Row[]): string {
  const body = rows.map(cells);
  const cols = usedColumns(body);
  const widths = cols.map((c) => Math.max(c.length, ...body.map((b) => b[c].length)));
  const right = (c: keyof Cells) => c === 'n' || c === 'median' || c === 'p95' || c === 'max' || c === 'value';
  const line = (get: (c: keyof Cells) => string) =>
    cols
      .map((c, i) => (right(c) ? get(c).padStart(widths[i] as number) : get(c).padEnd(widths[i] as number)))
      .join('  ')
      .trimEnd();
  return [line((c) => c), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map((b) => line((c) => b[c]))].join('\n');
}

export function markdownTable(rows: Row[]): string {
  // Markdown drops leading spaces: a sub-step is marked instead of indented.
  const body = rows.map(cells).map((c) => ({ ...c, metric: c.metric.replace(/^\s+/, '↳ ') }));
  const cols = usedColumns(body);
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  const right = (c: keyof Cells) => c === 'n' || c === 'median' || c === 'p95' || c === 'max' || c === 'value';
  return [
    `| ${cols.join(' | ')} |`,
    `|${cols.map((c) => (right(c) ? '---:' : '---')).join('|')}|`,
    ...body.map((b) => `| ${cols.map((c) => esc(c === 'result' && b[c] ? `**${b[c]}**` : b[c])).join(' | ')} |`),
  ].join('\n');
}

export function printSection(s: Section): void {
  const out: string[] = [`\n== ${s.item}. ${s.title} [${s.id}]`];
  if (s.skipped) out.push(`SKIPPED: ${s.skipped}`);
  if (s.failed) out.push(`FAILED: ${s.failed}`);
  if (s.rows.length > 0) out.push(textTable(s.rows));
  for (const t of s.tables) out.push('', `${t.title}:`, textTable(t.rows));
  for (const n of s.notes) out.push(`note: ${n}`);
  process.stdout.write(`${out.join('\n')}\n`);
}

/** Every row with a target, across sections. */
export function targetRows(sections: Section[]): Array<{ section: Section; row: Row }> {
  return sections.flatMap((section) => section.rows.filter((row) => row.target).map((row) => ({ section, row })));
}

export function summaryLine(row: Row): string {
  const t = row.target as Target;
  return `${fmt(statOf(row, t.stat), row.unit)} (target ${describeTarget(t, row.unit)})`;
}

// What the administration commands share: reaching pincer, one-line errors, tables and human times.
import { ConfigError, loadConfig } from '../config.js';
import { ApiClient } from './api-client.js';
import { terminalText } from './terminal-text.js';

/** Runs one command against the running pincer; any failure is one line on stderr and exit code 1. */
export async function withPincer(run: (client: ApiClient) => Promise<void>): Promise<number> {
  let client: ApiClient;
  try {
    const config = loadConfig(process.env, process.cwd());
    try {
      client = new ApiClient(config);
    } catch {
      process.stderr.write(
        `no API token: PINCER_TOKEN is not set and ${config.home}/token does not exist (start pincer first: npm start)\n`,
      );
      return 1;
    }
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`${err.message}\n`);
      return 1;
    }
    throw err;
  }
  try {
    await run(client);
    return 0;
  } catch (err) {
    process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
}

/** A line for a person; what it quotes from chats and sandboxes cannot reach the terminal as control sequences. */
export function printLine(line: string): void {
  process.stdout.write(`${terminalText(line)}\n`);
}

/** `--json`: the API's answer as it came, for scripts. */
export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** Left-aligned columns two spaces apart; the last column is not padded. */
export function printTable(headers: string[], rows: string[][]): void {
  rows = rows.map((r) => r.map(terminalText));
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const render = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join('  ')
      .trimEnd();
  process.stdout.write(`${terminalText([headers, ...rows].map(render).join('\n'))}\n`);
}

/** One line, at most `max` characters: table cells must not wrap or break the layout. */
export function truncate(text: string, max: number): string {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, max - 1)}…`;
}

/** `2025-06-01 09:00` in the given time zone (the shell's when none); `sv-SE` happens to format like ISO. */
export function localTime(at: number | string, timeZone?: string): string {
  return new Intl.DateTimeFormat('sv-SE', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
    hour: '2-digit',
    minute: '2-digit',
    hour12: false,
  }).format(new Date(at));
}

/** `850 ms`, `12.3 s`, `4 min 5 s`, `2 h 3 min`. */
export function duration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const totalSeconds = Math.round(s);
  if (totalSeconds < 3600) return `${Math.floor(totalSeconds / 60)} min ${totalSeconds % 60} s`;
  const totalMinutes = Math.round(totalSeconds / 60);
  if (totalMinutes < 24 * 60) return `${Math.floor(totalMinutes / 60)} h ${totalMinutes % 60} min`;
  return `${Math.floor(totalMinutes / 1440)} d ${Math.floor((totalMinutes % 1440) / 60)} h`;
}

/** `--senders a,b`: ids separated by commas; blanks dropped. */
export function commaList(value: string): string[] {
  return value
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

// `pincer logs`: the service's logs (the journal, or launchd's log file), one readable line per entry.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { Command, InvalidArgumentError } from 'commander';
import { currentHost, type ServiceHost } from '../service-install/host.js';
import { currentInstallation } from '../service-install/installation.js';
import { installedTarget, resolveTarget, type StartedBy } from '../service-install/target.js';
import { formatLogLine, passJsonLine } from './log-format.js';

export interface LogsOptions {
  follow: boolean;
  lines: number;
  /** A log file to read instead of the service's; `-` is standard input. */
  file?: string;
  system: boolean;
}

export type LogSource =
  | { kind: 'command'; argv: string[] }
  | { kind: 'stdin' }
  /** No logs to read here: why, and how to see them anyway. */
  | { kind: 'none'; message: string };

const FOREGROUND =
  'A foreground `npm start` writes its logs to its terminal; to read them this way, pipe them in: `npm start | npx pincer logs --file -`, ' +
  'or keep them in a file (`npm start > pincer.log`) and run `npx pincer logs -f --file pincer.log`.';

function tail(file: string, options: LogsOptions): string[] {
  // -F follows the file by name, so a log rotated or recreated is followed on.
  return ['tail', '-n', String(options.lines), ...(options.follow ? ['-F'] : []), file];
}

/** Where this host keeps pincer's logs: the installed service's journal or log file, or the file asked for. */
export function logSource(host: ServiceHost, startedBy: StartedBy, options: LogsOptions): LogSource {
  if (options.file === '-') return { kind: 'stdin' };
  if (options.file !== undefined) return { kind: 'command', argv: tail(options.file, options) };
  const resolved = resolveTarget(host, options.system, startedBy, 'logs');
  if (!resolved.ok) return { kind: 'none', message: `${resolved.reason}\n${FOREGROUND}` };
  if (resolved.managerMissing) return { kind: 'none', message: `no pincer service runs here: ${resolved.managerMissing}\n${FOREGROUND}` };
  const target = installedTarget(host, resolved.target);
  if (!target) return { kind: 'none', message: `no pincer service is installed (pincer service install sets one up).\n${FOREGROUND}` };
  if (target.manager === 'launchd') return { kind: 'command', argv: tail(target.logFile, options) };
  return {
    kind: 'command',
    // `-o cat`: the message alone, which is pino's JSON line; its own time is more precise than the journal's.
    argv: [...target.journalctl, '-o', 'cat', '--no-pager', '-n', String(options.lines), ...(options.follow ? ['-f'] : [])],
  };
}

/** Formats each line of `input` onto stdout until it ends. */
async function pump(input: Readable, json: boolean): Promise<void> {
  const color = process.stdout.isTTY === true && !process.env.NO_COLOR;
  const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
  for await (const line of lines) {
    process.stdout.write(`${json ? passJsonLine(line) : formatLogLine(line, { color })}\n`);
  }
}

function runSource(source: LogSource, json: boolean): Promise<number> {
  // `pincer logs | head`: a closed pipe is the reader being done, not an error.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  if (source.kind === 'none') {
    process.stderr.write(`${source.message}\n`);
    return Promise.resolve(1);
  }
  if (source.kind === 'stdin') {
    // Ctrl-C in `npm start | pincer logs --file -` reaches both: keep reading so pincer's last lines still show.
    // Typed input (a terminal) has no writer that stops, so there Ctrl-C ends it as usual.
    if (!process.stdin.isTTY) process.on('SIGINT', () => {});
    return pump(process.stdin, json).then(() => 0);
  }
  const [file, ...args] = source.argv;
  return new Promise((resolve) => {
    const child = spawn(file ?? '', args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let failed = false;
    child.on('error', (err: NodeJS.ErrnoException) => {
      failed = true;
      process.stderr.write(
        err.code === 'ENOENT' ? `${file} is not installed here, so the logs cannot be read\n` : `${file}: ${err.message}\n`,
      );
      resolve(1);
    });
    const pumped = pump(child.stdout, json);
    child.on('close', (code) => {
      if (!failed) void pumped.then(() => resolve(code ?? 0));
    });
  });
}

function count(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('a whole number of lines, 0 or more');
  return n;
}

export function logsCommand(): Command {
  return new Command('logs')
    .description("the service's logs, one readable line per entry: time, level, [part], message, fields")
    .option('-f, --follow', 'keep printing new entries as they come')
    .option('-n, --lines <n>', 'how many of the newest entries to print first', count, 100)
    .option('--json', "pino's JSON lines as they are (control characters escaped), for jq and scripts")
    .option('--file <path>', 'read this log file instead of the service\'s ("-": standard input)')
    .option('--system', 'the system unit (launchd daemon) first')
    .action(async (flags: { follow?: boolean; lines: number; json?: boolean; file?: string; system?: boolean }) => {
      const host = currentHost();
      const installation = currentInstallation(host.home);
      const source = logSource(
        host,
        { cli: installation.argv.slice(0, 2), workingDirectory: installation.workingDirectory },
        { follow: !!flags.follow, lines: flags.lines, system: !!flags.system, ...(flags.file !== undefined ? { file: flags.file } : {}) },
      );
      process.exitCode = await runSource(source, !!flags.json);
    });
}

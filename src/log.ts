import { type DestinationStream, type Logger, pino } from 'pino';
import { formatLogLine } from './cli/log-format.js';

export type { Logger };

/** json: one pino JSON line per entry (for journals, files, `pincer logs`); text: the lines `pincer logs` shows. */
export type LogFormat = 'json' | 'text';

/** `auto` is text for a person at a terminal and JSON for everything else. */
export function resolveLogFormat(setting: 'auto' | LogFormat, stdoutIsTerminal: boolean): LogFormat {
  if (setting !== 'auto') return setting;
  return stdoutIsTerminal ? 'text' : 'json';
}

export function createLogger(level: string, format: LogFormat = 'json'): Logger {
  const options = { level, base: { app: 'pincer' } };
  return format === 'json' ? pino(options) : pino(options, readableLines(process.stdout.isTTY === true && !process.env.NO_COLOR));
}

/** pino writes each entry as one JSON line; this destination writes it to stdout as `pincer logs` would show it. */
function readableLines(color: boolean): DestinationStream {
  return {
    write(line: string) {
      process.stdout.write(`${formatLogLine(line.trimEnd(), { color })}\n`);
    },
  };
}

// What `pincer service status` reports, whichever service manager it came from, and how it is printed.
import { constants } from 'node:os';

export interface ServiceStatus {
  /** `systemd user unit`, `launchd agent`… */
  describe: string;
  file: string;
  /** `yes`, `no`, with what that means; undefined when the manager could not be asked. */
  enabled?: string;
  running: boolean;
  /** The manager's own words for the state: `active (running)`, `activating (auto-restart)`, `not running`. */
  state?: string;
  pid?: number;
  since?: string;
  restarts?: number;
  lastExit?: string;
  workingDirectory?: string;
  /** How to read its logs. */
  logs: string;
  /** Problems and advice, each with what to do. */
  notes: string[];
}

const SIGNAL_NAMES = new Map(Object.entries(constants.signals).map(([name, number]) => [number, name]));

export function signalName(signal: number): string {
  return SIGNAL_NAMES.get(signal) ?? `signal ${signal}`;
}

/** Pure: the status as aligned lines. */
export function formatStatus(status: ServiceStatus): string[] {
  const rows: Array<[string, string | undefined]> = [
    ['file', status.file],
    ['enabled', status.enabled],
    ['running', `${status.running ? 'yes' : 'no'}${status.state ? ` (${status.state})` : ''}${status.pid ? `, pid ${status.pid}` : ''}`],
    ['since', status.since],
    ['restarts', status.restarts !== undefined ? String(status.restarts) : undefined],
    ['last exit', status.lastExit],
    ['directory', status.workingDirectory],
    ['logs', status.logs],
  ];
  return [
    `pincer ${status.describe}`,
    ...rows.filter((row): row is [string, string] => row[1] !== undefined && row[1] !== '').map(([k, v]) => `  ${k.padEnd(10)} ${v}`),
    ...status.notes.map((n) => `note: ${n}`),
  ];
}

/** Like LSB init scripts: 0 running, 3 not running (or not installed). */
export function statusExitCode(status: ServiceStatus | undefined): number {
  return status?.running ? 0 : 3;
}

// The machine the numbers were taken on.
import { execFileSync } from 'node:child_process';
import { cpus, loadavg, release, totalmem, type } from 'node:os';

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  kernel: string;
  node: string;
  /** The sandbox runtime pincer picked, with its version where known. */
  sandbox: string;
  date: string;
  /** 1-minute load average at the start and at the end of the run: other work on the host skews every figure. */
  load: { start: number; end: number };
}

/** The 1-minute load average now. */
export const loadNow = (): number => loadavg()[0] ?? Number.NaN;

function version(command: string, args: string[]): string | undefined {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 5_000 }).trim();
  } catch {
    return undefined;
  }
}

/** `runtime` is the name pincer chose (or why there is none). */
export function describeMachine(runtime: string, loadAtStart: number): Machine {
  const cpu = cpus();
  const sandbox = runtime === 'bwrap' ? `bwrap (${version('bwrap', ['--version']) ?? 'version unknown'})` : runtime;
  return {
    cpu: cpu[0]?.model.trim() ?? 'unknown',
    cores: cpu.length,
    memoryGiB: totalmem() / 2 ** 30,
    kernel: `${type()} ${release()}`,
    node: `${process.version} (${process.platform} ${process.arch})`,
    sandbox,
    date: new Date().toISOString(),
    load: { start: loadAtStart, end: loadNow() },
  };
}

export function machineLines(m: Machine): Array<[string, string]> {
  return [
    ['CPU', `${m.cpu} × ${m.cores} (os.cpus())`],
    ['RAM', `${m.memoryGiB.toFixed(1)} GiB`],
    ['kernel', m.kernel],
    ['Node.js', m.node],
    ['sandbox runtime', m.sandbox],
    ['date', m.date],
    [
      'load average (1 min)',
      `${m.load.start.toFixed(2)} before the run (other work on the host), ${m.load.end.toFixed(2)} at its end (the suite's own included); ${m.cores} cores`,
    ],
  ];
}

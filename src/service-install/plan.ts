// An install or uninstall as a list of steps: printed as they are for --dry-run, or carried out in order,
// stopping at the first failure with its fix. Planning is pure; only executePlan touches the machine.
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { type ServiceHost, shellQuote } from './host.js';

export type Step =
  | { kind: 'mkdir'; path: string }
  | { kind: 'write'; path: string; content: string; mode: number }
  | { kind: 'remove'; path: string }
  | {
      kind: 'run';
      argv: string[];
      /** A failure that means "nothing to do" (stopping what is not running): ignored. */
      mayFail?: boolean;
      /** Seconds-long races (launchd still tearing down the old job) are retried once after this. */
      retryAfterMs?: number;
      /** What to do when it fails, given its error output. */
      fix?: (stderr: string) => string;
    };

/** The steps as commands a person could run; files written are shown in full. */
export function describePlan(steps: readonly Step[]): string[] {
  const lines: string[] = [];
  for (const step of steps) {
    switch (step.kind) {
      case 'mkdir':
        lines.push(shellQuote(['mkdir', '-p', step.path]));
        break;
      case 'remove':
        lines.push(shellQuote(['rm', '-f', step.path]));
        break;
      case 'write':
        lines.push(`# write ${step.path} (mode ${step.mode.toString(8)}):`, ...step.content.trimEnd().split('\n'), `# end of ${step.path}`);
        break;
      case 'run':
        lines.push(`${shellQuote(step.argv)}${step.mayFail ? '   # may fail harmlessly' : ''}`);
        break;
    }
  }
  return lines;
}

export type PlanOutcome = { ok: true } | { ok: false; message: string };

function fileFailure(verb: string, path: string, err: unknown): PlanOutcome {
  const code = (err as NodeJS.ErrnoException).code;
  const why = err instanceof Error ? err.message : String(err);
  const fix = code === 'EACCES' || code === 'EPERM' ? ': permission denied. Fix: run it as root (sudo)' : `: ${why}`;
  return { ok: false, message: `cannot ${verb} ${path}${fix}` };
}

/** Carries the steps out in order; the first failure stops it and says what failed and how to fix it. */
export async function executePlan(steps: readonly Step[], host: ServiceHost): Promise<PlanOutcome> {
  for (const step of steps) {
    if (step.kind === 'mkdir') {
      try {
        mkdirSync(step.path, { recursive: true });
      } catch (err) {
        return fileFailure('create', step.path, err);
      }
    } else if (step.kind === 'write') {
      // Written beside and renamed over: the service manager never reads half a file.
      const temporary = `${step.path}.${process.pid}.tmp`;
      try {
        writeFileSync(temporary, step.content, { mode: step.mode });
        chmodSync(temporary, step.mode);
        renameSync(temporary, step.path);
      } catch (err) {
        rmSync(temporary, { force: true });
        return fileFailure('write', step.path, err);
      }
    } else if (step.kind === 'remove') {
      try {
        rmSync(step.path, { force: true });
      } catch (err) {
        return fileFailure('remove', step.path, err);
      }
    } else {
      let result = await host.run.run(step.argv);
      if (result.code !== 0 && step.retryAfterMs !== undefined) {
        await host.sleep(step.retryAfterMs);
        result = await host.run.run(step.argv);
      }
      if (result.code !== 0 && !step.mayFail) {
        const said = (result.stderr || result.stdout).trim() || `exit code ${result.code}`;
        const fix = step.fix ? `\nfix: ${step.fix(said)}` : '';
        return { ok: false, message: `\`${shellQuote(step.argv)}\` failed: ${said}${fix}` };
      }
    }
  }
  return { ok: true };
}

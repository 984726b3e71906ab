// pincer under launchd: the steps that install and remove its property list, and its state as launchctl prints it.
import { dirname } from 'node:path';
import type { ServiceHost } from './host.js';
import type { Installation } from './installation.js';
import { LAUNCHD_LABEL, launchdPlist } from './launchd-plist.js';
import type { Step } from './plan.js';
import type { ServiceStatus } from './status.js';
import type { LaunchdTarget } from './target.js';

function bootstrapFix(target: LaunchdTarget, user: string): (stderr: string) => string {
  return (stderr) => {
    if (target.scope === 'agent' && /domain does not support/i.test(stderr)) {
      return `a launchd agent runs in ${user}'s desktop session and there is none now (logged in over ssh?): log in to the Mac's desktop as ${user} and run this again, or install a daemon as root with --system`;
    }
    if (/input\/output error/i.test(stderr)) {
      return `launchd may still be stopping the previous pincer, or refuses the file: check it with \`plutil -lint ${target.file}\`, then run pincer service install again`;
    }
    return `see \`launchctl print ${target.service}\``;
  };
}

/** `replacing`: a job is already loaded from the file, so it is unloaded before the new file is loaded. */
export function launchdInstallSteps(target: LaunchdTarget, installation: Installation, replacing: boolean, user: string): Step[] {
  return [
    { kind: 'mkdir', path: dirname(target.file) },
    { kind: 'mkdir', path: dirname(target.logFile) },
    ...(replacing ? [{ kind: 'run' as const, argv: ['launchctl', 'bootout', target.service], mayFail: true }] : []),
    { kind: 'write', path: target.file, content: launchdPlist(installation, target.logFile), mode: 0o644 },
    // A job once `launchctl disable`d is refused by bootstrap until enabled again.
    { kind: 'run', argv: ['launchctl', 'enable', target.service] },
    {
      kind: 'run',
      argv: ['launchctl', 'bootstrap', target.domain, target.file],
      // bootout returns before the old job is gone; bootstrapping over it fails with error 5 for a moment.
      ...(replacing ? { retryAfterMs: 2000 } : {}),
      fix: bootstrapFix(target, user),
    },
  ];
}

export function launchdUninstallSteps(target: LaunchdTarget): Step[] {
  return [
    { kind: 'run', argv: ['launchctl', 'bootout', target.service], mayFail: true },
    { kind: 'remove', path: target.file },
  ];
}

/** The top-level `key = value` lines of `launchctl print` (nested blocks are indented deeper). */
export function parsePrint(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const match of text.matchAll(/^\t([a-z][a-z ]*?) = (.*)$/gm)) {
    const [, key, value] = match;
    if (key && value !== undefined && !values.has(key)) values.set(key, value.trim());
  }
  return values;
}

/** `launchctl print-disabled` lists `"label" => disabled|enabled` (older macOS: `=> true|false`, true meaning disabled). */
export function isDisabled(printDisabled: string): boolean {
  const line = printDisabled.split('\n').find((l) => l.includes(`"${LAUNCHD_LABEL}"`));
  return line !== undefined && /=>\s*(disabled|true)\s*$/.test(line);
}

export async function launchdStatus(target: LaunchdTarget, host: ServiceHost): Promise<ServiceStatus> {
  const logs = `pincer logs -f   (or tail -F ${target.logFile})`;
  const base = { describe: target.describe, file: target.file, logs };
  const printed = await host.run.run(['launchctl', 'print', target.service]);
  if (printed.code !== 0) {
    return {
      ...base,
      enabled: 'no (not loaded)',
      running: false,
      state: 'not loaded',
      notes: [`launchd has not loaded it: pincer service install loads it (or launchctl bootstrap ${target.domain} ${target.file})`],
    };
  }
  const print = parsePrint(printed.stdout);
  const disabled = await host.run.run(['launchctl', 'print-disabled', target.domain]);
  const pid = Number(print.get('pid'));
  const running = print.get('state') === 'running' && pid > 0;
  let since: string | undefined;
  if (running) {
    const started = await host.run.run(['ps', '-o', 'lstart=', '-p', String(pid)]);
    if (started.code === 0 && started.stdout.trim()) since = started.stdout.trim();
  }
  const exitCode = print.get('last exit code');
  const signal = print.get('last terminating signal');
  const runs = Number(print.get('runs'));
  return {
    ...base,
    enabled:
      disabled.code === 0 && isDisabled(disabled.stdout)
        ? `no: launchctl enable ${target.service}`
        : `yes (starts at ${target.scope === 'agent' ? 'login' : 'boot'})`,
    running,
    state: print.get('state') ?? 'unknown',
    ...(running ? { pid } : {}),
    since,
    ...(Number.isFinite(runs) && runs > 0 ? { restarts: runs - 1 } : {}),
    lastExit: exitCode && exitCode !== '(never exited)' ? `exit code ${exitCode}${signal ? ` (${signal})` : ''}` : undefined,
    workingDirectory: print.get('working directory'),
    notes: [],
  };
}

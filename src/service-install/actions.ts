// `pincer service install|uninstall|status` on a given host: choose the target, plan, print or carry out, report.
import { existsSync } from 'node:fs';
import type { ServiceHost } from './host.js';
import type { Installation } from './installation.js';
import { launchdInstallSteps, launchdStatus, launchdUninstallSteps } from './launchd.js';
import { describePlan, executePlan, type Step } from './plan.js';
import { formatStatus, statusExitCode } from './status.js';
import { lingerAdvice, systemdInstallSteps, systemdStatus, systemdUninstallSteps } from './systemd.js';
import { blockersOf, installedTarget, problems, resolveTarget, type StartedBy, type Target } from './target.js';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

export interface ServiceOptions {
  /** A system unit / launchd daemon even when not root. */
  system: boolean;
  /** Print what would be done; change nothing. */
  dryRun: boolean;
}

function startedBy(installation: Installation): StartedBy {
  return { cli: installation.argv.slice(0, 2), workingDirectory: installation.workingDirectory };
}

/** Carries out or (dry run) prints the steps; `blockers` stop a real run before anything changes. */
async function carryOut(
  verb: string,
  target: Target,
  steps: Step[],
  blockers: string[],
  options: ServiceOptions,
  host: ServiceHost,
  io: Io,
): Promise<boolean> {
  if (options.dryRun) {
    io.out(`# pincer service ${verb} --dry-run: the ${target.describe}; nothing is changed.`);
    for (const line of describePlan(steps)) io.out(line);
    for (const blocker of blockers) io.err(`note: a real ${verb} would stop here: ${blocker}`);
    return true;
  }
  if (blockers.length > 0) {
    for (const blocker of blockers) io.err(`pincer service ${verb}: ${blocker}`);
    return false;
  }
  const outcome = await executePlan(steps, host);
  if (!outcome.ok) io.err(`pincer service ${verb}: ${outcome.message}`);
  return outcome.ok;
}

export async function installService(host: ServiceHost, installation: Installation, options: ServiceOptions, io: Io): Promise<number> {
  const resolved = resolveTarget(host, options.system, startedBy(installation), 'install');
  if (!resolved.ok) {
    io.err(`pincer service install: ${resolved.reason}`);
    return 1;
  }
  const { target } = resolved;
  const replacing = existsSync(target.file);
  let steps: Step[];
  try {
    steps =
      target.manager === 'systemd'
        ? systemdInstallSteps(target, installation, replacing, host.user)
        : launchdInstallSteps(target, installation, replacing, host.user);
  } catch (err) {
    // A path or value the unit format cannot carry (a control character, a trailing space).
    io.err(`pincer service install: ${(err as Error).message}`);
    return 1;
  }
  for (const warning of installation.warnings) io.err(`warning: ${warning}`);
  const blockers = [...blockersOf(resolved), ...installation.blockers];
  if (!(await carryOut('install', target, steps, blockers, options, host, io))) return 1;

  const advice = target.manager === 'systemd' && target.scope === 'user' ? await userUnitAdvice(host, options) : undefined;
  if (options.dryRun) {
    if (advice) io.out(`# ${advice}`);
    return 0;
  }
  io.out(`pincer is ${replacing ? 'reinstalled' : 'installed'} as a ${target.describe} (${target.file}) and running.`);
  io.out('  status: pincer service status');
  io.out('  logs:   pincer logs -f');
  if (advice) io.out(`note: ${advice}`);
  return 0;
}

/** A dry run asks nothing of the machine, so it gives the advice without checking whether lingering is on. */
async function userUnitAdvice(host: ServiceHost, options: ServiceOptions): Promise<string | undefined> {
  if (!options.dryRun) return lingerAdvice(host);
  return `to keep pincer running after logout and start it at boot: loginctl enable-linger ${host.user}`;
}

export async function uninstallService(host: ServiceHost, installation: Installation, options: ServiceOptions, io: Io): Promise<number> {
  const by = startedBy(installation);
  const resolved = resolveTarget(host, options.system, by, 'uninstall');
  if (!resolved.ok) {
    io.err(`pincer service uninstall: ${resolved.reason}`);
    return 1;
  }
  const target = installedTarget(host, resolved.target);
  if (!target) {
    io.out(`no pincer service is installed (there is no ${resolved.target.file}): nothing to remove.`);
    return 0;
  }
  const steps = target.manager === 'systemd' ? systemdUninstallSteps(target, host.user) : launchdUninstallSteps(target);
  const blockers = blockersOf(problems(host, target, by, 'uninstall'));
  if (!(await carryOut('uninstall', target, steps, blockers, options, host, io))) return 1;
  if (options.dryRun) return 0;
  io.out(`pincer's ${target.describe} is stopped and removed (${target.file}).`);
  if (target.manager === 'launchd') io.out(`its logs are kept in ${target.logFile}`);
  return 0;
}

export async function serviceStatus(
  host: ServiceHost,
  installation: Installation,
  options: Pick<ServiceOptions, 'system'>,
  io: Io,
): Promise<number> {
  const resolved = resolveTarget(host, options.system, startedBy(installation), 'status');
  if (!resolved.ok) {
    io.err(`pincer service status: ${resolved.reason}`);
    return 1;
  }
  if (resolved.managerMissing) {
    io.out(`pincer is not installed as a service: ${resolved.managerMissing}`);
    return statusExitCode(undefined);
  }
  const target = installedTarget(host, resolved.target);
  if (!target) {
    io.out(`pincer is not installed as a service (there is no ${resolved.target.file}): pincer service install sets one up.`);
    io.out('A foreground `npm start` logs to its own terminal.');
    return statusExitCode(undefined);
  }
  const status = target.manager === 'systemd' ? await systemdStatus(target, host) : await launchdStatus(target, host);
  if (status.workingDirectory && status.workingDirectory !== installation.workingDirectory) {
    status.notes.push(`it runs the pincer in ${status.workingDirectory}, not the one in this directory (${installation.workingDirectory})`);
  }
  for (const line of formatStatus(status)) io.out(line);
  return statusExitCode(status);
}

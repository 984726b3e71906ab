// Where pincer's service lives on this host: which service manager, user or system scope, which file.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { type ServiceHost, shellQuote } from './host.js';
import { LAUNCHD_LABEL } from './launchd-plist.js';
import { type SystemdScope, UNIT_NAME } from './systemd-unit.js';

export interface SystemdTarget {
  manager: 'systemd';
  scope: SystemdScope;
  file: string;
  /** `systemctl` or `systemctl --user`. */
  systemctl: string[];
  /** How to read its logs without pincer. */
  journalctl: string[];
  describe: string;
}

export interface LaunchdTarget {
  manager: 'launchd';
  scope: 'agent' | 'daemon';
  file: string;
  /** `gui/<uid>` for an agent, `system` for a daemon. */
  domain: string;
  /** `<domain>/dev.pincer`, as launchctl names one service. */
  service: string;
  logFile: string;
  describe: string;
}

export type Target = SystemdTarget | LaunchdTarget;

/** What keeps a service from being changed here, each with its fix. */
export interface Problems {
  /** The platform's service manager does not run here: why, and how to start pincer instead. */
  managerMissing?: string;
  /** Changing the target needs root and this is not root: with the command to run instead. */
  needsRoot?: string;
}

export type Resolved = ({ ok: true; target: Target } & Problems) | { ok: false; reason: string };

/** Why an install or uninstall here would fail, each with its fix. */
export function blockersOf(found: Problems): string[] {
  return [found.managerMissing, found.needsRoot].filter((b): b is string => b !== undefined);
}

/** Whether changing this target needs root. */
export function isSystemScope(target: Target): boolean {
  return target.scope === 'system' || target.scope === 'daemon';
}

export function systemdTarget(host: ServiceHost, scope: SystemdScope): SystemdTarget {
  const user = scope === 'user';
  return {
    manager: 'systemd',
    scope,
    file: user ? join(host.home, '.config', 'systemd', 'user', UNIT_NAME) : join(host.root, 'etc', 'systemd', 'system', UNIT_NAME),
    systemctl: user ? ['systemctl', '--user'] : ['systemctl'],
    journalctl: user ? ['journalctl', '--user', '-u', UNIT_NAME] : ['journalctl', '-u', UNIT_NAME],
    describe: user ? 'systemd user unit' : 'systemd system unit',
  };
}

export function launchdTarget(host: ServiceHost, scope: 'agent' | 'daemon'): LaunchdTarget {
  const agent = scope === 'agent';
  const domain = agent ? `gui/${host.uid}` : 'system';
  return {
    manager: 'launchd',
    scope,
    file: agent
      ? join(host.home, 'Library', 'LaunchAgents', `${LAUNCHD_LABEL}.plist`)
      : join(host.root, 'Library', 'LaunchDaemons', `${LAUNCHD_LABEL}.plist`),
    domain,
    service: `${domain}/${LAUNCHD_LABEL}`,
    logFile: agent
      ? join(host.home, 'Library', 'Logs', 'pincer', 'pincer.log')
      : join(host.root, 'Library', 'Logs', 'pincer', 'pincer.log'),
    describe: agent ? 'launchd agent' : 'launchd daemon',
  };
}

/** How this pincer is started by hand, for the fixes that tell the owner to run it some other way. */
export interface StartedBy {
  /** This Node and this checkout's CLI entry. */
  cli: string[];
  workingDirectory: string;
}

/** `cd <dir> && node …/main.js start`: pincer in the foreground, for hosts without a service manager pincer knows. */
export function startCommand(startedBy: StartedBy): string {
  return `cd ${shellQuote([startedBy.workingDirectory])} && ${shellQuote([...startedBy.cli, 'start'])}`;
}

/**
 * The target for `install` (and where `uninstall`, `status` and `logs` look first): the system scope when
 * root or asked for, else the user's. `verb` is the subcommand, for the fix that says to rerun it as root.
 */
export function resolveTarget(host: ServiceHost, wantSystem: boolean, startedBy: StartedBy, verb: string): Resolved {
  const system = wantSystem || host.uid === 0;
  let target: Target;
  if (host.platform === 'linux') target = systemdTarget(host, system ? 'system' : 'user');
  else if (host.platform === 'darwin') target = launchdTarget(host, system ? 'daemon' : 'agent');
  else {
    return {
      ok: false,
      reason: `pincer service knows systemd (Linux) and launchd (macOS), not ${host.platform}: start pincer under your own service manager with \`${startCommand(startedBy)}\``,
    };
  }
  return { ok: true, target, ...problems(host, target, startedBy, verb) };
}

/** What keeps `verb` from working on this target here, each with its fix. */
export function problems(host: ServiceHost, target: Target, startedBy: StartedBy, verb: string): Problems {
  const found: Problems = {};
  if (target.manager === 'systemd' && !host.systemdBooted) {
    found.managerMissing = `this system does not run systemd (there is no /run/systemd/system), so there is no service manager to install pincer into. Start pincer with your init system instead (OpenRC, runit, supervisord…) with the command \`${startCommand(startedBy)}\`; in a container, make that the container's command`;
  }
  if (isSystemScope(target) && host.uid !== 0) {
    found.needsRoot = `the ${target.describe} ${target.file} can only be changed by root: run this as root from this directory (sudo ${shellQuote([...startedBy.cli, 'service', verb, '--system'])})`;
  }
  return found;
}

/** The installed service this user would mean: the resolved target if its file exists, else the other scope's. */
export function installedTarget(host: ServiceHost, preferred: Target): Target | undefined {
  if (existsSync(preferred.file)) return preferred;
  const other =
    preferred.manager === 'systemd'
      ? systemdTarget(host, preferred.scope === 'user' ? 'system' : 'user')
      : launchdTarget(host, preferred.scope === 'agent' ? 'daemon' : 'agent');
  return existsSync(other.file) ? other : undefined;
}

// pincer under systemd: the steps that install and remove its unit, and its state as systemctl reports it.
import { dirname } from 'node:path';
import type { ServiceHost } from './host.js';
import type { Installation } from './installation.js';
import type { Step } from './plan.js';
import { type ServiceStatus, signalName } from './status.js';
import { systemdUnit, UNIT_NAME } from './systemd-unit.js';
import type { SystemdTarget } from './target.js';

/** What to do when systemctl fails, from what it said. */
function systemctlFix(target: SystemdTarget, user: string): (stderr: string) => string {
  return (stderr) => {
    if (target.scope === 'user' && /bus|XDG_RUNTIME_DIR|No medium found/i.test(stderr)) {
      return `the systemd user manager of ${user} cannot be reached from this shell (it cannot after su or sudo): log in as ${user} directly (ssh or a console) or use \`machinectl shell ${user}@\`, and run this again; or install a system unit as root with --system`;
    }
    if (/access denied|authentication|permission denied/i.test(stderr)) return 'run this as root (sudo)';
    return `see \`${[...target.systemctl, 'status', UNIT_NAME].join(' ')}\` and \`pincer logs\``;
  };
}

/** `replacing`: a unit is already installed, so the running pincer is restarted onto the new one. */
export function systemdInstallSteps(target: SystemdTarget, installation: Installation, replacing: boolean, user: string): Step[] {
  const fix = systemctlFix(target, user);
  return [
    { kind: 'mkdir', path: dirname(target.file) },
    { kind: 'write', path: target.file, content: systemdUnit(installation, target.scope), mode: 0o644 },
    { kind: 'run', argv: [...target.systemctl, 'daemon-reload'], fix },
    { kind: 'run', argv: [...target.systemctl, 'enable', '--now', UNIT_NAME], fix },
    ...(replacing ? [{ kind: 'run' as const, argv: [...target.systemctl, 'restart', UNIT_NAME], fix }] : []),
  ];
}

export function systemdUninstallSteps(target: SystemdTarget, user: string): Step[] {
  const fix = systemctlFix(target, user);
  return [
    { kind: 'run', argv: [...target.systemctl, 'disable', '--now', UNIT_NAME], fix },
    { kind: 'remove', path: target.file },
    { kind: 'run', argv: [...target.systemctl, 'daemon-reload'], fix },
    // Forgets a failed state, so that `systemctl --failed` does not list a unit that no longer exists.
    { kind: 'run', argv: [...target.systemctl, 'reset-failed', UNIT_NAME], mayFail: true },
  ];
}

/** A user unit runs only while its user manager does: from login to logout, unless lingering is on. */
export async function lingerAdvice(host: ServiceHost): Promise<string | undefined> {
  const result = await host.run.run(['loginctl', 'show-user', host.user, '--property=Linger', '--value']);
  if (result.code === 0 && result.stdout.trim() === 'yes') return undefined;
  return `a user unit runs while ${host.user} is logged in; to keep pincer running after logout and start it at boot: loginctl enable-linger ${host.user}`;
}

const PROPERTIES = [
  'LoadState',
  'ActiveState',
  'SubState',
  'UnitFileState',
  'MainPID',
  'ActiveEnterTimestamp',
  'InactiveEnterTimestamp',
  'ExecMainExitTimestamp',
  'ExecMainCode',
  'ExecMainStatus',
  'Result',
  'NRestarts',
  'WorkingDirectory',
];

/** `systemctl show` prints `Key=Value` lines. */
export function parseShow(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const line of text.split('\n')) {
    const at = line.indexOf('=');
    if (at > 0) values.set(line.slice(0, at), line.slice(at + 1).trim());
  }
  return values;
}

/** ExecMainCode is a waitid(2) si_code: 1 exited, 2 killed, 3 killed and dumped core. */
function describeExit(show: Map<string, string>): string | undefined {
  const at = show.get('ExecMainExitTimestamp');
  if (!at) return undefined;
  const code = Number(show.get('ExecMainCode'));
  const status = Number(show.get('ExecMainStatus'));
  const how =
    code === 1
      ? `exit status ${status}`
      : code === 2 || code === 3
        ? `killed by ${signalName(status)}${code === 3 ? ' (core dumped)' : ''}`
        : 'ended';
  const result = show.get('Result');
  return `${how} at ${at}${result && result !== 'success' ? ` (result: ${result})` : ''}`;
}

function describeEnabled(show: Map<string, string>, target: SystemdTarget): string {
  const state = show.get('UnitFileState') ?? '';
  if (state === 'enabled') return target.scope === 'system' ? 'yes (starts at boot)' : 'yes (starts with your user manager)';
  if (state === '') return 'unknown';
  return `no (${state}): ${[...target.systemctl, 'enable', '--now', UNIT_NAME].join(' ')}`;
}

export async function systemdStatus(target: SystemdTarget, host: ServiceHost): Promise<ServiceStatus> {
  const logs = `pincer logs -f   (or ${target.journalctl.join(' ')})`;
  const shown = await host.run.run([...target.systemctl, 'show', UNIT_NAME, `--property=${PROPERTIES.join(',')}`]);
  if (shown.code !== 0) {
    const said = (shown.stderr || shown.stdout).trim();
    return {
      describe: target.describe,
      file: target.file,
      running: false,
      logs,
      notes: [`systemctl could not be asked: ${said}; ${systemctlFix(target, host.user)(said)}`],
    };
  }
  const show = parseShow(shown.stdout);
  const active = show.get('ActiveState') ?? 'unknown';
  const running = active === 'active' || active === 'reloading';
  const pid = Number(show.get('MainPID'));
  const restarts = Number(show.get('NRestarts'));
  const notes: string[] = [];
  if (show.get('LoadState') !== 'loaded') {
    notes.push(
      `systemd has not loaded the unit (${show.get('LoadState') ?? 'unknown'}): ${[...target.systemctl, 'daemon-reload'].join(' ')}`,
    );
  }
  if (active === 'failed') notes.push('it failed: pincer logs shows why; it starts again with pincer service install');
  if (target.scope === 'user') {
    const advice = await lingerAdvice(host);
    if (advice) notes.push(advice);
  }
  return {
    describe: target.describe,
    file: target.file,
    enabled: describeEnabled(show, target),
    running,
    state: `${active}${show.get('SubState') ? ` (${show.get('SubState')})` : ''}`,
    ...(running && pid > 0 ? { pid } : {}),
    since: running ? show.get('ActiveEnterTimestamp') : show.get('InactiveEnterTimestamp'),
    ...(Number.isFinite(restarts) && show.has('NRestarts') ? { restarts } : {}),
    lastExit: describeExit(show),
    workingDirectory: show.get('WorkingDirectory'),
    logs,
    notes,
  };
}

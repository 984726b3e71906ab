// The text of pincer's systemd unit, and systemd's quoting rules (systemd.syntax(7), systemd.service(5)).
import type { Installation } from './installation.js';

export type SystemdScope = 'user' | 'system';

export const UNIT_NAME = 'pincer.service';

/** A value systemd cannot read back as written: a line break ends the setting, other control characters are refused. */
function assertWritable(value: string, what: string): void {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(value))
    throw new Error(`${what} contains a control character, which a systemd unit cannot carry: ${JSON.stringify(value)}`);
}

/** `%` starts a specifier (%h, %u…) in nearly every setting; `%%` is a literal percent sign. */
function escapeSpecifiers(value: string): string {
  return value.replaceAll('%', '%%');
}

/**
 * One argument of ExecStart=: double-quoted (spaces stay in the word), with C-style backslash escapes, `%%`
 * for specifiers and `$$` because ExecStart= expands $VAR and ${VAR} in arguments.
 */
export function quoteExecArg(arg: string): string {
  assertWritable(arg, 'a command-line argument');
  const escaped = arg
    .replaceAll('\\', '\\\\')
    .replaceAll('"', '\\"')
    .replaceAll('$', () => '$$');
  return `"${escapeSpecifiers(escaped)}"`;
}

/**
 * ExecStart= with the program quoted as well. systemd takes the program's path literally apart from
 * specifiers (no `$` expansion) and refuses one with quotes or backslashes in it.
 */
export function execStartLine(argv: readonly string[]): string {
  const [program, ...args] = argv;
  if (!program?.startsWith('/')) throw new Error(`the program must be an absolute path: ${JSON.stringify(program)}`);
  assertWritable(program, 'the program path');
  if (/["'\\]/.test(program)) throw new Error(`systemd refuses a program path with quotes or backslashes: ${program}`);
  return `ExecStart=${[`"${escapeSpecifiers(program)}"`, ...args.map(quoteExecArg)].join(' ')}`;
}

/** `Environment="NAME=value"`: one quoted assignment, so spaces stay in the value; Environment= does not expand `$`. */
export function environmentLine(name: string, value: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not a valid environment variable name: ${JSON.stringify(name)}`);
  assertWritable(value, name);
  const escaped = `${name}=${value}`.replaceAll('\\', '\\\\').replaceAll('"', '\\"');
  return `Environment="${escapeSpecifiers(escaped)}"`;
}

/**
 * WorkingDirectory= takes the rest of the line as the path, without unquoting: only specifiers need escaping.
 * The parser trims the line, and a trailing backslash would continue it, so such paths cannot be written.
 */
export function workingDirectoryLine(path: string): string {
  assertWritable(path, 'the working directory');
  if (!path.startsWith('/') || /\s$/.test(path) || path.endsWith('\\')) {
    throw new Error(
      `the working directory ${JSON.stringify(path)} cannot be written into a systemd unit: use a directory whose path does not end in a space or a backslash`,
    );
  }
  return `WorkingDirectory=${escapeSpecifiers(path)}`;
}

/** Root pincer puts each bubblewrap sandbox in its own cgroup; under systemd that needs a subtree delegated to the service. */
export function needsDelegate(scope: SystemdScope, installation: Pick<Installation, 'runtime'>): boolean {
  return scope === 'system' && (installation.runtime === 'auto' || installation.runtime === 'bwrap');
}

/** Pure: the unit file for this installation. A system unit (no User=) runs as root. */
export function systemdUnit(installation: Installation, scope: SystemdScope): string {
  const environment: Array<[string, string]> = [...installation.environment];
  // The system manager sets no $HOME without User=; pincer's defaults (the mount allowlist) live under it.
  if (scope === 'system' && !environment.some(([name]) => name === 'HOME')) environment.push(['HOME', installation.home]);
  const lines = [
    '# Written by `pincer service install`; remove it with `pincer service uninstall`.',
    '# Secrets are not here: pincer reads them from the .env file in its working directory.',
    '[Unit]',
    'Description=pincer, a personal AI assistant',
    // The user manager has no network-online.target; in the system manager it keeps channels from starting offline.
    ...(scope === 'system' ? ['Wants=network-online.target', 'After=network-online.target'] : []),
    '',
    '[Service]',
    'Type=simple',
    workingDirectoryLine(installation.workingDirectory),
    execStartLine(installation.argv),
    ...environment.map(([name, value]) => environmentLine(name, value)),
    'Restart=on-failure',
    'RestartSec=2',
    // An invalid configuration exits with 2 (pincer start): restarting cannot fix it, so do not loop.
    'RestartPreventExitStatus=2',
    // pincer stops its sandboxes itself on SIGTERM; mixed sends SIGTERM to pincer alone and SIGKILL to what is left after it.
    'KillSignal=SIGTERM',
    'KillMode=mixed',
    'TimeoutStopSec=30',
    'StandardOutput=journal',
    'StandardError=journal',
    'SyslogIdentifier=pincer',
    ...(needsDelegate(scope, installation) ? ['Delegate=yes'] : []),
    '',
    '[Install]',
    `WantedBy=${scope === 'system' ? 'multi-user.target' : 'default.target'}`,
  ];
  return `${lines.join('\n')}\n`;
}

// The machine that `pincer service` and `pincer logs` act on: who runs them, where files go, and how commands
// run. Behind an interface so that tests use a temporary directory and record commands instead of running them.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir, userInfo } from 'node:os';

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs a program without a shell (arguments are never re-parsed) and reports how it ended. */
export interface CommandRunner {
  run(argv: readonly string[]): Promise<CommandResult>;
}

export interface ServiceHost {
  platform: NodeJS.Platform;
  uid: number;
  user: string;
  home: string;
  /** Prefix of system-wide paths (/etc, /Library): `/` on a real host, a temporary directory in tests. */
  root: string;
  /** Whether systemd is the init system: the same check as sd_booted(3). */
  systemdBooted: boolean;
  run: CommandRunner;
  sleep(ms: number): Promise<void>;
}

export const execRunner: CommandRunner = {
  run(argv) {
    const [file, ...args] = argv;
    if (!file) return Promise.resolve({ code: 127, stdout: '', stderr: 'no command' });
    return new Promise((resolve) => {
      execFile(file, args, { timeout: 60_000, maxBuffer: 4 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (!err) return resolve({ code: 0, stdout, stderr });
        const e = err as NodeJS.ErrnoException & { code?: number | string };
        if (e.code === 'ENOENT') return resolve({ code: 127, stdout: '', stderr: `${file}: command not found` });
        resolve({ code: typeof e.code === 'number' ? e.code : 1, stdout, stderr: stderr || e.message });
      });
    });
  },
};

function currentUser(): string {
  try {
    return userInfo().username;
  } catch {
    // A uid without a passwd entry (some containers): the environment is all there is.
    return process.env.USER ?? process.env.LOGNAME ?? String(process.getuid?.() ?? 'unknown');
  }
}

export function currentHost(): ServiceHost {
  return {
    platform: process.platform,
    uid: process.getuid?.() ?? -1,
    user: currentUser(),
    home: homedir(),
    root: '/',
    systemdBooted: existsSync('/run/systemd/system'),
    run: execRunner,
    sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  };
}

/** A command line as a person would type it into a POSIX shell: for dry runs and for fixes to copy. */
export function shellQuote(argv: readonly string[]): string {
  return argv.map((a) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`)).join(' ');
}

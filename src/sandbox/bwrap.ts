// The bubblewrap runtime: one unprivileged, fully unshared namespace per sandboxed process.
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { chownSync, existsSync, lchownSync, lstatSync, mkdirSync, readdirSync, readlinkSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import type { Forward, ProbeResult, Runtime, SandboxSpec } from './types.js';

const execFileAsync = promisify(execFile);

/** Host paths under / that are symlinks into /usr on merged-usr systems, or directories on others. */
const ROOT_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
/** Host /etc entries the tools inside need; nothing with secrets (no shadow, no ssh, no machine-id). */
const HOST_ETC = ['ssl', 'ca-certificates', 'alternatives', 'localtime', 'ld.so.cache', 'mime.types'];

export interface SandboxUser {
  uid: number;
  gid: number;
}

export interface BwrapOptions {
  /** A host folder for the runtime's own files (the sandbox's synthesized /etc). */
  stateDir: string;
  /** The unprivileged user the sandbox runs as when pincer itself is root. */
  user?: SandboxUser;
  bwrapPath?: string;
}

export class BwrapRuntime implements Runtime {
  readonly name = 'bwrap' as const;
  readonly #bwrap: string;
  readonly #etcDir: string;
  /** Set when pincer runs as root: the sandbox must not be root, even inside its own namespace. */
  readonly user: SandboxUser | undefined;

  constructor(options: BwrapOptions) {
    this.#bwrap = options.bwrapPath ?? 'bwrap';
    this.user = process.getuid?.() === 0 ? (options.user ?? { uid: 1500, gid: 1500 }) : undefined;
    this.#etcDir = join(options.stateDir, 'etc');
    this.#writeEtc();
  }

  async probe(): Promise<ProbeResult> {
    try {
      await execFileAsync('socat', ['-V'], { timeout: 5000 });
    } catch {
      return { ok: false, reason: 'socat is not installed (apt-get install socat)' };
    }
    try {
      const cmd = [...this.#privilegeDrop(), this.#bwrap, '--unshare-all', '--unshare-user', '--disable-userns'];
      cmd.push('--cap-drop', 'ALL', '--ro-bind', '/', '/', 'true');
      const [file, ...args] = cmd as [string, ...string[]];
      await execFileAsync(file, args, { timeout: 5000 });
      return { ok: true };
    } catch (err) {
      const detail = err instanceof Error ? err.message.split('\n').slice(0, 3).join(' ') : String(err);
      return { ok: false, reason: `bubblewrap cannot create a sandbox here: ${detail}` };
    }
  }

  spawn(spec: SandboxSpec): ChildProcessWithoutNullStreams {
    this.#grantAccess(spec);
    const args = [...this.#privilegeDrop(), this.#bwrap, ...this.buildArgs(spec)];
    const [file, ...rest] = args as [string, ...string[]];
    return spawn(file, rest, { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env.PATH ?? '/usr/bin:/bin' } });
  }

  /** The bwrap command line (without the privilege drop); exported for tests that read it. */
  buildArgs(spec: SandboxSpec): string[] {
    const a: string[] = [
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--cap-drop',
      'ALL',
      '--die-with-parent',
      '--new-session',
      '--clearenv',
    ];
    for (const [k, v] of Object.entries(spec.env)) a.push('--setenv', k, v);
    a.push('--ro-bind', '/usr', '/usr');
    for (const name of ROOT_LINKS) {
      const host = `/${name}`;
      if (!existsSync(host)) continue;
      const st = lstatSync(host);
      if (st.isSymbolicLink()) a.push('--symlink', readlinkSync(host), host);
      else if (st.isDirectory()) a.push('--ro-bind', host, host);
    }
    for (const name of HOST_ETC) if (existsSync(`/etc/${name}`)) a.push('--ro-bind', `/etc/${name}`, `/etc/${name}`);
    for (const name of ['passwd', 'group', 'hosts', 'nsswitch.conf']) a.push('--ro-bind', join(this.#etcDir, name), `/etc/${name}`);
    a.push('--proc', '/proc', '--dev', '/dev', '--tmpfs', '/tmp');
    spec.forwards.forEach((f, i) => {
      a.push('--ro-bind', dirname(f.hostSocket), `/run/pincer/${i}`);
    });
    const mounts = [...spec.mounts].sort((x, y) => x.sandboxPath.split('/').length - y.sandboxPath.split('/').length);
    for (const m of mounts) a.push(m.writable ? '--bind' : '--ro-bind', m.hostPath, m.sandboxPath);
    a.push('--chdir', spec.cwd, '--', '/bin/sh', '-c', bridgeScript(spec.forwards), 'pincer-sandbox', spec.command, ...spec.args);
    return a;
  }

  #privilegeDrop(): string[] {
    if (!this.user) return [];
    const { uid, gid } = this.user;
    return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--'];
  }

  /**
   * Writable mounts and bridge sockets must belong to the unprivileged sandbox user. A mount whose root
   * is not yet the user's is handed over whole (files the host put there first, like CLAUDE.md).
   */
  #grantAccess(spec: SandboxSpec): void {
    if (!this.user) return;
    const { uid, gid } = this.user;
    for (const m of spec.mounts) if (m.writable && statSync(m.hostPath).uid !== uid) chownTree(m.hostPath, uid, gid);
    for (const f of spec.forwards) chownSync(f.hostSocket, uid, gid);
  }

  #writeEtc(): void {
    mkdirSync(this.#etcDir, { recursive: true });
    const uid = this.user?.uid ?? process.getuid?.() ?? 1000;
    const gid = this.user?.gid ?? process.getgid?.() ?? 1000;
    writeFileSync(join(this.#etcDir, 'passwd'), `root:x:0:0::/root:/bin/sh\nagent:x:${uid}:${gid}::/home/agent:/bin/sh\n`);
    writeFileSync(join(this.#etcDir, 'group'), `root:x:0:\nagent:x:${gid}:\n`);
    writeFileSync(join(this.#etcDir, 'hosts'), '127.0.0.1 localhost\n::1 localhost\n');
    writeFileSync(join(this.#etcDir, 'nsswitch.conf'), 'passwd: files\ngroup: files\nhosts: files\n');
  }
}

function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  if (!lstatSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid);
}

/**
 * The sandbox has no network but its own loopback. Each forward listens on 127.0.0.1:port inside and
 * relays to a host Unix socket; the command starts only once every port accepts connections.
 */
function bridgeScript(forwards: Forward[]): string {
  const lines = forwards.map(
    (f, i) => `socat TCP-LISTEN:${f.port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:/run/pincer/${i}/${basename(f.hostSocket)} &`,
  );
  for (const f of forwards) {
    const hex = f.port.toString(16).toUpperCase().padStart(4, '0');
    lines.push(
      `n=0; until grep -q '0100007F:${hex} ' /proc/net/tcp; do n=$((n+1)); ` +
        `if [ $n -gt 1000 ]; then echo 'pincer: port bridge ${f.port} did not start' >&2; exit 97; fi; sleep 0.002; done`,
    );
  }
  lines.push('exec "$@"');
  return lines.join('\n');
}

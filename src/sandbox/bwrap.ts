// The bubblewrap runtime: one unprivileged, fully unshared namespace per sandboxed process.
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, constants, existsSync, lstatSync, mkdirSync, openSync, readlinkSync, renameSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { canChangeOwners, grantAccess } from './access.js';
import { bridgeScript, forwardMounts } from './bridge.js';
import {
  type CgroupSupport,
  createSandboxCgroup,
  destroySandboxCgroup,
  detectHostCgroups,
  leftoverCgroups,
  prepareCgroups,
  type SandboxCgroup,
} from './cgroup.js';
import { type HeldMount, holdMounts, mountChecks } from './held-mounts.js';
import { closeInheritedDescriptors } from './inherited-fds.js';
import type { LimitsReport, Mount, ProbeResult, Runtime, SandboxSpec, SandboxUser } from './types.js';

const execFileAsync = promisify(execFile);

/** Host paths under / that are symlinks into /usr on merged-usr systems, or directories on others. */
const ROOT_LINKS = ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32'];
/** Host /etc entries the tools inside need; nothing with secrets (no shadow, no ssh, no machine-id). */
const HOST_ETC = ['ssl', 'ca-certificates', 'alternatives', 'localtime', 'ld.so.cache', 'mime.types'];
/** The /etc files each sandbox user gets from pincer. */
const ETC_FILES = ['passwd', 'group', 'hosts', 'nsswitch.conf'] as const;
/** The child's first descriptor past stdio: mount sources are passed from here on. */
const FIRST_MOUNT_FD = 3;

export interface BwrapOptions {
  /** A host folder for the runtime's own files (the sandboxes' synthesized /etc). */
  stateDir: string;
  /** Names this pincer's cgroups, so that two pincers on one host never clean up each other's. */
  instance: string;
  log?: Logger;
  bwrapPath?: string;
}

/** How often a sandbox's cgroup removal is retried while its last processes are still exiting. */
const CGROUP_REMOVE_TRIES = 20;
const CGROUP_REMOVE_DELAY_MS = 100;

export class BwrapRuntime implements Runtime {
  readonly name = 'bwrap' as const;
  readonly #bwrap: string;
  readonly #stateDir: string;
  readonly #instance: string;
  readonly #log: Logger | undefined;
  /** Cgroups usable for memory and pids limits, or why not (then rlimits stand in). */
  #cgroups: CgroupSupport | { reason: string } = { reason: 'not probed yet' };
  readonly #etcWritten = new Set<number>();

  constructor(options: BwrapOptions) {
    this.#bwrap = options.bwrapPath ?? 'bwrap';
    this.#stateDir = options.stateDir;
    this.#instance = options.instance;
    this.#log = options.log;
  }

  async probe(): Promise<ProbeResult> {
    try {
      await execFileAsync('socat', ['-V'], { timeout: 5000 });
    } catch {
      return { ok: false, reason: 'socat is not installed (apt-get install socat)' };
    }
    try {
      const user = canChangeOwners() ? { uid: 65534, gid: 65534 } : undefined;
      const cmd = [...privilegeDrop(user), this.#bwrap, '--unshare-all', '--unshare-user', '--disable-userns'];
      cmd.push('--cap-drop', 'ALL', '--ro-bind', '/', '/', 'true');
      const [file, ...args] = cmd as [string, ...string[]];
      await execFileAsync(file, args, { timeout: 5000 });
    } catch (err) {
      const detail = err instanceof Error ? err.message.split('\n').slice(0, 3).join(' ') : String(err);
      return { ok: false, reason: `bubblewrap cannot create a sandbox here: ${detail}` };
    }
    this.#cgroups = this.#detectCgroups();
    return { ok: true };
  }

  limits(): LimitsReport {
    const cg = this.#cgroups;
    const via = (controller: 'memory' | 'pids'): string | undefined => {
      if ('reason' in cg) return undefined;
      if (cg.kind === 'v2') return 'cgroup v2';
      return cg.parents[controller] ? 'cgroup v1' : undefined;
    };
    const nproc = canChangeOwners()
      ? 'RLIMIT_NPROC (per sandbox user)'
      : "RLIMIT_NPROC (counts all of pincer's user's processes: no cgroup here)";
    return {
      memoryBytes: via('memory') ?? 'RLIMIT_AS per process (no cgroup here: the sum over processes is not bounded)',
      pids: via('pids') ?? nproc,
      cpuSeconds: 'RLIMIT_CPU per process; wall time by the turn timeout',
      tmpBytes: 'tmpfs size',
      fileBytes: 'RLIMIT_FSIZE',
    };
  }

  async cleanOrphans(): Promise<void> {
    const cg = this.#cgroups;
    if ('reason' in cg) return;
    for (const left of leftoverCgroups(cg)) {
      if (!destroySandboxCgroup(left)) this.#log?.warn({ dirs: left.dirs }, 'could not remove a leftover sandbox cgroup');
    }
  }

  spawn(spec: SandboxSpec): ChildProcessWithoutNullStreams {
    grantAccess(spec, this.#log);
    this.#writeEtc(spec.user);
    const closed = closeInheritedDescriptors();
    if (closed.length > 0) this.#log?.info({ fds: closed }, 'closed descriptors pincer inherited, so no sandbox inherits them');
    // Every mount goes in by descriptor (the child's fd 3, 4, …): bwrap mounts exactly what was opened and checked.
    const held = holdMounts(this.#mounts(spec));
    try {
      const cgroup = this.#createCgroup(spec);
      const args = [
        ...joinCgroup(cgroup),
        ...this.#rlimits(spec),
        ...privilegeDrop(canChangeOwners() ? spec.user : undefined),
        this.#bwrap,
        ...this.buildArgs(
          spec,
          held.mounts.map((m, i) => ({ ...m, fd: FIRST_MOUNT_FD + i })),
        ),
      ];
      const [file, ...rest] = args as [string, ...string[]];
      const child = spawn(file, rest, {
        stdio: ['pipe', 'pipe', 'pipe', ...held.mounts.map((m) => m.fd)],
        env: { PATH: process.env.PATH ?? '/usr/bin:/bin' },
        // A session of its own: the terminal's Ctrl-C is pincer's to handle (it ends its sandboxes as it stops),
        // it must not reach them first. --die-with-parent still ends a sandbox when pincer dies.
        detached: true,
      }) as ChildProcessWithoutNullStreams;
      if (cgroup) child.once('close', () => this.#removeCgroup(cgroup, CGROUP_REMOVE_TRIES));
      return child;
    } finally {
      // The child has its own copies now; bwrap closes them once mounted.
      held.release();
    }
  }

  /** Everything the sandbox mounts from the host, shallowest first (a mount inside another comes after it). */
  #mounts(spec: SandboxSpec): Mount[] {
    const etc = this.#etcDir(spec.user);
    const mounts: Mount[] = [
      ...HOST_ETC.filter((name) => existsSync(`/etc/${name}`)).map((name) => ({
        hostPath: `/etc/${name}`,
        sandboxPath: `/etc/${name}`,
        writable: false,
      })),
      ...ETC_FILES.map((name) => ({ hostPath: join(etc, name), sandboxPath: `/etc/${name}`, writable: false })),
      ...forwardMounts(spec.forwards),
      ...spec.mounts,
    ];
    return mounts.sort((x, y) => x.sandboxPath.split('/').length - y.sandboxPath.split('/').length);
  }

  /** The bwrap command line (without cgroup, rlimits and privilege drop) for mounts already held; exported for tests that read it. */
  buildArgs(spec: SandboxSpec, mounts: HeldMount[]): string[] {
    const a: string[] = [
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--cap-drop',
      'ALL',
      '--die-with-parent',
      '--new-session',
      // No bwrap reaper as PID 1: it would hold the host's end of Claude Code's stream where an agent's
      // command could trace it. The bridge script is PID 1 and reaps instead (see bridgeScript).
      '--as-pid-1',
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
    a.push('--proc', '/proc', '--dev', '/dev', '--size', String(spec.limits.tmpBytes), '--perms', '1777', '--tmpfs', '/tmp');
    for (const m of mounts) a.push(m.writable ? '--bind-fd' : '--ro-bind-fd', String(m.fd), m.sandboxPath);
    // The root is bwrap's own tmpfs: read-only once everything is mounted, so only the writable mounts and /tmp take writes.
    a.push('--remount-ro', '/');
    const script = bridgeScript(spec.forwards, mountChecks(mounts));
    a.push('--chdir', spec.cwd, '--', '/bin/sh', '-c', script, 'pincer-sandbox', spec.command, ...spec.args);
    return a;
  }

  #detectCgroups(): CgroupSupport | { reason: string } {
    if (!canChangeOwners()) return { reason: 'pincer is not root, so it cannot create cgroups' };
    const found = detectHostCgroups(`pincer-${this.#instance}`);
    if ('reason' in found) return found;
    const ready = prepareCgroups(found);
    return ready.ok ? found : { reason: ready.reason };
  }

  #createCgroup(spec: SandboxSpec): SandboxCgroup | undefined {
    const cg = this.#cgroups;
    if ('reason' in cg) return undefined;
    return createSandboxCgroup(cg, spec.name, spec.limits);
  }

  #removeCgroup(cgroup: SandboxCgroup, triesLeft: number): void {
    if (destroySandboxCgroup(cgroup)) return;
    if (triesLeft <= 1) {
      this.#log?.warn({ dirs: cgroup.dirs }, 'sandbox cgroup still busy; it is removed at the next start');
      return;
    }
    setTimeout(() => this.#removeCgroup(cgroup, triesLeft - 1), CGROUP_REMOVE_DELAY_MS).unref();
  }

  /** Per-process limits, and the per-sandbox ones that cgroups would give where they cannot. */
  #rlimits(spec: SandboxSpec): string[] {
    const { limits } = spec;
    const a = ['prlimit', `--cpu=${limits.cpuSeconds}`, `--fsize=${limits.fileBytes}`, '--core=0'];
    const cg = this.#cgroups;
    const cgroupHas = (c: 'memory' | 'pids') => !('reason' in cg) && (cg.kind === 'v2' || cg.parents[c] !== undefined);
    if (!cgroupHas('memory')) a.push(`--as=${limits.memoryBytes}`);
    if (!cgroupHas('pids')) a.push(`--nproc=${limits.pids}`);
    a.push('--');
    return a;
  }

  #etcDir(user: SandboxUser): string {
    return join(this.#stateDir, `etc-${user.uid}`);
  }

  /**
   * The sandbox's /etc files, in the runtime's own folder. Each is written to a fresh name (O_EXCL, no link
   * followed) and renamed over the old one, so nothing planted there could redirect the write.
   */
  #writeEtc(user: SandboxUser): void {
    if (this.#etcWritten.has(user.uid)) return;
    const dir = this.#etcDir(user);
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    const files: Record<(typeof ETC_FILES)[number], string> = {
      passwd: `root:x:0:0::/root:/bin/sh\nagent:x:${user.uid}:${user.gid}::/home/agent:/bin/sh\n`,
      group: `root:x:0:\nagent:x:${user.gid}:\n`,
      hosts: '127.0.0.1 localhost\n::1 localhost\n',
      'nsswitch.conf': 'passwd: files\ngroup: files\nhosts: files\n',
    };
    for (const name of ETC_FILES) {
      const temp = join(dir, `.${name}-${randomBytes(6).toString('hex')}`);
      const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o644);
      try {
        writeSync(fd, files[name]);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, join(dir, name));
    }
    this.#etcWritten.add(user.uid);
  }
}

/** When pincer is root, the sandbox must not be root, even inside its own namespace. */
function privilegeDrop(user: SandboxUser | undefined): string[] {
  if (!user) return [];
  const { uid, gid } = user;
  return ['setpriv', `--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', '--'];
}

/** Joins the sandbox's cgroups before anything of it runs, so no process starts outside its limits. */
function joinCgroup(cgroup: SandboxCgroup | undefined): string[] {
  if (!cgroup) return [];
  const writes = cgroup.procsFiles.map((f) => `echo $$ > '${f}'`).join(' && ');
  return ['/bin/sh', '-c', `${writes} && exec "$@" || { echo 'pincer: cannot join the sandbox cgroup' >&2; exit 96; }`, 'pincer-cgroup'];
}

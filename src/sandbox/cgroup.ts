// Memory and process limits for one sandbox through the kernel's cgroups: v2 (unified) where the host has
// it with the controllers delegated to us, else the v1 `memory` and `pids` hierarchies, else nothing
// (the caller then falls back to rlimits). Everything here needs write access to cgroupfs, i.e. root.
import { existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** Where the limits of one sandbox live: one directory per controller hierarchy (one for v2). */
export interface SandboxCgroup {
  /** Each directory's `cgroup.procs`: the sandbox joins them all before it starts. */
  procsFiles: string[];
  dirs: string[];
}

export interface CgroupSupport {
  kind: 'v2' | 'v1';
  /** The directories under which each sandbox gets its own cgroup (per controller on v1). */
  parents: { memory?: string; pids?: string; unified?: string };
}

interface MountEntry {
  mountPoint: string;
  fsType: string;
  superOptions: string[];
}

/** Reads /proc/self/mountinfo: mount point, filesystem type and super options of each mount. */
function cgroupMounts(mountinfo: string): MountEntry[] {
  const out: MountEntry[] = [];
  for (const line of mountinfo.split('\n')) {
    const [left, right] = line.split(' - ');
    if (!left || !right) continue;
    const mountPoint = left.split(' ')[4];
    const [fsType, , superOpts] = right.split(' ');
    if (!mountPoint || (fsType !== 'cgroup' && fsType !== 'cgroup2')) continue;
    out.push({ mountPoint, fsType, superOptions: (superOpts ?? '').split(',') });
  }
  return out;
}

/** This process's own cgroup path per hierarchy, from /proc/self/cgroup (`id:controllers:path`). */
function ownPaths(procCgroup: string): Map<string, string> {
  const paths = new Map<string, string>();
  for (const line of procCgroup.trim().split('\n')) {
    const [, controllers, path] = line.split(':');
    if (controllers === undefined || path === undefined) continue;
    if (controllers === '') paths.set('', path);
    for (const c of controllers.split(',')) if (c) paths.set(c, path);
  }
  return paths;
}

export interface DetectInput {
  mountinfo: string;
  procCgroup: string;
  /** The instance's subtree name, e.g. `pincer-<hash>`. */
  subtree: string;
}

/**
 * Finds where this process may create sandbox cgroups. On v2 the controllers must be enabled for our
 * subtree (systemd `Delegate=yes`, or a root that owns its cgroup); on v1 our own memory/pids cgroups
 * are used as parents. Returns the reason when there is no usable cgroup.
 */
export function detectCgroups(input: DetectInput): CgroupSupport | { reason: string } {
  const mounts = cgroupMounts(input.mountinfo);
  const own = ownPaths(input.procCgroup);
  const v1 = (controller: 'memory' | 'pids'): string | undefined => {
    const m = mounts.find((x) => x.fsType === 'cgroup' && x.superOptions.includes(controller));
    const path = own.get(controller);
    return m && path !== undefined ? join(m.mountPoint, path, input.subtree) : undefined;
  };
  const memory = v1('memory');
  const pids = v1('pids');
  if (memory || pids) return { kind: 'v1', parents: { memory, pids } };
  const unified = mounts.find((x) => x.fsType === 'cgroup2');
  const ownUnified = own.get('');
  if (unified && ownUnified !== undefined) {
    if (hasControllers(unified.mountPoint)) {
      return { kind: 'v2', parents: { unified: join(unified.mountPoint, ownUnified, input.subtree) } };
    }
  }
  return { reason: 'no cgroup hierarchy with the memory and pids controllers is mounted' };
}

/** Reads this host's cgroup layout. */
export function detectHostCgroups(subtree: string): CgroupSupport | { reason: string } {
  return detectCgroups({
    mountinfo: readOr('/proc/self/mountinfo', ''),
    procCgroup: readOr('/proc/self/cgroup', ''),
    subtree,
  });
}

/**
 * The memory this process's own cgroup uses now (its sandboxes' included when they are below it), as
 * `memory.current` (v2) or `memory.usage_in_bytes` (v1) says; undefined when it cannot be read.
 */
export function ownCgroupMemoryUsage(
  input: Omit<DetectInput, 'subtree'> = {
    mountinfo: readOr('/proc/self/mountinfo', ''),
    procCgroup: readOr('/proc/self/cgroup', ''),
  },
): number | undefined {
  const mounts = cgroupMounts(input.mountinfo);
  const own = ownPaths(input.procCgroup);
  const v1 = mounts.find((m) => m.fsType === 'cgroup' && m.superOptions.includes('memory'));
  const v2 = mounts.find((m) => m.fsType === 'cgroup2');
  const file =
    v1 && own.get('memory') !== undefined
      ? join(v1.mountPoint, own.get('memory') as string, 'memory.usage_in_bytes')
      : v2 && own.get('') !== undefined
        ? join(v2.mountPoint, own.get('') as string, 'memory.current')
        : undefined;
  const value = file ? Number.parseInt(readOr(file, '').trim(), 10) : Number.NaN;
  return Number.isFinite(value) ? value : undefined;
}

/**
 * Creates the instance's parent cgroups and checks they accept limits, so that a host where we may not
 * write cgroupfs (not root, no delegation) is found at start, not at the first message.
 */
export function prepareCgroups(support: CgroupSupport): { ok: true } | { ok: false; reason: string } {
  try {
    if (support.kind === 'v2') {
      const parent = support.parents.unified as string;
      mkdirSync(parent, { recursive: true });
      // Controllers must be enabled on the way down for the sandboxes' own cgroups to get memory.max.
      // Enabling them in our own cgroup fails while it holds processes (no internal processes rule):
      // that is the host's delegation to arrange (systemd Delegate=yes), and the reason says so.
      if (!hasControllers(parent)) writeFileSync(join(parent, '..', 'cgroup.subtree_control'), '+memory +pids');
      writeFileSync(join(parent, 'cgroup.subtree_control'), '+memory +pids');
    } else {
      for (const dir of [support.parents.memory, support.parents.pids]) if (dir) mkdirSync(dir, { recursive: true });
    }
    return { ok: true };
  } catch (err) {
    return { ok: false, reason: `cannot create cgroups: ${err instanceof Error ? err.message : String(err)}` };
  }
}

/** Makes the cgroup(s) of one sandbox with its limits; the sandbox joins it by writing its pid to `procsFiles`. */
export function createSandboxCgroup(support: CgroupSupport, name: string, limits: { memoryBytes: number; pids: number }): SandboxCgroup {
  const dirs: string[] = [];
  /** Required limits must be written; optional ones exist only with some kernel settings (swap accounting). */
  const make = (parent: string, required: Record<string, string>, optional: Record<string, string>) => {
    const dir = join(parent, name);
    mkdirSync(dir);
    dirs.push(dir);
    for (const [file, value] of Object.entries(required)) writeFileSync(join(dir, file), value);
    for (const [file, value] of Object.entries(optional)) if (existsSync(join(dir, file))) writeFileSync(join(dir, file), value);
  };
  const mem = String(limits.memoryBytes);
  const pids = String(limits.pids);
  if (support.kind === 'v2') {
    make(support.parents.unified as string, { 'memory.max': mem, 'pids.max': pids }, { 'memory.swap.max': '0' });
  } else {
    // memsw (memory + swap) must be set after the plain limit.
    if (support.parents.memory) make(support.parents.memory, { 'memory.limit_in_bytes': mem }, { 'memory.memsw.limit_in_bytes': mem });
    if (support.parents.pids) make(support.parents.pids, { 'pids.max': pids }, {});
  }
  return { dirs, procsFiles: dirs.map((d) => join(d, 'cgroup.procs')) };
}

/** Kills whatever is still in the cgroup(s) and removes them; true when every directory is gone. */
export function destroySandboxCgroup(cgroup: SandboxCgroup): boolean {
  let gone = true;
  for (const dir of cgroup.dirs) {
    if (!existsSync(dir)) continue;
    const kill = join(dir, 'cgroup.kill');
    if (existsSync(kill)) writeOr(kill, '1');
    for (const pid of readOr(join(dir, 'cgroup.procs'), '').split('\n').filter(Boolean)) {
      try {
        process.kill(Number(pid), 'SIGKILL');
      } catch {
        // Already gone.
      }
    }
    try {
      rmdirSync(dir);
    } catch {
      gone = false;
    }
  }
  return gone;
}

/** The sandbox cgroups an earlier pincer on the same state left behind. */
export function leftoverCgroups(support: CgroupSupport): SandboxCgroup[] {
  const byName = new Map<string, string[]>();
  for (const parent of Object.values(support.parents)) {
    if (!parent || !existsSync(parent)) continue;
    for (const entry of readdirSync(parent, { withFileTypes: true })) {
      if (!entry.isDirectory()) continue;
      byName.set(entry.name, [...(byName.get(entry.name) ?? []), join(parent, entry.name)]);
    }
  }
  return [...byName.values()].map((dirs) => ({ dirs, procsFiles: dirs.map((d) => join(d, 'cgroup.procs')) }));
}

function hasControllers(dir: string): boolean {
  const controllers = readOr(join(dir, 'cgroup.controllers'), '').split(/\s+/);
  return controllers.includes('memory') && controllers.includes('pids');
}

function readOr(path: string, fallback: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return fallback;
  }
}

function writeOr(path: string, value: string): void {
  try {
    writeFileSync(path, value);
  } catch {
    // Best effort: the kill that follows covers it.
  }
}

// Decides what one session's sandbox is: the group's folders, its own unprivileged user, its limits,
// and the extra mounts the owner's allowlist permits (checked again at every start: the file may change).
import { randomBytes } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxPlan } from '../agent/sandbox-spawn.js';
import type { Logger } from '../log.js';
import { canChangeOwners, unreachableReason } from '../sandbox/access.js';
import { type ExtraMountRequest, type ExtraMountsResult, loadMountAllowlist, validateExtraMounts } from '../sandbox/mount-allowlist.js';
import type { Mount, ResourceLimits, SandboxUser } from '../sandbox/types.js';
import type { Group } from '../store/index.js';
import { groupPaths, type StateLayout } from './layout.js';

export interface SandboxSettings {
  limits: ResourceLimits;
  uidBase: number;
  mountAllowlistPath: string;
  /** Never mountable, nor anything containing them, whatever the allowlist says: pincer's state and code. */
  protectedPaths: string[];
  /** PINCER_EXTRA_CA_CERTS, already resolved to a real path. */
  extraCaCerts?: string;
  /** Every group, read when mounts are checked: no group's mount may lie inside another's writable one. */
  groups?: () => Group[];
}

/**
 * Checks requested extra mounts against the owner's allowlist, read afresh (the file may have changed),
 * and whether the group's sandbox user can actually use each folder.
 */
export function checkExtraMounts(requests: ExtraMountRequest[], group: Group, s: SandboxSettings): ExtraMountsResult {
  const checked = validateExtraMounts(requests, loadMountAllowlist(s.mountAllowlistPath), {
    isMain: group.isMain,
    allowlistPath: s.mountAllowlistPath,
    protectedPaths: s.protectedPaths,
    otherGroups: (s.groups?.() ?? []).filter((g) => g.folder !== group.folder).map((g) => ({ isMain: g.isMain, requests: g.extraMounts })),
  });
  const user = sandboxUser(group, s.uidBase);
  // Accepted mounts come back in the order of the requests that were not rejected.
  const acceptedRequests = requests.filter((r) => !checked.rejected.some((x) => x.request === r));
  const result: ExtraMountsResult = { mounts: [], rejected: [...checked.rejected] };
  checked.mounts.forEach((mount, i) => {
    const reason = unreachableReason(mount.hostPath, user, mount.writable);
    const request = acceptedRequests[i];
    if (reason && request) result.rejected.push({ request, reason });
    else result.mounts.push({ ...mount, external: true });
  });
  return result;
}

/**
 * When pincer is root each group gets its own uid, so that groups cannot touch each other's files even if
 * a mount went wrong, and per-user limits (RLIMIT_NPROC) are per group. Otherwise the sandbox runs as
 * pincer's own user, mapped into its namespace.
 */
export function sandboxUser(group: Group, uidBase: number): SandboxUser {
  if (canChangeOwners()) return { uid: uidBase + group.sandboxSlot, gid: uidBase + group.sandboxSlot };
  return { uid: process.getuid?.() ?? 1000, gid: process.getgid?.() ?? 1000 };
}

/**
 * `isolated`: a scheduled run that must not see (or add to) the group's conversation gets its own Claude
 * Code state folder; a dot-name can never be a group folder.
 */
export function sandboxPlan(
  layout: StateLayout,
  group: Group,
  s: SandboxSettings,
  log: Logger,
  opts: { isolated?: boolean } = {},
): SandboxPlan {
  const name = `${group.folder.replaceAll('_', '-').slice(0, 40)}-${randomBytes(4).toString('hex')}`;
  // The sandbox's own socket folder: a group's session and its isolated task runs may live at once.
  const socketDir = join(layout.socketsDir, name);
  mkdirSync(socketDir, { mode: 0o711 });
  const paths = groupPaths(layout, group.folder, group.isMain);
  const stateDir = opts.isolated ? join(layout.sessionsDir, `.isolated-${group.folder}`) : paths.stateDir;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  return {
    ...paths,
    stateDir,
    modelSocket: join(socketDir, 'model.sock'),
    egressSocket: join(socketDir, 'egress.sock'),
    name,
    user: sandboxUser(group, s.uidBase),
    limits: s.limits,
    extraMounts: extraMounts(group, s, log),
    ...(s.extraCaCerts ? { extraCaCerts: s.extraCaCerts } : {}),
  };
}

/** A refused or unreadable mount is left out and logged; the agent still runs with its own folders. */
function extraMounts(group: Group, s: SandboxSettings, log: Logger): Mount[] {
  if (group.extraMounts.length === 0) return [];
  try {
    const { mounts, rejected } = checkExtraMounts(group.extraMounts, group, s);
    for (const r of rejected) log.warn({ group: group.folder, hostPath: r.request.hostPath, reason: r.reason }, 'extra mount refused');
    return mounts;
  } catch (err) {
    log.error({ err, group: group.folder, allowlist: s.mountAllowlistPath }, 'mount allowlist unreadable: no extra mounts');
    return [];
  }
}

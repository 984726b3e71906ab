// Hands what a sandbox must write (its writable mounts, its bridge sockets) to the sandbox's user.
import { chownSync, statSync } from 'node:fs';
import type { Logger } from '../log.js';
import { type ChownResult, chownTree, chownTreeInSlices } from './chown-tree.js';
import type { SandboxSpec, SandboxUser } from './types.js';

/** True when pincer can give files away, i.e. runs as root; otherwise the sandbox runs as pincer's own user. */
export function canChangeOwners(): boolean {
  return process.getuid?.() === 0;
}

/**
 * A writable mount of pincer's own (not an external one) whose root is not yet the sandbox user's is handed over whole (files the host put
 * there first, like CLAUDE.md; a folder a re-joined group wrote as its former uid). The walk trusts nothing in the tree (see chown-tree.ts)
 * and is bounded, since this runs synchronously in the spawn path; what it had to leave is logged with the command that finishes the job.
 */
export function grantAccess(spec: SandboxSpec, log?: Pick<Logger, 'warn'>): void {
  if (!canChangeOwners()) return;
  const { uid, gid } = spec.user;
  for (const m of spec.mounts) {
    if (!m.writable || m.external || statSync(m.hostPath).uid === uid) continue;
    warnLeftOut(m.hostPath, spec.user, chownTree(m.hostPath, uid, gid), log);
  }
  for (const f of spec.forwards) chownSync(f.hostSocket, uid, gid);
}

/**
 * The same hand-over ahead of a sandbox's start, a slice at a time between turns of the event loop: a large or
 * planted folder never stalls the host, and grantAccess then finds the folders handed over already.
 */
export async function handOverFolders(folders: string[], user: SandboxUser, log?: Pick<Logger, 'warn'>): Promise<void> {
  if (!canChangeOwners()) return;
  for (const folder of folders) {
    if (statSync(folder).uid === user.uid) continue;
    warnLeftOut(folder, user, await chownTreeInSlices(folder, user.uid, user.gid), log);
  }
}

function warnLeftOut(folder: string, user: SandboxUser, { leftOut }: ChownResult, log: Pick<Logger, 'warn'> | undefined): void {
  if (leftOut.length === 0) return;
  const fix = `chown -R -P ${user.uid}:${user.gid} ${folder}`;
  log?.warn(
    { path: folder, uid: user.uid, leftOut },
    `not all of the folder was handed to the sandbox user: check what was left, then ${fix} finishes it`,
  );
}

/**
 * Why the sandbox user could not use a host folder that pincer does not own (an extra mount), or
 * undefined when it can: every folder on the way must be searchable by it, the folder itself readable
 * (and writable when mounted so). pincer never changes the owner of such a folder.
 */
export function unreachableReason(path: string, user: SandboxUser, writable: boolean): string | undefined {
  const may = (p: string, bits: { r?: boolean; w?: boolean; x?: boolean }): boolean => {
    const st = statSync(p);
    const shift = st.uid === user.uid ? 6 : st.gid === user.gid ? 3 : 0;
    const mode = (st.mode >> shift) & 0o7;
    return (!bits.r || (mode & 4) !== 0) && (!bits.w || (mode & 2) !== 0) && (!bits.x || (mode & 1) !== 0);
  };
  const parts = path.split('/').filter(Boolean);
  for (let i = 0; i < parts.length; i++) {
    const dir = `/${parts.slice(0, i).join('/')}`;
    if (!may(dir, { x: true })) return `the sandbox user (uid ${user.uid}) cannot pass through ${dir}: allow it (chmod o+x ${dir})`;
  }
  if (!may(path, { r: true, x: true, w: writable })) {
    return `the sandbox user (uid ${user.uid}) cannot ${writable ? 'read and write' : 'read'} ${path}: change its permissions or mount it read-only`;
  }
  return undefined;
}

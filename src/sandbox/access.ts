// Hands what a sandbox must write (its writable mounts, its bridge sockets) to the sandbox's user.
import { chownSync, lchownSync, lstatSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { SandboxSpec } from './types.js';

/** True when pincer can give files away, i.e. runs as root; otherwise the sandbox runs as pincer's own user. */
export function canChangeOwners(): boolean {
  return process.getuid?.() === 0;
}

/**
 * A writable mount whose root is not yet the sandbox user's is handed over whole (files the host put
 * there first, like CLAUDE.md). Links are changed themselves, never followed.
 */
export function grantAccess(spec: SandboxSpec): void {
  if (!canChangeOwners()) return;
  const { uid, gid } = spec.user;
  for (const m of spec.mounts) if (m.writable && statSync(m.hostPath).uid !== uid) chownTree(m.hostPath, uid, gid);
  for (const f of spec.forwards) chownSync(f.hostSocket, uid, gid);
}

function chownTree(path: string, uid: number, gid: number): void {
  lchownSync(path, uid, gid);
  if (!lstatSync(path).isDirectory()) return;
  for (const name of readdirSync(path)) chownTree(join(path, name), uid, gid);
}

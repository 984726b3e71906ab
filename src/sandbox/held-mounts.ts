// What is checked is what is mounted. A mount named by a path is resolved again by whoever mounts it, later:
// a folder swapped for a symlink in between would bring something else into the sandbox. So the host opens
// each mount source itself (O_PATH, the last component not followed), checks that the kernel's path of what
// it opened is the path it checked, and hands the runtime the open file descriptor to mount.
import { closeSync, constants, fstatSync, openSync, readlinkSync } from 'node:fs';
import type { MountCheck } from './bridge.js';
import type { Mount } from './types.js';

/** Linux's O_PATH (not in Node's constants): a handle to a file or folder that can be mounted, never read. */
const O_PATH = 0o10000000;

export class MountChangedError extends Error {
  override readonly name = 'MountChangedError';
}

export interface HeldMount extends Mount {
  /** An O_PATH descriptor of exactly what was checked, open until `release()`. */
  fd: number;
  /** `device:inode` of what was opened, for an external mount: what the sandbox must find mounted (see bridgeScript). */
  identity?: string;
}

export interface HeldMounts {
  mounts: HeldMount[];
  release(): void;
}

/**
 * Opens every mount's source. An external (owner's) folder must still be a folder at the very path that was
 * checked, with no link on the way (its checked path is a real path): otherwise the mount is refused.
 */
export function holdMounts(mounts: Mount[]): HeldMounts {
  const held: HeldMount[] = [];
  const release = (): void => {
    for (const m of held.splice(0)) closeSync(m.fd);
  };
  try {
    for (const m of mounts) held.push(m.external ? holdExternal(m) : { ...m, fd: openSync(m.hostPath, O_PATH) });
  } catch (err) {
    release();
    if (err instanceof MountChangedError) throw err;
    throw new MountChangedError(`cannot open a mount source: ${(err as Error).message}`);
  }
  return { mounts: held, release };
}

/** An owner's folder, opened without following a link at its end, and checked to be still where it was checked. */
function holdExternal(m: Mount): HeldMount {
  const changed = (why: string) =>
    new MountChangedError(`extra mount ${m.sandboxPath}: ${m.hostPath} changed after it was checked (${why}); not mounted`);
  let fd: number;
  try {
    fd = openSync(m.hostPath, O_PATH | constants.O_NOFOLLOW | constants.O_DIRECTORY);
  } catch (err) {
    throw changed((err as NodeJS.ErrnoException).code ?? String(err));
  }
  const st = fstatSync(fd);
  const opened = readlinkSync(`/proc/self/fd/${fd}`);
  if (opened === m.hostPath && st.isDirectory()) return { ...m, fd, identity: `${st.dev}:${st.ino}` };
  closeSync(fd);
  throw changed(`it now leads to ${opened}`);
}

/** The identities the sandbox checks before anything of the agent's runs. */
export function mountChecks(mounts: HeldMount[]): MountCheck[] {
  return mounts.flatMap((m) => (m.identity === undefined ? [] : [{ sandboxPath: m.sandboxPath, identity: m.identity }]));
}

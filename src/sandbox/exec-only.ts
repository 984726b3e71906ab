// The agent's own process must be out of reach of the commands it runs. Same uid, same PID namespace: any
// command could ptrace Claude Code, or write its memory through /proc/<pid>/mem, and forge what it tells the
// host. The kernel marks a process non-dumpable when it executes a file it may not read, and then only a
// holder of CAP_SYS_PTRACE may trace it, open its /proc/<pid>/mem, fd/ or environ. So the sandbox runs an
// execute-only (0111) copy of the binary: the same under bubblewrap, Docker and Podman, with no kernel
// feature beyond what every Linux has (measured: a seccomp filter on ptrace would leave /proc/<pid>/mem open).
import { createHash, randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  copyFileSync,
  fchmodSync,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  renameSync,
  statSync,
  unlinkSync,
} from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const EXEC_ONLY = 0o111;

/**
 * Where copies are kept: one per binary version, shared by every pincer home of this checkout (the binary is
 * ~400 MB), in its `node_modules/.cache`. Bubblewrap resolves a mount's source as the sandbox user, so the
 * folder must be on a path that user can pass through, as the SDK's own copy of the binary is.
 */
export function execOnlyCacheDir(): string {
  return fileURLToPath(new URL('../../node_modules/.cache/pincer/exec-only', import.meta.url));
}

const made = new Map<string, string>();

/**
 * The path of an execute-only copy of `source` (a real path), made once per version. The copy is written to
 * a fresh name (O_EXCL) in a folder that must be this user's own (passable, not listable), then renamed into
 * place; a copy found there is used only if it is this user's regular file with mode 0111 and the source's size.
 */
export function execOnlyCopy(source: string, cacheDir = execOnlyCacheDir()): string {
  const st = statSync(source);
  const key = createHash('sha256').update(`${source}\0${st.size}\0${st.mtimeMs}\0${st.ino}`).digest('hex').slice(0, 16);
  const remembered = made.get(key);
  if (remembered) return remembered;
  privateFolder(cacheDir);
  const target = join(cacheDir, `${key}-${source.split('/').pop() ?? 'bin'}`);
  if (!usableCopy(target, st.size)) {
    const temp = join(cacheDir, `.tmp-${randomBytes(8).toString('hex')}`);
    const fd = openSync(temp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
    try {
      closeSync(fd);
      copyFileSync(source, temp);
      const out = openSync(temp, constants.O_RDONLY | constants.O_NOFOLLOW);
      try {
        fchmodSync(out, EXEC_ONLY);
      } finally {
        closeSync(out);
      }
      renameSync(temp, target);
    } catch (err) {
      try {
        unlinkSync(temp);
      } catch {}
      throw new Error(`cannot make an execute-only copy of ${source} in ${cacheDir}: ${(err as Error).message}`);
    }
    if (!usableCopy(target, st.size)) throw new Error(`the execute-only copy ${target} is not what pincer wrote`);
  }
  made.set(key, target);
  return target;
}

function usableCopy(path: string, size: number): boolean {
  try {
    const st = lstatSync(path);
    return st.isFile() && st.uid === process.geteuid?.() && (st.mode & 0o7777) === EXEC_ONLY && st.size === size;
  } catch {
    return false;
  }
}

/** Creates the folder (0711: passable, not listable) or checks the existing one: someone else's, or a link, is refused. */
function privateFolder(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o711 });
  const fd = openSync(dir, constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW);
  try {
    const st = fstatSync(fd);
    if (st.uid !== process.geteuid?.()) throw new Error(`${dir} belongs to uid ${st.uid}, not to pincer's user`);
    if ((st.mode & 0o777) !== 0o711) fchmodSync(fd, 0o711);
  } finally {
    closeSync(fd);
  }
}

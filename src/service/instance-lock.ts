// One pincer per state folder. A second `pincer start` on the same PINCER_HOME must not treat the first one's
// live sandboxes, sockets and containers as orphans: it finds the lock and leaves, touching nothing.
//
// The lock is a file holding the owner's pid, its process start time and its API address, put in place by
// link(2) of a complete temporary file (atomic, and never half-written). A lock whose process is gone (or whose
// pid now belongs to a process started later) is stale: it was left by a pincer that died, and is taken over.
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  linkSync,
  lstatSync,
  mkdirSync,
  openSync,
  readFileSync,
  readSync,
  realpathSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';

export const LOCK_FILE = 'pincer.lock';
/** A lock is a few dozen bytes; anything bigger is not one of ours. */
const MAX_LOCK_BYTES = 4096;
/** Rounds of "stale: remove it, try again" before giving up (each one lost to another starting pincer). */
const TAKE_ATTEMPTS = 5;

const LockContent = z.object({
  pid: z.number().int().positive(),
  /** The process's start time in clock ticks since boot (/proc/<pid>/stat), where there is a /proc. */
  started: z.string().optional(),
  url: z.string(),
});
type LockContent = z.infer<typeof LockContent>;

export class AlreadyRunningError extends Error {
  override readonly name = 'AlreadyRunningError';
  constructor(
    readonly pid: number,
    readonly url: string,
  ) {
    // Only pincer's user writes the lock, yet it is read as data: an address other than a short printable
    // http(s) one (a terminal control sequence, a page of text) is not repeated.
    const plain = /^https?:\/\/[\x21-\x7e]{1,300}$/.test(url);
    super(plain ? `pincer is already running at ${url} (pid ${pid})` : `pincer is already running (pid ${pid})`);
  }
}

export interface InstanceLock {
  readonly path: string;
  /** Records where this pincer's API listens, once it does (the port may have been chosen by the system). */
  announce(url: string): void;
  /** Removes the lock if it is still this process's. */
  release(): void;
}

/** Locks held by this very process: a second start in the same process finds its own pid alive. */
const heldHere = new Set<string>();

/**
 * Takes the lock of the state folder `home` for this process, announcing `url`; throws AlreadyRunningError when
 * a live pincer holds it. Call it before anything else touches the state folder.
 */
export function takeInstanceLock(home: string, url: string): InstanceLock {
  mkdirSync(home, { recursive: true, mode: 0o700 });
  // Real path: one folder named two ways (a link, a relative path) is still one folder with one lock.
  const path = join(realpathSync(home), LOCK_FILE);
  const own: LockContent = { pid: process.pid, url, ...startedField(process.pid) };
  for (let attempt = 0; attempt < TAKE_ATTEMPTS; attempt++) {
    if (placeExclusively(path, own)) {
      heldHere.add(path);
      return heldLock(path, own);
    }
    const found = readLock(path);
    if (found === 'gone') continue;
    if (found.content && isAlive(path, found.content)) throw new AlreadyRunningError(found.content.pid, found.content.url);
    // Stale (or not a lock at all): remove it, unless another starting pincer replaced it meanwhile. (Two pincers
    // taking over the same stale lock within the same few microseconds could still both win: no rename compares.)
    if (sameEntry(path, found.ino)) unlinkQuietly(path);
  }
  throw new Error(`could not take the lock ${path}: other pincers kept starting at the same time`);
}

function heldLock(path: string, own: LockContent): InstanceLock {
  let ino = lstatSync(path).ino;
  return {
    path,
    announce(url) {
      // Replaced whole (rename), so a reader sees the old content or the new, never a part.
      const tmp = writeTemp(path, { ...own, url });
      renameSync(tmp, path);
      ino = lstatSync(path).ino;
    },
    release() {
      heldHere.delete(path);
      if (sameEntry(path, ino)) unlinkQuietly(path);
    },
  };
}

/** Puts `content` at `path` unless something is there already; true when it is now ours. */
function placeExclusively(path: string, content: LockContent): boolean {
  const tmp = writeTemp(path, content);
  try {
    linkSync(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkQuietly(tmp);
  }
}

/** A new file next to `path` holding `content`, created exclusively (no link followed). */
function writeTemp(path: string, content: LockContent): string {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}`;
  const fd = openSync(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    writeSync(fd, `${JSON.stringify(content)}\n`);
  } finally {
    closeSync(fd);
  }
  return tmp;
}

/**
 * What is at `path` now, without following a link: 'gone', or its inode and its content when it is a lock
 * (undefined content: a link, a folder, garbage, which no pincer wrote).
 */
function readLock(path: string): 'gone' | { ino: number; content: LockContent | undefined } {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return 'gone';
    if (code === 'ELOOP') return { ino: lstatSync(path).ino, content: undefined };
    throw err;
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile() || st.size > MAX_LOCK_BYTES) return { ino: st.ino, content: undefined };
    const buf = Buffer.alloc(MAX_LOCK_BYTES);
    const got = readSync(fd, buf, 0, buf.length, 0);
    return { ino: st.ino, content: parseLock(buf.subarray(0, got).toString('utf8')) };
  } finally {
    closeSync(fd);
  }
}

function parseLock(text: string): LockContent | undefined {
  try {
    const parsed = LockContent.safeParse(JSON.parse(text));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

/** Whether the lock's owner is a live process, and the same process that wrote it. */
function isAlive(path: string, holder: LockContent): boolean {
  // Our own pid: a lock this process holds, or one left by an earlier process that had our pid (a container's).
  if (holder.pid === process.pid) return heldHere.has(path);
  try {
    process.kill(holder.pid, 0);
  } catch (err) {
    // EPERM: it exists, as another user's process.
    if ((err as NodeJS.ErrnoException).code === 'ESRCH') return false;
  }
  const now = startedField(holder.pid).started;
  return holder.started === undefined || now === undefined || now === holder.started;
}

/** The process's start time, which tells a recycled pid from the one that wrote a lock; none without /proc. */
function startedField(pid: number): { started?: string } {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return {};
  }
  // Fields after the command name (in parentheses, which may itself hold spaces and parentheses); starttime is
  // the 22nd field, the 20th after it.
  const started = stat
    .slice(stat.lastIndexOf(')') + 2)
    .split(' ')
    .at(19);
  return started ? { started } : {};
}

function sameEntry(path: string, ino: number): boolean {
  try {
    return lstatSync(path).ino === ino;
  } catch {
    return false;
  }
}

function unlinkQuietly(path: string): void {
  try {
    unlinkSync(path);
  } catch {
    // Gone already: nothing to remove.
  }
}

// Hands a folder tree that a sandbox wrote to another uid, without trusting what the sandbox put there: links
// are changed themselves and never followed, even one swapped in during the walk; the walk is a loop (no
// recursion, no path that grows with depth), stays on the tree's file system, and stops at fixed bounds.
//
// Each directory is opened with O_NOFOLLOW | O_DIRECTORY and every name inside it is reached through that
// descriptor (`/proc/self/fd/<fd>/<name>`, i.e. openat / fchownat on the open directory): a directory renamed
// or replaced by a link after it was listed cannot redirect the walk out of the tree.

import {
  closeSync,
  constants,
  type Dirent,
  existsSync,
  fchownSync,
  fstatSync,
  lchownSync,
  lstatSync,
  opendirSync,
  openSync,
  type Stats,
} from 'node:fs';
import { join } from 'node:path';
import { setImmediate } from 'node:timers/promises';

export interface ChownLimits {
  /** Entries looked at in one call; a sandbox can create any number of them. */
  maxEntries: number;
  /** Directory levels below the root; also bounds the descriptors held open at once. */
  maxDepth: number;
}

// One synchronous call blocks the event loop: 50,000 entries (two or three system calls each) bound it to about
// 1–2.5 s on a busy 2-core machine (docs/BENCHMARKS.md, item 8); 128 levels is far more than any project needs.
export const DEFAULT_CHOWN_LIMITS: ChownLimits = { maxEntries: 50_000, maxDepth: 128 };
/** In slices the host stays responsive, so a larger folder can be handed over whole (memory: under 100 bytes per entry). */
export const DEFAULT_SLICED_LIMITS: ChownLimits = { maxEntries: 1_000_000, maxDepth: 128 };
/** Entries handled between two turns of the event loop (a few milliseconds on an idle machine). */
const SLICE = 250;

export interface ChownResult {
  /** Entries looked at, the root included. */
  visited: number;
  /** Entries whose owner changed. */
  changed: number;
  /** What was left as it was and why; empty when the whole tree was handed over. */
  leftOut: string[];
}

/** Test seam: runs after a directory is listed, before anything in it is opened (a swap lands exactly there). */
export type AfterListing = (dirPath: string) => void;

const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW;
/** Where an open directory's entries are reached by descriptor; Linux only (elsewhere: by path, see below). */
const FD_DIR = '/proc/self/fd';

/** An open directory, closed once every subdirectory listed in it has been opened. */
interface OpenDir {
  fd: number;
  /** Its path, for messages only: names are always reached through the descriptor. */
  path: string;
  pendingChildren: number;
}

interface PendingDir {
  parent: OpenDir;
  /** The name's bytes as a latin1 string: lossless, and far lighter than a Buffer when millions wait. */
  name: string;
  depth: number;
}

/** Hands the tree over in one synchronous call (the runtimes' spawn path, which cannot wait). */
export function chownTree(root: string, uid: number, gid: number, limits = DEFAULT_CHOWN_LIMITS, afterListing?: AfterListing): ChownResult {
  const steps = chownSteps(root, uid, gid, limits, afterListing);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

/** Hands the tree over a slice at a time, letting the event loop run in between: the host stays responsive throughout. */
export async function chownTreeInSlices(root: string, uid: number, gid: number, limits = DEFAULT_SLICED_LIMITS): Promise<ChownResult> {
  const steps = chownSteps(root, uid, gid, limits, undefined);
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
    await setImmediate();
  }
}

/** The walk, pausing (yielding) after every SLICE entries; abandoning it closes what it holds open. */
function* chownSteps(
  root: string,
  uid: number,
  gid: number,
  limits: ChownLimits,
  afterListing: AfterListing | undefined,
): Generator<void, ChownResult, void> {
  const result: ChownResult = { visited: 0, changed: 0, leftOut: [] };
  const byFd = existsSync(FD_DIR);
  // Without /proc the names are reached by path: a link in the last component is still never followed, but a
  // directory swapped for a link between listing and opening could redirect what lies below it.
  const base = (dir: OpenDir): string => (byFd ? `${FD_DIR}/${dir.fd}` : dir.path);
  const childPath = (dir: OpenDir, name: Buffer): Buffer => Buffer.concat([Buffer.from(`${base(dir)}/`), name]);
  const shown = (dir: OpenDir, name: Buffer): string => join(dir.path, name.toString());

  let rootFd: number;
  try {
    rootFd = openSync(root, DIR_FLAGS);
  } catch (err) {
    if (errorCode(err) !== 'ENOTDIR') throw new Error(`cannot open ${root} to hand it to uid ${uid}: ${message(err)}`);
    // A single file (not a folder): nothing to walk.
    lchownSync(root, uid, gid);
    return { visited: 1, changed: 1, leftOut: [] };
  }
  const rootStat = fstatSync(rootFd);
  const rootDir: OpenDir = { fd: rootFd, path: root, pendingChildren: 0 };
  const pending: PendingDir[] = [];
  const opened: OpenDir[] = [rootDir];
  const release = (dir: OpenDir): void => {
    dir.pendingChildren -= 1;
    if (dir.pendingChildren === 0 && dir !== rootDir) closeDir(dir);
  };
  const closeDir = (dir: OpenDir): void => {
    closeSync(dir.fd);
    opened.splice(opened.indexOf(dir), 1);
  };
  const owned = (st: Stats): boolean => st.uid === uid && st.gid === gid;
  let tooDeep = 0;
  let otherFs = 0;
  let linked = 0;

  /** A non-directory (or what is one by now): changed itself, never what it points to. */
  const handOverEntry = (dir: OpenDir, name: Buffer): void => {
    const path = childPath(dir, name);
    let st: Stats;
    try {
      st = lstatSync(path);
    } catch (err) {
      if (errorCode(err) === 'ENOENT') return;
      throw err;
    }
    if (st.dev !== rootStat.dev) {
      otherFs += 1;
      return;
    }
    // A second name of a file of root's (pincer never makes one): a link to something that is not the sandbox's.
    if (st.isFile() && st.nlink > 1 && st.uid === 0) {
      linked += 1;
      return;
    }
    if (owned(st)) return;
    lchownSync(path, uid, gid);
    result.changed += 1;
  };

  let nextPause = SLICE;
  /** True when a slice is done: the walk yields then. */
  const sliceDone = (): boolean => {
    if (result.visited < nextPause) return false;
    nextPause = result.visited + SLICE;
    return true;
  };

  /** Lists an open directory as it reads it: its files are handed over now, its subdirectories queued. False past the bound. */
  const list = function* (dir: OpenDir, depth: number): Generator<void, boolean, void> {
    // Names as bytes, not decoded (a name that is not UTF-8 must still be found): Node takes 'buffer', its types omit it.
    const entries = opendirSync(base(dir), { encoding: 'buffer' as BufferEncoding, bufferSize: 64 });
    try {
      for (let read = entries.readSync(); read !== null; read = entries.readSync()) {
        if (result.visited >= limits.maxEntries) return false;
        result.visited += 1;
        const entry = read as unknown as Dirent<Buffer>;
        if (entry.isDirectory() || unknownType(entry)) {
          if (depth + 1 > limits.maxDepth) tooDeep += 1;
          else {
            dir.pendingChildren += 1;
            pending.push({ parent: dir, name: entry.name.toString('latin1'), depth: depth + 1 });
          }
        } else handOverEntry(dir, entry.name);
        if (sliceDone()) yield;
      }
    } finally {
      entries.closeSync();
    }
    afterListing?.(dir.path);
    return true;
  };

  try {
    result.visited = 1;
    let withinBudget = yield* list(rootDir, 0);
    while (withinBudget) {
      if (sliceDone()) yield;
      const next = pending.pop();
      if (next === undefined) break;
      const { parent, depth } = next;
      const name = Buffer.from(next.name, 'latin1');
      let fd: number;
      try {
        fd = openSync(childPath(parent, name), DIR_FLAGS);
      } catch (err) {
        const code = errorCode(err);
        // Not a directory any more (a link or a file swapped in): the entry itself is handed over, nothing below.
        if (code === 'ELOOP' || code === 'ENOTDIR') handOverEntry(parent, name);
        else if (code !== 'ENOENT') throw new Error(`cannot open ${shown(parent, name)}: ${message(err)}`);
        release(parent);
        continue;
      }
      const dir: OpenDir = { fd, path: shown(parent, name), pendingChildren: 0 };
      opened.push(dir);
      release(parent);
      const st = fstatSync(fd);
      if (st.dev !== rootStat.dev) {
        otherFs += 1;
        closeDir(dir);
        continue;
      }
      withinBudget = yield* list(dir, depth);
      if (!owned(st)) {
        fchownSync(fd, uid, gid);
        result.changed += 1;
      }
      if (dir.pendingChildren === 0) closeDir(dir);
    }
    if (!withinBudget) result.leftOut.push(`entries beyond the first ${limits.maxEntries.toLocaleString('en-US')}`);
    if (tooDeep > 0) result.leftOut.push(`${tooDeep} folder(s) deeper than ${limits.maxDepth} levels, and what they hold`);
    if (otherFs > 0) result.leftOut.push(`${otherFs} entr(ies) on another file system`);
    if (linked > 0) result.leftOut.push(`${linked} hard link(s) to root's files`);
    // The root last: a tree whose root is handed over is one whose walk has run.
    if (!owned(rootStat)) {
      fchownSync(rootFd, uid, gid);
      result.changed += 1;
    }
    return result;
  } finally {
    for (const dir of opened) closeSync(dir.fd);
  }
}

/** DT_UNKNOWN (some file systems do not say): found out by trying to open it as a directory. */
function unknownType(entry: Dirent<Buffer>): boolean {
  return !(
    entry.isFile() ||
    entry.isDirectory() ||
    entry.isSymbolicLink() ||
    entry.isFIFO() ||
    entry.isSocket() ||
    entry.isBlockDevice() ||
    entry.isCharacterDevice()
  );
}

function errorCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

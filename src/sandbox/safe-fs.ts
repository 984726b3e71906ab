// Host-side access to folders a sandbox can write. Everything there is hostile: symlinks pointing out (or
// swapped in mid-operation), giant or growing files, FIFOs, devices, malformed content.
//
// A path is never handed to the kernel whole. The root is opened once, then each component is opened inside
// the folder opened before it, by naming that folder's descriptor (`/proc/self/fd/<fd>/<name>`, Node's stand-in
// for openat) with O_NOFOLLOW: a folder swapped for a symlink at any moment makes that one open fail, so the
// host never resolves a path outside the root, not even briefly. Where /proc/self/fd cannot name a folder
// (macOS, or Linux without procfs), components are named by their full path and the opened file is checked
// afterwards against the path resolved again. That narrows the race without closing it: a folder swapped back
// and forth at the right moments can still be opened, and read, through (7 of 3,000 racing reads here).
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  constants,
  fchown as fchownCallback,
  fstatSync,
  fsync as fsyncCallback,
  lstatSync,
  open as openCallback,
  openSync,
  readSync,
  realpathSync,
  type Stats,
  statSync,
} from 'node:fs';
import { type FileHandle, lstat, mkdir, open, realpath, rename, stat, unlink } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
import { promisify } from 'node:util';
import type { z } from 'zod';

export type SafeFsErrorCode =
  | 'bad-path' // absolute, `..`, empty or otherwise unusable relative path
  | 'missing' // the file (or a folder on the way) does not exist
  | 'symlink' // a symbolic link where a real file or folder must be
  | 'outside' // the opened file turned out not to be inside the root
  | 'not-file' // a directory, FIFO, socket or device
  | 'too-big' // more than maxBytes
  | 'exists' // writeFileInside: something (even a dangling link) already has that name
  | 'invalid'; // readJsonInside: not JSON, or not the expected shape

export class SafeFsError extends Error {
  override readonly name = 'SafeFsError';
  readonly code: SafeFsErrorCode;
  /** The path as the caller named it (root joined with the relative path). */
  readonly path: string;
  /**
   * Why, without the path: for callers that name the file their own way (the agent knows its sandbox path).
   * It never names a host path, only parts of the relative path the caller gave.
   */
  readonly reason: string;
  /** For `too-big`: the size of the file that was opened, when known. */
  readonly size: number | undefined;

  constructor(code: SafeFsErrorCode, path: string, reason: string, options?: ErrorOptions & { size?: number }) {
    super(`${path}: ${reason}`, options);
    this.code = code;
    this.path = path;
    this.reason = reason;
    this.size = options?.size;
  }
}

// NOFOLLOW: a link as the last component fails (ELOOP). NONBLOCK: opening a FIFO never waits for a writer.
// NOCTTY: a terminal device can never become ours.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
// EXCL with CREAT refuses any existing name, a dangling symlink included, so nothing is ever created through one.
const CREATE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
// DIRECTORY with NOFOLLOW: a link (ENOTDIR), a file or a FIFO (ENOTDIR, never opened) is refused as a folder.
const DIR_FLAGS = constants.O_RDONLY | constants.O_DIRECTORY | constants.O_NOFOLLOW | constants.O_NOCTTY;
const CHUNK = 64 * 1024;
/** Opens to a plain descriptor (a folder on the way is closed as soon as the next one is open). */
const openFd = promisify(openCallback);

interface Target {
  realRoot: string;
  segments: string[];
  /** What errors name: the root as given joined with the relative path. */
  shown: string;
}

/** An open folder on the way, and how to name an entry of it without resolving anything above it. */
interface Folder {
  fd: number;
  /** The components from the root to this folder (empty for the root itself). */
  depth: number;
  /** Its host path: only used to name entries where /proc/self/fd cannot. */
  path: string;
  rootDev: number;
}

function parseTarget(root: string, relativePath: string, realRoot: string): Target {
  const segments = splitRelative(root, relativePath);
  return { realRoot, segments, shown: join(root, ...segments) };
}

/** The relative path's components; anything that could leave the root or name the root itself is refused. */
function splitRelative(root: string, relativePath: string): string[] {
  const bad = (why: string) => new SafeFsError('bad-path', `${root}/${JSON.stringify(relativePath)}`, why);
  if (typeof relativePath !== 'string' || relativePath === '') throw bad('empty path');
  if (relativePath.includes('\0')) throw bad('path contains a NUL byte');
  if (isAbsolute(relativePath)) throw bad('path must be relative');
  const parts = relativePath.split('/');
  if (parts.includes('..')) throw bad('path must not contain ..');
  const segments = parts.filter((p) => p !== '' && p !== '.');
  if (segments.length === 0) throw bad('path names the root itself');
  return segments;
}

async function realRoot(root: string): Promise<string> {
  try {
    return await realpath(root);
  } catch (err) {
    throw translate(err, root);
  }
}

function realRootSync(root: string): string {
  try {
    return realpathSync(root);
  } catch (err) {
    throw translate(err, root);
  }
}

function checkMaxBytes(maxBytes: number): void {
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 0) throw new RangeError(`maxBytes must be a non-negative integer, got ${maxBytes}`);
}

/** Strictly below `parent`: the root itself is not a file inside it. */
function isStrictlyInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel);
}

function errnoOf(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

/** Maps the errors a hostile tree can provoke to SafeFsError; anything else (EACCES, EIO) passes through. */
function translate(err: unknown, shown: string): unknown {
  switch (errnoOf(err)) {
    case 'ENOENT':
      return new SafeFsError('missing', shown, 'does not exist', { cause: err });
    case 'ENOTDIR':
      return new SafeFsError('missing', shown, 'a component on the way is not a directory', { cause: err });
    case 'ELOOP':
      return new SafeFsError('symlink', shown, 'is a symbolic link', { cause: err });
    case 'EEXIST':
      return new SafeFsError('exists', shown, 'already exists (as a file, folder or link)', { cause: err });
    case 'ENXIO':
      return new SafeFsError('not-file', shown, 'is a socket or device, not a regular file', { cause: err });
    case 'ENAMETOOLONG':
      return new SafeFsError('bad-path', shown, 'a name in the path is too long', { cause: err });
    default:
      return err;
  }
}

function describeKind(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice() || st.isBlockDevice()) return 'a device';
  if (st.isSymbolicLink()) return 'a symbolic link';
  return 'not a regular file';
}

/** The folder on the way as the caller named it, relative to the root: all a refusal may say of it. */
function folderName(t: Target, depth: number): string {
  return t.segments.slice(0, depth).join('/');
}

/** Why the folder `depth` components down could not be opened as one, from what is there now (not followed). */
function folderRefusal(t: Target, depth: number, err: unknown, there: Stats | undefined): unknown {
  const name = folderName(t, depth);
  if (errnoOf(err) !== 'ENOTDIR') return translate(err, t.shown);
  if (there?.isSymbolicLink()) return new SafeFsError('symlink', t.shown, `${name} is a symbolic link`, { cause: err });
  return new SafeFsError('missing', t.shown, `${name} is not a directory`, { cause: err });
}

/** Refusal for an opened folder that is not a folder of the root's file system, or undefined. */
function openedFolderProblem(t: Target, depth: number, st: Stats, rootDev: number): SafeFsError | undefined {
  if (!st.isDirectory()) return new SafeFsError('missing', t.shown, `${folderName(t, depth)} is not a directory`);
  if (st.dev !== rootDev) return new SafeFsError('outside', t.shown, `${folderName(t, depth)} is on another file system`);
  return undefined;
}

/** Refusal for the final entry (as seen before opening it, or as opened), or undefined. */
function fileProblem(t: Target, st: Stats, maxBytes: number | undefined): SafeFsError | undefined {
  if (st.isSymbolicLink()) return new SafeFsError('symlink', t.shown, 'is a symbolic link');
  if (!st.isFile()) return new SafeFsError('not-file', t.shown, `is ${describeKind(st)}`);
  if (maxBytes !== undefined && st.size > maxBytes)
    return new SafeFsError('too-big', t.shown, `is ${st.size} bytes, over the ${maxBytes} allowed`, { size: st.size });
  return undefined;
}

const tooBigWhileReading = (t: Target, maxBytes: number) =>
  new SafeFsError('too-big', t.shown, `grew past the ${maxBytes} bytes allowed while being read`);
const changedWhileOpening = (t: Target) => new SafeFsError('outside', t.shown, 'changed while being opened');

/** Whether /proc/self/fd/<fd>/<name> names an entry of an open folder here; probed once per process. */
let folderFdNaming: boolean | undefined;

function probeFdNaming(dirFd: number, dirStat: Stats): void {
  if (folderFdNaming !== undefined) return;
  try {
    const viaProc = statSync(`/proc/self/fd/${dirFd}`);
    folderFdNaming = viaProc.dev === dirStat.dev && viaProc.ino === dirStat.ino;
  } catch {
    folderFdNaming = false;
  }
}

/** The path that names `name` inside `folder`: through its descriptor where possible, so nothing above is resolved. */
function entryPath(folder: Folder, name: string): string {
  return folderFdNaming ? `/proc/self/fd/${folder.fd}/${name}` : join(folder.path, name);
}

/**
 * Opens the folder holding the target's last component, one component at a time from the real root, none
 * followed if it is a link; `create` makes missing folders (as real folders: mkdir never follows a link at
 * its last component). The caller closes the returned folder.
 */
async function openParent(t: Target, create: boolean): Promise<Folder> {
  let folder: Folder;
  try {
    folder = rootFolder(t, await openFd(t.realRoot, DIR_FLAGS));
  } catch (err) {
    throw translate(err, t.shown);
  }
  try {
    for (const seg of t.segments.slice(0, -1)) {
      const path = entryPath(folder, seg);
      const depth = folder.depth + 1;
      if (create) {
        await mkdir(path, { mode: 0o755 }).catch((err: unknown) => {
          if (errnoOf(err) !== 'EEXIST') throw translate(err, t.shown);
        });
      }
      let next: number;
      try {
        next = await openFd(path, DIR_FLAGS);
      } catch (err) {
        throw folderRefusal(t, depth, err, await lstat(path).catch(() => undefined));
      }
      folder = enter(t, folder, seg, next);
    }
    return folder;
  } catch (err) {
    closeSync(folder.fd);
    throw err;
  }
}

/** The root, opened: probes once whether /proc/self/fd names its entries. Closes `fd` if it cannot. */
function rootFolder(t: Target, fd: number): Folder {
  try {
    const st = fstatSync(fd);
    probeFdNaming(fd, st);
    return { fd, depth: 0, path: t.realRoot, rootDev: st.dev };
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

/** Steps from `folder` into its entry `seg`, opened as `next`: checks what was opened, then closes `folder`. */
function enter(t: Target, folder: Folder, seg: string, next: number): Folder {
  const depth = folder.depth + 1;
  let problem: SafeFsError | undefined;
  try {
    problem = openedFolderProblem(t, depth, fstatSync(next), folder.rootDev);
  } catch (err) {
    closeSync(next);
    throw err;
  }
  if (problem) {
    closeSync(next);
    throw problem;
  }
  closeSync(folder.fd);
  return { ...folder, fd: next, depth, path: join(folder.path, seg) };
}

/** Synchronous twin of openParent, without `create`. */
function openParentSync(t: Target): Folder {
  let folder: Folder;
  try {
    folder = rootFolder(t, openSync(t.realRoot, DIR_FLAGS));
  } catch (err) {
    throw translate(err, t.shown);
  }
  try {
    for (const seg of t.segments.slice(0, -1)) {
      const path = entryPath(folder, seg);
      let next: number;
      try {
        next = openSync(path, DIR_FLAGS);
      } catch (err) {
        let there: Stats | undefined;
        try {
          there = lstatSync(path);
        } catch {
          there = undefined;
        }
        throw folderRefusal(t, folder.depth + 1, err, there);
      }
      folder = enter(t, folder, seg, next);
    }
    return folder;
  } catch (err) {
    closeSync(folder.fd);
    throw err;
  }
}

/** Checks what was opened as the target's file: on the root's file system and, without /proc, really inside. */
async function checkOpened(t: Target, folder: Folder, st: Stats): Promise<void> {
  if (st.dev !== folder.rootDev) throw new SafeFsError('outside', t.shown, 'is on another file system');
  if (folderFdNaming) return;
  // Named by full path: a folder on the way may have been swapped for a link between our opens. Prove that the
  // path, resolved now, still leads inside the root to this very file.
  const real = await realpath(join(t.realRoot, ...t.segments)).catch(() => undefined);
  const again = real === undefined ? undefined : await stat(real).catch(() => undefined);
  if (real === undefined || again === undefined || !isStrictlyInside(t.realRoot, real) || again.dev !== st.dev || again.ino !== st.ino)
    throw changedWhileOpening(t);
}

function checkOpenedSync(t: Target, folder: Folder, st: Stats): void {
  if (st.dev !== folder.rootDev) throw new SafeFsError('outside', t.shown, 'is on another file system');
  if (folderFdNaming) return;
  let real: string;
  let again: Stats;
  try {
    real = realpathSync(join(t.realRoot, ...t.segments));
    again = statSync(real);
  } catch {
    throw changedWhileOpening(t);
  }
  if (!isStrictlyInside(t.realRoot, real) || again.dev !== st.dev || again.ino !== st.ino) throw changedWhileOpening(t);
}

function lastSegment(t: Target): string {
  const last = t.segments.at(-1);
  if (last === undefined) throw new Error('a target always has at least one component');
  return last;
}

/**
 * Reads a regular file inside `root`, at most `maxBytes`. No folder on the way and not the file itself may be
 * a symlink, whenever it is swapped in; the file is looked at before it is opened (so a FIFO or device is not
 * opened in the first place) and checked again as opened (type, size, file system).
 */
export async function readFileInside(root: string, relativePath: string, maxBytes: number): Promise<Buffer> {
  checkMaxBytes(maxBytes);
  const t = parseTarget(root, relativePath, await realRoot(root));
  const folder = await openParent(t, false);
  try {
    const path = entryPath(folder, lastSegment(t));
    let fh: FileHandle;
    try {
      const problem = fileProblem(t, await lstat(path), maxBytes);
      if (problem) throw problem;
      fh = await open(path, READ_FLAGS);
    } catch (err) {
      throw translate(err, t.shown);
    }
    try {
      const st = await fh.stat();
      await checkOpened(t, folder, st);
      const problem = fileProblem(t, st, maxBytes);
      if (problem) throw problem;
      return await readBounded(fh, t, maxBytes, st.size);
    } finally {
      await fh.close();
    }
  } finally {
    closeSync(folder.fd);
  }
}

/** Synchronous twin of readFileInside, for callers that cannot await (same checks, same errors). */
export function readFileInsideSync(root: string, relativePath: string, maxBytes: number): Buffer {
  checkMaxBytes(maxBytes);
  const t = parseTarget(root, relativePath, realRootSync(root));
  const folder = openParentSync(t);
  try {
    const path = entryPath(folder, lastSegment(t));
    let fd: number;
    try {
      const problem = fileProblem(t, lstatSync(path), maxBytes);
      if (problem) throw problem;
      fd = openSync(path, READ_FLAGS);
    } catch (err) {
      throw translate(err, t.shown);
    }
    try {
      const st = fstatSync(fd);
      checkOpenedSync(t, folder, st);
      const problem = fileProblem(t, st, maxBytes);
      if (problem) throw problem;
      const chunks: Buffer[] = [];
      let total = 0;
      for (;;) {
        const want = Math.min(Math.max(CHUNK, st.size + 1 - total), maxBytes + 1 - total);
        if (want <= 0) break;
        const buf = Buffer.allocUnsafe(want);
        const got = readSync(fd, buf, 0, want, total);
        if (got === 0) break;
        chunks.push(buf.subarray(0, got));
        total += got;
      }
      if (total > maxBytes) throw tooBigWhileReading(t, maxBytes);
      return Buffer.concat(chunks, total);
    } finally {
      closeSync(fd);
    }
  } finally {
    closeSync(folder.fd);
  }
}

export interface WriteInsideOptions {
  /** Permission bits of the new file (umask does not apply); 0o644 by default. */
  mode?: number;
}

/**
 * Creates a NEW file inside `root` (missing folders on the way are created, as real folders only) and
 * returns its host path. Never overwrites and never follows a link: an existing name, even a dangling
 * symlink, is refused, so a planted link cannot make the host write elsewhere.
 */
export async function writeFileInside(
  root: string,
  relativePath: string,
  data: string | Uint8Array,
  options: WriteInsideOptions = {},
): Promise<string> {
  const mode = options.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new RangeError(`mode must be within 0o000-0o777, got ${mode}`);
  const t = parseTarget(root, relativePath, await realRoot(root));
  const folder = await openParent(t, true);
  try {
    const path = entryPath(folder, lastSegment(t));
    let fh: FileHandle;
    try {
      fh = await open(path, CREATE_FLAGS, mode);
    } catch (err) {
      throw translate(err, t.shown);
    }
    // From here on the file is ours (EXCL): any failure removes it again, by its name in the folder we hold.
    try {
      await checkOpened(t, folder, await fh.stat());
      await fh.chmod(mode);
      await fh.writeFile(data);
      return join(t.realRoot, ...t.segments);
    } catch (err) {
      await removeIfSame(path, fh);
      throw err;
    } finally {
      await fh.close();
    }
  } finally {
    closeSync(folder.fd);
  }
}

/** Reads a bounded JSON file inside `root` and checks it against `schema`; every failure names the file. */
export async function readJsonInside<T>(root: string, relativePath: string, maxBytes: number, schema: z.ZodType<T>): Promise<T> {
  const data = await readFileInside(root, relativePath, maxBytes);
  return parseJson(data, join(root, relativePath), schema);
}

/** Synchronous twin of readJsonInside. */
export function readJsonInsideSync<T>(root: string, relativePath: string, maxBytes: number, schema: z.ZodType<T>): T {
  return parseJson(readFileInsideSync(root, relativePath, maxBytes), join(root, relativePath), schema);
}

function parseJson<T>(data: Buffer, shown: string, schema: z.ZodType<T>): T {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(data));
  } catch (err) {
    throw new SafeFsError('invalid', shown, `malformed JSON: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new SafeFsError('invalid', shown, `unexpected content: ${problems.join('; ')}`, { cause: parsed.error });
  }
  return parsed.data;
}

/** Reads at most maxBytes + 1 bytes, so a file that grows after fstat is still refused. */
async function readBounded(fh: FileHandle, t: Target, maxBytes: number, sizeHint: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for (;;) {
    const want = Math.min(Math.max(CHUNK, sizeHint + 1 - total), maxBytes + 1 - total);
    if (want <= 0) break;
    const buf = Buffer.allocUnsafe(want);
    const { bytesRead } = await fh.read(buf, 0, want, total);
    if (bytesRead === 0) break;
    chunks.push(buf.subarray(0, bytesRead));
    total += bytesRead;
  }
  if (total > maxBytes) throw tooBigWhileReading(t, maxBytes);
  return Buffer.concat(chunks, total);
}

/** Removes the file we created, but only if `path` still names that very file (not one swapped in since). */
async function removeIfSame(path: string, fh: FileHandle): Promise<void> {
  try {
    const [ours, there] = await Promise.all([fh.stat(), lstat(path)]);
    if (ours.dev === there.dev && ours.ino === there.ino) await unlink(path);
  } catch {
    // Best effort: the refusal that brought us here is what the caller needs to see.
  }
}

export interface ReplaceInsideOptions {
  /** Permission bits of the file written (umask does not apply); 0o644 by default. */
  mode?: number;
  /** Given the file written and any folder created on the way (pincer as root writes for a sandbox's user). */
  owner?: { uid: number; gid: number };
  /** What `check` may be shown of the file there now, at most; a larger one is refused as too big. */
  maxCurrentBytes: number;
  /**
   * Sees what the name holds just before it is replaced (a regular file's bytes; undefined when nothing, a link or
   * something else is there) and throws to refuse: the caller's check that nobody changed it meanwhile.
   */
  check?: (current: Buffer | undefined) => void;
}

/**
 * Replaces (or creates) a file inside `root` as a whole, never writing through a link: the data goes into a new
 * file created exclusively next to it, in the folder held open (each folder on the way opened without following
 * links), is synced, and is then renamed over the name within that same folder. A link planted at the name is
 * replaced itself; its target is never opened. Missing folders on the way are created as real folders.
 */
export async function replaceFileInside(
  root: string,
  relativePath: string,
  data: string | Uint8Array,
  options: ReplaceInsideOptions,
): Promise<void> {
  const mode = options.mode ?? 0o644;
  if (!Number.isInteger(mode) || mode < 0 || mode > 0o777) throw new RangeError(`mode must be within 0o000-0o777, got ${mode}`);
  checkMaxBytes(options.maxCurrentBytes);
  const t = parseTarget(root, relativePath, await realRoot(root));
  const folder = await openParent(t, true);
  try {
    await giveFolder(folder, options.owner);
    const temp = entryPath(folder, `.pincer-save-${randomBytes(8).toString('hex')}`);
    let fh: FileHandle;
    try {
      fh = await open(temp, CREATE_FLAGS, mode);
    } catch (err) {
      throw translate(err, t.shown);
    }
    let renamed = false;
    try {
      try {
        if ((await fh.stat()).dev !== folder.rootDev) throw new SafeFsError('outside', t.shown, 'is on another file system');
        await fh.chmod(mode);
        if (options.owner) await fh.chown(options.owner.uid, options.owner.gid);
        await fh.writeFile(data);
        await fh.sync();
      } finally {
        await fh.close();
      }
      // Checked as late as possible: what was there is read just before it is replaced.
      options.check?.(await currentContent(t, folder, options.maxCurrentBytes));
      if (!folderFdNaming) await checkFolderStill(t, folder);
      try {
        await rename(temp, entryPath(folder, lastSegment(t)));
      } catch (err) {
        const code = errnoOf(err);
        if (code === 'EISDIR' || code === 'ENOTEMPTY' || code === 'EEXIST')
          throw new SafeFsError('not-file', t.shown, 'is a directory', { cause: err });
        throw translate(err, t.shown);
      }
      renamed = true;
      await promisify(fsyncCallback)(folder.fd);
    } finally {
      if (!renamed) await unlink(temp).catch(() => {});
    }
  } finally {
    closeSync(folder.fd);
  }
}

/** A folder made on the way by the host (or the target's own, if the host's) goes to `owner`, by descriptor. */
async function giveFolder(folder: Folder, owner: { uid: number; gid: number } | undefined): Promise<void> {
  if (!owner || folder.depth === 0) return;
  const st = fstatSync(folder.fd);
  if (st.uid === process.geteuid?.() && st.uid !== owner.uid) await promisify(fchownCallback)(folder.fd, owner.uid, owner.gid);
}

/** The regular file at the target's name in the held folder, read without following a link; undefined when none. */
async function currentContent(t: Target, folder: Folder, maxBytes: number): Promise<Buffer | undefined> {
  const path = entryPath(folder, lastSegment(t));
  const there = await lstat(path).catch(() => undefined);
  if (!there?.isFile()) return undefined;
  let fh: FileHandle;
  try {
    fh = await open(path, READ_FLAGS);
  } catch (err) {
    // Swapped for a link or removed since the lstat: nothing regular is there.
    if (errnoOf(err) === 'ELOOP' || errnoOf(err) === 'ENOENT') return undefined;
    throw translate(err, t.shown);
  }
  try {
    const st = await fh.stat();
    if (st.dev !== folder.rootDev) throw new SafeFsError('outside', t.shown, 'is on another file system');
    const problem = fileProblem(t, st, maxBytes);
    if (problem) throw problem;
    return await readBounded(fh, t, maxBytes, st.size);
  } finally {
    await fh.close();
  }
}

/** Without /proc naming, the held folder is named by path: prove the path still leads to it before renaming there. */
async function checkFolderStill(t: Target, folder: Folder): Promise<void> {
  const held = fstatSync(folder.fd);
  const real = await realpath(folder.path).catch(() => undefined);
  const now = real === undefined ? undefined : await stat(real).catch(() => undefined);
  if (real === undefined || now === undefined || now.dev !== held.dev || now.ino !== held.ino) throw changedWhileOpening(t);
  if (folder.depth > 0 && !isStrictlyInside(t.realRoot, real)) throw changedWhileOpening(t);
}

// Host-side access to folders a sandbox can write. Everything there is hostile: symlinks pointing out (or
// swapped in mid-operation), giant or growing files, FIFOs, devices, malformed content.
import { closeSync, constants, fstatSync, lstatSync, openSync, readlinkSync, readSync, realpathSync, type Stats, statSync } from 'node:fs';
import { type FileHandle, lstat, mkdir, open, readlink, realpath, stat, unlink } from 'node:fs/promises';
import { isAbsolute, join, relative, sep } from 'node:path';
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
  /** Why, without the path: for callers that name the file their own way (the agent knows its sandbox path). */
  readonly reason: string;

  constructor(code: SafeFsErrorCode, path: string, reason: string, options?: ErrorOptions) {
    super(`${path}: ${reason}`, options);
    this.code = code;
    this.path = path;
    this.reason = reason;
  }
}

// NOFOLLOW: a link as the last component fails (ELOOP). NONBLOCK: opening a FIFO never waits for a writer.
// NOCTTY: a terminal device can never become ours.
const READ_FLAGS = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
// EXCL with CREAT refuses any existing name, a dangling symlink included, so nothing is ever created through one.
const CREATE_FLAGS =
  constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;
const CHUNK = 64 * 1024;

interface Target {
  realRoot: string;
  segments: string[];
  /** The real root joined with the segments: what gets opened. */
  full: string;
  /** What errors name: the root as given joined with the relative path. */
  shown: string;
}

function parseTarget(root: string, relativePath: string, realRoot: string): Target {
  const segments = splitRelative(root, relativePath);
  return { realRoot, segments, full: join(realRoot, ...segments), shown: join(root, ...segments) };
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

/** Maps the errors a hostile tree can provoke to SafeFsError; anything else (EACCES, EIO) passes through. */
function translate(err: unknown, shown: string): unknown {
  const code = err instanceof Error && 'code' in err ? err.code : undefined;
  switch (code) {
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

/** Refusal for one folder on the way, or undefined when it is a real directory. */
function parentProblem(t: Target, dir: string, st: Stats): SafeFsError | undefined {
  if (st.isSymbolicLink()) return new SafeFsError('symlink', t.shown, `${relative(t.realRoot, dir)} is a symbolic link`);
  if (!st.isDirectory()) return new SafeFsError('missing', t.shown, `${relative(t.realRoot, dir)} is not a directory`);
  return undefined;
}

/** Refusal for the final entry as seen before opening it, or undefined. */
function fileProblem(t: Target, st: Stats, maxBytes: number | undefined): SafeFsError | undefined {
  if (st.isSymbolicLink()) return new SafeFsError('symlink', t.shown, 'is a symbolic link');
  if (!st.isFile()) return new SafeFsError('not-file', t.shown, `is ${describeKind(st)}`);
  if (maxBytes !== undefined && st.size > maxBytes)
    return new SafeFsError('too-big', t.shown, `is ${st.size} bytes, over the ${maxBytes} allowed`);
  return undefined;
}

function outsideError(t: Target, where: string): SafeFsError {
  return new SafeFsError('outside', t.shown, `resolves to ${where}, outside ${t.realRoot}`);
}

const tooBigWhileReading = (t: Target, maxBytes: number) =>
  new SafeFsError('too-big', t.shown, `grew past the ${maxBytes} bytes allowed while being read`);

function isNoProcfs(err: unknown): boolean {
  return err instanceof Error && 'code' in err && err.code === 'ENOENT';
}

/**
 * Reads a regular file inside `root`, at most `maxBytes`. Folders on the way and the file itself must not be
 * symlinks (checked before opening, so a link to a device is never opened), and after opening, the open
 * descriptor itself is checked: its real path (via /proc/self/fd) must be inside realpath(root), which
 * defeats a folder swapped for a symlink between the checks and the open.
 */
export async function readFileInside(root: string, relativePath: string, maxBytes: number): Promise<Buffer> {
  checkMaxBytes(maxBytes);
  const t = parseTarget(root, relativePath, await realRoot(root));
  try {
    await checkParents(t, false);
    const problem = fileProblem(t, await lstat(t.full), maxBytes);
    if (problem) throw problem;
  } catch (err) {
    throw translate(err, t.shown);
  }
  let fh: FileHandle;
  try {
    fh = await open(t.full, READ_FLAGS);
  } catch (err) {
    throw translate(err, t.shown);
  }
  try {
    const st = await verifyOpened(fh, t);
    const problem = fileProblem(t, st, maxBytes);
    if (problem) throw problem;
    return await readBounded(fh, t, maxBytes, st.size);
  } finally {
    await fh.close();
  }
}

/** Synchronous twin of readFileInside, for callers that cannot await (same checks, same errors). */
export function readFileInsideSync(root: string, relativePath: string, maxBytes: number): Buffer {
  checkMaxBytes(maxBytes);
  const t = parseTarget(root, relativePath, realRootSync(root));
  let fd: number;
  try {
    let dir = t.realRoot;
    for (const seg of t.segments.slice(0, -1)) {
      dir = join(dir, seg);
      const problem = parentProblem(t, dir, lstatSync(dir));
      if (problem) throw problem;
    }
    const problem = fileProblem(t, lstatSync(t.full), maxBytes);
    if (problem) throw problem;
    fd = openSync(t.full, READ_FLAGS);
  } catch (err) {
    throw translate(err, t.shown);
  }
  try {
    const st = fstatSync(fd);
    const where = openedPathSync(fd, t, st);
    if (!isStrictlyInside(t.realRoot, where)) throw outsideError(t, where);
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
  let fh: FileHandle;
  try {
    await checkParents(t, true);
    fh = await open(t.full, CREATE_FLAGS, mode);
  } catch (err) {
    throw translate(err, t.shown);
  }
  // From here on the file is ours (EXCL): any failure removes it again, wherever it landed.
  let where: string | undefined;
  try {
    where = await openedPath(fh, t);
    if (!isStrictlyInside(t.realRoot, where)) throw outsideError(t, where);
    await fh.chmod(mode);
    await fh.writeFile(data);
    return where;
  } catch (err) {
    await removeIfSame(where ?? t.full, fh);
    throw err;
  } finally {
    await fh.close();
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

/** Every folder between the root and the file must be a real directory; `create` makes missing ones. */
async function checkParents(t: Target, create: boolean): Promise<void> {
  let dir = t.realRoot;
  for (const seg of t.segments.slice(0, -1)) {
    dir = join(dir, seg);
    let st: Stats;
    try {
      st = await lstat(dir);
    } catch (err) {
      if (!create || !(err instanceof Error && 'code' in err && err.code === 'ENOENT')) throw err;
      // mkdir never follows a link at its last component: a link planted meanwhile makes it fail (EEXIST),
      // and the lstat below then sees the link.
      await mkdir(dir, { mode: 0o755 }).catch((e: unknown) => {
        if (!(e instanceof Error && 'code' in e && e.code === 'EEXIST')) throw e;
      });
      st = await lstat(dir);
    }
    const problem = parentProblem(t, dir, st);
    if (problem) throw problem;
  }
}

/** Checks the open descriptor itself: where it really is, and what it is. */
async function verifyOpened(fh: FileHandle, t: Target): Promise<Stats> {
  const where = await openedPath(fh, t);
  if (!isStrictlyInside(t.realRoot, where)) throw outsideError(t, where);
  return fh.stat();
}

/** The real path of an open descriptor: /proc/self/fd on Linux; elsewhere, the path re-resolved and proven to be the same inode. */
async function openedPath(fh: FileHandle, t: Target): Promise<string> {
  try {
    return await readlink(`/proc/self/fd/${fh.fd}`);
  } catch (err) {
    if (!isNoProcfs(err)) throw err;
  }
  const [st, real] = await Promise.all([fh.stat(), realpath(t.full).catch(() => undefined)]);
  const again = real === undefined ? undefined : await stat(real).catch(() => undefined);
  if (real === undefined || again === undefined || again.dev !== st.dev || again.ino !== st.ino) {
    throw new SafeFsError('outside', t.shown, 'changed while being opened');
  }
  return real;
}

function openedPathSync(fd: number, t: Target, st: Stats): string {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    if (!isNoProcfs(err)) throw err;
  }
  let real: string;
  let again: Stats;
  try {
    real = realpathSync(t.full);
    again = statSync(real);
  } catch {
    throw new SafeFsError('outside', t.shown, 'changed while being opened');
  }
  if (again.dev !== st.dev || again.ino !== st.ino) throw new SafeFsError('outside', t.shown, 'changed while being opened');
  return real;
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

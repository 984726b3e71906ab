// Extra host folders for a group's sandbox, granted only through the owner's allowlist file, which lives
// outside the project and outside every sandbox so no agent can widen its own view.
import { closeSync, constants, fstatSync, openSync, readdirSync, readSync, realpathSync, statSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import type { Mount } from './types.js';

/** The allowlist is a short hand-written file; anything bigger is a mistake or an attack. */
export const MAX_ALLOWLIST_BYTES = 64 * 1024;
/** Where extra mounts appear inside the sandbox, one folder per mount. */
export const EXTRA_MOUNT_DIR = '/workspace/extra';
export const MOUNT_NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;

/** Credential-looking names, refused wherever they appear in a mount's path (whatever the allowlist says). */
export const BUILTIN_BLOCKED_PATTERNS: readonly string[] = [
  '.ssh',
  '.gnupg',
  '.gpg',
  '.aws',
  '.azure',
  '.gcloud',
  '.config/gcloud',
  '.kube',
  '.docker',
  '.env',
  '.env.*',
  '.netrc',
  '.npmrc',
  '.pypirc',
  '.git-credentials',
  'credentials',
  'id_rsa',
  'id_dsa',
  'id_ecdsa',
  'id_ed25519',
  '*.pem',
  '*.key',
  '*.p12',
  '*.pfx',
  'private_key*',
  '.password-store',
  'keychains',
];

/** Entries that mark a folder as a home (or a project with secrets): mounting it would expose them. */
const TOP_LEVEL_SECRETS = ['.ssh', '.aws', '.gnupg', '.env', '.netrc', '.git-credentials', '.password-store'];

export class MountAllowlistError extends Error {
  override readonly name = 'MountAllowlistError';
}

export interface AllowedRoot {
  /** Absolute, `~` expanded; resolved again (realpath) at every validation, since it may appear or move later. */
  path: string;
  allowReadWrite: boolean;
  description?: string;
}

export interface MountAllowlist {
  /** The file this came from: named in errors, and never mountable itself. */
  file: string;
  allowedRoots: AllowedRoot[];
  /** The file's own patterns; the built-in ones always apply on top. */
  blockedPatterns: string[];
  /** Extra mounts of non-main groups are read-only unless this is false. */
  nonMainReadOnly: boolean;
}

export interface ExtraMountRequest {
  hostPath: string;
  name?: string;
  readOnly?: boolean;
}

/** Requests are stored as JSON and written by the owner's agent: checked on the way in. */
export const extraMountRequestSchema = z.strictObject({
  hostPath: z.string().min(1).max(4096),
  name: z
    .string()
    .regex(MOUNT_NAME_RE, 'must be 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit')
    .optional(),
  readOnly: z.boolean().optional(),
}) satisfies z.ZodType<ExtraMountRequest>;

export interface RejectedMount {
  request: ExtraMountRequest;
  reason: string;
}

export interface ExtraMountsResult {
  mounts: Mount[];
  rejected: RejectedMount[];
}

export interface ValidateOptions {
  isMain: boolean;
  /** What `~` means in requests; the current user's home by default. */
  home?: string;
  /** Named when there is no allowlist; the default location otherwise. */
  allowlistPath?: string;
  /** Host paths no mount may be inside of or contain (pincer's data, the project), beyond the allowlist file. */
  protectedPaths?: string[];
  /**
   * Every other group's extra mounts: a folder one of them can write may not hold a mount of another (or of the
   * same group), whose path that sandbox could swap for a link between the check and the mount.
   */
  otherGroups?: Array<{ isMain: boolean; requests: ExtraMountRequest[] }>;
}

export function defaultAllowlistPath(home = homedir()): string {
  return join(home, '.config', 'pincer', 'mount-allowlist.json');
}

const isHomeRelative = (p: string): boolean => p === '~' || p.startsWith('~/');

/** `~` and `~/…` against `home`; other relative forms (including `~user`) are not accepted. */
function expandHome(p: string, home: string): string | undefined {
  if (p === '~') return home;
  if (p.startsWith('~/')) return join(home, p.slice(2));
  return isAbsolute(p) ? p : undefined;
}

function hasControlChar(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

function isValidPattern(p: string): boolean {
  return p.split('/').some((part) => part !== '') && !hasControlChar(p);
}

const rootSchema = z.strictObject({
  path: z
    .string()
    .min(1)
    .refine((p) => isAbsolute(p) || isHomeRelative(p), 'must be an absolute path or start with ~/'),
  allowReadWrite: z.boolean().default(false),
  description: z.string().optional(),
});

const fileSchema = z.strictObject({
  allowedRoots: z.array(rootSchema),
  blockedPatterns: z.array(z.string().refine(isValidPattern, 'must be a non-empty name pattern')).default([]),
  nonMainReadOnly: z.boolean().default(true),
});

/**
 * Reads the allowlist at `path`. No file means no extra mounts at all (undefined); a file that cannot be
 * trusted to mean what the owner intended throws, naming the file and the problem.
 */
export function loadMountAllowlist(path: string, home = homedir()): MountAllowlist | undefined {
  const raw = readBounded(path);
  if (raw === undefined) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new MountAllowlistError(`mount allowlist ${path}: malformed JSON: ${errorMessage(err)}`);
  }
  const parsed = fileSchema.safeParse(json);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : '(top level)'}: ${i.message}`);
    throw new MountAllowlistError(`mount allowlist ${path}: ${problems.join('; ')}`);
  }
  return {
    file: resolve(path),
    allowedRoots: parsed.data.allowedRoots.map((r) => ({
      // expandHome cannot fail here: the schema only lets absolute and ~/ paths through.
      path: resolve(expandHome(r.path, home) ?? r.path),
      allowReadWrite: r.allowReadWrite,
      ...(r.description === undefined ? {} : { description: r.description }),
    })),
    blockedPatterns: parsed.data.blockedPatterns,
    nonMainReadOnly: parsed.data.nonMainReadOnly,
  };
}

/** The file's bytes, or undefined when it does not exist; bounded, and never blocks on a FIFO. */
function readBounded(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return undefined;
    throw new MountAllowlistError(`mount allowlist ${path}: cannot be opened: ${errorMessage(err)}`);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new MountAllowlistError(`mount allowlist ${path}: not a regular file`);
    if (st.size > MAX_ALLOWLIST_BYTES) throw new MountAllowlistError(`mount allowlist ${path}: larger than ${MAX_ALLOWLIST_BYTES} bytes`);
    // One byte more than allowed, so a file that grew after fstat is still caught.
    const buf = Buffer.alloc(MAX_ALLOWLIST_BYTES + 1);
    let n = 0;
    while (n < buf.length) {
      const got = readSync(fd, buf, n, buf.length - n, n);
      if (got === 0) break;
      n += got;
    }
    if (n > MAX_ALLOWLIST_BYTES) throw new MountAllowlistError(`mount allowlist ${path}: larger than ${MAX_ALLOWLIST_BYTES} bytes`);
    return buf.subarray(0, n);
  } finally {
    closeSync(fd);
  }
}

interface Pattern {
  source: string;
  /** One matcher per path component; a pattern like `.config/gcloud` spans consecutive components. */
  parts: RegExp[];
}

function compilePattern(source: string): Pattern {
  const parts = source
    .split('/')
    .filter((p) => p !== '')
    .map((p) => new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`, 'i'));
  return { source, parts };
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The first component (or run of components) of `p` that a pattern matches, with that pattern. */
function findBlocked(p: string, patterns: Pattern[]): { component: string; pattern: string } | undefined {
  const components = p.split(sep).filter((c) => c !== '');
  for (const pattern of patterns) {
    const n = pattern.parts.length;
    for (let i = 0; i + n <= components.length; i++) {
      const run = components.slice(i, i + n);
      if (pattern.parts.every((re, j) => re.test(run[j] ?? ''))) return { component: run.join('/'), pattern: pattern.source };
    }
  }
  return undefined;
}

/** True when `child` is `parent` or below it; `/notes-evil` is not inside `/notes`. */
function isInsideOrSame(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

function realpathOrUndefined(p: string): string | undefined {
  try {
    return realpathSync(p);
  } catch {
    return undefined;
  }
}

/**
 * Turns the owner's requests into mounts, each checked against the allowlist. Checks run on the resolved
 * (realpath) host path and the returned mounts use it, so a symlink cannot smuggle a different folder in.
 * Call this right before every sandbox start rather than caching the result: a folder a sandbox can write
 * may be swapped for a symlink between runs.
 */
export function validateExtraMounts(
  requests: ExtraMountRequest[],
  allowlist: MountAllowlist | undefined,
  opts: ValidateOptions,
): ExtraMountsResult {
  const home = opts.home ?? homedir();
  if (allowlist === undefined) {
    const where = opts.allowlistPath ?? defaultAllowlistPath(home);
    const reason = `no mount allowlist at ${where}: extra mounts are disabled until the owner creates it`;
    return { mounts: [], rejected: requests.map((request) => ({ request, reason })) };
  }
  const ctx: CheckContext = {
    allowlist,
    isMain: opts.isMain,
    home,
    // Roots that do not exist (yet) are kept in the allowlist but match nothing.
    roots: allowlist.allowedRoots.flatMap((r) => {
      const real = realpathOrUndefined(r.path);
      return real === undefined ? [] : [{ ...r, real }];
    }),
    patterns: [...BUILTIN_BLOCKED_PATTERNS, ...allowlist.blockedPatterns].map(compilePattern),
    guarded: [allowlist.file, ...(opts.protectedPaths ?? [])].flatMap((p) => {
      const real = realpathOrUndefined(p);
      return real === undefined ? [] : [real];
    }),
    names: new Set<string>(),
  };
  const accepted: Array<{ request: ExtraMountRequest; mount: Mount }> = [];
  const rejected: RejectedMount[] = [];
  for (const request of requests) {
    const result = checkRequest(request, ctx);
    if (typeof result === 'string') rejected.push({ request, reason: result });
    else accepted.push({ request, mount: result });
  }
  // A folder some sandbox can write may hold no other mount: that sandbox could swap the inner folder for a link
  // between the host's check and the mount. Writable mounts of the other groups count, as checked for them.
  const writable = [
    ...accepted.filter((a) => a.mount.writable).map((a) => a.mount.hostPath),
    ...(opts.otherGroups ?? []).flatMap((g) =>
      validateExtraMounts(g.requests, allowlist, { ...opts, isMain: g.isMain, otherGroups: [] })
        .mounts.filter((m) => m.writable)
        .map((m) => m.hostPath),
    ),
  ];
  const mounts: Mount[] = [];
  for (const { request, mount } of accepted) {
    const around = writable.find((w) => w !== mount.hostPath && isInsideOrSame(w, mount.hostPath));
    if (around === undefined) mounts.push(mount);
    else
      rejected.push({
        request,
        reason: `${mount.hostPath} lies inside ${around}, an extra mount a sandbox can write, which could swap it for a link before it is mounted: mount ${around} itself, or make that mount read-only`,
      });
  }
  return { mounts, rejected };
}

interface CheckContext {
  allowlist: MountAllowlist;
  isMain: boolean;
  home: string;
  roots: Array<AllowedRoot & { real: string }>;
  patterns: Pattern[];
  guarded: string[];
  names: Set<string>;
}

/** The allowed root a real path lies in: the deepest that holds it. */
function rootOf(real: string, ctx: CheckContext): CheckContext['roots'][number] | undefined {
  let root: CheckContext['roots'][number] | undefined;
  for (const r of ctx.roots) if (isInsideOrSame(r.real, real) && (root === undefined || r.real.length > root.real.length)) root = r;
  return root;
}

/** The mount, or the reason (one line) it is refused. */
function checkRequest(request: ExtraMountRequest, ctx: CheckContext): Mount | string {
  const raw = request.hostPath;
  if (typeof raw !== 'string' || raw === '') return 'hostPath is empty';
  // Control characters and separators runtimes use in mount specs (`src:dst:ro`, `type=bind,src=…`).
  if (hasControlChar(raw)) return 'hostPath contains control characters';
  if (raw.split('/').includes('..')) return `hostPath ${raw} contains a .. segment`;
  const expanded = expandHome(raw, ctx.home);
  if (expanded === undefined) return `hostPath ${raw} must be absolute or start with ~/`;
  const given = resolve(expanded);

  let real: string;
  try {
    real = realpathSync(given);
  } catch (err) {
    return errorCode(err) === 'ENOENT' ? `${given} does not exist` : `${given} cannot be resolved (${errorCode(err) ?? errorMessage(err)})`;
  }
  if (hasControlChar(real) || /[,:]/.test(real))
    return `${real} contains a comma, colon or control character, which mount specs cannot carry safely`;

  // Both the path as asked for and where it leads: either naming a secret is enough to refuse.
  for (const p of [given, real]) {
    const hit = findBlocked(p, ctx.patterns);
    if (hit) return `${p} is refused: "${hit.component}" matches blocked pattern "${hit.pattern}"`;
  }

  const root = rootOf(real, ctx);
  if (root === undefined) {
    const via = real === given ? '' : ` (resolved from ${given})`;
    return `${real}${via} is outside every allowed root in ${ctx.allowlist.file}`;
  }

  let isDir: boolean;
  try {
    isDir = statSync(real).isDirectory();
  } catch (err) {
    return `${real} cannot be inspected (${errorCode(err) ?? errorMessage(err)})`;
  }
  if (!isDir) return `${real} is not a directory`;

  for (const g of ctx.guarded) {
    if (isInsideOrSame(real, g)) return `${real} would expose ${g}, which no sandbox may see`;
    if (isInsideOrSame(g, real)) return `${real} is inside ${g}, which no sandbox may see`;
  }

  let entries: string[];
  try {
    entries = readdirSync(real);
  } catch (err) {
    return `${real} cannot be listed (${errorCode(err) ?? errorMessage(err)})`;
  }
  const secret = entries.find((e) => TOP_LEVEL_SECRETS.includes(e.toLowerCase()));
  if (secret !== undefined) return `${real} contains ${secret} at its top level; mount a narrower folder`;

  const name = request.name ?? basename(given);
  if (!MOUNT_NAME_RE.test(name)) {
    const hint = request.name === undefined ? '; give the mount a name' : '';
    return `mount name "${name}" must be 1-64 letters, digits, dots, dashes or underscores, starting with a letter or digit${hint}`;
  }
  if (ctx.names.has(name)) return `mount name "${name}" is already used by another extra mount`;
  ctx.names.add(name);

  const writable = root.allowReadWrite && request.readOnly !== true && (ctx.isMain || !ctx.allowlist.nonMainReadOnly);
  return { hostPath: real, sandboxPath: posix.join(EXTRA_MOUNT_DIR, name), writable };
}

function errorCode(err: unknown): string | undefined {
  return err instanceof Error && 'code' in err && typeof err.code === 'string' ? err.code : undefined;
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

// The host side: Node, the state folder (owner, mode, token, store, free space), the port, the owner's
// mount allowlist and the groups' egress policies. Nothing here changes the state of a running pincer.
import { accessSync, constants, existsSync, statfsSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';
import type { Config } from '../../config.js';
import { describePolicy } from '../../proxy/egress-policy.js';
import { loadMountAllowlist } from '../../sandbox/mount-allowlist.js';
import { Store } from '../../store/index.js';
import { type Check, fail, ok, oneLine, warn } from './check.js';

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

/** A path as a shell word, for fix lines a person copies. */
export function shellWord(p: string): string {
  return /^[\w@%+=:,./-]+$/.test(p) ? p : `'${p.replaceAll("'", "'\\''")}'`;
}

export function nodeCheck(version = process.versions.node): Check {
  const major = Number(version.split('.')[0]);
  return major >= 20
    ? ok('node', `v${version}`)
    : fail(
        'node',
        `v${version} is too old: pincer needs Node.js 20 or newer`,
        'install Node.js 20 LTS or newer (https://nodejs.org, or: nvm install 20)',
      );
}

function nearestExisting(path: string): string {
  let p = path;
  while (!existsSync(p) && dirname(p) !== p) p = dirname(p);
  return p;
}

const uid = (): number | undefined => process.getuid?.();
const mode = (m: number): string => `0${(m & 0o777).toString(8)}`;

/** PINCER_HOME: there (or creatable), a folder, the user's own, nobody else may write it. */
export function stateDirCheck(config: Config): Check {
  const home = config.home;
  const q = shellWord(home);
  if (!existsSync(home)) {
    const parent = nearestExisting(home);
    try {
      accessSync(parent, constants.W_OK | constants.X_OK);
      return ok('state dir', `${home} does not exist yet: pincer creates it at start (in ${parent}, which is writable)`);
    } catch {
      return fail(
        'state dir',
        `${home} does not exist, and ${parent} is not writable for this user, so pincer cannot create it`,
        `create it for this user: sudo install -d -o "$(id -un)" -m 700 ${q}, or set PINCER_HOME to a folder you can write`,
      );
    }
  }
  const st = statSync(home);
  if (!st.isDirectory()) return fail('state dir', `${home} is not a folder`, 'set PINCER_HOME to a folder (default ./data)');
  const me = uid();
  if (me !== undefined && st.uid !== me) {
    return fail(
      'state dir',
      `${home} belongs to uid ${st.uid}, not to this user (uid ${me})`,
      `run pincer as the user that owns it, or take it over: sudo chown -R "$(id -un)" ${q}`,
    );
  }
  if (st.mode & 0o022) {
    return fail(
      'state dir',
      `${home} is mode ${mode(st.mode)}: others may write pincer's state (its store, token, group folders)`,
      // As root the sandbox users must pass through it (0711, what pincer sets at start); otherwise only its owner.
      `chmod ${me === 0 ? '711' : '700'} ${q}`,
    );
  }
  try {
    accessSync(home, constants.W_OK | constants.X_OK);
  } catch {
    return fail('state dir', `${home} is not writable`, `chmod u+rwx ${q}`);
  }
  return ok('state dir', `${home} (yours, mode ${mode(st.mode)})`);
}

/**
 * As root each group's sandbox runs as its own user, and bubblewrap resolves the group's folders as that user:
 * every folder above PINCER_HOME must let others pass (x). PINCER_HOME itself pincer makes 0711 at start.
 */
export function sandboxPathCheck(config: Config): Check[] {
  if (uid() !== 0) return [];
  const blocked: string[] = [];
  // Folders pincer creates on the way are 0755; the ones that exist are what they are.
  const first = existsSync(config.home) ? dirname(config.home) : nearestExisting(config.home);
  for (let p = first; ; p = dirname(p)) {
    if ((statSync(p).mode & 0o001) === 0) blocked.push(p);
    if (dirname(p) === p) break;
  }
  if (blocked.length === 0)
    return [ok('state dir path', `sandbox users (uid ${config.sandboxUidBase} and up) can pass through every folder above it`)];
  const list = blocked.reverse().map(shellWord).join(' ');
  return [
    fail(
      'state dir path',
      `pincer runs as root, so each sandbox runs as its own user, which cannot pass through ${blocked.join(', ')} to reach its folders`,
      `chmod o+x ${list} (lets others pass, not list), or set PINCER_HOME to a folder under a passable path (e.g. /var/lib/pincer)`,
    ),
  ];
}

/** The API token file: 0600 and the user's own; unused when PINCER_TOKEN is set. */
export function tokenCheck(config: Config): Check {
  if (config.token) return ok('token', 'PINCER_TOKEN is set (the token file is not used)');
  const path = join(config.home, 'token');
  if (!existsSync(path)) return ok('token', `${path} is created at the first start (mode 0600)`);
  const st = statSync(path);
  const q = shellWord(path);
  if (!st.isFile()) return fail('token', `${path} is not a file`, `remove it (rm -r ${q}); pincer makes a new token at start`);
  const me = uid();
  if (me !== undefined && st.uid !== me) {
    return fail('token', `${path} belongs to uid ${st.uid}, not to this user`, `sudo chown "$(id -un)" ${q} && chmod 600 ${q}`);
  }
  if (st.mode & 0o077) {
    return fail(
      'token',
      `${path} is mode ${mode(st.mode)}: others may read the API token`,
      `chmod 600 ${q} (and consider a new token: rm ${q}, restart pincer)`,
    );
  }
  return ok('token', `${path} (mode ${mode(st.mode)})`);
}

/** Opens the store (never creates it: that is the first start's job), and lists the groups' egress policies. */
export function storeChecks(config: Config): Check[] {
  const db = join(config.home, 'pincer.db');
  if (!existsSync(db)) return [ok('store', `${db} is created at the first start`)];
  let store: Store;
  try {
    store = new Store(db);
  } catch (err) {
    const why = oneLine(err);
    const fix = /NODE_MODULE_VERSION|compiled against|invalid ELF|bindings/i.test(why)
      ? 'the SQLite module was built for another Node.js: npm rebuild better-sqlite3'
      : /newer than this pincer/.test(why)
        ? 'this pincer is older than the one that wrote the store: update pincer (git pull && npm install)'
        : /readonly|permission|EACCES|CANTOPEN/i.test(why)
          ? `give it back to this user: sudo chown -R "$(id -un)" ${shellWord(config.home)}`
          : 'see docs/TROUBLESHOOTING.md; the store is one SQLite file, back it up before you touch it';
    return [fail('store', `${db} cannot be opened: ${why}`, fix)];
  }
  try {
    const groups = store.groups.list();
    const policies = groups.map((g) => `${g.folder}: ${describePolicy(g.egressPolicy)}`);
    return [ok('store', `${db} opens (${groups.length} group(s))`), ok('egress policies', policies.join('; ') || 'no groups yet')];
  } finally {
    store.close();
  }
}

/** Free space where the state lives: the store, group folders and transcripts grow there. */
export function diskCheck(
  config: Config,
  statfs: (path: string) => { bavail: number | bigint; bsize: number | bigint } = statfsSync,
): Check {
  const at = nearestExisting(config.home);
  let free: number;
  try {
    const s = statfs(at);
    free = Number(s.bavail) * Number(s.bsize);
  } catch (err) {
    return warn('disk', `free space of ${at} unknown: ${oneLine(err)}`);
  }
  const shown = free >= GIB ? `${(free / GIB).toFixed(1)} GiB` : `${Math.round(free / MIB)} MiB`;
  if (free < 100 * MIB) {
    return fail(
      'disk',
      `only ${shown} free on the filesystem of ${at}: the store and agents' files need room`,
      'free some space there, or set PINCER_HOME to a bigger filesystem',
    );
  }
  if (free < GIB) return warn('disk', `${shown} free on the filesystem of ${at}`, 'less than 1 GiB: free some space before it runs out');
  return ok('disk', `${shown} free on the filesystem of ${at}`);
}

function tryListen(host: string, port: number): Promise<NodeJS.ErrnoException | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (err: NodeJS.ErrnoException) => resolve(err));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(undefined)));
  });
}

/** A port that is free right now on `host`, to suggest. */
async function someFreePort(host: string): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(undefined));
    server.listen(0, host, () => {
      const a = server.address();
      server.close(() => resolve(a && typeof a === 'object' ? a.port : undefined));
    });
  });
}

/** The address to reach a listener on `host` from here: a wildcard listens on loopback too. */
function reachable(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') ? `[${host}]` : host;
}

async function pincerAnswers(host: string, port: number): Promise<boolean> {
  try {
    const res = await fetch(`http://${reachable(host)}:${port}/healthz`, { signal: AbortSignal.timeout(2000) });
    const body = (await res.json().catch(() => undefined)) as { ok?: unknown } | undefined;
    return res.ok && body?.ok === true;
  } catch {
    return false;
  }
}

/** PINCER_HOST:PINCER_PORT free, or held by a running pincer (fine), or by something else (not fine). */
export async function portCheck(config: Config): Promise<Check> {
  const { host, port } = config;
  if (port === 0) return ok('port', 'PINCER_PORT=0: a free port is chosen at each start');
  const where = `${host}:${port}`;
  const err = await tryListen(host, port);
  if (!err) return ok('port', `${where} is free`);
  if (err.code === 'EADDRINUSE') {
    if (await pincerAnswers(host, port)) return ok('port', `pincer is already running there (${where} answers /healthz)`);
    const other = await someFreePort(host);
    return fail(
      'port',
      `${where} is in use by another program (it does not answer like pincer)`,
      `set PINCER_PORT to a free port in .env${other ? ` (e.g. PINCER_PORT=${other})` : ''}, or stop what listens there (ss -ltnp 'sport = :${port}')`,
    );
  }
  if (err.code === 'EACCES') {
    return fail('port', `${where}: listening below port 1024 needs privileges`, 'set PINCER_PORT to 1024 or above (the default is 7477)');
  }
  if (err.code === 'EADDRNOTAVAIL' || err.code === 'ENOTFOUND' || err.code === 'EAI_AGAIN') {
    return fail(
      'port',
      `${host} is not an address of this machine (${err.code})`,
      'set PINCER_HOST to 127.0.0.1 (the default) or an address this machine has',
    );
  }
  return fail(
    'port',
    `cannot listen on ${where}: ${oneLine(err)}`,
    'set PINCER_HOST / PINCER_PORT to an address and port this machine can listen on',
  );
}

export function mountAllowlistCheck(path: string): Check {
  try {
    const allowlist = loadMountAllowlist(path);
    const detail = allowlist
      ? `${path}: ${allowlist.allowedRoots.length} allowed root(s)`
      : `${path} does not exist: no extra mounts (that is the safe default)`;
    return ok('mount allowlist', detail);
  } catch (err) {
    return warn(
      'mount allowlist',
      `${oneLine(err)}: extra mounts are off until it is fixed`,
      `correct ${path} (its format: docs/SECURITY.md), or remove it for no extra mounts`,
    );
  }
}

// Runs `pincer start` as a child process (for a clean memory figure, and for an HTTP client that does not
// share pincer's event loop). The built `dist/` is preferred: under tsx, the compiler and its source maps
// would be counted as pincer's memory. A stale dist is rebuilt first (`tsc -p .`, as `npm run build`).
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { launchPincer, type PincerProcess } from '../../test/helpers/pincer-process.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const DIST_MAIN = join(ROOT, 'dist', 'cli', 'main.js');

export interface Entry {
  kind: 'dist' | 'tsx';
  /** How the child is started (after `node`). */
  args: string[];
  /** What happened on the way (a rebuild, why tsx). */
  note: string;
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) newest = Math.max(newest, newestSource(path));
    else if (entry.name.endsWith('.ts')) newest = Math.max(newest, statSync(path).mtimeMs);
  }
  return newest;
}

const distFresh = () => existsSync(DIST_MAIN) && statSync(DIST_MAIN).mtimeMs >= newestSource(join(ROOT, 'src'));

function build(): Promise<string | undefined> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', '.'],
      { cwd: ROOT, env: childEnv({}), timeout: 180_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout) => resolve(err ? (stdout.trim().split('\n')[0] ?? err.message) : undefined),
    );
  });
}

let chosen: Promise<Entry> | undefined;

/** The built CLI when it is (or can be made) current with src/, else the sources under tsx. Decided once per run. */
export function pincerEntry(): Promise<Entry> {
  chosen ??= (async (): Promise<Entry> => {
    const dist: Omit<Entry, 'note'> = { kind: 'dist', args: [DIST_MAIN, 'start'] };
    if (distFresh()) return { ...dist, note: 'dist/ was current' };
    const started = Date.now();
    const error = await build();
    // tsc emits even when it reports type errors (someone's edit in progress): a fresh dist is still the code of src/.
    if (distFresh())
      return { ...dist, note: `dist/ rebuilt (${((Date.now() - started) / 1000).toFixed(0)} s)${error ? `; tsc reported: ${error}` : ''}` };
    return {
      kind: 'tsx',
      // By absolute URL: the child runs in its own home, not in the project.
      args: ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href, join(ROOT, 'src', 'cli', 'main.ts'), 'start'],
      note: `dist/ could not be built (${error ?? 'no output'}): run under tsx, which adds its own memory`,
    };
  })();
  return chosen;
}

/**
 * The environment of a child: only what it needs, never NODE_EXTRA_CA_CERTS (loading the CA bundle adds
 * ~85 ms to every node start on these machines) nor the developer's credentials.
 */
export function childEnv(extra: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin', LANG: 'C.UTF-8' };
  if (process.env.HOME) env.HOME = process.env.HOME;
  return { ...env, ...extra };
}

/** A pincer child (see PincerProcess) and how it was started. */
export interface PincerChild extends PincerProcess {
  entry: Entry;
}

/**
 * Starts pincer with exactly `env` (plus PATH/HOME) in its own process group; resolves once /healthz answers.
 * It runs in `home` (its PINCER_HOME), so that a developer's `.env` in the project is not read.
 */
export async function startPincerChild(home: string, env: Record<string, string>, port: number, readyMs = 30_000): Promise<PincerChild> {
  const entry = await pincerEntry();
  const child = await launchPincer({
    args: entry.args,
    cwd: home,
    env: childEnv({ ...env, PINCER_HOME: home, PINCER_PORT: String(port) }),
    port,
    readyTimeoutMs: readyMs,
    pollMs: 25,
  });
  return { ...child, entry };
}

// Runs the real `pincer start` as a child process in its own process group, so a test can SIGKILL it
// (and every process it started) the way a lost machine would, then start it again on the same home.
// The benchmarks start their pincer child through `launchPincer` too (bench/lib/pincer-child.ts).
import { type ChildProcess, spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** What the child wrote last (stdout and stderr, interleaved): enough to tell why it failed. */
const OUTPUT_TAIL_CHARS = 16_000;

/** A port nobody listens on right now (listened on, then closed). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (!address || typeof address === 'string') throw new Error('no port was assigned');
  return address.port;
}

export interface PincerProcess {
  pid: number;
  /** Resolves when the process exited (with its code, or the signal that ended it). */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** The newest output of the child, for failure messages. */
  output(): string;
  /** SIGKILL to the whole process group: pincer, its agents, tsx's helpers. Resolves once pincer is gone. */
  kill(): Promise<void>;
  /** SIGTERM (pincer's orderly stop); SIGKILL to the group when it takes longer than `graceMs`. */
  stop(graceMs?: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** How to start a pincer child: `node <args>` in `cwd` with exactly `env`, serving on `port`. */
export interface PincerLaunch {
  /** The arguments after `node`. */
  args: string[];
  cwd: string;
  env: Record<string, string>;
  port: number;
  readyTimeoutMs?: number;
  /** How often /healthz is asked while pincer starts. */
  pollMs?: number;
}

/**
 * Starts `node --import tsx src/cli/main.ts start` with exactly `env` (nothing of the developer's own
 * environment leaks in) and resolves once `GET /healthz` answers on `port`.
 */
export function spawnPincer(env: Record<string, string>, port: number, readyTimeoutMs = 30_000): Promise<PincerProcess> {
  return launchPincer({ args: ['--import', 'tsx', 'src/cli/main.ts', 'start'], cwd: ROOT, env, port, readyTimeoutMs });
}

/** Starts pincer as `launch` says, in its own process group, and resolves once `GET /healthz` answers. */
export async function launchPincer(launch: PincerLaunch): Promise<PincerProcess> {
  const { args, cwd, env, port, readyTimeoutMs = 30_000, pollMs = 50 } = launch;
  const child: ChildProcess = spawn(process.execPath, args, {
    cwd,
    env,
    // Its own process group: one kill(-pid) reaches every process it started.
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const pid = child.pid;
  if (pid === undefined) throw new Error('pincer did not start (no pid)');
  let tail = '';
  const collect = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_CHARS);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  let gone = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      gone = true;
      resolve({ code, signal });
    });
  });

  const killGroup = () => {
    try {
      process.kill(-pid, 'SIGKILL');
    } catch (err) {
      // ESRCH: the group is empty already.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  };
  const handle: PincerProcess = {
    pid,
    exited,
    output: () => tail,
    async kill() {
      killGroup();
      await exited;
    },
    async stop(graceMs = 15_000) {
      if (!gone) child.kill('SIGTERM');
      const timer = setTimeout(killGroup, graceMs);
      const result = await exited;
      clearTimeout(timer);
      // Whatever it left in its group (it should be nothing) goes too.
      killGroup();
      return result;
    },
  };

  const deadline = Date.now() + readyTimeoutMs;
  while (Date.now() < deadline) {
    if (gone) throw new Error(`pincer exited before it was ready:\n${tail}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1_000) });
      await res.body?.cancel();
      if (res.ok) return handle;
    } catch {
      // Not listening yet.
    }
    await sleep(pollMs);
  }
  await handle.kill();
  throw new Error(`pincer was not ready within ${readyTimeoutMs} ms:\n${tail}`);
}

/**
 * The whole environment of a pincer child under test: its home, port, API token and the fake model, with the
 * real-looking key the proxy must keep out of the sandbox; `extra` adds or overrides (a channel, a timeout).
 */
export function pincerChildEnv(o: {
  home: string;
  port: number;
  token: string;
  modelUrl: string;
  key: string;
  extra?: Record<string, string>;
}): Record<string, string> {
  return {
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? o.home,
    PINCER_HOME: o.home,
    PINCER_PORT: String(o.port),
    PINCER_TOKEN: o.token,
    ANTHROPIC_API_KEY: o.key,
    ANTHROPIC_BASE_URL: o.modelUrl,
    TZ: 'Europe/Berlin',
    LOG_LEVEL: 'warn',
    ...o.extra,
  };
}

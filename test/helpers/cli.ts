// Runs the real `pincer` CLI as a child process against a running pincer (a test harness).
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const TOKEN = 'test-token-0123456789';
const run = promisify(execFile);

export interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `pincer …`; only the variables it needs, so the developer's own PINCER_* cannot leak in, and `env.extra`
 * (an EDITOR, say).
 */
export async function pincer(env: { port: number; home: string; extra?: Record<string, string> }, ...args: string[]): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], {
      cwd: ROOT,
      timeout: 30_000,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '',
        PINCER_PORT: String(env.port),
        PINCER_TOKEN: TOKEN,
        PINCER_HOME: env.home,
        TZ: 'Europe/Berlin',
        ...env.extra,
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

// 6. Host memory: the resident set of the pincer process (run as a child from the built dist/, so neither tsx
// nor this suite is counted), idle after start and with N live sessions; the agents' memory apart.
//
// The agents are found as the descendants of the pincer process in /proc: each sandbox is started by pincer
// (setpriv/prlimit → bwrap → bwrap's init in the new PID namespace → the bridge's socat relays and Claude
// Code), and host /proc shows every one of them with its host pid and parent, whatever namespace it is in.
// That holds for bubblewrap; a container runtime's processes would be children of its daemon instead.
// RSS counts pages shared between processes (the Claude Code binary, libraries) once per process, so the
// agents' total is also given as PSS, which divides each shared page among its sharers.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isAgentTurn, startFakeModel } from '../test/helpers/fake-model.js';
import { freePort } from '../test/helpers/pincer-process.js';
import { Api } from './lib/api.js';
import { childEnv, startPincerChild } from './lib/pincer-child.js';
import { descendants, pssMb, rssMb } from './lib/proc.js';
import { type Row, type Section, section } from './lib/report.js';
import { pincerEnv, QUICK, SIZES } from './lib/settings.js';
import { sleep } from './lib/wait.js';

const TARGET_MB = 120;
const TOKEN = 'bench-token-0123456789';
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** The libraries pincer imports at start, in layers: each layer's process imports it and every layer above. */
const LAYERS: Array<[string, string[]]> = [
  ['node alone', []],
  [
    '+ store, HTTP, logging, config libraries',
    [
      'better-sqlite3',
      'fastify',
      '@fastify/websocket',
      '@fastify/cookie',
      'ws',
      'pino',
      'zod',
      'croner',
      'commander',
      'dotenv',
      'ipaddr.js',
    ],
  ],
  ['+ Claude Agent SDK', ['@anthropic-ai/claude-agent-sdk']],
  ['+ grammY (Telegram)', ['grammy']],
  ['+ Bolt (Slack)', ['@slack/bolt']],
  ['+ discord.js', ['discord.js']],
];

/** RSS of a bare node process that imported `modules` (from the project, without pincer's own code), in MB. */
function importRss(modules: string[]): Promise<number> {
  const script = `${modules.map((m) => `await import(${JSON.stringify(m)});`).join('')}
await new Promise((r) => setTimeout(r, 300));
process.stdout.write(String(process.memoryUsage().rss));`;
  return new Promise((resolve, reject) => {
    execFile(process.execPath, ['--input-type=module', '-e', script], { cwd: ROOT, env: childEnv({}), timeout: 30_000 }, (err, stdout) =>
      err ? reject(err) : resolve(Number(stdout) / 2 ** 20),
    );
  });
}

/** What a process holding pincer's libraries costs before pincer's own code runs, layer by layer (median of 3). */
async function composition(): Promise<Row[]> {
  const rows: Row[] = [];
  const modules: string[] = [];
  for (const [label, layer] of LAYERS) {
    modules.push(...layer);
    const samples = [await importRss(modules), await importRss(modules), await importRss(modules)];
    rows.push({ metric: label, unit: 'MB', samples });
  }
  return rows;
}

/** How long the idle pincer is watched after its start, in seconds. */
const IDLE_WATCH_S = QUICK ? 10 : 40;

/** [seconds since start, RSS MB], once a second for `seconds`. */
async function idleSeries(pid: number, seconds: number): Promise<Array<[number, number]>> {
  const out: Array<[number, number]> = [];
  for (let t = 1; t <= seconds; t++) {
    await sleep(1_000);
    const mb = rssMb(pid);
    if (mb !== undefined) out.push([t, mb]);
  }
  return out;
}

/** The largest fall of RSS from one second to the next (over 5 MB), if any. */
function biggestDrop(series: Array<[number, number]>): { at: number; from: number; to: number } | undefined {
  let best: { at: number; from: number; to: number } | undefined;
  for (let i = 1; i < series.length; i++) {
    const [, from] = series[i - 1] as [number, number];
    const [at, to] = series[i] as [number, number];
    if (from - to > 5 && (!best || from - to > best.from - best.to)) best = { at, from, to };
  }
  return best;
}

/** RSS of a process, read `count` times `everyMs` apart. */
async function rssSamples(pid: number, count: number, everyMs: number): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const v = rssMb(pid);
    if (v !== undefined) out.push(v);
    await sleep(everyMs);
  }
  return out;
}

const sum = (values: Array<number | undefined>) => values.reduce<number>((a, v) => a + (v ?? 0), 0);

export async function memorySection(sandboxSkip: string | undefined): Promise<Section> {
  const n = SIZES.liveSessions;
  const s = section('memory', 6, `host memory, idle and with ${n} live sessions`);
  const home = mkdtempSync(join(tmpdir(), 'pincer-bench-mem-'));
  const fake = await startFakeModel((req) => (isAgentTurn(req) ? { text: 'ok' } : { text: 'side' }));
  const port = await freePort();
  const child = await startPincerChild(
    home,
    {
      PINCER_TOKEN: TOKEN,
      TZ: 'UTC',
      ANTHROPIC_API_KEY: 'sk-ant-bench-not-a-real-key',
      ANTHROPIC_BASE_URL: fake.url,
      PINCER_IDLE_TIMEOUT_SEC: '600',
      MAX_CONCURRENT_AGENTS: String(Math.max(3, n)),
      ...pincerEnv(),
    },
    port,
  );
  try {
    s.notes.push(
      `pincer ran as a child process from ${child.entry.kind === 'dist' ? 'dist/ (node dist/cli/main.js start)' : 'src/ under tsx'}: ${child.entry.note}`,
    );
    // RSS once a second while pincer idles: right after start it still holds the garbage of starting up, which the
    // first full garbage collection returns (here some 20–30 s in); the settled figure is the host's idle cost.
    // The layer table is measured meanwhile, in other processes.
    const [series, layers] = await Promise.all([idleSeries(child.pid, IDLE_WATCH_S), composition()]);
    const early = series.filter(([t]) => t <= 3).map(([, mb]) => mb);
    const settled = series.slice(-10).map(([, mb]) => mb);
    s.rows.push(
      { metric: 'pincer process, idle, 1–3 s after start (VmRSS)', unit: 'MB', samples: early },
      {
        metric: `pincer process, idle, settled (${IDLE_WATCH_S - 9}–${IDLE_WATCH_S} s after start)`,
        unit: 'MB',
        samples: settled,
        target: { stat: 'median', op: '<=', limit: TARGET_MB },
      },
    );
    const step = biggestDrop(series);
    if (step)
      s.notes.push(
        `idle RSS fell from ${step.from.toFixed(1)} to ${step.to.toFixed(1)} MB ${step.at} s after start, with no message handled: the heap shrinking after start-up (garbage collection)`,
      );
    else s.notes.push(`idle RSS did not fall within ${IDLE_WATCH_S} s of the start`);
    s.tables.push({
      title: 'what the idle figure is made of: a bare node process importing the same libraries, cumulatively',
      rows: layers,
    });
    s.notes.push(
      `the layers import, in turn: ${LAYERS.filter(([, m]) => m.length > 0)
        .map(([, m]) => m.join(', '))
        .join(' | ')}; pincer loads a messenger's library only when that messenger is enabled (none is here)`,
    );
    const idleAgents = descendants(child.pid);
    // Processes started before any message (the main group's agent, started ahead by default) are the idle agents' share.
    if (idleAgents.length > 0) {
      s.rows.push({
        metric: 'agent processes at idle, sum of PSS',
        unit: 'MB',
        value: sum(idleAgents.map((p) => pssMb(p.pid))),
        n: idleAgents.length,
      });
      s.notes.push(`idle: ${idleAgents.length} processes below pincer (${idleAgents.map((p) => p.command).join(', ')})`);
    }
    if (sandboxSkip) {
      s.notes.push(`live sessions not measured: ${sandboxSkip}`);
      return s;
    }
    const api = new Api(`http://127.0.0.1:${port}`, TOKEN);
    await Promise.all(
      Array.from({ length: n }, async (_, i) => {
        const chat = `local:mem${i + 1}`;
        const id = await api.send(chat, 'hello, please answer');
        await api.reply(chat, id, 60_000);
      }),
    );
    await sleep(QUICK ? 1_000 : 2_000); // every session is idle, warm, waiting for a follow-up
    s.rows.push({ metric: `pincer process, ${n} live sessions (VmRSS)`, unit: 'MB', samples: await rssSamples(child.pid, 10, 100) });
    const agents = descendants(child.pid);
    const claude = agents.filter((p) => p.command === 'claude');
    s.rows.push(
      {
        metric: `agent processes, sum of RSS (${agents.length} processes)`,
        unit: 'MB',
        value: sum(agents.map((p) => rssMb(p.pid))),
        n: agents.length,
      },
      { metric: '  sum of PSS (shared pages divided)', unit: 'MB', value: sum(agents.map((p) => pssMb(p.pid))), n: agents.length },
      { metric: '  per session (PSS)', unit: 'MB', value: sum(agents.map((p) => pssMb(p.pid))) / n, n },
      { metric: '  Claude Code processes alone, sum of RSS', unit: 'MB', value: sum(claude.map((p) => rssMb(p.pid))), n: claude.length },
    );
    const counts = new Map<string, number>();
    for (const p of agents) counts.set(p.command, (counts.get(p.command) ?? 0) + 1);
    s.notes.push(
      `processes below pincer with ${n} live sessions: ${[...counts].map(([c, k]) => `${c} ×${k}`).join(', ')}`,
      'agent processes are the descendants of the pincer process in /proc (each sandbox is a child of pincer); they are not counted in the pincer process figure',
    );
    return s;
  } finally {
    await child.stop();
    await fake.close();
    rmSync(home, { recursive: true, force: true });
  }
}

// 4. Ingest throughput across many groups, and dispatch to the queue, with every agent slot busy (pincer
// under load: the first groups' agents are in a long turn, every other group waits for a slot).
//   in-process: pincer's own ingest (createIngest, as every channel adapter calls it) on a real store, one
//     message after another over all groups; once storing only, once going on to pincer's Dispatcher and
//     GroupQueue (its agents are silent stand-ins; see lib/core.ts);
//   HTTP: a pincer child process (built dist/), its local API, concurrent clients in this process (node:http
//     over keep-alive connections, one request at a time each); the agents are real sandboxed Claude Code
//     processes whose model request the fake model never answers. The CPU time of pincer's process and of the
//     clients' is reported per message: on a small machine they share the cores, and the rate is bounded by both.
// Every chat is a group that answers everything, so every message is dispatched.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { isAgentTurn, startFakeModel } from '../test/helpers/fake-model.js';
import { freePort } from '../test/helpers/pincer-process.js';
import { Api } from './lib/api.js';
import { type Core, inbound, registerGroups, startCore } from './lib/core.js';
import { startPincerChild } from './lib/pincer-child.js';
import { type Row, type Section, section } from './lib/report.js';
import { pincerEnv, SIZES } from './lib/settings.js';
import { median } from './lib/stats.js';
import { until } from './lib/wait.js';

const TARGET = 5_000;
/** Issue 19: indexing may cost ingest at most 10 %. */
const INDEXED_RATIO = 0.9;
const TOKEN = 'bench-token-0123456789';
/** Ordinary messages posted over HTTP before the timed ones, after the chats are joined. */
const HTTP_WARMUP = 2_000;

interface Pass {
  rate: number;
  dispatchRate: number;
  dispatched: number;
  perMessage: number[];
}

/** `count` messages, round robin over the groups, each awaited before the next (ingest is synchronous inside). */
async function drive(core: Core, chats: string[], count: number, dispatch: boolean, indexed: boolean): Promise<Pass> {
  const sink = dispatch ? core.ingest : core.storeOnly;
  // Untimed: the first messages of a process compile the code paths.
  for (let i = 0; i < 500; i++) await sink.ingest(inbound(chats[i % chats.length] as string));
  const before = core.dispatched;
  const perMessage: number[] = [];
  const start = performance.now();
  for (let i = 0; i < count; i++) {
    const t = performance.now();
    await sink.ingest(inbound(chats[i % chats.length] as string));
    perMessage.push(performance.now() - t);
    // Between messages from the network the event loop turns, and the index follows: so it does here.
    if (i % 100 === 99) await new Promise((resolve) => setImmediate(resolve));
  }
  // What the index has not reached yet is part of the work (nothing happens without an indexer).
  if (indexed) while (core.store.messageSearch.indexNext(500) === 500);
  const seconds = (performance.now() - start) / 1000;
  const dispatched = core.dispatched - before;
  return { rate: count / seconds, dispatchRate: dispatched / seconds, dispatched, perMessage };
}

async function inProcess(s: Section): Promise<void> {
  const passes: Array<[string, boolean, boolean]> = [
    ['store only', false, true],
    ['store → Dispatcher → GroupQueue, every slot busy', true, true],
    ['the same without the message index (issue 19: what indexing costs)', true, false],
  ];
  const perCall: number[] = [];
  const rates: number[] = [];
  for (const [label, dispatch, index] of passes) {
    const core = startCore({ index });
    try {
      const chats = registerGroups(core, SIZES.ingestGroups);
      const pass = await drive(core, chats, SIZES.ingestMessages, dispatch, index);
      const queued = (core.store.db.prepare(`SELECT COUNT(*) AS n FROM events WHERE stage = 'queued'`).get() as { n: number }).n;
      s.rows.push({
        metric: `in-process ingest, ${label}`,
        unit: 'msg/s',
        value: pass.rate,
        n: SIZES.ingestMessages,
        ...(dispatch && index ? { target: { stat: 'value', op: '>=', limit: TARGET } as const } : {}),
      });
      rates.push(pass.rate);
      if (dispatch && index) {
        s.rows.push({
          metric: '  dispatched to the queue (onEngaged → Dispatcher.wake)',
          unit: 'msg/s',
          value: pass.dispatchRate,
          n: pass.dispatched,
        });
        s.notes.push(`in-process: ${queued} 'queued' events recorded, ${core.store.groups.list().length} groups`);
      }
      s.tables[0]?.rows.push({ metric: `one ingest call, ${label}`, unit: 'ms', samples: pass.perMessage });
      perCall.push(median(pass.perMessage));
    } finally {
      await core.close();
    }
  }
  const [, indexed, unindexed] = rates;
  if (indexed !== undefined && unindexed !== undefined)
    s.rows.push({
      metric: 'in-process ingest with the message index following, against without',
      unit: '×',
      value: indexed / unindexed,
      target: { stat: 'value', op: '>=', limit: INDEXED_RATIO },
    });
  const note = dispatchNote(perCall);
  if (note) s.notes.push(note);
}

function dispatchNote(perCall: number[]): string | undefined {
  const [store, both] = perCall;
  if (store === undefined || both === undefined) return undefined;
  return `per message (medians of one call): storing ${store.toFixed(3)} ms, dispatching ${(both - store).toFixed(3)} ms more (budget check, 'queued' event, queue)`;
}

/** CPU time (user + system) of a process so far, in ms, from /proc (Linux); undefined where unreadable. */
function processCpuMs(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // After the command name (which may hold spaces): state is field 3, utime 14 and stime 15, in clock ticks (USER_HZ, 100).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return undefined;
  }
}

/** Busy and total jiffies of all cores so far (/proc/stat), to tell how loaded the machine was. */
function machineTicks(): { busy: number; total: number } | undefined {
  try {
    const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').trim().split(/\s+/).slice(1).map(Number);
    const total = fields.reduce((a, b) => a + b, 0);
    return { busy: total - (fields[3] ?? 0) - (fields[4] ?? 0), total };
  } catch {
    return undefined;
  }
}

async function overHttp(s: Section, sandboxSkip: string | undefined): Promise<void> {
  const home = mkdtempSync(join(tmpdir(), 'pincer-bench-http-'));
  const port = await freePort();
  // The model takes every request and never answers: the agents that start stay in their first turn.
  const fake = await startFakeModel(() => ({ hang: true }));
  // Without bubblewrap there are no agents: without a credential a lane answers at once, without one.
  const model: Record<string, string> = sandboxSkip
    ? { ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: '' }
    : { ANTHROPIC_API_KEY: 'sk-ant-bench-not-a-real-key', ANTHROPIC_BASE_URL: fake.url };
  const child = await startPincerChild(home, { PINCER_TOKEN: TOKEN, TZ: 'UTC', ...model, ...pincerEnv() }, port);
  const api = new Api(`http://127.0.0.1:${port}`, TOKEN);
  try {
    const groups = SIZES.ingestGroups;
    const chat = (i: number) => `local:b${i % groups}`;
    const run = async (count: number, perRequest?: number[]) => {
      let next = 0;
      const worker = async () => {
        while (next < count) {
          const i = next++;
          const t = performance.now();
          await api.send(chat(i), 'hello there, how are you?');
          perRequest?.push(performance.now() - t);
        }
      };
      await Promise.all(Array.from({ length: SIZES.httpConcurrency }, worker));
    };
    await run(groups); // one message per chat: each local chat is joined on its first message (untimed)
    if (!sandboxSkip) {
      // The agents that took the slots have started and wait for the model; their start-up is not measured.
      await until(() => fake.requests.filter(isAgentTurn).length >= 3, 60_000, 'the first agents to call the model', 50);
    }
    // Untimed, as in-process: the first thousands of requests run pincer's code unoptimized (and V8 compiling it
    // takes CPU of its own); measured from a fresh start, the first 1,000 cost about twice the CPU of later ones.
    await run(HTTP_WARMUP);
    // The timed messages are those after the newest one stored so far; their 'queued' events are counted by seq.
    const db = new Database(join(home, 'pincer.db'), { readonly: true });
    let queued: number;
    const perRequest: number[] = [];
    let seconds: number;
    let clientCpuMs: number;
    let serverCpuMs: number | undefined;
    let coresBusy: number | undefined;
    try {
      const before = (db.prepare('SELECT COALESCE(MAX(seq), 0) AS m FROM messages').get() as { m: number }).m;
      const serverBefore = processCpuMs(child.pid);
      const machineBefore = machineTicks();
      const clientBefore = process.cpuUsage();
      const start = performance.now();
      await run(SIZES.httpMessages, perRequest);
      seconds = (performance.now() - start) / 1000;
      const client = process.cpuUsage(clientBefore);
      clientCpuMs = (client.user + client.system) / 1000;
      const serverAfter = processCpuMs(child.pid);
      serverCpuMs = serverBefore === undefined || serverAfter === undefined ? undefined : serverAfter - serverBefore;
      const machineAfter = machineTicks();
      if (machineBefore && machineAfter && machineAfter.total > machineBefore.total)
        coresBusy = ((machineAfter.busy - machineBefore.busy) / (machineAfter.total - machineBefore.total)) * cpus().length;
      queued = (db.prepare(`SELECT COUNT(*) AS n FROM events WHERE stage = 'queued' AND message_seq > ?`).get(before) as { n: number }).n;
    } finally {
      db.close();
    }
    const rows: Row[] = [
      {
        metric: `HTTP API, ${SIZES.httpConcurrency} concurrent clients (node:http, keep-alive), ${sandboxSkip ? 'no agents' : 'every slot busy'}`,
        unit: 'msg/s',
        value: SIZES.httpMessages / seconds,
        n: SIZES.httpMessages,
        target: { stat: 'value', op: '>=', limit: TARGET },
      },
      { metric: "  dispatched to the queue ('queued' events)", unit: 'msg/s', value: queued / seconds, n: queued },
    ];
    s.rows.push(...rows);
    s.tables[0]?.rows.push({
      metric: `one POST /api/v1/messages → 202, ${SIZES.httpConcurrency} concurrent`,
      unit: 'ms',
      samples: perRequest,
    });
    const perMessage = (ms: number) => ms / SIZES.httpMessages;
    if (serverCpuMs !== undefined)
      s.tables[0]?.rows.push({
        metric: 'CPU per message over HTTP: pincer (its process, not its agents)',
        unit: 'ms',
        value: perMessage(serverCpuMs),
      });
    s.tables[0]?.rows.push({
      metric: "CPU per message over HTTP: the clients (the suite's process)",
      unit: 'ms',
      value: perMessage(clientCpuMs),
    });
    s.notes.push(
      `HTTP: pincer ran from ${child.entry.kind} (${child.entry.note}); the clients share the suite's process, pincer has its own`,
      `HTTP clients: ${SIZES.httpConcurrency} concurrent loops in the suite's process, each one POST at a time (no pipelining, no batching) over node:http keep-alive connections (${api.connections} TCP connections opened); timed after ${HTTP_WARMUP.toLocaleString('en-US')} untimed messages`,
    );
    // pincer's requests run on its one JavaScript thread: its CPU per message bounds the rate whatever the clients do.
    if (serverCpuMs !== undefined && serverCpuMs > 0)
      s.notes.push(
        `HTTP: at ${perMessage(serverCpuMs).toFixed(2)} ms of pincer's CPU per message, one core carries at most ${Math.round(1000 / perMessage(serverCpuMs)).toLocaleString('en-US')} msg/s`,
      );
    if (coresBusy !== undefined)
      s.notes.push(
        `HTTP: ${coresBusy.toFixed(2)} of ${cpus().length} cores busy during the timed messages (pincer ${serverCpuMs === undefined ? 'n/a' : ((serverCpuMs / 1000 / seconds) * 100).toFixed(0)}% of a core, clients ${((clientCpuMs / 1000 / seconds) * 100).toFixed(0)}%, the rest: agents, the kernel's loopback, anything else on the host)`,
      );
    if (sandboxSkip) s.notes.push(`HTTP without agents (${sandboxSkip}): each lane answered at once without an agent`);
  } finally {
    api.close();
    await child.stop();
    await fake.close();
    rmSync(home, { recursive: true, force: true });
  }
}

export async function ingestSection(sandboxSkip: string | undefined): Promise<Section> {
  const s = section(
    'ingest',
    4,
    `ingest throughput across ${SIZES.ingestGroups.toLocaleString('en-US')} groups, and dispatch to the queue`,
  );
  s.tables.push({ title: 'per message', rows: [] });
  await inProcess(s);
  await overHttp(s, sandboxSkip);
  s.notes.push(
    'every group answers every message, so each message is dispatched; dispatch happens synchronously as the message is stored, so its rate follows the ingest rate',
  );
  return s;
}

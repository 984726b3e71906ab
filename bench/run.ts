// Latency benchmark: a real pincer (in this process, real bubblewrap, real Claude Code) against an instant fake model.
// `npm run bench`; BENCH_N sets the iterations per metric (default 15).
import { cpus, totalmem } from 'node:os';
import { isAgentTurn, type ModelRequest, startFakeModel } from '../test/helpers/fake-model.js';
import { type ApiMessage, type Harness, sandboxUnavailable, startHarness } from '../test/helpers/harness.js';

const N = Math.max(1, Number.parseInt(process.env.BENCH_N ?? '15', 10) || 15);
/** Upper bound of every single wait in this script. */
const WAIT_MS = 60_000;

interface Target {
  label: string;
  limitMs: number;
}

const TARGETS = {
  spawn: { label: '<= 5 ms', limitMs: 5 },
  cold: { label: '<= 1000 ms', limitMs: 1000 },
  warm: { label: '<= 150 ms', limitMs: 150 },
  reply: { label: '<= 20 ms', limitMs: 20 },
} satisfies Record<string, Target>;

/** Date.now()-comparable wall time of a performance.now() reading. */
const wall = (perf: number) => performance.timeOrigin + perf;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function until(condition: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms: ${what}`);
    await sleep(20);
  }
}

function quantile(values: number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  if (sorted.length === 0) return Number.NaN;
  if (q === 0.5) {
    const mid = Math.floor(sorted.length / 2);
    return sorted.length % 2 ? (sorted[mid] as number) : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
  }
  // Nearest rank.
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] as number;
}

const median = (values: number[]) => quantile(values, 0.5);
const p95 = (values: number[]) => quantile(values, 0.95);
const fmt = (ms: number) => (Number.isNaN(ms) ? 'n/a' : ms.toFixed(1));

function mentions(req: ModelRequest, marker: string): boolean {
  return JSON.stringify(req.body.messages ?? []).includes(marker);
}

/** Long-polls the API the way a client does; resolves at the moment a response carrying the assistant's reply arrives. */
async function pollReply(h: Harness, chat: string, after: string): Promise<{ message: ApiMessage; visibleAt: number }> {
  const deadline = Date.now() + WAIT_MS;
  let cursor = after;
  while (Date.now() < deadline) {
    const res = await h.request('GET', `/api/v1/messages?chat=${encodeURIComponent(chat)}&after=${cursor}&wait=10`);
    const visibleAt = performance.now();
    const page = res.body as { messages: ApiMessage[]; cursor: string };
    const message = page.messages.find((m) => m.fromAssistant);
    if (message) return { message, visibleAt };
    cursor = page.cursor;
  }
  throw new Error(`no reply in ${chat} after ${after} within ${WAIT_MS} ms`);
}

/** The first `at` of each stage in a message's trace. */
function stages(h: Harness, seq: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const e of h.pincer.store.events.trace(Number(seq))) if (!out.has(e.stage)) out.set(e.stage, e.at);
  return out;
}

function gap(s: Map<string, number>, from: string, to: string): number {
  const a = s.get(from);
  const b = s.get(to);
  return a === undefined || b === undefined ? Number.NaN : b - a;
}

interface Sample {
  seq: string;
  /** POST start → first model request naming the marker. */
  toFirstRequest: number;
  firstRequestIsAgentTurn: boolean;
  /** Receipt of the turn's last agent request at the fake → reply returned by the long-poll. */
  finalRequestToVisible: number;
  trace: Map<string, number>;
  firstRequestWall: number;
  postStartWall: number;
  postDoneWall: number;
  /** runtime.spawn() calls during this exchange: [called, returned] in Date.now()-comparable ms. */
  spawnCalls: Array<[number, number]>;
  agentRequests: number;
  sideRequests: number;
}

/** Times every runtime.spawn() (the bwrap launch) of a harness; the source is not touched. */
function timeSpawns(h: Harness): Array<[number, number]> {
  const calls: Array<[number, number]> = [];
  const choice = h.pincer.runtime;
  if (!choice.ok) return calls;
  const runtime = choice.runtime;
  const spawn = runtime.spawn.bind(runtime);
  runtime.spawn = (spec) => {
    const called = wall(performance.now());
    const child = spawn(spec);
    calls.push([called, wall(performance.now())]);
    return child;
  };
  return calls;
}

const spawnLog = new WeakMap<Harness, Array<[number, number]>>();

let markerCount = 0;

/** Sends one message with a unique marker and follows it to the visible reply. */
async function exchange(h: Harness, chat: string): Promise<Sample> {
  const marker = `bench-marker-${process.pid}-${++markerCount}`;
  const first = within(
    h.fake.nextRequest((r) => mentions(r, marker)),
    WAIT_MS,
    `model request for ${marker}`,
  );
  first.catch(() => {}); // awaited below; keeps an early failure of send() from leaving it unhandled
  const postStart = performance.now();
  const seq = await h.send(chat, `${marker}: please answer`);
  const postDone = performance.now();
  const [firstRequest, { message, visibleAt }] = await Promise.all([first, pollReply(h, chat, seq)]);
  if (message.text !== 'ok') throw new Error(`unexpected reply in ${chat}: ${message.text}`);
  const finalRequest = h.fake.requests.filter((r) => isAgentTurn(r) && mentions(r, marker) && r.receivedAt <= visibleAt).at(-1);
  if (!finalRequest) throw new Error(`no agent request for ${marker}`);
  const ours = h.fake.requests.filter((r) => mentions(r, marker));
  const spawnCalls = (spawnLog.get(h) ?? []).filter(([called]) => called >= wall(postStart));
  // The 'delivered' event is written in the same transaction as the reply row, so it is there now.
  return {
    seq,
    toFirstRequest: firstRequest.receivedAt - postStart,
    firstRequestIsAgentTurn: isAgentTurn(firstRequest),
    finalRequestToVisible: visibleAt - finalRequest.receivedAt,
    trace: stages(h, seq),
    firstRequestWall: wall(firstRequest.receivedAt),
    postStartWall: wall(postStart),
    postDoneWall: wall(postDone),
    spawnCalls,
    agentRequests: ours.filter(isAgentTurn).length,
    sideRequests: ours.filter((r) => !isAgentTurn(r)).length,
  };
}

function machine(): string {
  const cpu = cpus();
  return [
    `cpu:    ${cpu[0]?.model ?? 'unknown'} × ${cpu.length} cores`,
    `memory: ${(totalmem() / 2 ** 30).toFixed(1)} GiB`,
    `node:   ${process.version} (${process.platform} ${process.arch})`,
  ].join('\n');
}

interface Row {
  metric: string;
  values: number[];
  target?: Target;
}

function table(rows: Row[]): string {
  const header = ['metric', 'n', 'median ms', 'p95 ms', 'target', 'result'];
  const body = rows.map((r) => {
    const med = median(r.values);
    const p = p95(r.values);
    const result = r.target ? (p95(r.values) <= r.target.limitMs ? 'MET' : med <= r.target.limitMs ? 'NOT MET (p95)' : 'NOT MET') : '';
    return [r.metric, String(r.values.length), fmt(med), fmt(p), r.target?.label ?? '', result];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] as string).length)));
  const line = (cells: string[]) =>
    cells.map((c, i) => (i === 0 || i >= 4 ? c.padEnd(widths[i] as number) : c.padStart(widths[i] as number))).join('  ');
  return [line(header), widths.map((w) => '-'.repeat(w)).join('  '), ...body.map(line)].join('\n');
}

async function main(): Promise<number> {
  const skip = await sandboxUnavailable();
  if (skip) {
    console.log(`bench skipped: ${skip}`);
    return 0;
  }
  console.log(`pincer latency benchmark, N = ${N} per metric (plus one untimed warm-up per phase)\n${machine()}\n`);

  const fake = await startFakeModel((req) => (isAgentTurn(req) ? { text: 'ok' } : { text: 'side' }));
  const cold: Sample[] = [];
  const warm: Sample[] = [];
  try {
    // Cold: every message goes to a new chat, so it starts its own sandbox. A short idle timeout closes each
    // session soon after its reply; the next message is sent only once the previous sandbox is gone.
    const hc = await startHarness({ fake, env: { PINCER_IDLE_TIMEOUT_SEC: '1' } });
    spawnLog.set(hc, timeSpawns(hc));
    try {
      for (let i = 0; i <= N; i++) {
        const chat = `local:cold${i}`;
        const sample = await exchange(hc, chat);
        if (i > 0) cold.push(sample);
        await until(() => !hc.pincer.dispatcher.isLive(chat), WAIT_MS, `${chat} to close after its idle timeout`);
        process.stdout.write(i === 0 ? 'cold: warm-up done' : ` ${i}`);
      }
      process.stdout.write('\n');
    } finally {
      await within(hc.stop(), WAIT_MS, 'stopping the cold harness');
    }

    // Warm: one chat whose session stays live (long idle timeout); each follow-up goes into it while it idles.
    const hw = await startHarness({ fake, env: { PINCER_IDLE_TIMEOUT_SEC: '600' } });
    spawnLog.set(hw, timeSpawns(hw));
    try {
      const chat = 'local:warm';
      await exchange(hw, chat); // starts the session
      process.stdout.write('warm: session started');
      for (let i = 1; i <= N; i++) {
        await sleep(300); // let the session settle into idle after the previous reply
        if (!hw.pincer.dispatcher.isLive(chat)) throw new Error('the warm session ended');
        warm.push(await exchange(hw, chat));
        process.stdout.write(` ${i}`);
      }
      process.stdout.write('\n');
      const spawns = hw.pincer.store.db.prepare(`SELECT COUNT(*) AS n FROM events WHERE stage = 'spawned'`).get() as { n: number };
      if (spawns.n !== 1) console.log(`note: the warm chat spawned ${spawns.n} sandboxes (expected 1)`);
    } finally {
      await within(hw.stop(), WAIT_MS, 'stopping the warm harness');
    }
  } finally {
    await fake.close();
  }

  const all = [...cold, ...warm];
  console.log(`\n${machine()}\n`);
  console.log(
    table([
      {
        metric: 'a. accepted → sandbox spawned, cold (events received→spawned)',
        values: cold.map((s) => gap(s.trace, 'received', 'spawned')),
        target: TARGETS.spawn,
      },
      { metric: 'b. message → first model request, cold', values: cold.map((s) => s.toFirstRequest), target: TARGETS.cold },
      { metric: 'c. warm follow-up → model request', values: warm.map((s) => s.toFirstRequest), target: TARGETS.warm },
      {
        metric: 'd. final model request → reply visible (API long-poll), warm',
        values: warm.map((s) => s.finalRequestToVisible),
        target: TARGETS.reply,
      },
      { metric: '   same, cold', values: cold.map((s) => s.finalRequestToVisible), target: TARGETS.reply },
      { metric: '   events replied → delivered, all', values: all.map((s) => gap(s.trace, 'replied', 'delivered')), target: TARGETS.reply },
    ]),
  );

  const side = all.filter((s) => !s.firstRequestIsAgentTurn).length;
  if (side > 0) console.log(`\nnote: in ${side} of ${all.length} messages the first model request naming it was a side request (no tools)`);
  const count = (samples: Sample[], f: (s: Sample) => number) => samples.reduce((n, s) => n + f(s), 0);
  console.log(
    `\nmodel requests naming the message: cold ${count(cold, (s) => s.agentRequests)} agent + ${count(cold, (s) => s.sideRequests)} side, ` +
      `warm ${count(warm, (s) => s.agentRequests)} agent + ${count(warm, (s) => s.sideRequests)} side; ` +
      `POST 202 arrived after the spawn in ${count(cold, (s) => (s.spawnCalls[0] && s.postDoneWall > s.spawnCalls[0][1] ? 1 : 0))} of ${cold.length} cold messages`,
  );

  const breakdown = (samples: Sample[]): Row[] => [
    { metric: 'POST start → 202 received', values: samples.map((s) => s.postDoneWall - s.postStartWall) },
    { metric: 'POST start → received (event)', values: samples.map((s) => (s.trace.get('received') ?? Number.NaN) - s.postStartWall) },
    { metric: 'received → queued', values: samples.map((s) => gap(s.trace, 'received', 'queued')) },
    { metric: 'queued → prompted', values: samples.map((s) => gap(s.trace, 'queued', 'prompted')) },
    { metric: 'prompted → spawned', values: samples.map((s) => gap(s.trace, 'prompted', 'spawned')) },
    {
      metric: '  prompted → runtime.spawn() called',
      values: samples.map((s) => (s.spawnCalls[0]?.[0] ?? Number.NaN) - (s.trace.get('prompted') ?? Number.NaN)),
    },
    {
      metric: '  runtime.spawn() (bwrap launch) itself',
      values: samples.map((s) => (s.spawnCalls[0] ? s.spawnCalls[0][1] - s.spawnCalls[0][0] : Number.NaN)),
    },
    { metric: 'spawned → model_request (proxy)', values: samples.map((s) => gap(s.trace, 'spawned', 'model_request')) },
    { metric: 'prompted → model_request (proxy)', values: samples.map((s) => gap(s.trace, 'prompted', 'model_request')) },
    {
      metric: 'model_request (proxy) → fake received',
      values: samples.map((s) => s.firstRequestWall - (s.trace.get('model_request') ?? Number.NaN)),
    },
    { metric: 'model_request (proxy) → replied', values: samples.map((s) => gap(s.trace, 'model_request', 'replied')) },
    { metric: 'replied → delivered', values: samples.map((s) => gap(s.trace, 'replied', 'delivered')) },
  ];
  console.log('\nwhere the time goes, cold (events table; Date.now() ms):');
  console.log(table(breakdown(cold)));
  console.log('\nwhere the time goes, warm:');
  console.log(table(breakdown(warm).filter((r) => !r.values.every(Number.isNaN))));
  return 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  console.error(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
  code = 1;
}
process.exitCode = code;
// Everything is stopped; should a stray handle still hold the event loop, do not hang.
setTimeout(() => {
  console.error('note: a handle kept the process alive after the bench; exiting');
  process.exit(code);
}, 5_000).unref();

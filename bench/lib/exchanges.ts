// Messages through a real pincer (in this process: real store, queue, SDK, bubblewrap sandbox, Claude Code)
// against the fake model on loopback, each followed to its reply. Measurements 1–3 are read from these samples.
//
// Four kinds of message:
//   prewarmed — cold, as pincer runs by default: a known group whose session ended (idle timeout); pincer
//               may have started its agent again ahead of the message (the pool of recently active groups);
//   resumed   — cold with prewarming off (PINCER_PREWARM=0): pincer starts a sandbox and resumes the session;
//   first     — cold: the first message of a new chat (joined on the spot, new folder, fresh conversation);
//   typed     — the same, written in the web page or `pincer chat`: they send a typing hint (POST /api/v1/typing)
//               at the first keystroke, here a settle pause before the message, as someone takes to type it;
//   warm      — a follow-up into a live session that idles between turns.
// A cold message is sent once the sandbox that served the previous one has exited and a settle pause has
// passed, so anything pincer prepares in the background has had time to be ready; the sandbox that served
// the message is found by timing every runtime.spawn().
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import type { Stage } from '../../src/store/index.js';
import { type FakeModel, isAgentTurn, type ModelRequest, startFakeModel } from '../../test/helpers/fake-model.js';
import { HARNESS_TOKEN, type Harness, startHarness } from '../../test/helpers/harness.js';
import { nowWall, wallOf } from './clock.js';
import { pincerEnv, SIZES } from './settings.js';
import { sleep, until, within } from './wait.js';

/** Upper bound of any single wait. */
const WAIT_MS = 60_000;

/** One runtime.spawn() call, on the wall clock. */
export interface SpawnRecord {
  called: number;
  returned: number;
  /** The first bytes the sandboxed Claude Code wrote to its stdout (the answer to the SDK's initialize). */
  firstStdout?: number;
  /** The sandbox process exited. */
  exited?: number;
}

export type Kind = 'prewarmed' | 'resumed' | 'first' | 'typed' | 'warm';

/** The sandbox serving the sample was started before the message was sent (pincer started it ahead). */
export const startedAhead = (x: Sample): boolean => x.spawn !== undefined && x.spawn.called < x.sentAt;

export interface Sample {
  kind: Kind;
  chat: string;
  seq: number;
  /** Wall times (Date.now() scale, see clock.ts). */
  sentAt: number;
  acceptedAt: number;
  /** The fake model received the first request carrying this message. */
  firstRequestAt: number;
  /** The fake model finished its answer to the turn's last agent request (the final SSE event written). */
  finalAnswerEnd: number;
  /** First `at` of each stage in the message's trace (events table, whole ms). */
  trace: Map<Stage, number>;
  /** The sandbox start that served this message, if one happened since the previous message. */
  spawn?: SpawnRecord;
  /** Model requests carrying the message: the agent loop's, and side requests (no tools). */
  agentRequests: number;
  sideRequests: number;
}

export interface ExchangeRun {
  runtime: string;
  samples: Sample[];
  /** What went wrong with some message (the run goes on). */
  problems: string[];
}

const stageAt = (trace: Map<Stage, number>, stage: Stage) => trace.get(stage) ?? Number.NaN;

/** Wall-clock gap between two stages of a sample's trace (NaN when either is missing). */
export function gap(s: Sample, from: Stage, to: Stage): number {
  return stageAt(s.trace, to) - stageAt(s.trace, from);
}

export { stageAt };

function mentions(req: ModelRequest, marker: string): boolean {
  return JSON.stringify(req.body.messages ?? []).includes(marker);
}

/** Times every spawn of the harness's runtime; pincer's code is not touched, only this instance's method. */
function recordSpawns(h: Harness): SpawnRecord[] {
  const records: SpawnRecord[] = [];
  if (!h.pincer.runtime.ok) return records;
  const runtime = h.pincer.runtime.runtime;
  const spawn = runtime.spawn.bind(runtime);
  runtime.spawn = (spec): ChildProcessWithoutNullStreams => {
    const called = nowWall();
    const child = spawn(spec);
    const record: SpawnRecord = { called, returned: nowWall() };
    child.once('exit', () => {
      record.exited = nowWall();
    });
    // Seen where the pipe hands its bytes to the stream (push), so the stream's mode and the SDK's reading are untouched.
    const stdout = child.stdout;
    const push = stdout.push.bind(stdout);
    stdout.push = (chunk: unknown, encoding?: BufferEncoding) => {
      if (record.firstStdout === undefined && chunk !== null) record.firstStdout = nowWall();
      return push(chunk, encoding);
    };
    records.push(record);
    return child;
  };
  return records;
}

function firstStages(h: Harness, seq: number): Map<Stage, number> {
  const out = new Map<Stage, number>();
  for (const e of h.pincer.store.events.trace(seq)) if (!out.has(e.stage)) out.set(e.stage, e.at);
  return out;
}

let markers = 0;

/** Sends one message and follows it until its reply is delivered; `since` bounds which spawns can have served it. */
async function exchange(h: Harness, spawns: SpawnRecord[], kind: Kind, chat: string, since: number): Promise<Sample> {
  const marker = `bench-${process.pid}-${++markers}`;
  const first = within(
    h.fake.nextRequest((r) => mentions(r, marker)),
    WAIT_MS,
    `the model request for ${marker}`,
  );
  first.catch(() => {}); // awaited below; a failing send must not leave it unhandled
  const sentAt = nowWall();
  const seq = Number(await h.send(chat, `${marker}: please answer`));
  const acceptedAt = nowWall();
  const firstRequest = await first;
  let trace = firstStages(h, seq);
  await until(
    () => {
      trace = firstStages(h, seq);
      return trace.has('delivered') || trace.has('turn_failed') || trace.has('delivery_failed');
    },
    WAIT_MS,
    `the reply to ${marker} to be delivered`,
    5,
  );
  if (!trace.has('delivered')) throw new Error(`${marker}: ${[...trace.keys()].join(' → ')}`);
  // Later messages' requests carry this marker too (the history), but none was sent yet.
  const ours = h.fake.requests.filter((r) => mentions(r, marker));
  const final = ours.filter(isAgentTurn).at(-1);
  const served = spawns.filter((s) => s.called >= since && s.called <= wallOf(firstRequest.receivedAt)).at(-1);
  return {
    kind,
    chat,
    seq,
    sentAt,
    acceptedAt,
    firstRequestAt: wallOf(firstRequest.receivedAt),
    finalAnswerEnd: final?.closedAt === undefined ? Number.NaN : wallOf(final.closedAt),
    trace,
    ...(served ? { spawn: served } : {}),
    agentRequests: ours.filter(isAgentTurn).length,
    sideRequests: ours.filter((r) => !isAgentTurn(r)).length,
  };
}

function progress(text: string): void {
  process.stdout.write(text);
}

/** What the web page and `pincer chat` send at the first keystroke of a message. */
async function typingHint(h: Harness, chat: string): Promise<void> {
  const res = await fetch(`${h.base}/api/v1/typing`, {
    method: 'POST',
    headers: { authorization: `Bearer ${HARNESS_TOKEN}`, 'content-type': 'application/json' },
    body: JSON.stringify({ chat }),
  });
  if (res.status !== 204) throw new Error(`POST /api/v1/typing for ${chat}: ${res.status} ${await res.text()}`);
}

/** One pincer's cold messages: each sent once the sandbox that served the previous one has exited. */
async function coldPhase(
  fake: FakeModel,
  env: Record<string, string>,
  plan: Array<{ kind: Kind; chat: string; timed: boolean }>,
  onSample: (s: Sample) => void,
  attempt: (what: string, run: () => Promise<void>) => Promise<void>,
): Promise<string> {
  const h = await startHarness({ fake, env: { ...env, ...pincerEnv() } });
  const runtime = h.pincer.runtime.ok ? h.pincer.runtime.runtime.name : `none (${h.pincer.runtime.reason})`;
  const spawns = recordSpawns(h);
  let since = nowWall();
  try {
    for (const [i, step] of plan.entries()) {
      await attempt(`${step.kind} #${i}`, async () => {
        if (step.kind === 'typed') await typingHint(h, step.chat);
        await sleep(SIZES.settleMs);
        const sample = await exchange(h, spawns, step.kind, step.chat, since);
        if (step.timed) onSample(sample);
        const served = sample.spawn;
        if (served) await until(() => served.exited !== undefined, WAIT_MS, `the sandbox of ${step.chat} to exit`);
        else await until(() => !h.pincer.dispatcher.isLive(step.chat), WAIT_MS, `${step.chat}'s session to end`);
        since = served?.exited ?? nowWall();
        progress(step.timed ? '.' : '');
      });
    }
  } finally {
    await within(h.stop(), WAIT_MS, 'stopping the cold pincer');
  }
  return runtime;
}

/** Cold messages (prewarmed, resumed and first contact), then warm follow-ups; one pincer for each phase. */
export async function runExchanges(): Promise<ExchangeRun> {
  const fake = await startFakeModel((req) => (isAgentTurn(req) ? { text: 'ok' } : { text: 'side' }));
  const samples: Sample[] = [];
  const problems: string[] = [];
  let runtime = 'none';
  const attempt = async (what: string, run: () => Promise<void>) => {
    try {
      await run();
    } catch (err) {
      problems.push(`${what}: ${err instanceof Error ? err.message : String(err)}`);
      progress(' !');
    }
  };
  const repeat = (n: number, kind: Kind, chat: (i: number) => string) =>
    Array.from({ length: n + 1 }, (_, i) => ({ kind, chat: chat(i), timed: i > 0 })); // the first one is not timed
  try {
    // As configured by default: the 3 s idle timeout ends each session soon after its reply, and the settle
    // pause (shorter) leaves time for an agent started ahead to be ready before the next message.
    progress('  cold, known group, and first messages of new chats (prewarming on): ');
    runtime = await coldPhase(
      fake,
      { PINCER_IDLE_TIMEOUT_SEC: '3' },
      [
        ...repeat(SIZES.coldResumed, 'prewarmed', () => 'local:cold'),
        ...repeat(SIZES.coldFirst, 'first', (i) => `local:first-${i}`),
        ...repeat(SIZES.coldFirst, 'typed', (i) => `local:typed-${i}`),
      ],
      (x) => samples.push(x),
      attempt,
    );
    progress('\n  cold, known group, prewarming off: ');
    await coldPhase(
      fake,
      { PINCER_IDLE_TIMEOUT_SEC: '1', PINCER_PREWARM: '0' },
      repeat(SIZES.coldResumed, 'resumed', () => 'local:cold'),
      (x) => samples.push(x),
      attempt,
    );
    progress('\n');

    // Warm: one chat whose session stays live; each follow-up arrives while it idles.
    const hw = await startHarness({ fake, env: { PINCER_IDLE_TIMEOUT_SEC: '600', ...pincerEnv() } });
    const spawns2 = recordSpawns(hw);
    try {
      progress('  warm follow-ups: ');
      await exchange(hw, spawns2, 'warm', 'local:warm', nowWall()); // starts the session; not timed
      for (let i = 1; i <= SIZES.warm; i++) {
        await sleep(300); // the session settles into idle after its reply
        await attempt(`warm #${i}`, async () => {
          if (!hw.pincer.dispatcher.isLive('local:warm')) throw new Error('the warm session ended');
          samples.push(await exchange(hw, spawns2, 'warm', 'local:warm', nowWall()));
          progress('.');
        });
      }
      progress('\n');
      const restarted = samples.filter((x) => x.kind === 'warm' && x.spawn !== undefined).length;
      if (restarted > 0) problems.push(`${restarted} warm follow-up(s) started a sandbox: the session did not stay live`);
    } finally {
      await within(hw.stop(), WAIT_MS, 'stopping the warm pincer');
    }
  } finally {
    await fake.close();
  }
  return { runtime, samples, problems };
}

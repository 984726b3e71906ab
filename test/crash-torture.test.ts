// The crash torture test. pincer runs as a separate process and is killed with SIGKILL (its whole process
// group, sandboxed agents included, as when a machine loses power) at chosen moments: while messages are
// ingested, mid-turn, right after the model answered (before the reply is committed or delivered), and while
// a Telegram send is on the wire; then it is started again on the same home. Conversations go on in five
// chats (four local ones, one Telegram DM through a fake Bot API) and one-off scheduled tasks fall due during
// the run. At the end the store must show every engaged message answered by exactly one completed turn,
// every reply delivered once, every task run once for its due time, and a consistent database.
//
// A run is reproducible in what it sends and when it kills: PINCER_TORTURE_SEED=<the printed seed>.
// PINCER_TORTURE_ROUNDS sets the number of kills (default 12).
import assert from 'node:assert/strict';
import { EventEmitter, once } from 'node:events';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import Database from 'better-sqlite3';
import { type DelayProxy, type Exchange, startDelayProxy } from './helpers/delay-proxy.js';
import { type FakeModel, isAgentTurn, lastUserText, startFakeModel } from './helpers/fake-model.js';
import { type FakeTelegram, startFakeTelegram } from './helpers/fake-telegram.js';
import { REAL_KEY, sandboxUnavailable } from './helpers/harness.js';
import { freePort, type PincerProcess, pincerChildEnv, spawnPincer } from './helpers/pincer-process.js';
import { prng } from './helpers/prng.js';

const skip = await sandboxUnavailable();

function envInt(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n) || n < 0) throw new Error(`${name} must be a non-negative integer, not "${raw}"`);
  return n;
}

const ROUNDS = envInt('PINCER_TORTURE_ROUNDS', 12);
const SEED = envInt('PINCER_TORTURE_SEED', Math.floor(Math.random() * 2 ** 31));
const TOKEN = 'test-token-0123456789';
/** The fake Bot API's default user: its DM with the bot is this chat. */
const TG_USER = 4242;
const TG_CHAT = `tg:${TG_USER}`;
const TARGETS = ['local:main', 'local:a', 'local:b', 'local:c', TG_CHAT] as const;
const SHORT: Record<string, string> = { 'local:main': 'main', 'local:a': 'a', 'local:b': 'b', 'local:c': 'c', [TG_CHAT]: 'tg' };
/** Every message and task prompt carries one marker; the fake model answers with the markers it was shown. */
const MARKER = /\b(?:msg|tsk)_\w+/g;
/** How a round picks its moment to kill; rounds cycle through them so each moment is hit. */
const MODES = ['ingest', 'timer', 'answer', 'delivery'] as const;
type Mode = (typeof MODES)[number];
/** An 'answer' or 'delivery' round kills anyway when its moment did not come within this. */
const MOMENT_WAIT_MS = 8_000;
const SETTLE_TIMEOUT_MS = 150_000;
/** Where one-off tasks go (folders), and in which context they run. */
const TASKS: Array<{ group: string; contextMode: 'group' | 'isolated' }> = [
  { group: 'main', contextMode: 'group' },
  { group: 'a', contextMode: 'group' },
  { group: 'tg-dm', contextMode: 'isolated' },
  { group: 'b', contextMode: 'group' },
  { group: 'tg-dm', contextMode: 'group' },
  { group: 'c', contextMode: 'isolated' },
];

const markersIn = (text: string): Set<string> => new Set(text.match(MARKER) ?? []);

interface LocalSend {
  chat: string;
  marker: string;
  text: string;
  acked: boolean;
}

type Target = (typeof TARGETS)[number];

interface RoundPlan {
  mode: Mode;
  /** After the burst starts (ingest, timer) or after the awaited moment (answer, delivery). */
  killDelayMs: number;
  messages: Array<{ target: Target; gapMs: number }>;
}

interface Kill {
  round: number;
  mode: Mode;
  at: number;
  afterMs: number;
  /** Whether the awaited moment came (always true for ingest and timer rounds). */
  momentCame: boolean;
  postsInFlight: number;
  modelInFlight: number;
  sendsInFlight: number;
}

function planRound(round: number, rand: () => number): RoundPlan {
  const mode = MODES[round % MODES.length] as Mode;
  const count = 3 + Math.floor(rand() * 5);
  const messages: RoundPlan['messages'] = [];
  for (let i = 0; i < count; i++) {
    // A delivery round starts with a Telegram message, so a Telegram send can be caught on the wire.
    const target: Target = mode === 'delivery' && i === 0 ? TG_CHAT : (TARGETS[Math.floor(rand() * TARGETS.length)] ?? TG_CHAT);
    // An ingest round sends everything at once and kills within milliseconds: some requests are cut mid-way.
    messages.push({ target, gapMs: mode === 'ingest' ? 0 : Math.floor(rand() * 150) });
  }
  const killDelayMs =
    mode === 'ingest'
      ? Math.floor(rand() * 25)
      : mode === 'timer'
        ? 50 + Math.floor(rand() * 1450)
        : mode === 'answer'
          ? Math.floor(rand() * 60)
          : Math.floor(rand() * 80);
  return { mode, killDelayMs, messages };
}

// Everything the test started, for `after` to end even when an assertion failed midway.
let model: FakeModel | undefined;
let telegram: FakeTelegram | undefined;
let proxy: DelayProxy | undefined;
let pincer: PincerProcess | undefined;
let home: string | undefined;
/** Set when every check passed: a failed run keeps its home (store, each pincer's output) for a look. */
let passed = false;
after(async () => {
  await pincer?.kill();
  await proxy?.close();
  await telegram?.close();
  await model?.close();
  if (home && passed) rmSync(home, { recursive: true, force: true });
});

test('SIGKILLed at random moments and restarted, pincer answers every message once and runs every task once', {
  skip,
  timeout: 600_000,
}, async (t) => {
  const started = Date.now();
  const plan = prng(SEED);
  const jitter = prng(SEED ^ 0x5bd1e995);
  t.diagnostic(`seed ${SEED} (rerun with PINCER_TORTURE_SEED=${SEED}), ${ROUNDS} rounds`);

  // The fake model answers each agent turn with the markers of its newest prompt, after a random delay.
  const answers = new EventEmitter<{ answer: [] }>();
  let modelInFlight = 0;
  model = await startFakeModel((req) => {
    if (!isAgentTurn(req)) return { text: 'side' };
    const markers = [...markersIn(lastUserText(req))].sort();
    const delayMs = 100 + Math.floor(jitter() * 1400);
    modelInFlight++;
    setTimeout(() => {
      modelInFlight--;
      answers.emit('answer');
    }, delayMs).unref();
    return { text: `ack: ${markers.join(' ') || '(no marker)'}`, delayMs };
  });
  telegram = await startFakeTelegram();
  // Telegram takes each sendMessage at once; its answer reaches pincer 100–500 ms later.
  proxy = await startDelayProxy(telegram.url, (path) => (path.endsWith('/sendMessage') ? 100 + Math.floor(jitter() * 400) : 0));

  home = mkdtempSync(join(tmpdir(), 'pincer-torture-'));
  const dbPath = join(home, 'pincer.db');
  t.diagnostic(`state in ${home} (kept when the test fails, with each pincer's output as pincer-<n>.log)`);
  const keepOutput = (n: number, p: PincerProcess) => writeFileSync(join(home as string, `pincer-${n}.log`), p.output());
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const env = pincerChildEnv({
    home,
    port,
    token: TOKEN,
    modelUrl: model.url,
    key: REAL_KEY,
    extra: { TELEGRAM_BOT_TOKEN: telegram.token, PINCER_IDLE_TIMEOUT_SEC: '30' },
  });

  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> => {
    const res = await fetch(base + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(10_000),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };
  const readStore = <T>(read: (db: Database.Database) => T): T => {
    const db = new Database(dbPath, { readonly: true, fileMustExist: true });
    try {
      return read(db);
    } finally {
      db.close();
    }
  };

  // ---- what the test sent, and what went wrong on the client side ----
  const locals: LocalSend[] = [];
  const telegramMarkers: string[] = [];
  const taskMarkers = new Map<number, string>();
  const clientProblems: string[] = [];
  let postsInFlight = 0;
  let postRetries = 0;
  let duplicatePosts = 0;

  /** One POST with the marker as idempotency key; false when pincer was down or died meanwhile (retried later). */
  const post = async (m: LocalSend): Promise<boolean> => {
    postsInFlight++;
    try {
      const res = await api('POST', '/api/v1/messages', { chat: m.chat, text: m.text, id: m.marker });
      if (res.status === 202 || res.status === 200) {
        if (res.status === 200) duplicatePosts++;
        m.acked = true;
        return true;
      }
      clientProblems.push(`POST ${m.marker} was answered ${res.status} ${JSON.stringify(res.body)}`);
      return false;
    } catch {
      return false;
    } finally {
      postsInFlight--;
    }
  };
  const retryUnacked = async () => {
    for (const m of locals.filter((l) => !l.acked)) {
      postRetries++;
      if (!(await post(m))) clientProblems.push(`POST ${m.marker} failed again against a running pincer`);
    }
  };
  const send = (target: string, marker: string): Promise<boolean> => {
    const text = `${marker} says hello from ${SHORT[target]}`;
    if (target === TG_CHAT) {
      telegram?.pushMessage({ text });
      telegramMarkers.push(marker);
      return Promise.resolve(true);
    }
    const m: LocalSend = { chat: target, marker, text, acked: false };
    locals.push(m);
    return post(m);
  };
  const burst = async (label: string, messages: RoundPlan['messages']) => {
    const posts: Array<Promise<boolean>> = [];
    for (const [i, m] of messages.entries()) {
      posts.push(send(m.target, `msg_${label}_${SHORT[m.target]}_${i}`));
      if (m.gapMs > 0) await sleep(m.gapMs);
    }
    await Promise.all(posts);
  };
  const waitFor = async (what: string, probe: () => boolean, timeoutMs: number) => {
    const deadline = Date.now() + timeoutMs;
    while (!probe()) {
      if (Date.now() > deadline) throw new Error(`${what} did not happen within ${timeoutMs} ms`);
      await sleep(100);
    }
  };

  /** Round 0, before any kill: join the chats and schedule the tasks. */
  const setUp = async () => {
    for (const chatId of ['local:a', 'local:b', 'local:c']) {
      const res = await api('POST', '/api/v1/groups', { chatId, respondToAll: true });
      assert.equal(res.status, 201, `joining ${chatId}: ${JSON.stringify(res.body)}`);
    }
    // A Telegram chat is joined once pincer has seen it.
    telegram?.pushMessage({ text: 'hello?' });
    await waitFor(
      'the Telegram DM to be seen',
      () => readStore((db) => db.prepare('SELECT 1 FROM chats WHERE id = ?').get(TG_CHAT) !== undefined),
      15_000,
    );
    const joined = await api('POST', '/api/v1/groups', { chatId: TG_CHAT, folder: 'tg-dm', respondToAll: true });
    assert.equal(joined.status, 201, `joining ${TG_CHAT}: ${JSON.stringify(joined.body)}`);
    // Spread over the expected length of the kill rounds: some fall due while pincer is down.
    const span = ROUNDS * 4_000;
    for (const [k, task] of TASKS.entries()) {
      const marker = `tsk_${k}`;
      const dueAt = new Date(Date.now() + 3_000 + Math.floor((k * span) / TASKS.length));
      const res = await api('POST', '/api/v1/tasks', {
        group: task.group,
        prompt: `${marker}: report the state of things`,
        scheduleType: 'once',
        scheduleValue: dueAt.toISOString(),
        contextMode: task.contextMode,
      });
      assert.equal(res.status, 201, `scheduling ${marker}: ${JSON.stringify(res.body)}`);
      taskMarkers.set((res.body.task as { id: number }).id, marker);
    }
  };

  /** Resolves at the round's moment to kill; false when an awaited moment did not come. */
  const moment = async (p: RoundPlan): Promise<boolean> => {
    let came = true;
    if (p.mode === 'answer' || p.mode === 'delivery') {
      const emitter: EventEmitter = p.mode === 'answer' ? answers : (proxy?.events as EventEmitter);
      try {
        await once(emitter, p.mode === 'answer' ? 'answer' : 'hold', { signal: AbortSignal.timeout(MOMENT_WAIT_MS) });
      } catch {
        came = false;
      }
    }
    await sleep(p.killDelayMs);
    return came;
  };

  // ---- the kill rounds ----
  const kills: Kill[] = [];
  const pgids: number[] = [];
  // Each start reaches Telegram under its own tag, so every send is known by the pincer that made it.
  const start = (instance: number) => spawnPincer({ ...env, TELEGRAM_API_ROOT: proxy?.urlFor(`i${instance}`) ?? '' }, port);
  for (let round = 0; round < ROUNDS; round++) {
    const p = planRound(round, plan);
    pincer = await start(round);
    pgids.push(pincer.pid);
    if (round === 0) await setUp();
    await retryUnacked();
    const roundStart = Date.now();
    const sending = burst(`r${round}`, p.messages);
    const momentCame = await moment(p);
    const kill: Kill = {
      round,
      mode: p.mode,
      at: Date.now(),
      afterMs: Date.now() - roundStart,
      momentCame,
      postsInFlight,
      modelInFlight,
      sendsInFlight: proxy.inFlight('/sendMessage'),
    };
    await pincer.kill();
    keepOutput(round, pincer);
    kills.push(kill);
    await sending;
    t.diagnostic(
      `round ${round} (${p.mode}${momentCame ? '' : ', moment did not come'}): ${p.messages.length} messages, killed after ${kill.afterMs} ms ` +
        `with ${kill.postsInFlight} POSTs, ${kill.modelInFlight} model answers, ${kill.sendsInFlight} Telegram sends in flight`,
    );
  }

  // ---- the last start: no kill; everything must get answered ----
  pincer = await start(ROUNDS);
  pgids.push(pincer.pid);
  await retryUnacked();
  await burst(
    'final',
    TARGETS.map((target) => ({ target, gapMs: 50 })),
  );
  const progress = () =>
    readStore((db) => {
      const count = (sql: string) => (db.prepare(sql).get() as { n: number }).n;
      const tgTexts = (
        db.prepare(`SELECT text FROM messages WHERE chat_id = ? AND from_assistant = 0`).all(TG_CHAT) as Array<{ text: string }>
      )
        .map((r) => r.text)
        .join('\n');
      return {
        unanswered: count(
          `SELECT COUNT(*) AS n FROM messages m JOIN group_state s ON s.chat_id = m.chat_id
           WHERE m.engages = 1 AND m.from_assistant = 0 AND m.seq > s.cursor`,
        ),
        pendingOutbox: count(`SELECT COUNT(*) AS n FROM outbox WHERE status = 'pending'`),
        runningRuns: count(`SELECT COUNT(*) AS n FROM task_runs WHERE status = 'running'`),
        activeTasks: count(`SELECT COUNT(*) AS n FROM tasks WHERE status = 'active'`),
        telegramMissing: telegramMarkers.filter((m) => !markersIn(tgTexts).has(m)).length,
      };
    });
  const settleStart = Date.now();
  let last = progress();
  while (Date.now() - settleStart < SETTLE_TIMEOUT_MS) {
    last = progress();
    const done =
      last.unanswered === 0 &&
      last.pendingOutbox === 0 &&
      last.runningRuns === 0 &&
      last.activeTasks === 0 &&
      last.telegramMissing === 0 &&
      locals.every((l) => l.acked) &&
      proxy.inFlight('/sendMessage') === 0;
    if (done) break;
    await sleep(250);
  }
  const settleMs = Date.now() - settleStart;
  const stopped = await pincer.stop();
  const finalOutput = pincer.output();
  keepOutput(ROUNDS, pincer);
  pincer = undefined;
  t.diagnostic(`settled in ${settleMs} ms (left: ${JSON.stringify(last)}); stopped with ${JSON.stringify(stopped)}`);

  // ---- the verdict, from the store (read-only) and the Telegram wire ----
  const db = new Database(dbPath, { readonly: true, fileMustExist: true });
  const report = (() => {
    try {
      return inspect(db, {
        locals,
        telegramMarkers,
        taskMarkers,
        kills,
        sent: telegram.sent.filter((s) => s.chatId === TG_USER),
        sentBy: sendersOf(proxy.exchanges),
      });
    } finally {
      db.close();
    }
  })();
  const leftovers = await leftoverProcesses(home, pgids);
  const agentRequests = model.requests.filter(isAgentTurn).length;

  const phases = {
    ingest: kills.filter((k) => k.postsInFlight > 0).length,
    midTurn: kills.filter((k) => k.modelInFlight > 0).length,
    afterAnswer: kills.filter((k) => k.mode === 'answer' && k.momentCame).length,
    midDelivery: kills.filter((k) => k.sendsInFlight > 0).length,
  };
  t.diagnostic(
    `crash torture seed=${SEED}: ${kills.length} kills (${phases.ingest} during ingest, ${phases.midTurn} mid-turn, ` +
      `${phases.afterAnswer} right after a model answer, ${phases.midDelivery} mid-delivery); ` +
      `${locals.length + telegramMarkers.length} messages sent (${locals.length} local, ${telegramMarkers.length} Telegram; ` +
      `${postRetries} POST retries, ${duplicatePosts} answered as duplicates); ${report.engaged} engaged; ` +
      `${report.turns} turns (${report.successTurns} success); ${report.replies} replies delivered; ` +
      `${report.telegramResends} Telegram resends of sends unconfirmed at a kill ` +
      `(${report.sentPostMortem} of whose first send arrived after the kill); ${report.duplicates} duplicates; ` +
      `${report.taskRuns} task runs for ${taskMarkers.size} tasks (${report.taskRunsCut} cut by a kill); ` +
      `the model was asked ${agentRequests} times for ${report.successTurns + report.isolatedRuns} answers; ` +
      `${Math.round((Date.now() - started) / 1000)} s`,
  );

  // Everything found at once (the assertions below stop at the first kind).
  for (const [kind, found] of Object.entries({ client: clientProblems, ...report.problems, leftovers }))
    for (const problem of found.slice(0, 20)) t.diagnostic(`${kind}: ${problem}`);

  assert.deepEqual(clientProblems, [], 'the API refused or lost a client request');
  assert.deepEqual(stopped, { code: 0, signal: null }, `the last pincer did not stop cleanly:\n${finalOutput}`);
  assert.deepEqual(report.problems.inbound, [], 'every message sent was stored exactly once');
  assert.deepEqual(report.problems.turns, [], 'every engaged message was answered by exactly one completed turn');
  assert.deepEqual(report.problems.outbox, [], 'every turn left exactly one reply, and every reply was delivered');
  assert.deepEqual(report.problems.wire, [], 'no Telegram reply was sent again after its delivery was confirmed');
  assert.deepEqual(report.problems.markers, [], 'every message and task is named by exactly one delivered reply');
  assert.deepEqual(report.problems.tasks, [], 'every task ran exactly once for its due time');
  assert.deepEqual(report.problems.consistency, [], 'the store is consistent');
  assert.equal(report.duplicates, 0, 'no duplicates');
  assert.deepEqual(leftovers, [], 'no process of a killed pincer or its sandboxes outlived the test');
  passed = true;
});

interface Inspected {
  problems: Record<'inbound' | 'turns' | 'outbox' | 'wire' | 'markers' | 'tasks' | 'consistency', string[]>;
  engaged: number;
  turns: number;
  successTurns: number;
  replies: number;
  telegramResends: number;
  /** Resent replies whose first send reached Telegram only after the pincer that made it was killed. */
  sentPostMortem: number;
  duplicates: number;
  taskRuns: number;
  isolatedRuns: number;
  /** Runs that a kill fell into: recorded before it, finished after the restart. */
  taskRunsCut: number;
}

interface Sent {
  locals: LocalSend[];
  telegramMarkers: string[];
  taskMarkers: Map<number, string>;
  kills: Kill[];
  /** What the fake Bot API took for the DM, in order. */
  sent: Array<{ messageId: number; text?: string; at: number }>;
  /** Which pincer (its start's tag) made the send that got this Telegram message id. */
  sentBy: Map<number, string>;
}

/** Telegram's answers to sendMessage, as the proxy saw them: message id → the tag of the pincer that sent it. */
function sendersOf(exchanges: Exchange[]): Map<number, string> {
  const by = new Map<number, string>();
  for (const x of exchanges) {
    if (!x.path.endsWith('/sendMessage') || x.status !== 200 || x.tag === undefined) continue;
    const answer = JSON.parse(x.body.toString('utf8')) as { result?: { message_id?: number } };
    if (typeof answer.result?.message_id === 'number') by.set(answer.result.message_id, x.tag);
  }
  return by;
}

/** Reads the whole store and names everything that breaks the durability promises. */
function inspect(db: Database.Database, s: Sent): Inspected {
  const problems: Inspected['problems'] = { inbound: [], turns: [], outbox: [], wire: [], markers: [], tasks: [], consistency: [] };
  let duplicates = 0;
  type Msg = { seq: number; chatId: string; platformId: string; text: string; fromAssistant: number; engages: number };
  const messages = db
    .prepare(
      `SELECT seq, chat_id AS chatId, platform_id AS platformId, text, from_assistant AS fromAssistant, engages FROM messages ORDER BY seq`,
    )
    .all() as Msg[];
  type TurnRow = { id: number; chatId: string; firstSeq: number; lastSeq: number; status: string; error: string | null };
  const turns = db
    .prepare(`SELECT id, chat_id AS chatId, first_seq AS firstSeq, last_seq AS lastSeq, status, error FROM turns ORDER BY id`)
    .all() as TurnRow[];
  type OutboxRow = { id: number; chatId: string; text: string; replyTo: number | null; status: string; platformId: string | null };
  const outbox = db
    .prepare(`SELECT id, chat_id AS chatId, text, reply_to AS replyTo, status, platform_id AS platformId FROM outbox ORDER BY id`)
    .all() as OutboxRow[];

  // Inbound: each message the test sent is stored once (a retried POST, a redelivered update: no second row).
  const inbound = messages.filter((m) => m.fromAssistant === 0);
  for (const l of s.locals) {
    const rows = inbound.filter((m) => m.chatId === l.chat && m.platformId === l.marker);
    if (rows.length !== 1) problems.inbound.push(`${l.marker} is stored ${rows.length} times in ${l.chat}`);
    if (rows.length > 1) duplicates++;
  }
  for (const marker of s.telegramMarkers) {
    const rows = inbound.filter((m) => m.chatId === TG_CHAT && markersIn(m.text).has(marker));
    if (rows.length !== 1) problems.inbound.push(`${marker} is stored ${rows.length} times in ${TG_CHAT}`);
    if (rows.length > 1) duplicates++;
  }

  // Turns: every engaging inbound message is inside exactly one successful turn of its chat; a turn cut by a
  // kill left no row, and its re-run committed once.
  const engaged = inbound.filter((m) => m.engages === 1);
  for (const m of engaged) {
    const covering = turns.filter((t) => t.chatId === m.chatId && t.firstSeq <= m.seq && m.seq <= t.lastSeq);
    const ok = covering.filter((t) => t.status === 'success');
    if (ok.length !== 1 || covering.length !== 1) {
      problems.turns.push(
        `message ${m.seq} (${m.chatId}, ${m.text.slice(0, 40)}) is in ${ok.length} successful turns of ${covering.length}: ` +
          covering.map((t) => `#${t.id} ${t.status}${t.error ? ` (${t.error.slice(0, 80)})` : ''}`).join(', '),
      );
    }
    if (ok.length > 1) duplicates++;
  }
  for (const t of turns.filter((x) => x.status !== 'success'))
    problems.turns.push(`turn #${t.id} in ${t.chatId} ended ${t.status}: ${t.error ?? ''}`);

  // Outbox: one reply per turn (keyed by chat and the turn's last message), one per isolated run; all sent.
  for (const t of turns) {
    const rows = outbox.filter((o) => o.chatId === t.chatId && o.replyTo === t.lastSeq);
    if (rows.length !== 1) problems.outbox.push(`turn #${t.id} (${t.chatId}, up to ${t.lastSeq}) has ${rows.length} replies`);
    if (rows.length > 1) duplicates++;
  }
  for (const o of outbox) {
    if (o.replyTo !== null && !turns.some((t) => t.chatId === o.chatId && t.lastSeq === o.replyTo))
      problems.outbox.push(`reply ${o.id} answers message ${o.replyTo}, which ends no turn`);
    if (o.status !== 'sent') problems.outbox.push(`reply ${o.id} to ${o.chatId} is ${o.status}`);
  }
  const isolatedRuns = (db.prepare(`SELECT COUNT(*) AS n FROM task_runs WHERE context_mode = 'isolated'`).get() as { n: number }).n;
  const unanchored = outbox.filter((o) => o.replyTo === null).length;
  if (unanchored !== isolatedRuns) problems.outbox.push(`${unanchored} replies answer no message, but ${isolatedRuns} isolated runs ran`);
  // Delivered: the worker stores each delivered reply as one assistant message with the platform's id.
  const assistant = messages.filter((m) => m.fromAssistant === 1);
  // Every reply names its own markers, so its text tells its deliveries apart from other replies'.
  for (const o of outbox.filter((x) => x.status === 'sent')) {
    const rows = assistant.filter((m) => m.chatId === o.chatId && m.text === o.text);
    if (rows.length !== 1) problems.outbox.push(`reply ${o.id} to ${o.chatId} was recorded as delivered ${rows.length} times`);
    else if (rows[0]?.platformId !== o.platformId)
      problems.outbox.push(`reply ${o.id} to ${o.chatId} stored platform id ${o.platformId}, its delivery ${rows[0]?.platformId}`);
    if (rows.length > 1) duplicates += rows.length - 1;
  }
  const sentIds = new Set(outbox.map((o) => `${o.chatId} ${o.platformId}`));
  for (const m of assistant)
    if (!sentIds.has(`${m.chatId} ${m.platformId}`)) problems.outbox.push(`assistant message ${m.seq} in ${m.chatId} has no outbox row`);

  // The Telegram wire. A send that Telegram took but whose answer never reached pincer before a kill is sent
  // again by the next pincer: that is at-least-once delivery, and allowed. A send after the one whose answer
  // pincer stored, or a second send by the same pincer, is a duplicate.
  let telegramResends = 0;
  let sentPostMortem = 0;
  const toTelegram = outbox.filter((o) => o.chatId === TG_CHAT);
  for (const o of toTelegram) {
    const sends = s.sent.filter((x) => x.text === o.text);
    if (sends.length === 0) {
      problems.wire.push(`reply ${o.id} is marked sent but Telegram never got it`);
      continue;
    }
    // Confirmed: pincer stored Telegram's answer to that send (in the outbox row or as the delivered message).
    const recorded = new Set([
      o.platformId,
      ...assistant.filter((m) => m.chatId === TG_CHAT && m.text === o.text).map((m) => m.platformId),
    ]);
    const confirmed = sends.findIndex((x) => recorded.has(String(x.messageId)));
    if (confirmed === -1) problems.wire.push(`reply ${o.id} stored Telegram id ${o.platformId}, which no send has`);
    if (confirmed !== -1 && confirmed < sends.length - 1) {
      problems.wire.push(`reply ${o.id} was sent ${sends.length - 1 - confirmed} more times after Telegram confirmed it`);
      duplicates += sends.length - 1 - confirmed;
    }
    // Sends up to the confirmed one: each by another pincer than the one before.
    for (let i = 1; i < sends.length && (confirmed === -1 || i <= confirmed); i++) {
      const before = sends[i - 1] as (typeof sends)[number];
      const again = sends[i] as (typeof sends)[number];
      const [by1, by2] = [s.sentBy.get(before.messageId), s.sentBy.get(again.messageId)];
      if (by1 === undefined || by2 === undefined)
        problems.wire.push(`reply ${o.id}: Telegram ids ${before.messageId}, ${again.messageId} are not known by their sender`);
      else if (by1 !== by2) {
        telegramResends++;
        // The first send may even reach Telegram after its pincer died: its request was on the way.
        const killedAt = s.kills.find((k) => `i${k.round}` === by1)?.at;
        if (killedAt !== undefined && before.at > killedAt) sentPostMortem++;
      } else {
        problems.wire.push(`reply ${o.id} was sent twice by one pincer (${by1}; Telegram ids ${before.messageId}, ${again.messageId})`);
        duplicates++;
      }
    }
  }
  for (const x of s.sent)
    if (!toTelegram.some((o) => o.text === x.text)) problems.wire.push(`Telegram got "${x.text?.slice(0, 60)}", which no reply holds`);

  // End to end: each marker is named by exactly one delivered reply.
  const delivered = outbox.filter((o) => o.status === 'sent').map((o) => ({ id: o.id, markers: markersIn(o.text) }));
  const allMarkers = [...s.locals.map((l) => l.marker), ...s.telegramMarkers, ...s.taskMarkers.values()];
  for (const marker of allMarkers) {
    const naming = delivered.filter((d) => d.markers.has(marker));
    if (naming.length !== 1)
      problems.markers.push(`${marker} is named by ${naming.length} delivered replies (${naming.map((d) => d.id).join(', ')})`);
    if (naming.length > 1) duplicates++;
  }

  // Tasks: one run per task and due time, finished well, the task completed.
  type RunRow = { taskId: number; dueAt: number; status: string; startedAt: number; endedAt: number | null; n: number };
  const runs = db
    .prepare(
      `SELECT task_id AS taskId, due_at AS dueAt, status, started_at AS startedAt, ended_at AS endedAt,
         COUNT(*) OVER (PARTITION BY task_id, due_at) AS n FROM task_runs`,
    )
    .all() as RunRow[];
  for (const [taskId, marker] of s.taskMarkers) {
    const mine = runs.filter((r) => r.taskId === taskId);
    const task = db.prepare('SELECT status FROM tasks WHERE id = ?').get(taskId) as { status: string } | undefined;
    if (mine.length !== 1) problems.tasks.push(`task ${taskId} (${marker}) has ${mine.length} runs`);
    if (mine.length > 1) duplicates += mine.length - 1;
    for (const r of mine) if (r.status !== 'ok') problems.tasks.push(`task ${taskId} (${marker}) has a run that is ${r.status}`);
    if (task?.status !== 'completed') problems.tasks.push(`task ${taskId} (${marker}) is ${task?.status ?? 'missing'}, not completed`);
  }
  for (const r of runs) if (r.n > 1) problems.tasks.push(`task ${r.taskId} has ${r.n} runs for due time ${r.dueAt}`);

  // Consistency of the file and of the cursors.
  const integrity = db.pragma('integrity_check', { simple: true });
  if (integrity !== 'ok') problems.consistency.push(`integrity_check: ${String(integrity)}`);
  const foreign = db.pragma('foreign_key_check') as unknown[];
  if (foreign.length > 0) problems.consistency.push(`foreign_key_check: ${JSON.stringify(foreign.slice(0, 5))}`);
  const cursors = db
    .prepare(
      `SELECT s.chat_id AS chatId, s.cursor, (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.chat_id = s.chat_id) AS maxSeq,
         (SELECT COALESCE(MAX(seq), 0) FROM messages m WHERE m.chat_id = s.chat_id AND m.engages = 1) AS lastEngaged
       FROM group_state s`,
    )
    .all() as Array<{ chatId: string; cursor: number; maxSeq: number; lastEngaged: number }>;
  for (const c of cursors) {
    if (c.cursor > c.maxSeq) problems.consistency.push(`${c.chatId}: cursor ${c.cursor} is past its newest message ${c.maxSeq}`);
    if (c.cursor < c.lastEngaged) problems.consistency.push(`${c.chatId}: cursor ${c.cursor} is before engaged message ${c.lastEngaged}`);
  }

  return {
    problems,
    engaged: engaged.length,
    turns: turns.length,
    successTurns: turns.filter((x) => x.status === 'success').length,
    replies: outbox.filter((o) => o.status === 'sent').length,
    telegramResends,
    sentPostMortem,
    duplicates,
    taskRuns: runs.length,
    isolatedRuns,
    taskRunsCut: runs.filter((r) => s.kills.some((k) => r.startedAt <= k.at && (r.endedAt === null || k.at <= r.endedAt))).length,
  };
}

/** Processes that outlived their pincer: any left in a killed process group, or naming the home on its command line. */
async function leftoverProcesses(homeDir: string, pgids: number[]): Promise<string[]> {
  const groups = new Set(pgids);
  const find = () => {
    const found: string[] = [];
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
      try {
        // pid (comm) state ppid pgrp …; comm may hold spaces, so read after its closing parenthesis.
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        if (state === 'Z') continue;
        const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').slice(0, 160);
        if (groups.has(Number(pgrp))) found.push(`pid ${entry} in process group ${pgrp}: ${cmdline}`);
        else if (cmdline.includes(homeDir)) found.push(`pid ${entry}: ${cmdline}`);
      } catch {
        // Gone meanwhile.
      }
    }
    return found;
  };
  // The kernel takes a moment to end what a death signal reached.
  for (let i = 0; i < 50; i++) {
    const found = find();
    if (found.length === 0) return found;
    await sleep(100);
  }
  return find();
}

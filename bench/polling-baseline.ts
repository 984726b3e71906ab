// 7. Baseline: the same path driven the way peers drive it, by a loop that every 2 seconds reads new messages
// from the store and dispatches them, against pincer's event-driven path (ingest wakes the dispatcher), in the
// same run, on the same store, for the same messages. Each message is timed from the moment it is handed to
// ingest until each dispatcher hands it to its queue.
import Database from 'better-sqlite3';
import type { Lane } from '../src/queue/group-queue.js';
import { GroupQueue } from '../src/queue/group-queue.js';
import { nowWall } from './lib/clock.js';
import { inbound, registerGroups, startCore } from './lib/core.js';
import { type Section, section } from './lib/report.js';
import { SIZES } from './lib/settings.js';
import { median, p95 } from './lib/stats.js';
import { sleep, until } from './lib/wait.js';

const POLL_MS = 2_000;
const GROUPS = 10;

/** A lane that has nothing to do: the polling dispatcher's queue only has to accept the wake. */
function idleLane(): Lane {
  let end: () => void = () => {};
  const done = new Promise<void>((resolve) => {
    end = resolve;
  });
  return { done, wake: () => {}, isIdle: () => true, closeIfIdle: () => end() };
}

/** A peer-style dispatcher: a timer that reads what arrived since the last look, from its own connection. */
function startPoller(dbPath: string, onDispatch: (seq: number, chatId: string) => void): { stop(): void } {
  const db = new Database(dbPath, { readonly: true });
  const fresh = db.prepare<[number], { seq: number; chat_id: string }>(
    'SELECT seq, chat_id FROM messages WHERE seq > ? AND engages = 1 AND from_assistant = 0 ORDER BY seq',
  );
  let last = (db.prepare('SELECT COALESCE(MAX(seq), 0) AS m FROM messages').get() as { m: number }).m;
  const timer = setInterval(() => {
    for (const row of fresh.all(last)) {
      last = row.seq;
      onDispatch(row.seq, row.chat_id);
    }
  }, POLL_MS);
  return {
    stop() {
      clearInterval(timer);
      db.close();
    },
  };
}

export async function pollingSection(warmMedianMs?: number): Promise<Section> {
  const s = section('baseline', 7, 'baseline: the same dispatch driven by a 2-second polling loop');
  const handed = new Map<number, number>();
  const evented = new Map<number, number>();
  const polled = new Map<number, number>();
  const core = startCore({ onDispatched: (_chatId, seq) => evented.set(seq, nowWall()) });
  const queue = new GroupQueue<string>(
    3,
    () => idleLane(),
    () => false,
  );
  const poller = startPoller(core.layout.db, (seq, chatId) => {
    polled.set(seq, nowWall());
    queue.wake(chatId);
  });
  try {
    const chats = registerGroups(core, GROUPS);
    process.stdout.write('  ');
    for (let i = 0; i < SIZES.baselineMessages; i++) {
      // Arrivals at random moments, so that they fall anywhere in the poller's period.
      await sleep(100 + Math.random() * 400);
      const at = nowWall();
      const { seq } = await core.ingest.ingest(inbound(chats[i % GROUPS] as string));
      handed.set(seq, at);
      process.stdout.write('.');
    }
    process.stdout.write('\n');
    await until(() => [...handed.keys()].every((seq) => polled.has(seq)), POLL_MS * 3, 'the poller to see every message');
  } finally {
    poller.stop();
    await core.close();
  }
  const latency = (to: Map<number, number>) => [...handed].map(([seq, at]) => (to.get(seq) ?? Number.NaN) - at);
  const event = latency(evented);
  const poll = latency(polled);
  s.rows.push(
    { metric: 'event-driven (pincer): handed to ingest → Dispatcher.wake', unit: 'ms', samples: event },
    { metric: `polling every ${POLL_MS / 1000} s (peers): handed to ingest → dispatched`, unit: 'ms', samples: poll },
    { metric: 'ratio of medians, polling / event-driven', unit: '×', value: median(poll) / median(event) },
    { metric: 'ratio of p95s, polling / event-driven', unit: '×', value: p95(poll) / p95(event) },
  );
  s.notes.push(
    'both see the same messages in the same store at the same time: pincer dispatches each as it is stored, the poller on its next look (its own read-only connection, as a separate loop would)',
  );
  if (warmMedianMs !== undefined && !Number.isNaN(warmMedianMs))
    s.notes.push(
      `on the whole path: a warm follow-up reached the model in ${warmMedianMs.toFixed(0)} ms (median, item 2); behind a 2 s poll it would take about ${(warmMedianMs + median(poll) - median(event)).toFixed(0)} ms`,
    );
  return s;
}

// 3. The model's final text → the channel's send call. The clock starts when the fake model has written the
// last SSE event of the turn's final answer. For the local API, sending is storing the reply: the clock stops
// at the `delivered` event (written in the same transaction as the reply row). For a messenger, the clock
// stops when the Telegram fake (real grammY client, real Bot API wire format) receives `sendMessage`.
import { isAgentTurn, type ModelRequest, startFakeModel } from '../test/helpers/fake-model.js';
import { startFakeTelegram } from '../test/helpers/fake-telegram.js';
import { startHarness } from '../test/helpers/harness.js';
import { wallOf } from './lib/clock.js';
import type { ExchangeRun } from './lib/exchanges.js';
import { gap, stageAt } from './lib/exchanges.js';
import { type Section, section } from './lib/report.js';
import { pincerEnv, SIZES } from './lib/settings.js';
import { sleep, until, within } from './lib/wait.js';

const TARGET_MS = 20;
const WAIT_MS = 60_000;
const DM = 4242;
const CHAT = `tg:${DM}`;

interface TelegramSample {
  finalAnswerEnd: number;
  replied: number;
  sendMessage: number;
  delivered: number;
}

const mentions = (r: ModelRequest, marker: string) => JSON.stringify(r.body.messages ?? []).includes(marker);

/** A pincer with Telegram enabled against the fake Bot API; the DM is joined, then follow-ups are timed. */
async function telegramSamples(): Promise<TelegramSample[]> {
  const tg = await startFakeTelegram();
  const fake = await startFakeModel((req) => (isAgentTurn(req) ? { text: 'ok' } : { text: 'side' }));
  const h = await startHarness({
    fake,
    env: { TELEGRAM_BOT_TOKEN: tg.token, TELEGRAM_API_ROOT: tg.url, PINCER_IDLE_TIMEOUT_SEC: '600', ...pincerEnv() },
  });
  const seqOf = h.pincer.store.db.prepare<[string, string], { seq: number }>(
    'SELECT seq FROM messages WHERE chat_id = ? AND platform_id = ?',
  );
  const samples: TelegramSample[] = [];
  try {
    tg.pushMessage({ text: 'hello' });
    await tg.waitFor(() => h.pincer.store.chats.get(CHAT), 10_000, 'the DM to be seen');
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: CHAT, folder: 'tg-dm', respondToAll: true });
    process.stdout.write('  telegram: ');
    for (let i = 0; i <= SIZES.telegram; i++) {
      const marker = `bench-tg-${process.pid}-${i}`;
      const before = tg.sent.length;
      const inbound = tg.pushMessage({ text: `${marker}: please answer` });
      const reply = await tg.waitFor(() => tg.sent[before], WAIT_MS, `the reply to ${marker}`);
      const row = seqOf.get(CHAT, String(inbound.message_id));
      if (!row) throw new Error(`${marker} was not stored`);
      const trace = new Map<string, number>();
      await until(
        () => {
          for (const e of h.pincer.store.events.trace(row.seq)) if (!trace.has(e.stage)) trace.set(e.stage, e.at);
          return trace.has('delivered');
        },
        WAIT_MS,
        `${marker} to be marked delivered`,
        5,
      );
      const final = fake.requests.filter((r) => isAgentTurn(r) && mentions(r, marker)).at(-1);
      // The first exchange starts the session: not timed, like every measured one after it is a follow-up.
      if (i > 0)
        samples.push({
          finalAnswerEnd: final?.closedAt === undefined ? Number.NaN : wallOf(final.closedAt),
          replied: trace.get('replied') ?? Number.NaN,
          sendMessage: reply.at,
          delivered: trace.get('delivered') ?? Number.NaN,
        });
      process.stdout.write('.');
      await sleep(300);
    }
    process.stdout.write('\n');
  } finally {
    await within(h.stop(), WAIT_MS, 'stopping the telegram pincer');
    await fake.close();
    await tg.close();
  }
  return samples;
}

export async function replySendSection(run: ExchangeRun): Promise<Section> {
  const s = section('reply', 3, "model's final text → channel send call");
  const done = run.samples.filter((x) => !Number.isNaN(x.finalAnswerEnd));
  const local = (kind: 'warm' | 'cold') => done.filter((x) => (kind === 'warm' ? x.kind === 'warm' : x.kind !== 'warm'));
  const toDelivered = (xs: typeof done) => xs.map((x) => stageAt(x.trace, 'delivered') - x.finalAnswerEnd);
  s.rows.push(
    {
      metric: 'local API, warm session: final answer → reply stored (delivered)',
      unit: 'ms',
      samples: toDelivered(local('warm')),
      target: { stat: 'median', op: '<=', limit: TARGET_MS },
    },
    {
      metric: 'local API, first turn of a session: same',
      unit: 'ms',
      samples: toDelivered(local('cold')),
      target: { stat: 'median', op: '<=', limit: TARGET_MS },
    },
  );
  const tg = await telegramSamples();
  s.rows.push({
    metric: 'Telegram (grammY → fake Bot API): final answer → sendMessage received',
    unit: 'ms',
    samples: tg.map((x) => x.sendMessage - x.finalAnswerEnd),
    target: { stat: 'median', op: '<=', limit: TARGET_MS },
  });
  s.tables.push({
    title: 'where the time goes',
    rows: [
      {
        metric: 'local, all: final answer → replied (turn committed)',
        unit: 'ms',
        samples: done.map((x) => stageAt(x.trace, 'replied') - x.finalAnswerEnd),
      },
      { metric: 'local, all: replied → delivered (outbox worker)', unit: 'ms', samples: done.map((x) => gap(x, 'replied', 'delivered')) },
      { metric: 'telegram: final answer → replied', unit: 'ms', samples: tg.map((x) => x.replied - x.finalAnswerEnd) },
      { metric: 'telegram: replied → sendMessage received by the fake', unit: 'ms', samples: tg.map((x) => x.sendMessage - x.replied) },
      {
        metric: 'telegram: sendMessage → delivered (answer back, stored)',
        unit: 'ms',
        samples: tg.map((x) => x.delivered - x.sendMessage),
      },
    ],
  });
  s.notes.push(
    'the final answer ends when the fake model has written its last SSE event (performance.now(), exact); replied/delivered/sendMessage are Date.now() (whole ms)',
  );
  return s;
}

// 11. Recall (issue 19): a made-up but realistic history of 50,000 messages over two years in 20 groups, with
// 300 planted facts and a question for each, searched the way the agent's search_memory tool does
// (MemorySearch, a group's own chat). Three kinds of question, 100 each:
//   exact words     the question shares the fact's rare words ("wifi password cabin")
//   other words     the question says it differently ("internet code for the cottage"): keywords alone
//                   mostly miss these, which is what embeddings are for
//   time-scoped     the same words were said of another month too; the question names the month (from/to)
// Each is asked on keywords alone and hybrid (keywords fused with nearest vectors of a deterministic concept
// embedder, test/helpers/concept-embedder.ts: it measures pincer's plumbing, never an embedding model's quality).
// Also: search latency at 50,000 messages, the index's size on disk, and what indexing costs the storing of
// messages (each message in its own transaction, as ingest stores it; the indexer following in batches).
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../src/log.js';
import { EmbeddingsClient } from '../src/memory/embeddings-client.js';
import { MemorySearch } from '../src/memory/memory-search.js';
import { MessageIndexer } from '../src/memory/message-indexer.js';
import { Store } from '../src/store/index.js';
import { openMemoryVectors } from '../src/store/memory-vectors.js';
import { CONCEPT_DIMENSIONS, conceptEmbedding } from '../test/helpers/concept-embedder.js';
import { startFakeEmbeddings } from '../test/helpers/fake-embeddings.js';
import { prng } from '../test/helpers/prng.js';
import { type Row, type Section, section } from './lib/report.js';
import { QUICK } from './lib/settings.js';

const GROUPS = 20;
const MESSAGES = QUICK ? 5_000 : 50_000;
const FACTS_PER_KIND = QUICK ? 20 : 100;
const DAY = 24 * 3600_000;
const START = Date.parse('2024-12-01T08:00:00Z');
const SPAN_DAYS = 730;
const TZ = 'Europe/Berlin';
const TARGET_P95_MS = 50;

const rand = prng(20261207);
const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;

const PEOPLE = ['Anna', 'Ben', 'Clara', 'David', 'Eva', 'Felix', 'Greta', 'Hugo', 'Ines', 'Jonas', 'Lena', 'Max'];
const PLACES = ['the office', 'the station', 'the café', 'the park', 'home', 'the gym', 'the school', 'the market'];
const DAYS = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday', 'tomorrow', 'tonight'];
const CHATTER = [
  (p: string, q: string, d: string) => `Can we meet at ${q} on ${d}? ${p} will bring the kids.`,
  (p: string, _q: string, d: string) => `${p} said the delivery comes ${d} between 10 and 12.`,
  (_p: string, q: string) => `I left my umbrella at ${q} again, typical.`,
  (p: string) => `Did anyone hear from ${p}? No answer since yesterday.`,
  (_p: string, _q: string, d: string) => `Reminder: bins go out ${d} evening.`,
  (p: string, q: string) => `${p} is running late, stuck near ${q}.`,
  () => 'Thanks, that works for me 👍',
  () => 'Ok, I will check and come back to you.',
  (p: string) => `Happy birthday ${p}! 🎉`,
  (_p: string, q: string, d: string) => `Traffic around ${q} is terrible ${d}, take the train.`,
  (p: string) => `${p} sent the photos from the weekend, they are lovely.`,
  () => 'Could you send me the document again? The link expired.',
];

/** A planted fact: what is said, an exact-word question, a differently-worded one. */
interface FactTemplate {
  say: (v: string) => string;
  exact: string;
  other: string;
  value: () => string;
}

const FACTS: FactTemplate[] = [
  {
    say: (v) => `The wifi password at the cabin is ${v}`,
    exact: 'wifi password cabin',
    other: 'internet code for the cottage',
    value: () => `sunflower-${Math.floor(rand() * 90 + 10)}`,
  },
  {
    say: (v) => `The plumber's number is ${v}, he is called Mario`,
    exact: 'plumber number',
    other: 'who fixes our pipes phone',
    value: () => `0171 ${Math.floor(rand() * 9e6 + 1e6)}`,
  },
  {
    say: (v) => `Our flight to Lisbon leaves at ${v}`,
    exact: 'flight Lisbon leaves',
    other: 'when does the plane to Portugal depart',
    value: () => `${Math.floor(rand() * 12 + 6)}:${Math.floor(rand() * 5)}5`,
  },
  {
    say: (v) => `The garage door code is ${v}`,
    exact: 'garage door code',
    other: 'pin for the car shed',
    value: () => String(Math.floor(rand() * 9000 + 1000)),
  },
  {
    say: (v) => `Dentist appointment moved to ${v}`,
    exact: 'dentist appointment',
    other: 'when do I see the tooth doctor',
    value: () => `${pick(DAYS)} at ${Math.floor(rand() * 8 + 8)}:00`,
  },
  {
    say: (v) => `We agreed the holiday budget is ${v} euros`,
    exact: 'holiday budget',
    other: 'how much can we spend on vacation',
    value: () => String(Math.floor(rand() * 20 + 5) * 100),
  },
  {
    say: (v) => `The landlord's email is ${v}`,
    exact: 'landlord email',
    other: 'how do I write to the owner of the flat',
    value: () => `owner${Math.floor(rand() * 900 + 100)}@example.org`,
  },
  {
    say: (v) => `Grandma's allergy medicine is called ${v}`,
    exact: 'grandma allergy medicine',
    other: 'what pills does granny take for hay fever',
    value: () => pick(['Cetirizin', 'Loratadin', 'Fexofenadin', 'Desloratadin']),
  },
];

interface Planted {
  kind: 'exact' | 'other' | 'time';
  chatId: string;
  seq: number;
  query: string;
  from?: string;
  to?: string;
}

const day = (at: number) => new Date(at).toLocaleDateString('en-CA', { timeZone: TZ });
const monthBounds = (at: number) => {
  const d = new Date(at);
  const first = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), 1);
  const last = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, 0);
  return { from: day(first + 12 * 3600_000), to: day(last + 12 * 3600_000) };
};

function chatOf(i: number): string {
  return `local:g${i % GROUPS}`;
}

export async function memoryRecallSection(): Promise<Section> {
  const s = section('recall', 11, 'recall: keyword and hybrid search over 50,000 messages in 20 groups, 300 planted facts');
  const dir = mkdtempSync(join(tmpdir(), 'pincer-recall-'));
  try {
    // ---- storing, with and without the indexer following ----
    const ingest = async (withIndex: boolean, count: number): Promise<{ store: Store; msgPerS: number }> => {
      const store = new Store(join(dir, `${withIndex ? 'on' : 'off'}.db`));
      for (let g = 0; g < GROUPS; g++) store.chats.seen({ id: `local:g${g}`, channel: 'local', isGroup: true }, 0);
      const indexer = withIndex ? new MessageIndexer(store, createLogger('silent')) : undefined;
      indexer?.start();
      const local = prng(7);
      const started = performance.now();
      for (let i = 0; i < count; i++) {
        const p = PEOPLE[Math.floor(local() * PEOPLE.length)] as string;
        const text = (CHATTER[Math.floor(local() * CHATTER.length)] as (a: string, b: string, c: string) => string)(
          p,
          PLACES[Math.floor(local() * PLACES.length)] as string,
          DAYS[Math.floor(local() * DAYS.length)] as string,
        );
        store.messages.insert({
          chatId: chatOf(i),
          channel: 'local',
          platformId: `m${i}`,
          senderId: p.toLowerCase(),
          senderName: p,
          text,
          sentAt: START + Math.floor((i / count) * SPAN_DAYS * DAY),
          fromAssistant: i % 3 === 2,
          engages: true,
        });
        // The indexer runs on the event loop between messages, as it does between ingest calls.
        if (i % 100 === 99) await new Promise((r) => setImmediate(r));
      }
      const ms = performance.now() - started;
      indexer?.stop();
      return { store, msgPerS: count / (ms / 1000) };
    };
    const off = await ingest(false, MESSAGES);
    off.store.close();
    const on = await ingest(true, MESSAGES);
    const store = on.store;

    // ---- the planted facts (their groups' histories already hold the chatter) ----
    const planted: Planted[] = [];
    const plant = (chatId: string, text: string, at: number, sender: string) =>
      store.messages.insert({
        chatId,
        channel: 'local',
        platformId: `fact-${planted.length}-${at}`,
        senderId: sender,
        senderName: sender,
        text,
        sentAt: at,
        fromAssistant: false,
        engages: true,
      }).seq;
    for (let k = 0; k < FACTS_PER_KIND * 3; k++) {
      const kind = k < FACTS_PER_KIND ? 'exact' : k < 2 * FACTS_PER_KIND ? 'other' : 'time';
      // Each group holds each kind of fact at most twice (k and k + 160), so that a question has one answer among
      // a few candidates, not one among a dozen copies of the same sentence.
      const fact = FACTS[Math.floor(k / GROUPS) % FACTS.length] as FactTemplate;
      const chatId = chatOf(k);
      const at = START + Math.floor(rand() * (SPAN_DAYS - 60)) * DAY + 30 * DAY;
      const seq = plant(chatId, fact.say(fact.value()), at, pick(PEOPLE));
      if (kind === 'time') {
        // The same fact, another value, said months apart: only the month tells them apart.
        plant(chatId, fact.say(fact.value()), at - 120 * DAY, pick(PEOPLE));
        planted.push({ kind, chatId, seq, query: fact.exact, ...monthBounds(at) });
      } else planted.push({ kind, chatId, seq, query: kind === 'exact' ? fact.exact : fact.other });
    }

    // ---- recall@5 and latency, keywords alone ----
    const names = new Map(Array.from({ length: GROUPS }, (_, g) => [`local:g${g}`, `g${g}`]));
    type Kind = Planted['kind'];
    /** Time spent waiting for the embeddings endpoint during the current search: not pincer's part of it. */
    let embeddingMs = 0;
    const ask = async (memory: MemorySearch) => {
      await memory.search(['local:g0'], { text: 'warm up' }, TZ, names);
      const latencies: number[] = [];
      const roundTrips: number[] = [];
      const found: Record<Kind, number> = { exact: 0, other: 0, time: 0 };
      for (const p of planted) {
        embeddingMs = 0;
        const t0 = performance.now();
        const result = await memory.search([p.chatId], { text: p.query, from: p.from, to: p.to, limit: 5 }, TZ, names);
        latencies.push(performance.now() - t0 - embeddingMs);
        roundTrips.push(embeddingMs);
        if (result.hits.some((h) => 'id' in h && h.id === String(p.seq))) found[p.kind]++;
      }
      return { latencies, roundTrips, found };
    };
    const keywords = await ask(new MemorySearch(store));
    const sizeMb = statSync(join(dir, 'on.db')).size / 1024 / 1024;
    const offSizeMb = statSync(join(dir, 'off.db')).size / 1024 / 1024;

    // ---- hybrid: every message's vector stored as the embedder stores it; each query embedded over HTTP ----
    const vectors = openMemoryVectors(store.db);
    if ('unavailable' in vectors) throw new Error(vectors.unavailable);
    const embeddings = await startFakeEmbeddings();
    let hybrid: Awaited<ReturnType<typeof ask>>;
    let vectorMs: number;
    let vectorCount: number;
    try {
      const t0 = performance.now();
      vectors.useSpace('concepts', CONCEPT_DIMENSIONS);
      for (let next = vectors.nextMessages(500); next.messages.length > 0; next = vectors.nextMessages(500)) {
        const batch = next.messages;
        vectors.putMessages(
          next.direction,
          batch.map((m) => ({ seq: m.seq, chatId: m.chatId, sentAt: m.sentAt, vector: Float32Array.from(conceptEmbedding(m.text)) })),
          (batch[batch.length - 1] as { seq: number }).seq,
        );
      }
      vectorMs = performance.now() - t0;
      vectorCount = vectors.progress().messages;
      class TimedClient extends EmbeddingsClient {
        override async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
          const t = performance.now();
          try {
            return await super.embed(texts, signal);
          } finally {
            embeddingMs += performance.now() - t;
          }
        }
      }
      const client = new TimedClient({ url: embeddings.url, key: embeddings.key, model: 'concepts' });
      hybrid = await ask(new MemorySearch(store, { vectors, client }));
    } finally {
      await embeddings.close();
    }
    const withVectorsMb = statSync(join(dir, 'on.db')).size / 1024 / 1024;
    store.close();

    const kindName = (kind: Kind) => (kind === 'exact' ? 'exact-word' : kind === 'other' ? 'different-word' : 'time-scoped');
    const recall = (how: string, found: Record<Kind, number>, kind: Kind): Row => ({
      metric: `recall@5, ${how}, ${kindName(kind)} questions`,
      unit: '×',
      value: found[kind] / FACTS_PER_KIND,
      n: FACTS_PER_KIND,
    });
    s.rows.push(
      ...(['exact', 'other', 'time'] as const).map((k) => recall('keywords alone', keywords.found, k)),
      ...(['exact', 'other', 'time'] as const).map((k) => recall('hybrid (test embedder)', hybrid.found, k)),
      {
        metric: `one search at ${MESSAGES.toLocaleString('en-US')} messages (a group's own chat), keywords alone`,
        unit: 'ms',
        samples: keywords.latencies,
        target: { stat: 'p95', op: '<=', limit: TARGET_P95_MS },
      },
      {
        metric: `one search at ${MESSAGES.toLocaleString('en-US')} messages, hybrid: keywords, nearest vectors, fusion (the endpoint's time apart)`,
        unit: 'ms',
        samples: hybrid.latencies,
        target: { stat: 'p95', op: '<=', limit: TARGET_P95_MS },
      },
      {
        metric: "the query's embedding: a round trip to the fake endpoint on this host (a real one adds its own time)",
        unit: 'ms',
        samples: hybrid.roundTrips,
      },
      {
        // The target (at most 10 % below) is on the whole ingest path, item 4; storing alone is its
        // cheapest part, so the index weighs more here.
        metric: 'storing alone, with the index following, against without (the target is on ingest: item 4)',
        unit: '×',
        value: on.msgPerS / off.msgPerS,
      },
    );
    s.tables.push({
      title: 'storing and size',
      rows: [
        { metric: 'storing, each message its own transaction, no index', unit: 'msg/s', value: off.msgPerS, n: MESSAGES },
        { metric: 'storing, the indexer following in batches of 500', unit: 'msg/s', value: on.msgPerS, n: MESSAGES },
        { metric: 'store file without the index', unit: 'MB', value: offSizeMb },
        { metric: 'store file with the index', unit: 'MB', value: sizeMb },
        {
          metric: `store file with the index and ${CONCEPT_DIMENSIONS}-dimension vectors of every message`,
          unit: 'MB',
          value: withVectorsMb,
        },
        {
          metric: `storing every message's vector (sqlite-vec, batches of 500)`,
          unit: 'msg/s',
          value: vectorCount / (vectorMs / 1000),
          n: vectorCount,
        },
      ],
    });
    s.notes.push(
      'recall@5 is the share of questions whose planted message is among the first five hits (× = a fraction of 1).',
      'Different-word questions share no rare word with their fact: keyword search finds them only by chance. The hybrid figures use a deterministic concept embedder (a hand-made table of words that mean the same, test/helpers/concept-embedder.ts): they show that vectors are stored, scoped to the group, filtered by time and fused with keyword hits correctly, not how well a real embedding model understands a question. A real model is slower per query (a network round trip to it, 20–200 ms) and its vectors larger (768–3,072 dimensions; sqlite-vec searches 50,000 of 384 dimensions in ≈25 ms, of 1,536 in ≈70 ms on this host, measured before choosing it over brute force in JavaScript, which took 280 and 460 ms).',
      `The history is generated (seeded): ${GROUPS} groups, ${MESSAGES.toLocaleString('en-US')} messages over ${SPAN_DAYS} days, ${FACTS_PER_KIND * 3} facts of ${FACTS.length} kinds, each time-scoped fact also said 120 days earlier with another value.`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return s;
}

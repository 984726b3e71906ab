// Recall by meaning (issue 19): messages and memory files embedded in the background through an OpenAI-compatible
// endpoint (a fake of it, with a deterministic concept embedder: this tests pincer's plumbing, not a model),
// stored in sqlite-vec, searched in the chats a search may see, and fused with keyword hits.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { createLogger } from '../src/log.js';
import { BackgroundEmbedder } from '../src/memory/embedder.js';
import { EmbeddingsClient } from '../src/memory/embeddings-client.js';
import { FileIndex } from '../src/memory/file-index.js';
import { MemorySearch } from '../src/memory/memory-search.js';
import { Store } from '../src/store/index.js';
import { type MemoryVectors, openMemoryVectors } from '../src/store/memory-vectors.js';
import { type FakeEmbeddings, startFakeEmbeddings } from './helpers/fake-embeddings.js';
import { isAgentTurn, isToolResult, lastUserText, useTool } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const TZ = 'Europe/Berlin';
const NAMES = new Map([
  ['local:main', 'main'],
  ['local:family', 'family'],
]);
const DAY = 24 * 3600_000;

let dir: string;
let store: Store;
let fake: FakeEmbeddings;
let vectors: MemoryVectors;
let embedder: BackgroundEmbedder | undefined;

function say(chatId: string, text: string, sentAt: number, sender = 'Alice'): number {
  return store.messages.insert({
    chatId,
    channel: 'local',
    platformId: `m-${Math.random()}`,
    senderId: sender.toLowerCase(),
    senderName: sender,
    text,
    sentAt,
    fromAssistant: false,
    engages: true,
  }).seq;
}

async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) assert.fail(`${what} within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const allEmbedded = () => {
  if (vectors.space() === undefined) return false;
  const p = vectors.progress();
  return p.messages === p.ofMessages;
};

function startEmbedder(
  key = fake.key,
  model = 'concepts-256',
  firstPauseMs = 50,
): { client: EmbeddingsClient; embedder: BackgroundEmbedder } {
  const client = new EmbeddingsClient({ url: fake.url, key, model });
  embedder = new BackgroundEmbedder(store, vectors, client, createLogger('silent'), firstPauseMs);
  embedder.start();
  return { client, embedder };
}

describe('recall by meaning', () => {
  beforeEach(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-meaning-'));
    store = new Store(join(dir, 'pincer.db'));
    for (const id of NAMES.keys()) store.chats.seen({ id, channel: 'local', isGroup: false }, 0);
    fake = await startFakeEmbeddings();
    const opened = openMemoryVectors(store.db);
    assert.ok(!('unavailable' in opened), 'sqlite-vec loads on this host');
    vectors = opened;
  });
  afterEach(async () => {
    await embedder?.stop();
    embedder = undefined;
    await fake.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('a differently worded question finds the fact keywords miss; a message of another group never comes back', async () => {
    const now = Date.now();
    const fact = say('local:main', 'The wifi password at the cabin is sunflower-42', now - 365 * DAY);
    say('local:main', 'Bins go out on Tuesday evening.', now - 200 * DAY);
    say('local:main', 'Can we meet at the station tomorrow?', now - 2 * DAY);
    const other = say('local:family', 'The wifi password at the cabin is tulip-77', now - 300 * DAY);
    const { client } = startEmbedder();
    await until(allEmbedded, 'every message embedded');

    const question = { text: 'internet pin of our chalet', limit: 5 };
    const keywordsOnly = await new MemorySearch(store).search(['local:main'], question, TZ, NAMES);
    assert.equal(keywordsOnly.mode, 'keywords');
    assert.ok(!keywordsOnly.hits.some((h) => 'id' in h && h.id === String(fact)), 'keywords alone miss it');

    const hybrid = await new MemorySearch(store, { vectors, client }).search(['local:main'], question, TZ, NAMES);
    assert.equal(hybrid.mode, 'hybrid');
    assert.deepEqual(hybrid.hits[0], {
      id: String(fact),
      chat: 'main',
      time: hybrid.hits[0] && 'time' in hybrid.hits[0] ? hybrid.hits[0].time : '',
      sender: 'Alice',
      snippet: 'The wifi password at the cabin is sunflower-42',
    });
    assert.ok(!hybrid.hits.some((h) => 'id' in h && h.id === String(other)), "the family group's fact is not main's");
    const both = await new MemorySearch(store, { vectors, client }).search(['local:main', 'local:family'], question, TZ, NAMES);
    assert.deepEqual(
      both.hits
        .slice(0, 2)
        .map((h) => ('id' in h ? Number(h.id) : 0))
        .sort(),
      [fact, other].sort(),
      'the main group searching both sees both',
    );
  });

  test('time and sender filters hold for hits by meaning too', async () => {
    const now = Date.now();
    const old = say('local:main', 'The garage door code is 1234', Date.parse('2025-03-10T10:00:00Z'), 'Ben');
    const newer = say('local:main', 'The garage door code is 9876', Date.parse('2025-07-10T10:00:00Z'), 'Clara');
    say('local:main', 'nothing to see', now);
    const { client } = startEmbedder();
    await until(allEmbedded, 'every message embedded');
    const memory = new MemorySearch(store, { vectors, client });
    const march = await memory.search(['local:main'], { text: 'pin for the car shed', from: '2025-03-01', to: '2025-03-31' }, TZ, NAMES);
    assert.deepEqual(
      march.hits.map((h) => ('id' in h ? Number(h.id) : 0)),
      [old],
    );
    const byClara = await memory.search(['local:main'], { text: 'pin for the car shed', sender: 'clara' }, TZ, NAMES);
    assert.deepEqual(
      byClara.hits.map((h) => ('id' in h ? Number(h.id) : 0)),
      [newer],
    );
  });

  test('of two hits alike, the newer comes first (the first test shows a clearly better old one still winning)', async () => {
    const now = Date.now();
    const old = say('local:main', "The plumber's number is 0171 111", now - 400 * DAY);
    const changed = say('local:main', "The plumber's number is 0171 222", now - 10 * DAY);
    say('local:main', 'Thanks, that works for me', now - DAY);
    const { client } = startEmbedder();
    await until(allEmbedded, 'every message embedded');
    const memory = new MemorySearch(store, { vectors, client });
    const found = await memory.search(['local:main'], { text: 'plumber number', limit: 3 }, TZ, NAMES);
    assert.deepEqual(
      found.hits.slice(0, 2).map((h) => ('id' in h ? Number(h.id) : 0)),
      [changed, old],
    );
  });

  test('new messages are embedded as they come; the history backward, newest first; only with the bearer key', async () => {
    const now = Date.now();
    for (let i = 0; i < 70; i++) say('local:main', `history message ${i}`, now - (100 - i) * DAY);
    startEmbedder();
    await until(allEmbedded, 'the history embedded');
    const history = fake.inputs().filter((t) => t.startsWith('history message'));
    assert.equal(history[0], 'history message 69', 'the newest first');
    assert.equal(history.at(-1), 'history message 0');
    say('local:main', 'a fresh message', now);
    await until(() => fake.inputs().includes('a fresh message') && allEmbedded(), 'the new message embedded');
    assert.ok(fake.requests.every((r) => r.authorization === `Bearer ${fake.key}` && r.model === 'concepts-256'));
    assert.ok(
      fake.requests.every((r) => r.input.length <= 32),
      'batches of at most 32',
    );
  });

  test('a failing endpoint: search answers on keywords and says why, without the key; embedding resumes by itself', async () => {
    say('local:main', 'The plumber is Mario, number 0171 555', Date.now() - DAY);
    const wrong = 'wrong-key-5678';
    const { embedder: failing, client } = startEmbedder(wrong);
    await until(() => failing.state.failing !== undefined, 'the failure seen');
    assert.match(failing.state.failing ?? '', /401: check PINCER_EMBEDDINGS_KEY/);
    const result = await new MemorySearch(store, { vectors, client }).search(['local:main'], { text: 'plumber' }, TZ, NAMES);
    assert.equal(result.mode, 'keywords');
    assert.equal(result.hits.length, 1, 'keywords still find it');
    assert.ok(result.meaningSkipped, 'it says why meaning was not used');
    assert.ok(!JSON.stringify(result).includes(wrong), 'the key is in no reason');
    await failing.stop();

    fake.failNext(2);
    const { embedder: recovering } = startEmbedder();
    await until(allEmbedded, 'embedded after the endpoint recovered');
    assert.equal(recovering.state.failing, undefined);
    assert.ok(fake.requests.filter((r) => r.status === 503).length === 2, 'it was retried past two failures');
  });

  test("memory files are embedded by passage; an edit drops the old passage's vector", async () => {
    const groupDir = join(dir, 'main');
    mkdirSync(join(groupDir, 'memory'), { recursive: true });
    writeFileSync(join(groupDir, 'CLAUDE.md'), '# About the owner\n\nGrandma takes Cetirizin for her allergy.\n');
    const { client, embedder: e } = startEmbedder();
    const files = new FileIndex(store, createLogger('silent'), (chatId) => e.filesChanged(chatId));
    await files.refresh('local:main', groupDir);
    await until(() => vectors.progress().passages === 2, 'both passages embedded');
    const memory = new MemorySearch(store, { vectors, client });
    const found = await memory.search(['local:main'], { text: 'what pills does granny take against hay fever' }, TZ, NAMES);
    assert.deepEqual(found.hits[0], { file: 'CLAUDE.md', line: 3, chat: 'main', snippet: 'Grandma takes Cetirizin for her allergy.' });

    writeFileSync(join(groupDir, 'CLAUDE.md'), '# About the owner\n\nGrandma now takes Loratadin.\n');
    await files.refresh('local:main', groupDir);
    await until(() => fake.inputs().some((t) => t.includes('Loratadin')), 'the edited passage embedded');
    assert.equal(vectors.progress().passages, 2, 'the old passage went, the new one came');
    const again = await memory.search(['local:main'], { text: 'granny pills' }, TZ, NAMES);
    assert.ok(!JSON.stringify(again).includes('Cetirizin'));
  });

  test('another model: the old vectors go and everything is embedded again in the new space', async () => {
    say('local:main', 'Our flight to Lisbon leaves at 7:45', Date.now() - DAY);
    const first = startEmbedder();
    await until(allEmbedded, 'embedded');
    await first.embedder.stop();
    assert.equal(vectors.space()?.model, 'concepts-256');
    const before = fake.requests.length;
    startEmbedder(fake.key, 'concepts-v2');
    await until(() => vectors.space()?.model === 'concepts-v2' && allEmbedded() && vectors.progress().messages === 1, 'embedded again');
    assert.ok(
      fake.requests.slice(before).some((r) => r.model === 'concepts-v2' && r.input.includes('Our flight to Lisbon leaves at 7:45')),
    );
  });
});

describe('recall by meaning, end to end: real Claude Code in a real sandbox asks search_memory', {
  skip: await sandboxUnavailable(),
}, () => {
  let h: Harness;
  let embeddings: FakeEmbeddings;
  let planted = 0;

  before(async () => {
    embeddings = await startFakeEmbeddings();
    h = await startHarness({
      env: { PINCER_EMBEDDINGS_URL: embeddings.url, PINCER_EMBEDDINGS_KEY: embeddings.key, PINCER_EMBEDDINGS_MODEL: 'concepts-256' },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        // What a real model does with this question: it searches memory with the user's words (offered up front).
        if (!isToolResult(req)) return useTool(req, 'mcp__pincer__search_memory', { query: 'internet pin of our chalet' });
        return { text: `found: ${lastUserText(req)}` };
      },
    });
    planted = h.pincer.store.messages.insert({
      chatId: 'local:main',
      channel: 'local',
      platformId: 'planted-wifi',
      senderId: 'owner',
      senderName: 'Owner',
      text: 'The wifi password at the cabin is sunflower-42',
      sentAt: Date.now() - 365 * DAY,
      fromAssistant: false,
      engages: false,
    }).seq;
    h.pincer.store.groups.advanceCursor('local:main', planted);
  });
  after(async () => {
    await h?.stop();
    await embeddings?.close();
  });

  test('a fact from a year ago, asked in other words, comes back through the real tool; the key never leaves the host', async () => {
    const space = h.pincer.store.db.prepare<[], { low: number }>('SELECT low FROM embedding_space WHERE id = 1');
    await until(() => (space.get()?.low ?? Number.POSITIVE_INFINITY) <= planted, 'the planted fact embedded', 30_000);
    const reply = await h.reply('local:main', await h.send('local:main', '@Andy what is the internet pin of our chalet?'), 60_000);
    assert.match(reply.text, /sunflower-42/, reply.text);
    assert.match(reply.text, /"mode": "hybrid"/);
    for (const req of h.fake.requests)
      assert.ok(!JSON.stringify(req).includes(embeddings.key), 'the embeddings key is in no model request');
  });
});

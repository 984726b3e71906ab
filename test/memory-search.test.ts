// Recall over a group's messages (issue 19): the full-text index kept in step by the store itself, queries that
// cannot be syntax errors, diacritics, phrases, prefixes, time ranges in the group's zone, senders, and the
// index built for the messages a store already had when it is upgraded.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { createLogger } from '../src/log.js';
import { FileIndex, isMemoryFile, MEMORY_FILE_BYTES } from '../src/memory/file-index.js';
import { toFtsQuery } from '../src/memory/fts-query.js';
import { MemorySearch } from '../src/memory/memory-search.js';
import { MessageIndexer } from '../src/memory/message-indexer.js';
import { Store } from '../src/store/index.js';
import { MIGRATIONS } from '../src/store/migrations.js';

const BERLIN = 'Europe/Berlin';
const NAMES = new Map([
  ['local:main', 'main'],
  ['local:trip', 'trip'],
]);

let dir: string;
let store: Store;
let memory: MemorySearch;
let n = 0;

function say(chatId: string, text: string, sentAt: string, sender = 'Alice', fromAssistant = false): number {
  n++;
  return store.messages.insert({
    chatId,
    channel: 'local',
    platformId: `m${n}`,
    senderId: sender.toLowerCase(),
    senderName: sender,
    text,
    sentAt: Date.parse(sentAt),
    fromAssistant,
    engages: !fromAssistant,
  }).seq;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pincer-memory-'));
  store = new Store(join(dir, 'pincer.db'));
  memory = new MemorySearch(store);
  for (const id of NAMES.keys()) store.chats.seen({ id, channel: 'local', isGroup: false }, 0);
});
afterEach(() => {
  store.close();
  rmSync(dir, { recursive: true, force: true });
});

const search = (text: string, extra: Partial<Parameters<MemorySearch['search']>[1]> = {}, chats = ['local:main']) =>
  memory.search(chats, { text, ...extra }, BERLIN, NAMES);

describe('memory search over messages', () => {
  test('both sides are found, accents and case folded, with source and a snippet', async () => {
    const id = say('local:main', 'We booked the Café Zürich for the team dinner', '2025-03-14T18:00:00Z');
    say('local:main', 'Great, the café is confirmed for Friday.', '2025-03-14T18:01:00Z', 'Andy', true);
    const found = await search('cafe zurich');
    assert.equal(found.matched, 'all');
    assert.deepEqual(found.hits[0], {
      id: String(id),
      chat: 'main',
      time: '2025-03-14 19:00',
      sender: 'Alice',
      snippet: 'We booked the [Café] [Zürich] for the team dinner',
    });
    assert.equal((await search('CAFÉ')).hits.length, 2, "the assistant's own messages are found too");
  });

  test('phrases, prefixes, and text that would be FTS5 syntax are all just words', async () => {
    say('local:main', 'the hotel near the station costs 120 EUR per night', '2025-03-01T10:00:00Z');
    say('local:main', 'station first, then the hotel', '2025-03-02T10:00:00Z');
    assert.equal((await search('"hotel near the station"')).hits.length, 1);
    assert.equal((await search('stat*')).hits.length, 2);
    for (const odd of ['NEAR(hotel station)', 'text:hotel', 'hotel AND OR NOT', '"unclosed phrase', 'hotel -station^', 'hotel*station'])
      await assert.doesNotReject(() => search(odd), odd);
    for (const empty of ['  ** " " ', '(', '***', '-:^']) await assert.rejects(() => search(empty), /no words/, empty);
  });

  test('when no message has every word, messages with some come back, marked as such', async () => {
    say('local:main', 'the plumber Mario, phone 0171 555', '2025-05-01T10:00:00Z');
    const found = await search("what was the plumber's number");
    assert.equal(found.matched, 'any');
    assert.match(found.hits[0]?.snippet ?? '', /\[plumber\] Mario/);
    assert.equal((await search('zebra')).matched, 'none');
  });

  test("days are the group's calendar days; the sender filter is any part of the name", async () => {
    // 23:30 on March 31st in Berlin is still March there, though April in UTC.
    say('local:main', 'trip budget agreed: 900', '2025-03-31T21:30:00Z', 'Bob Miller');
    say('local:main', 'trip budget raised to 1200', '2025-04-02T09:00:00Z', 'Alice');
    assert.deepEqual(
      (await search('trip budget', { from: '2025-03-01', to: '2025-03-31' })).hits.map((h) => h.snippet),
      ['[trip] [budget] agreed: 900'],
    );
    assert.equal((await search('trip budget', { sender: 'miller' })).hits.length, 1);
    await assert.rejects(() => search('trip', { from: '2025-02-30' }), /not a date/);
    await assert.rejects(() => search('trip', { from: 'March' }), /YYYY-MM-DD/);
    await assert.rejects(() => search('trip', { from: '2025-04-01', to: '2025-03-01' }), /after/);
  });

  test('only the chats given are searched', async () => {
    say('local:trip', 'the trip secret is 4711', '2025-03-01T10:00:00Z');
    assert.equal((await search('4711')).hits.length, 0);
    assert.equal((await search('4711', {}, ['local:main', 'local:trip'])).hits[0]?.chat, 'trip');
  });

  test('get_memory reads the messages around a hit, in its chat only', async () => {
    const ids = ['one', 'two', 'three', 'four', 'five'].map((t, i) => say('local:main', t, `2025-01-0${i + 1}T10:00:00Z`));
    say('local:trip', 'elsewhere', '2025-01-03T11:00:00Z');
    const hit = store.messages.get(ids[2] as number);
    assert.ok(hit);
    assert.deepEqual(
      memory.around(hit, 1, 5).map((m) => m.text),
      ['two', 'three', 'four', 'five'],
    );
  });
});

test('the indexer follows stored messages by itself, in batches, and stops cleanly', async () => {
  const indexer = new MessageIndexer(store, createLogger('silent'));
  indexer.start();
  try {
    for (let i = 0; i < 1200; i++) say('local:main', `note ${i} about the garden`, '2025-06-01T10:00:00Z');
    const upTo = () => (store.db.prepare('SELECT up_to AS u FROM message_search_progress').get() as { u: number }).u;
    const last = store.messages.latest('local:main', 1)[0]?.seq ?? 0;
    for (let i = 0; i < 100 && upTo() < last; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(upTo(), last, 'every message is indexed without a search');
  } finally {
    indexer.stop();
  }
});

describe('the query language', () => {
  test('each term is quoted; a prefix keeps its star; phrases stay phrases', async () => {
    assert.deepEqual(toFtsQuery('trip "in March" hot*'), {
      all: '"trip" "in March" "hot"*',
      any: '"trip" OR "in March" OR "hot"*',
      terms: 3,
    });
    assert.equal(toFtsQuery('say "hi""')?.all, '"say" "hi"');
    assert.equal(toFtsQuery('a"b')?.all, '"a" "b"');
    assert.deepEqual(toFtsQuery("the plumber's number"), {
      all: '"the" "plumber" "s" "number"',
      any: '"the" OR "plumber" OR "number"',
      terms: 4,
    });
    assert.equal(toFtsQuery('Zürich-Café 2025')?.all, '"Zürich" "Café" "2025"');
    assert.equal(toFtsQuery(' \t '), undefined);
  });
});

test('upgrading a store indexes the messages it already had', async () => {
  const path = join(dir, 'old.db');
  const before = MIGRATIONS.findIndex((m) => m.includes('CREATE VIRTUAL TABLE message_search'));
  const old = new Database(path);
  for (const sql of MIGRATIONS.slice(0, before)) old.exec(sql);
  old.pragma(`user_version = ${before}`);
  old.prepare(`INSERT INTO chats (id, channel, last_seen_at) VALUES ('local:main', 'local', 0)`).run();
  old
    .prepare(
      `INSERT INTO messages (chat_id, channel, platform_id, sender_id, sender_name, text, sent_at) VALUES ('local:main', 'local', 'x', 'u', 'U', 'an old note about the boat', 0)`,
    )
    .run();
  old.close();
  const upgraded = new Store(path);
  try {
    assert.equal((await new MemorySearch(upgraded).search(['local:main'], { text: 'boat' }, BERLIN, NAMES)).hits.length, 1);
  } finally {
    upgraded.close();
  }
});

describe("a group's memory files in the index", () => {
  let groupDir: string;
  let files: FileIndex;
  beforeEach(() => {
    groupDir = join(dir, 'group');
    mkdirSync(join(groupDir, 'conversations'), { recursive: true });
    mkdirSync(join(groupDir, 'memory'), { recursive: true });
    files = new FileIndex(store, createLogger('silent'));
  });

  test('CLAUDE.md, archived conversations and memory notes are found, by file and line', async () => {
    writeFileSync(join(groupDir, 'CLAUDE.md'), '# Memory\n\n- The owner prefers short answers.\n- Dog: Bruno\n');
    writeFileSync(join(groupDir, 'conversations', '2025-03-02-trip.md'), '# Trip\n\nintro\n\n**Owner**: book the ferry to Hydra\n');
    writeFileSync(join(groupDir, 'memory', 'people.md'), 'Maria is the plumber.\n');
    writeFileSync(join(groupDir, 'notes.md'), 'not a memory file: ferry\n');
    await files.refresh('local:main', groupDir);
    assert.deepEqual((await search('Bruno')).hits, [
      { file: 'CLAUDE.md', line: 3, chat: 'main', snippet: '- The owner prefers short answers.\n- Dog: [Bruno]' },
    ]);
    assert.deepEqual(
      (await search('ferry')).hits.map((h) => ('file' in h ? `${h.file}:${h.line}` : h.id)),
      ['conversations/2025-03-02-trip.md:5'],
    );
    assert.equal((await search('plumber')).hits.length, 1);
    assert.equal((await search('Bruno', { from: '2025-01-01' })).hits.length, 0, 'a search by day is of messages only');
  });

  test('an edited file is read again, a removed one leaves the index', async () => {
    writeFileSync(join(groupDir, 'CLAUDE.md'), 'the cat is called Tom\n');
    await files.refresh('local:main', groupDir);
    writeFileSync(join(groupDir, 'CLAUDE.md'), 'the cat is called Felix, formerly known by another name\n');
    utimesSync(join(groupDir, 'CLAUDE.md'), new Date(), new Date(Date.now() + 5000));
    await files.refresh('local:main', groupDir);
    assert.equal((await search('Tom')).hits.length, 0);
    assert.equal((await search('Felix')).hits.length, 1);
    rmSync(join(groupDir, 'CLAUDE.md'));
    await files.refresh('local:main', groupDir);
    assert.equal((await search('Felix')).hits.length, 0);
  });

  test('links, FIFOs and files too big are never read: the host indexes only regular files inside the folder', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret.md'), 'HOST-SECRET kiwi\n');
    symlinkSync(join(outside, 'secret.md'), join(groupDir, 'memory', 'link.md'));
    symlinkSync(join(outside, 'secret.md'), join(groupDir, 'CLAUDE.md'));
    rmSync(join(groupDir, 'conversations'), { recursive: true });
    symlinkSync(outside, join(groupDir, 'conversations'));
    execFileSync('mkfifo', [join(groupDir, 'memory', 'pipe.md')]);
    writeFileSync(join(groupDir, 'memory', 'huge.md'), `kiwi ${'x'.repeat(MEMORY_FILE_BYTES)}`);
    await files.refresh('local:main', groupDir);
    assert.equal((await search('kiwi')).hits.length, 0);
    assert.equal((await search('HOST-SECRET')).hits.length, 0);
  });

  test('which paths are memory files', async () => {
    for (const ok of ['CLAUDE.md', 'conversations/2025-03-02.md', 'memory/people.md']) assert.ok(isMemoryFile(ok), ok);
    for (const no of ['notes.md', 'memory/a/b.md', 'memory/../CLAUDE.md', 'conversations/x.txt', 'memory/.md', '/etc/passwd', '../x.md'])
      assert.ok(!isMemoryFile(no), no);
  });
});

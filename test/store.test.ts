// Store on a temp file: schema versions, file mode, idempotent messages, cursors, pending input, outbox, one main group.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { EGRESS_MAX_AGE_MS, EGRESS_ROWS_PER_GROUP } from '../src/store/egress.js';
import { type NewMessage, Store } from '../src/store/index.js';
import { MIGRATIONS } from '../src/store/migrations.js';

let dir: string;
let path: string;
let store: Store;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'pincer-store-'));
  path = join(dir, 'pincer.db');
  store = new Store(path);
});
afterEach(() => {
  if (store.db.open) store.close();
  rmSync(dir, { recursive: true, force: true });
});

const T0 = Date.UTC(2026, 0, 1);

function chat(id: string): void {
  store.chats.seen({ id, channel: 'local', isGroup: true }, T0);
}

function group(chatId: string, options: { isMain?: boolean; folder?: string; cursor?: number } = {}) {
  chat(chatId);
  return store.groups.register(
    {
      chatId,
      folder: options.folder ?? chatId.replace(/[^a-z0-9]/g, '-'),
      trigger: '@Andy',
      respondToAll: false,
      isMain: options.isMain ?? false,
    },
    T0,
    options.cursor ?? 0,
  );
}

let platformCounter = 0;
function msg(chatId: string, over: Partial<NewMessage> = {}): NewMessage {
  platformCounter++;
  return {
    chatId,
    channel: 'local',
    platformId: `p${platformCounter}`,
    senderId: 'u1',
    senderName: 'Bob',
    text: `message ${platformCounter}`,
    sentAt: T0 + platformCounter,
    fromAssistant: false,
    engages: false,
    ...over,
  };
}

describe('Store: schema and file', () => {
  test('migrations set user_version, and reopening the same file keeps data and the version', () => {
    assert.equal(store.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    chat('local:a');
    const { seq } = store.messages.insert(msg('local:a', { text: 'kept' }));
    store.close();
    store = new Store(path);
    assert.equal(store.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
    assert.equal(store.messages.get(seq)?.text, 'kept');
  });

  test('a file with a newer schema version than this build is refused', () => {
    store.db.pragma(`user_version = ${MIGRATIONS.length + 1}`);
    store.close();
    assert.throws(() => new Store(path), /newer than this pincer/);
    store = new Store(join(dir, 'other.db')); // for afterEach
  });

  test('the database file (and its WAL) is private: mode 0600', () => {
    assert.equal(statSync(path).mode & 0o777, 0o600);
    chat('local:a');
    store.messages.insert(msg('local:a'));
    assert.equal(statSync(`${path}-wal`).mode & 0o777, 0o600);
  });

  test('the store runs in WAL mode with foreign keys enforced', () => {
    assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
    assert.throws(() => store.messages.insert(msg('local:unknown-chat')), /FOREIGN KEY/);
  });
});

describe('Store: messages', () => {
  test('insert is idempotent on (chat_id, platform_id): the second insert is a duplicate with the same seq', () => {
    chat('local:a');
    const m = msg('local:a', { platformId: 'same', text: 'first' });
    const first = store.messages.insert(m);
    assert.equal(first.duplicate, false);
    const second = store.messages.insert({ ...m, text: 'changed' });
    assert.deepEqual(second, { seq: first.seq, duplicate: true });
    assert.equal(store.messages.get(first.seq)?.text, 'first', 'the duplicate does not overwrite');
    assert.equal(store.messages.after('local:a', 0, 10).length, 1);
  });

  test('the same platform id in another chat is a new message', () => {
    chat('local:a');
    chat('local:b');
    const a = store.messages.insert(msg('local:a', { platformId: 'shared' }));
    const b = store.messages.insert(msg('local:b', { platformId: 'shared' }));
    assert.equal(b.duplicate, false);
    assert.notEqual(b.seq, a.seq);
    assert.equal(store.messages.get(b.seq)?.chatId, 'local:b');
  });

  test('a stored message reads back with every field', () => {
    chat('local:a');
    const m = msg('local:a', { fromAssistant: true, engages: true, senderName: 'Zoë', text: 'a <b>' });
    const { seq } = store.messages.insert(m);
    assert.deepEqual(store.messages.get(seq), { seq, threadId: null, ...m });
    assert.equal(store.messages.get(seq + 1000), undefined);
  });

  test("changes emits 'appended' with the chat id for new messages only", () => {
    chat('local:a');
    const seen: string[] = [];
    store.messages.changes.on('appended', (chatId) => seen.push(chatId));
    const m = msg('local:a', { platformId: 'x' });
    store.messages.insert(m);
    store.messages.insert(m);
    store.messages.insert(m);
    assert.deepEqual(seen, ['local:a']);
    store.messages.insert(msg('local:a'));
    assert.deepEqual(seen, ['local:a', 'local:a']);
  });

  test('seqs grow across chats, and after() and maxSeq() are per chat', () => {
    chat('local:a');
    chat('local:b');
    const a1 = store.messages.insert(msg('local:a')).seq;
    const b1 = store.messages.insert(msg('local:b')).seq;
    const a2 = store.messages.insert(msg('local:a')).seq;
    assert.ok(a1 < b1 && b1 < a2);
    assert.deepEqual(
      store.messages.after('local:a', 0, 10).map((m) => m.seq),
      [a1, a2],
    );
    assert.deepEqual(
      store.messages.after('local:a', a1, 10).map((m) => m.seq),
      [a2],
    );
    assert.equal(store.messages.maxSeq('local:a'), a2);
    assert.equal(store.messages.maxSeq('local:b'), b1);
    assert.equal(store.messages.maxSeq('local:none'), 0);
  });

  test('pendingInput returns the newest N inbound messages after the seq, oldest first, skipping assistant messages', () => {
    chat('local:a');
    chat('local:b');
    const s1 = store.messages.insert(msg('local:a', { text: 'one' })).seq;
    store.messages.insert(msg('local:a', { text: 'two' }));
    store.messages.insert(msg('local:a', { text: 'reply', fromAssistant: true }));
    store.messages.insert(msg('local:b', { text: 'other chat' }));
    store.messages.insert(msg('local:a', { text: 'three' }));
    store.messages.insert(msg('local:a', { text: 'four' }));
    const texts = (after: number, limit: number) => store.messages.pendingInput('local:a', after, limit).map((m) => m.text);
    assert.deepEqual(texts(0, 10), ['one', 'two', 'three', 'four']);
    assert.deepEqual(texts(0, 2), ['three', 'four'], 'the newest two, oldest first');
    assert.deepEqual(texts(s1, 10), ['two', 'three', 'four'], 'only after the seq');
    assert.deepEqual(texts(store.messages.maxSeq('local:a'), 10), []);
  });

  test('hasEngaging is true only for an engaging message after the seq in that chat', () => {
    chat('local:a');
    chat('local:b');
    assert.equal(store.messages.hasEngaging('local:a', 0), false);
    store.messages.insert(msg('local:a', { engages: false }));
    store.messages.insert(msg('local:b', { engages: true }));
    assert.equal(store.messages.hasEngaging('local:a', 0), false, 'another chat does not count');
    const e = store.messages.insert(msg('local:a', { engages: true })).seq;
    assert.equal(store.messages.hasEngaging('local:a', 0), true);
    assert.equal(store.messages.hasEngaging('local:a', e - 1), true);
    assert.equal(store.messages.hasEngaging('local:a', e), false, 'nothing engaging after it');
  });
});

describe('Store: chats and groups', () => {
  test('chats.seen keeps an earlier name and the newest last-seen time', () => {
    store.chats.seen({ id: 'local:a', channel: 'local', name: 'Team', isGroup: true }, T0 + 10);
    store.chats.seen({ id: 'local:a', channel: 'local', isGroup: true }, T0 + 5);
    assert.deepEqual(store.chats.get('local:a'), { id: 'local:a', channel: 'local', name: 'Team', isGroup: true, lastSeenAt: T0 + 10 });
  });

  test('register stores the group and its starting cursor', () => {
    const g = group('local:a', { folder: 'team', cursor: 7 });
    assert.deepEqual(store.groups.get('local:a'), g);
    assert.deepEqual(store.groups.byFolder('team'), g);
    assert.deepEqual(store.groups.state('local:a'), { cursor: 7, sessionId: null });
    assert.throws(() => store.groups.state('local:none'), /not registered/);
  });

  test('advanceCursor moves the cursor forward and never backwards', () => {
    group('local:a', { cursor: 5 });
    store.groups.advanceCursor('local:a', 10);
    assert.equal(store.groups.state('local:a').cursor, 10);
    store.groups.advanceCursor('local:a', 3);
    assert.equal(store.groups.state('local:a').cursor, 10, 'a late commit does not move it back');
    store.groups.advanceCursor('local:a', 10);
    assert.equal(store.groups.state('local:a').cursor, 10);
    store.groups.advanceCursor('local:a', 11);
    assert.equal(store.groups.state('local:a').cursor, 11);
  });

  test('setSession stores and clears the session id', () => {
    group('local:a');
    store.groups.setSession('local:a', 'sess-1');
    assert.equal(store.groups.state('local:a').sessionId, 'sess-1');
    store.groups.setSession('local:a', null);
    assert.equal(store.groups.state('local:a').sessionId, null);
  });

  test('the unique index allows only one main group', () => {
    group('local:main', { isMain: true, folder: 'main' });
    group('local:a', { folder: 'a' });
    group('local:b', { folder: 'b' });
    chat('local:c');
    assert.throws(
      () => store.groups.register({ chatId: 'local:c', folder: 'c', trigger: '@Andy', respondToAll: false, isMain: true }, T0, 0),
      /UNIQUE/,
    );
    assert.equal(store.groups.list().filter((g) => g.isMain).length, 1);
  });

  test('two groups cannot share a folder', () => {
    group('local:a', { folder: 'same' });
    assert.throws(() => group('local:b', { folder: 'same' }), /UNIQUE/);
  });

  test('a transaction that throws leaves no writes behind', () => {
    chat('local:a');
    assert.throws(() =>
      store.transaction(() => {
        store.messages.insert(msg('local:a'));
        throw new Error('boom');
      }),
    );
    assert.equal(store.messages.maxSeq('local:a'), 0);
  });
});

describe('Store: outbox', () => {
  const row = (id: number) =>
    store.db.prepare('SELECT status, attempts, next_attempt_at, platform_id, last_error, sent_at FROM outbox WHERE id = ?').get(id) as {
      status: string;
      attempts: number;
      next_attempt_at: number;
      platform_id: string | null;
      last_error: string | null;
      sent_at: number | null;
    };

  test('a new item is pending, due from its creation time', () => {
    chat('local:a');
    const id = store.outbox.add('local:a', 'hi', null, T0);
    assert.deepEqual(store.outbox.get(id), {
      id,
      chatId: 'local:a',
      text: 'hi',
      replyTo: null,
      status: 'pending',
      attempts: 0,
      nextAttemptAt: T0,
      platformId: null,
      lastError: null,
      createdAt: T0,
      partsSent: 0,
      filePath: null,
      sender: null,
    });
    assert.deepEqual(store.outbox.due(T0 - 1, 10), []);
    assert.deepEqual(
      store.outbox.due(T0, 10).map((i) => i.id),
      [id],
    );
  });

  test('due returns pending items in id order up to the limit; nextDueAt is the earliest pending time', () => {
    chat('local:a');
    assert.equal(store.outbox.nextDueAt(), null);
    const a = store.outbox.add('local:a', 'a', null, T0 + 30);
    const b = store.outbox.add('local:a', 'b', null, T0 + 10);
    const c = store.outbox.add('local:a', 'c', null, T0 + 20);
    assert.equal(store.outbox.nextDueAt(), T0 + 10);
    assert.deepEqual(
      store.outbox.due(T0 + 100, 10).map((i) => i.id),
      [a, b, c],
    );
    assert.deepEqual(
      store.outbox.due(T0 + 100, 2).map((i) => i.id),
      [a, b],
    );
    assert.deepEqual(
      store.outbox.due(T0 + 20, 10).map((i) => i.id),
      [b, c],
    );
  });

  test('markSent sets sent, the platform id and time, counts the attempt, and leaves the due list', () => {
    chat('local:a');
    const id = store.outbox.add('local:a', 'hi', null, T0);
    store.outbox.markSent(id, 'plat-1', T0 + 5);
    assert.deepEqual(row(id), {
      status: 'sent',
      attempts: 1,
      next_attempt_at: T0,
      platform_id: 'plat-1',
      last_error: null,
      sent_at: T0 + 5,
    });
    assert.deepEqual(store.outbox.due(T0 + 1000, 10), []);
    assert.equal(store.outbox.nextDueAt(), null);
  });

  test('markSent on an already-sent row changes nothing', () => {
    chat('local:a');
    const id = store.outbox.add('local:a', 'hi', null, T0);
    store.outbox.markSent(id, 'plat-1', T0 + 5);
    const before = row(id);
    store.outbox.markSent(id, 'plat-2', T0 + 9);
    assert.deepEqual(row(id), before);
  });

  test('scheduleRetry counts the attempt, keeps the error and moves the due time', () => {
    chat('local:a');
    const id = store.outbox.add('local:a', 'hi', null, T0);
    store.outbox.scheduleRetry(id, 'timeout', T0 + 1000);
    assert.deepEqual(row(id), {
      status: 'pending',
      attempts: 1,
      next_attempt_at: T0 + 1000,
      platform_id: null,
      last_error: 'timeout',
      sent_at: null,
    });
    assert.deepEqual(store.outbox.due(T0 + 999, 10), []);
    assert.equal(store.outbox.due(T0 + 1000, 10).length, 1);
    assert.equal(store.outbox.nextDueAt(), T0 + 1000);
    store.outbox.scheduleRetry(id, 'reset', T0 + 6000);
    assert.equal(row(id).attempts, 2);
    assert.equal(row(id).last_error, 'reset');
  });

  test('markFailed gives the item up: failed, counted, the error kept, no longer due', () => {
    chat('local:a');
    const id = store.outbox.add('local:a', 'hi', null, T0);
    store.outbox.markFailed(id, 'blocked');
    assert.equal(row(id).status, 'failed');
    assert.equal(row(id).attempts, 1);
    assert.equal(row(id).last_error, 'blocked');
    assert.deepEqual(store.outbox.due(T0 + 1000, 10), []);
    assert.equal(store.outbox.nextDueAt(), null);
  });

  test('scheduleRetry, markFailed and markSent do not touch a row that is no longer pending', () => {
    chat('local:a');
    const sent = store.outbox.add('local:a', 'a', null, T0);
    store.outbox.markSent(sent, 'plat-1', T0);
    store.outbox.scheduleRetry(sent, 'late', T0 + 1000);
    store.outbox.markFailed(sent, 'late');
    assert.deepEqual(row(sent), { status: 'sent', attempts: 1, next_attempt_at: T0, platform_id: 'plat-1', last_error: null, sent_at: T0 });
    const failed = store.outbox.add('local:a', 'b', null, T0);
    store.outbox.markFailed(failed, 'gone');
    store.outbox.markSent(failed, 'plat-2', T0);
    assert.equal(row(failed).status, 'failed');
    assert.equal(row(failed).platform_id, null);
  });
});

describe('groups: isolation settings', () => {
  test('each group gets its own sandbox slot, never reused, and the open egress policy by default', () => {
    const a = group('local:a');
    const b = group('local:b');
    assert.equal(a.sandboxSlot, 1);
    assert.equal(b.sandboxSlot, 2);
    assert.deepEqual(a.egressPolicy, { mode: 'open' });
    assert.deepEqual(a.extraMounts, []);
  });

  test("a removed group's slot (its sandbox uid) is never given to a later group, across restarts too", () => {
    group('local:a');
    const b = group('local:b');
    store.groups.remove('local:b');
    const c = group('local:c');
    assert.notEqual(c.sandboxSlot, b.sandboxSlot);
    store.groups.remove('local:c');
    store.close();
    store = new Store(path);
    const d = group('local:d');
    assert.ok(d.sandboxSlot > c.sandboxSlot, `slot ${d.sandboxSlot} after ${c.sandboxSlot}`);
    const bAgain = group('local:b');
    assert.ok(bAgain.sandboxSlot > d.sandboxSlot, 'joining again gets a new slot too');
  });

  test('upgrading a store starts the slot counter after the highest slot in use', () => {
    store.close();
    rmSync(path);
    const before = MIGRATIONS.findIndex((m) => m.includes('CREATE TABLE sequences'));
    const old = new Database(path);
    for (const sql of MIGRATIONS.slice(0, before)) old.exec(sql);
    old.pragma(`user_version = ${before}`);
    old.prepare(`INSERT INTO chats (id, channel, last_seen_at) VALUES ('local:a', 'local', 0)`).run();
    old.prepare(`INSERT INTO groups (chat_id, folder, trigger, created_at, sandbox_slot) VALUES ('local:a', 'a', '@Andy', 0, 7)`).run();
    old.close();
    store = new Store(path);
    assert.equal(group('local:b').sandboxSlot, 8);
  });

  test('policies and mounts are stored validated; a hand-edited invalid row fails loudly, naming the group', () => {
    group('local:a');
    store.groups.setEgressPolicy('local:a', { mode: 'allowlist', domains: ['Example.ORG.'] });
    assert.deepEqual(store.groups.get('local:a')?.egressPolicy, { mode: 'allowlist', domains: ['example.org'] });
    assert.throws(() => store.groups.setEgressPolicy('local:a', { mode: 'everything' } as never));
    store.groups.setExtraMounts('local:a', [{ hostPath: '/srv/notes', readOnly: true }]);
    assert.deepEqual(store.groups.get('local:a')?.extraMounts, [{ hostPath: '/srv/notes', readOnly: true }]);
    store.db.prepare(`UPDATE groups SET egress_policy = '{"mode":"wide"}' WHERE chat_id = 'local:a'`).run();
    assert.throws(() => store.groups.get('local:a'), /local:a: stored egress_policy is invalid/);
  });
});

describe('egress log', () => {
  test('records connections per group, newest first, and prunes old ones', () => {
    const entry = {
      chatId: 'local:a',
      method: 'CONNECT',
      host: 'example.org',
      port: 443,
      allowed: true,
      reason: null,
      address: '93.184.215.14',
      count: 1,
    };
    store.egress.record({ ...entry, bytesUp: 10, bytesDown: 20, startedAt: T0, durationMs: 5 });
    store.egress.record({
      ...entry,
      host: 'metadata',
      allowed: false,
      reason: 'link-local',
      bytesUp: 0,
      bytesDown: 0,
      startedAt: T0 + 10,
      durationMs: 1,
    });
    const recent = store.egress.recent('local:a', 10);
    assert.deepEqual(
      recent.map((e) => [e.host, e.allowed]),
      [
        ['metadata', false],
        ['example.org', true],
      ],
    );
    assert.equal(store.egress.prune(T0 + 5), 1);
    assert.equal(store.egress.recent('local:a', 10).length, 1);
  });

  test('stays bounded while running: a flooding group keeps only its newest rows, others keep theirs, old rows go', () => {
    const entry = {
      method: 'CONNECT',
      port: 443,
      allowed: true,
      reason: null,
      address: null,
      bytesUp: 0,
      bytesDown: 0,
      durationMs: 1,
      count: 1,
    };
    store.egress.record({ ...entry, chatId: 'local:quiet', host: 'old.example', startedAt: T0 });
    store.egress.record({ ...entry, chatId: 'local:quiet', host: 'kept.example', startedAt: T0 + EGRESS_MAX_AGE_MS / 2 });
    const flood = EGRESS_ROWS_PER_GROUP + 1000;
    for (let i = 0; i < flood; i++) {
      store.egress.record({ ...entry, chatId: 'local:flood', host: `h${i}.example`, startedAt: T0 + EGRESS_MAX_AGE_MS + 3600_000 + i });
    }
    const count = (chatId: string) =>
      (store.db.prepare('SELECT COUNT(*) AS n FROM egress_log WHERE chat_id = ?').get(chatId) as { n: number }).n;
    assert.ok(count('local:flood') <= EGRESS_ROWS_PER_GROUP + 200, `${count('local:flood')} rows kept of a flood of ${flood}`);
    assert.equal(store.egress.recent('local:flood', 1)[0]?.host, `h${flood - 1}.example`, 'the newest rows are the ones kept');
    assert.deepEqual(
      store.egress.recent('local:quiet', 10).map((e) => e.host),
      ['kept.example'],
      'the other group keeps its rows; only the one older than the age bound went',
    );
  });
});

// The local HTTP API: bad input gets a clear 4xx and stores nothing; without credentials, replies say what to set.
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Harness, startHarness } from './helpers/harness.js';

const countMessages = (h: Harness) => (h.pincer.store.db.prepare('SELECT COUNT(*) AS n FROM messages').get() as { n: number }).n;

describe('local HTTP API input handling', () => {
  let h: Harness;
  // No credentials: nothing here needs a model or a sandbox.
  before(async () => {
    h = await startHarness({ env: { ANTHROPIC_API_KEY: '' } });
  });
  after(async () => h?.stop());

  test('GET /healthz needs no token', async () => {
    const res = await fetch(`${h.base}/healthz`);
    assert.equal(res.status, 200);
  });

  test('a missing or wrong token is refused with 401', async () => {
    const wrong = await h.request('POST', '/api/v1/messages', { chat: 'local:main', text: 'hi' }, 'not-the-token');
    assert.equal(wrong.status, 401);
    assert.match(String(wrong.body.error), /token/);
    const missing = await h.request('GET', '/api/v1/messages?chat=local:main', undefined, null);
    assert.equal(missing.status, 401);
    assert.equal(countMessages(h), 0);
  });

  test('invalid JSON, bad chat ids, empty, oversized and NUL texts are refused and nothing is stored', async () => {
    const invalidJson = await h.request('POST', '/api/v1/messages', '{"chat": "local:main", "text": ');
    assert.equal(invalidJson.status, 400);
    assert.match(String(invalidJson.body.error), /JSON/i);

    for (const chat of ['main', 'telegram:1', 'local:../etc', 'local:UPPER', 'local:', `local:${'a'.repeat(65)}`]) {
      const res = await h.request('POST', '/api/v1/messages', { chat, text: 'hi' });
      assert.equal(res.status, 400, chat);
      assert.match(String(res.body.error), /^chat: must be local:<name>/, chat);
    }
    for (const text of ['', '   \n ']) {
      const res = await h.request('POST', '/api/v1/messages', { chat: 'local:main', text });
      assert.equal(res.status, 400);
      assert.match(String(res.body.error), /text: must not be empty/);
    }
    const long = await h.request('POST', '/api/v1/messages', { chat: 'local:main', text: 'x'.repeat(150_000) });
    assert.equal(long.status, 400);
    assert.match(String(long.body.error), /at most 100000 characters/);
    const huge = await h.request('POST', '/api/v1/messages', { chat: 'local:main', text: 'x'.repeat(1_000_000) });
    assert.equal(huge.status, 413);
    assert.match(String(huge.body.error), /larger than/);
    const nul = await h.request('POST', '/api/v1/messages', { chat: 'local:main', text: 'a\u0000b' });
    assert.equal(nul.status, 400);
    const extra = await h.request('POST', '/api/v1/messages', { chat: 'local:main', text: 'hi', admin: true });
    assert.equal(extra.status, 400);
    const notObject = await h.request('POST', '/api/v1/messages', '[1,2]');
    assert.equal(notObject.status, 400);
    const badQuery = await h.request('GET', '/api/v1/messages?chat=local:main&after=-1');
    assert.equal(badQuery.status, 400);
    assert.equal(countMessages(h), 0, 'no bad request stored anything');
  });

  test('a retried message with the same id is stored once', async () => {
    const first = await h.request('POST', '/api/v1/messages', { chat: 'local:dup', text: 'once', id: 'client-1' });
    const again = await h.request('POST', '/api/v1/messages', { chat: 'local:dup', text: 'once', id: 'client-1' });
    assert.equal(first.status, 202);
    assert.equal(again.status, 200);
    assert.equal(again.body.duplicate, true);
    assert.equal(again.body.id, first.body.id);
    const stored = (await h.messages('local:dup')).filter((m) => !m.fromAssistant);
    assert.equal(stored.length, 1);
  });

  test('without model credentials the service runs and each engaged message is told what to set', async () => {
    const id = await h.send('local:main', 'hello?');
    const reply = await h.reply('local:main', id, 10_000);
    assert.match(reply.text, /ANTHROPIC_API_KEY/);
    assert.match(reply.text, /CLAUDE_CODE_OAUTH_TOKEN/);
    const id2 = await h.send('local:main', 'still there?');
    const reply2 = await h.reply('local:main', id2, 10_000);
    assert.match(reply2.text, /ANTHROPIC_API_KEY/, 'the group is not stuck after the first answer');
  });

  test('long-poll returns as soon as a message arrives', async () => {
    const cursor = (await h.request('GET', '/api/v1/messages?chat=local:poll')).body.cursor as string;
    const started = Date.now();
    const poll = h.request('GET', `/api/v1/messages?chat=local:poll&after=${cursor}&wait=20`);
    setTimeout(() => void h.send('local:poll', 'wake up'), 200);
    const res = await poll;
    const messages = res.body.messages as Array<{ text: string }>;
    assert.equal(messages[0]?.text, 'wake up');
    assert.ok(Date.now() - started < 5000, 'answered long before the 20 s wait');
  });

  test('the store is private to its owner', () => {
    assert.equal(statSync(join(h.home, 'pincer.db')).mode & 0o777, 0o600);
  });
});

test('without PINCER_TOKEN a token is generated once into the state dir (0600) and kept across restarts', async () => {
  const h = await startHarness({ env: { PINCER_TOKEN: '', ANTHROPIC_API_KEY: '' } });
  const path = join(h.home, 'token');
  try {
    const token = readFileSync(path, 'utf8').trim();
    assert.ok(token.length >= 24);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const ok = await h.request('GET', '/api/v1/messages?chat=local:main', undefined, token);
    assert.equal(ok.status, 200);
    await h.pincer.stop();
    const { loadOrCreateToken } = await import('../src/channels/local/token.js');
    assert.equal(loadOrCreateToken(h.home, undefined), token);
  } finally {
    const { rmSync } = await import('node:fs');
    await h.fake.close();
    rmSync(h.home, { recursive: true, force: true });
  }
});

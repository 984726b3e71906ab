// The web page's server side, without a browser: logging in and out, the cookie's attributes, one-time
// links, CSRF and DNS-rebinding refusals, the live WebSocket's Origin check, and what it announces.
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, describe, test } from 'node:test';
import { WebSocket } from 'ws';
import { describeToolUse } from '../src/agent/tool-use.js';
import type { LocalChannel } from '../src/channels/local/channel.js';
import type { InboundSink } from '../src/channels/types.js';
import { pincer } from './helpers/cli.js';
import { type Harness, startHarness } from './helpers/harness.js';
import { startLocalChannel } from './helpers/local-channel.js';

const TOKEN = 'test-token-0123456789';

interface Reply {
  status: number;
  headers: Headers;
  text: string;
}

describe('web page: server side', () => {
  let h: Harness;
  let origin: string;
  before(async () => {
    // No credentials: nothing here needs an agent.
    h = await startHarness({ env: { ANTHROPIC_API_KEY: '' } });
    origin = h.base;
  });
  after(async () => h?.stop());

  const call = async (method: string, path: string, init: { headers?: Record<string, string>; body?: unknown } = {}): Promise<Reply> => {
    const headers = { ...init.headers };
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(h.base + path, {
      method,
      headers,
      redirect: 'manual',
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };

  const login = async (): Promise<string> => {
    const res = await call('POST', '/login', { body: { token: TOKEN }, headers: { origin } });
    assert.equal(res.status, 200, res.text);
    const cookie = res.headers.get('set-cookie') ?? '';
    const value = /pincer_session=([^;]+)/.exec(cookie)?.[1];
    assert.ok(value, `no session cookie in ${cookie}`);
    return `pincer_session=${value}`;
  };

  test('the page needs a login; the login page and assets carry a strict CSP', async () => {
    const root = await call('GET', '/');
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/login');
    const page = await call('GET', '/login');
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-type') ?? '', /text\/html/);
    assert.match(page.text, /id="token"/);
    const csp = page.headers.get('content-security-policy') ?? '';
    assert.match(csp, /script-src 'self'/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline/);
    assert.equal(page.headers.get('x-content-type-options'), 'nosniff');
    assert.equal(page.headers.get('referrer-policy'), 'no-referrer');
    const marked = await call('GET', '/assets/vendor/marked.js');
    assert.equal(marked.status, 200);
    assert.match(marked.headers.get('content-type') ?? '', /text\/javascript/);
    assert.match(marked.text, /export\s*\{/);
    const app = await call('GET', '/assets/app.js');
    assert.equal(app.status, 200);
  });

  test('asset paths never reach the file system outside the page', async () => {
    for (const path of [
      '/assets/../package.json',
      '/assets/%2e%2e/package.json',
      '/assets/..%2f..%2fpackage.json',
      '/assets/types.d.ts',
      '/assets/vendor/marked.d.ts',
      '/assets/index.html',
      '/assets/nothing.js',
    ]) {
      const res = await call('GET', path);
      assert.notEqual(res.status, 200, path);
      assert.doesNotMatch(res.text, /"dependencies"/, path);
    }
  });

  test('logging in with the token sets an HttpOnly, SameSite=Strict cookie that opens the page and the API', async () => {
    const wrong = await call('POST', '/login', { body: { token: 'nope-nope-nope-nope' }, headers: { origin } });
    assert.equal(wrong.status, 401);
    assert.match(wrong.text, /wrong token/);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const res = await call('POST', '/login', { body: { token: TOKEN }, headers: { origin } });
    const setCookie = res.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /HttpOnly/i);
    assert.match(setCookie, /SameSite=Strict/i);
    assert.match(setCookie, /Path=\//);
    const cookie = `pincer_session=${/pincer_session=([^;]+)/.exec(setCookie)?.[1]}`;
    const page = await call('GET', '/', { headers: { cookie } });
    assert.equal(page.status, 200);
    assert.match(page.text, /\/assets\/app\.js/);
    assert.equal(page.headers.get('cache-control'), 'no-store');
    const groups = await call('GET', '/api/v1/groups', { headers: { cookie } });
    assert.equal(groups.status, 200);
    assert.ok(JSON.parse(groups.text).groups.length >= 1, groups.text);
    // The store keeps only a hash of the session.
    const stored = h.pincer.store.db.prepare('SELECT token_hash FROM web_sessions').all() as Array<{ token_hash: string }>;
    assert.ok(stored.length > 0);
    assert.ok(!stored.some((r) => cookie.includes(r.token_hash)));
  });

  test('a cookie changes something only with our own Origin (CSRF), and a foreign login is refused', async () => {
    const cookie = await login();
    const body = { chat: 'local:web-csrf', text: 'hello' };
    const noOrigin = await call('POST', '/api/v1/messages', { headers: { cookie }, body });
    assert.equal(noOrigin.status, 403);
    const foreign = await call('POST', '/api/v1/messages', { headers: { cookie, origin: 'http://evil.example' }, body });
    assert.equal(foreign.status, 403);
    assert.equal(h.pincer.store.messages.maxSeq('local:web-csrf'), 0, 'a refused request stored nothing');
    const own = await call('POST', '/api/v1/messages', { headers: { cookie, origin }, body });
    assert.equal(own.status, 202, own.text);
    const foreignLogin = await call('POST', '/login', { body: { token: TOKEN }, headers: { origin: 'http://evil.example' } });
    assert.equal(foreignLogin.status, 403);
  });

  /** fetch() will not send another Host than the URL's; node:http will. */
  const withHost = (path: string, host: string, headers: Record<string, string> = {}) =>
    new Promise<{ status: number; text: string }>((resolve, reject) => {
      const url = new URL(h.base);
      const req = httpRequest({ host: url.hostname, port: url.port, path, headers: { ...headers, host } }, (res) => {
        let text = '';
        res.on('data', (chunk: Buffer) => {
          text += chunk.toString();
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      });
      req.on('error', reject);
      req.end();
    });

  test('a request naming a foreign host (DNS rebinding) is refused; IP addresses and localhost are not', async () => {
    const port = new URL(h.base).port;
    const rebound = await withHost('/login', `evil.example:${port}`);
    assert.equal(rebound.status, 421);
    assert.match(rebound.text, /PINCER_ALLOWED_HOSTS/);
    const api = await withHost('/api/v1/groups', `evil.example:${port}`, { authorization: `Bearer ${TOKEN}` });
    assert.equal(api.status, 421);
    for (const host of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, `app.localhost:${port}`]) {
      const ok = await withHost('/login', host);
      assert.equal(ok.status, 200, host);
    }
  });

  test('a one-time login link works once, within its time', async () => {
    const created = await h.request('POST', '/api/v1/login-links');
    assert.equal(created.status, 201);
    const url = new URL(String(created.body.url));
    assert.equal(url.pathname, '/login');
    const code = url.searchParams.get('code') ?? '';
    const first = await call('GET', `/login?code=${code}`);
    assert.equal(first.status, 200);
    assert.match(first.headers.get('set-cookie') ?? '', /pincer_session=.+HttpOnly/i);
    assert.match(first.text, /http-equiv="refresh"/);
    const again = await call('GET', `/login?code=${code}`);
    assert.equal(again.status, 302);
    assert.equal(again.headers.get('location'), '/login?expired=1');
    assert.equal(again.headers.get('set-cookie'), null);
    const made = h.pincer.local.loginLink();
    assert.match(made, /^http:\/\/127\.0\.0\.1:\d+\/login\?code=[\w-]{40,}$/);
    // `pincer web` prints one more, which works.
    const cli = await pincer({ port: h.pincer.local.port, home: h.home }, 'web');
    assert.equal(cli.code, 0, cli.stderr);
    const printed = new URL(cli.stdout.trim());
    const opened = await call('GET', `${printed.pathname}${printed.search}`);
    assert.equal(opened.status, 200);
    assert.match(opened.headers.get('set-cookie') ?? '', /pincer_session=/);
  });

  const connect = (headers: Record<string, string>) =>
    new Promise<{ socket: WebSocket; first: Record<string, unknown> } | { status: number }>((resolve) => {
      const socket = new WebSocket(`${h.base.replace('http', 'ws')}/api/v1/live`, { headers });
      socket.once('message', (data) => resolve({ socket, first: JSON.parse(String(data)) }));
      socket.once('unexpected-response', (_req, res) => resolve({ status: res.statusCode ?? 0 }));
      socket.once('error', () => undefined);
    });

  test('the live WebSocket refuses a foreign Origin and a missing login', async () => {
    const cookie = await login();
    const foreign = await connect({ cookie, origin: 'http://evil.example' });
    assert.deepEqual(foreign, { status: 403 });
    const foreignWithToken = await connect({ authorization: `Bearer ${TOKEN}`, origin: 'http://127.0.0.1.evil.example' });
    assert.deepEqual(foreignWithToken, { status: 403 });
    const anonymous = await connect({ origin });
    assert.deepEqual(anonymous, { status: 401 });
    const wrongCookie = await connect({ origin, cookie: 'pincer_session=forged' });
    assert.deepEqual(wrongCookie, { status: 401 });
  });

  test('the live WebSocket announces messages, trace events and task changes, and ends on logout', async () => {
    const cookie = await login();
    const live = await connect({ cookie, origin });
    assert.ok('socket' in live, JSON.stringify(live));
    assert.equal(live.first.type, 'hello');
    assert.equal(live.first.assistantName, 'Andy');
    const seen: Array<Record<string, unknown>> = [];
    live.socket.on('message', (data) => seen.push(JSON.parse(String(data))));
    const until = async (predicate: (m: Record<string, unknown>) => boolean, what: string) => {
      const deadline = Date.now() + 5000;
      while (Date.now() < deadline) {
        if (seen.some(predicate)) return;
        await new Promise((r) => setTimeout(r, 10));
      }
      assert.fail(`no live ${what} in ${JSON.stringify(seen)}`);
    };

    const id = await h.send('local:web-live', 'hi there');
    await until((m) => m.type === 'messages' && m.chat === 'local:web-live', 'messages notice');
    await until((m) => m.type === 'activity' && m.message === id && m.stage === 'received', 'received event');

    const task = await h.request('POST', '/api/v1/tasks', {
      group: 'main',
      prompt: 'water the plants',
      scheduleType: 'cron',
      scheduleValue: '0 9 * * 1-5',
    });
    assert.equal(task.status, 201);
    await until((m) => m.type === 'tasks', 'tasks notice');

    const closed = new Promise<number>((resolve) => live.socket.once('close', (code) => resolve(code)));
    const out = await call('POST', '/logout', { headers: { cookie, origin } });
    assert.equal(out.status, 204);
    assert.equal(await closed, 4401);
    const afterLogout = await call('GET', '/api/v1/groups', { headers: { cookie } });
    assert.equal(afterLogout.status, 401);
  });

  test('a chat opens at its newest messages', async () => {
    // A chat pincer has seen but not joined: stored, never answered.
    h.pincer.store.chats.seen({ id: 'telegram:-42', channel: 'telegram', name: 'Notes', isGroup: true }, Date.now());
    for (let i = 1; i <= 5; i++)
      h.pincer.store.messages.insert({
        chatId: 'telegram:-42',
        channel: 'telegram',
        platformId: `m${i}`,
        senderId: 'u1',
        senderName: 'Ann',
        text: `note ${i}`,
        sentAt: Date.now(),
        fromAssistant: false,
        engages: false,
      });
    const res = await h.request('GET', '/api/v1/messages?chat=telegram:-42&latest=2');
    assert.equal(res.status, 200);
    const texts = (res.body.messages as Array<{ text: string }>).map((m) => m.text);
    assert.deepEqual(texts, ['note 4', 'note 5']);
    const bad = await h.request('GET', '/api/v1/messages?chat=telegram:-42&latest=0');
    assert.equal(bad.status, 400);
  });
});

describe('typing hint: POST /api/v1/typing', () => {
  let h: Harness;
  /** The local channel on its own port, its sink a recorder: what reaches `typing` is seen directly. */
  let channel: LocalChannel;
  let base: string;
  const typed: string[] = [];
  const joined = new Set(['local:typing']);
  const sink: InboundSink = {
    maxMediaBytes: 0,
    isJoined: (chatId) => joined.has(chatId),
    seen: () => false,
    typing: (chatId) => {
      typed.push(chatId);
    },
    ingest: async () => {
      throw new Error('these tests post no messages');
    },
  };

  before(async () => {
    h = await startHarness({ env: { ANTHROPIC_API_KEY: '' } });
    channel = await startLocalChannel(h, sink);
    base = channel.url;
  });
  after(async () => {
    await channel?.stop();
    await h?.stop();
  });

  const post = async (path: string, body: unknown, headers: Record<string, string> = {}) => {
    const res = await fetch(base + path, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, headers: res.headers, text: await res.text() };
  };
  const bearer = { authorization: `Bearer ${TOKEN}` };

  test('hands the chat to the sink and answers 204 without a body', async () => {
    typed.length = 0;
    const res = await post('/api/v1/typing', { chat: 'local:typing' }, bearer);
    assert.equal(res.status, 204, res.text);
    assert.equal(res.text, '', 'a 204 has no body');
    assert.deepEqual(typed, ['local:typing'], 'the sink was told once, about this chat');
  });

  test('needs the token or a session, and a session only from our own Origin', async () => {
    typed.length = 0;
    const none = await post('/api/v1/typing', { chat: 'local:typing' });
    assert.equal(none.status, 401, none.text);
    const wrong = await post('/api/v1/typing', { chat: 'local:typing' }, { authorization: 'Bearer not-the-token-at-all' });
    assert.equal(wrong.status, 401, wrong.text);

    const login = await post('/login', { token: TOKEN }, { origin: base });
    assert.equal(login.status, 200, login.text);
    const session = /pincer_session=[^;]+/.exec(login.headers.get('set-cookie') ?? '')?.[0];
    assert.ok(session, `logging in set no session cookie: ${login.headers.get('set-cookie')}`);
    const noOrigin = await post('/api/v1/typing', { chat: 'local:typing' }, { cookie: session });
    assert.equal(noOrigin.status, 403, noOrigin.text);
    const foreign = await post('/api/v1/typing', { chat: 'local:typing' }, { cookie: session, origin: 'http://evil.example' });
    assert.equal(foreign.status, 403, foreign.text);
    assert.deepEqual(typed, [], 'no refused request reached the sink');
    const own = await post('/api/v1/typing', { chat: 'local:typing' }, { cookie: session, origin: base });
    assert.equal(own.status, 204, own.text);
    assert.deepEqual(typed, ['local:typing'], 'the page itself may send the hint');
  });

  test('local chats only: another channel is 400, a malformed body 400, a chat that cannot be joined 404', async () => {
    typed.length = 0;
    const other = await post('/api/v1/typing', { chat: 'telegram:-42' }, bearer);
    assert.equal(other.status, 400, other.text);
    assert.match(other.text, /chat: must be local:<name>/);
    const extra = await post('/api/v1/typing', { chat: 'local:typing', text: 'hi' }, bearer);
    assert.equal(extra.status, 400, extra.text);
    const notJson = await post('/api/v1/typing', '{"chat": ', bearer);
    assert.equal(notJson.status, 400, notJson.text);
    const missing = await post('/api/v1/typing', {}, bearer);
    assert.equal(missing.status, 400, missing.text);
    assert.deepEqual(typed, [], 'nothing refused reached the sink');
    // The sink is told (it may join the chat); one it does not join is a 404.
    const unjoinable = await post('/api/v1/typing', { chat: 'local:nobody-here' }, bearer);
    assert.equal(unjoinable.status, 404, unjoinable.text);
    assert.match(unjoinable.text, /local:nobody-here cannot be joined/);
  });

  test("through pincer's own ingest: a new local chat is joined by the hint, as by a first message; a reserved name is not", async () => {
    const hint = async (chat: string) => {
      const res = await fetch(`${h.base}/api/v1/typing`, {
        method: 'POST',
        headers: { ...bearer, 'content-type': 'application/json' },
        body: JSON.stringify({ chat }),
      });
      return { status: res.status, text: await res.text() };
    };
    const first = await hint('local:web-typing');
    assert.equal(first.status, 204, first.text);
    assert.equal(h.pincer.store.groups.get('local:web-typing')?.folder, 'web-typing', 'the chat was joined with its own folder');
    const again = await hint('local:web-typing');
    assert.equal(again.status, 204, `a joined chat is simply hinted: ${again.text}`);
    const reserved = await hint('local:global');
    assert.equal(reserved.status, 404, reserved.text);
    assert.equal(h.pincer.store.groups.get('local:global'), undefined, 'the shared memory folder is no chat');
  });
});

describe('tool use summary', () => {
  test('names the tool and what it works on, in one bounded line', () => {
    assert.equal(describeToolUse('Bash', { command: 'ls -la\n  /tmp' }), 'Bash: ls -la /tmp');
    assert.equal(describeToolUse('Read', { file_path: '/workspace/group/notes.md' }), 'Read: /workspace/group/notes.md');
    assert.equal(describeToolUse('mcp__pincer__send_message', { text: 'hello' }), 'send_message: hello');
    assert.equal(describeToolUse('TodoWrite', { todos: [] }), 'TodoWrite');
    assert.equal(describeToolUse('Weird', null), 'Weird');
    const long = describeToolUse('Bash', { command: 'x'.repeat(500) });
    assert.equal(long.length, 120);
    assert.ok(long.endsWith('…'));
  });
});

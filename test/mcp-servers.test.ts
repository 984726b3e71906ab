// A group's extra MCP servers: what is refused and why, who may change them, that secrets never show in
// listings or logs, the host bridge that adds secret headers, and (real Claude Code in bwrap, fake model)
// a stdio server in the group folder and a secret-carrying http server on host loopback used by the agent.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import { type AddressInfo, connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { startMcpBridge } from '../src/proxy/mcp-bridge.js';
import type { Control } from '../src/service/control.js';
import { registerGroup } from '../src/service/groups.js';
import { groupPaths, prepareState, type StateLayout } from '../src/service/layout.js';
import { SECRET_MASK, VISIBLE_HOST_ROOTS } from '../src/service/mcp-servers.js';
import { Store } from '../src/store/index.js';
import { sessionTools } from '../src/tools/pincer-server.js';
import { pincer } from './helpers/cli.js';
import { standaloneControl } from './helpers/control.js';
import { isAgentTurn, type ModelRequest } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const OWNER = { kind: 'owner' as const };
const MAIN = { kind: 'group' as const, chatId: 'local:main' };
const TEAM = { kind: 'group' as const, chatId: 'local:team' };
const ENV_SECRET = 'env-secret-31415-stdio';
const HEADER_SECRET = 'hdr-secret-27182-bridge';

/** A minimal MCP server over stdio (JSON-RPC 2.0, one message per line): one tool, `shout`. */
const ECHO_SERVER = `
const { createInterface } = require('node:readline');
const send = (m) => process.stdout.write(JSON.stringify({ jsonrpc: '2.0', ...m }) + '\\n');
createInterface({ input: process.stdin }).on('line', (line) => {
  let m;
  try { m = JSON.parse(line); } catch { return; }
  if (m.id === undefined) return;
  if (m.method === 'initialize')
    return send({ id: m.id, result: { protocolVersion: m.params?.protocolVersion ?? '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'echo', version: '1.0.0' } } });
  if (m.method === 'ping') return send({ id: m.id, result: {} });
  if (m.method === 'tools/list')
    return send({ id: m.id, result: { tools: [{ name: 'shout', description: 'Repeats text in capitals', inputSchema: { type: 'object', properties: { text: { type: 'string' } }, required: ['text'] } }] } });
  if (m.method === 'tools/call') {
    const env = 'env-reversed=' + [...(process.env.ECHO_TOKEN ?? 'missing')].reverse().join('');
    const proxy = 'proxy=' + (process.env.HTTPS_PROXY ?? 'none');
    return send({ id: m.id, result: { content: [{ type: 'text', text: 'SHOUTED ' + String(m.params?.arguments?.text ?? '').toUpperCase() + ' ' + env + ' ' + proxy } ] } });
  }
  send({ id: m.id, error: { code: -32601, message: 'no method ' + m.method } });
});
`;

interface SeenRequest {
  method: string;
  headers: IncomingHttpHeaders;
  body: Record<string, unknown> | undefined;
}

/**
 * A Streamable HTTP MCP server on host loopback that wants `Authorization: Bearer <secret>`: it gives a
 * session id at initialize, answers tools/list as JSON and tools/call as an event stream.
 */
async function startHttpMcp(secret: string): Promise<{ url: string; seen: SeenRequest[]; close(): Promise<void> }> {
  const seen: SeenRequest[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const body = raw ? (JSON.parse(raw) as Record<string, unknown>) : undefined;
      seen.push({ method: req.method ?? '', headers: req.headers, body });
      if (req.headers.authorization !== `Bearer ${secret}`) {
        res.writeHead(401, { 'content-type': 'application/json' }).end('{"error":"unauthorized"}');
        return;
      }
      if (req.method === 'DELETE') return void res.writeHead(200).end();
      if (body?.method === 'initialize') {
        const result = { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'mail', version: '1' } };
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'sess-42' });
        return void res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result }));
      }
      if (req.headers['mcp-session-id'] !== 'sess-42') return void res.writeHead(400).end();
      if (body?.id === undefined) return void res.writeHead(202).end();
      if (body.method === 'tools/list') {
        const tools = [{ name: 'whoami', description: 'Says who the mailbox belongs to', inputSchema: { type: 'object', properties: {} } }];
        res.writeHead(200, { 'content-type': 'application/json' });
        return void res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, result: { tools } }));
      }
      if (body.method === 'tools/call') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(
          `data: ${JSON.stringify({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'looking' } })}\r\n\r\n`,
        );
        const result = { content: [{ type: 'text', text: 'MAILBOX OF owner@example.org (authorized by the host)' }] };
        return void res.end(`event: message\ndata: ${JSON.stringify({ jsonrpc: '2.0', id: body.id, result })}\n\n`);
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: body.id, error: { code: -32601, message: 'no such method' } }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

function newControl(layout: StateLayout, store: Store, logLines: string[] = []): Control {
  const log = pino({ level: 'debug' }, { write: (line: string) => void logLines.push(line) });
  return standaloneControl(layout, store, log);
}

/** Every file under a folder (links not followed) whose content contains `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile()) continue;
    const path = join(entry.parentPath, entry.name);
    if (readFileSync(path).includes(needle)) found.push(path);
  }
  return found;
}

/** A JSON-RPC line client of a bridge socket. */
async function bridgeClient(socketPath: string) {
  const socket = connect(socketPath);
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  const received: Array<Record<string, unknown>> = [];
  const waiters: Array<() => void> = [];
  let buffered = '';
  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    const lines = buffered.split('\n');
    buffered = lines.pop() ?? '';
    for (const line of lines) if (line) received.push(JSON.parse(line) as Record<string, unknown>);
    for (const w of waiters.splice(0)) w();
  });
  const answerTo = async (id: number): Promise<Record<string, unknown>> => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const found = received.find((m) => m.id === id);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`no answer to ${id}; got ${JSON.stringify(received)}`);
      await new Promise<void>((resolve) => {
        waiters.push(resolve);
        setTimeout(resolve, 200);
      });
    }
  };
  return {
    received,
    send: (m: object) => socket.write(`${JSON.stringify({ jsonrpc: '2.0', ...m })}\n`),
    answerTo,
    close: () => new Promise<void>((resolve) => socket.end(resolve)),
  };
}

describe('MCP servers: validation, authorization, masking', () => {
  let home: string;
  let layout: StateLayout;
  let store: Store;
  let control: Control;
  const logLines: string[] = [];
  let teamDir: string;

  before(() => {
    home = mkdtempSync(join(tmpdir(), 'pincer-mcp-'));
    layout = prepareState(home);
    store = new Store(layout.db);
    control = newControl(layout, store, logLines);
    for (const [folder, isMain] of [
      ['main', true],
      ['team', false],
    ] as const)
      registerGroup(store, layout, { chatId: `local:${folder}`, folder, trigger: '@Andy', respondToAll: true, isMain }, Date.now());
    teamDir = groupPaths(layout, 'team', false).groupDir;
    mkdirSync(join(teamDir, 'bin'), { recursive: true });
    writeFileSync(join(teamDir, 'bin', 'server.sh'), '#!/bin/sh\nexit 0\n', { mode: 0o755 });
    writeFileSync(join(teamDir, 'bin', 'plain.txt'), 'not a program\n', { mode: 0o644 });
    symlinkSync('/etc/passwd', join(teamDir, 'bin', 'link'));
  });
  after(() => {
    store.close();
    rmSync(home, { recursive: true, force: true });
  });

  const row = () => JSON.stringify(store.db.prepare('SELECT * FROM groups ORDER BY chat_id').all());
  const stdio = (over: object = {}) => ({ name: 'tool', type: 'stdio', command: '/bin/sh', ...over });

  const refusals: Array<[string, unknown, RegExp]> = [
    ['a relative command', [stdio({ command: 'node' })], /server "tool": command: must be an absolute path/],
    ['a command with ..', [stdio({ command: '/usr/../etc/passwd' })], /must not contain "\." or "\.\." segments/],
    [
      'a command outside the visible paths',
      [stdio({ command: '/etc/passwd' })],
      /\/etc\/passwd is not visible in the sandbox: use a program under \/usr/,
    ],
    ['a command under /opt (not mounted by bwrap)', [stdio({ command: '/opt/tool/bin/tool' })], /not visible in the sandbox/],
    ['a command that does not exist', [stdio({ command: '/usr/bin/no-such-program-pincer' })], /does not exist on this host/],
    [
      'a group-folder command that does not exist',
      [stdio({ command: '/workspace/group/bin/missing' })],
      /does not exist in the group folder/,
    ],
    ['a group-folder command that is a link', [stdio({ command: '/workspace/group/bin/link' })], /\/workspace\/group\/bin\/link is a link/],
    ['a group-folder file that is not executable', [stdio({ command: '/workspace/group/bin/plain.txt' })], /is not executable/],
    ['the name pincer', [stdio({ name: 'pincer' })], /server "pincer": name: "pincer" is the name of pincer's own tools/],
    ['a name with capitals', [stdio({ name: 'Gmail' })], /name: must be 1 to 32 characters of a-z/],
    ['a name used twice', [stdio(), stdio()], /"tool" is named twice/],
    ['an unknown type', [{ name: 'x', type: 'sse', url: 'https://example.org' }], /server "x"/],
    ['an unknown field', [stdio({ cwd: '/tmp' })], /Unrecognized key/i],
    ['a URL that is not one', [{ name: 'mail', type: 'http', url: 'not a url' }], /server "mail": url: must be an absolute http/],
    ['an ftp URL', [{ name: 'mail', type: 'http', url: 'ftp://example.org/mcp' }], /must be an http:\/\/ or https:\/\/ URL/],
    ['a URL with a password', [{ name: 'mail', type: 'http', url: 'https://u:p@example.org/mcp' }], /give them as a secret header/],
    [
      'a reserved header',
      [{ name: 'mail', type: 'http', url: 'https://example.org/mcp', headers: { Host: 'x' } }],
      /is set by HTTP or the bridge/,
    ],
    [
      'a header both plain and secret',
      [{ name: 'mail', type: 'http', url: 'https://example.org/mcp', headers: { 'X-Key': 'a' }, secretHeaders: { 'x-key': 'b' } }],
      /is also a plain header/,
    ],
    [
      'a header value with a newline',
      [{ name: 'mail', type: 'http', url: 'https://e.org/', headers: { 'X-A': 'a\r\nB: c' } }],
      /must be one line/,
    ],
    ['too many servers', Array.from({ length: 11 }, (_, i) => stdio({ name: `s${i}` })), /servers: at most 10 servers/],
    ['not a list', { name: 'x' }, /expected array/],
    [
      'a masked value with nothing stored',
      [stdio({ env: { TOKEN: SECRET_MASK } })],
      /TOKEN: "\*{8}" keeps a stored value, but there is none/,
    ],
  ];
  for (const [what, servers, reason] of refusals) {
    test(`refuses ${what}, with the reason, changing nothing`, () => {
      const before = row();
      assert.throws(
        () => control.setMcpServers(MAIN, 'team', servers),
        (err: Error & { code?: string }) => {
          assert.equal(err.code, 'invalid', `a refusal is "invalid": ${err.message}`);
          assert.match(err.message, /^nothing changed; /);
          assert.match(err.message, reason);
          return true;
        },
      );
      assert.equal(row(), before, 'a refused change left the store as it was');
    });
  }

  test('accepts programs of the host and of the group folder; lists every secret masked; logs no value', () => {
    const views = control.setMcpServers(MAIN, 'team', [
      { name: 'shell', type: 'stdio', command: '/bin/sh', args: ['-c', 'true'], env: { API_TOKEN: ENV_SECRET } },
      { name: 'own', type: 'stdio', command: '/workspace/group/bin/server.sh' },
      {
        name: 'mail',
        type: 'http',
        url: 'https://mail.example.org/mcp',
        headers: { 'X-Client': 'pincer' },
        secretHeaders: { Authorization: `Bearer ${HEADER_SECRET}` },
      },
      { name: 'cal', type: 'http', url: 'https://cal.example.org/mcp' },
    ]);
    assert.deepEqual(
      views.map((v) => [v.name, v.route]),
      [
        ['shell', 'sandbox'],
        ['own', 'sandbox'],
        ['mail', 'host-bridge'],
        ['cal', 'direct'],
      ],
    );
    const listed = control.listMcpServers(OWNER, 'team');
    assert.deepEqual(listed, views, 'the listing is what the change answered');
    const shown = JSON.stringify(listed);
    assert.ok(!shown.includes(ENV_SECRET) && !shown.includes(HEADER_SECRET), `a listing shows a secret: ${shown}`);
    assert.match(shown, /"API_TOKEN":"\*{8}"/);
    assert.match(shown, /"Authorization":"\*{8}"/);
    assert.match(shown, /"X-Client":"pincer"/, 'plain headers are shown as they are');
    const logged = logLines.join('');
    assert.match(logged, /MCP servers changed/);
    assert.ok(!logged.includes(ENV_SECRET) && !logged.includes(HEADER_SECRET), `the log holds a secret: ${logged}`);
    assert.equal(store.groups.get('local:team')?.mcpServers.length, 4, 'the store keeps the servers');
  });

  test('a listing sent back as it is keeps the stored secrets', () => {
    const listed = control.listMcpServers(MAIN, 'team');
    control.setMcpServers(OWNER, 'team', listed.slice(0, 3));
    const stored = store.groups.get('local:team')?.mcpServers ?? [];
    assert.equal(stored.length, 3);
    const shell = stored.find((s) => s.name === 'shell');
    const mail = stored.find((s) => s.name === 'mail');
    assert.equal(shell?.type === 'stdio' ? shell.env?.API_TOKEN : undefined, ENV_SECRET, 'the masked env value kept the secret');
    assert.equal(mail?.type === 'http' ? mail.secretHeaders?.Authorization : undefined, `Bearer ${HEADER_SECRET}`);
  });

  test('a group other than main can neither see nor change MCP servers, its own included, nor has the tools', () => {
    const before = row();
    for (const call of [
      () => control.setMcpServers(TEAM, 'team', []),
      () => control.listMcpServers(TEAM, 'team'),
      () => control.setMcpServers(TEAM, 'main', []),
    ])
      assert.throws(call, (err: Error & { code?: string }) => err.code === 'forbidden' && /only the main group/.test(err.message));
    assert.equal(row(), before);
    const ctx = { send: () => {}, sendFile: async () => {}, control };
    const names = (isMain: boolean, chatId: string) => sessionTools({ ...ctx, chatId, isMain }).map((t) => t.name);
    assert.ok(!names(false, 'local:team').includes('set_mcp_servers'), 'a non-main session has no set_mcp_servers');
    assert.ok(names(true, 'local:main').includes('set_mcp_servers'), 'the main session has set_mcp_servers');
    assert.throws(
      () => control.setMcpServers(MAIN, 'nobody', []),
      (err: Error & { code?: string }) => err.code === 'not_found',
    );
  });

  test('the main group sets them through its tool; a stored list edited into nonsense fails loudly when read', async () => {
    const tools = sessionTools({ chatId: 'local:main', isMain: true, send: () => {}, sendFile: async () => {}, control });
    const set = tools.find((t) => t.name === 'set_mcp_servers');
    assert.ok(set, 'the main group has set_mcp_servers');
    const ok = await set.handler({ folder: 'team', servers: [{ name: 'sh', type: 'stdio', command: '/bin/sh' }] } as never, {});
    const text = ok.content.map((c) => ('text' in c ? c.text : '')).join('');
    assert.ok(!ok.isError, text);
    assert.match(text, /sh \(stdio, sandbox\)\. They apply from its next message/);
    const refused = await set.handler({ folder: 'team', servers: [{ name: 'sh', type: 'stdio', command: 'sh' }] } as never, {});
    assert.equal(refused.isError, true, 'a relative command is refused through the tool too');

    store.db
      .prepare("UPDATE groups SET mcp_servers = ? WHERE chat_id = 'local:team'")
      .run('[{"name":"pincer","type":"stdio","command":"/bin/sh"}]');
    assert.throws(() => store.groups.get('local:team'), /group local:team: stored mcp_servers is invalid/);
    store.db.prepare("UPDATE groups SET mcp_servers = '[]' WHERE chat_id = 'local:team'").run();
  });
});

describe('the host bridge adds secret headers to a Streamable HTTP MCP server', () => {
  let dir: string;
  let upstream: Awaited<ReturnType<typeof startHttpMcp>>;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-mcp-bridge-'));
    upstream = await startHttpMcp(HEADER_SECRET);
  });
  after(async () => {
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('initialize, session id, protocol version, JSON and event-stream answers, all with the secret added', async () => {
    const errors: string[] = [];
    const bridge = startMcpBridge(join(dir, 'ok.sock'), {
      url: upstream.url,
      headers: { Authorization: `Bearer ${HEADER_SECRET}`, 'X-Client': 'pincer' },
      onError: (r) => errors.push(r),
    });
    const c = await bridgeClient(bridge.socketPath);
    c.send({
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 't', version: '1' } },
    });
    c.send({ method: 'notifications/initialized' });
    c.send({ id: 2, method: 'tools/list' });
    c.send({ id: 3, method: 'tools/call', params: { name: 'whoami', arguments: {} } });
    assert.equal(((await c.answerTo(1)).result as { protocolVersion?: string }).protocolVersion, '2025-06-18');
    assert.deepEqual(
      ((await c.answerTo(2)).result as { tools: Array<{ name: string }> }).tools.map((t) => t.name),
      ['whoami'],
    );
    const call = await c.answerTo(3);
    assert.match(JSON.stringify(call.result), /MAILBOX OF owner@example\.org/);
    assert.ok(
      c.received.some((m) => m.method === 'notifications/message'),
      'a notification in the event stream reaches the client',
    );
    await c.close();
    await bridge.close();
    const posts = upstream.seen.filter((r) => r.method === 'POST');
    assert.equal(posts.length, 4);
    for (const r of posts) {
      assert.equal(r.headers.authorization, `Bearer ${HEADER_SECRET}`, 'the secret is added to every request');
      assert.equal(r.headers['x-client'], 'pincer');
    }
    assert.equal(posts[0]?.headers['mcp-session-id'], undefined, 'initialize goes without a session id');
    for (const r of posts.slice(1)) {
      assert.equal(r.headers['mcp-session-id'], 'sess-42', 'later requests carry the session id');
      assert.equal(r.headers['mcp-protocol-version'], '2025-06-18');
    }
    assert.deepEqual(errors, []);
  });

  test('a refusal or an unreachable server becomes an error answer that names no secret', async () => {
    const wrong = startMcpBridge(join(dir, 'wrong.sock'), { url: upstream.url, headers: { Authorization: 'Bearer wrong' } });
    const c = await bridgeClient(wrong.socketPath);
    c.send({ id: 7, method: 'initialize', params: {} });
    const refused = await c.answerTo(7);
    assert.match(JSON.stringify(refused.error), /the server answered HTTP 401/);
    await c.close();
    await wrong.close();

    const gone = startMcpBridge(join(dir, 'gone.sock'), {
      url: 'http://127.0.0.1:9/mcp',
      headers: { Authorization: `Bearer ${HEADER_SECRET}` },
    });
    const d = await bridgeClient(gone.socketPath);
    d.send({ id: 8, method: 'tools/list' });
    const unreachable = await d.answerTo(8);
    assert.match(JSON.stringify(unreachable.error), /could not be reached/);
    assert.ok(!JSON.stringify(unreachable).includes(HEADER_SECRET), 'the error names no secret');
    await d.close();
    await gone.close();
  });
});

describe('pincer groups mcp', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness({ env: { ANTHROPIC_API_KEY: '' } });
    registerGroup(
      h.pincer.store,
      h.pincer.layout,
      { chatId: 'local:team', folder: 'team', trigger: '@Andy', respondToAll: true, isMain: false },
      Date.now(),
    );
  });
  after(async () => h?.stop());

  test('sets them from a JSON file, lists them masked, clears them; a refusal is one line and exit 1', async () => {
    const at = { port: h.pincer.local.port, home: h.home };
    const file = join(h.home, 'servers.json');
    writeFileSync(
      file,
      JSON.stringify([
        { name: 'shell', type: 'stdio', command: '/bin/sh', args: ['-c', 'true'], env: { API_TOKEN: ENV_SECRET } },
        { name: 'mail', type: 'http', url: 'https://mail.example.org/mcp', secretHeaders: { Authorization: `Bearer ${HEADER_SECRET}` } },
      ]),
    );
    const set = await pincer(at, 'groups', 'mcp', 'team', '--json-file', file);
    assert.equal(set.code, 0, set.stderr);
    assert.match(set.stdout, /^MCP servers of "team" set \(2\); they apply from its next message\n/);
    const list = await pincer(at, 'groups', 'mcp', 'team');
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /^NAME\s+TYPE\s+ROUTE\s+COMMAND OR URL\s+SECRETS \(masked\)\n/);
    assert.match(list.stdout, /\nshell\s+stdio\s+sandbox\s+\/bin\/sh -c true\s+API_TOKEN\n/);
    assert.match(list.stdout, /\nmail\s+http\s+host-bridge\s+https:\/\/mail\.example\.org\/mcp\s+Authorization\n/);
    const json = await pincer(at, 'groups', 'mcp', 'team', '--json');
    for (const out of [set.stdout, list.stdout, json.stdout])
      assert.ok(!out.includes(ENV_SECRET) && !out.includes(HEADER_SECRET), `the CLI shows a secret: ${out}`);
    assert.deepEqual(JSON.parse(json.stdout), (await h.request('GET', '/api/v1/groups/team/mcp-servers')).body, 'exactly the API answer');

    writeFileSync(file, JSON.stringify({ servers: [{ name: 'pincer', type: 'stdio', command: '/bin/sh' }] }));
    const refused = await pincer(at, 'groups', 'mcp', 'team', '--json-file', file);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /^nothing changed; server "pincer": name: "pincer" is the name of pincer's own tools\n$/);
    assert.equal(h.pincer.store.groups.get('local:team')?.mcpServers.length, 2, 'the refusal changed nothing');

    const cleared = await pincer(at, 'groups', 'mcp', 'team', '--clear');
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.match(cleared.stdout, /group "team" has no MCP servers/);
    assert.deepEqual(h.pincer.store.groups.get('local:team')?.mcpServers, []);
  });
});

/** Why node (for the stdio server) cannot run in the sandbox, or undefined. */
function nodeInvisible(): string | undefined {
  const real = realpathSync(process.execPath);
  return VISIBLE_HOST_ROOTS.some((r) => real.startsWith(`${r}/`)) ? undefined : `node at ${real} is not visible in the bwrap sandbox`;
}

const skip = (await sandboxUnavailable()) ?? nodeInvisible();

describe("a group's agent uses its own MCP servers in its sandbox (real Claude Code, fake model)", { skip }, () => {
  let h: Harness;
  let upstream: Awaited<ReturnType<typeof startHttpMcp>>;
  let firstTools: string[] = [];

  /** The text of every tool result in the conversation so far. */
  const toolResults = (req: ModelRequest): string[] =>
    (req.body.messages ?? []).flatMap((m) =>
      Array.isArray(m.content)
        ? m.content
            .filter((b): b is { type: string; content: unknown } => typeof b === 'object' && b !== null && b.type === 'tool_result')
            .map((b) => (typeof b.content === 'string' ? b.content : JSON.stringify(b.content)))
        : [],
    );

  before(async () => {
    upstream = await startHttpMcp(HEADER_SECRET);
    // Reversed in the command, so that the scan never finds its own command line or transcript. The stdio
    // server's env secret is the documented exception: finding it proves the scan looks where it should.
    const reverse = (text: string) => [...text].reverse().join('');
    const where = '/proc/[0-9]*/environ /proc/[0-9]*/cmdline /home/agent /workspace /run/pincer /tmp';
    const scan = [
      `printf '%s' '${reverse(HEADER_SECRET)}' | rev > /tmp/p1`,
      `printf '%s' '${reverse(ENV_SECRET)}' | rev > /tmp/p2`,
      // `command`: Claude Code's shell may stand its own search tool in for grep.
      `h=$(command grep -rlsF -f /tmp/p1 ${where} 2>/dev/null | command grep -v '^/tmp/p1$' | wc -l)`,
      `e=$(command grep -lsF -f /tmp/p2 /proc/[0-9]*/environ 2>/dev/null | wc -l)`,
      'rm /tmp/p1 /tmp/p2',
      'echo "secret-found-in=$h env-secret-found-in=$e"',
    ].join('; ');
    h = await startHarness({
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        const results = toolResults(req);
        if (results.length === 0) {
          firstTools = (req.body.tools ?? []).map((t) => t.name);
          return { toolUse: { name: 'mcp__echo__shout', input: { text: 'hello from the sandbox' } } };
        }
        if (results.length === 1) return { toolUse: { name: 'mcp__mail__whoami', input: {} } };
        if (results.length === 2) return { toolUse: { name: 'Bash', input: { command: scan, description: 'look for the secret' } } };
        return { text: `RESULTS: ${results.join(' | ')}` };
      },
    });
    const group = { chatId: 'local:team', folder: 'team', trigger: '@Andy', respondToAll: true, isMain: false };
    registerGroup(h.pincer.store, h.pincer.layout, group, Date.now());
    const { groupDir } = groupPaths(h.pincer.layout, 'team', false);
    mkdirSync(join(groupDir, 'mcp'));
    writeFileSync(join(groupDir, 'mcp', 'echo-server.cjs'), ECHO_SERVER);
    chmodSync(join(groupDir, 'mcp', 'echo-server.cjs'), 0o644);
  });
  after(async () => {
    await h?.stop();
    await upstream?.close();
  });

  test('the owner sets them over the API; the answer masks the secrets', async () => {
    const servers = [
      {
        name: 'echo',
        type: 'stdio',
        command: process.execPath,
        args: ['/workspace/group/mcp/echo-server.cjs'],
        env: { ECHO_TOKEN: ENV_SECRET },
      },
      { name: 'mail', type: 'http', url: upstream.url, secretHeaders: { Authorization: `Bearer ${HEADER_SECRET}` } },
    ];
    const res = await h.request('PUT', '/api/v1/groups/team/mcp-servers', { servers });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const listed = await h.request('GET', '/api/v1/groups/team/mcp-servers');
    assert.equal(listed.status, 200);
    const text = JSON.stringify(listed.body);
    assert.ok(!text.includes(ENV_SECRET) && !text.includes(HEADER_SECRET), `the API shows a secret: ${text}`);
    const bad = await h.request('PUT', '/api/v1/groups/team/mcp-servers', { servers: [{ name: 'x', type: 'stdio', command: 'node' }] });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.error), /must be an absolute path/);
    const noToken = await h.request('GET', '/api/v1/groups/team/mcp-servers', undefined, null);
    assert.equal(noToken.status, 401);
  });

  test('the agent is offered both servers, calls them, and the secret header never enters the sandbox', async () => {
    const id = await h.send('local:team', 'use the servers');
    const reply = await h.reply('local:team', id, 120_000);
    assert.ok(firstTools.includes('mcp__echo__shout'), `the model was offered mcp__echo__shout: ${firstTools.join(', ')}`);
    assert.ok(firstTools.includes('mcp__mail__whoami'), `the model was offered mcp__mail__whoami: ${firstTools.join(', ')}`);
    const envReversed = [...ENV_SECRET].reverse().join('');
    assert.ok(
      reply.text.includes(`SHOUTED HELLO FROM THE SANDBOX env-reversed=${envReversed} proxy=`),
      `the stdio server ran in the sandbox with its env: ${reply.text}`,
    );
    assert.match(reply.text, /MAILBOX OF owner@example\.org/, 'the http server answered through the host bridge');
    assert.match(reply.text, / secret-found-in=0 /, 'nothing in the sandbox (processes, home, folders, sockets) holds the secret header');
    assert.match(reply.text, /env-secret-found-in=[1-9]/, "the stdio server's env is inside (the documented exception), so the scan works");

    const posts = upstream.seen.filter((r) => r.method === 'POST');
    assert.ok(posts.length >= 3, `the http server was called: ${posts.length} requests`);
    for (const r of posts) assert.equal(r.headers.authorization, `Bearer ${HEADER_SECRET}`, 'the host added the secret header');

    const { groupDir, stateDir } = groupPaths(h.pincer.layout, 'team', false);
    assert.deepEqual(filesContaining(stateDir, HEADER_SECRET), [], "the session's Claude Code state holds no secret header");
    assert.deepEqual(filesContaining(groupDir, HEADER_SECRET), [], 'the group folder holds no secret header');
    assert.deepEqual(filesContaining(stateDir, ENV_SECRET), [], "a stdio server's env is not written into the session's state");
    assert.ok(!JSON.stringify(h.fake.requests).includes(HEADER_SECRET), 'the model never saw the secret header');
  });
});

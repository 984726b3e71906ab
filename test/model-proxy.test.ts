import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { forwardHeaders, isApiPath, startModelProxy } from '../src/proxy/model-proxy.js';
import { startFakeModel } from './helpers/fake-model.js';

describe('model proxy', () => {
  it('forwards only /v1/ API paths, nothing that climbs out of them', () => {
    const table: Array<[string, boolean]> = [
      ['/v1/messages?beta=true', true],
      ['/v1/messages/count_tokens', true],
      ['/', false],
      ['/echo', false],
      ['//evil.example/v1/x', false],
      ['/v1/../echo', false],
      ['/v1/%2e%2e/echo', false],
      ['/v1/..%2fecho', false],
      ['/v1/./messages', false],
      ['/v1/%zz', false],
      ['/v1/a\\..\\b', false],
      ['http://evil.example/v1/messages', false],
    ];
    for (const [path, ok] of table) assert.equal(isApiPath(path), ok, path);
  });

  it("replaces the sandbox's credential with the real one, in the header of its kind", () => {
    const incoming = { 'x-api-key': 'placeholder', authorization: 'Bearer placeholder', 'anthropic-version': '2023-06-01', host: 'x' };
    assert.deepEqual(forwardHeaders(incoming, { kind: 'api-key', value: 'REAL' }), {
      'anthropic-version': '2023-06-01',
      'x-api-key': 'REAL',
    });
    assert.deepEqual(forwardHeaders(incoming, { kind: 'oauth', value: 'TOK' }), {
      'anthropic-version': '2023-06-01',
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

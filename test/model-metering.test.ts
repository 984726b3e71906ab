// Spend is metered at the model proxy, from the endpoint's answers, for every call a sandbox makes (Claude
// Code's or anything else's in the sandbox), and a group over its budget is refused there.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, request as httpRequest, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { createLogger } from '../src/log.js';
import { budgetCostUsd, callCostUsd, type MeteredCall, usageReader } from '../src/proxy/model-metering.js';
import { type ModelProxy, startModelProxy } from '../src/proxy/model-proxy.js';
import { Budgets } from '../src/service/budgets.js';
import { Store } from '../src/store/index.js';
import { type FakeModel, type ReplyUsage, startFakeModel } from './helpers/fake-model.js';

const CHAT = 'local:team';
/** What one attacking call reports: a million-token prompt, much of it cached. */
const BIG: Required<ReplyUsage> = {
  input_tokens: 100_000,
  output_tokens: 2_000,
  cache_creation_input_tokens: 10_000,
  cache_read_input_tokens: 50_000,
};
/** BIG at Opus 4.1's list prices ($15 in, $75 out, cache writes 1.25×, reads 0.1× per million), worked out by hand. */
const BIG_OPUS_4_1_USD = (100_000 * 15 + 2_000 * 75 + 10_000 * 18.75 + 50_000 * 1.5) / 1e6;

/** A direct call over the proxy's socket, as curl inside the sandbox would make it. */
function post(socketPath: string, body: unknown): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest(
      { socketPath, method: 'POST', path: '/v1/messages', headers: { 'x-api-key': 'placeholder', 'content-type': 'application/json' } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          text += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

/** Waits (bounded) until `done` holds: a call is recorded when the endpoint's answer closes, just after curl has it. */
async function until(done: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 2000;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

describe('spend metered at the model proxy', () => {
  let dir: string;
  let store: Store;
  let budgets: Budgets;
  let fake: FakeModel;
  let proxy: ModelProxy;
  const calls = () => store.db.prepare<[], { n: number }>('SELECT COUNT(*) AS n FROM model_usage').get()?.n ?? 0;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-metering-'));
    store = new Store(join(dir, 'pincer.db'));
    budgets = new Budgets({
      store,
      timezone: 'Europe/Berlin',
      defaults: { dailyUsd: null, monthlyUsd: null },
      log: createLogger('silent'),
      onOutbox: () => {},
    });
    fake = await startFakeModel(() => ({ text: 'spent', usage: BIG }));
    proxy = await startModelProxy(join(dir, 'model.sock'), {
      upstream: fake.url,
      credential: { kind: 'api-key', value: 'REAL' },
      meter: budgets.meterFor(CHAT, 'anthropic'),
    });
  });
  after(async () => {
    await proxy?.close();
    await fake?.close();
    store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("ten direct calls, streamed and not, are all counted in the group's spend at what the endpoint's usage prices to", async () => {
    for (let i = 0; i < 10; i++) {
      const answer = await post(proxy.socketPath, {
        model: 'claude-opus-4-1-20250805',
        max_tokens: 10,
        stream: i % 2 === 0,
        messages: [{ role: 'user', content: `call ${i}` }],
      });
      assert.equal(answer.status, 200, answer.body);
    }
    assert.equal(fake.requests.length, 10);
    await until(() => calls() === 10, 'ten recorded calls');
    const spent = budgets.view(CHAT).spentTodayUsd;
    const expected = 10 * BIG_OPUS_4_1_USD;
    assert.ok(Math.abs(spent - expected) <= expected * 0.01, `recorded $${spent}, the endpoint's usage prices to $${expected}`);
    const rows = store.db
      .prepare<[string], { calls: number; input: number; output: number; write: number; read: number; model: string }>(
        `SELECT COUNT(*) AS calls, SUM(input_tokens) AS input, SUM(output_tokens) AS output, SUM(cache_write_tokens) AS write,
           SUM(cache_read_tokens) AS read, MAX(model) AS model FROM model_usage WHERE chat_id = ?`,
      )
      .get(CHAT);
    assert.deepEqual(rows, {
      calls: 10,
      input: 1_000_000,
      output: 20_000,
      write: 100_000,
      read: 500_000,
      model: 'claude-opus-4-1-20250805',
    });
  });

  it('a group over its budget is refused at the proxy, in words Claude Code ends the turn with; the endpoint is not called', async () => {
    store.budgets.set(CHAT, { dailyUsd: 5, monthlyUsd: null }, Date.now());
    try {
      const before = fake.requests.length;
      const answer = await post(proxy.socketPath, { model: 'claude-opus-4-1', max_tokens: 10, stream: true, messages: [] });
      assert.equal(answer.status, 402);
      const body = JSON.parse(answer.body) as { type: string; error: { type: string; message: string } };
      assert.equal(body.type, 'error');
      assert.equal(body.error.type, 'billing_error');
      assert.match(body.error.message, /^pincer: this group's daily budget is reached: \$19\.1\d of \$5\.00/);
      assert.equal(fake.requests.length, before, 'nothing went upstream');
    } finally {
      store.budgets.remove(CHAT);
    }
  });

  it('a call to a model without a known price counts its tokens, reports no cost, and counts at the dearest rates against budgets', async () => {
    const before = budgets.view(CHAT).spentTodayUsd;
    const answer = await post(proxy.socketPath, { model: 'claude-someday-9', max_tokens: 10, stream: true, messages: [] });
    assert.equal(answer.status, 200);
    await until(() => calls() === 11, 'the call recorded');
    const row = store.db
      .prepare<[string], { cost: number | null; budget: number; input: number }>(
        'SELECT cost_usd AS cost, budget_usd AS budget, input_tokens AS input FROM model_usage WHERE model = ?',
      )
      .get('claude-someday-9');
    assert.equal(row?.cost, null, 'cost unknown, not zero');
    assert.equal(row?.input, 100_000);
    assert.ok((row?.budget ?? 0) >= BIG_OPUS_4_1_USD, `counted against the budget at the dearest rates: $${row?.budget}`);
    assert.ok(budgets.view(CHAT).spentTodayUsd > before);
  });
});

describe('reading usage from an answer', () => {
  const sse = (event: unknown) => `event: x\ndata: ${JSON.stringify(event)}\n\n`;
  const stream = (model: string, parts: string[]) =>
    [
      sse({ type: 'message_start', message: { model, usage: { input_tokens: 1200, output_tokens: 1, cache_read_input_tokens: 300 } } }),
      ...parts,
      sse({ type: 'message_delta', delta: {}, usage: { output_tokens: 700 } }),
      sse({ type: 'message_stop' }),
    ].join('');

  it('from a stream in any chunking, past a long content line, without holding the stream', () => {
    const long = sse({
      type: 'content_block_delta',
      index: 0,
      delta: { type: 'text_delta', text: `"message_delta" ${'é'.repeat(200_000)}` },
    });
    const bytes = Buffer.from(stream('claude-haiku-4-5-20251001', [long]));
    for (const size of [1, 7, 4096, bytes.length]) {
      const reader = usageReader('text/event-stream; charset=utf-8');
      assert.ok(reader);
      for (let i = 0; i < bytes.length; i += size) reader.write(bytes.subarray(i, i + size));
      assert.deepEqual(reader.result(), {
        model: 'claude-haiku-4-5-20251001',
        usage: { input: 1200, output: 700, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 300, webSearches: 0 },
      });
    }
  });

  it('from a stream the endpoint cut: what it had reported (the prompt was billed)', () => {
    const reader = usageReader('text/event-stream');
    reader?.write(Buffer.from(stream('claude-sonnet-4-5', []).split('event: x\ndata: {"type":"message_delta"')[0] ?? ''));
    assert.equal(reader?.result()?.usage.input, 1200);
  });

  it('from a whole message, with the 1-hour cache split and web searches; nothing from an error page', () => {
    const reader = usageReader('application/json');
    reader?.write(
      Buffer.from(
        JSON.stringify({
          model: 'claude-sonnet-4-6',
          content: [],
          usage: {
            input_tokens: 10,
            output_tokens: 20,
            cache_creation_input_tokens: 300,
            cache_creation: { ephemeral_5m_input_tokens: 100, ephemeral_1h_input_tokens: 200 },
            server_tool_use: { web_search_requests: 3 },
          },
        }),
      ),
    );
    const call = reader?.result();
    assert.deepEqual(call?.usage, { input: 10, output: 20, cacheWrite5m: 100, cacheWrite1h: 200, cacheRead: 0, webSearches: 3 });
    // $3 in, $15 out, 5m writes $3.75, 1h writes $6 per million; $0.01 a search.
    assert.ok(call && Math.abs((callCostUsd(call) ?? 0) - ((10 * 3 + 20 * 15 + 100 * 3.75 + 200 * 6) / 1e6 + 0.03)) < 1e-12);
    assert.equal(usageReader('text/html'), undefined);
  });

  it('prices by the model the endpoint names: dated ids and aliases; long prompts at their tier; unknown ones priced for budgets only', () => {
    const usage = { input: 1_000_000, output: 0, cacheWrite5m: 0, cacheWrite1h: 0, cacheRead: 0, webSearches: 0 };
    const cost = (model: string | null) => callCostUsd({ model, usage } satisfies MeteredCall);
    assert.equal(cost('claude-opus-4-5-20251101'), 5);
    assert.equal(cost('claude-opus-4-20250514'), 15);
    assert.equal(cost('claude-sonnet-4-5[1m]'), 6, 'a million-token prompt is over 200K: the long-context rate');
    assert.equal(cost('claude-haiku-4-5'), 1);
    assert.equal(cost('claude-3-5-haiku-latest'), 0.8);
    assert.equal(cost('claude-opus-4-5-extra'), null);
    assert.equal(cost(null), null);
    assert.equal(budgetCostUsd({ model: 'mystery', usage }), 15);
  });
});

describe('calls the agent abandons or floods', () => {
  let dir: string;
  let store: Store;
  let proxy: ModelProxy;
  let upstream: Server;
  /** Each open upstream call, held until the test lets it finish. */
  const held: Array<() => void> = [];
  let open = 0;
  let mostOpen = 0;
  const SSE = (event: string, data: unknown) => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-metering-abandon-'));
    store = new Store(join(dir, 'pincer.db'));
    const budgets = new Budgets({
      store,
      timezone: 'UTC',
      defaults: { dailyUsd: null, monthlyUsd: null },
      log: createLogger('silent'),
      onOutbox: () => {},
    });
    // A streamed answer that takes a while: 10 input tokens, then 500 output tokens reported at its end.
    upstream = createServer((req, res) => {
      req.resume();
      open++;
      mostOpen = Math.max(mostOpen, open);
      res.on('close', () => open--);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      const model = 'claude-opus-4-1';
      res.write(SSE('message_start', { type: 'message_start', message: { model, usage: { input_tokens: 10, output_tokens: 1 } } }));
      res.write(
        SSE('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'x'.repeat(4000) } }),
      );
      held.push(() => {
        res.write(SSE('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn' }, usage: { output_tokens: 500 } }));
        res.end(SSE('message_stop', { type: 'message_stop' }));
      });
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    proxy = await startModelProxy(join(dir, 'model.sock'), {
      upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
      credential: { kind: 'api-key', value: 'REAL' },
      meter: budgets.meterFor(CHAT, 'anthropic'),
    });
  });
  after(async () => {
    await proxy.close();
    await new Promise((r) => upstream.close(r));
    store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const outputTokens = () =>
    store.db.prepare<[], { n: number }>('SELECT COALESCE(SUM(output_tokens), 0) AS n FROM model_usage').get()?.n ?? 0;

  it('an answer the agent stops reading midway is read to its end and metered in full', async () => {
    // The attacker's move: read the first text, then close the connection before the usage at the end arrives.
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest(
        { socketPath: proxy.socketPath, method: 'POST', path: '/v1/messages', headers: { 'x-api-key': 'placeholder' } },
        (res) => {
          res.once('data', () => {
            req.destroy();
            resolve();
          });
        },
      );
      req.on('error', () => {});
      req.once('error', reject);
      req.end('{"stream":true}');
    });
    await until(() => held.length === 1, 'the upstream call');
    held.shift()?.();
    await until(() => outputTokens() === 500, 'the abandoned answer to be metered in full');
  });

  it('at most 8 calls go out at once; the others wait their turn and all are answered', async () => {
    const answers = Array.from({ length: 20 }, () => post(proxy.socketPath, { stream: true }));
    await until(() => held.length === 8, '8 calls upstream');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(mostOpen, 8, 'more than 8 calls went out at once');
    const release = setInterval(() => held.shift()?.(), 5);
    try {
      const done = await Promise.all(answers);
      assert.deepEqual(new Set(done.map((a) => a.status)), new Set([200]));
    } finally {
      clearInterval(release);
    }
    assert.ok(mostOpen <= 8, `${mostOpen} calls went out at once`);
  });
});

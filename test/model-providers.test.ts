// Providers and a model per group: each Anthropic-compatible endpoint gets its own header (x-api-key, a bearer
// token, or none) from the host's proxy, never another provider's key; a group set to another model and
// provider runs its turns there; usage shows tokens and cost per model, an unknown price as unknown.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ConfigError, type Effort, loadConfig, type ModelCredential } from '../src/config.js';
import { startModelProxy } from '../src/proxy/model-proxy.js';
import { describeChoice, modelChoice } from '../src/service/model-choice.js';
import type { Group } from '../src/store/index.js';
import { pincer } from './helpers/cli.js';
import {
  type FakeAuth,
  type FakeModel,
  isAgentTurn,
  type ModelRequest,
  promptText,
  startFakeModel,
  systemText,
} from './helpers/fake-model.js';
import { type Harness, REAL_KEY, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();
const GATEWAY_KEY = 'sk-or-GATEWAY-KEY-bearer-only';
const OTHER_KEY = 'sk-other-KEY-x-api-key';

/** Every credential-looking value a request carried, in any header. */
function credentialsIn(req: ModelRequest): string[] {
  return Object.values(req.headers)
    .flat()
    .filter((v): v is string => typeof v === 'string')
    .filter((v) => /KEY|placeholder/i.test(v));
}

describe('provider configuration', () => {
  const cwd = mkdtempSync(join(tmpdir(), 'pincer-providers-'));
  after(() => rmSync(cwd, { recursive: true, force: true }));

  test('PINCER_PROVIDER_<NAME>_* names providers beside the default one, each with its way to authenticate', () => {
    const c = loadConfig(
      {
        ANTHROPIC_API_KEY: 'sk-ant-1',
        PINCER_MODEL: 'claude-sonnet-4-5',
        PINCER_PROVIDER_OPENROUTER_URL: 'https://openrouter.ai/api',
        PINCER_PROVIDER_OPENROUTER_AUTH: 'bearer',
        PINCER_PROVIDER_OPENROUTER_KEY: 'sk-or-1',
        PINCER_PROVIDER_OLLAMA_URL: 'http://127.0.0.1:11434',
        PINCER_PROVIDER_OLLAMA_MODEL: 'qwen3:8b',
        PINCER_PROVIDER_MY_GATEWAY_URL: 'https://llm.example.com',
        PINCER_PROVIDER_MY_GATEWAY_KEY: 'gw-1',
        PINCER_EFFORT: 'low',
        PINCER_FALLBACK_MODEL: 'claude-haiku-4-5',
      },
      cwd,
    );
    const view = [...c.providers.values()].map((p) => [p.name, p.baseUrl, p.credential, p.model]);
    assert.deepEqual(view, [
      ['anthropic', 'https://api.anthropic.com', { kind: 'api-key', value: 'sk-ant-1' }, 'claude-sonnet-4-5'],
      ['my_gateway', 'https://llm.example.com', { kind: 'api-key', value: 'gw-1' }, undefined],
      ['ollama', 'http://127.0.0.1:11434', { kind: 'none' }, 'qwen3:8b'],
      ['openrouter', 'https://openrouter.ai/api', { kind: 'bearer', value: 'sk-or-1' }, undefined],
    ]);
    assert.equal(c.effort, 'low');
    assert.equal(c.fallbackModel, 'claude-haiku-4-5');
  });

  test('a provider set up wrong is refused at start, naming the variable', () => {
    const refused = (env: Record<string, string>, pattern: RegExp) =>
      assert.throws(
        () => loadConfig(env, cwd),
        (err: unknown) => err instanceof ConfigError && pattern.test(err.message),
      );
    refused({ PINCER_PROVIDER_X_KEY: 'k' }, /PINCER_PROVIDER_X_URL: must be set/);
    refused({ PINCER_PROVIDER_X_URL: 'http://h', PINCER_PROVIDER_X_AUTH: 'bearer' }, /PINCER_PROVIDER_X_KEY: must be set for/);
    refused({ PINCER_PROVIDER_X_URL: 'http://h', PINCER_PROVIDER_X_AUTH: 'none', PINCER_PROVIDER_X_KEY: 'k' }, /would never be sent/);
    refused({ PINCER_PROVIDER_X_URL: 'http://h', PINCER_PROVIDER_X_AUTH: 'basic' }, /PINCER_PROVIDER_X_AUTH/);
    refused({ PINCER_PROVIDER_X_URL: 'ftp://h' }, /PINCER_PROVIDER_X_URL/);
    refused({ PINCER_PROVIDER_ANTHROPIC_URL: 'http://h' }, /"anthropic" is the provider of ANTHROPIC_BASE_URL/);
    refused({ PINCER_EFFORT: 'extreme' }, /PINCER_EFFORT/);
  });
});

describe("which model a group's turn runs on", () => {
  const providers = new Map([
    [
      'anthropic',
      {
        name: 'anthropic',
        baseUrl: 'https://api.anthropic.com',
        credential: { kind: 'api-key' as const, value: 'k' },
        model: 'claude-sonnet-4-5',
      },
    ],
    ['ollama', { name: 'ollama', baseUrl: 'http://127.0.0.1:11434', credential: { kind: 'none' as const }, model: 'qwen3:8b' }],
  ]);
  const defaults = { providers, effort: 'medium' as const, fallbackModel: 'claude-haiku-4-5' };
  const group = (models: Partial<Group['models']>) =>
    ({ models: { provider: null, model: null, effort: null, fallbackModel: null, ...models } }) as Group;
  const chosen = (g: Group, task?: { model: string | null; effort: Effort | null }) => {
    const r = modelChoice(defaults, g, task);
    return r.ok ? describeChoice(r.choice) : `refused: ${r.reason}`;
  };

  test("the group's own settings over the environment's, a task's over its group's", () => {
    assert.equal(chosen(group({})), 'claude-sonnet-4-5 on anthropic, effort medium, fallback claude-haiku-4-5');
    assert.equal(
      chosen(group({ model: 'claude-opus-4-5', effort: 'high' })),
      'claude-opus-4-5 on anthropic, effort high, fallback claude-haiku-4-5',
    );
    assert.equal(
      chosen(group({ effort: 'low' }), { model: 'claude-haiku-4-5', effort: null }),
      'claude-haiku-4-5 on anthropic, effort low',
    );
    // The environment's fallback is a name of the default provider's: another provider gets none of it.
    assert.equal(chosen(group({ provider: 'ollama' })), 'qwen3:8b on ollama, effort medium');
    assert.equal(chosen(group({ provider: 'ollama', fallbackModel: 'qwen3:4b' })), 'qwen3:8b on ollama, effort medium, fallback qwen3:4b');
    assert.match(chosen(group({ provider: 'gone' })), /^refused: the group's provider "gone" is not configured/);
  });
});

describe("the model proxy speaks each provider's authentication", () => {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-auth-'));
  const styles: Array<{ name: string; auth: FakeAuth; credential: ModelCredential }> = [
    { name: 'x-api-key', auth: { style: 'x-api-key', key: OTHER_KEY }, credential: { kind: 'api-key', value: OTHER_KEY } },
    { name: 'bearer', auth: { style: 'bearer', key: GATEWAY_KEY }, credential: { kind: 'bearer', value: GATEWAY_KEY } },
    { name: 'none', auth: { style: 'none' }, credential: { kind: 'none' } },
  ];
  const fakes = new Map<string, FakeModel>();
  before(async () => {
    for (const s of styles) fakes.set(s.name, await startFakeModel(() => ({ text: 'ok' }), { auth: s.auth }));
  });
  after(async () => {
    for (const f of fakes.values()) await f.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** A call through a proxy for `credential` to the fake of `endpoint`, sent as the sandbox sends it (placeholders). */
  async function call(endpoint: string, credential: ModelCredential): Promise<number> {
    const fake = fakes.get(endpoint) as FakeModel;
    const socketPath = join(dir, `${endpoint}-${credential.kind}.sock`);
    const proxy = await startModelProxy(socketPath, { upstream: fake.url, credential });
    try {
      return await new Promise<number>((resolve, reject) => {
        const req = httpRequest(
          {
            socketPath,
            path: '/v1/messages?beta=true',
            method: 'POST',
            headers: { 'x-api-key': 'placeholder', authorization: 'Bearer placeholder', 'content-type': 'application/json' },
          },
          (res) => {
            res.resume();
            res.on('end', () => resolve(res.statusCode ?? 0));
          },
        );
        req.on('error', reject);
        req.end(JSON.stringify({ model: 'm', max_tokens: 1, messages: [{ role: 'user', content: 'hi' }] }));
      });
    } finally {
      await proxy.close();
    }
  }

  test('each style passes with its own credential and is refused (401) with any other', async () => {
    for (const endpoint of styles)
      for (const sent of styles) {
        const status = await call(endpoint.name, sent.credential);
        assert.equal(status, endpoint === sent ? 200 : 401, `${sent.name} credential at the ${endpoint.name} endpoint`);
      }
  });

  test("an endpoint only ever received its own credential, never the sandbox's placeholder", () => {
    for (const s of styles) {
      const fake = fakes.get(s.name) as FakeModel;
      assert.equal(fake.requests.length, 3);
      for (const req of fake.requests) {
        const seen = credentialsIn(req);
        assert.ok(!seen.some((v) => /placeholder/.test(v)), `${s.name} saw a placeholder: ${seen}`);
      }
    }
    const bearer = fakes.get('bearer') as FakeModel;
    assert.ok(bearer.requests.some((r) => r.headers.authorization === `Bearer ${GATEWAY_KEY}` && r.headers['x-api-key'] === undefined));
    const none = fakes.get('none') as FakeModel;
    assert.ok(none.requests.some((r) => r.headers.authorization === undefined && r.headers['x-api-key'] === undefined));
  });
});

describe('a group on another model and provider, end to end', { skip }, () => {
  let h: Harness;
  let anthropic: FakeModel;
  let gateway: FakeModel;
  let local: FakeModel;
  const answer = (name: string) => (req: ModelRequest) =>
    isAgentTurn(req) ? { text: `${name} answered ${req.body.model}: ${promptText(req).length}` } : { text: 'side' };

  before(async () => {
    anthropic = await startFakeModel(answer('anthropic'), { auth: { style: 'x-api-key', key: REAL_KEY } });
    gateway = await startFakeModel(answer('gateway'), { auth: { style: 'bearer', key: GATEWAY_KEY } });
    local = await startFakeModel(answer('local'), { auth: { style: 'none' } });
    h = await startHarness({
      fake: anthropic,
      env: {
        PINCER_MODEL: 'claude-haiku-4-5',
        PINCER_PROVIDER_GATEWAY_URL: gateway.url,
        PINCER_PROVIDER_GATEWAY_AUTH: 'bearer',
        PINCER_PROVIDER_GATEWAY_KEY: GATEWAY_KEY,
        PINCER_PROVIDER_LOCAL_URL: local.url,
        PINCER_PROVIDER_LOCAL_MODEL: 'qwen3:8b',
      },
    });
    for (const chatId of ['local:family', 'local:garden']) {
      const joined = await h.request('POST', '/api/v1/groups', { chatId, respondToAll: true });
      assert.equal(joined.status, 201, JSON.stringify(joined.body));
    }
  });
  after(async () => {
    await h?.stop();
    for (const f of [anthropic, gateway, local]) await f?.close();
  });

  test("a change applies from the group's next turn: first on the default provider, then on the gateway's model", async () => {
    const first = await h.reply('local:family', await h.send('local:family', 'what is for dinner?'));
    assert.match(first.text, /^anthropic answered claude-haiku-4-5/);

    const patched = await h.request('PATCH', '/api/v1/groups/family', { provider: 'gateway', model: 'vendor/cheap-model', effort: 'low' });
    assert.equal(patched.status, 200, JSON.stringify(patched.body));
    const models = (patched.body.group as { models: Record<string, unknown> }).models;
    assert.deepEqual(
      { provider: models.provider, model: models.model, effort: models.effort },
      { provider: 'gateway', model: 'vendor/cheap-model', effort: 'low' },
    );

    const sent = await h.send('local:family', 'and for dessert?');
    const second = await h.reply('local:family', sent);
    assert.match(second.text, /^gateway answered vendor\/cheap-model/);

    // The gateway saw the group's model and its own bearer token; nothing else of the family group's went to Anthropic.
    const toGateway = gateway.requests.filter((r) => isAgentTurn(r));
    assert.ok(toGateway.length >= 1);
    for (const r of gateway.requests) {
      assert.equal(r.headers.authorization, `Bearer ${GATEWAY_KEY}`);
      assert.equal(r.headers['x-api-key'], undefined);
    }
    assert.ok(
      toGateway.every((r) => r.body.model === 'vendor/cheap-model'),
      'every agent call asked for the group model',
    );
    // The effort reaches the endpoint as the Messages API's output_config.effort.
    const effortOf = (r: ModelRequest) => (r.body as { output_config?: { effort?: string } }).output_config?.effort;
    assert.ok(
      toGateway.every((r) => effortOf(r) === 'low'),
      'every agent call asked for low effort',
    );

    // The trace of the turn says which model and provider ran it.
    const trace = await h.request('GET', `/api/v1/messages/${sent}/trace`);
    const stages = (trace.body.stages as Array<{ stage: string; detail: string | null }>).map((s) => `${s.stage}: ${s.detail}`);
    assert.ok(
      stages.some((s) => s.startsWith('prompted:') && s.includes('vendor/cheap-model on gateway, effort low')),
      stages.join('\n'),
    );
    assert.ok(stages.includes('model_request: vendor/cheap-model via gateway'), stages.join('\n'));
  });

  test("a group on a local provider without authentication runs there, on the provider's model", async () => {
    const set = await h.request('PATCH', '/api/v1/groups/garden', { provider: 'local' });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    const reply = await h.reply('local:garden', await h.send('local:garden', 'when to plant tulips?'));
    assert.match(reply.text, /^local answered qwen3:8b/);
    assert.deepEqual([...new Set(local.requests.map((r) => r.body.model))], ['qwen3:8b']);
    for (const r of local.requests) {
      assert.equal(r.headers.authorization, undefined);
      assert.equal(r.headers['x-api-key'], undefined);
    }
  });

  test('while the model is overloaded (529), the fallback model answers; the next turn tries the model again', async () => {
    const set = await h.request('PATCH', '/api/v1/groups/family', { fallbackModel: 'vendor/backup-model' });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    let overloaded = true;
    gateway.setScript((req) => {
      if (req.body.model === 'vendor/cheap-model' && overloaded) return { status: 529, error: 'Overloaded', errorType: 'overloaded_error' };
      return answer('gateway')(req);
    });
    const before = gateway.requests.length;
    const reply = await h.reply('local:family', await h.send('local:family', 'is the shop open?'), 90_000);
    const asked = gateway.requests.slice(before).map((r) => r.body.model);
    assert.match(reply.text, /^gateway answered vendor\/backup-model/, asked.join(', '));
    // Claude Code 0.3.331 retried the overloaded model (three answers of 529) before it switched.
    assert.deepEqual(asked, ['vendor/cheap-model', 'vendor/cheap-model', 'vendor/cheap-model', 'vendor/backup-model']);
    overloaded = false;
    const next = await h.reply('local:family', await h.send('local:family', 'and tomorrow?'));
    assert.match(next.text, /^gateway answered vendor\/cheap-model/);
  });

  test('on another provider a sub-agent asked to run on "haiku" runs on the group\'s model there: no other name exists', async () => {
    local.setScript((req) => {
      if (!isAgentTurn(req)) return { text: 'side' };
      if (systemText(req).includes('cc_is_subagent=true')) return { text: 'soil is fine' };
      const delegated = JSON.stringify(req.body.messages ?? []).includes('"name":"Agent"');
      if (delegated) return answer('local')(req);
      return {
        toolUse: {
          name: 'Agent',
          input: {
            description: 'check the soil',
            subagent_type: 'general-purpose',
            prompt: 'Check the soil.',
            model: 'haiku',
            run_in_background: false,
          },
        },
      };
    });
    const before = local.requests.length;
    const reply = await h.reply('local:garden', await h.send('local:garden', 'ask a helper about the soil'), 60_000);
    local.setScript(answer('local'));
    assert.match(reply.text, /^local answered qwen3:8b/);
    const sub = local.requests.slice(before).filter((r) => systemText(r).includes('cc_is_subagent=true'));
    assert.ok(sub.length > 0, 'the sub-agent ran');
    assert.deepEqual([...new Set(sub.map((r) => r.body.model))], ['qwen3:8b']);
  });

  test("an isolated task runs on its own model and effort, on its group's provider; a group task may not have its own", async () => {
    const refused = await h.request('POST', '/api/v1/tasks', {
      group: 'garden',
      prompt: 'water check',
      scheduleType: 'interval',
      scheduleValue: '1h',
      model: 'qwen3:14b',
    });
    assert.equal(refused.status, 400);
    assert.match(String(refused.body.error), /make it isolated/);

    // The garden group's own agent cannot give its tasks a dearer model than the main group chose for it.
    const garden = { kind: 'group' as const, chatId: 'local:garden' };
    const own = { prompt: 'my own digest', scheduleType: 'interval' as const, scheduleValue: '1h', contextMode: 'isolated' as const };
    assert.throws(
      () => h.pincer.control.scheduleTask(garden, { ...own, model: 'claude-opus-4-5' }),
      /only the main group can choose a task's model or effort/,
    );
    const plain = h.pincer.control.scheduleTask(garden, own);
    assert.throws(() => h.pincer.control.updateTask(garden, plain.id, { effort: 'max' }), /only the main group can choose/);
    h.pincer.control.cancelTask(garden, plain.id);

    const before = local.requests.length;
    const last = (await h.messages('local:garden')).at(-1)?.id ?? '0';
    const made = await h.request('POST', '/api/v1/tasks', {
      group: 'garden',
      prompt: 'weekly garden digest',
      scheduleType: 'once',
      scheduleValue: new Date(Date.now() + 1000).toISOString(),
      contextMode: 'isolated',
      model: 'qwen3:14b',
      effort: 'high',
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    assert.deepEqual([(made.body.task as { model: string }).model, (made.body.task as { effort: string }).effort], ['qwen3:14b', 'high']);
    const reply = await h.reply('local:garden', last, 60_000);
    assert.match(reply.text, /^local answered qwen3:14b/);
    const runCalls = local.requests.slice(before).filter((r) => isAgentTurn(r));
    assert.ok(runCalls.length > 0 && runCalls.every((r) => r.body.model === 'qwen3:14b'));
    assert.ok(runCalls.every((r) => (r.body as { output_config?: { effort?: string } }).output_config?.effort === 'high'));
  });

  test("no endpoint ever received another provider's key (or any key but its own)", () => {
    const everything = (f: FakeModel) => f.requests.flatMap(credentialsIn);
    assert.ok(everything(anthropic).length > 0);
    assert.ok(
      everything(anthropic).every((v) => v === REAL_KEY),
      `anthropic saw ${everything(anthropic)}`,
    );
    assert.ok(
      everything(gateway).every((v) => v === `Bearer ${GATEWAY_KEY}`),
      `gateway saw ${everything(gateway)}`,
    );
    assert.deepEqual(everything(local), []);
    // And nothing was refused for a wrong header: every call carried the right one.
    for (const f of [anthropic, gateway, local]) assert.equal(f.requests.length > 0, true);
  });

  test('usage shows tokens and cost per model; a model without a known price costs "unknown", its tokens counted', async () => {
    const usage = await h.request('GET', '/api/v1/usage?days=1');
    const rows = usage.body.usage as Array<{
      group: string;
      unpricedCalls: number;
      models: Array<{ provider: string; model: string; calls: number; costUsd: number | null; inputTokens: number; outputTokens: number }>;
    }>;
    const family = rows.find((r) => r.group === 'family');
    const haiku = family?.models.find((m) => m.model === 'claude-haiku-4-5');
    const cheap = family?.models.find((m) => m.model === 'vendor/cheap-model');
    assert.ok(haiku && cheap, JSON.stringify(family));
    assert.equal(haiku.provider, 'anthropic');
    assert.ok(typeof haiku.costUsd === 'number' && haiku.costUsd > 0);
    assert.equal(cheap.provider, 'gateway');
    assert.equal(cheap.costUsd, null);
    assert.ok(cheap.inputTokens > 0 && cheap.outputTokens > 0);
    assert.ok((family?.unpricedCalls ?? 0) >= cheap.calls);

    const status = await h.request('GET', '/api/v1/status');
    const groups = status.body.groups as Array<{ folder: string; model: string }>;
    assert.equal(
      groups.find((g) => g.folder === 'family')?.model,
      'vendor/cheap-model on gateway, effort low, fallback vendor/backup-model',
    );
    assert.ok(((status.body.today as { unpricedCalls: number }).unpricedCalls ?? 0) > 0);

    // As the owner reads it in a terminal.
    const at = { port: h.pincer.local.port, home: h.home };
    const [table, summary] = await Promise.all([pincer(at, 'usage', '--days', '1'), pincer(at, 'status')]);
    assert.equal(table.code, 0, table.stderr);
    assert.match(table.stdout, /^DATE\s+GROUP\s+MODEL\s+PROVIDER\s+CALLS\s+TOKENS IN\s+TOKENS OUT\s+COST$/m);
    assert.match(table.stdout, /\sfamily\s+vendor\/cheap-model\s+gateway\s+\d+\s+[\d,]+\s+[\d,]+\s+unknown$/m);
    assert.match(table.stdout, /\sfamily\s+claude-haiku-4-5\s+anthropic\s+\d+\s+[\d,]+\s+[\d,]+\s+\$\d+\.\d{4}$/m);
    assert.equal(summary.code, 0, summary.stderr);
    assert.match(summary.stdout, /^ {2}family: vendor\/cheap-model on gateway, effort low, fallback vendor\/backup-model$/m);
    assert.match(
      summary.stdout,
      /^today \(.*\): \d+ turn\(s\), \$\d+\.\d{4} \+ unknown \(\d+ call\(s\) to models without a known price\)$/m,
    );
  });

  test('a provider that is not configured, a bad model id or effort is refused and changes nothing', async () => {
    for (const body of [{ provider: 'nowhere' }, { model: 'two words' }, { effort: 'extreme' }]) {
      const res = await h.request('PATCH', '/api/v1/groups/family', body);
      assert.equal(res.status, 400, JSON.stringify(body));
    }
    const g = h.pincer.store.groups.byFolder('family');
    assert.deepEqual(g?.models, { provider: 'gateway', model: 'vendor/cheap-model', effort: 'low', fallbackModel: 'vendor/backup-model' });
  });
});

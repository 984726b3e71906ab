// `pincer doctor`, run as the real CLI against fakes: the model through pincer's proxy (healthy, refused,
// unreachable), Telegram (good and bad token), the port (taken by another program, or by a running pincer),
// a world-writable state folder, and --json. Each failure must come with its fix and exit code 1.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Check } from '../src/cli/doctor/check.js';
import { judge } from '../src/cli/doctor/model.js';
import { runtimeFixes, splitReasons } from '../src/cli/doctor/sandbox.js';
import { FakeDiscord } from './helpers/fake-discord.js';
import { startFakeEmbeddings } from './helpers/fake-embeddings.js';
import { type FakeModel, startFakeModel } from './helpers/fake-model.js';
import { type FakeSignalCli, startFakeSignalCli } from './helpers/fake-signal-cli.js';
import { type FakeSlack, startFakeSlack } from './helpers/fake-slack.js';
import { type FakeTelegram, startFakeTelegram } from './helpers/fake-telegram.js';
import { REAL_KEY, sandboxUnavailable, startHarness } from './helpers/harness.js';
import { freePort } from './helpers/pincer-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TSX = fileURLToPath(import.meta.resolve('tsx'));
const run = promisify(execFile);
const noSandbox = await sandboxUnavailable();

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Folders made for one test run; removed at the end. */
const made: string[] = [];
function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  return dir;
}

/**
 * Runs `pincer doctor` with exactly `env` (nothing of the developer's own environment, and from an empty
 * folder, so no .env of theirs either). `json` runs the command's `--json` form.
 */
async function doctor(env: Record<string, string>, opts: { json?: boolean } = {}): Promise<Outcome> {
  const cwd = tempDir('pincer-doctor-cwd-');
  const args = opts.json
    ? [
        '--input-type=module',
        '-e',
        `import { doctorCommand } from ${JSON.stringify(join(ROOT, 'src/cli/doctor.ts'))};` +
          "await doctorCommand().parseAsync(process.argv.slice(1), { from: 'user' });",
        '--',
        '--json',
      ]
    : [join(ROOT, 'src/cli/main.ts'), 'doctor'];
  try {
    const { stdout, stderr } = await run(process.execPath, ['--import', TSX, ...args], {
      cwd,
      timeout: 60_000,
      env: {
        PATH: process.env.PATH ?? '',
        HOME: cwd,
        TZ: 'Europe/Berlin',
        PINCER_MOUNT_ALLOWLIST: join(cwd, 'no-allowlist.json'),
        ...env,
      },
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number | string; stdout?: string; stderr?: string };
    if (typeof e.code !== 'number') throw err;
    return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

/** The ✖ lines of an outcome: what made it fail. */
const errors = (o: Outcome): string[] => o.stdout.split('\n').filter((l) => l.startsWith('✖'));
const show = (o: Outcome): string => `exit ${o.code}\n${o.stdout}${o.stderr}`;

/** Without a sandbox here the run fails on the sandbox alone; with one, it must pass. */
function assertPassesBut(o: Outcome, allowed: RegExp[] = []): void {
  const unexpected = errors(o).filter((l) => !allowed.some((a) => a.test(l)) && !(noSandbox && /^✖ sandbox/.test(l)));
  assert.deepEqual(unexpected, [], `no other ✖ line expected:\n${show(o)}`);
  if (!noSandbox && allowed.length === 0) assert.equal(o.code, 0, `doctor passes:\n${show(o)}`);
}

describe('pincer doctor', () => {
  let fake: FakeModel;
  let telegram: FakeTelegram;

  before(async () => {
    fake = await startFakeModel();
    telegram = await startFakeTelegram();
  });
  after(async () => {
    await fake.close();
    await telegram.close();
    for (const dir of made) rmSync(dir, { recursive: true, force: true });
  });

  /** A fresh home and a free port for each run; the fake model as the endpoint. */
  async function env(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    return {
      PINCER_HOME: tempDir('pincer-doctor-home-'),
      PINCER_PORT: String(await freePort()),
      ANTHROPIC_API_KEY: REAL_KEY,
      ANTHROPIC_BASE_URL: fake.url,
      ...extra,
    };
  }

  it('passes with the fake model: a real minimal request through the proxy, with its latency', async () => {
    fake.setScript(() => ({ text: 'ok' }));
    const before = fake.requests.length;
    const o = await doctor(await env());
    assert.match(o.stdout, /^✔ model credential: ANTHROPIC_API_KEY is set/m, show(o));
    assert.match(o.stdout, /^✔ model: claude-haiku-4-5 answered in \d+ ms through pincer's model proxy/m, show(o));
    const sent = fake.requests.slice(before);
    assert.equal(sent.length, 1, `one request reached the model: ${sent.length}`);
    const req = sent[0];
    assert.equal(req?.headers['x-api-key'], REAL_KEY, 'the proxy put the real key in');
    assert.equal((req?.body as { max_tokens?: number } | undefined)?.max_tokens, 1, 'a minimal request: one token');
    assert.match(o.stdout, /^✔ memory: recall by keywords \(SQLite FTS5\); for recall by meaning too, set PINCER_EMBEDDINGS_URL/m, show(o));
    for (const name of ['node', 'config', 'state dir', 'token', 'store', 'disk', 'mount allowlist', 'memory', 'channels', 'port']) {
      assert.match(o.stdout, new RegExp(`^✔ ${name}: `, 'm'), `${name} is checked and fine:\n${o.stdout}`);
    }
    assert.doesNotMatch(o.stdout, new RegExp(REAL_KEY), 'the key is never shown');
    assertPassesBut(o);
  });

  it('starts a real sandbox and says how long it took and which limits hold', { skip: noSandbox }, async () => {
    const o = await doctor(await env());
    assert.match(o.stdout, /^✔ sandbox runtime: bwrap \(what auto picks here\)/m, show(o));
    assert.match(o.stdout, /^✔ sandbox start: a bwrap sandbox .* ran `echo ok` in \d+ ms/m, show(o));
    assert.match(o.stdout, /^[✔⚠] sandbox limits: memoryBytes: .*pids: .*cpuSeconds: /m, show(o));
    assert.equal(o.code, 0, show(o));
  });

  it('a refused key (401) fails with the fix', async () => {
    fake.setScript(() => ({ status: 401, error: 'invalid x-api-key' }));
    const o = await doctor(await env());
    fake.setScript(() => ({ text: 'ok' }));
    assert.equal(o.code, 1, show(o));
    assert.match(
      o.stdout,
      /^✖ model: the key is refused \(401 authentication_error: invalid x-api-key\)\n {2}fix: check ANTHROPIC_API_KEY/m,
      show(o),
    );
    assertPassesBut(o, [/^✖ model: /]);
  });

  it('an unreachable endpoint fails with the fix', async () => {
    const closed = `http://127.0.0.1:${await freePort()}`;
    const o = await doctor(await env({ ANTHROPIC_BASE_URL: closed }));
    assert.equal(o.code, 1, show(o));
    assert.match(
      o.stdout,
      new RegExp(`^✖ model: cannot reach ${closed}: .*ECONNREFUSED.*\\n {2}fix: check ANTHROPIC_BASE_URL`, 'm'),
      show(o),
    );
  });

  it('each configured provider gets its own minimal request, in its own header; a refused one names its variables', async () => {
    const bearer = await startFakeModel(() => ({ text: 'ok' }), { auth: { style: 'bearer', key: 'GW-KEY' } });
    const local = await startFakeModel(() => ({ text: 'ok' }), { auth: { style: 'none' } });
    try {
      const o = await doctor(
        await env({
          PINCER_PROVIDER_GATEWAY_URL: bearer.url,
          PINCER_PROVIDER_GATEWAY_AUTH: 'bearer',
          PINCER_PROVIDER_GATEWAY_KEY: 'GW-KEY',
          PINCER_PROVIDER_GATEWAY_MODEL: 'vendor/small',
          PINCER_PROVIDER_LOCAL_URL: local.url,
          PINCER_PROVIDER_LOCAL_MODEL: 'qwen3:8b',
          // The gateway's key sent as x-api-key: refused by the endpoint.
          PINCER_PROVIDER_WRONG_URL: bearer.url,
          PINCER_PROVIDER_WRONG_KEY: 'GW-KEY',
        }),
      );
      assert.match(o.stdout, /^✔ model: claude-haiku-4-5 answered/m, show(o));
      assert.match(o.stdout, /^✔ model \(gateway\): vendor\/small answered in \d+ ms/m, show(o));
      assert.match(o.stdout, /^✔ model \(local\): qwen3:8b answered in \d+ ms/m, show(o));
      assert.match(
        o.stdout,
        /^✖ model \(wrong\): the key is refused \(401 authentication_error: invalid bearer token\)\n {2}fix: check PINCER_PROVIDER_WRONG_KEY and PINCER_PROVIDER_WRONG_AUTH \(now x-api-key\)/m,
        show(o),
      );
      assertPassesBut(o, [/^✖ model \(wrong\): /]);
      assert.ok(bearer.requests.some((r) => r.headers.authorization === 'Bearer GW-KEY' && r.body.model === 'vendor/small'));
      assert.ok(local.requests.every((r) => r.headers.authorization === undefined && r.headers['x-api-key'] === undefined));
      assert.equal(local.requests.length, 1);
      assert.doesNotMatch(o.stdout, /GW-KEY/, 'no key is shown');
    } finally {
      await bearer.close();
      await local.close();
    }
  });

  it('no credential at all fails with where to put one', async () => {
    const e = await env();
    delete e.ANTHROPIC_API_KEY;
    const o = await doctor(e);
    assert.equal(o.code, 1, show(o));
    assert.match(o.stdout, /^✖ model credential: none.*\n {2}fix: put ANTHROPIC_API_KEY=sk-ant-… in \.env/m, show(o));
  });

  it('Telegram: a good token is proven with getMe', async () => {
    const o = await doctor(await env({ TELEGRAM_BOT_TOKEN: telegram.token, TELEGRAM_API_ROOT: telegram.url }));
    assert.match(o.stdout, /^✔ channels: local, telegram$/m, show(o));
    assert.match(o.stdout, /^✔ telegram: bot @pincer_test_bot \(id 777000111\) answers getMe in \d+ ms/m, show(o));
    assert.ok(
      telegram.calls.some((c) => c.method === 'getMe'),
      'getMe reached the fake',
    );
    assertPassesBut(o);
  });

  it('Telegram: a wrong token fails with the fix, and the token is not shown', async () => {
    const wrong = '123456:WRONG-token_zzzzzzzzzzzzzzzzzzzzzzzzzz';
    const o = await doctor(await env({ TELEGRAM_BOT_TOKEN: wrong, TELEGRAM_API_ROOT: telegram.url }));
    assert.equal(o.code, 1, show(o));
    assert.match(
      o.stdout,
      /^✖ telegram: Telegram refused TELEGRAM_BOT_TOKEN \(Unauthorized\): it is wrong or was revoked\n {2}fix: .*@BotFather/m,
      show(o),
    );
    assert.doesNotMatch(o.stdout, /WRONG-token/, 'the token is never shown');
    assertPassesBut(o, [/^✖ telegram: /]);
  });

  it('Telegram: an unreachable API fails with the fix', async () => {
    const o = await doctor(await env({ TELEGRAM_BOT_TOKEN: telegram.token, TELEGRAM_API_ROOT: `http://127.0.0.1:${await freePort()}` }));
    assert.equal(o.code, 1, show(o));
    assert.match(o.stdout, /^✖ telegram: cannot reach http:\/\/127\.0\.0\.1:\d+: .*\n {2}fix: check the network/m, show(o));
    assert.doesNotMatch(o.stdout, new RegExp(telegram.token), 'the token is never shown');
  });

  describe('Slack, Discord, Signal and WhatsApp', () => {
    let slack: FakeSlack;
    let discord: FakeDiscord;
    let signal: FakeSignalCli;
    before(async () => {
      [slack, discord, signal] = await Promise.all([startFakeSlack(), FakeDiscord.start(), startFakeSignalCli()]);
    });
    after(async () => {
      await Promise.all([slack.close(), discord.close(), signal.close()]);
    });

    /** A WhatsApp login as baileys keeps it: creds.json in PINCER_HOME/whatsapp-auth. */
    function linkWhatsApp(home: string, creds: Record<string, unknown>): void {
      mkdirSync(join(home, 'whatsapp-auth'), { mode: 0o700 });
      writeFileSync(join(home, 'whatsapp-auth', 'creds.json'), JSON.stringify(creds));
    }

    it('good credentials: each proven by its API (signal-cli over HTTP and TCP)', async () => {
      const e = await env({
        SLACK_BOT_TOKEN: slack.botToken,
        SLACK_APP_TOKEN: slack.appToken,
        SLACK_API_URL: slack.apiUrl,
        DISCORD_BOT_TOKEN: discord.token,
        DISCORD_API_URL: discord.apiUrl,
        SIGNAL_ACCOUNT: signal.account,
        SIGNAL_CLI_URL: signal.httpUrl,
        WHATSAPP_ENABLED: 'true',
      });
      linkWhatsApp(e.PINCER_HOME as string, { registered: true, me: { id: '4915112345678:3@s.whatsapp.net', name: 'Olive' } });
      const o = await doctor(e);
      assert.match(o.stdout, /^✔ channels: local, slack, discord, signal, whatsapp$/m, show(o));
      assert.match(o.stdout, /^✔ slack: bot andy in Fake Team; Socket Mode token accepted/m, show(o));
      assert.match(o.stdout, /^✔ discord: bot .* accepted in \d+ ms/m, show(o));
      assert.match(
        o.stdout,
        new RegExp(`^✔ signal: signal-cli at ${signal.httpUrl} has \\${signal.account} \\(0 group\\(s\\)\\)`, 'm'),
        show(o),
      );
      assert.match(o.stdout, /^✔ whatsapp: linked as 4915112345678 /m, show(o));
      assertPassesBut(o);
      const tcp = await doctor(await env({ SIGNAL_ACCOUNT: signal.account, SIGNAL_CLI_URL: signal.tcpUrl }));
      assert.match(tcp.stdout, /^✔ signal: signal-cli at tcp:/m, show(tcp));
      assert.ok(
        signal.calls.some((c) => c.method === 'listGroups' && c.transport === 'tcp' && c.params.account === signal.account),
        'listGroups for the account went over TCP',
      );
    });

    it('bad credentials: each channel fails with its fix', async () => {
      const e = await env({
        SLACK_BOT_TOKEN: 'xoxb-wrong',
        SLACK_APP_TOKEN: slack.appToken,
        SLACK_API_URL: slack.apiUrl,
        DISCORD_BOT_TOKEN: 'wrong-discord-token',
        DISCORD_API_URL: discord.apiUrl,
        SIGNAL_ACCOUNT: '+15559999999',
        SIGNAL_CLI_URL: signal.httpUrl,
        WHATSAPP_ENABLED: 'true',
      });
      const o = await doctor(e);
      assert.equal(o.code, 1, show(o));
      assert.match(
        o.stdout,
        /^✖ slack: Slack refused SLACK_BOT_TOKEN \(auth\.test: invalid_auth\)\n {2}fix: it is wrong or was revoked/m,
        show(o),
      );
      assert.match(o.stdout, /^✖ discord: Discord refused DISCORD_BOT_TOKEN \(401 Unauthorized\).*\n {2}fix: .*Reset Token/m, show(o));
      assert.match(
        o.stdout,
        /^✖ signal: signal-cli at .* does not have the account \+15559999999.*\n {2}fix: register or link it first/m,
        show(o),
      );
      assert.match(o.stdout, /^✖ whatsapp: not linked yet: no login in .*whatsapp-auth\n {2}fix: .*npx pincer whatsapp login/m, show(o));
      assertPassesBut(o, [/^✖ (slack|discord|signal|whatsapp): /]);
      const appToken = await doctor(
        await env({ SLACK_BOT_TOKEN: slack.botToken, SLACK_APP_TOKEN: slack.botToken, SLACK_API_URL: slack.apiUrl }),
      );
      assert.match(
        appToken.stdout,
        /^✖ slack: the bot token works, but Slack refused SLACK_APP_TOKEN \(apps\.connections\.open: not_allowed_token_type\)\n {2}fix: SLACK_APP_TOKEN must be an app-level token \(xapp-…\)/m,
        show(appToken),
      );
    });
  });

  it('recall by meaning: one real request to the embeddings endpoint, or the failure with its fix and without the key', async () => {
    const embeddings = await startFakeEmbeddings();
    try {
      const settings = { PINCER_EMBEDDINGS_URL: embeddings.url, PINCER_EMBEDDINGS_MODEL: 'concepts-256' };
      const good = await doctor(await env({ ...settings, PINCER_EMBEDDINGS_KEY: embeddings.key }));
      assert.match(
        good.stdout,
        new RegExp(
          `^✔ memory: recall by keywords and meaning: concepts-256 at ${embeddings.url}/embeddings answered 256 dimensions in \\d+ ms`,
          'm',
        ),
        show(good),
      );
      assert.equal(embeddings.requests.at(-1)?.authorization, `Bearer ${embeddings.key}`);
      const bad = await doctor(await env({ ...settings, PINCER_EMBEDDINGS_KEY: 'sk-wrong-embeddings-key' }));
      assert.match(
        bad.stdout,
        /^✖ memory: recall by meaning is configured but the embeddings service answered 401: check PINCER_EMBEDDINGS_KEY; search works on keywords meanwhile\n {2}fix: /m,
        show(bad),
      );
      assert.doesNotMatch(bad.stdout + bad.stderr, /sk-wrong-embeddings-key|emb-test-key/, 'no key is shown');
      assertPassesBut(bad, [/^✖ memory: /]);
    } finally {
      await embeddings.close();
    }
  });

  describe('the port', () => {
    let other: Server;
    before(async () => {
      // Another web application: it answers, but not like pincer.
      other = createServer((_req, res) => res.writeHead(404).end('not here'));
      await new Promise<void>((r) => other.listen(0, '127.0.0.1', r));
    });
    after(() => new Promise<void>((r) => other.close(() => r())));

    it('taken by another program fails with the fix', async () => {
      const port = (other.address() as AddressInfo).port;
      const o = await doctor(await env({ PINCER_PORT: String(port) }));
      assert.equal(o.code, 1, show(o));
      assert.match(
        o.stdout,
        new RegExp(
          `^✖ port: 127\\.0\\.0\\.1:${port} is in use by another program.*\\n {2}fix: set PINCER_PORT to a free port in \\.env \\(e\\.g\\. PINCER_PORT=\\d+\\)`,
          'm',
        ),
        show(o),
      );
      assertPassesBut(o, [/^✖ port: /]);
    });

    it('held by a running pincer is fine, and doctor leaves that pincer working', async () => {
      const h = await startHarness();
      try {
        const o = await doctor({
          PINCER_HOME: h.home,
          PINCER_PORT: String(h.pincer.local.port),
          PINCER_TOKEN: 'test-token-0123456789',
          ANTHROPIC_API_KEY: REAL_KEY,
          ANTHROPIC_BASE_URL: h.fake.url,
        });
        assert.match(
          o.stdout,
          new RegExp(`^✔ port: pincer is already running there \\(127\\.0\\.0\\.1:${h.pincer.local.port}`, 'm'),
          show(o),
        );
        assert.match(o.stdout, /^✔ store: .*pincer\.db opens \(1 group\(s\)\)/m, show(o));
        assert.match(o.stdout, /^✔ egress policies: main: /m, show(o));
        assertPassesBut(o);
        if (!noSandbox) {
          // Its live state (socket folders, the store) is untouched: a message still gets its answer.
          const id = await h.send('local:main', 'still there?');
          const reply = await h.reply('local:main', id, 30_000);
          assert.equal(reply.text, 'ok', `the running pincer still answers: ${JSON.stringify(reply)}`);
        }
      } finally {
        await h.stop();
      }
    });
  });

  it('a world-writable state folder fails with the chmod fix', async () => {
    const e = await env();
    const home = e.PINCER_HOME as string;
    chmodSync(home, 0o777);
    const o = await doctor(e);
    assert.equal(o.code, 1, show(o));
    const mode = process.getuid?.() === 0 ? '711' : '700';
    assert.match(o.stdout, new RegExp(`^✖ state dir: ${home} is mode 0777: .*\\n {2}fix: chmod ${mode} ${home}$`, 'm'), show(o));
    assert.equal(statSync(home).mode & 0o777, 0o777, 'doctor reports, it does not change the folder');
  });

  it('a token file others can read fails with the chmod fix', async () => {
    const e = await env();
    const path = join(e.PINCER_HOME as string, 'token');
    writeFileSync(path, 'a-token-of-enough-length\n', { mode: 0o644 });
    chmodSync(path, 0o644);
    const o = await doctor(e);
    assert.equal(o.code, 1, show(o));
    assert.match(
      o.stdout,
      new RegExp(`^✖ token: ${path} is mode 0644: others may read the API token\\n {2}fix: chmod 600 ${path}`, 'm'),
      show(o),
    );
  });

  it('a bad configuration value fails with what to correct', async () => {
    const o = await doctor(await env({ PINCER_PORT: '99999' }));
    assert.equal(o.code, 1, show(o));
    assert.match(o.stdout, /^✖ config: invalid configuration .*PINCER_PORT.*\n {2}fix: correct the variable named above/m, show(o));
  });

  it('--json gives every check with its status, detail and fix', async () => {
    fake.setScript(() => ({ status: 401, error: 'invalid x-api-key' }));
    const o = await doctor(await env(), { json: true });
    fake.setScript(() => ({ text: 'ok' }));
    assert.equal(o.code, 1, show(o));
    const doc = JSON.parse(o.stdout) as { ok: boolean; checks: Check[] };
    assert.equal(doc.ok, false, 'not ok with a refused key');
    const model = doc.checks.find((c) => c.name === 'model');
    assert.equal(model?.status, 'error', JSON.stringify(model));
    assert.match(model?.fix?.[0] ?? '', /^check ANTHROPIC_API_KEY/, JSON.stringify(model));
    const node = doc.checks.find((c) => c.name === 'node');
    assert.deepEqual(node, { name: 'node', status: 'ok', detail: `v${process.versions.node}` }, 'a check as JSON');
  });
});

describe('how model answers are judged', () => {
  const c = {
    name: 'model',
    provider: 'anthropic',
    model: 'claude-haiku-4-5',
    endpoint: 'https://api.example',
    credential: { kind: 'api-key' as const, value: 'k' },
    upstreamError: undefined,
  };
  const api = (status: number, type: string, message: string) => ({
    status,
    body: JSON.stringify({ type: 'error', error: { type, message } }),
  });

  it('an unknown model only warns: the key was accepted', () => {
    const check = judge(api(404, 'not_found_error', 'model: claude-nope'), 5, c);
    assert.equal(check.status, 'warn', JSON.stringify(check));
    assert.match(check.fix?.[0] ?? '', /PINCER_MODEL/, JSON.stringify(check));
  });

  it('a 404 that is not the API says the base URL is wrong, and blocks', () => {
    const check = judge({ status: 404, body: '<html>nope</html>' }, 5, c);
    assert.equal(check.status, 'error', JSON.stringify(check));
    assert.match(check.fix?.[0] ?? '', /ANTHROPIC_BASE_URL/, JSON.stringify(check));
  });

  it('an overloaded endpoint or a rate limit warns; an empty account blocks', () => {
    assert.equal(judge(api(529, 'overloaded_error', 'Overloaded'), 5, c).status, 'warn', 'overloaded');
    assert.equal(judge(api(429, 'rate_limit_error', 'slow down'), 5, c).status, 'warn', 'rate limited');
    const credit = judge(api(400, 'invalid_request_error', 'Your credit balance is too low to access the Anthropic API.'), 5, c);
    assert.equal(credit.status, 'error', JSON.stringify(credit));
  });

  it('an OAuth token refused points at claude setup-token', () => {
    const check = judge(api(401, 'authentication_error', 'invalid'), 5, { ...c, credential: { kind: 'oauth', value: 't' } });
    assert.equal(check.status, 'error', JSON.stringify(check));
    assert.match(check.fix?.[0] ?? '', /CLAUDE_CODE_OAUTH_TOKEN.*claude setup-token/, JSON.stringify(check));
  });
});

describe('sandbox runtime failures and their fixes', () => {
  it('auto: each runtime with what it said', () => {
    const parts = splitReasons(
      'no sandbox runtime works here (bwrap: socat is not installed (apt-get install socat); docker: the docker daemon is not running (Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker daemon running?): start it (`sudo systemctl start docker`) or point DOCKER_HOST at it; podman: podman is not installed: install Podman (https://podman.io/docs/installation), or choose another PINCER_RUNTIME)',
    );
    assert.deepEqual(
      parts.map((p) => p.name),
      ['bwrap', 'docker', 'podman'],
      JSON.stringify(parts),
    );
    assert.match(runtimeFixes('bwrap', parts[0]?.reason ?? '')[0] ?? '', /sudo apt-get install socat/, 'socat missing');
    assert.match(runtimeFixes('docker', parts[1]?.reason ?? '')[0] ?? '', /sudo systemctl start docker/, 'daemon down');
    assert.match(runtimeFixes('podman', parts[2]?.reason ?? '')[0] ?? '', /install podman/, 'podman missing');
  });

  it('bwrap missing, and an image missing', () => {
    const bwrap = runtimeFixes('bwrap', 'bubblewrap cannot create a sandbox here: spawn bwrap ENOENT');
    assert.match(bwrap[0] ?? '', /apt-get install bubblewrap socat/, JSON.stringify(bwrap));
    const image = runtimeFixes(
      'docker',
      'image pincer-agent:latest not found: build it with `docker build -t pincer-agent:latest /src/pincer/container`',
    );
    assert.deepEqual(image, ['build the agent image: docker build -t pincer-agent:latest /src/pincer/container'], 'the build command');
  });

  it('bwrap blocked: a fix is always given (the sysctls of this host decide which)', () => {
    const fixes = runtimeFixes('bwrap', 'bubblewrap cannot create a sandbox here: bwrap: setting up uid map: Permission denied');
    assert.ok(fixes.length > 0, 'at least one fix');
    assert.match(fixes.join('\n'), /user namespaces/, fixes.join('\n'));
  });
});

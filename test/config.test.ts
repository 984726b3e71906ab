// loadConfig: defaults, .env under the environment, empty values, validation errors, credentials.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { ConfigError, loadConfig } from '../src/config.js';

let cwd: string;
beforeEach(() => {
  cwd = mkdtempSync(join(tmpdir(), 'pincer-config-'));
});
afterEach(() => {
  rmSync(cwd, { recursive: true, force: true });
});

const writeDotenv = (text: string) => writeFileSync(join(cwd, '.env'), text);

/** Asserts that loading throws a ConfigError whose message names `variable`. */
function assertInvalid(env: Record<string, string>, variable: string): void {
  assert.throws(
    () => loadConfig(env, cwd),
    (err: unknown) => {
      assert.ok(err instanceof ConfigError, `expected a ConfigError, got ${String(err)}`);
      assert.match(err.message, new RegExp(`\\b${variable}\\b`));
      return true;
    },
  );
}

describe('loadConfig', () => {
  test('defaults when nothing is set', () => {
    const c = loadConfig({}, cwd);
    assert.equal(c.assistantName, 'Andy');
    assert.equal(c.port, 7477);
    assert.equal(c.host, '127.0.0.1');
    assert.equal(c.runtime, 'auto');
    assert.equal(c.maxConcurrentAgents, 3);
    assert.equal(c.home, join(cwd, 'data'), 'PINCER_HOME defaults to ./data, resolved against cwd');
    assert.equal(c.credential, undefined);
    assert.equal(c.token, undefined);
    assert.equal(c.modelBaseUrl, 'https://api.anthropic.com');
    assert.equal(c.idleTimeoutMs, 300_000);
    assert.equal(c.turnTimeoutMs, 900_000);
    assert.equal(c.logLevel, 'info');
    assert.equal(c.timezone, Intl.DateTimeFormat().resolvedOptions().timeZone);
  });

  test('values from the environment are parsed and converted', () => {
    const c = loadConfig(
      {
        ASSISTANT_NAME: 'Zoë_2',
        TZ: 'America/New_York',
        PINCER_PORT: '8080',
        MAX_CONCURRENT_AGENTS: '5',
        PINCER_RUNTIME: 'bwrap',
        PINCER_HOME: 'state',
        PINCER_IDLE_TIMEOUT_SEC: '2',
      },
      cwd,
    );
    assert.equal(c.assistantName, 'Zoë_2');
    assert.equal(c.timezone, 'America/New_York');
    assert.equal(c.port, 8080);
    assert.equal(c.maxConcurrentAgents, 5);
    assert.equal(c.runtime, 'bwrap');
    assert.equal(c.home, join(cwd, 'state'));
    assert.equal(c.idleTimeoutMs, 2000);
  });

  test('.env in cwd is read', () => {
    writeDotenv('ASSISTANT_NAME=Bob\nPINCER_PORT=9000\nTZ=Europe/Berlin\n');
    const c = loadConfig({}, cwd);
    assert.equal(c.assistantName, 'Bob');
    assert.equal(c.port, 9000);
    assert.equal(c.timezone, 'Europe/Berlin');
  });

  test('the environment wins over .env', () => {
    writeDotenv('ASSISTANT_NAME=Bob\nPINCER_PORT=9000\n');
    const c = loadConfig({ ASSISTANT_NAME: 'Carol' }, cwd);
    assert.equal(c.assistantName, 'Carol');
    assert.equal(c.port, 9000, 'variables only in .env still apply');
  });

  test('a .env in another folder is not read', () => {
    const other = mkdtempSync(join(tmpdir(), 'pincer-config-other-'));
    try {
      writeFileSync(join(other, '.env'), 'ASSISTANT_NAME=Bob\n');
      assert.equal(loadConfig({}, cwd).assistantName, 'Andy');
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  test('empty strings count as unset', () => {
    const c = loadConfig(
      {
        ASSISTANT_NAME: '',
        PINCER_PORT: '',
        TZ: '',
        MAX_CONCURRENT_AGENTS: '',
        PINCER_RUNTIME: '',
        PINCER_TOKEN: '',
        ANTHROPIC_API_KEY: '',
      },
      cwd,
    );
    assert.equal(c.assistantName, 'Andy');
    assert.equal(c.port, 7477);
    assert.equal(c.maxConcurrentAgents, 3);
    assert.equal(c.runtime, 'auto');
    assert.equal(c.token, undefined);
    assert.equal(c.credential, undefined);
  });

  test('an empty value in .env counts as unset', () => {
    writeDotenv('ASSISTANT_NAME=\nPINCER_PORT=\n');
    const c = loadConfig({}, cwd);
    assert.equal(c.assistantName, 'Andy');
    assert.equal(c.port, 7477);
  });

  test('an invalid timezone is rejected, naming TZ', () => {
    assertInvalid({ TZ: 'Mars/Olympus_Mons' }, 'TZ');
  });

  test('a port out of range is rejected, naming PINCER_PORT', () => {
    assertInvalid({ PINCER_PORT: '70000' }, 'PINCER_PORT');
    assertInvalid({ PINCER_PORT: 'http' }, 'PINCER_PORT');
  });

  test('an assistant name with a space is rejected, naming ASSISTANT_NAME', () => {
    assertInvalid({ ASSISTANT_NAME: 'Andy Bot' }, 'ASSISTANT_NAME');
  });

  test('an unknown runtime is rejected, naming PINCER_RUNTIME', () => {
    assertInvalid({ PINCER_RUNTIME: 'foo' }, 'PINCER_RUNTIME');
  });

  test('zero concurrent agents is rejected, naming MAX_CONCURRENT_AGENTS', () => {
    assertInvalid({ MAX_CONCURRENT_AGENTS: '0' }, 'MAX_CONCURRENT_AGENTS');
    assertInvalid({ MAX_CONCURRENT_AGENTS: '1.5' }, 'MAX_CONCURRENT_AGENTS');
  });

  test('an invalid value from .env is rejected too, and the message names the file', () => {
    writeDotenv('PINCER_RUNTIME=lxc\n');
    assert.throws(
      () => loadConfig({}, cwd),
      (err: unknown) => err instanceof ConfigError && /PINCER_RUNTIME/.test(err.message) && err.message.includes(join(cwd, '.env')),
    );
  });

  test('several invalid values are all named', () => {
    assert.throws(
      () => loadConfig({ PINCER_PORT: '70000', PINCER_RUNTIME: 'foo' }, cwd),
      (err: unknown) => err instanceof ConfigError && /PINCER_PORT/.test(err.message) && /PINCER_RUNTIME/.test(err.message),
    );
  });

  test('ANTHROPIC_API_KEY gives an api-key credential', () => {
    assert.deepEqual(loadConfig({ ANTHROPIC_API_KEY: 'sk-ant-1' }, cwd).credential, { kind: 'api-key', value: 'sk-ant-1' });
  });

  test('CLAUDE_CODE_OAUTH_TOKEN gives an oauth credential', () => {
    assert.deepEqual(loadConfig({ CLAUDE_CODE_OAUTH_TOKEN: 'oat-1' }, cwd).credential, { kind: 'oauth', value: 'oat-1' });
  });

  test('the api key is preferred when both are set', () => {
    const c = loadConfig({ ANTHROPIC_API_KEY: 'sk-ant-1', CLAUDE_CODE_OAUTH_TOKEN: 'oat-1' }, cwd);
    assert.deepEqual(c.credential, { kind: 'api-key', value: 'sk-ant-1' });
  });

  test('an empty api key falls back to the oauth token', () => {
    const c = loadConfig({ ANTHROPIC_API_KEY: '', CLAUDE_CODE_OAUTH_TOKEN: 'oat-1' }, cwd);
    assert.deepEqual(c.credential, { kind: 'oauth', value: 'oat-1' });
  });

  test('a credential can come from .env', () => {
    writeDotenv('CLAUDE_CODE_OAUTH_TOKEN=oat-from-file\n');
    assert.deepEqual(loadConfig({}, cwd).credential, { kind: 'oauth', value: 'oat-from-file' });
  });

  test('sub-agents: a Telegram pool of bot tokens, comma-separated, and a picture address with {name}', () => {
    const c = loadConfig(
      {
        TELEGRAM_BOT_TOKEN: '1:main',
        TELEGRAM_POOL_TOKENS: ' 2:pool-a , 3:pool_b,',
        PINCER_SENDER_AVATAR_URL: 'https://avatars.example/{name}.png',
      },
      cwd,
    );
    assert.deepEqual(c.channels.telegram?.poolTokens, ['2:pool-a', '3:pool_b']);
    assert.equal(c.channels.senderAvatarUrl, 'https://avatars.example/{name}.png');
    assert.deepEqual(loadConfig({ TELEGRAM_BOT_TOKEN: '1:main' }, cwd).channels.telegram?.poolTokens, []);
    assertInvalid({ TELEGRAM_BOT_TOKEN: '1:main', TELEGRAM_POOL_TOKENS: '2:ok,not a token' }, 'TELEGRAM_POOL_TOKENS');
    assertInvalid({ PINCER_SENDER_AVATAR_URL: 'https://avatars.example/fixed.png' }, 'PINCER_SENDER_AVATAR_URL');
    assertInvalid({ PINCER_SENDER_AVATAR_URL: 'http://avatars.example/{name}' }, 'PINCER_SENDER_AVATAR_URL');
  });
});

// `pincer logs`: the formatter (levels, parts, fields, errors, truncation, hostile lines), where the logs are
// read from on each host, and the real CLI reading a log file.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { escapeControls, formatLogLine, passJsonLine } from '../src/cli/log-format.js';
import { type LogsOptions, logSource } from '../src/cli/logs.js';
import type { ServiceHost } from '../src/service-install/host.js';

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** 2024-06-02T10:00:00.123Z */
const TIME = Date.UTC(2024, 5, 2, 10, 0, 0, 123);
const utc = { timeZone: 'UTC' };
const entry = (fields: Record<string, unknown>) => JSON.stringify({ level: 30, time: TIME, app: 'pincer', ...fields });

/** Nothing a terminal would act on: C0 (but tab), DEL, C1, bidirectional overrides, line separators. */
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNSAFE = /[\u0000-\u0008\u000a-\u001f\u007f-\u009f\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/;

describe('formatLogLine', () => {
  test('time, level, [part], message, then the other fields as key=value; the same fields on every line are left out', () => {
    const line = entry({ part: 'agent', msg: 'turn done', group: 'main', costUsd: 0.0123, ok: true, pid: 1, hostname: 'h' });
    assert.equal(formatLogLine(line, utc), '10:00:00.123 INFO  [agent] turn done group=main costUsd=0.0123 ok=true');
    assert.equal(formatLogLine(entry({ msg: 'no part' }), utc), '10:00:00.123 INFO  no part', 'no part, no brackets');
    assert.equal(formatLogLine(entry({ msg: 'in Berlin' }), { timeZone: 'Europe/Berlin' }), '12:00:00.123 INFO  in Berlin');
    assert.equal(
      formatLogLine(JSON.stringify({ level: 30, time: '2024-06-02T10:00:00.123Z', msg: 'iso time' }), utc),
      '10:00:00.123 INFO  iso time',
    );
  });

  test('every pino level by name; an unknown number and a string level still show', () => {
    const names = [10, 20, 30, 40, 50, 60].map((level) =>
      formatLogLine(entry({ level, msg: 'm' }), utc)
        .split(' ')
        .slice(1)
        .join(' '),
    );
    assert.deepEqual(names, ['TRACE m', 'DEBUG m', 'INFO  m', 'WARN  m', 'ERROR m', 'FATAL m']);
    assert.equal(formatLogLine(entry({ level: 35, msg: 'm' }), utc), '10:00:00.123 L35   m');
    assert.equal(formatLogLine(entry({ level: 'warn', msg: 'm' }), utc), '10:00:00.123 WARN  m');
  });

  test('values with spaces, quotes or = are quoted; nested objects flatten to dotted keys; arrays and deep objects are JSON', () => {
    const line = entry({
      msg: 'sent',
      chat: 'tg:-100 family',
      text: 'a=b',
      empty: '',
      usage: { input: 10, output: { cached: 3, fresh: 7 } },
      deep: { a: { b: { c: { d: 1 } } } },
      senders: ['u1', 'u2'],
      nothing: null,
      emptyObject: {},
    });
    assert.equal(
      formatLogLine(line, utc),
      '10:00:00.123 INFO  sent chat="tg:-100 family" text="a=b" empty="" usage.input=10 usage.output.cached=3 usage.output.fresh=7 ' +
        'deep.a.b.c={"d":1} senders=["u1","u2"] nothing=null emptyObject={}',
    );
  });

  test('an error shows its type and message, its own fields and cause, and below them the first stack frame', () => {
    const err = {
      type: 'TypeError',
      message: 'boom',
      stack: 'TypeError: boom\n    at run (/app/src/agent/session.ts:42:7)\n    at next (/app/src/queue.ts:1:1)',
      code: 'E_BOOM',
      cause: { type: 'Error', message: 'the root', stack: 'Error: the root\n    at x' },
    };
    assert.equal(
      formatLogLine(entry({ level: 50, part: 'agent', msg: 'turn failed', group: 'main', err }), utc),
      [
        '10:00:00.123 ERROR [agent] turn failed group=main',
        '    err: TypeError: boom code=E_BOOM cause="Error: the root"',
        '      at run (/app/src/agent/session.ts:42:7)',
      ].join('\n'),
    );
    assert.equal(
      formatLogLine(entry({ msg: 'x', error: { message: 'no stack', type: 'Error' } }), utc),
      '10:00:00.123 INFO  x\n    error: Error: no stack',
      'an error without a stack has no frame line',
    );
  });

  test('long values are cut with an ellipsis, by characters rather than halves of an emoji', () => {
    const long = `${'x'.repeat(9)}🦀${'y'.repeat(500)}`;
    const out = formatLogLine(entry({ msg: 'm', prompt: long }), { ...utc, maxValueLength: 12 });
    assert.equal(out, '10:00:00.123 INFO  m prompt=xxxxxxxxx🦀y…');
    const byDefault = formatLogLine(entry({ msg: 'm', prompt: 'z'.repeat(1000) }), utc);
    assert.equal(byDefault.length, '10:00:00.123 INFO  m prompt='.length + 200, 'values are cut at 200 characters by default');
  });

  test('a hostile entry cannot move the cursor, clear the screen, set the title, reorder text or forge a second line', () => {
    const hostile = entry({
      part: 'ingest\u001b[31m',
      msg: 'hello\u001b[2J\u001b[H\rfake: all good\n10:00:00.000 INFO  [control] forged line\u0007',
      text: '\u001b]0;pwned title\u0007\u009b6n',
      'key\u001b[8m': 'v',
      name: 'abc\u202edcba',
      err: { type: 'Error\u001b[1A', message: 'up\u001b[1A', stack: 'Error\n    at \u001b[2Kx' },
    });
    const out = formatLogLine(hostile, utc);
    const [first, ...rest] = out.split('\n');
    assert.doesNotMatch(out.replaceAll('\n', ''), UNSAFE, `no control character left: ${JSON.stringify(out)}`);
    assert.equal(rest.length, 2, 'only the error adds lines, and only its two');
    assert.match(
      first ?? '',
      /\[ingest\\u001b\[31m\] hello\\u001b\[2J\\u001b\[H\\rfake: all good\\n10:00:00\.000 INFO {2}\[control\] forged line\\u0007/,
    );
    assert.match(first ?? '', / text="\\u001b\]0;pwned title\\u0007\\u009b6n"/);
    assert.match(first ?? '', / key\\u001b\[8m=v /);
    assert.match(first ?? '', / name=abc\\u202edcba/);
    assert.equal(rest[0], '    err: Error\\u001b[1A: up\\u001b[1A');

    const raw = 'plain \u001b[2Jline\u009b\u202e with\ttab';
    assert.equal(
      formatLogLine(raw),
      'plain \\u001b[2Jline\\u009b\\u202e with\ttab',
      'a line that is not JSON comes out as it is, made inert',
    );
  });

  test('lines that are not pino entries come out as they are', () => {
    for (const line of ['pincer is running: http://127.0.0.1:7477', '', '{not json', '[1,2]', '42', '{"unrelated":true}']) {
      assert.equal(formatLogLine(line, utc), line);
    }
  });

  test('color marks only the level, and never lets the entry carry its own', () => {
    const out = formatLogLine(entry({ level: 40, msg: 'careful\u001b[0m' }), { ...utc, color: true });
    assert.equal(out, '10:00:00.123 \u001b[33mWARN \u001b[0m careful\\u001b[0m');
  });

  test('--json passes lines through, still valid JSON with the same values, but inert', () => {
    const line = JSON.stringify({ level: 30, msg: 'csi \u009b2J bidi \u202e sep \u2028 del \u007f', n: 1 });
    const passed = passJsonLine(line);
    assert.doesNotMatch(passed, UNSAFE, passed);
    assert.deepEqual(JSON.parse(passed), JSON.parse(line), 'the same values for jq');
    assert.equal(passJsonLine(entry({ msg: 'plain' })), entry({ msg: 'plain' }), 'an ordinary line is untouched');
    assert.equal(escapeControls('a\u001bb'), 'a\\u001bb');
  });
});

describe('logSource', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-logs-'));
  });
  afterEach(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  const startedBy = { cli: ['/usr/bin/node', '/opt/pincer/dist/cli/main.js'], workingDirectory: '/home/ann/pincer' };
  const options: LogsOptions = { follow: false, lines: 100, system: false };
  function host(overrides: Partial<ServiceHost> = {}): ServiceHost {
    return {
      platform: 'linux',
      uid: 1000,
      user: 'ann',
      home: join(dir, 'home'),
      root: join(dir, 'root'),
      systemdBooted: true,
      run: { run: async () => assert.fail('logSource runs nothing') },
      sleep: async () => {},
      ...overrides,
    };
  }
  const place = (path: string) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, '');
  };

  test("systemd: the user unit's journal, or the system unit's; -n and -f passed on", () => {
    place(join(dir, 'home', '.config', 'systemd', 'user', 'pincer.service'));
    assert.deepEqual(logSource(host(), startedBy, options), {
      kind: 'command',
      argv: ['journalctl', '--user', '-u', 'pincer.service', '-o', 'cat', '--no-pager', '-n', '100'],
    });
    rmSync(join(dir, 'home'), { recursive: true });
    place(join(dir, 'root', 'etc', 'systemd', 'system', 'pincer.service'));
    assert.deepEqual(logSource(host(), startedBy, { ...options, follow: true, lines: 5 }), {
      kind: 'command',
      argv: ['journalctl', '-u', 'pincer.service', '-o', 'cat', '--no-pager', '-n', '5', '-f'],
    });
  });

  test("macOS: launchd's log file, followed by name", () => {
    const logFile = join(dir, 'home', 'Library', 'Logs', 'pincer', 'pincer.log');
    place(join(dir, 'home', 'Library', 'LaunchAgents', 'dev.pincer.plist'));
    assert.deepEqual(logSource(host({ platform: 'darwin', uid: 501 }), startedBy, { ...options, follow: true }), {
      kind: 'command',
      argv: ['tail', '-n', '100', '-F', logFile],
    });
  });

  test('--file reads that file, and "-" standard input', () => {
    assert.deepEqual(logSource(host(), startedBy, { ...options, file: 'pincer.log' }), {
      kind: 'command',
      argv: ['tail', '-n', '100', 'pincer.log'],
    });
    assert.deepEqual(logSource(host(), startedBy, { ...options, file: '-' }), { kind: 'stdin' });
  });

  test('no service installed, or no systemd: how to read the logs of a foreground npm start instead', () => {
    for (const h of [host(), host({ systemdBooted: false }), host({ platform: 'win32' })]) {
      const source = logSource(h, startedBy, options);
      assert.equal(source.kind, 'none');
      assert.match(source.kind === 'none' ? source.message : '', /npm start \| npx pincer logs --file -/);
    }
  });
});

describe('the real CLI', () => {
  test('pincer logs --file formats a log file or standard input; --json passes it through; a bad -n is refused', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-logs-cli-'));
    try {
      const file = join(dir, 'pincer.log');
      writeFileSync(file, `${entry({ part: 'ingest', msg: 'stored', id: 7 })}\nnot json \u001b[2J\n${entry({ level: 50, msg: 'last' })}\n`);
      const pincer = (...args: string[]) =>
        run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'logs', '--file', file, ...args], {
          cwd: ROOT,
          timeout: 30_000,
          env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TZ: 'UTC' },
        });
      const piped = run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'logs', '--file', '-'], {
        cwd: ROOT,
        timeout: 30_000,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', TZ: 'UTC' },
      });
      piped.child.stdin?.end(`> pincer@0.1.0 start\n${entry({ part: 'sandbox', msg: 'ready' })}\n`);
      const [readable, last, refused, fromStdin] = await Promise.allSettled([
        pincer(),
        pincer('-n', '1', '--json'),
        pincer('-n', 'many'),
        piped,
      ]);
      assert.equal(
        fromStdin.status === 'fulfilled' && fromStdin.value.stdout,
        '> pincer@0.1.0 start\n10:00:00.123 INFO  [sandbox] ready\n',
        'npm start | pincer logs --file -',
      );
      assert.equal(
        readable.status === 'fulfilled' && readable.value.stdout,
        '10:00:00.123 INFO  [ingest] stored id=7\nnot json \\u001b[2J\n10:00:00.123 ERROR last\n',
      );
      assert.equal(last.status === 'fulfilled' && last.value.stdout, `${entry({ level: 50, msg: 'last' })}\n`);
      await assert.rejects(
        refused.status === 'rejected' ? Promise.reject(refused.reason) : Promise.resolve(),
        (err: { code?: number; stderr?: string }) => {
          assert.equal(err.code, 1);
          assert.match(err.stderr ?? '', /a whole number of lines/);
          return true;
        },
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

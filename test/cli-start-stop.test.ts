// `pincer` as a person meets it in a terminal: what it says without a command, with a typo, or with a command
// that only has subcommands; and `pincer start` stopped with Ctrl-C in a real pseudo-terminal (tmux).
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { type Browser, chromium } from 'playwright-core';
import WebSocket from 'ws';
import { LOCK_FILE } from '../src/service/instance-lock.js';
import { pincer } from './helpers/cli.js';
import { isAgentTurn, lastUserText, startFakeModel } from './helpers/fake-model.js';
import { REAL_KEY, sandboxUnavailable } from './helpers/harness.js';
import { freePort, pincerChildEnv, spawnPincer } from './helpers/pincer-process.js';
import { commandOf, descendants, statFields } from './helpers/proc-tree.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'test-token-0123456789';
/** What the brief promises a person pressing Ctrl-C: pincer is gone within this. */
const STOP_WITHIN_MS = 2_000;
const CHROMIUM = process.env.PINCER_CHROMIUM ?? '/usr/bin/chromium';

const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
/** Nothing listens there and nothing is started: these commands never reach a pincer. */
const NOWHERE = { port: 9, home: '/nonexistent/pincer-home' };

describe('pincer without a command, with a typo, without a subcommand', () => {
  test('no command prints the help, naming every command, and exits 0 (it does not start pincer)', async () => {
    const out = await pincer(NOWHERE);
    assert.equal(out.code, 0, out.stderr);
    assert.equal(out.stderr, '');
    assert.match(out.stdout, /^Usage: pincer \[options\] \[command\]\n/);
    for (const command of ['start', 'chat', 'doctor', 'groups', 'tasks', 'status', 'logs'])
      assert.match(out.stdout, new RegExp(`^  ${command}\\b`, 'm'), `the help names ${command}`);
  });

  test('--version and -V print the version of package.json', async () => {
    const [long, short] = await Promise.all([pincer(NOWHERE, '--version'), pincer(NOWHERE, '-V')]);
    assert.deepEqual(long, { code: 0, stdout: `${VERSION}\n`, stderr: '' });
    assert.deepEqual(short, long);
  });

  test('an unknown command is an error that suggests the nearest one, at the top and below', async () => {
    const [top, below] = await Promise.all([pincer(NOWHERE, 'stauts'), pincer(NOWHERE, 'groups', 'lsit')]);
    assert.deepEqual(top, { code: 1, stdout: '', stderr: "error: unknown command 'stauts'\n(Did you mean status?)\n" });
    assert.deepEqual(below, { code: 1, stdout: '', stderr: "error: unknown command 'lsit'\n(Did you mean list?)\n" });
  });

  test('a command that only has subcommands, given alone, prints its help and exits 0', async () => {
    const commands = ['groups', 'tasks', 'service', 'whatsapp'];
    const outs = await Promise.all(commands.map((command) => pincer(NOWHERE, command)));
    for (const [i, command] of commands.entries()) {
      const out = outs[i] ?? assert.fail(command);
      assert.equal(out.code, 0, `${command}: ${out.stderr}`);
      assert.equal(out.stderr, '');
      assert.match(out.stdout, new RegExp(`^Usage: pincer ${command} \\[options\\] \\[command\\]\\n`));
      assert.match(out.stdout, /^Commands:$/m);
    }
  });
});

const homes: string[] = [];
after(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function newHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'pincer-start-stop-'));
  homes.push(home);
  return home;
}

const tmuxMissing = spawnSync('tmux', ['-V']).status === 0 ? undefined : 'tmux is not installed';

/**
 * A terminal 200×50 in a tmux server of this test's own (other tests may run their own tmux at the same time),
 * running `pincer <command>` with exactly `env`, then printing how it exited and when (ms since the epoch).
 */
class Terminal {
  readonly #socket: string;

  constructor(home: string, env: Record<string, string>, command = 'start') {
    // The server's socket lives in the test's home, and goes with it.
    this.#socket = join(home, `${command}.tmux`);
    const quote = (v: string) => `'${v.replaceAll("'", `'\\''`)}'`;
    const script = join(home, `${command}.sh`);
    writeFileSync(
      script,
      [
        // The shell outlives pincer to print its exit; a trapped Ctrl-C does not end it (nor is the trap inherited).
        'trap true INT',
        `cd ${quote(ROOT)}`,
        `env -i ${Object.entries(env)
          .map(([k, v]) => quote(`${k}=${v}`))
          .join(' ')} ${quote(process.execPath)} --import tsx src/cli/main.ts ${command}`,
        'echo "exit=$? at $(date +%s%3N)"',
        'sleep 600',
      ].join('\n'),
    );
    this.#tmux('new-session', '-d', '-s', 'pincer', '-x', '200', '-y', '50', `sh ${quote(script)}`);
  }

  #tmux(...args: string[]): string {
    return execFileSync('tmux', ['-S', this.#socket, ...args], { encoding: 'utf8' });
  }

  /** Everything the terminal shows, scrollback included, wrapped lines joined. */
  screen(): string {
    return this.#tmux('capture-pane', '-p', '-J', '-t', 'pincer', '-S', '-1000');
  }

  async waitFor(pattern: RegExp, timeoutMs: number): Promise<RegExpMatchArray> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const found = this.screen().match(pattern);
      if (found) return found;
      if (Date.now() > deadline) throw new Error(`the terminal did not show ${pattern} within ${timeoutMs} ms:\n${this.screen()}`);
      await sleep(25);
    }
  }

  ctrlC(): void {
    this.#tmux('send-keys', '-t', 'pincer', 'C-c');
  }

  close(): void {
    try {
      this.#tmux('kill-server');
    } catch {
      // Already gone.
    }
  }
}

describe('pincer start in a terminal', async () => {
  const skip = tmuxMissing ?? (await sandboxUnavailable());

  test('Ctrl-C mid-turn, with pincer chat and the web page open: stopped within 2 s, said so, nothing logged as a crash', {
    skip,
  }, async (t) => {
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    // The second message's turn waits on the model until the end: Ctrl-C comes in the middle of a turn.
    const model = await startFakeModel((req) =>
      isAgentTurn(req) && lastUserText(req).includes('slow work')
        ? gate.then(() => ({ text: 'too late' }))
        : { text: 'hello from the agent' },
    );
    const home = newHome();
    const port = await freePort();
    const base = `http://127.0.0.1:${port}`;
    const auth = { authorization: `Bearer ${TOKEN}` };
    const env = pincerChildEnv({
      home,
      port,
      token: TOKEN,
      modelUrl: model.url,
      key: REAL_KEY,
      extra: { LOG_LEVEL: 'info', PINCER_IDLE_TIMEOUT_SEC: '300' },
    });
    const terminal = new Terminal(home, env);
    let ws: WebSocket | undefined;
    let chat: Terminal | undefined;
    let browser: Browser | undefined;
    try {
      await terminal.waitFor(/pincer is running: http/, 60_000);
      const started = terminal.screen();
      // Readable log lines, not JSON; where pincer runs and the login link set apart from them by blank lines.
      assert.match(started, /^\d\d:\d\d:\d\d\.\d{3} INFO {2}pincer is running url=http:\/\/127\.0\.0\.1:\d+ home=/m);
      assert.doesNotMatch(started, /^\{"level"/m);
      assert.match(
        started,
        new RegExp(
          `\\n\\n  pincer is running: ${base}\\n  talk to it: npx pincer chat .*\\n  web page: +${base}/login\\?code=[\\w-]+ .*\\n\\n`,
        ),
      );

      // An agent answers, and is mid-turn on the next message when Ctrl-C comes: stopping has a sandbox to end.
      const posted = await fetch(`${base}/api/v1/messages`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ chat: 'local:main', text: 'hi' }),
      });
      let cursor = ((await posted.json()) as { id: string }).id;
      for (let answered = false; !answered; ) {
        const page = (await (await fetch(`${base}/api/v1/messages?chat=local:main&after=${cursor}&wait=10`, { headers: auth })).json()) as {
          messages: Array<{ fromAssistant: boolean }>;
          cursor: string;
        };
        cursor = page.cursor;
        answered = page.messages.some((m) => m.fromAssistant);
      }
      const slow = await fetch(`${base}/api/v1/messages`, {
        method: 'POST',
        headers: { ...auth, 'content-type': 'application/json' },
        body: JSON.stringify({ chat: 'local:main', text: 'slow work' }),
      });
      assert.equal(slow.status, 202);
      cursor = ((await slow.json()) as { id: string }).id;
      await model.nextRequest((r) => isAgentTurn(r) && lastUserText(r).includes('slow work'));
      const pincerPid = (JSON.parse(readFileSync(join(home, LOCK_FILE), 'utf8')) as { pid: number }).pid;
      const sandboxes = descendants(pincerPid).filter((pid) => commandOf(pid).includes('bwrap'));
      assert.ok(sandboxes.length > 0, `pincer runs a sandbox (its processes: ${descendants(pincerPid).map(commandOf).join(' | ')})`);
      const terminalSession = statFields(pincerPid)[3];
      for (const pid of sandboxes)
        assert.notEqual(statFields(pid)[3], terminalSession, "a sandbox is in a session of its own, out of the terminal's reach");

      // A person's `pincer chat` in another terminal, long-polling for the next message.
      chat = new Terminal(
        home,
        { PATH: env.PATH ?? '', HOME: env.HOME ?? home, PINCER_HOME: home, PINCER_PORT: String(port), PINCER_TOKEN: TOKEN },
        'chat',
      );
      await chat.waitFor(/\S/, 30_000);
      await sleep(1_000);
      // The web page, logged in with the link the terminal shows, live over its WebSocket.
      if (existsSync(CHROMIUM)) {
        const link = started.match(/web page: +(\S+)/)?.[1] ?? assert.fail('no login link');
        browser = await chromium.launch({
          executablePath: CHROMIUM,
          args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
        });
        const page = await browser.newPage();
        const live = page.waitForEvent('websocket', { timeout: 30_000 });
        await page.goto(link);
        await (await live).waitForEvent('framereceived', { timeout: 30_000 });
      } else t.diagnostic(`no Chromium at ${CHROMIUM}: the web page's part is played by a WebSocket client alone`);
      // A live connection and a long poll of this test's own (knowing the agent is typing), to time when each ends.
      ws = new WebSocket(`ws://127.0.0.1:${port}/api/v1/live`, { headers: auth });
      await new Promise((resolve, reject) => {
        ws?.once('open', resolve);
        ws?.once('error', reject);
      });
      const wsClosed = new Promise<number>((resolve) => ws?.once('close', () => resolve(Date.now())));
      const pollEnded = fetch(`${base}/api/v1/messages?chat=local:main&after=${cursor}&wait=60&typing=1`, { headers: auth }).then(
        (res) => ({ at: Date.now(), status: res.status }),
        () => ({ at: Date.now(), status: 0 }),
      );
      await sleep(300);

      const pressed = Date.now();
      terminal.ctrlC();
      const exit = await terminal.waitFor(/exit=(\d+) at (\d+)/, 30_000);
      const tookMs = Number(exit[2]) - pressed;
      const poll = await pollEnded;
      const wsMs = (await wsClosed) - pressed;
      t.diagnostic(
        `Ctrl-C to exit: ${tookMs} ms; the long poll was answered after ${poll.at - pressed} ms, the WebSocket closed after ${wsMs} ms`,
      );
      const stopped = terminal.screen();
      t.diagnostic(`pincer chat then showed: ${JSON.stringify(chat.screen().trim().split('\n').slice(-3))}`);
      assert.equal(exit[1], '0', stopped);
      assert.ok(tookMs < STOP_WITHIN_MS, `pincer stopped within ${STOP_WITHIN_MS} ms of Ctrl-C (it took ${tookMs} ms):\n${stopped}`);
      assert.equal(poll.status, 200, 'the long poll got its answer');
      assert.ok(poll.at > pressed, 'the long poll was still waiting when Ctrl-C came');
      assert.ok(poll.at - pressed < STOP_WITHIN_MS && wsMs < STOP_WITHIN_MS);
      assert.match(stopped, /\^C\nstopping… \(Ctrl-C again to quit at once\)\n/);
      assert.match(stopped, /^stopped \([\d.]+ m?s\)$/m);
      assert.doesNotMatch(stopped.slice(stopped.indexOf('^C')), /crashed|ERROR|WARN/, 'a deliberate stop is no failure');
      assert.deepEqual(
        sandboxes.filter((pid) => existsSync(`/proc/${pid}`)),
        [],
        'the sandboxes are gone',
      );
    } finally {
      release();
      ws?.terminate();
      await browser?.close();
      chat?.close();
      terminal.close();
      await model.close();
    }
  });

  test('LOG_FORMAT=json keeps JSON lines on a terminal; without a terminal they are JSON anyway', { skip: tmuxMissing }, async () => {
    const home = newHome();
    const port = await freePort();
    // No credential and no model: pincer still starts (and says how to set one), which is all this needs.
    const env = pincerChildEnv({ home, port, token: TOKEN, modelUrl: 'http://127.0.0.1:9', key: '', extra: { LOG_LEVEL: 'info' } });
    const terminal = new Terminal(home, { ...env, LOG_FORMAT: 'json' });
    try {
      await terminal.waitFor(/pincer is running: http/, 60_000);
      assert.match(terminal.screen(), /^\{"level":30,"time":\d+,"app":"pincer".*"msg":"pincer is running"\}$/m);
      terminal.ctrlC();
      await terminal.waitFor(/exit=0 at/, 30_000);
    } finally {
      terminal.close();
    }

    const piped = await spawnPincer(
      pincerChildEnv({ home, port, token: TOKEN, modelUrl: 'http://127.0.0.1:9', key: '', extra: { LOG_LEVEL: 'info' } }),
      port,
    );
    const { code } = await piped.stop();
    assert.equal(code, 0);
    const lines = piped.output().split('\n');
    assert.ok(
      lines.some((l) => /^\{"level":30,.*"msg":"pincer is running"\}$/.test(l)),
      piped.output(),
    );
    assert.ok(
      lines.some((l) => /^\{"level":30,.*"msg":"stopped"\}$/.test(l)),
      piped.output(),
    );
    assert.ok(lines.includes(`pincer is running: http://127.0.0.1:${port}`), 'the plain first line, for scripts');
    assert.ok(!piped.output().includes('/login?code='), 'no login link leaves the terminal');
  });
});

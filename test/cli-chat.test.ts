// `pincer chat`'s typing hint: the first key of a line tells pincer someone types (throttled), on a terminal
// only. The real CLI runs in a child process, on a pseudo-terminal made by script(1), against a local channel
// whose sink records what reaches it.
import assert from 'node:assert/strict';
import { type ChildProcessWithoutNullStreams, execFileSync, spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { LocalChannel } from '../src/channels/local/channel.js';
import type { InboundMessage, InboundSink } from '../src/channels/types.js';
import { parseLine } from '../src/cli/chat/commands.js';
import { TYPING_HINT_MS, typingHinter } from '../src/cli/chat/typing-hint.js';
import { TOKEN } from './helpers/cli.js';
import { type Harness, startHarness } from './helpers/harness.js';
import { startLocalChannel } from './helpers/local-channel.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));

describe('typing hints of pincer chat: which keys count', () => {
  const setup = () => {
    let now = 1_000_000;
    let hints = 0;
    const press = typingHinter(
      () => {
        hints++;
      },
      () => now,
    );
    return {
      press,
      hints: () => hints,
      advance: (ms: number) => {
        now += ms;
      },
    };
  };

  test('the first character of a line sends one hint; the rest of the line none', () => {
    const t = setup();
    t.press('h', { name: 'h' });
    t.press('i', { name: 'i' });
    t.press(' ', { name: 'space' });
    assert.equal(t.hints(), 1, 'one hint for the whole line');
  });

  test('a new line sends another only once TYPING_HINT_MS have passed', () => {
    const t = setup();
    t.press('a', { name: 'a' });
    t.press('\r', { name: 'return' });
    t.advance(TYPING_HINT_MS - 1);
    t.press('b', { name: 'b' });
    assert.equal(t.hints(), 1, 'the second line came too soon for a hint');
    t.press('\r', { name: 'return' });
    t.advance(1);
    t.press('c', { name: 'c' });
    assert.equal(t.hints(), 2, 'the third line came late enough');
  });

  test('control keys are not typing: Enter alone, arrows, Backspace, Ctrl+C', () => {
    const t = setup();
    t.press('\r', { name: 'return' });
    t.press(undefined, { name: 'up' });
    t.press('\u001b[A', { name: 'up' });
    t.press('\u007f', { name: 'backspace' });
    t.press('\u0003', { name: 'c', ctrl: true });
    t.press('x', { name: 'x', meta: true });
    assert.equal(t.hints(), 0, 'no hint without a character typed');
    t.press('k', { name: 'k' });
    assert.equal(t.hints(), 1, 'the first real character still counts');
  });
});

describe('pincer chat: which lines are its own commands', () => {
  test('/help, /quit, /exit and /trace with or without an id are handled by the terminal', () => {
    assert.deepEqual(parseLine('/help'), { kind: 'help' });
    assert.deepEqual(parseLine(' /quit '), { kind: 'quit' });
    assert.deepEqual(parseLine('/exit'), { kind: 'quit' });
    assert.deepEqual(parseLine('/trace'), { kind: 'trace', id: null });
    assert.deepEqual(parseLine('/trace #12'), { kind: 'trace', id: '12' });
  });

  test("the chat's own commands and anything else go to pincer as messages; an empty line is nothing", () => {
    assert.deepEqual(parseLine('/compact'), { kind: 'message', text: '/compact' });
    assert.deepEqual(parseLine('/clear'), { kind: 'message', text: '/clear' });
    assert.deepEqual(parseLine('/trace why did this happen'), { kind: 'message', text: '/trace why did this happen' });
    assert.deepEqual(parseLine('  hello  '), { kind: 'message', text: 'hello' });
    assert.equal(parseLine('   '), null);
  });
});

/** script(1) gives the CLI a terminal; without it the terminal case cannot run here. */
function scriptMissing(): string | false {
  try {
    execFileSync('script', ['--version'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'script(1) is not installed';
  }
}

describe('typing hints of pincer chat: the real CLI', () => {
  let h: Harness;
  let channel: LocalChannel;
  const typed: string[] = [];
  const ingested: InboundMessage[] = [];
  const sink: InboundSink = {
    maxMediaBytes: 0,
    isJoined: (chatId) => chatId === 'local:typing',
    seen: () => false,
    typing: (chatId) => {
      typed.push(chatId);
    },
    ingest: async (m) => {
      ingested.push(m);
      return { seq: ingested.length, duplicate: false, engaged: false };
    },
  };

  before(async () => {
    h = await startHarness({ env: { ANTHROPIC_API_KEY: '' } });
    channel = await startLocalChannel(h, sink);
  });
  after(async () => {
    await channel?.stop();
    await h?.stop();
  });

  const env = () => ({
    PATH: process.env.PATH ?? '',
    HOME: process.env.HOME ?? '',
    PINCER_PORT: String(channel.port),
    PINCER_TOKEN: TOKEN,
    PINCER_HOME: h.home,
    TZ: 'UTC',
    TERM: 'dumb',
  });
  const cli = [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'chat', 'typing'];

  /** Collects a child's output; `until` waits for a pattern in it. */
  const watch = (child: ChildProcessWithoutNullStreams) => {
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    child.stderr.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    return {
      exited,
      output: () => out,
      async until(check: () => boolean, what: string, ms = 20_000): Promise<void> {
        const deadline = Date.now() + ms;
        while (Date.now() < deadline) {
          if (check()) return;
          await new Promise((r) => setTimeout(r, 25));
        }
        assert.fail(`${what} within ${ms} ms; the CLI wrote: ${out}`);
      },
    };
  };

  test('on a terminal, the first key of a line sends the hint for its chat, once', { skip: scriptMissing() }, async () => {
    typed.length = 0;
    const child = spawn('script', ['-qfec', cli.map((a) => `'${a}'`).join(' '), '/dev/null'], { cwd: ROOT, env: env() });
    const run = watch(child);
    try {
      await run.until(() => run.output().includes('typing> '), 'no prompt');
      child.stdin.write('h');
      await run.until(() => typed.length > 0, 'no typing hint reached pincer');
      child.stdin.write('ello');
      // The hint goes out at the first key; the line's other keys (and their requests, if any) have had time.
      await new Promise((r) => setTimeout(r, 300));
      assert.deepEqual(typed, ['local:typing'], 'one hint for the line, naming its chat');
      child.stdin.write('\r');
      await run.until(() => ingested.some((m) => m.text === 'hello'), 'the line was not sent');
      child.stdin.write('/quit\r');
      assert.equal(await run.exited, 0, run.output());
    } finally {
      child.kill();
    }
  });

  test('from a pipe, lines are sent and no hint is', async () => {
    typed.length = 0;
    const child = spawn(cli[0] as string, cli.slice(1), { cwd: ROOT, env: env() });
    const run = watch(child);
    try {
      child.stdin.write('from a pipe\n');
      await run.until(() => ingested.some((m) => m.text === 'from a pipe'), 'the piped line was not sent');
      child.stdin.end('/quit\n');
      assert.equal(await run.exited, 0, run.output());
      assert.deepEqual(typed, [], 'no typing hint without a terminal');
    } finally {
      child.kill();
    }
  });
});

// `pincer chat` as a user meets it: the real CLI in a real pseudo-terminal (tmux, 120×40), against a real
// pincer with the scripted fake model, asserting on what the screen shows.
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { type FakeModel, isAgentTurn, isToolResult, lastUserText, startFakeModel } from './helpers/fake-model.js';
import { HARNESS_TOKEN, type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHAT = 'local:term';
/** One tmux server of this test's own: the tests never touch anyone else's sessions. */
const SOCKET = `pincer-chat-test-${process.pid}`;
const SESSION = 'chat';

function tmux(...args: string[]): string {
  return execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' });
}

function tmuxMissing(): string | false {
  try {
    execFileSync('tmux', ['-V'], { stdio: 'ignore' });
    return false;
  } catch {
    return 'tmux is not installed';
  }
}

/** The screen as the user sees it, wrapped lines joined; `escapes` keeps colours and emphasis (SGR sequences). */
const screen = (escapes = false) => tmux('capture-pane', '-p', '-J', ...(escapes ? ['-e'] : []), '-t', SESSION);
/** The screen and everything scrolled off above it. */
const scrollback = () => tmux('capture-pane', '-p', '-S', '-', '-t', SESSION);

async function waitFor(check: (text: string) => boolean, what: string, ms = 30_000, read = screen): Promise<string> {
  const deadline = Date.now() + ms;
  let text = '';
  while (Date.now() < deadline) {
    text = read();
    if (check(text)) return text;
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.fail(`${what} within ${ms} ms; the screen:\n${text}`);
}

/** An escape sequence that sets colours or emphasis, up to its parameters (written so, as a regex may not hold ESC). */
const ESC = '\\u001b';
const SGR = `${ESC}\\[[0-9;]*`;
const count = (text: string, pattern: RegExp) => text.split('\n').filter((line) => pattern.test(line)).length;
const type = (text: string) => tmux('send-keys', '-t', SESSION, '-l', text);
const enter = () => tmux('send-keys', '-t', SESSION, 'Enter');

const MARKDOWN_REPLY = [
  '## Setup steps',
  '',
  'This is **really important** to get right:',
  '',
  '- install it',
  '- run it',
  '',
  '```js',
  'const answer = 42;',
  '```',
  '',
  '| tool | cost |',
  '|------|------|',
  '| bash | free |',
].join('\n');

/** Replies of the scripted model by what the user wrote. */
function script(req: Parameters<Parameters<typeof startFakeModel>[0] & object>[0]) {
  if (!isAgentTurn(req)) return { text: 'side request' };
  const text = lastUserText(req);
  if (isToolResult(req) && text.includes('first-step-done'))
    return { toolUse: { name: 'Bash', input: { command: 'sleep 1; echo second-step-done', description: 'step two' } }, delayMs: 500 };
  if (isToolResult(req) && text.includes('second-step-done')) return { text: 'both steps ran', delayMs: 1000 };
  // Each command runs a second, the model thinks half a second before each call: every stage stays on screen a while.
  if (text.includes('slow tools please'))
    return { toolUse: { name: 'Bash', input: { command: 'sleep 1; echo first-step-done', description: 'step one' } }, delayMs: 500 };
  if (text.includes('markdown please')) return { text: MARKDOWN_REPLY };
  if (text.includes('old-')) return { text: 'noted' };
  if (text.includes('hello from the web page')) return { text: 'hello, web person' };
  if (text.includes('typed while down')) return { text: 'got the one typed while down' };
  return { text: 'ok' };
}

describe('pincer chat in a terminal', { skip: tmuxMissing() }, () => {
  let skip: string | undefined;
  let fake: FakeModel;
  let home: string;
  let h: Harness;
  let port: number;

  const cliEnv = () => ({ PINCER_PORT: String(port), PINCER_TOKEN: HARNESS_TOKEN, PINCER_HOME: home, ASSISTANT_NAME: 'Andy', TZ: 'UTC' });
  const cli = (name: string) => [process.execPath, '--import', 'tsx', 'src/cli/main.ts', 'chat', name];
  /**
   * `pincer chat <name>` as a shell command for tmux, with `extra` environment; once it exits, the pane shows its
   * exit status (tmux's own pane_dead_status proved unreliable on a loaded machine).
   */
  const chatCommand = (name: string, extra: Record<string, string> = {}) =>
    `${['env', ...Object.entries({ ...cliEnv(), ...extra }).map(([k, v]) => `${k}=${v}`), ...cli(name)].join(' ')}; echo "[exited $?]"; sleep 600`;

  const start = async (onPort: number) => startHarness({ fake, home, env: { PINCER_PORT: String(onPort), ASSISTANT_NAME: 'Andy' } });

  before(async () => {
    skip = await sandboxUnavailable();
    if (skip) return;
    fake = await startFakeModel(script);
    home = mkdtempSync(join(tmpdir(), 'pincer-chat-term-'));
    h = await start(0);
    port = h.pincer.local.port;
    // Eleven questions before the terminal opens: it shows the newest ten messages, not the first question.
    for (let i = 1; i <= 11; i++) await h.send(CHAT, `old-${String(i).padStart(2, '0')}`);
    const sent = await h.messages(CHAT);
    await h.reply(CHAT, sent.at(-1)?.id ?? '0');
    tmux('new-session', '-d', '-s', SESSION, '-x', '120', '-y', '40', '-c', ROOT, chatCommand('term'));
  });

  after(async () => {
    try {
      tmux('kill-server');
    } catch {
      // Not started (skipped) or already gone.
    }
    await h?.stop();
    await fake?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  test('opens with the chat name, the newest messages and the prompt', async (t) => {
    if (skip) return t.skip(skip);
    const text = await waitFor((s) => /^term>/m.test(s), 'no prompt');
    assert.match(text, /^term · local:term with Andy/m, 'the chat is named first');
    assert.match(text, /old-11/, 'the newest question is shown');
    assert.doesNotMatch(text, /old-01/, 'only the newest ten messages are shown');
    assert.match(text, /Andy {2}\d\d:\d\d {2}#\d+\nnoted/, 'a reply with its sender, time and id');
    assert.match(text.trimEnd(), /\nterm>$/, 'the prompt below the history');
  });

  test('a sent message shows its id; a Markdown reply is laid out, not shown as Markdown', async (t) => {
    if (skip) return t.skip(skip);
    type('markdown please');
    enter();
    const text = await waitFor((s) => s.includes('const answer = 42;'), 'no rendered reply');
    const stored = await h.messages(CHAT);
    const question = stored.find((m) => m.text === 'markdown please');
    const reply = stored.find((m) => m.fromAssistant && m.text === MARKDOWN_REPLY);
    assert.ok(question && reply, 'both are stored');
    assert.match(text, new RegExp(`You {2}\\d\\d:\\d\\d {2}#${question.id}\\nmarkdown please`), 'the sent message with its id');
    assert.match(text, new RegExp(`Andy {2}\\d\\d:\\d\\d {2}#${reply.id}`), 'the reply with its id');
    assert.match(text, /^Setup steps$/m, 'the heading without its ## marker');
    assert.match(text, /This is really important to get right:/, 'bold without its asterisks');
    assert.match(text, /^ {2}\* install it$/m, 'a list item');
    assert.doesNotMatch(text, /```|\*\*|## /, 'no Markdown syntax left');
    assert.match(text, /│ tool │ cost │/, 'the table drawn with borders');
    assert.match(text, /│ bash │ free │/);
    const styled = screen(true);
    assert.match(styled, new RegExp(`${SGR}1[0-9;]*m[^${ESC}]*really important`), 'bold is bold');
    assert.match(styled, new RegExp(`${SGR}m\\s*const${ESC}`), 'the code block is highlighted');
    assert.doesNotMatch(text, /term> markdown please/, 'the typed line became the sent message');
  });

  test('one status line, replaced in place as the agent works, gone with the reply; the partial input survives', async (t) => {
    if (skip) return t.skip(skip);
    // Longer than the terminal is wide: the input wraps, and every redraw must still keep it whole.
    const partial = `half typed: ${'and more '.repeat(14).trim()}`;
    type('slow tools please');
    enter();
    type(partial);
    const seen = new Set<string>();
    let worst = 0;
    const text = await waitFor(
      (s) => {
        worst = Math.max(worst, count(s, /is working…/));
        for (const line of s.split('\n')) if (line.includes('is working…')) seen.add(line.trim());
        return s.includes('both steps ran') && !s.includes('is working…');
      },
      'no final reply, or the status line stayed',
      60_000,
    );
    assert.equal(worst, 1, 'never more than one status line on the screen');
    assert.ok(seen.has('Andy is working… using Bash: sleep 1; echo first-step-done'), `first tool shown: ${[...seen].join(' | ')}`);
    assert.ok(seen.has('Andy is working… using Bash: sleep 1; echo second-step-done'), `second tool shown: ${[...seen].join(' | ')}`);
    assert.equal(count(scrollback(), /is working…/), 0, 'no status line left behind in the scrollback');
    const lines = text.trimEnd().split('\n');
    assert.equal(lines.at(-1)?.trimEnd(), `term> ${partial}`, 'the prompt with the partial input is the last line');
    enter();
    await waitFor((s) => new RegExp(`You {2}\\S+ {2}#\\d+\\n${partial}\\n`).test(s), 'the partial line was not shown as sent');
    assert.ok(
      (await h.messages(CHAT)).some((m) => m.text === partial),
      'stored as typed',
    );
  });

  test('messages from another client are shown, the question and its reply', async (t) => {
    if (skip) return t.skip(skip);
    const id = await h.send(CHAT, 'hello from the web page', 'Web Person');
    const text = await waitFor((s) => s.includes('hello, web person'), 'no reply to the other client');
    assert.match(text, new RegExp(`Web Person {2}\\d\\d:\\d\\d {2}#${id}\\nhello from the web page`));
  });

  test("/help lists the commands; /trace shows the last question's stages", async (t) => {
    if (skip) return t.skip(skip);
    type('/help');
    enter();
    await waitFor((s) => s.includes('Commands of this terminal:') && s.includes('/trace [id]'), 'no help');
    type('/trace');
    enter();
    const stored = await h.messages(CHAT);
    const last = stored.filter((m) => !m.fromAssistant).at(-1);
    assert.ok(last);
    const text = await waitFor((s) => s.includes(`trace of #${last.id} from Web Person`), 'no trace of the last question');
    assert.match(text, /\+0 ms {2}received/, 'the first stage');
    assert.match(text, /ms {2}delivered/, 'the reply delivered');
  });

  test('pincer stopping and coming back: one "connection lost" line, then "reconnected"; a message typed meanwhile is sent', async (t) => {
    if (skip) return t.skip(skip);
    await h.stop();
    await waitFor((s) => s.includes('connection lost'), 'no connection lost notice');
    // Several retries happen in this time (0.5, 1, 2 s…): still one line.
    await new Promise((r) => setTimeout(r, 4000));
    type('typed while down');
    enter();
    let text = await waitFor((s) => s.includes('not sent yet'), 'no notice that the message waits');
    assert.equal(count(text, /connection lost/), 1, 'one line for the outage');
    h = await start(port);
    text = await waitFor((s) => /You {2}\S+ {2}#\d+\ntyped while down/.test(s), 'the waiting message was not sent', 30_000);
    assert.equal(count(text, /connection lost/), 1);
    assert.equal(count(text, /^reconnected$/), 1);
    const stored = (await h.messages(CHAT)).filter((m) => m.text === 'typed while down');
    assert.equal(stored.length, 1, 'stored once');
    await waitFor((s) => s.includes('got the one typed while down'), 'no reply after the reconnect');
  });

  test('Ctrl-C clears a half-typed line without sending it; /quit leaves with status 0', async (t) => {
    if (skip) return t.skip(skip);
    const before = (await h.messages(CHAT)).length;
    type('not meant to be sent');
    await waitFor((s) => s.trimEnd().endsWith('term> not meant to be sent'), 'the typed line is not shown');
    tmux('send-keys', '-t', SESSION, 'C-c');
    await waitFor((s) => s.trimEnd().endsWith('term>'), 'Ctrl-C did not clear the line');
    assert.equal((await h.messages(CHAT)).length, before, 'nothing was sent');
    type('/quit');
    enter();
    await waitFor((s) => s.includes('[exited 0]'), 'not exited 0', 10_000);
  });

  test('NO_COLOR: a reply keeps its layout without colours; Ctrl-D leaves', async (t) => {
    if (skip) return t.skip(skip);
    const asked = await h.send('local:plain', 'markdown please');
    await h.reply('local:plain', asked);
    tmux('new-session', '-d', '-s', 'nocolor', '-x', '120', '-y', '40', '-c', ROOT, chatCommand('plain', { NO_COLOR: '1' }));
    try {
      const read = () => tmux('capture-pane', '-p', '-e', '-t', 'nocolor');
      const text = await waitFor((s) => s.includes('│ bash │ free │') && /^plain>/m.test(s), 'no laid-out reply', 30_000, read);
      assert.match(text, /^Setup steps$/m, 'the heading laid out');
      assert.match(text, /This is really important to get right:/);
      assert.doesNotMatch(text, new RegExp(ESC), 'no colour or emphasis at all');
      // Ctrl-D on an empty line leaves, as /quit does.
      tmux('send-keys', '-t', 'nocolor', 'C-d');
      await waitFor((s) => s.includes('[exited 0]'), 'Ctrl-D did not leave with status 0', 10_000, read);
    } finally {
      tmux('kill-session', '-t', 'nocolor');
    }
  });

  test('not a terminal: replies are the Markdown as written, no escapes', async (t) => {
    if (skip) return t.skip(skip);
    const child = spawn(cli('plain')[0] as string, cli('plain').slice(1), {
      cwd: ROOT,
      env: { PATH: process.env.PATH ?? '', ...cliEnv() },
    });
    let out = '';
    child.stdout.on('data', (chunk: Buffer) => {
      out += chunk.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
    child.stdin.end('/quit\n');
    assert.equal(await exited, 0);
    assert.ok(out.includes(MARKDOWN_REPLY), `the reply as written:\n${out}`);
    assert.doesNotMatch(out, new RegExp(ESC), 'no escape sequences');
    assert.match(out, /^Andy {2}\d\d:\d\d {2}#\d+$/m, 'the header with the id, plain');
  });
});

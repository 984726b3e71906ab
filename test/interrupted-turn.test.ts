// A turn cut off by a SIGKILL of pincer runs again after the restart, and its agent is told so: that this is a
// second attempt and which tool calls the first one made (from the trace), so it can check before repeating a
// side effect. Real pincer processes, real Claude Code in real sandboxes, the scripted model.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { type FakeModel, isAgentTurn, isToolResult, type ModelRequest, promptText, startFakeModel } from './helpers/fake-model.js';
import { REAL_KEY, sandboxUnavailable } from './helpers/harness.js';
import { freePort, type PincerProcess, pincerChildEnv, spawnPincer } from './helpers/pincer-process.js';

const skip = await sandboxUnavailable();
const TOKEN = 'test-token-0123456789';

/** The conversation as the model receives it, for asserting on what the agent is told. */
const conversation = (req: ModelRequest) => JSON.stringify(req.body.messages ?? []);

async function until(what: string, check: () => boolean, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('a turn cut off by a kill of pincer runs again, and knows it', { skip }, () => {
  let model: FakeModel;
  let home: string;
  let port: number;
  let pincer: PincerProcess | undefined;
  let env: Record<string, string>;
  /** Prompts of re-run attempts, as the model received them. */
  const reruns: ModelRequest[] = [];

  const api = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(`http://127.0.0.1:${port}${path}`, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  before(async () => {
    model = await startFakeModel((req) => {
      if (!isAgentTurn(req)) return { text: 'side request' };
      const text = conversation(req);
      const chore = promptText(req).includes('append to the chore log') || text.includes('[Scheduled run of task');
      if (!chore) return { text: 'ok' };
      if (text.includes('<interrupted_attempt')) {
        reruns.push(req);
        return { text: 'I checked the chore log: the line is already there, so I did not add it again.' };
      }
      // The first attempt: the side effect, then a model call that never ends (pincer is killed meanwhile).
      if (!isToolResult(req)) {
        const line = text.includes('[Scheduled run of task') ? 'task' : 'chat';
        return { toolUse: { name: 'Bash', input: { command: `echo ${line} >> chore.log`, description: 'append to the chore log' } } };
      }
      return { hang: true };
    });
    home = mkdtempSync(join(tmpdir(), 'pincer-rerun-'));
    port = await freePort();
    env = pincerChildEnv({ home, port, token: TOKEN, modelUrl: model.url, key: REAL_KEY });
    pincer = await spawnPincer(env, port);
  });

  after(async () => {
    await pincer?.kill();
    await model?.close();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  /** SIGKILLs pincer (and its sandboxes) once the first attempt's tool ran and its next model call hangs. */
  async function killMidTurn(log: string, lines: number): Promise<void> {
    await until('the side effect and the hanging call after it', () => {
      const done = existsSync(log) && readFileSync(log, 'utf8').trim().split('\n').length >= lines;
      return done && model.requests.some((r) => isToolResult(r) && r.closedAt === undefined);
    });
    await pincer?.kill();
    pincer = await spawnPincer(env, port);
  }

  test('a chat turn: the re-run is told of the Bash call the first attempt made, and the trace says so', async () => {
    const sent = await api('POST', '/api/v1/messages', { chat: 'local:main', text: 'please append to the chore log' });
    assert.equal(sent.status, 202);
    const log = join(home, 'groups', 'main', 'chore.log');
    await killMidTurn(log, 1);

    await until('the re-run', () => reruns.length >= 1, 90_000);
    const told = conversation(reruns[0] as ModelRequest);
    assert.match(told, /<interrupted_attempt tool_calls=\\"1\\">/);
    assert.match(told, /This runs again: an earlier attempt at this was cut off/);
    assert.match(told, /- Bash: echo chat &gt;&gt; chore\.log/, 'the first attempt\u2019s call is named');
    assert.equal(readFileSync(log, 'utf8'), 'chat\n', 'the side effect happened once');

    const replies = async () => {
      const page = await api('GET', '/api/v1/messages?chat=local:main&after=0');
      return (page.body.messages as Array<{ text: string; fromAssistant: boolean }>).filter((m) => m.fromAssistant);
    };
    let answered = await replies();
    for (let i = 0; i < 300 && answered.length === 0; i++) {
      await sleep(100);
      answered = await replies();
    }
    const reply = answered[0];
    assert.match(reply?.text ?? '', /already there/);
    const trace = await api('GET', `/api/v1/messages/${encodeURIComponent(String(sent.body.id))}/trace`);
    assert.match(JSON.stringify(trace.body), /again after an interrupted attempt \(1 tool call\(s\) shown\)/);
  });

  test('an isolated scheduled run: the re-run is told too', async () => {
    const res = await api('POST', '/api/v1/tasks', {
      group: 'main',
      prompt: 'the weekly chore',
      scheduleType: 'once',
      scheduleValue: new Date(Date.now() + 1_500).toISOString(),
      contextMode: 'isolated',
    });
    assert.equal(res.status, 201, JSON.stringify(res.body));
    const log = join(home, 'groups', 'main', 'chore.log');
    await killMidTurn(log, 2);

    await until('the re-run of the task', () => reruns.length >= 2, 90_000);
    const told = conversation(reruns[1] as ModelRequest);
    assert.match(told, /Scheduled run of task/);
    assert.match(told, /<interrupted_attempt tool_calls=\\"1\\">/);
    assert.match(told, /- Bash: echo task &gt;&gt; chore\.log/);
    assert.equal(readFileSync(log, 'utf8'), 'chat\ntask\n', 'the side effect happened once');
  });
});

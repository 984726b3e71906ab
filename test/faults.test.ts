// A crashed agent process, a turn past its hard timeout, a model that refuses the key: the chat is told,
// and the group goes on with the next message.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { isAgentTurn, isToolResult, lastUserText, startFakeModel } from './helpers/fake-model.js';
import { sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();

test('an agent process killed mid-turn yields a clear message, and the next message works', { skip }, async () => {
  const h = await startHarness({
    script: (req) => {
      if (!isAgentTurn(req)) return { text: 'side' };
      const text = lastUserText(req);
      if (text.includes('crash now') && !isToolResult(req)) {
        // Bash's parent is the Claude Code process: this kills the agent mid-turn.
        return { toolUse: { name: 'Bash', input: { command: 'kill -9 $PPID', description: 'crash' } } };
      }
      return { text: text.includes('are you back') ? 'fine, back' : 'fine' };
    },
  });
  try {
    const id = await h.send('local:main', 'crash now');
    const reply = await h.reply('local:main', id, 30_000);
    assert.match(reply.text, /^⚠️ The agent stopped unexpectedly/);
    const next = await h.send('local:main', 'are you back');
    const ok = await h.reply('local:main', reply.id, 30_000);
    assert.equal(ok.text, 'fine, back');
    assert.ok(Number(ok.id) > Number(next));
    const statuses = h.pincer.store.turns.recent('local:main', 5).map((t) => t.status);
    assert.deepEqual(statuses, ['success', 'crashed']);
  } finally {
    await h.stop();
  }
});

test('a turn past the hard timeout is stopped with a message, and the group continues', { skip }, async () => {
  const h = await startHarness({
    // Long enough for a cold agent to answer on a busy host, short enough to wait for.
    env: { PINCER_TURN_TIMEOUT_SEC: '5' },
    script: (req) => {
      if (!isAgentTurn(req)) return { text: 'side' };
      const text = lastUserText(req);
      if (text.includes('hang') && !isToolResult(req))
        return { toolUse: { name: 'Bash', input: { command: 'tail -f /dev/null', description: 'hang' } } };
      return { text: 'quick answer' };
    },
  });
  try {
    const id = await h.send('local:main', 'please hang');
    const started = Date.now();
    const reply = await h.reply('local:main', id, 30_000);
    assert.match(reply.text, /took longer than 5 s and was stopped/);
    assert.ok(Date.now() - started < 20_000);
    const next = await h.send('local:main', 'something quick');
    const ok = await h.reply('local:main', next, 30_000);
    assert.equal(ok.text, 'quick answer');
  } finally {
    await h.stop();
  }
});

test('a model endpoint that refuses the key ends the turn with the reason, not silence', { skip }, async () => {
  const h = await startHarness({ env: { PINCER_MODEL_MAX_RETRIES: '1' }, script: () => ({ status: 401, error: 'invalid x-api-key' }) });
  try {
    const id = await h.send('local:main', 'hello');
    const reply = await h.reply('local:main', id, 60_000);
    assert.match(reply.text, /^⚠️/);
    assert.doesNotMatch(reply.text, /REAL-KEY/);
  } finally {
    await h.stop();
  }
});

test('a turn cut off by a stop runs again after the restart and is answered exactly once', { skip }, async () => {
  const fake = await startFakeModel((req) => (isAgentTurn(req) ? { text: 'answered after restart', delayMs: 1500 } : { text: 'side' }));
  const home = mkdtempSync(join(tmpdir(), 'pincer-restart-'));
  try {
    const first = await startHarness({ fake, home });
    const id = await first.send('local:main', 'interrupted work');
    await fake.nextRequest((r) => isAgentTurn(r) && lastUserText(r).includes('interrupted work'));
    await first.pincer.stop();
    const second = await startHarness({ fake, home });
    try {
      const reply = await second.reply('local:main', id, 30_000);
      assert.equal(reply.text, 'answered after restart');
      const replies = (await second.messages('local:main')).filter((m) => m.fromAssistant);
      assert.equal(replies.length, 1, 'the cut-off turn left no reply behind; the re-run answered once');
    } finally {
      await second.stop();
    }
  } finally {
    await fake.close();
    rmSync(home, { recursive: true, force: true });
  }
});

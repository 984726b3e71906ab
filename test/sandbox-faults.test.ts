// The sandbox misbehaves under a real pincer with a real Claude Code: a tool blows through the memory limit.
// The turn ends with one clear reply, nothing of the bomb is left running, and the group goes on.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { BwrapRuntime } from '../src/sandbox/bwrap.js';
import { detectHostCgroups, leftoverCgroups } from '../src/sandbox/cgroup.js';
import { isAgentTurn, isToolResult, lastUserText, type ModelScript } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

/** Why the memory limit cannot be enforced here: only a cgroup bounds a sandbox's memory as a whole. */
async function memoryLimitUnavailable(): Promise<string | undefined> {
  const unavailable = await sandboxUnavailable();
  if (unavailable) return unavailable;
  const dir = mkdtempSync(join(tmpdir(), 'pincer-probe-'));
  try {
    const runtime = new BwrapRuntime({ stateDir: dir, instance: 'probe-memory' });
    await runtime.probe();
    const via = runtime.limits().memoryBytes;
    // RLIMIT_AS would stop Claude Code itself (it reserves far more address space than it uses).
    return via.startsWith('cgroup') ? undefined : `the sandbox memory limit is not a cgroup here (${via})`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Processes whose command line holds the marker, anywhere on the host (the sandbox's PID namespace included). */
function processesWith(marker: string): string[] {
  try {
    return execFileSync('pgrep', ['-af', marker], { encoding: 'utf8' }).trim().split('\n').filter(Boolean);
  } catch {
    return []; // pgrep exits 1 when nothing matches
  }
}

/** The cgroup directories of this pincer's live sandboxes (one set per sandbox). */
function sandboxCgroups(h: Harness): string[][] {
  const support = detectHostCgroups(`pincer-${h.pincer.layout.instance}`);
  return 'reason' in support ? [] : leftoverCgroups(support).map((c) => c.dirs);
}

async function waitUntil(check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check() && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
}

/** Fills 64 MiB buffers (touched, so really resident) until something stops it; the marker names it in ps. */
function memoryBomb(marker: string): string {
  return `node -e 'const a = []; for (;;) a.push(Buffer.alloc(64 << 20, 1))' ${marker}; echo "bomb exit=$?"`;
}

/** Runs `command` when a message says "allocate"; answers with the bomb's exit code; answers "still here" after. */
function bombScript(command: string, toolResults: string[], beforeBomb?: () => void): ModelScript {
  return (req) => {
    if (!isAgentTurn(req)) return { text: 'side' };
    const text = lastUserText(req);
    if (text.includes('still there')) return { text: 'still here' };
    if (isToolResult(req)) {
      toolResults.push(text);
      const exit = /bomb exit=(\d+)/.exec(text)?.[1] ?? 'unknown';
      return { text: `The command was stopped (exit ${exit}): it ran out of memory.` };
    }
    if (text.includes('allocate')) {
      beforeBomb?.();
      return { toolUse: { name: 'Bash', input: { command, description: 'memory bomb' } } };
    }
    return { text: 'side' };
  };
}

/** Enough for Claude Code (~250 MB resident), far too little for the bomb. */
const MEMORY_ENV = { PINCER_SANDBOX_MEMORY_MB: '512', PINCER_TURN_TIMEOUT_SEC: '30' };

const skip = await memoryLimitUnavailable();

/** After the fault the main group answers the next message; one reply per turn, the turns' statuses newest first. */
async function assertGroupGoesOn(h: Harness, statuses: string[]): Promise<void> {
  const next = await h.send('local:main', 'are you still there');
  const ok = await h.reply('local:main', next, 30_000);
  assert.equal(ok.text, 'still here');
  const replies = (await h.messages('local:main')).filter((m) => m.fromAssistant);
  assert.equal(replies.length, 2, `exactly one reply per turn: ${JSON.stringify(replies.map((m) => m.text))}`);
  assert.deepEqual(
    h.pincer.store.turns.recent('local:main', 5).map((t) => t.status),
    statuses,
  );
}

test('a tool that blows through the memory limit is killed; the agent says so, and the group continues', { skip }, async () => {
  const marker = `pincer-memory-bomb-${process.pid}`;
  const toolResults: string[] = [];
  const h = await startHarness({ env: MEMORY_ENV, script: bombScript(memoryBomb(marker), toolResults) });
  try {
    const id = await h.send('local:main', 'allocate all the memory');
    const reply = await h.reply('local:main', id, 30_000);
    // The kernel kills the biggest process of the sandbox's cgroup: the bomb, not Claude Code.
    assert.equal(reply.text, 'The command was stopped (exit 137): it ran out of memory.', `the tool said: ${toolResults.join(' | ')}`);
    assert.match(toolResults.join('\n'), /Killed/, 'the tool reported the kill');
    await waitUntil(() => processesWith(marker).length === 0, 5000);
    assert.deepEqual(processesWith(marker), [], 'nothing of the bomb is left running');
    assert.equal(sandboxCgroups(h).length, 1, 'the agent lives on in its sandbox (and this test sees sandbox cgroups)');

    await assertGroupGoesOn(h, ['success', 'success']);
  } finally {
    await h.stop();
  }
});

test('a memory limit that takes the agent down ends the turn with a message, the sandbox is gone, and the group continues', {
  skip,
}, async () => {
  const marker = `pincer-memory-bomb-agent-${process.pid}`;
  const toolResults: string[] = [];
  // Makes Claude Code the kernel's first choice when the cgroup runs out of memory, once its shell runs (a child
  // would inherit the score). The host does it: Claude Code is non-dumpable, so the agent's own commands cannot
  // touch its /proc entries (docs/SECURITY.md).
  const preferClaudeCode = async () => {
    const deadline = Date.now() + 20_000;
    while (processesWith(`${marker} waits`).length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    for (const pid of processesWith('/opt/claude/claude').map((l) => l.split(' ')[0])) {
      execFileSync('sh', ['-c', `echo 1000 > /proc/${pid}/oom_score_adj`]);
    }
  };
  const command = `sleep 2 # ${marker} waits\n${memoryBomb(marker)}`;
  const h = await startHarness({ env: MEMORY_ENV, script: bombScript(command, toolResults, () => void preferClaudeCode()) });
  try {
    const id = await h.send('local:main', 'allocate all the memory');
    const reply = await h.reply('local:main', id, 30_000);
    assert.match(reply.text, /^⚠️ The agent stopped unexpectedly/, `the tool said: ${toolResults.join(' | ')}`);
    await waitUntil(() => processesWith(marker).length === 0 && sandboxCgroups(h).length === 0, 5000);
    assert.deepEqual(processesWith(marker), [], 'nothing of the bomb is left running');
    assert.deepEqual(sandboxCgroups(h), [], "the sandbox's cgroup is gone");

    await assertGroupGoesOn(h, ['success', 'crashed']);
  } finally {
    await h.stop();
  }
});

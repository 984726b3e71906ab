// One pincer per state folder: a second start on the same PINCER_HOME leaves, touching nothing of the first
// (its sandboxes, sockets, turns); a lock left by a pincer that died is taken over.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { AlreadyRunningError, LOCK_FILE, takeInstanceLock } from '../src/service/instance-lock.js';
import { type FakeModel, isAgentTurn, lastUserText, startFakeModel } from './helpers/fake-model.js';
import { REAL_KEY, sandboxUnavailable } from './helpers/harness.js';
import { freePort, type PincerProcess, pincerChildEnv, spawnPincer } from './helpers/pincer-process.js';
import { commandOf, descendants } from './helpers/proc-tree.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TOKEN = 'test-token-0123456789';
const homes: string[] = [];

after(() => {
  for (const home of homes) rmSync(home, { recursive: true, force: true });
});

function newHome(): string {
  const home = mkdtempSync(join(tmpdir(), 'pincer-lock-'));
  homes.push(home);
  return home;
}

/** The pid of a process that has just exited: nobody's now. */
function deadPid(): number {
  const done = spawnSync('true');
  assert.ok(done.pid, 'true started');
  return done.pid;
}

function lockOf(home: string): { pid: number; url: string } {
  return JSON.parse(readFileSync(join(home, LOCK_FILE), 'utf8')) as { pid: number; url: string };
}

describe('the instance lock', () => {
  it('is held once: a second taker hears who holds it and where; released, it can be taken again', () => {
    const home = newHome();
    const lock = takeInstanceLock(home, 'http://127.0.0.1:1111');
    assert.deepEqual(lockOf(home).pid, process.pid);
    assert.throws(
      () => takeInstanceLock(home, 'http://127.0.0.1:2222'),
      (err: unknown) =>
        err instanceof AlreadyRunningError && err.message === `pincer is already running at http://127.0.0.1:1111 (pid ${process.pid})`,
    );
    lock.announce('http://127.0.0.1:3333');
    assert.equal(lockOf(home).url, 'http://127.0.0.1:3333');
    lock.release();
    assert.equal(existsSync(join(home, LOCK_FILE)), false);
    takeInstanceLock(home, 'http://127.0.0.1:4444').release();
    assert.deepEqual(readdirSync(home), [], 'no temporary file is left behind');
  });

  it('is one lock for one folder named two ways', () => {
    const home = newHome();
    const alias = join(newHome(), 'alias');
    symlinkSync(home, alias);
    const lock = takeInstanceLock(home, 'http://127.0.0.1:1111');
    assert.throws(() => takeInstanceLock(alias, 'http://127.0.0.1:2222'), AlreadyRunningError);
    lock.release();
  });

  it('takes over the lock of a pincer that died', () => {
    const home = newHome();
    writeFileSync(join(home, LOCK_FILE), JSON.stringify({ pid: deadPid(), url: 'http://127.0.0.1:1' }));
    const lock = takeInstanceLock(home, 'http://127.0.0.1:5555');
    assert.equal(lockOf(home).pid, process.pid);
    lock.release();
  });

  it('takes over a lock whose pid now belongs to a process started later', { skip: !existsSync('/proc/self/stat') && 'no /proc' }, () => {
    const home = newHome();
    // The parent (the test runner) is alive, but it is not the process that wrote this lock.
    writeFileSync(join(home, LOCK_FILE), JSON.stringify({ pid: process.ppid, started: '1', url: 'http://127.0.0.1:1' }));
    takeInstanceLock(home, 'http://127.0.0.1:5555').release();
  });

  it('is refused while the process that wrote it lives', () => {
    const home = newHome();
    const holder = spawn('sleep', ['30']);
    try {
      const started = readFileSync(`/proc/${holder.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19];
      writeFileSync(join(home, LOCK_FILE), JSON.stringify({ pid: holder.pid, started, url: 'http://127.0.0.1:6666' }));
      assert.throws(() => takeInstanceLock(home, 'http://127.0.0.1:7777'), {
        message: `pincer is already running at http://127.0.0.1:6666 (pid ${holder.pid})`,
      });
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('repeats no address from a live lock that is not a plain http address (a terminal sequence, say)', () => {
    const home = newHome();
    const holder = spawn('sleep', ['30']);
    try {
      const started = readFileSync(`/proc/${holder.pid}/stat`, 'utf8').split(') ')[1]?.split(' ')[19];
      for (const url of ['http://127.0.0.1:1\u001b]0;owned\u0007', 'file:///etc/passwd', `http://${'a'.repeat(400)}`]) {
        writeFileSync(join(home, LOCK_FILE), JSON.stringify({ pid: holder.pid, started, url }));
        assert.throws(() => takeInstanceLock(home, 'http://127.0.0.1:7777'), {
          message: `pincer is already running (pid ${holder.pid})`,
        });
      }
    } finally {
      holder.kill('SIGKILL');
    }
  });

  it('follows no link where the lock should be, and takes that place over', () => {
    const home = newHome();
    const elsewhere = join(newHome(), 'someone-elses-file');
    writeFileSync(elsewhere, JSON.stringify({ pid: process.ppid, url: 'http://127.0.0.1:1' }));
    symlinkSync(elsewhere, join(home, LOCK_FILE));
    const lock = takeInstanceLock(home, 'http://127.0.0.1:8888');
    assert.equal(lockOf(home).pid, process.pid);
    assert.equal(JSON.parse(readFileSync(elsewhere, 'utf8')).pid, process.ppid, 'the linked file is untouched');
    lock.release();
  });

  it('takes over a file that is no lock (garbage, half a word)', () => {
    const home = newHome();
    writeFileSync(join(home, LOCK_FILE), '{"pid": 12');
    takeInstanceLock(home, 'http://127.0.0.1:9999').release();
  });
});

/** Runs `pincer start` to its end: what it printed and how it exited. */
function startToEnd(env: Record<string, string>, timeoutMs: number): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'start'], {
    cwd: ROOT,
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`the second pincer was still running after ${timeoutMs} ms:\n${stderr}`));
    }, timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr });
    });
  });
}

describe('two pincers on one state folder', async () => {
  const skip = await sandboxUnavailable();

  it('the second says where the first runs and leaves; the first keeps its sandbox and its turn runs once', { skip }, async (t) => {
    const home = newHome();
    let release = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const model: FakeModel = await startFakeModel((req) =>
      isAgentTurn(req) && lastUserText(req).includes('slow work') ? gate.then(() => ({ text: 'done once' })) : { text: 'ok' },
    );
    let first: PincerProcess | undefined;
    try {
      const port = await freePort();
      const env = pincerChildEnv({
        home,
        port,
        token: TOKEN,
        modelUrl: model.url,
        key: REAL_KEY,
        extra: { PINCER_IDLE_TIMEOUT_SEC: '60' },
      });
      first = await spawnPincer(env, port);
      const base = `http://127.0.0.1:${port}`;
      const posted = await fetch(`${base}/api/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ chat: 'local:main', text: 'slow work' }),
      });
      assert.equal(posted.status, 202);
      const { id } = (await posted.json()) as { id: string };
      // The agent is mid-turn in its sandbox, waiting for the model.
      await model.nextRequest((r) => isAgentTurn(r) && lastUserText(r).includes('slow work'));
      const sandbox = descendants(first.pid).filter((pid) => commandOf(pid).includes('bwrap'));
      assert.ok(
        sandbox.length > 0,
        `the first pincer runs a sandbox (its processes: ${descendants(first.pid).map(commandOf).join(' | ')})`,
      );

      // The very same command line and state folder, port included, as a person starting pincer twice would.
      const second = await startToEnd(env, 60_000);
      t.diagnostic(`second start: exit ${second.code}, said ${JSON.stringify(second.stderr.trim())}`);
      const gone = sandbox.filter((pid) => !existsSync(`/proc/${pid}`));
      assert.deepEqual(gone, [], "the second start killed the first one's sandbox processes");
      assert.equal(second.code, 1);
      assert.equal(second.stderr.trim(), `pincer is already running at ${base} (pid ${first.pid})`);

      release();
      const deadline = Date.now() + 60_000;
      let replies: Array<{ text: string }> = [];
      while (Date.now() < deadline && replies.length === 0) {
        const res = await fetch(`${base}/api/v1/messages?chat=local:main&after=${id}&wait=5`, {
          headers: { authorization: `Bearer ${TOKEN}` },
        });
        replies = ((await res.json()) as { messages: Array<{ text: string; fromAssistant: boolean }> }).messages.filter(
          (m) => m.fromAssistant,
        );
      }
      assert.deepEqual(
        replies.map((r) => r.text),
        ['done once'],
      );
      const turns = model.requests.filter((r) => isAgentTurn(r) && lastUserText(r).includes('slow work'));
      assert.equal(turns.length, 1, 'the turn reached the model once: it was not cut off and run again');

      // Stopped, the first releases the lock; killed, it leaves it behind, and the next start takes it over.
      await first.stop();
      assert.equal(existsSync(join(home, LOCK_FILE)), false, 'the lock is released on exit');
      first = await spawnPincer(env, port);
      assert.equal(lockOf(home).pid, first.pid);
      await first.kill();
      assert.ok(existsSync(join(home, LOCK_FILE)), 'a killed pincer leaves its lock');
      first = await spawnPincer(env, port);
      assert.equal(lockOf(home).pid, first.pid, 'the lock of the killed pincer was taken over');
    } finally {
      release();
      await first?.stop();
      await model.close();
    }
  });
});

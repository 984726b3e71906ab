// The README's quick start, walked as a new user would: a fresh clone of the committed HEAD, the build that
// `npm install` runs, a `.env`, `npm start`, `npx pincer doctor`, a first message with `npx pincer chat`
// and over the HTTP API as the README shows with curl, then SIGTERM. The model is the scripted fake.
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { type FakeModel, isAgentTurn, startFakeModel } from './helpers/fake-model.js';
import { sandboxUnavailable } from './helpers/harness.js';
import { freePort } from './helpers/pincer-process.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** The repository to clone: this checkout (its committed HEAD), or another one to try uncommitted work. */
const REPO = process.env.PINCER_QUICKSTART_REPO ?? ROOT;
const ANSWER = 'Your folder holds CLAUDE.md and nothing else yet.';
const run = promisify(execFile);
const skip = await sandboxUnavailable();

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** Pids of the live processes in a process group (Linux /proc). */
function groupMembers(pgid: number): Array<{ pid: number; cmdline: string }> {
  const found: Array<{ pid: number; cmdline: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      // "pid (comm) state ppid pgrp …": comm may hold spaces and parentheses.
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      if (Number(fields[2]) !== pgid) continue;
      found.push({ pid: Number(name), cmdline: readFileSync(`/proc/${name}/cmdline`, 'utf8').replaceAll('\0', ' ').trim() });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

describe('the README quick start, as a new user', { skip }, () => {
  let fake: FakeModel;
  let dir: string;
  let clone: string;
  let env: NodeJS.ProcessEnv;
  let port: number;
  /** Process groups started here (npm start, npx pincer chat): none may outlive the test. */
  const groups: number[] = [];

  before(async () => {
    fake = await startFakeModel((req) => ({ text: isAgentTurn(req) ? ANSWER : 'ok' }));
    dir = mkdtempSync(join(tmpdir(), 'pincer-quickstart-'));
    // A clone lives where others may pass (a home folder usually is): as root each sandbox runs as its own user,
    // which must reach the clone's data/ (doctor's `state dir path` says so otherwise).
    chmodSync(dir, 0o755);
    clone = join(dir, 'pincer');
    const home = join(dir, 'home');
    mkdirSync(home);
    port = await freePort();
    // Only what a fresh shell has: nothing of the developer's own PINCER_* or npm settings, a home of its own.
    env = {
      PATH: process.env.PATH ?? '',
      HOME: home,
      TZ: 'Europe/Berlin',
      npm_config_update_notifier: 'false',
      npm_config_fund: 'false',
      npm_config_audit: 'false',
    };
  });

  after(async () => {
    for (const pgid of groups) {
      try {
        process.kill(-pgid, 'SIGKILL');
      } catch {
        // the group is gone already
      }
    }
    await fake.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function sh(cmd: string, args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<Outcome> {
    try {
      const { stdout, stderr } = await run(cmd, args, { cwd: clone, env: { ...env, ...extraEnv }, timeout: 40_000 });
      return { code: 0, stdout, stderr };
    } catch (err) {
      const e = err as { code?: number | string; stdout?: string; stderr?: string };
      if (typeof e.code !== 'number') throw err;
      return { code: e.code, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
    }
  }

  it('clone, install, start, doctor, a first message, stop', { timeout: 60_000 }, async (t) => {
    let last = performance.now();
    /** How long each step took, in the test's output: the whole walk must stay well under a minute. */
    const step = (name: string) => {
      t.diagnostic(`${name}: ${Math.round(performance.now() - last)} ms`);
      last = performance.now();
    };
    await run('git', ['clone', '--quiet', REPO, clone]);
    // `npm install` from the registry is too slow (and too network-bound) for a test: the checkout's own
    // node_modules stands in for it, and `npm run build` is what its `prepare` script would run.
    symlinkSync(join(ROOT, 'node_modules'), join(clone, 'node_modules'));
    step('git clone');
    const build = await sh('npm', ['run', 'build']);
    assert.equal(build.code, 0, `npm run build:\n${build.stdout}${build.stderr}`);
    step('npm run build');

    // The README: put the credential in .env next to package.json (here also the fake model and a free port).
    writeFileSync(
      join(clone, '.env'),
      `ANTHROPIC_API_KEY=sk-ant-quickstart-test-key\nANTHROPIC_BASE_URL=${fake.url}\nPINCER_PORT=${port}\n`,
    );

    // `npm start`, in its own process group so that nothing it starts can outlive the test.
    const started = spawn('npm', ['start'], { cwd: clone, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    if (started.pid) groups.push(started.pid);
    let output = '';
    started.stdout?.on('data', (c: Buffer) => {
      output += c.toString('utf8');
    });
    started.stderr?.on('data', (c: Buffer) => {
      output += c.toString('utf8');
    });
    const exited = new Promise<number | null>((resolve) => started.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + 20_000;
    while (!output.includes('pincer is running:') && Date.now() < deadline && started.exitCode === null) await sleep(50);
    assert.match(output, new RegExp(`pincer is running: http://127\\.0\\.0\\.1:${port}`), `npm start said it runs:\n${output}`);
    step('npm start');

    // The first `npx pincer` would run `prepare` (the whole build) again to link the package into npx's
    // cache: the build above already happened, so scripts are skipped for npx here.
    const npx = { npm_config_ignore_scripts: 'true' };
    const doctor = await sh('npx', ['pincer', 'doctor'], npx);
    const doctorText = `exit ${doctor.code}\n${doctor.stdout}${doctor.stderr}`;
    assert.match(doctor.stdout, /^✔ model: .* answered in \d+ ms/m, doctorText);
    assert.match(doctor.stdout, new RegExp(`^✔ port: pincer is already running there \\(127\\.0\\.0\\.1:${port}`, 'm'), doctorText);
    assert.equal(doctor.code, 0, `npx pincer doctor passes:\n${doctorText}`);
    step('npx pincer doctor');

    // `npx pincer chat`: a line in, the assistant's answer out.
    const chat = spawn('npx', ['pincer', 'chat'], { cwd: clone, env: { ...env, ...npx }, detached: true, stdio: ['pipe', 'pipe', 'pipe'] });
    let chatOut = '';
    chat.stdout.on('data', (c: Buffer) => {
      chatOut += c.toString('utf8');
    });
    chat.stderr.on('data', (c: Buffer) => {
      chatOut += c.toString('utf8');
    });
    if (chat.pid) groups.push(chat.pid);
    const chatExited = new Promise<number | null>((resolve) => chat.once('exit', (code) => resolve(code)));
    chat.stdin.write('What is in my folder?\n');
    const answerBy = Date.now() + 30_000;
    while (!chatOut.includes(ANSWER) && Date.now() < answerBy && chat.exitCode === null) await sleep(50);
    step('npx pincer chat: the answer');
    chat.stdin.end('/quit\n');
    // After /quit the chat may still hold its long poll open; it has done its part.
    const chatCode = await Promise.race([chatExited, sleep(3_000, undefined, { ref: false }).then(() => 'lingering' as const)]);
    if (chatCode === 'lingering') t.diagnostic('npx pincer chat was still running 3 s after /quit (its long poll)');
    step('npx pincer chat: /quit');
    // npx runs it under `sh -c`: the whole group goes, or the chat would outlive npx.
    if (chatCode === 'lingering' && chat.pid) process.kill(-chat.pid, 'SIGTERM');
    // Each message under its sender, time and id ("Andy  09:30  #2"), then its text.
    const lines = chatOut.split('\n');
    const answered = lines.some((line, n) => /^Andy {2}\d\d:\d\d {2}#\d+$/.test(line) && lines[n + 1] === ANSWER);
    assert.ok(answered, `the answer arrives in the terminal:\n${chatOut}\n--- pincer:\n${output}`);

    // The README's HTTP example (curl there): the token from data/token, a message, the reply by long poll.
    const token = readFileSync(join(clone, 'data', 'token'), 'utf8').trim();
    const base = `http://127.0.0.1:${port}`;
    const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
    const posted = await fetch(`${base}/api/v1/messages`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ chat: 'local:main', text: 'And now?' }),
    });
    assert.equal(posted.status, 202, `POST /api/v1/messages: ${posted.status}`);
    const { id } = (await posted.json()) as { id: string };
    let reply: { text: string } | undefined;
    let cursor = id;
    const replyBy = Date.now() + 30_000;
    while (!reply && Date.now() < replyBy) {
      const res = await fetch(`${base}/api/v1/messages?chat=local:main&after=${cursor}&wait=10`, { headers });
      const page = (await res.json()) as { messages: Array<{ text: string; fromAssistant: boolean }>; cursor: string };
      reply = page.messages.find((m) => m.fromAssistant);
      cursor = page.cursor;
    }
    assert.equal(reply?.text, ANSWER, `the HTTP API gives the answer:\n${output}`);
    step('HTTP API: the answer');

    // Stop pincer with SIGTERM (what a service manager sends it): it must exit 0, and npm start with it.
    // (Signalling npm itself would not do: npm passes it to `sh -c`, which dies without passing it on.)
    const pgid = started.pid as number;
    const pincer = groupMembers(pgid).find((p) => /dist\/cli\/main\.js start/.test(p.cmdline) && !/^sh /.test(p.cmdline));
    assert.ok(pincer, `pincer's process is in npm start's group: ${JSON.stringify(groupMembers(pgid))}`);
    process.kill(pincer.pid, 'SIGTERM');
    const code = await Promise.race([exited, sleep(15_000, undefined, { ref: false }).then(() => 'timeout' as const)]);
    assert.equal(code, 0, `pincer (and npm start) exit 0 on SIGTERM:\n${output}`);
    assert.deepEqual(groupMembers(pgid), [], 'nothing of it is left running');
    step('SIGTERM: stopped');
  });
});

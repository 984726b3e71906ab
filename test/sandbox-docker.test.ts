// The docker runtime: its command line (always), and real containers when a daemon is there.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { promisify } from 'node:util';
import { DockerRuntime } from '../src/sandbox/docker.js';
import type { SandboxSpec } from '../src/sandbox/types.js';
import { dockerUnavailable, TEST_IMAGE } from './helpers/docker.js';
import { isAgentTurn, isToolResult, lastUserText } from './helpers/fake-model.js';
import { type Harness, startHarness } from './helpers/harness.js';

const execFileAsync = promisify(execFile);
const MIB = 1024 * 1024;
const skip = await dockerUnavailable();

function newInstance(): string {
  return randomBytes(4).toString('hex');
}

function specFor(overrides: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    name: 'unit',
    user: { uid: 1500, gid: 1500 },
    mounts: [],
    forwards: [],
    env: {},
    command: '/bin/sh',
    args: [],
    cwd: '/',
    limits: { memoryBytes: 256 * MIB, pids: 64, cpuSeconds: 60, tmpBytes: 16 * MIB, fileBytes: 8 * MIB },
    ...overrides,
  };
}

/** Every value given to a flag, in order. */
function values(args: string[], flag: string): string[] {
  const found: string[] = [];
  args.forEach((a, i) => {
    if (a === flag && i + 1 < args.length) found.push(args[i + 1] as string);
  });
  return found;
}

async function docker(...args: string[]): Promise<string> {
  return (await execFileAsync('docker', args, { timeout: 30_000 })).stdout.trim();
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  /** From spawn to the first byte of output. */
  firstOutputMs: number;
}

function run(runtime: DockerRuntime, spec: SandboxSpec, input?: string): Promise<Run> {
  const started = Date.now();
  const child = runtime.spawn(spec);
  let stdout = '';
  let stderr = '';
  let firstOutputMs = -1;
  child.stdout.on('data', (d: Buffer) => {
    if (firstOutputMs < 0) firstOutputMs = Date.now() - started;
    stdout += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdin.end(input ?? '');
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr, firstOutputMs }));
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe('docker runtime command line', () => {
  const runtime = new DockerRuntime({ cli: 'docker', image: 'pincer-agent:latest', instance: 'abc123' });

  it('carries every hardening flag and the limits', () => {
    const args = runtime.buildArgs(specFor({ user: { uid: 1234, gid: 4321 } }));
    assert.equal(args[0], 'run');
    for (const flag of ['--rm', '-i', '--read-only']) assert.ok(args.includes(flag), flag);
    for (const flag of ['-t', '--tty', '--privileged', '-d', '--init']) assert.ok(!args.includes(flag), `no ${flag}`);
    assert.deepEqual(values(args, '--network'), ['none']);
    assert.deepEqual(values(args, '--user'), ['1234:4321']);
    assert.deepEqual(values(args, '--cap-drop'), ['ALL']);
    assert.deepEqual(values(args, '--security-opt'), ['no-new-privileges']);
    assert.deepEqual(values(args, '--pull'), ['never'], 'a missing image is never fetched from a registry');
    assert.deepEqual(values(args, '--tmpfs'), [`/tmp:rw,nosuid,nodev,size=${16 * MIB},mode=1777`]);
    assert.deepEqual(values(args, '--memory'), [String(256 * MIB)]);
    assert.deepEqual(values(args, '--memory-swap'), [String(256 * MIB)], 'no swap beyond the memory limit');
    assert.deepEqual(values(args, '--pids-limit'), ['64']);
    assert.deepEqual(values(args, '--ulimit'), ['cpu=60', `fsize=${8 * MIB}`]);
  });

  it('names and labels the container after the instance', () => {
    const args = runtime.buildArgs(specFor({ name: 'g-main-7' }));
    assert.deepEqual(values(args, '--name'), ['pincer-abc123-g-main-7']);
    assert.deepEqual(values(args, '--label'), ['pincer.instance=abc123']);
    assert.equal(runtime.containerName('g-main-7'), 'pincer-abc123-g-main-7');
  });

  it('mounts what the spec says, read-only unless writable, plus the forward folders read-only', () => {
    const args = runtime.buildArgs(
      specFor({
        mounts: [
          { hostPath: '/srv/groups/main', sandboxPath: '/workspace/group', writable: true },
          { hostPath: '/srv/groups/global', sandboxPath: '/workspace/global', writable: false },
          { hostPath: '/opt/sdk/claude', sandboxPath: '/opt/claude/claude', writable: false },
        ],
        forwards: [{ port: 3129, hostSocket: '/srv/run/s1/model.sock' }],
      }),
    );
    assert.deepEqual(values(args, '--mount'), [
      'type=bind,src=/srv/run/s1,dst=/run/pincer/0,readonly',
      'type=bind,src=/srv/groups/main,dst=/workspace/group',
      'type=bind,src=/srv/groups/global,dst=/workspace/global,readonly',
      'type=bind,src=/opt/sdk/claude,dst=/opt/claude/claude,readonly',
    ]);
    assert.ok(!args.includes('-v') && !args.includes('--volume'), 'binds only through --mount, which fails on a missing source');
  });

  it('quotes a mount path with a comma the way docker parses --mount (CSV)', () => {
    const args = runtime.buildArgs(specFor({ mounts: [{ hostPath: '/srv/a,b', sandboxPath: '/x', writable: false }] }));
    assert.deepEqual(values(args, '--mount'), ['type=bind,"src=/srv/a,b",dst=/x,readonly']);
  });

  it('passes env, workdir, and runs the command through the bridge script', () => {
    const spec = specFor({
      env: { HOME: '/home/agent', ANTHROPIC_BASE_URL: 'http://127.0.0.1:3129' },
      forwards: [{ port: 3129, hostSocket: '/srv/run/s1/model.sock' }],
      command: '/opt/claude/claude',
      args: ['--output-format', 'stream-json'],
      cwd: '/workspace/group',
    });
    const args = runtime.buildArgs(spec);
    assert.deepEqual(values(args, '-e'), ['HOME=/home/agent', 'ANTHROPIC_BASE_URL=http://127.0.0.1:3129']);
    assert.deepEqual(values(args, '--workdir'), ['/workspace/group']);
    assert.deepEqual(values(args, '--entrypoint'), ['/bin/sh']);
    const image = args.indexOf('pincer-agent:latest');
    assert.ok(image > 0);
    const tail = args.slice(image + 1);
    assert.equal(tail[0], '-c');
    assert.match(tail[1] as string, /socat TCP-LISTEN:3129,bind=127\.0\.0\.1,fork,reuseaddr UNIX-CONNECT:\/run\/pincer\/0\/model\.sock/);
    assert.deepEqual(tail.slice(2), ['pincer-sandbox', '/opt/claude/claude', '--output-format', 'stream-json']);
  });

  it('refuses names that are not [a-z0-9-] and instances that are not hex', () => {
    assert.throws(() => runtime.buildArgs(specFor({ name: 'Bad Name' })), /sandbox name/);
    assert.throws(() => new DockerRuntime({ cli: 'docker', image: 'x', instance: 'not-hex!' }), /instance/);
  });

  it('is called podman with the podman CLI, with the same flags', () => {
    const podman = new DockerRuntime({ cli: 'podman', image: 'pincer-agent:latest', instance: 'abc123' });
    assert.equal(podman.name, 'podman');
    assert.deepEqual(podman.buildArgs(specFor()), runtime.buildArgs(specFor()));
  });

  it('reports the mechanism behind each limit', () => {
    const report = runtime.limits();
    assert.match(report.memoryBytes, /--memory/);
    assert.match(report.pids, /--pids-limit/);
    assert.match(report.cpuSeconds, /--ulimit cpu/);
    assert.match(report.fileBytes, /--ulimit fsize/);
    assert.match(report.tmpBytes, /tmpfs/);
  });

  it('a missing CLI gives a reason with the fix', async () => {
    const saved = process.env.PATH;
    process.env.PATH = mkdtempSync(join(tmpdir(), 'pincer-empty-path-'));
    try {
      const probe = await new DockerRuntime({ cli: 'podman', image: 'x', instance: 'abc' }).probe();
      assert.equal(probe.ok, false);
      assert.match(probe.reason ?? '', /podman is not installed: install Podman/);
    } finally {
      rmSync(process.env.PATH, { recursive: true, force: true });
      process.env.PATH = saved;
    }
  });
});

describe('docker runtime with a real daemon', { skip }, () => {
  const instance = newInstance();
  const runtime = new DockerRuntime({ cli: 'docker', image: TEST_IMAGE, instance });
  let dir: string;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-docker-test-'));
    chmodSync(dir, 0o755);
    const probe = await runtime.probe();
    assert.deepEqual(probe, { ok: true });
  });
  after(async () => {
    await runtime.cleanOrphans();
    rmSync(dir, { recursive: true, force: true });
  });

  it('probe names the missing image and how to build it', async () => {
    const probe = await new DockerRuntime({ cli: 'docker', image: 'pincer-no-such-image:0', instance }).probe();
    assert.equal(probe.ok, false);
    assert.match(
      probe.reason ?? '',
      /image pincer-no-such-image:0 not found: build it with `docker build -t pincer-no-such-image:0 \S*container\/?`/,
    );
  });

  it('runs as the spec user with no capabilities, a read-only root, a private writable /tmp and the limits', async (t) => {
    const script = [
      'id -u',
      'id -g',
      'grep CapEff /proc/self/status',
      'grep NoNewPrivs /proc/self/status',
      'touch /x 2>/dev/null && echo root-writable || echo ro-root',
      'echo ok > /tmp/t && cat /tmp/t',
      'stat -c %a /tmp',
      'ulimit -t',
      'ulimit -f',
      'echo hi > /workspace/ro/y 2>/dev/null && echo ro-mount-writable || echo ro-mount',
      'echo rw > /workspace/rw/z && echo rw-mount',
    ].join('; ');
    mkdirSync(join(dir, 'ro'));
    mkdirSync(join(dir, 'rw'));
    const spec = specFor({
      name: 'hardening',
      mounts: [
        { hostPath: join(dir, 'ro'), sandboxPath: '/workspace/ro', writable: false },
        { hostPath: join(dir, 'rw'), sandboxPath: '/workspace/rw', writable: true },
      ],
      args: ['-c', script],
    });
    const r = await run(runtime, spec);
    t.diagnostic(`container start to first output: ${r.firstOutputMs} ms`);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], '1500');
    assert.equal(lines[1], '1500');
    assert.match(lines[2] ?? '', /^CapEff:\s+0+$/);
    assert.match(lines[3] ?? '', /^NoNewPrivs:\s+1$/);
    assert.equal(lines[4], 'ro-root');
    assert.equal(lines[5], 'ok');
    assert.equal(lines[6], '1777');
    assert.equal(lines[7], '60');
    assert.equal(lines[8], String((8 * MIB) / 512), 'ulimit -f counts 512-byte blocks');
    assert.equal(lines[9], 'ro-mount');
    assert.equal(lines[10], 'rw-mount');
    if (process.getuid?.() === 0) assert.equal(statSync(join(dir, 'rw', 'z')).uid, 1500, 'written as the sandbox user');
  });

  it('passes stdin through and applies the memory and pids limits to the container', async () => {
    const spec = specFor({
      name: 'stdin',
      args: ['-c', 'cat; cat /sys/fs/cgroup/pids.max 2>/dev/null || cat /sys/fs/cgroup/pids/pids.max'],
    });
    const r = await run(runtime, spec, 'from-stdin\n');
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['from-stdin', '64']);
    const memory = await run(
      runtime,
      specFor({
        name: 'memory',
        args: ['-c', 'cat /sys/fs/cgroup/memory.max 2>/dev/null || cat /sys/fs/cgroup/memory/memory.limit_in_bytes'],
      }),
    );
    assert.equal(memory.stdout.trim(), String(256 * MIB));
  });

  it('bridges a forward to a host Unix socket and nothing else reaches out', async () => {
    const sockDir = join(dir, 'sock');
    mkdirSync(sockDir, { mode: 0o755 });
    chmodSync(sockDir, 0o755);
    const socket = join(sockDir, 'model.sock');
    const unixServer = createServer((_req, res) => res.end('hello-through-the-bridge'));
    await new Promise<void>((r) => unixServer.listen(socket, r));
    const tcpServer: Server = createServer((_req, res) => res.end('host-tcp-reached'));
    await new Promise<void>((r) => tcpServer.listen(0, '0.0.0.0', r));
    try {
      const port = (tcpServer.address() as AddressInfo).port;
      const hostIp =
        Object.values(networkInterfaces())
          .flat()
          .find((i) => i && i.family === 'IPv4' && !i.internal)?.address ?? '10.255.255.1';
      // The host can reach its own TCP server at that address: only the sandbox cannot.
      assert.equal(await (await fetch(`http://${hostIp}:${port}/`)).text(), 'host-tcp-reached');
      const script = [
        'curl -s http://127.0.0.1:3129/; echo',
        `curl -s -m 3 http://${hostIp}:${port}/ || echo host-unreachable`,
        'curl -s -m 3 https://deb.debian.org/ || echo internet-unreachable',
        'ls /sys/class/net | tr "\\n" " "',
      ].join('; ');
      const r = await run(runtime, specFor({ name: 'forward', forwards: [{ port: 3129, hostSocket: socket }], args: ['-c', script] }));
      assert.equal(r.code, 0, r.stderr);
      const lines = r.stdout.trim().split('\n');
      assert.equal(lines[0], 'hello-through-the-bridge');
      assert.equal(lines[1], 'host-unreachable');
      assert.equal(lines[2], 'internet-unreachable');
      assert.equal(lines[3]?.trim(), 'lo', 'the only interface is loopback');
    } finally {
      unixServer.close();
      tcpServer.close();
    }
  });

  it('killing the returned process removes the container', async () => {
    const spec = specFor({ name: 'killed', args: ['-c', 'echo started; exec sleep 120'] });
    const name = runtime.containerName(spec.name);
    const child = runtime.spawn(spec);
    child.stdin.end();
    await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()));
    assert.equal(await docker('inspect', '-f', '{{.State.Running}}', name), 'true');
    const exited = new Promise((r) => child.once('exit', r));
    child.kill('SIGKILL');
    await exited;
    await waitFor('the container to be removed', async () => (await docker('ps', '-aq', '--filter', `name=${name}`)) === '');
  });

  it('cleanOrphans removes the containers of its instance only', async () => {
    const other = newInstance();
    const mine = runtime.containerName('orphan');
    const theirs = `pincer-${other}-orphan`;
    for (const [name, inst] of [
      [mine, instance],
      [theirs, other],
    ] as const) {
      await docker(
        'run',
        '-d',
        '--network',
        'none',
        '--label',
        `pincer.instance=${inst}`,
        '--name',
        name,
        '--entrypoint',
        'sleep',
        TEST_IMAGE,
        '120',
      );
    }
    try {
      await runtime.cleanOrphans();
      assert.equal(await docker('ps', '-aq', '--filter', `label=pincer.instance=${instance}`), '');
      assert.notEqual(await docker('ps', '-aq', '--filter', `label=pincer.instance=${other}`), '', "another pincer's container stays");
    } finally {
      await new DockerRuntime({ cli: 'docker', image: TEST_IMAGE, instance: other }).cleanOrphans();
    }
  });
});

describe('a message reaches an agent in a docker container and its reply comes back', { skip }, () => {
  let h: Harness;
  const labelled = async (): Promise<string[]> =>
    (await docker('ps', '-aq', '--filter', 'label=pincer.instance')).split(/\s+/).filter(Boolean);
  let before_: string[];

  before(async () => {
    before_ = await labelled();
    h = await startHarness({
      env: { PINCER_RUNTIME: 'docker', PINCER_CONTAINER_IMAGE: TEST_IMAGE },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        const text = lastUserText(req);
        if (isToolResult(req)) return { text: `Tool said: ${text.slice(0, 3000)}` };
        if (text.includes('write the proof')) {
          const command = [
            'echo made-in-container > proof.txt',
            'id -u',
            'test -e /.dockerenv && echo IN-DOCKER',
            `cat ${join(process.cwd(), 'package.json')} 2>/dev/null || echo OUTSIDE-UNREADABLE`,
            'env | grep -E "API_KEY|TOKEN" || true',
          ].join('; ');
          return { toolUse: { name: 'Bash', input: { command, description: 'prove the container' } } };
        }
        return { text: `echo: ${text.slice(-60)}` };
      },
    });
  });
  after(async () => h?.stop());

  it('the agent runs Bash in its container, as an unprivileged user, and never sees the real key', async (t) => {
    const choice = h.pincer.runtime;
    assert.ok(choice.ok && choice.runtime.name === 'docker', 'PINCER_RUNTIME=docker selects the docker runtime');
    const started = Date.now();
    const id = await h.send('local:main', 'please write the proof');
    const reply = await h.reply('local:main', id, 120_000);
    t.diagnostic(`message to reply through a container: ${Date.now() - started} ms`);
    assert.match(reply.text, /Tool said:/);
    assert.match(reply.text, /IN-DOCKER/);
    assert.match(reply.text, /OUTSIDE-UNREADABLE/);
    assert.match(reply.text, /ANTHROPIC_API_KEY=placeholder/);
    assert.doesNotMatch(reply.text, /REAL-KEY/);
    const uid = /Tool said: (\d+)\n/.exec(reply.text)?.[1];
    assert.ok(uid && uid !== '0', `the agent is not root: ${reply.text}`);
    assert.equal(readFileSync(join(h.home, 'groups', 'main', 'proof.txt'), 'utf8'), 'made-in-container\n');
  });

  it('stopping pincer leaves no container behind', async () => {
    await h.stop();
    h = { stop: async () => {} } as unknown as Harness;
    await waitFor('containers to be removed', async () => (await labelled()).every((c) => before_.includes(c)), 20_000);
  });
});

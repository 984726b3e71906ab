// The Apple Container runtime's command line. It needs macOS on Apple silicon, so only the argv is tested here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { AppleContainerRuntime } from '../src/sandbox/apple-container.js';
import type { SandboxSpec } from '../src/sandbox/types.js';

const MIB = 1024 * 1024;

function specFor(overrides: Partial<SandboxSpec> = {}): SandboxSpec {
  return {
    name: 'g-main-1',
    user: { uid: 501, gid: 20 },
    mounts: [],
    forwards: [],
    env: {},
    command: '/bin/sh',
    args: [],
    cwd: '/',
    limits: { memoryBytes: 2048 * MIB, pids: 512, cpuSeconds: 3600, tmpBytes: 512 * MIB, fileBytes: 1024 * MIB },
    ...overrides,
  };
}

function values(args: string[], flag: string): string[] {
  const found: string[] = [];
  args.forEach((a, i) => {
    if (a === flag && i + 1 < args.length) found.push(args[i + 1] as string);
  });
  return found;
}

describe('apple container command line', () => {
  const runtime = new AppleContainerRuntime({ image: 'pincer-agent:latest', instance: 'beef01' });

  it('isolates as far as the container CLI allows', () => {
    const args = runtime.buildArgs(specFor());
    assert.equal(args[0], 'run');
    for (const flag of ['--rm', '-i', '--read-only']) assert.ok(args.includes(flag), flag);
    assert.ok(!args.includes('--init'), 'no --init: PID 1 must hold none of the host stream');
    for (const flag of ['-t', '--tty', '-d', '--ssh', '--virtualization', '-p', '--publish']) assert.ok(!args.includes(flag), `no ${flag}`);
    assert.deepEqual(values(args, '--network'), ['none']);
    assert.deepEqual(values(args, '--user'), ['501:20']);
    assert.deepEqual(values(args, '--cap-drop'), ['ALL']);
    assert.deepEqual(values(args, '--name'), ['pincer-beef01-g-main-1']);
    assert.deepEqual(values(args, '--label'), ['pincer.instance=beef01']);
  });

  it('maps the limits to VM memory, a sized tmpfs and rlimits', () => {
    const args = runtime.buildArgs(specFor());
    assert.deepEqual(values(args, '--memory'), ['2048M']);
    assert.deepEqual(values(args, '--mount'), ['type=tmpfs,target=/tmp,size=512M,mode=1777']);
    assert.deepEqual(values(args, '--ulimit'), ['nproc=512', 'cpu=3600', `fsize=${1024 * MIB}`]);
    const report = runtime.limits();
    assert.match(report.memoryBytes, /VM memory/);
    assert.match(report.pids, /nproc/);
  });

  it('binds with -v, read-only unless writable, and mounts each forward socket per file where the bridge looks', () => {
    const args = runtime.buildArgs(
      specFor({
        mounts: [
          { hostPath: '/Users/me/.pincer/groups/main', sandboxPath: '/workspace/group', writable: true },
          { hostPath: '/Users/me/.pincer/groups/global', sandboxPath: '/workspace/global', writable: false },
          { hostPath: '/Users/me/sdk/claude', sandboxPath: '/opt/claude/claude', writable: false },
        ],
        forwards: [{ port: 3129, hostSocket: '/Users/me/.pincer/run/s1/model.sock' }],
      }),
    );
    assert.deepEqual(values(args, '-v'), [
      '/Users/me/.pincer/run/s1/model.sock:/run/pincer/0/model.sock',
      '/Users/me/.pincer/groups/main:/workspace/group',
      '/Users/me/.pincer/groups/global:/workspace/global:ro',
      '/Users/me/sdk/claude:/opt/claude/claude:ro',
    ]);
    const script = args[args.indexOf('pincer-agent:latest') + 2] as string;
    assert.match(script, /UNIX-CONNECT:\/run\/pincer\/0\/model\.sock/);
  });

  it('refuses paths the -v syntax cannot express', () => {
    for (const hostPath of ['/Users/me/a:b', '/Users/me/a,b']) {
      assert.throws(() => runtime.buildArgs(specFor({ mounts: [{ hostPath, sandboxPath: '/x', writable: false }] })), /cannot mount/);
    }
  });

  it('passes env and workdir, and runs the command through the bridge script', () => {
    const args = runtime.buildArgs(
      specFor({ env: { HOME: '/home/agent' }, command: '/opt/claude/claude', args: ['--verbose'], cwd: '/workspace/group' }),
    );
    assert.deepEqual(values(args, '-e'), ['HOME=/home/agent']);
    assert.deepEqual(values(args, '--workdir'), ['/workspace/group']);
    assert.deepEqual(values(args, '--entrypoint'), ['/bin/sh']);
    const tail = args.slice(args.indexOf('pincer-agent:latest') + 1);
    assert.equal(tail[0], '-c');
    assert.deepEqual(tail.slice(2), ['pincer-sandbox', '/opt/claude/claude', '--verbose']);
  });

  it('says why it cannot run off macOS', { skip: process.platform === 'darwin' ? 'on macOS' : undefined }, async () => {
    const probe = await runtime.probe();
    assert.equal(probe.ok, false);
    assert.match(probe.reason ?? '', /macOS only/);
  });
});

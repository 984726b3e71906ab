import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import {
  createSandboxCgroup,
  destroySandboxCgroup,
  detectCgroups,
  leftoverCgroups,
  ownCgroupMemoryUsage,
  prepareCgroups,
} from '../src/sandbox/cgroup.js';

const mountLine = (id: number, point: string, type: string, opts: string) =>
  `${id} 20 0:${id} / ${point} rw,nosuid,nodev,noexec,relatime shared:${id} - ${type} ${type} ${opts}`;

/** A fake cgroupfs in a temp dir: kernel files are plain files here, which is all the code writes. */
function fakeRoot(): string {
  return mkdtempSync(join(tmpdir(), 'pincer-cgroup-'));
}

describe('cgroups', () => {
  it('finds the v1 memory and pids hierarchies under our own cgroup', () => {
    const root = fakeRoot();
    const mountinfo = [
      mountLine(30, join(root, 'memory'), 'cgroup', 'rw,memory'),
      mountLine(31, join(root, 'pids'), 'cgroup', 'rw,pids'),
      mountLine(32, join(root, 'unified'), 'cgroup2', 'rw'),
    ].join('\n');
    const support = detectCgroups({ mountinfo, procCgroup: '8:pids:/\n4:memory:/svc/abc\n0::/\n', subtree: 'pincer-x' });
    assert.deepEqual(support, {
      kind: 'v1',
      parents: { memory: join(root, 'memory/svc/abc/pincer-x'), pids: join(root, 'pids/pincer-x') },
    });
  });

  it("reads our own cgroup's memory use from v1 or v2, and nothing when it cannot", () => {
    const root = fakeRoot();
    mkdirSync(join(root, 'memory', 'svc'), { recursive: true });
    writeFileSync(join(root, 'memory', 'svc', 'memory.usage_in_bytes'), '52428800\n');
    const v1 = mountLine(30, join(root, 'memory'), 'cgroup', 'rw,memory');
    assert.equal(ownCgroupMemoryUsage({ mountinfo: v1, procCgroup: '4:memory:/svc\n' }), 52_428_800, 'v1 memory.usage_in_bytes');
    mkdirSync(join(root, 'unified', 'pincer.service'), { recursive: true });
    writeFileSync(join(root, 'unified', 'pincer.service', 'memory.current'), '1048576\n');
    const v2 = mountLine(31, join(root, 'unified'), 'cgroup2', 'rw');
    assert.equal(ownCgroupMemoryUsage({ mountinfo: v2, procCgroup: '0::/pincer.service\n' }), 1_048_576, 'v2 memory.current');
    assert.equal(ownCgroupMemoryUsage({ mountinfo: v2, procCgroup: '0::/elsewhere\n' }), undefined, 'an unreadable file gives nothing');
    assert.equal(ownCgroupMemoryUsage({ mountinfo: '', procCgroup: '' }), undefined, 'no cgroupfs gives nothing');
  });

  it('uses v2 only when the memory and pids controllers are available', () => {
    const root = fakeRoot();
    const mountinfo = mountLine(30, root, 'cgroup2', 'rw,nsdelegate');
    writeFileSync(join(root, 'cgroup.controllers'), 'cpu io\n');
    assert.ok('reason' in detectCgroups({ mountinfo, procCgroup: '0::/pincer.service\n', subtree: 'pincer-x' }));
    writeFileSync(join(root, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
    const support = detectCgroups({ mountinfo, procCgroup: '0::/pincer.service\n', subtree: 'pincer-x' });
    assert.deepEqual(support, { kind: 'v2', parents: { unified: join(root, 'pincer.service/pincer-x') } });
  });

  it('writes v2 limits, enables the controllers for the subtree, and removes the sandbox cgroup', () => {
    const root = fakeRoot();
    const parent = join(root, 'svc', 'pincer-x');
    mkdirSync(parent, { recursive: true });
    writeFileSync(join(parent, 'cgroup.controllers'), 'memory pids');
    const support = { kind: 'v2' as const, parents: { unified: parent } };
    assert.deepEqual(prepareCgroups(support), { ok: true });
    assert.equal(readFileSync(join(parent, 'cgroup.subtree_control'), 'utf8'), '+memory +pids');
    const cg = createSandboxCgroup(support, 'alpha-1', { memoryBytes: 256 * 1024 * 1024, pids: 64 });
    const dir = join(parent, 'alpha-1');
    assert.equal(readFileSync(join(dir, 'memory.max'), 'utf8'), String(256 * 1024 * 1024));
    assert.equal(readFileSync(join(dir, 'pids.max'), 'utf8'), '64');
    assert.deepEqual(cg.procsFiles, [join(dir, 'cgroup.procs')]);
    // In a fake cgroupfs the limit files are ordinary files, so the directory is not empty: rmdir fails.
    assert.equal(destroySandboxCgroup(cg), false);
  });

  it('writes v1 limits per hierarchy and finds leftovers of a crashed pincer', () => {
    const root = fakeRoot();
    const support = { kind: 'v1' as const, parents: { memory: join(root, 'memory', 'pincer-x'), pids: join(root, 'pids', 'pincer-x') } };
    assert.deepEqual(prepareCgroups(support), { ok: true });
    const cg = createSandboxCgroup(support, 'beta-2', { memoryBytes: 1000, pids: 10 });
    assert.deepEqual(cg.dirs, [join(root, 'memory', 'pincer-x', 'beta-2'), join(root, 'pids', 'pincer-x', 'beta-2')]);
    const left = leftoverCgroups(support);
    assert.equal(left.length, 1);
    assert.deepEqual(left[0]?.dirs, cg.dirs);
    assert.equal(readFileSync(join(cg.dirs[0] as string, 'memory.limit_in_bytes'), 'utf8'), '1000');
    assert.equal(readFileSync(join(cg.dirs[1] as string, 'pids.max'), 'utf8'), '10');
    // Real cgroup directories vanish with rmdir; in a fake one the limit files keep it: reported, not thrown.
    assert.equal(destroySandboxCgroup(cg), false);
    assert.ok(existsSync(cg.dirs[0] as string));
  });

  it('says why when cgroupfs cannot be written', () => {
    const file = join(fakeRoot(), 'not-a-dir');
    writeFileSync(file, '');
    const support = { kind: 'v1' as const, parents: { memory: join(file, 'pincer-x') } };
    const result = prepareCgroups(support);
    assert.equal(result.ok, false);
  });
});

// Handing a group's folder to its sandbox user when the folder holds what an agent planted there: a tree
// 10,000 levels deep and 10,000 entries wide, links to host files, a link swapped in during the walk, another
// file system mounted inside. Runs as root (only root can give files away); reports itself skipped otherwise.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import {
  closeSync,
  constants,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  renameSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { grantAccess, handOverFolders } from '../src/sandbox/access.js';
import { chownTree, DEFAULT_CHOWN_LIMITS } from '../src/sandbox/chown-tree.js';
import type { SandboxSpec } from '../src/sandbox/types.js';

const NOT_ROOT = process.getuid?.() === 0 ? false : 'only root can hand files to another uid';
const SANDBOX = { uid: 1_234_567, gid: 1_234_567 };
const DEEP = 10_000;
const WIDE = 10_000;

function spec(groupDir: string): SandboxSpec {
  return {
    name: 'access-test',
    user: SANDBOX,
    mounts: [{ hostPath: groupDir, sandboxPath: '/workspace/group', writable: true }],
    forwards: [],
    env: {},
    command: '/bin/true',
    args: [],
    cwd: '/workspace/group',
    limits: { memoryBytes: 1 << 30, pids: 64, cpuSeconds: 60, tmpBytes: 1 << 20, fileBytes: 1 << 20 },
  };
}

/** A chain of `levels` folders named `d` under `top`, made through descriptors (its paths outgrow PATH_MAX). */
function deepChain(top: string, levels: number, plantAt: number, plant: (dirFd: string) => void): void {
  let fd = openSync(top, constants.O_RDONLY | constants.O_DIRECTORY);
  for (let i = 1; i <= levels; i++) {
    mkdirSync(`/proc/self/fd/${fd}/d`);
    const next = openSync(`/proc/self/fd/${fd}/d`, constants.O_RDONLY | constants.O_DIRECTORY);
    closeSync(fd);
    fd = next;
    if (i === plantAt) plant(`/proc/self/fd/${fd}`);
  }
  closeSync(fd);
}

/** The owner of the entry `levels` folders down the chain (read through descriptors, like the chain was made). */
function ownerAtDepth(top: string, levels: number): number {
  let fd = openSync(top, constants.O_RDONLY | constants.O_DIRECTORY);
  for (let i = 0; i < levels; i++) {
    const next = openSync(`/proc/self/fd/${fd}/d`, constants.O_RDONLY | constants.O_DIRECTORY);
    closeSync(fd);
    fd = next;
  }
  const owner = statSync(`/proc/self/fd/${fd}`).uid;
  closeSync(fd);
  return owner;
}

/** Removes a chain made by deepChain, top down, lifting each level into the place of the one removed. */
function removeChain(top: string): void {
  const link = join(top, 'd');
  const lifted = join(top, 'lifted');
  while (existsSync(link)) {
    for (const name of readdirSync(link)) if (name !== 'd') rmSync(join(link, name), { recursive: true });
    const below = existsSync(join(link, 'd'));
    if (below) renameSync(join(link, 'd'), lifted);
    rmdirSync(link);
    if (below) renameSync(lifted, link);
  }
}

describe('handing a planted group folder to the sandbox user', { skip: NOT_ROOT }, () => {
  let dir = '';
  let hostFile = '';
  let hostDir = '';
  let planted = '';

  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'pincer-access-'));
    hostDir = join(dir, 'host');
    mkdirSync(hostDir);
    hostFile = join(hostDir, 'secret');
    writeFileSync(hostFile, 'the host owner only');
    // What an agent planted in its folder while it ran as the group's former uid.
    planted = join(dir, 'group-planted');
    mkdirSync(planted);
    writeFileSync(join(planted, 'CLAUDE.md'), 'memory');
    symlinkSync(hostFile, join(planted, 'link-to-host-file'));
    symlinkSync(hostDir, join(planted, 'link-to-host-dir'));
    mkdirSync(join(planted, 'wide'));
    for (let i = 0; i < WIDE; i++) writeFileSync(join(planted, 'wide', `f${i}`), '');
    deepChain(planted, DEEP, 50, (at) => symlinkSync(hostFile, `${at}/deep-link`));
  });
  after(() => {
    removeChain(planted);
    rmSync(dir, { recursive: true, force: true });
  });

  it(`a tree ${DEEP.toLocaleString('en-US')} deep and ${WIDE.toLocaleString('en-US')} wide with links to host files: handed over within bounds, nothing of the host touched, the rest logged`, () => {
    const warnings: Array<{ obj: unknown; msg: string }> = [];
    grantAccess(spec(planted), { warn: (obj: unknown, msg?: string) => warnings.push({ obj, msg: msg ?? '' }) });

    assert.equal(statSync(hostFile).uid, 0, "the host file's owner is unchanged");
    assert.equal(statSync(hostDir).uid, 0, "the host folder's owner is unchanged");
    assert.equal(lstatSync(join(planted, 'link-to-host-file')).uid, SANDBOX.uid, 'the link itself is handed over');
    assert.equal(statSync(planted).uid, SANDBOX.uid);
    assert.equal(statSync(join(planted, 'CLAUDE.md')).uid, SANDBOX.uid);
    assert.equal(statSync(join(planted, 'wide', `f${WIDE - 1}`)).uid, SANDBOX.uid, 'every file of the wide folder');
    assert.equal(ownerAtDepth(planted, DEFAULT_CHOWN_LIMITS.maxDepth), SANDBOX.uid, 'down to the depth bound');
    assert.equal(ownerAtDepth(planted, DEFAULT_CHOWN_LIMITS.maxDepth + 1), 0, 'not below it');
    assert.equal(warnings.length, 1, 'what was left is logged');
    assert.match(warnings[0]?.msg ?? '', /chown -R -P 1234567:1234567 /);
    assert.match(JSON.stringify(warnings[0]?.obj), /deeper than 128 levels/);
  });

  it('ahead of the start, in slices: the same bounds, and the event loop keeps turning meanwhile', async () => {
    const next = { uid: SANDBOX.uid + 1, gid: SANDBOX.gid + 1 };
    let ticks = 0;
    const ticker = setInterval(() => {
      ticks += 1;
    }, 1);
    const warnings: string[] = [];
    try {
      await handOverFolders([planted], next, { warn: (_obj: unknown, msg?: string) => warnings.push(msg ?? '') });
    } finally {
      clearInterval(ticker);
    }
    assert.ok(ticks > 0, 'timers ran while the folder was handed over');
    assert.equal(statSync(hostFile).uid, 0, "the host file's owner is unchanged");
    assert.equal(statSync(join(planted, 'wide', `f${WIDE - 1}`)).uid, next.uid);
    assert.equal(ownerAtDepth(planted, DEFAULT_CHOWN_LIMITS.maxDepth), next.uid);
    assert.equal(warnings.length, 1);
    // The spawn path then has nothing left to do.
    const spawnWarnings: string[] = [];
    grantAccess({ ...spec(planted), user: next }, { warn: (_obj: unknown, msg?: string) => spawnWarnings.push(msg ?? '') });
    assert.deepEqual(spawnWarnings, []);
  });

  it('a folder swapped for a link to a host folder between listing and opening is not followed', () => {
    const group = join(dir, 'group-swapped');
    mkdirSync(join(group, 'a', 'b'), { recursive: true });
    writeFileSync(join(group, 'a', 'b', 'inner'), '');
    const result = chownTree(group, SANDBOX.uid, SANDBOX.gid, DEFAULT_CHOWN_LIMITS, (listed) => {
      if (listed !== join(group, 'a')) return;
      renameSync(join(group, 'a', 'b'), join(group, 'b-moved'));
      symlinkSync(hostDir, join(group, 'a', 'b'));
    });
    assert.equal(statSync(hostDir).uid, 0, 'the host folder the link points to');
    assert.equal(statSync(hostFile).uid, 0, 'the host file in it');
    assert.equal(lstatSync(join(group, 'a', 'b')).uid, SANDBOX.uid, 'the link itself');
    assert.deepEqual(result.leftOut, []);
  });

  it('does not descend into another file system mounted in the folder', (t) => {
    const group = join(dir, 'group-mount');
    const mnt = join(group, 'mnt');
    mkdirSync(mnt, { recursive: true });
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'pincer-test', mnt], { stdio: 'ignore' });
    } catch {
      t.skip('cannot mount a tmpfs here');
      return;
    }
    try {
      writeFileSync(join(mnt, 'other'), '');
      const result = chownTree(group, SANDBOX.uid, SANDBOX.gid);
      assert.equal(statSync(mnt).uid, 0, 'the mount point is left as it is');
      assert.equal(statSync(join(mnt, 'other')).uid, 0, 'and what it holds');
      assert.equal(statSync(group).uid, SANDBOX.uid);
      assert.deepEqual(result.leftOut, ['1 entr(ies) on another file system']);
    } finally {
      execFileSync('umount', [mnt]);
    }
  });

  it('stops at the entry bound and says so', () => {
    const group = join(dir, 'group-many');
    mkdirSync(group);
    for (let i = 0; i < 50; i++) writeFileSync(join(group, `f${i}`), '');
    const result = chownTree(group, SANDBOX.uid, SANDBOX.gid, { ...DEFAULT_CHOWN_LIMITS, maxEntries: 20 });
    assert.ok(result.visited <= 21, `visited ${result.visited}`);
    assert.deepEqual(result.leftOut, ['entries beyond the first 20']);
  });
});

// Saving a group's memory file as the owner does (Control, then the HTTP API): the version read guards against
// overwriting what the agent wrote meanwhile, the next search sees the new text, and a folder the sandbox has
// planted links in is never written through: a link at CLAUDE.md or as memory/ is replaced or refused, a host
// file it points to stays as it was. Names outside CLAUDE.md and memory/*.md, archives and oversized texts are
// refused with nothing changed.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chownSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MEMORY_FILE_BYTES } from '../src/memory/file-index.js';
import type { Control } from '../src/service/control.js';
import { registerGroup } from '../src/service/groups.js';
import { prepareState, type StateLayout } from '../src/service/layout.js';
import { Store } from '../src/store/index.js';
import { standaloneControl } from './helpers/control.js';
import { HARNESS_TOKEN, type Harness, startHarness } from './helpers/harness.js';

const OWNER = { kind: 'owner' } as const;
const SANDBOX_UID = 1_000_042;

describe('saving a memory file', () => {
  let home: string;
  let layout: StateLayout;
  let store: Store;
  let control: Control;
  let outside: string;
  let dir: string;
  const HOST_TEXT = 'the host file: must never change\n';

  const conflict = (err: Error & { code?: string }) => err.code === 'conflict';
  const invalid = (err: Error & { code?: string }) => err.code === 'invalid';

  before(() => {
    home = mkdtempSync(join(tmpdir(), 'pincer-memedit-'));
    layout = prepareState(home);
    store = new Store(layout.db);
    control = standaloneControl(layout, store);
    registerGroup(store, layout, { chatId: 'local:main', folder: 'main', trigger: '@Andy', respondToAll: true, isMain: true }, Date.now());
    registerGroup(store, layout, { chatId: 'local:team', folder: 'team', trigger: '@Andy', respondToAll: true, isMain: false }, Date.now());
    dir = join(layout.groupsDir, 'team');
    outside = mkdtempSync(join(tmpdir(), 'pincer-memedit-host-'));
    writeFileSync(join(outside, 'secret.md'), HOST_TEXT);
  });
  after(() => {
    store?.close();
    rmSync(home, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  });

  test('a save with the version read replaces the file; the next search finds the new text', async () => {
    const read = await control.memory.readFile(OWNER, 'team', 'CLAUDE.md');
    assert.match(read.text, /^# Memory of this chat \(team\)/);
    const saved = await control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', '# Team\n\nThe standup is at 9:30.\n', read.version);
    assert.notEqual(saved.version, read.version);
    assert.equal(readFileSync(join(dir, 'CLAUDE.md'), 'utf8'), '# Team\n\nThe standup is at 9:30.\n');
    assert.equal((await control.memory.readFile(OWNER, 'team', 'CLAUDE.md')).version, saved.version);
    const found = await control.memory.search(OWNER, { text: 'standup', group: 'team' });
    assert.deepEqual(
      found.hits.map((h) => ('file' in h ? `${h.file}:${h.line}` : h.id)),
      ['CLAUDE.md:3'],
    );
    assert.deepEqual(
      readdirSync(dir).filter((n) => n.startsWith('.pincer-save-')),
      [],
      'no temporary file is left',
    );
  });

  test('a stale version is refused and the agent’s text stays; a version of null creates a new note only', async () => {
    const read = await control.memory.readFile(OWNER, 'team', 'CLAUDE.md');
    writeFileSync(join(dir, 'CLAUDE.md'), 'the agent wrote this meanwhile\n');
    await assert.rejects(control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', 'the owner’s edit\n', read.version), (err: Error) => {
      assert.match(err.message, /CLAUDE\.md changed since you opened it.*nothing was saved/);
      return conflict(err);
    });
    assert.equal(readFileSync(join(dir, 'CLAUDE.md'), 'utf8'), 'the agent wrote this meanwhile\n');
    await assert.rejects(control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', 'x', null), /already exists/);
    // memory/ does not exist yet: it is made, as a real folder, and the note created in it.
    const note = await control.memory.writeFile(OWNER, 'team', 'memory/people.md', '# People\n\nAda runs the standup.\n', null);
    assert.equal(readFileSync(join(dir, 'memory', 'people.md'), 'utf8'), '# People\n\nAda runs the standup.\n');
    assert.ok(lstatSync(join(dir, 'memory')).isDirectory());
    await assert.rejects(control.memory.writeFile(OWNER, 'team', 'memory/people.md', 'again', null), conflict);
    await control.memory.writeFile(OWNER, 'team', 'memory/people.md', '# People\n\nAda and Bo.\n', note.version);
    const files = await control.memory.listFiles(OWNER, 'team');
    assert.deepEqual(
      files.map((f) => [f.path, f.editable]),
      [
        ['CLAUDE.md', true],
        ['memory/people.md', true],
      ],
    );
  });

  test('a link planted at CLAUDE.md is replaced, never written through: the host file is unchanged', async () => {
    rmSync(join(dir, 'CLAUDE.md'));
    symlinkSync(join(outside, 'secret.md'), join(dir, 'CLAUDE.md'));
    await assert.rejects(control.memory.readFile(OWNER, 'team', 'CLAUDE.md'), /symbolic link/);
    // The link is no file: only a save meant to create one may replace it, and then the link itself goes.
    await assert.rejects(
      control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', 'x', 'a1b2c3d4e5f6a1b2c3d4e5f6'),
      /changed since you opened it/,
    );
    await control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', '# Team again\n', null);
    assert.equal(readFileSync(join(outside, 'secret.md'), 'utf8'), HOST_TEXT);
    assert.ok(lstatSync(join(dir, 'CLAUDE.md')).isFile(), 'CLAUDE.md is a regular file now');
    assert.equal(readFileSync(join(dir, 'CLAUDE.md'), 'utf8'), '# Team again\n');
  });

  test('a link planted as memory/ is refused: nothing is written where it points', async () => {
    rmSync(join(dir, 'memory'), { recursive: true });
    symlinkSync(outside, join(dir, 'memory'));
    for (const [file, version] of [
      ['memory/secret.md', null],
      ['memory/new.md', null],
    ] as const) {
      await assert.rejects(control.memory.writeFile(OWNER, 'team', file, 'overwritten!\n', version), (err: Error) => {
        assert.match(err.message, /memory is a symbolic link; nothing was saved/);
        return invalid(err);
      });
    }
    assert.equal(readFileSync(join(outside, 'secret.md'), 'utf8'), HOST_TEXT);
    assert.deepEqual(readdirSync(outside), ['secret.md'], 'nothing was created in the folder the link points to');
    rmSync(join(dir, 'memory'));
  });

  test('memory/ swapped between a folder and a link all the while: no save ever lands where the link points', async () => {
    // A sandbox process renaming memory/ back and forth as fast as it can, while the owner saves notes.
    mkdirSync(join(dir, 'real'));
    symlinkSync(outside, join(dir, 'link'));
    const swapper = spawn(
      '/bin/sh',
      ['-c', 'while :; do mv -T real memory; mv -T memory real; mv -T link memory; mv -T memory link; done'],
      {
        cwd: dir,
        stdio: 'ignore',
      },
    );
    let saved = 0;
    let refused = 0;
    try {
      for (let i = 0; i < 300; i++) {
        try {
          await control.memory.writeFile(OWNER, 'team', `memory/n${i}.md`, `note ${i}\n`, null);
          saved++;
        } catch (err) {
          assert.equal((err as { code?: string }).code, 'invalid', String(err));
          refused++;
        }
      }
    } finally {
      swapper.kill('SIGKILL');
      await new Promise((resolve) => swapper.once('exit', resolve));
    }
    assert.deepEqual(readdirSync(outside), ['secret.md'], 'nothing was created through the link');
    assert.equal(readFileSync(join(outside, 'secret.md'), 'utf8'), HOST_TEXT);
    const landed = ['real', 'memory'].flatMap((d) => {
      const at = join(dir, d);
      return lstatSync(at, { throwIfNoEntry: false })?.isDirectory() ? readdirSync(at) : [];
    });
    assert.equal(landed.length, saved, `every save landed in the real folder (${saved} saved, ${refused} refused)`);
    assert.ok(
      landed.every((n) => /^n\d+\.md$/.test(n)),
      `no temporary file is left: ${landed.join(', ')}`,
    );
    for (const d of ['real', 'link', 'memory']) rmSync(join(dir, d), { recursive: true, force: true });
  });

  test('a name outside CLAUDE.md and memory/*.md, an archive, a text too large or not text: refused, nothing changed', async () => {
    const before = readFileSync(join(dir, 'CLAUDE.md'), 'utf8');
    const version = (await control.memory.readFile(OWNER, 'team', 'CLAUDE.md')).version;
    for (const file of [
      '../x.md',
      'memory/../../x',
      'memory/../../main/CLAUDE.md',
      '../main/CLAUDE.md',
      join(outside, 'secret.md'),
      '/etc/passwd',
      'notes.txt',
      'memory/sub/x.md',
      'memory/.hidden.md',
      'memory/a\nb.md',
      '',
    ])
      await assert.rejects(
        control.memory.writeFile(OWNER, 'team', file, 'x', null),
        /is not a memory file one can save/,
        JSON.stringify(file),
      );
    mkdirSync(join(dir, 'conversations'), { recursive: true });
    writeFileSync(join(dir, 'conversations', '2026-01-01-talk.md'), 'what was said\n');
    await assert.rejects(
      control.memory.writeFile(OWNER, 'team', 'conversations/2026-01-01-talk.md', 'rewritten history', null),
      /is an archived conversation, the record of what was said: it cannot be edited/,
    );
    assert.equal(readFileSync(join(dir, 'conversations', '2026-01-01-talk.md'), 'utf8'), 'what was said\n');
    await assert.rejects(
      control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', 'a'.repeat(MEMORY_FILE_BYTES + 1), version),
      new RegExp(`is ${MEMORY_FILE_BYTES + 1} bytes, over the 2 MiB a memory file may have; nothing was saved`),
    );
    await assert.rejects(control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', 'a\0b', version), /NUL/);
    await assert.rejects(control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', 'half a pair: \ud800', version), /lone surrogate/);
    assert.equal(readFileSync(join(dir, 'CLAUDE.md'), 'utf8'), before);
    assert.deepEqual(readFileSync(join(outside, 'secret.md'), 'utf8'), HOST_TEXT);
  });

  test('only the owner and the main group save memory files', async () => {
    const version = (await control.memory.readFile(OWNER, 'team', 'CLAUDE.md')).version;
    await assert.rejects(
      control.memory.writeFile({ kind: 'group', chatId: 'local:team' }, 'team', 'CLAUDE.md', 'x', version),
      (err: Error & { code?: string }) => err.code === 'forbidden',
    );
    await control.memory.writeFile({ kind: 'group', chatId: 'local:main' }, 'team', 'CLAUDE.md', '# From the main chat\n', version);
  });

  test('as root, what pincer writes there stays the sandbox user’s to change', {
    skip: process.getuid?.() !== 0 && 'needs root',
  }, async () => {
    chownSync(dir, SANDBOX_UID, SANDBOX_UID);
    const version = (await control.memory.readFile(OWNER, 'team', 'CLAUDE.md')).version;
    await control.memory.writeFile(OWNER, 'team', 'CLAUDE.md', '# Owned\n', version);
    await control.memory.writeFile(OWNER, 'team', 'memory/owned.md', 'mine\n', null);
    for (const path of ['CLAUDE.md', 'memory', 'memory/owned.md']) {
      const st = lstatSync(join(dir, path));
      assert.deepEqual([st.uid, st.gid], [SANDBOX_UID, SANDBOX_UID], path);
    }
    assert.equal(lstatSync(join(dir, 'CLAUDE.md')).mode & 0o777, 0o644);
  });
});

describe('saving a memory file over the API', () => {
  let h: Harness;

  before(async () => {
    h = await startHarness({ env: { PINCER_PREWARM: '0' } });
  });
  after(async () => h?.stop());

  test('GET gives the version, PUT saves with it, a stale one is a 409; bad bodies are refused', async () => {
    const read = await h.request('GET', '/api/v1/groups/main/memory/file?path=CLAUDE.md');
    assert.equal(read.status, 200);
    const version = read.body.version as string;
    assert.match(version, /^[0-9a-f]{24}$/);
    const saved = await h.request('PUT', '/api/v1/groups/main/memory/file', { path: 'CLAUDE.md', text: '# Main\n', version });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    assert.equal(readFileSync(join(h.home, 'groups', 'main', 'CLAUDE.md'), 'utf8'), '# Main\n');
    const stale = await h.request('PUT', '/api/v1/groups/main/memory/file', { path: 'CLAUDE.md', text: '# Again\n', version });
    assert.equal(stale.status, 409);
    assert.match(stale.body.error as string, /changed since you opened it/);
    const again = await h.request('PUT', '/api/v1/groups/main/memory/file', {
      path: 'CLAUDE.md',
      text: '# Again\n',
      version: saved.body.version,
    });
    assert.equal(again.status, 200);
    const archive = await h.request('PUT', '/api/v1/groups/main/memory/file', { path: 'conversations/x.md', text: 'y' });
    assert.equal(archive.status, 400);
    const extra = await h.request('PUT', '/api/v1/groups/main/memory/file', { path: 'CLAUDE.md', text: 'y', owner: 'me' });
    assert.equal(extra.status, 400);
    // A file at the limit fits the body, escaped or not; the check of its size is the memory file's own.
    const big = await h.request('PUT', '/api/v1/groups/main/memory/file', {
      path: 'CLAUDE.md',
      text: '\u0001'.repeat(MEMORY_FILE_BYTES + 1),
      version: again.body.version,
    });
    assert.equal(big.status, 400);
    assert.match(big.body.error as string, /over the 2 MiB a memory file may have/);
    assert.equal(readFileSync(join(h.home, 'groups', 'main', 'CLAUDE.md'), 'utf8'), '# Again\n');
  });

  test('without the token nothing is saved, and the body is not read at all (401, not 413, for one over the limit)', async () => {
    const res = await fetch(`${h.base}/api/v1/groups/main/memory/file`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ path: 'CLAUDE.md', text: 'x'.repeat(6 * MEMORY_FILE_BYTES + 100_000) }),
    });
    assert.equal(res.status, 401);
    const tooLarge = await fetch(`${h.base}/api/v1/groups/main/memory/file`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${HARNESS_TOKEN}` },
      body: JSON.stringify({ path: 'CLAUDE.md', text: 'x'.repeat(6 * MEMORY_FILE_BYTES + 100_000) }),
    });
    assert.equal(tooLarge.status, 413);
    assert.match(
      ((await tooLarge.json()) as { error: string }).error,
      new RegExp(`larger than ${6 * MEMORY_FILE_BYTES + 64 * 1024} bytes`),
    );
    assert.equal(readFileSync(join(h.home, 'groups', 'main', 'CLAUDE.md'), 'utf8'), '# Again\n');
  });

  test('a web session saves only from the page itself: another origin is refused, nothing saved', async () => {
    const login = await fetch(`${h.base}/login`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', origin: h.base },
      body: JSON.stringify({ token: HARNESS_TOKEN }),
    });
    const cookie = /pincer_session=[^;]+/.exec(login.headers.get('set-cookie') ?? '')?.[0];
    assert.ok(cookie, 'a session cookie');
    const version = (await h.request('GET', '/api/v1/groups/main/memory/file?path=CLAUDE.md')).body.version as string;
    const put = (origin: string) =>
      fetch(`${h.base}/api/v1/groups/main/memory/file`, {
        method: 'PUT',
        headers: { 'content-type': 'application/json', cookie, origin },
        body: JSON.stringify({ path: 'CLAUDE.md', text: `# Written from ${origin}\n`, version }),
      });
    assert.equal((await put('http://evil.example')).status, 403);
    assert.equal(readFileSync(join(h.home, 'groups', 'main', 'CLAUDE.md'), 'utf8'), '# Again\n');
    assert.equal((await put(h.base)).status, 200);
    assert.equal(readFileSync(join(h.home, 'groups', 'main', 'CLAUDE.md'), 'utf8'), `# Written from ${h.base}\n`);
  });
});

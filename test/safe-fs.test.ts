// Reading and writing inside a folder a sandbox controls: links, swaps, FIFOs, devices, size, bad content.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
  symlinkSync,
  watch,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { z } from 'zod';
import {
  readFileInside,
  readFileInsideSync,
  readJsonInside,
  readJsonInsideSync,
  SafeFsError,
  type SafeFsErrorCode,
  writeFileInside,
} from '../src/sandbox/safe-fs.js';

const SAFE_FS_MODULE = new URL('../src/sandbox/safe-fs.ts', import.meta.url).href;
/** Runs node (with tsx) on "$@" once /proc is unmounted in this mount namespace. */
const NO_PROC_NODE = `umount -l /proc && exec ${JSON.stringify(process.execPath)} --import tsx "$@"`;

/** Why a reader without /proc cannot be started here (it needs root to unshare a mount namespace), or false. */
function noProcSkip(): string | false {
  const probe = spawnSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', 'umount -l /proc && test ! -e /proc/self'], {
    stdio: 'ignore',
  });
  return probe.status === 0 ? false : 'cannot unmount /proc in a mount namespace of its own here (needs root and unshare)';
}

const base = realpathSync(mkdtempSync(join(tmpdir(), 'pincer-safefs-')));
const root = join(base, 'group');
const outside = join(base, 'outside');

before(() => {
  mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
  mkdirSync(outside);
  writeFileSync(join(root, 'hello.txt'), 'hello');
  writeFileSync(join(root, 'sub', 'deeper', 'note.md'), '# note');
  writeFileSync(join(outside, 'secret'), 'SECRET');
  symlinkSync('/etc/passwd', join(root, 'passwd'));
  symlinkSync('/etc', join(root, 'etc'));
  symlinkSync(join(root, 'sub'), join(root, 'sub-link'));
  symlinkSync(join(root, 'hello.txt'), join(root, 'hello-link'));
  symlinkSync('/dev/zero', join(root, 'zero'));
  execFileSync('mkfifo', [join(root, 'fifo')]);
  writeFileSync(join(root, 'hundred'), 'x'.repeat(100));
  writeFileSync(join(root, 'empty'), '');
  symlinkSync(root, join(base, 'group-link'));
});

after(() => {
  rmSync(base, { recursive: true, force: true });
});

/** The reason is what callers pass on to the agent: it names parts of the path given, never one of the host's. */
function assertReasonNamesNoHostPath(err: SafeFsError): void {
  for (const hostPath of [base, tmpdir(), '/proc/'])
    assert.ok(!err.reason.includes(hostPath), `the reason names the host path ${hostPath}: ${err.reason}`);
}

/** A check for assert.throws/rejects: a SafeFsError with `code` whose message names `path`. */
function safeFsError(code: SafeFsErrorCode, path?: string | RegExp): (err: unknown) => boolean {
  return (err: unknown) => {
    assert.ok(err instanceof SafeFsError, `expected a SafeFsError, got ${String(err)}`);
    assert.equal(err.code, code, err.message);
    assertReasonNamesNoHostPath(err);
    if (typeof path === 'string') assert.ok(err.message.startsWith(`${path}: `), `message names ${path}: ${err.message}`);
    else if (path) assert.match(err.message, path);
    return true;
  };
}

/** Runs the async read and its sync twin, expecting the same refusal from both. */
async function assertReadRefused(rel: string, maxBytes: number, code: SafeFsErrorCode, path?: string | RegExp): Promise<void> {
  await assert.rejects(readFileInside(root, rel, maxBytes), safeFsError(code, path));
  assert.throws(() => readFileInsideSync(root, rel, maxBytes), safeFsError(code, path));
}

describe('readFileInside', () => {
  it('reads a regular file, also through a symlinked root', async () => {
    assert.equal((await readFileInside(root, 'hello.txt', 1024)).toString(), 'hello');
    assert.equal((await readFileInside(root, 'sub/deeper/note.md', 1024)).toString(), '# note');
    assert.equal((await readFileInside(join(base, 'group-link'), './sub//deeper/note.md', 1024)).toString(), '# note');
    assert.equal(readFileInsideSync(root, 'hello.txt', 1024).toString(), 'hello');
    assert.equal((await readFileInside(root, 'empty', 0)).length, 0);
  });

  it('reads exactly maxBytes and refuses one byte more', async () => {
    assert.equal((await readFileInside(root, 'hundred', 100)).length, 100);
    assert.equal(readFileInsideSync(root, 'hundred', 100).length, 100);
    await assertReadRefused('hundred', 99, 'too-big', /hundred: is 100 bytes, over the 99 allowed/);
  });

  it('reads a file bigger than one chunk whole', async () => {
    const big = Buffer.alloc(300 * 1024, 7);
    writeFileSync(join(root, 'big.bin'), big);
    assert.ok((await readFileInside(root, 'big.bin', big.length)).equals(big));
    assert.ok(readFileInsideSync(root, 'big.bin', big.length).equals(big));
  });

  const refusals: Array<{ name: string; rel: string; code: SafeFsErrorCode; reason: RegExp }> = [
    { name: 'a symlink to /etc/passwd', rel: 'passwd', code: 'symlink', reason: /passwd: is a symbolic link/ },
    { name: 'a symlink to a file inside', rel: 'hello-link', code: 'symlink', reason: /is a symbolic link/ },
    { name: 'a symlink to a device', rel: 'zero', code: 'symlink', reason: /is a symbolic link/ },
    { name: 'a symlinked folder on the way out', rel: 'etc/passwd', code: 'symlink', reason: /etc\/passwd: etc is a symbolic link/ },
    {
      name: 'a symlinked folder on the way, even inside',
      rel: 'sub-link/deeper/note.md',
      code: 'symlink',
      reason: /sub-link is a symbolic link/,
    },
    { name: 'a FIFO, without hanging', rel: 'fifo', code: 'not-file', reason: /fifo: is a FIFO/ },
    { name: 'a directory', rel: 'sub', code: 'not-file', reason: /sub: is a directory/ },
    { name: 'a missing file', rel: 'nope.txt', code: 'missing', reason: /nope\.txt: does not exist/ },
    { name: 'a file used as a folder', rel: 'hello.txt/x', code: 'missing', reason: /hello\.txt is not a directory/ },
    { name: '../x', rel: '../outside/secret', code: 'bad-path', reason: /must not contain \.\./ },
    { name: 'a .. in the middle', rel: 'sub/../../outside/secret', code: 'bad-path', reason: /must not contain \.\./ },
    { name: 'an absolute path', rel: '/etc/passwd', code: 'bad-path', reason: /must be relative/ },
    { name: 'an empty path', rel: '', code: 'bad-path', reason: /empty path/ },
    { name: 'the root itself', rel: './', code: 'bad-path', reason: /names the root itself/ },
    { name: 'a NUL byte', rel: 'hello.txt\0', code: 'bad-path', reason: /NUL byte/ },
    {
      name: 'a name too long for the file system',
      rel: `sub/${'n'.repeat(300)}`,
      code: 'bad-path',
      reason: /a name in the path is too long/,
    },
  ];
  for (const r of refusals) {
    it(`refuses ${r.name}`, async () => {
      await assertReadRefused(r.rel, 1024, r.code, r.reason);
    });
  }

  it('names the path as the caller gave it', async () => {
    await assertReadRefused('passwd', 1024, 'symlink', join(root, 'passwd'));
  });

  it('refuses a device node', { skip: process.getuid?.() !== 0 && 'needs root to mknod' }, async () => {
    execFileSync('mknod', [join(root, 'devzero'), 'c', '1', '5']);
    await assertReadRefused('devzero', 1024, 'not-file', /devzero: is a device/);
  });

  it('refuses a root that does not exist, and a bad maxBytes', async () => {
    await assert.rejects(readFileInside(join(base, 'nope'), 'x', 10), safeFsError('missing', join(base, 'nope')));
    assert.throws(() => readFileInsideSync(join(base, 'nope'), 'x', 10), safeFsError('missing'));
    await assert.rejects(readFileInside(root, 'hello.txt', -1), RangeError);
    await assert.rejects(readFileInside(root, 'hello.txt', 1.5), RangeError);
  });
});

/**
 * Where /proc/self/fd cannot name a folder's entries (other platforms), paths are opened whole and the opened
 * file is checked afterwards. That fallback is run here in a child whose mount namespace has no /proc. It is not
 * race-free (a folder swapped at the right moment is read through): only what holds without a race is asserted.
 */
describe('without /proc', () => {
  it('reads inside and refuses links, FIFOs and folders, naming no host path', { skip: noProcSkip() }, () => {
    const reader = join(base, 'reader.mjs');
    writeFileSync(
      reader,
      `const { existsSync } = await import('node:fs');
      const { readFileInside, readFileInsideSync, SafeFsError } = await import(${JSON.stringify(SAFE_FS_MODULE)});
      const [root] = process.argv.slice(2);
      const seen = { procfs: existsSync('/proc/self/fd') };
      for (const rel of ['hello.txt', 'sub/deeper/note.md', 'passwd', 'etc/passwd', 'sub-link/deeper/note.md', 'fifo', 'sub', 'nope']) {
        for (const [how, read] of [['async', (r) => readFileInside(root, r, 1024)], ['sync', async (r) => readFileInsideSync(root, r, 1024)]]) {
          try {
            seen[how + ' ' + rel] = (await read(rel)).toString();
          } catch (err) {
            if (!(err instanceof SafeFsError)) throw err;
            seen[how + ' ' + rel] = err.code + ': ' + err.reason;
          }
        }
      }
      process.stdout.write(JSON.stringify(seen));`,
    );
    const out = execFileSync('unshare', ['--mount', '--propagation', 'private', 'sh', '-c', NO_PROC_NODE, 'sh', reader, root], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    const seen = JSON.parse(out) as Record<string, string | boolean>;
    assert.equal(seen.procfs, false, 'the reader ran without /proc');
    const expected: Record<string, string> = {
      'hello.txt': 'hello',
      'sub/deeper/note.md': '# note',
      passwd: 'symlink: is a symbolic link',
      'etc/passwd': 'symlink: etc is a symbolic link',
      'sub-link/deeper/note.md': 'symlink: sub-link is a symbolic link',
      fifo: 'not-file: is a FIFO',
      sub: 'not-file: is a directory',
      nope: 'missing: does not exist',
    };
    for (const [rel, outcome] of Object.entries(expected)) {
      assert.equal(seen[`async ${rel}`], outcome, rel);
      assert.equal(seen[`sync ${rel}`], outcome, rel);
    }
  });
});

/**
 * A child process flips `d` between a real folder (holding `f` = inside) and a symlink to a folder outside
 * (holding `f` = SECRET) as fast as it can. Whatever the interleaving, nothing outside may be read or written.
 */
describe('under a folder swapped for a symlink mid-operation', () => {
  const arena = join(base, 'arena');
  const away = join(base, 'away');
  // A folder the host creates (writeFileInside makes missing ones) while `d` is briefly absent is removed again.
  const swapper = `
    const { lstatSync, renameSync, rmSync } = require('node:fs');
    const [dir] = process.argv.slice(1);
    const p = (n) => dir + '/' + n;
    const present = (n) => { try { lstatSync(p(n)); return true; } catch { return false; } };
    const move = (from, to) => {
      try { renameSync(p(from), p(to)); }
      catch {
        // The host may be creating a file in it meanwhile (ENOTEMPTY): the next round tries again.
        if (present('d.real') && present('d.link')) try { rmSync(p('d'), { recursive: true, force: true }); } catch {}
      }
    };
    process.stdout.write('swapping');
    for (;;) { move('d.real', 'd'); move('d', 'd.real'); move('d.link', 'd'); move('d', 'd.link'); }`;

  /** `outsideF`: what `f` is in the folder outside: a secret, or a FIFO whose every opening is noticed. */
  async function duringSwaps(body: () => Promise<void>, outsideF: 'secret' | 'fifo' = 'secret'): Promise<void> {
    for (const d of [arena, away]) rmSync(d, { recursive: true, force: true });
    mkdirSync(join(arena, 'd.real'), { recursive: true });
    mkdirSync(away, { recursive: true });
    writeFileSync(join(arena, 'd.real', 'f'), 'inside');
    if (outsideF === 'fifo') execFileSync('mkfifo', [join(away, 'f')]);
    else writeFileSync(join(away, 'f'), 'SECRET');
    symlinkSync(away, join(arena, 'd.link'));
    const child = spawn(process.execPath, ['-e', swapper, arena], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      // A loaded machine may take long to start node: the race begins when the swapper says so.
      await new Promise((resolve, reject) => {
        child.stdout.once('data', resolve);
        child.once('exit', (code) => reject(new Error(`the swapper exited (${code}) before it started`)));
      });
      await body();
    } finally {
      child.kill('SIGKILL');
      await exited;
    }
  }

  it('never returns what is outside', async (t) => {
    const seen = new Map<string, number>();
    const count = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
    await duringSwaps(async () => {
      for (let i = 0; i < 3000; i++) {
        try {
          const data = i % 2 === 0 ? await readFileInside(arena, 'd/f', 64) : readFileInsideSync(arena, 'd/f', 64);
          count(data.toString());
        } catch (err) {
          assert.ok(err instanceof SafeFsError, `only SafeFsErrors, got ${String(err)}`);
          count(err.code);
        }
      }
    });
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
    assert.equal(seen.get('SECRET'), undefined, 'read a file outside the root');
    assert.ok((seen.get('inside') ?? 0) > 0, 'some reads succeeded, so the swap was racing real reads');
  });

  it('never opens anything outside, and no refusal names a host path', async (t) => {
    // A writer's open of a FIFO blocks until someone opens it for reading, and any such open, however brief,
    // releases it: "touched" means the host opened the file outside.
    const fifo = join(away, 'f');
    const seen = new Map<string, number>();
    const count = (k: string) => seen.set(k, (seen.get(k) ?? 0) + 1);
    let touched = '';
    await duringSwaps(async () => {
      const watcher = spawn('sh', ['-c', ': > "$1"; echo touched', 'sh', fifo], { stdio: ['ignore', 'pipe', 'ignore'] });
      watcher.stdout.on('data', (chunk: Buffer) => {
        touched += chunk.toString();
      });
      const watcherExited = new Promise((resolve) => watcher.once('exit', resolve));
      try {
        for (let i = 0; i < 3000 && !touched; i++) {
          try {
            const data = i % 2 === 0 ? await readFileInside(arena, 'd/f', 64) : readFileInsideSync(arena, 'd/f', 64);
            count(data.toString());
          } catch (err) {
            assert.ok(err instanceof SafeFsError, `only SafeFsErrors, got ${String(err)}`);
            assertReasonNamesNoHostPath(err);
            count(err.code);
          }
        }
        // A release a moment ago reaches us through the watcher's pipe.
        await new Promise((resolve) => setTimeout(resolve, 200));
      } finally {
        watcher.kill('SIGKILL');
        await watcherExited;
      }
    }, 'fifo');
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
    assert.equal(touched, '', `the host opened the FIFO outside the root (after ${[...seen.values()].reduce((a, b) => a + b, 0)} reads)`);
    assert.ok((seen.get('inside') ?? 0) > 0, 'some reads succeeded, so the swap was racing real reads');
    assert.ok((seen.get('symlink') ?? 0) > 0, 'some reads met the link, so the race was on');
  });

  it('never leaves a file outside', async (t) => {
    const seen = new Map<string, number>();
    // Created and removed again still counts: the host must not create anything outside, even for a moment.
    const createdOutside: string[] = [];
    await duringSwaps(async () => {
      const watcher = watch(away, (event, name) => createdOutside.push(`${event} ${name}`));
      try {
        await writeWhileSwapping(seen);
      } finally {
        watcher.close();
      }
    });
    t.diagnostic(`outcomes: ${JSON.stringify(Object.fromEntries(seen))}`);
    assert.deepEqual(createdOutside, [], 'a file was created outside the root');
    assert.deepEqual(readdirSync(away), ['f'], 'a file was left outside the root');
  });

  async function writeWhileSwapping(seen: Map<string, number>): Promise<void> {
    for (let i = 0; i < 1500; i++) {
      try {
        await writeFileInside(arena, `d/w${i}`, 'x');
        seen.set('written', (seen.get('written') ?? 0) + 1);
      } catch (err) {
        assert.ok(err instanceof SafeFsError, `only SafeFsErrors, got ${String(err)}`);
        assertReasonNamesNoHostPath(err);
        seen.set(err.code, (seen.get(err.code) ?? 0) + 1);
      }
    }
  }
});

describe('writeFileInside', () => {
  it('creates a new file with the given mode, whatever the umask', async () => {
    const path = await writeFileInside(root, 'media/2024/photo.jpg', Buffer.from([1, 2, 3]), { mode: 0o600 });
    assert.equal(path, join(root, 'media', '2024', 'photo.jpg'));
    assert.deepEqual([...readFileSync(path)], [1, 2, 3]);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    const plain = await writeFileInside(root, 'plain.txt', 'text');
    assert.equal(readFileSync(plain, 'utf8'), 'text');
    assert.equal(statSync(plain).mode & 0o777, 0o644);
  });

  it('refuses an existing file and leaves it alone', async () => {
    await assert.rejects(writeFileInside(root, 'hello.txt', 'overwritten'), safeFsError('exists', join(root, 'hello.txt')));
    assert.equal(readFileSync(join(root, 'hello.txt'), 'utf8'), 'hello');
  });

  it('refuses a dangling symlink and does not create its target', async () => {
    const target = join(outside, 'planted-by-sandbox');
    symlinkSync(target, join(root, 'planted'));
    await assert.rejects(writeFileInside(root, 'planted', 'data'), safeFsError('exists'));
    assert.equal(existsSync(target), false);
  });

  it('refuses a FIFO at the name without hanging', async () => {
    await assert.rejects(writeFileInside(root, 'fifo', 'data'), safeFsError('exists'));
  });

  it('refuses a symlinked folder on the way and creates nothing through it', async () => {
    symlinkSync(outside, join(root, 'out'));
    await assert.rejects(writeFileInside(root, 'out/x.txt', 'data'), safeFsError('symlink', /out is a symbolic link/));
    await assert.rejects(writeFileInside(root, 'out/new/x.txt', 'data'), safeFsError('symlink'));
    assert.deepEqual(readdirSync(outside), ['secret']);
  });

  const badPaths: Array<[string, string]> = [
    ['../outside/x', 'must not contain ..'],
    ['/tmp/x', 'must be relative'],
    ['', 'empty path'],
    ['.', 'names the root itself'],
  ];
  for (const [rel, reason] of badPaths) {
    it(`refuses the path ${JSON.stringify(rel)}`, async () => {
      await assert.rejects(writeFileInside(root, rel, 'data'), safeFsError('bad-path', new RegExp(reason.replace(/\./g, '\\.'))));
    });
  }

  it('refuses a mode beyond permission bits', async () => {
    await assert.rejects(writeFileInside(root, 'setuid', 'x', { mode: 0o4755 }), RangeError);
    assert.equal(existsSync(join(root, 'setuid')), false);
  });
});

describe('readJsonInside', () => {
  const schema = z.object({ text: z.string(), count: z.number().int() });
  const write = (name: string, content: string | Buffer) => writeFileSync(join(root, name), content);

  it('reads and checks a JSON file', async () => {
    write('ok.json', '{"text":"hi","count":2}');
    assert.deepEqual(await readJsonInside(root, 'ok.json', 1024, schema), { text: 'hi', count: 2 });
    assert.deepEqual(readJsonInsideSync(root, 'ok.json', 1024, schema), { text: 'hi', count: 2 });
  });

  const bad: Array<{ name: string; content: string | Buffer; code: SafeFsErrorCode; reason: RegExp }> = [
    { name: 'malformed JSON', content: '{"text": "hi",', code: 'invalid', reason: /bad\.json: malformed JSON/ },
    { name: 'invalid UTF-8', content: Buffer.from([0x22, 0xff, 0x22]), code: 'invalid', reason: /bad\.json: malformed JSON/ },
    { name: 'a schema mismatch', content: '{"text":1,"count":2}', code: 'invalid', reason: /bad\.json: unexpected content: text: / },
    { name: 'a wrong top level', content: '[]', code: 'invalid', reason: /unexpected content: \(top level\)/ },
    { name: 'an oversized file', content: `{"text":"${'x'.repeat(2000)}","count":1}`, code: 'too-big', reason: /bad\.json: is \d+ bytes/ },
  ];
  for (const b of bad) {
    it(`refuses ${b.name}, naming the file`, async () => {
      write('bad.json', b.content);
      await assert.rejects(readJsonInside(root, 'bad.json', 1024, schema), safeFsError(b.code, b.reason));
      assert.throws(() => readJsonInsideSync(root, 'bad.json', 1024, schema), safeFsError(b.code, b.reason));
    });
  }

  it('refuses a symlinked JSON file', async () => {
    symlinkSync(join(outside, 'secret'), join(root, 'link.json'));
    await assert.rejects(readJsonInside(root, 'link.json', 1024, schema), safeFsError('symlink'));
  });
});

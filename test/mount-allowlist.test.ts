// Extra mounts: loading the allowlist file, and every rule a requested host folder must pass.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, realpathSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  defaultAllowlistPath,
  type ExtraMountRequest,
  extraMountRequestSchema,
  loadMountAllowlist,
  MAX_ALLOWLIST_BYTES,
  type MountAllowlist,
  MountAllowlistError,
  validateExtraMounts,
} from '../src/sandbox/mount-allowlist.js';

// realpath: the tmpdir may itself sit behind a symlink, and mounts report resolved paths.
const base = realpathSync(mkdtempSync(join(tmpdir(), 'pincer-mounts-')));
const home = join(base, 'home');
const notes = join(home, 'notes');
const archive = join(home, 'archive');
const outside = join(base, 'outside');
const allowlistFile = join(home, '.config', 'pincer', 'mount-allowlist.json');

before(() => {
  for (const d of [
    join(notes, 'sub', 'deeper'),
    join(notes, 'My Notes'),
    join(notes, 'Secrets'),
    join(notes, 'bundle.pem'),
    join(notes, 'host', '.ssh', 'keys'),
    join(notes, 'envdir'),
    join(notes, 'proj', '.config', 'gcloud'),
    join(notes, 'a,b'),
    join(home, 'notes-evil'),
    join(archive, 'old'),
    join(home, '.config', 'pincer'),
    outside,
    join(base, 'links'),
  ]) {
    mkdirSync(d, { recursive: true });
  }
  writeFileSync(join(notes, 'envdir', '.env'), 'TOKEN=x\n');
  writeFileSync(join(notes, 'file.txt'), 'not a folder\n');
  symlinkSync(outside, join(notes, 'escape'));
  symlinkSync(join(notes, 'sub'), join(base, 'links', 'to-sub'));
  writeAllowlist({
    allowedRoots: [
      { path: '~/notes', allowReadWrite: true, description: 'Obsidian vault' },
      { path: '~/archive' },
      { path: '~/missing-root', allowReadWrite: true },
    ],
    blockedPatterns: ['secrets'],
    nonMainReadOnly: true,
  });
});

after(() => {
  rmSync(base, { recursive: true, force: true });
});

function writeAllowlist(content: unknown, file = allowlistFile): void {
  writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
}

function loaded(): MountAllowlist {
  const list = loadMountAllowlist(allowlistFile, home);
  assert.ok(list, 'the fixture allowlist loads');
  return list;
}

function validate(requests: ExtraMountRequest[], opts: { isMain?: boolean; allowlist?: MountAllowlist; protectedPaths?: string[] } = {}) {
  return validateExtraMounts(requests, opts.allowlist ?? loaded(), {
    isMain: opts.isMain ?? true,
    home,
    ...(opts.protectedPaths ? { protectedPaths: opts.protectedPaths } : {}),
  });
}

describe('defaultAllowlistPath', () => {
  it('lives under ~/.config/pincer, outside the project', () => {
    assert.equal(defaultAllowlistPath('/home/someone'), '/home/someone/.config/pincer/mount-allowlist.json');
  });
});

describe('loadMountAllowlist', () => {
  it('returns undefined when there is no file (no extra mounts at all)', () => {
    assert.equal(loadMountAllowlist(join(base, 'nope.json'), home), undefined);
  });

  it('expands ~, fills defaults and keeps roots that do not exist', () => {
    const list = loaded();
    assert.equal(list.file, allowlistFile);
    assert.deepEqual(list.allowedRoots, [
      { path: notes, allowReadWrite: true, description: 'Obsidian vault' },
      { path: archive, allowReadWrite: false },
      { path: join(home, 'missing-root'), allowReadWrite: true },
    ]);
    assert.deepEqual(list.blockedPatterns, ['secrets']);
    assert.equal(list.nonMainReadOnly, true);
  });

  it('defaults nonMainReadOnly to true and blockedPatterns to none', () => {
    const file = join(base, 'minimal.json');
    writeAllowlist({ allowedRoots: [] }, file);
    const list = loadMountAllowlist(file, home);
    assert.equal(list?.nonMainReadOnly, true);
    assert.deepEqual(list?.blockedPatterns, []);
  });

  const malformed: Array<{ name: string; content: string; problem: RegExp }> = [
    { name: 'not JSON', content: '{ "allowedRoots": [', problem: /malformed JSON/ },
    { name: 'not an object', content: '[]', problem: /\(top level\)/ },
    { name: 'allowedRoots missing', content: '{}', problem: /allowedRoots/ },
    { name: 'allowedRoots not an array', content: '{"allowedRoots":"~/notes"}', problem: /allowedRoots/ },
    { name: 'relative root', content: '{"allowedRoots":[{"path":"notes"}]}', problem: /allowedRoots\.0\.path: must be an absolute path/ },
    { name: '~user root', content: '{"allowedRoots":[{"path":"~bob/notes"}]}', problem: /allowedRoots\.0\.path/ },
    {
      name: 'allowReadWrite not a boolean',
      content: '{"allowedRoots":[{"path":"/x","allowReadWrite":"yes"}]}',
      problem: /allowedRoots\.0\.allowReadWrite/,
    },
    { name: 'empty blocked pattern', content: '{"allowedRoots":[],"blockedPatterns":["ok",""]}', problem: /blockedPatterns\.1/ },
    { name: 'misspelt key', content: '{"allowedRoots":[],"nonMainReadonly":false}', problem: /nonMainReadonly/ },
    { name: 'unknown key in a root', content: '{"allowedRoots":[{"path":"/x","readWrite":true}]}', problem: /allowedRoots\.0.*readWrite/ },
  ];
  for (const c of malformed) {
    it(`throws naming the file and the problem: ${c.name}`, () => {
      const file = join(base, 'bad.json');
      writeAllowlist(c.content, file);
      assert.throws(
        () => loadMountAllowlist(file, home),
        (err: unknown) => {
          assert.ok(err instanceof MountAllowlistError);
          assert.ok(err.message.includes(file), `message names the file: ${err.message}`);
          assert.match(err.message, c.problem);
          return true;
        },
      );
    });
  }

  it('refuses a file over the size bound', () => {
    const file = join(base, 'huge.json');
    writeAllowlist(`${' '.repeat(MAX_ALLOWLIST_BYTES)}{"allowedRoots":[]}`, file);
    assert.throws(() => loadMountAllowlist(file, home), /huge\.json: larger than 65536 bytes/);
  });

  it('refuses a directory or a FIFO at the path, without hanging', () => {
    const dir = join(base, 'dir.json');
    mkdirSync(dir);
    assert.throws(() => loadMountAllowlist(dir, home), /dir\.json: not a regular file/);
    const fifo = join(base, 'fifo.json');
    execFileSync('mkfifo', [fifo]);
    assert.throws(() => loadMountAllowlist(fifo, home), /fifo\.json: not a regular file/);
  });
});

describe('extraMountRequestSchema', () => {
  it('accepts a well-formed request', () => {
    assert.deepEqual(extraMountRequestSchema.parse({ hostPath: '~/notes', name: 'vault', readOnly: true }), {
      hostPath: '~/notes',
      name: 'vault',
      readOnly: true,
    });
  });

  const bad: Array<[string, unknown]> = [
    ['missing hostPath', { name: 'x' }],
    ['empty hostPath', { hostPath: '' }],
    ['bad name', { hostPath: '/x', name: '../etc' }],
    ['readOnly not a boolean', { hostPath: '/x', readOnly: 'no' }],
    ['unknown key', { hostPath: '/x', sandboxPath: '/etc' }],
  ];
  for (const [name, value] of bad) {
    it(`rejects ${name}`, () => {
      assert.equal(extraMountRequestSchema.safeParse(value).success, false);
    });
  }
});

describe('validateExtraMounts', () => {
  it('rejects everything when there is no allowlist, naming where it should be', () => {
    const requests = [{ hostPath: notes }, { hostPath: '~/archive' }];
    const result = validateExtraMounts(requests, undefined, { isMain: true, allowlistPath: '/cfg/allow.json' });
    assert.deepEqual(result.mounts, []);
    assert.equal(result.rejected.length, 2);
    for (const r of result.rejected) assert.match(r.reason, /^no mount allowlist at \/cfg\/allow\.json/);
    const byDefault = validateExtraMounts(requests, undefined, { isMain: true, home: '/home/someone' });
    assert.match(byDefault.rejected[0]?.reason ?? '', /no mount allowlist at \/home\/someone\/\.config\/pincer\/mount-allowlist\.json/);
  });

  type Case = { name: string; request: ExtraMountRequest } & (
    | { hostPath: string; sandboxPath: string; reason?: undefined }
    | { reason: RegExp; hostPath?: undefined }
  );
  const cases: Case[] = [
    {
      name: 'a folder inside a root',
      request: { hostPath: join(notes, 'sub') },
      hostPath: join(notes, 'sub'),
      sandboxPath: '/workspace/extra/sub',
    },
    {
      name: 'a ~ path',
      request: { hostPath: '~/notes/sub/deeper' },
      hostPath: join(notes, 'sub', 'deeper'),
      sandboxPath: '/workspace/extra/deeper',
    },
    { name: 'the root itself', request: { hostPath: '~/notes' }, hostPath: notes, sandboxPath: '/workspace/extra/notes' },
    { name: 'a trailing slash', request: { hostPath: `${notes}/sub/` }, hostPath: join(notes, 'sub'), sandboxPath: '/workspace/extra/sub' },
    {
      name: 'a symlink outside pointing inside (checked and mounted as its target)',
      request: { hostPath: join(base, 'links', 'to-sub') },
      hostPath: join(notes, 'sub'),
      sandboxPath: '/workspace/extra/to-sub',
    },
    {
      name: 'an explicit name',
      request: { hostPath: '~/notes/My Notes', name: 'my-notes' },
      hostPath: join(notes, 'My Notes'),
      sandboxPath: '/workspace/extra/my-notes',
    },
    {
      name: 'a sibling sharing the root as a prefix',
      request: { hostPath: '~/notes-evil' },
      reason: /notes-evil is outside every allowed root/,
    },
    { name: 'a .. segment', request: { hostPath: '~/notes/../notes-evil' }, reason: /contains a \.\. segment/ },
    { name: 'a .. segment that stays inside', request: { hostPath: `${notes}/sub/..` }, reason: /contains a \.\. segment/ },
    { name: 'a relative path', request: { hostPath: 'notes/sub' }, reason: /must be absolute or start with ~\// },
    { name: 'a ~user path', request: { hostPath: '~root/notes' }, reason: /must be absolute or start with ~\// },
    { name: 'a control character', request: { hostPath: `${notes}/sub\n` }, reason: /control characters/ },
    {
      name: 'a symlink inside a root pointing outside',
      request: { hostPath: '~/notes/escape' },
      reason: new RegExp(`${outside} \\(resolved from ${join(notes, 'escape')}\\) is outside every allowed root`),
    },
    {
      name: '.ssh anywhere in the path',
      request: { hostPath: '~/notes/host/.ssh/keys' },
      reason: /"\.ssh" matches blocked pattern "\.ssh"/,
    },
    { name: 'a *.pem component', request: { hostPath: '~/notes/bundle.pem' }, reason: /"bundle\.pem" matches blocked pattern "\*\.pem"/ },
    {
      name: 'a custom pattern, case-insensitively',
      request: { hostPath: '~/notes/Secrets' },
      reason: /"Secrets" matches blocked pattern "secrets"/,
    },
    {
      name: 'a two-component pattern',
      request: { hostPath: '~/notes/proj/.config/gcloud' },
      reason: /"\.config\/gcloud" matches blocked pattern "\.config\/gcloud"/,
    },
    { name: 'a folder holding .ssh', request: { hostPath: '~/notes/host' }, reason: /contains \.ssh at its top level/ },
    { name: 'a folder holding .env', request: { hostPath: '~/notes/envdir' }, reason: /contains \.env at its top level/ },
    { name: 'a path that does not exist', request: { hostPath: '~/notes/nope' }, reason: /notes\/nope does not exist/ },
    { name: 'a root that does not exist', request: { hostPath: '~/missing-root' }, reason: /does not exist/ },
    { name: 'a file', request: { hostPath: '~/notes/file.txt' }, reason: /is not a directory/ },
    { name: 'a comma in the resolved path', request: { hostPath: '~/notes/a,b' }, reason: /contains a comma/ },
    {
      name: 'an unusable default name',
      request: { hostPath: '~/notes/My Notes' },
      reason: /mount name "My Notes" .*give the mount a name/,
    },
    { name: 'a name starting with a dot', request: { hostPath: '~/notes/sub', name: '.hidden' }, reason: /mount name "\.hidden"/ },
    { name: 'a name with a slash', request: { hostPath: '~/notes/sub', name: 'a/b' }, reason: /mount name "a\/b"/ },
    { name: 'the name ..', request: { hostPath: '~/notes/sub', name: '..' }, reason: /mount name "\.\."/ },
    { name: 'an empty name', request: { hostPath: '~/notes/sub', name: '' }, reason: /mount name ""/ },
    { name: 'a 65-character name', request: { hostPath: '~/notes/sub', name: 'a'.repeat(65) }, reason: /mount name/ },
  ];
  for (const c of cases) {
    it(`${c.reason ? 'refuses' : 'accepts'} ${c.name}`, () => {
      const { mounts, rejected } = validate([c.request]);
      if (c.reason) {
        assert.deepEqual(mounts, []);
        assert.equal(rejected.length, 1);
        assert.equal(rejected[0]?.request, c.request);
        assert.match(rejected[0]?.reason ?? '', c.reason);
        assert.ok(!rejected[0]?.reason.includes('\n'), 'reasons are one line');
      } else {
        assert.deepEqual(rejected, []);
        assert.deepEqual(mounts, [{ hostPath: c.hostPath, sandboxPath: c.sandboxPath, writable: true }]);
      }
    });
  }

  it('accepts a 64-character name', () => {
    const name = `a${'b'.repeat(63)}`;
    assert.equal(validate([{ hostPath: '~/notes/sub', name }]).mounts[0]?.sandboxPath, `/workspace/extra/${name}`);
  });

  it('rejects a duplicate name, but only against mounts that were accepted', () => {
    const { mounts, rejected } = validate([
      { hostPath: '~/notes/nope', name: 'x' },
      { hostPath: '~/notes/sub', name: 'x' },
      { hostPath: '~/notes/sub/deeper', name: 'x' },
      { hostPath: '~/notes/sub' },
      { hostPath: join(base, 'links', 'to-sub'), name: 'sub' },
    ]);
    assert.deepEqual(
      mounts.map((m) => m.sandboxPath),
      ['/workspace/extra/x', '/workspace/extra/sub'],
    );
    assert.deepEqual(
      rejected.map((r) => r.reason),
      [
        `${join(notes, 'nope')} does not exist`,
        'mount name "x" is already used by another extra mount',
        'mount name "sub" is already used by another extra mount',
      ],
    );
  });

  describe('read-write only when the root, the request and the group all allow it', () => {
    const modes: Array<{
      name: string;
      isMain: boolean;
      nonMainReadOnly: boolean;
      hostPath: string;
      readOnly?: boolean;
      writable: boolean;
    }> = [
      { name: 'main, read-write root', isMain: true, nonMainReadOnly: true, hostPath: '~/notes/sub', writable: true },
      {
        name: 'main, read-write root, asks read-only',
        isMain: true,
        nonMainReadOnly: true,
        hostPath: '~/notes/sub',
        readOnly: true,
        writable: false,
      },
      { name: 'main, read-only root', isMain: true, nonMainReadOnly: true, hostPath: '~/archive/old', writable: false },
      {
        name: 'main, read-only root, asks read-write',
        isMain: true,
        nonMainReadOnly: false,
        hostPath: '~/archive/old',
        readOnly: false,
        writable: false,
      },
      {
        name: 'non-main, read-write root, forced read-only',
        isMain: false,
        nonMainReadOnly: true,
        hostPath: '~/notes/sub',
        readOnly: false,
        writable: false,
      },
      {
        name: 'non-main, read-write root, allowlist lets it write',
        isMain: false,
        nonMainReadOnly: false,
        hostPath: '~/notes/sub',
        writable: true,
      },
      {
        name: 'non-main, read-only root, allowlist lets it write',
        isMain: false,
        nonMainReadOnly: false,
        hostPath: '~/archive/old',
        writable: false,
      },
      {
        name: 'non-main, allowed but asks read-only',
        isMain: false,
        nonMainReadOnly: false,
        hostPath: '~/notes/sub',
        readOnly: true,
        writable: false,
      },
    ];
    for (const m of modes) {
      it(`${m.name} → ${m.writable ? 'read-write' : 'read-only'}`, () => {
        const allowlist = { ...loaded(), nonMainReadOnly: m.nonMainReadOnly };
        const request: ExtraMountRequest =
          m.readOnly === undefined ? { hostPath: m.hostPath } : { hostPath: m.hostPath, readOnly: m.readOnly };
        const { mounts, rejected } = validate([request], { isMain: m.isMain, allowlist });
        assert.deepEqual(rejected, []);
        assert.equal(mounts[0]?.writable, m.writable);
      });
    }

    it('the most specific root decides when roots nest', () => {
      const allowlist: MountAllowlist = {
        ...loaded(),
        allowedRoots: [
          { path: notes, allowReadWrite: true },
          { path: join(notes, 'sub'), allowReadWrite: false },
        ],
      };
      const { mounts } = validate([{ hostPath: '~/notes/sub/deeper' }, { hostPath: '~/notes/My Notes', name: 'mine' }], { allowlist });
      assert.deepEqual(
        mounts.map((m) => m.writable),
        [false, true],
      );
    });
  });

  it('a root that appears after loading starts to match', () => {
    const allowlist = loaded();
    const late = join(home, 'missing-root');
    try {
      mkdirSync(late);
      assert.equal(validate([{ hostPath: '~/missing-root' }], { allowlist }).mounts[0]?.hostPath, late);
    } finally {
      rmSync(late, { recursive: true, force: true });
    }
  });

  it('never mounts the allowlist file, nor a folder holding it', () => {
    const allowlist: MountAllowlist = { ...loaded(), allowedRoots: [{ path: home, allowReadWrite: true }] };
    const { mounts, rejected } = validate([{ hostPath: '~/.config' }, { hostPath: '~/.config/pincer' }, { hostPath: '~' }], { allowlist });
    assert.deepEqual(mounts, []);
    assert.equal(rejected.length, 3);
    for (const r of rejected) assert.match(r.reason, /would expose .*mount-allowlist\.json, which no sandbox may see/);
  });

  it('never mounts a protected path, a folder holding one, or a folder inside one', () => {
    const guarded = join(notes, 'sub');
    const { mounts, rejected } = validate([{ hostPath: '~/notes' }, { hostPath: '~/notes/sub' }, { hostPath: '~/notes/sub/deeper' }], {
      protectedPaths: [guarded],
    });
    assert.deepEqual(mounts, []);
    assert.deepEqual(
      rejected.map((r) => r.reason),
      [
        `${notes} would expose ${guarded}, which no sandbox may see`,
        `${guarded} would expose ${guarded}, which no sandbox may see`,
        `${join(guarded, 'deeper')} is inside ${guarded}, which no sandbox may see`,
      ],
    );
  });
});

describe('a mount inside a folder a sandbox can write', () => {
  // The attack: group A can write ~/notes; group B mounts ~/notes/sub. A's agent swaps sub for a link between the
  // host's check and B's mount. So B's mount is refused while any group can write the folder around it.
  it("is refused when another group's (or its own) writable mount holds it; allowed when that mount is read-only", () => {
    const sub = { hostPath: '~/notes/sub', name: 'sub', readOnly: true };
    const check = (other: ExtraMountRequest[], isMain = true) =>
      validateExtraMounts([sub], loaded(), { isMain: false, home, otherGroups: [{ isMain, requests: other }] });

    const refused = check([{ hostPath: '~/notes', name: 'notes' }]);
    assert.equal(refused.mounts.length, 0);
    assert.match(refused.rejected[0]?.reason ?? '', /lies inside .*notes, an extra mount a sandbox can write/);

    assert.equal(check([{ hostPath: '~/notes', name: 'notes', readOnly: true }]).mounts.length, 1, 'a read-only mount around it');
    assert.equal(check([{ hostPath: '~/notes', name: 'notes' }], false).mounts.length, 1, 'non-main groups mount read-only here');
    assert.equal(check([{ hostPath: '~/notes/sub', name: 'same' }]).mounts.length, 1, 'the very same folder cannot be swapped by it');
    assert.equal(check([{ hostPath: '~/archive', name: 'archive' }]).mounts.length, 1, 'a writable mount elsewhere');

    // The group's own writable mount around another of its mounts counts too.
    const own = validateExtraMounts(
      [
        { hostPath: '~/notes', name: 'notes' },
        { hostPath: '~/notes/sub/deeper', name: 'deeper' },
      ],
      loaded(),
      {
        isMain: true,
        home,
      },
    );
    assert.deepEqual(
      own.mounts.map((m) => m.sandboxPath),
      ['/workspace/extra/notes'],
    );
  });
});

// `pincer memory search|show|edit` and the API under them, as the owner uses them: what a group said and its memory
// files, found and printed; another group's never mixed in; a file edited in a scripted $EDITOR and saved, or,
// when the agent wrote it meanwhile, not saved and the owner's copy kept; bad input refused with the reason.
import assert from 'node:assert/strict';
import {
  chmodSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pincer } from './helpers/cli.js';
import { type Harness, startHarness } from './helpers/harness.js';

describe('pincer memory', () => {
  let h: Harness;
  let env: { port: number; home: string };

  const said = (chatId: string, text: string, sentAt: string, sender = 'Owner') =>
    h.pincer.store.messages.insert({
      chatId,
      channel: 'local',
      platformId: `said-${text}`,
      senderId: sender.toLowerCase(),
      senderName: sender,
      text,
      sentAt: Date.parse(sentAt),
      fromAssistant: false,
      engages: false,
    });

  before(async () => {
    h = await startHarness({ env: { PINCER_PREWARM: '0' } });
    env = { port: h.pincer.local.port, home: h.home };
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'local:family', folder: 'family', respondToAll: true });
    h.pincer.store.chats.seen({ id: 'local:main', channel: 'local', isGroup: false }, 0);
    said('local:main', 'We decided the March trip goes to Lisbon', '2025-03-01T10:00:00Z');
    said('local:family', 'The family trip is to the Alps', '2025-03-02T10:00:00Z', 'Grandma');
    const family = join(h.home, 'groups', 'family');
    mkdirSync(join(family, 'memory'), { recursive: true });
    writeFileSync(join(family, 'memory', 'people.md'), '# People\n\nGrandma likes the mountains.\n');
  });
  after(async () => h?.stop());

  test('search finds messages with where and when, in one group or all', async () => {
    const main = await pincer(env, 'memory', 'search', 'trip', '-g', 'main');
    assert.equal(main.code, 0, main.stderr);
    assert.match(main.stdout, /message \d+\s+main\s+2025-03-01 11:00\s+Owner\s+We decided the March \[trip\] goes to Lisbon/);
    assert.doesNotMatch(main.stdout, /Alps/, "another group's message is not mixed in");
    const all = await pincer(env, 'memory', 'search', 'trip', '--group', 'all', '--json');
    assert.equal(all.code, 0, all.stderr);
    const answer = JSON.parse(all.stdout) as { hits: Array<{ chat: string }> };
    assert.deepEqual(answer.hits.map((x) => x.chat).sort(), ['family', 'main']);
  });

  test("search finds a memory file's line; show lists the files and prints one", async () => {
    const found = await pincer(env, 'memory', 'search', 'mountains', '-g', 'family');
    assert.equal(found.code, 0, found.stderr);
    assert.match(found.stdout, /line 3\s+family\s+memory\/people\.md\s+Grandma likes the \[mountains\]/);
    const list = await pincer(env, 'memory', 'show', 'family');
    assert.match(list.stdout, /CLAUDE\.md/);
    assert.match(list.stdout, /memory\/people\.md\s+\d+/);
    const file = await pincer(env, 'memory', 'show', 'family', 'memory/people.md');
    assert.equal(file.stdout, '# People\n\nGrandma likes the mountains.\n');
  });

  test("what a chat or a sandbox wrote reaches the owner's terminal without its control sequences", async () => {
    // OSC 52 would set the clipboard, CSI 2J clear the screen, U+202E turn the rest of the line around.
    said(
      'local:main',
      'the hostile note \u001b]52;c;cm0gLXJmIH4=\u0007\u001b[2J\u202eevil\u202c end',
      '2025-03-03T10:00:00Z',
      'Mallory\u001b[8m',
    );
    const out = await pincer(env, 'memory', 'search', 'hostile', '-g', 'main');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /Mallory\[8m\s+the \[hostile\] note \]52;c;cm0gLXJmIH4=\[2Jevil end/);
    for (const bad of ['\u001b', '\u0007', '\u202e', '\u202c'])
      assert.ok(!out.stdout.includes(bad), `no ${JSON.stringify(bad)} on the terminal`);
  });

  /** An editor: a shell script run on the copy ("$1"), which also notes where the copy was. */
  const editor = (body: string): Record<string, string> => {
    const dir = mkdtempSync(join(tmpdir(), 'pincer-editor-'));
    const script = join(dir, 'edit.sh');
    writeFileSync(script, `#!/bin/sh\nprintf '%s' "$1" > ${join(dir, 'copy-path')}\n${body}\n`);
    chmodSync(script, 0o755);
    return { EDITOR: script, EDITOR_LOG: dir };
  };
  const copyPath = (extra: Record<string, string>) => readFileSync(join(extra.EDITOR_LOG ?? '', 'copy-path'), 'utf8');

  test('edit opens $EDITOR on a private copy and saves what was written; an untouched copy saves nothing', async () => {
    const claude = join(h.home, 'groups', 'family', 'CLAUDE.md');
    const extra = editor(`printf 'Grandma visits in May.\\n' >> "$1"`);
    const out = await pincer({ ...env, extra }, 'memory', 'edit', 'family');
    assert.equal(out.code, 0, out.stderr);
    assert.match(out.stdout, /^saved family\/CLAUDE\.md$/m);
    assert.equal(readFileSync(claude, 'utf8'), '# Memory of this chat (family)\nGrandma visits in May.\n');
    const copy = copyPath(extra);
    assert.match(copy, /\/pincer-memory-[A-Za-z0-9]{6}\/CLAUDE\.md$/, 'a folder of its own, at a name nobody could predict');
    assert.equal(existsSync(dirname(copy)), false, 'the copy is gone once saved');
    const found = await pincer(env, 'memory', 'search', 'May', '-g', 'family');
    assert.match(found.stdout, /line 1\s+family\s+CLAUDE\.md\s+# Memory of this chat \(family\) Grandma visits in \[May\]/);

    const untouched = await pincer(
      { ...env, extra: editor(`test "$(stat -c %a "$(dirname "$1")")" = 700 || exit 9`) },
      'memory',
      'edit',
      'family',
    );
    assert.equal(untouched.code, 0, untouched.stderr);
    assert.match(untouched.stdout, /family\/CLAUDE\.md unchanged: nothing to save/);

    const note = await pincer(
      { ...env, extra: editor(`printf '# Trips\\n\\nAlps in July.\\n' > "$1"`) },
      'memory',
      'edit',
      'family',
      'memory/trips.md',
    );
    assert.equal(note.code, 0, note.stderr);
    assert.equal(readFileSync(join(h.home, 'groups', 'family', 'memory', 'trips.md'), 'utf8'), '# Trips\n\nAlps in July.\n');
  });

  test('edit: when the agent wrote the file meanwhile, nothing is saved and the copy is kept', async () => {
    const claude = join(h.home, 'groups', 'family', 'CLAUDE.md');
    // The "agent" writes the real file while the owner's editor is open.
    const extra = editor(`printf 'the agent wrote this\\n' > '${claude}'\nprintf 'the owner wrote this\\n' >> "$1"`);
    const out = await pincer({ ...env, extra }, 'memory', 'edit', 'family');
    assert.equal(out.code, 1);
    const copy = copyPath(extra);
    assert.match(
      out.stderr,
      /family\/CLAUDE\.md changed meanwhile \(the agent wrote it while you edited\): nothing was saved; your copy is kept at (\S+)\./,
    );
    assert.ok(out.stderr.includes(copy), out.stderr);
    assert.equal(readFileSync(claude, 'utf8'), 'the agent wrote this\n');
    assert.match(readFileSync(copy, 'utf8'), /Grandma visits in May\.\nthe owner wrote this\n$/);
    assert.equal(statSync(dirname(copy)).mode & 0o777, 0o700);

    const failed = await pincer({ ...env, extra: editor(`printf 'half done' >> "$1"; exit 3`) }, 'memory', 'edit', 'family');
    assert.equal(failed.code, 1);
    assert.match(failed.stderr, /the editor exited with status 3: nothing was saved; your copy is kept at/);
    assert.equal(readFileSync(claude, 'utf8'), 'the agent wrote this\n');
    const archiveEditor = editor(`printf 'x' >> "$1"`);
    const archive = await pincer({ ...env, extra: archiveEditor }, 'memory', 'edit', 'family', 'conversations/none.md');
    assert.equal(archive.code, 1);
    assert.match(archive.stderr, /conversations\/none\.md is an archived conversation, the record of what was said: it is read-only/);
    assert.equal(existsSync(join(archiveEditor.EDITOR_LOG ?? '', 'copy-path')), false, 'no editor was opened');
    // A link the sandbox planted at CLAUDE.md: the edit starts empty and the save replaces the link, not its target.
    const hostFile = join(mkdtempSync(join(tmpdir(), 'pincer-host-')), 'host.md');
    writeFileSync(hostFile, 'a host file\n');
    rmSync(claude);
    symlinkSync(hostFile, claude);
    const linked = await pincer({ ...env, extra: editor(`printf '# Family again\\n' >> "$1"`) }, 'memory', 'edit', 'family');
    assert.equal(linked.code, 0, linked.stderr);
    assert.match(linked.stderr, /CLAUDE\.md: is a symbolic link: starting from an empty file, which replaces it when saved/);
    assert.equal(readFileSync(hostFile, 'utf8'), 'a host file\n');
    assert.ok(lstatSync(claude).isFile());
    assert.equal(readFileSync(claude, 'utf8'), '# Family again\n');
    const nobody = await pincer({ ...env, extra: archiveEditor }, 'memory', 'edit', 'nobody');
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /no group has the folder "nobody"/);
    assert.equal(existsSync(join(archiveEditor.EDITOR_LOG ?? '', 'copy-path')), false, 'no editor was opened');
    const outside = await pincer({ ...env, extra: archiveEditor }, 'memory', 'edit', 'family', '../main/CLAUDE.md');
    assert.match(outside.stderr, /"\.\.\/main\/CLAUDE\.md" is not a memory file one can edit/);
  });

  test('bad input is refused with the reason, exit 1', async () => {
    const outside = await pincer(env, 'memory', 'show', 'family', '../main/CLAUDE.md');
    assert.equal(outside.code, 1);
    assert.match(outside.stderr, /is not a memory file/);
    const day = await pincer(env, 'memory', 'search', 'trip', '-g', 'main', '--from', 'March');
    assert.equal(day.code, 1);
    assert.match(day.stderr, /from: must be a day as YYYY-MM-DD/);
    const nobody = await pincer(env, 'memory', 'search', 'trip', '-g', 'nobody');
    assert.match(nobody.stderr, /no group has the folder "nobody"/);
    const noGroup = await h.request('GET', '/api/v1/memory/search?q=trip');
    assert.equal(noGroup.status, 400);
    assert.equal((await h.request('GET', '/api/v1/memory/search?q=trip&group=main', undefined, null)).status, 401);
  });
});

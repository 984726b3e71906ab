// Archiving a transcript into the group folder, host side: both folders are written by the sandbox, so
// planted links and oversized or missing transcripts must not make pincer read or write elsewhere. Also
// which chat messages are commands, and who may send them.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, beforeEach, describe, test } from 'node:test';
import { commandRefusal, mayUseCommands, parseChatCommand } from '../src/service/chat-commands.js';
import {
  type ArchiveRequest,
  type ArchiveResult,
  archiveName,
  archiveTranscript,
  MAX_TRANSCRIPT_BYTES,
  sandboxTranscriptPath,
  stateRelativePath,
} from '../src/service/conversation-archive.js';
import { type HostileLine, writeHostileTranscript } from './helpers/hostile-transcript.js';

const FIXTURE = readFileSync(join(import.meta.dirname, 'fixtures', 'claude-code-transcript.jsonl'), 'utf8');
const SESSION = '25aed90d-83fe-4023-a5c0-2e97e90f6905';
const NOW = Date.UTC(2026, 10, 25, 12, 30);

describe('archiveTranscript', () => {
  const root = mkdtempSync(join(tmpdir(), 'pincer-archive-'));
  let groupDir: string;
  let stateDir: string;
  let request: ArchiveRequest;
  let n = 0;
  beforeEach(() => {
    n++;
    groupDir = join(root, `group-${n}`);
    stateDir = join(root, `state-${n}`);
    const projects = join(stateDir, '.claude', 'projects', '-workspace-group');
    mkdirSync(groupDir, { recursive: true });
    mkdirSync(projects, { recursive: true });
    writeFileSync(join(projects, `${SESSION}.jsonl`), FIXTURE);
    request = {
      groupDir,
      stateDir,
      transcriptPath: sandboxTranscriptPath(SESSION),
      sessionId: SESSION,
      chatId: 'local:main',
      assistantName: 'Andy',
      timeZone: 'Europe/Berlin',
      reason: 'the chat sent /clear',
      now: NOW,
    };
  });
  after(() => rmSync(root, { recursive: true, force: true }));

  test('writes conversations/<local minute>-<session>.md with the conversation, then -2 in the same minute', async () => {
    assert.equal(sandboxTranscriptPath(SESSION), `/home/agent/.claude/projects/-workspace-group/${SESSION}.jsonl`);
    const first = await archiveTranscript(request);
    assert.deepEqual(first, { kind: 'archived', file: 'conversations/2026-11-25-1330-25aed90d.md', messages: 3 });
    const markdown = readFileSync(join(groupDir, 'conversations', '2026-11-25-1330-25aed90d.md'), 'utf8');
    assert.match(
      markdown,
      /^# Conversation archived 2026-11-25 13:30\n\n- Chat: local:main\n- Messages from 2026-11-25 13:27 to 2026-11-25 13:27 \(Europe\/Berlin\)\n- Archived because the chat sent \/clear\n- Session: 25aed90d-/,
    );
    assert.match(markdown, /a question after the summary/);
    const second = await archiveTranscript(request);
    assert.equal(second.kind === 'archived' && second.file, 'conversations/2026-11-25-1330-25aed90d-2.md');
  });

  test('a missing transcript is nothing to archive; a path outside the home or a bad session id is refused', async () => {
    assert.deepEqual(await archiveTranscript({ ...request, transcriptPath: sandboxTranscriptPath('0000'), sessionId: '0000' }), {
      kind: 'empty',
    });
    const outside = await archiveTranscript({ ...request, transcriptPath: '/etc/passwd.jsonl' });
    assert.equal(outside.kind, 'failed');
    const dotdot = await archiveTranscript({ ...request, transcriptPath: '/home/agent/../../etc/x.jsonl' });
    assert.equal(dotdot.kind === 'failed' && /must not contain \.\./.test(dotdot.error), true, JSON.stringify(dotdot));
    const badId = await archiveTranscript({ ...request, sessionId: '../x' });
    assert.deepEqual(badId, { kind: 'failed', error: 'the session id is malformed' });
    assert.ok(!existsSync(join(groupDir, 'conversations')), 'nothing was written');
  });

  test('a transcript that is a link (to a host file) is not read', async () => {
    const secret = join(root, `secret-${n}.jsonl`);
    writeFileSync(secret, '{"type":"user","message":{"content":"HOST-SECRET"}}\n');
    const path = join(stateDir, '.claude', 'projects', '-workspace-group', `${SESSION}.jsonl`);
    rmSync(path);
    symlinkSync(secret, path);
    const result = await archiveTranscript(request);
    assert.equal(result.kind, 'failed', JSON.stringify(result));
    assert.ok(!existsSync(join(groupDir, 'conversations')), 'nothing was written');
    // A link on the way (the agent's whole .claude folder) is refused the same way.
    rmSync(join(stateDir, '.claude'), { recursive: true });
    mkdirSync(join(root, `elsewhere-${n}`, 'projects', '-workspace-group'), { recursive: true });
    writeFileSync(join(root, `elsewhere-${n}`, 'projects', '-workspace-group', `${SESSION}.jsonl`), FIXTURE);
    symlinkSync(join(root, `elsewhere-${n}`), join(stateDir, '.claude'));
    const viaLink = await archiveTranscript(request);
    assert.equal(viaLink.kind === 'failed' && /symbolic link/.test(viaLink.error), true, JSON.stringify(viaLink));
  });

  test('a planted conversations link, or a planted file of the same name, is never written through', async () => {
    const target = join(root, `target-${n}`);
    mkdirSync(target);
    symlinkSync(target, join(groupDir, 'conversations'));
    const viaDir = await archiveTranscript(request);
    assert.equal(viaDir.kind === 'failed' && /symbolic link/.test(viaDir.error), true, JSON.stringify(viaDir));
    assert.deepEqual(readdirSync(target), [], 'nothing landed behind the link');

    rmSync(join(groupDir, 'conversations'));
    mkdirSync(join(groupDir, 'conversations'));
    const victim = join(root, `victim-${n}.txt`);
    writeFileSync(victim, 'untouched');
    symlinkSync(victim, join(groupDir, 'conversations', '2026-11-25-1330-25aed90d.md'));
    const beside = await archiveTranscript(request);
    assert.equal(beside.kind === 'archived' && beside.file, 'conversations/2026-11-25-1330-25aed90d-2.md', JSON.stringify(beside));
    assert.equal(readFileSync(victim, 'utf8'), 'untouched', 'the link target was not written');
  });

  test('names and paths', () => {
    assert.equal(archiveName(NOW, 'UTC', 'ABC-def_123456789', 1), '2026-11-25-1230-abcdef12.md');
    assert.equal(archiveName(NOW, 'Asia/Tokyo', '---', 3), '2026-11-25-2130-session-3.md');
    assert.equal(stateRelativePath('/home/agent/.claude/projects/p/s.jsonl'), '.claude/projects/p/s.jsonl');
    assert.equal(stateRelativePath('/home/agentx/s.jsonl'), undefined);
    assert.equal(stateRelativePath('/home/agent/.claude/settings.json'), undefined);
  });
});

// Issue 16, item 5: the agent writes its own transcript, and the archive reads it on /clear and around every
// compaction. A transcript made to be slow must neither hold pincer's event loop (every group, /healthz) nor
// keep the archive busy without end. The bounds are generous for a loaded 2-core machine; the precise figures
// are in the bench (docs/BENCHMARKS.md, item 8).
describe('archiveTranscript, on a transcript made to be slow', () => {
  const root = mkdtempSync(join(tmpdir(), 'pincer-archive-hostile-'));
  after(() => rmSync(root, { recursive: true, force: true }));
  /** The worst the event loop may lag while the archive runs (the old code: 10 s and more for 1.5 MB). */
  const MAX_LOOP_DELAY_MS = 500;
  /** The archive must be done (archived, or refused with a reason) within this. */
  const MAX_ARCHIVE_MS = 60_000;
  const MB = 1024 * 1024;
  const cases: Array<[string, number, number, HostileLine[]]> = [
    ["the attacker's transcript: a 1.5 MB line of unclosed <message> tags", 1.6 * MB, 1.5 * MB, ['unclosed-messages']],
    ['a 1.5 MB line of unclosed <system-reminder> notes', 1.6 * MB, 1.5 * MB, ['unclosed-notes']],
    ['a 7.5 MB line of unclosed <message> tags (just within the line bound)', 7.6 * MB, 7.5 * MB, ['unclosed-messages']],
    [
      '64 MB (the size bound) of 1 MB hostile lines: unclosed tags, nested arrays, lists of empty objects',
      MAX_TRANSCRIPT_BYTES,
      MB,
      ['unclosed-messages', 'nested-arrays', 'unclosed-notes', 'empty-objects'],
    ],
  ];
  let n = 0;
  /** A group whose agent wrote such a transcript: the archive request for it. */
  const groupWith = (maxBytes: number, lineBytes: number, kinds: HostileLine[]): ArchiveRequest => {
    n++;
    const groupDir = join(root, `group-${n}`);
    const stateDir = join(root, `state-${n}`);
    const projects = join(stateDir, '.claude', 'projects', '-workspace-group');
    mkdirSync(groupDir, { recursive: true });
    mkdirSync(projects, { recursive: true });
    const size = writeHostileTranscript(join(projects, `${SESSION}.jsonl`), maxBytes, lineBytes, kinds);
    assert.ok(size > maxBytes - lineBytes - 2, `the transcript is ${size} bytes`);
    return { ...baseRequest, groupDir, stateDir };
  };
  const baseRequest: Omit<ArchiveRequest, 'groupDir' | 'stateDir'> = {
    transcriptPath: sandboxTranscriptPath(SESSION),
    sessionId: SESSION,
    chatId: 'local:main',
    assistantName: 'Andy',
    timeZone: 'UTC',
    reason: 'the chat sent /clear',
    now: NOW,
  };
  /** Runs the archives, failing the test if they take too long or hold the event loop. */
  const archiveWatched = async (requests: ArchiveRequest[]): Promise<ArchiveResult[]> => {
    const delay = monitorEventLoopDelay({ resolution: 10 });
    delay.enable();
    const started = performance.now();
    const results = await Promise.race([
      Promise.all(requests.map((r) => archiveTranscript(r))),
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`not done after ${MAX_ARCHIVE_MS} ms`)), MAX_ARCHIVE_MS).unref()),
    ]);
    const took = performance.now() - started;
    delay.disable();
    const worst = delay.max / 1e6;
    assert.ok(worst < MAX_LOOP_DELAY_MS, `the event loop was held for ${worst.toFixed(0)} ms (archiving took ${took.toFixed(0)} ms)`);
    return results;
  };
  /** The archive's Markdown, after checking it is bounded and shows the ordinary exchange before the attack. */
  const archived = (request: ArchiveRequest, result: ArchiveResult | undefined): string => {
    assert.equal(result?.kind, 'archived', JSON.stringify(result));
    const file = join(request.groupDir, result?.kind === 'archived' ? result.file : '');
    assert.ok(statSync(file).size < 9 * MB, `the archive is ${statSync(file).size} bytes`);
    const markdown = readFileSync(file, 'utf8');
    assert.match(markdown, /### Prompt · 2026-12-06 19:59\n\nhello\n\n### Andy · 2026-12-06 19:59\n\nHi!\n/);
    return markdown;
  };

  for (const [name, maxBytes, lineBytes, kinds] of cases) {
    test(`${name}: archived in bounded time while the event loop stays free`, async () => {
      const request = groupWith(maxBytes, lineBytes, kinds);
      const [result] = await archiveWatched([request]);
      const markdown = archived(request, result);
      if (kinds.includes('nested-arrays'))
        assert.match(markdown, /^- [\d,]+ transcript line\(s\) over 8 MiB or 100,000 brackets left out unread$/m);
      if (maxBytes > 8 * MB)
        assert.match(markdown, /^- [\d,]+ later message\(s\) left out: an archive holds at most 20,000 messages and 8 MiB of text$/m);
    });
  }

  test("three groups archiving the attacker's transcript at once: each is archived, the event loop stays free", async () => {
    const requests = [1, 2, 3].map(() => groupWith(1.6 * MB, 1.5 * MB, ['unclosed-messages']));
    const results = await archiveWatched(requests);
    for (const [i, r] of requests.entries()) archived(r, results[i]);
  });
});

describe('chat commands', () => {
  test('the whole message must be the command, optionally after the trigger or a mention', () => {
    const cases: Array<[string, string | undefined]> = [
      ['/compact', 'compact'],
      ['  /clear \n', 'clear'],
      ['/COMPACT', 'compact'],
      ['@Andy /compact', 'compact'],
      ['@andy: /clear', 'clear'],
      ['@pincer_bot /clear', 'clear'],
      ['/compact@pincer_bot', 'compact'],
      ['/compact now please', undefined],
      ['please /clear', undefined],
      ['/clearly', undefined],
      ['@Andy', undefined],
      ['', undefined],
    ];
    for (const [text, expected] of cases) assert.equal(parseChatCommand(text, '@Andy'), expected, JSON.stringify(text));
    assert.equal(parseChatCommand('hey andy /compact', 'hey andy'), 'compact', 'a trigger that is not an @mention');
  });

  test('the main group may; elsewhere only senders on a sender allowlist; the refusal says who may', () => {
    assert.equal(mayUseCommands({ isMain: true, senderAllowlist: null }, 'anyone'), true);
    assert.equal(mayUseCommands({ isMain: false, senderAllowlist: null }, 'anyone'), false);
    assert.equal(mayUseCommands({ isMain: false, senderAllowlist: ['alice'] }, 'alice'), true);
    assert.equal(mayUseCommands({ isMain: false, senderAllowlist: ['alice'] }, 'bob'), false);
    assert.match(
      commandRefusal('clear', { senderAllowlist: null }),
      /^⚠️ \/clear works only in the owner's main chat.*This group has no sender allowlist\.$/,
    );
    assert.doesNotMatch(commandRefusal('compact', { senderAllowlist: ['alice'] }), /\n|no sender allowlist/);
  });
});

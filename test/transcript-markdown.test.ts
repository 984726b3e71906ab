// Claude Code's JSONL transcript → readable Markdown, on a real transcript (recorded from a sandboxed
// session against the fake model: a greeting, a Bash call, a send_message call, /compact, one more turn;
// the bulky bookkeeping lines shortened) and on hostile input.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { type TranscriptMarkdownOptions, transcriptToMarkdown } from '../src/agent/transcript-markdown.js';

const REAL = readFileSync(join(import.meta.dirname, 'fixtures', 'claude-code-transcript.jsonl'), 'utf8');
const LINES = REAL.split('\n').filter((l) => l !== '');
const BOUNDARY = LINES.findIndex((l) => (JSON.parse(l) as { subtype?: string }).subtype === 'compact_boundary');
/** What the PreCompact hook sees: the transcript up to the compaction. */
const BEFORE_COMPACTION = `${LINES.slice(0, BOUNDARY).join('\n')}\n`;
const OPTIONS: TranscriptMarkdownOptions = {
  title: 'Conversation archived 2026-11-25 13:30',
  details: ['Chat: local:main'],
  assistantName: 'Andy',
  timeZone: 'Europe/Berlin',
};

test('the fixture is a real transcript with a compaction in it', () => {
  assert.ok(LINES.length > 40, `the fixture has ${LINES.length} lines`);
  assert.ok(BOUNDARY > 0, 'the fixture has a compact_boundary line');
});

test('a conversation becomes a title, details, and one section per chat message and per answer', () => {
  const out = transcriptToMarkdown(BEFORE_COMPACTION, OPTIONS);
  const expected = [
    '# Conversation archived 2026-11-25 13:30',
    '',
    '- Chat: local:main',
    '',
    '---',
    '',
    '### Zoë · 2026-11-25 13:27',
    '',
    'hi there <3 & "you"',
    '',
    '### Andy · 2026-11-25 13:27',
    '',
    'Hello Zoë! <b>bold</b> & fine',
    '',
    '### User · 2026-11-25 13:27',
    '',
    'please list the folder',
    '',
    '### Andy · 2026-11-25 13:27',
    '',
    '→ Bash: ls -la',
    '',
    'The folder has: CLAUDE.md. <internal>checked with ls</internal>',
    '',
    '### User · 2026-11-25 13:27',
    '',
    'report progress',
    '',
    '### Andy · 2026-11-25 13:27',
    '',
    '→ send_message: working on it',
    '',
    'Done, told you.',
    '',
  ].join('\n');
  assert.equal(out.markdown, expected);
  assert.equal(out.messages, 6);
  assert.equal(out.skippedLines, 0);
  assert.ok(out.from !== null && out.to !== null && out.from <= out.to, `from ${out.from} to ${out.to}`);
});

test('tool results, system reminders and bookkeeping lines are left out', () => {
  const { markdown } = transcriptToMarkdown(BEFORE_COMPACTION, OPTIONS);
  assert.ok(REAL.includes('drwx'), 'the transcript holds the ls output');
  assert.doesNotMatch(markdown, /drwx|Message queued|system-reminder|toolu_|prompt_snapshot|<messages|&lt;/);
});

test('after a compaction, the archive starts at the summary and holds only what followed', () => {
  const out = transcriptToMarkdown(REAL, OPTIONS);
  assert.match(
    out.markdown,
    /### Summary of the conversation before · [^\n]+\n\n1\. Primary Request: Zoë greeted me and asked to list the folder\.\n2\. Pending: none\.\n/,
  );
  assert.match(out.markdown, /### Zoë · [^\n]+\n\na question after the summary\n\n### Andy · [^\n]+\n\nStill here\.\n$/);
  assert.doesNotMatch(out.markdown, /please list the folder|If you need specific details|command-name|Compacted/);
  assert.equal(out.messages, 3);
});

test('a line that is not a JSON object is skipped, not fatal', () => {
  const broken = ['{"type":"user","message":', 'not json at all', '[1,2,3]', '42', '"text"', 'null', ''].join('\n');
  const mixed = BEFORE_COMPACTION.replace('\n', `\n${broken}\n`);
  const out = transcriptToMarkdown(mixed, OPTIONS);
  assert.equal(out.skippedLines, 6);
  assert.equal(out.markdown, transcriptToMarkdown(BEFORE_COMPACTION, OPTIONS).markdown);
});

test('entries of any shape are survived: wrong types, subagents, missing fields', () => {
  const lines = [
    { type: 'user', message: { role: 'user', content: 12 } },
    { type: 'user', message: 'not an object' },
    { type: 'assistant', message: { content: [null, 7, { type: 'text', text: 5 }, { type: 'tool_use', name: 3, input: 'x' }] } },
    { type: 'assistant', isSidechain: true, message: { content: [{ type: 'text', text: 'SUBAGENT-TEXT' }] } },
    { type: 'user', isMeta: true, message: { content: 'META-TEXT' } },
    { type: 'user', timestamp: 'yesterday', message: { content: 'plain prompt from a task' } },
    {
      type: 'user',
      message: {
        content:
          '<messages timezone="UTC">\n<message sender="A &amp; B" time="2026-01-02 03:04">x &lt;/message&gt; y</message>\n</messages>',
      },
    },
    { type: 'system', subtype: 'compact_boundary', isSidechain: true },
  ];
  const out = transcriptToMarkdown(lines.map((l) => JSON.stringify(l)).join('\n'), { ...OPTIONS, details: () => ['computed'] });
  assert.doesNotMatch(out.markdown, /SUBAGENT-TEXT|META-TEXT/);
  assert.match(out.markdown, /### Andy\n\n→ tool\n/);
  assert.match(out.markdown, /### Prompt\n\nplain prompt from a task\n/);
  assert.match(out.markdown, /### A & B · 2026-01-02 03:04\n\nx <\/message> y\n/);
  assert.match(out.markdown, /^- computed$/m);
  assert.equal(out.from, null, 'no readable time');
});

test('an empty transcript says so', () => {
  const out = transcriptToMarkdown('', OPTIONS);
  assert.equal(out.messages, 0);
  assert.match(out.markdown, /_No messages\._\n$/);
});

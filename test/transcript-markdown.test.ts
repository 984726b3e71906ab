// Claude Code's JSONL transcript → readable Markdown, on a real transcript (recorded from a sandboxed
// session against the fake model: a greeting, a Bash call, a send_message call, /compact, one more turn;
// the bulky bookkeeping lines shortened) and on hostile input: the same output as the old regular
// expressions, within bounds.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  renderTranscript,
  type TranscriptLimits,
  type TranscriptMarkdownOptions,
  transcriptToMarkdown,
} from '../src/agent/transcript-markdown.js';
import { hostileLine } from './helpers/hostile-transcript.js';

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

// The regular expressions the archive used before issue 16 (quadratic on unclosed tags, so only for small
// inputs): the reference the linear parser must agree with, prompt by prompt.
const OLD_MESSAGE = /<message sender="([^"]*)" time="([^"]*)">([\s\S]*?)<\/message>/g;
const OLD_WRAPPER = /^\s*<messages\b[^>]*>[\s\S]*<\/messages>\s*$/;
const OLD_NOISE = /<system-reminder>[\s\S]*?<\/system-reminder>/g;
const OLD_COMMAND_ECHO =
  /^\s*<(?:command-name|command-message|command-args|local-command-stdout|local-command-stderr|local-command-caveat)>/;
const OLD_ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&apos;': "'", '&amp;': '&' };
const oldUnescape = (s: string) => s.replace(/&(?:lt|gt|quot|apos|amp);/g, (e) => OLD_ENTITIES[e] ?? e);
const oldOneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

/** The body the old code rendered for one prompt without a timestamp. */
function oldPromptBody(prompt: string): string {
  const text = prompt.replace(OLD_NOISE, '').trim();
  if (text === '' || OLD_COMMAND_ECHO.test(text)) return '_No messages._\n';
  const sections: Array<[string, string]> = [];
  if (OLD_WRAPPER.test(text))
    for (const m of text.matchAll(OLD_MESSAGE)) {
      const who = oldOneLine(oldUnescape(m[1] ?? '')) || 'Someone';
      const time = oldOneLine(m[2] ?? '');
      sections.push([`${who}${time ? ` · ${time}` : ''}`, oldUnescape(m[3] ?? '').trim() || '(empty)']);
    }
  if (sections.length === 0) sections.push(['Prompt', text]);
  return `${sections
    .flatMap(([heading, block]) => [`### ${heading}`, '', block, ''])
    .join('\n')
    .trimEnd()}\n`;
}

/** A deterministic pseudo-random sequence (mulberry32), so a failure can be replayed. */
function randomSource(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const PROMPT_PIECES = [
  '<message sender="',
  '" time="',
  '">',
  '</message>',
  '<message sender="Zoë" time="2026-01-02 03:04">',
  '<messages timezone="UTC">',
  '</messages>',
  '<messages',
  '<messagesX>',
  '<system-reminder>',
  '</system-reminder>',
  '"',
  '>',
  '<',
  'a',
  ' ',
  '\n',
  '&amp;',
  '&lt;',
  '<command-name>',
];

test('the linear parser renders every prompt as the old regular expressions did', () => {
  const random = randomSource(16);
  const pick = () => PROMPT_PIECES[Math.floor(random() * PROMPT_PIECES.length)] ?? '';
  for (let i = 0; i < 3000; i++) {
    const middle = Array.from({ length: Math.floor(random() * 24) }, pick).join('');
    // Most prompts in pincer's wrapper, so the message parsing is what gets exercised.
    const prompt = random() < 0.8 ? `${random() < 0.5 ? ' ' : ''}<messages timezone="UTC">${middle}</messages>` : middle;
    const line = JSON.stringify({ type: 'user', message: { role: 'user', content: prompt } });
    const { body } = renderTranscript(Buffer.from(line), OPTIONS);
    assert.equal(body, oldPromptBody(prompt), `prompt ${JSON.stringify(prompt)}`);
  }
});

test("unclosed tags are text: the attacker's 1.5 MB line of <message> tags is one prompt, as before", () => {
  const line = hostileLine('unclosed-messages', 1.5 * 1024 * 1024);
  const out = renderTranscript(Buffer.from(line), OPTIONS);
  assert.equal(out.messages, 1);
  assert.match(
    out.body,
    /^### Prompt · 2026-12-06 21:00\n\n<messages timezone="UTC">\n<message sender="Mallory" time="2026-12-06 20:00">tick /,
  );
  const notes = renderTranscript(Buffer.from(hostileLine('unclosed-notes', 1.5 * 1024 * 1024)), OPTIONS);
  assert.match(notes.body, /^### Prompt · 2026-12-06 21:00\n\n<system-reminder>tick <system-reminder>tick /);
});

describe('bounds', () => {
  const LIMITS: TranscriptLimits = { maxLineBytes: 400, maxLineBrackets: 20, maxLines: 50, maxSections: 4, maxBodyChars: 2_000 };
  const prompt = (content: string, minute = 0) =>
    JSON.stringify({ type: 'user', timestamp: `2026-12-06T10:${String(minute).padStart(2, '0')}:00.000Z`, message: { content } });

  test('a line over the byte or bracket bound is counted and left out unparsed; the rest is shown', () => {
    const lines = [
      prompt('first'),
      prompt(`long ${'x'.repeat(500)}`),
      JSON.stringify({ type: 'user', message: { content: 'nested' }, pad: JSON.parse(`${'['.repeat(30)}${']'.repeat(30)}`) }),
      prompt('last', 5),
    ];
    const out = renderTranscript(Buffer.from(lines.join('\n')), OPTIONS, LIMITS);
    assert.equal(out.oversizedLines, 2);
    assert.equal(out.skippedLines, 0);
    assert.doesNotMatch(out.body, /long|nested/);
    assert.match(out.body, /^### Prompt · 2026-12-06 11:00\n\nfirst\n\n### Prompt · 2026-12-06 11:05\n\nlast\n$/);
  });

  test('lines past the line bound are counted, not read', () => {
    const lines = Array.from({ length: 60 }, (_, i) => (i < 48 ? '' : prompt(`line ${i}`)));
    const out = renderTranscript(Buffer.from(lines.join('\n')), OPTIONS, LIMITS);
    assert.equal(out.messages, 2);
    assert.equal(out.unreadLines, 10);
    assert.match(out.body, /line 48\n\n[\s\S]*line 49\n$/);
  });

  test('sections past the section bound are counted; the shown times end with the last one shown', () => {
    const lines = Array.from({ length: 6 }, (_, i) => prompt(`message ${i}`, i));
    const out = renderTranscript(Buffer.from(lines.join('\n')), OPTIONS, LIMITS);
    assert.equal(out.messages, 4);
    assert.equal(out.leftOutMessages, 2);
    assert.equal(out.to, Date.UTC(2026, 11, 6, 10, 3));
    assert.doesNotMatch(out.body, /message 4/);
  });

  test('the section that reaches the size bound is cut and says so; a compaction starts the bounds afresh', () => {
    const long = JSON.stringify({ type: 'assistant', message: { content: [{ type: 'text', text: 'y'.repeat(390) }] } });
    const lines = [prompt('a'), ...Array.from({ length: 8 }, () => long), prompt('after the cut')];
    const cut = renderTranscript(Buffer.from(lines.join('\n')), OPTIONS, { ...LIMITS, maxLineBytes: 1_000 });
    assert.equal(cut.messages, 2);
    assert.equal(cut.leftOutMessages, 1);
    assert.ok(cut.body.length < LIMITS.maxBodyChars + 200, `the body is ${cut.body.length} characters`);
    assert.match(cut.body, /y…\n\n_\[cut here: the archive holds at most 2,000 characters\]_\n$/);
    const boundary = JSON.stringify({ type: 'system', subtype: 'compact_boundary' });
    const again = renderTranscript(Buffer.from([...lines, boundary, prompt('fresh')].join('\n')), OPTIONS, {
      ...LIMITS,
      maxLineBytes: 1_000,
    });
    assert.deepEqual([again.messages, again.leftOutMessages], [1, 0]);
    assert.match(again.body, /^### Prompt · [^\n]+\n\nfresh\n$/);
  });

  test('a sender name is cut in its heading', () => {
    const wrapped = `<messages timezone="UTC">\n<message sender="${'N'.repeat(1_000)}" time="t">hi</message>\n</messages>`;
    const out = renderTranscript(Buffer.from(prompt(wrapped)), OPTIONS);
    assert.match(out.body, /^### N{199}… · t\n\nhi\n$/);
  });
});

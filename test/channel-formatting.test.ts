// The formatting core under every messenger: Markdown (marked's lexer) to styled text, the cutting of styled text
// into parts that are each formatted on their own, and the platform renderers' edge cases. Each platform's whole
// path (its real client library to its fake) is tested in its own channel-*.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { discordParts } from '../src/channels/format/discord.js';
import { markdownToStyled } from '../src/channels/format/from-markdown.js';
import { signalParts } from '../src/channels/format/signal.js';
import { toSlackMrkdwn } from '../src/channels/format/slack.js';
import { splitStyled } from '../src/channels/format/split-styled.js';
import type { StyledText } from '../src/channels/format/styled.js';
import { telegramParts } from '../src/channels/format/telegram.js';
import { whatsappParts } from '../src/channels/format/whatsapp.js';
import { entityError } from './helpers/fake-telegram.js';

const spans = (styled: StyledText) => styled.spans.map((s) => [s.style, styled.text.slice(s.start, s.end)]);
const read = (markdown: string) => markdownToStyled(markdown, { bullet: '•', links: 'span' });

describe('Markdown to styled text', () => {
  test('nested lists are indented under their item; loose items keep their blank line; task items show boxes', () => {
    const styled = read('- a\n  - **b**\n- c\n\n3. x\n\n   more\n4. y\n\n- [x] done\n- [ ] todo');
    assert.equal(styled.text, '• a\n  • b\n• c\n\n3. x\n\n   more\n\n4. y\n\n• ☑ done\n• ☐ todo');
    assert.deepEqual(spans(styled), [['bold', 'b']]);
  });

  test('links: a label over the address, or the address after it where links are text; a bare address stays', () => {
    assert.deepEqual(spans(read('[docs](https://x.io) and https://y.io')), [['link', 'docs']]);
    assert.equal(read('[docs](https://x.io) and https://y.io').text, 'docs and https://y.io');
    assert.equal(markdownToStyled('[docs](https://x.io)', { bullet: '•', links: 'inline' }).text, 'docs (https://x.io)');
    // An address no app opens as a link stays visible text.
    assert.equal(read('[run](javascript:alert(1))').text, 'run (javascript:alert(1))');
    assert.deepEqual(spans(read('![a chart](https://x.io/c.png)')), [['link', 'a chart']]);
  });

  test('HTML tags and entities, rules, escapes and hard breaks read as a person would see them', () => {
    assert.equal(read('a <b>bold</b> &amp; 2 \\* 3  \nnext\n\n---\n\nend').text, 'a bold & 2 * 3\nnext\n\n———\n\nend');
  });

  test('a table is a monospace block of aligned columns, counted in what a reader sees as characters', () => {
    const styled = read('| a | bb |\n|---|---:|\n| 🇮🇹 | **x** |');
    assert.equal(styled.text, 'a  | bb\n---+---\n🇮🇹 | x');
    assert.deepEqual(spans(styled), [['pre', styled.text]]);
  });
});

describe('cutting styled text into parts', () => {
  const text = (n: number, word: string) => Array.from({ length: n }, () => word).join(' ');

  test('a cut falls outside spans where it can: a bold phrase moves whole into the next part', () => {
    const styled = read(`${text(6, 'aaaa')} **bold phrase here** tail`);
    const parts = splitStyled(styled, 40);
    assert.ok(parts.every((p) => p.text.length <= 40));
    assert.deepEqual(parts.flatMap(spans), [['bold', 'bold phrase here']]);
  });

  test('a span longer than a part is closed in one and opened again in the next', () => {
    const parts = splitStyled(read(`**${text(30, 'word')}**`), 50);
    assert.ok(parts.length >= 3);
    for (const p of parts) assert.deepEqual(spans(p), [['bold', p.text]]);
  });

  test('a code block cut in two keeps its language in each part, cut at a line', () => {
    const code = Array.from({ length: 30 }, (_, i) => `line ${i}`).join('\n');
    const parts = splitStyled(read(`intro\n\n\`\`\`js\n${code}\n\`\`\``), 100);
    const blocks = parts.flatMap((p) => p.spans.filter((s) => s.style === 'pre').map((s) => [s.language, p.text.slice(s.start, s.end)]));
    assert.ok(blocks.length >= 2);
    assert.ok(blocks.every(([language, body]) => language === 'js' && /^line \d+(\nline \d+)*$/.test(body ?? '')));
    assert.equal(blocks.map(([, body]) => body).join('\n'), code);
  });

  test('a hard cut never splits an emoji, and offsets stay in UTF-16 code units', () => {
    const parts = telegramParts(`**${'😀'.repeat(30)}**`, 11);
    assert.ok(parts.every((p) => p.text.length <= 11 && !/^[\uDC00-\uDFFF]|[\uD800-\uDBFF]$/.test(p.text)));
    for (const p of parts) {
      assert.deepEqual(p.entities, [{ type: 'bold', offset: 0, length: p.text.length }]);
      assert.equal(entityError(p.text, p.entities), undefined);
    }
    assert.equal(parts.map((p) => p.text).join(''), '😀'.repeat(30));
  });

  test('markup counts against the limit: every rendered part fits, whatever the markers add', () => {
    const markdown = Array.from({ length: 200 }, (_, i) => `**${i}** _x_ ~~y~~`).join(' ');
    for (const [parts, limit] of [
      [whatsappParts(markdown, 300), 300],
      [discordParts(markdown, 300), 300],
    ] as const) {
      assert.ok(parts.length > 1);
      assert.ok(
        parts.every((p) => p.length <= limit),
        `parts of ${parts.map((p) => p.length).join(', ')}`,
      );
    }
  });
});

describe('platform renderers', () => {
  test('Telegram: nothing it would refuse: a quote around a table or a link loses its look, code in a link is link text', () => {
    const [link] = telegramParts('[`npm test`](https://x.io)', 4096);
    assert.deepEqual(link?.entities, [{ type: 'text_link', offset: 0, length: 8, url: 'https://x.io' }]);
    const [quote] = telegramParts('> **note** [docs](https://x.io)\n>\n> | a |\n> |---|\n> | 1 |', 4096);
    assert.deepEqual(
      quote?.entities.map((e) => e.type),
      ['bold', 'text_link', 'pre'],
    );
    const [plain] = telegramParts('> **note** _here_', 4096);
    assert.deepEqual(
      plain?.entities.map((e) => e.type),
      ['blockquote', 'bold', 'italic'],
    );
    for (const part of [link, quote, plain]) assert.equal(part && entityError(part.text, part.entities), undefined);
  });

  test('Signal: ranges in UTF-16 code units after emoji and CJK text', () => {
    const [part] = signalParts('👩‍👩‍👧 東京 **bold** `code`', 2000);
    assert.equal(part?.text, '👩‍👩‍👧 東京 bold code');
    assert.deepEqual(part?.textStyle, ['12:4:BOLD', '17:4:MONOSPACE']);
  });

  test('WhatsApp and Slack: markers hug the text and never reach over a line break', () => {
    assert.equal(whatsappParts('** spaced ** and *a\nb*', 4000)[0], '** spaced ** and _a_\n_b_');
    assert.equal(toSlackMrkdwn('**bold** text**'), '*bold* text**');
  });

  test('no Markdown syntax survives on any platform, for replies agents write', () => {
    const samples = [
      '# Title\n\nText with **bold**, *it*, ~~del~~ and a [link](https://x.io).',
      '| a | b |\n|---|---|\n| 1 | 2 |',
      '> quoted **bold**\n\n---\n\n1. one\n2. two',
    ];
    for (const md of samples) {
      const shown = [
        ...telegramParts(md, 4096).map((p) => p.text),
        ...signalParts(md, 2000).map((p) => p.text),
        ...whatsappParts(md, 4000),
        toSlackMrkdwn(md),
        ...discordParts(md, 2000),
      ];
      for (const text of shown) {
        for (const syntax of ['##', '|---', '](http', '# Title']) assert.ok(!text.includes(syntax), `${syntax} in ${text}`);
      }
    }
  });
});

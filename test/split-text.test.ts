import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { cutPoint, splitText } from '../src/channels/split-text.js';

describe('splitText', () => {
  test('short text stays whole', () => {
    assert.deepEqual(splitText('hello', 4096), ['hello']);
  });

  test('cuts between paragraphs first, then lines, then sentences, then words', () => {
    assert.deepEqual(splitText('aaaa aaaa\n\nbbbb bbbb', 12), ['aaaa aaaa', 'bbbb bbbb']);
    assert.deepEqual(splitText('aaaa aaaa\nbbbb bbbb', 12), ['aaaa aaaa', 'bbbb bbbb']);
    assert.deepEqual(splitText('One two. Three four.', 12), ['One two.', 'Three four.']);
    assert.deepEqual(splitText('alpha beta gamma', 11), ['alpha beta', 'gamma']);
  });

  test('a word longer than the limit is cut hard, never inside a surrogate pair', () => {
    const parts = splitText(`${'x'.repeat(9)}😀tail`, 10);
    assert.ok(parts.every((p) => p.length <= 10));
    assert.equal(parts.join(''), `${'x'.repeat(9)}😀tail`);
    assert.ok(!parts.some((p) => /[\uD800-\uDBFF]$/.test(p)), 'no part ends in half an emoji');
  });

  test('Telegram-sized limits: every part fits and nothing is lost', () => {
    const text = Array.from({ length: 400 }, (_, i) => `Line ${i}: ${'word '.repeat(i % 30)}`).join('\n');
    const parts = splitText(text, 4096);
    assert.ok(parts.length > 1);
    assert.ok(parts.every((p) => p.length <= 4096));
    assert.equal(parts.join('\n').replace(/\s+/g, ' ').trim(), text.replace(/\s+/g, ' ').trim());
  });

  test('a cut takes the last boundary its first rule accepts, then the next rule, then a hard cut', () => {
    const text = 'aaaa bbbb cccc dddd';
    assert.equal(cutPoint(text, 15, [() => true]), 14);
    assert.equal(cutPoint(text, 15, [(at) => at !== 14]), 9, 'a boundary inside a formatted span is passed over');
    assert.equal(cutPoint(text, 15, [() => false, () => true]), 14);
    assert.equal(cutPoint(text, 15, [() => false]), 15);
  });
});

// The reply being written, as the web page may show it: never a word of an `<internal>` note, not even while
// its tag is half written.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { stripInternal } from '../src/router/outbound.js';
import { MAX_DRAFT_CHARS, ReplyDraft, visibleDraft } from '../src/service/reply-draft.js';

test('a half-written opening tag and an unclosed note are held back', () => {
  assert.equal(visibleDraft('Hello <inte'), 'Hello');
  assert.equal(visibleDraft('Hello <internal>plan: ask'), 'Hello');
  assert.equal(visibleDraft('Hello <internal>plan</internal> world'), 'Hello  world');
  assert.equal(visibleDraft('a < b'), 'a < b');
  assert.equal(visibleDraft('a <'), 'a');
});

test('written piece by piece, each step shows no note, and the end is what the outbox gets', () => {
  const raw = 'Start.\n\n<internal>SECRET</internal>\n\nMiddle <internal>SECRET too</internal>end.';
  for (let size = 1; size <= 7; size++) {
    const draft = new ReplyDraft();
    for (let i = 0; i < raw.length; i += size) {
      draft.append(raw.slice(i, i + size));
      assert.doesNotMatch(draft.visible(), /SECRET|<[a-z/]*$|<internal|internal>/, `after ${i + size} characters`);
    }
    assert.equal(draft.visible(), stripInternal(raw));
  }
});

test('a draft stops growing at its bound, whatever the sandbox sends', () => {
  const draft = new ReplyDraft();
  for (let i = 0; i < 30; i++) draft.append('x'.repeat(10_000));
  assert.equal(draft.visible().length, MAX_DRAFT_CHARS);
});

// A formatted reply cut into parts, each formatted on its own: a cut falls outside every span where it can, and
// a span it must cross (a long code block) is closed in one part and opened again in the next.
import { cutPoint } from '../split-text.js';
import { type StyledText, sliceStyled, trimStyled } from './styled.js';

/**
 * Parts of `styled` whose `measure` (the length the platform counts, after its markup) is at most `limit`.
 * By default the measure is the text's own length (platforms that take styles beside the text).
 */
export function splitStyled(styled: StyledText, limit: number, measure: (part: StyledText) => number = (p) => p.text.length): StyledText[] {
  if (limit < 1) throw new Error(`split limit must be positive, got ${limit}`);
  return cutToFit(styled, limit, limit, measure);
}

function cutToFit(styled: StyledText, cutAt: number, limit: number, measure: (part: StyledText) => number): StyledText[] {
  const parts: StyledText[] = [];
  let rest = trimStyled(styled);
  while (rest.text.length > cutAt) {
    const spans = rest.spans;
    const inside = (at: number, pre: boolean) =>
      spans.some((s) => s.style !== 'quote' && (pre || s.style !== 'pre') && s.start < at && at < s.end);
    // Outside every span first; then inside a code block (at a line, by the boundaries' order); then anywhere.
    const cut = cutPoint(rest.text, cutAt, [(at) => !inside(at, true), (at) => !inside(at, false)]);
    const head = trimStyled(sliceStyled(rest, 0, cut));
    if (head.text) parts.push(head);
    rest = trimStyled(sliceStyled(rest, cut, rest.text.length));
  }
  if (rest.text) parts.push(rest);
  // Markup can make a part longer than its text: such a part is cut again, to a length in proportion.
  return parts.flatMap((part) => {
    const size = measure(part);
    if (size <= limit || part.text.length < 2) return [part];
    const smaller = Math.min(part.text.length - 1, Math.floor((part.text.length * limit) / size));
    return cutToFit(part, Math.max(1, smaller), limit, measure);
  });
}

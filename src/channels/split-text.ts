// Long replies go out in parts no longer than the platform allows, cut where a reader would: between
// paragraphs, else lines, else sentences, else words; a hard cut never splits a character a reader sees as
// one (a surrogate pair, an emoji sequence joined by ZWJ, a letter with its combining marks).

const BOUNDARIES = [/\n\s*\n/g, /\n/g, /(?<=[.!?…])\s+/g, /\s+/g];

export function splitText(text: string, limit: number): string[] {
  if (limit < 1) throw new Error(`split limit must be positive, got ${limit}`);
  const parts: string[] = [];
  let rest = text.trim();
  while (rest.length > limit) {
    const cut = cutPoint(rest, limit, [() => true]);
    const head = rest.slice(0, cut).trimEnd();
    if (head) parts.push(head);
    rest = rest.slice(cut).trimStart();
  }
  if (rest) parts.push(rest);
  return parts;
}

/**
 * Where to end the first part of `text`: the last boundary in its first `limit` characters, in order of
 * preference, that the first rule of `allowed` accepts, else the next rule's; a hard cut as a last resort.
 */
export function cutPoint(text: string, limit: number, allowed: readonly ((at: number) => boolean)[]): number {
  const window = text.slice(0, limit + 1);
  for (const accepts of allowed) {
    for (const boundary of BOUNDARIES) {
      let best = -1;
      for (const m of window.matchAll(boundary)) {
        if (m.index > 0 && m.index <= limit && accepts(m.index)) best = m.index;
      }
      // A boundary in the first third would leave tiny parts: try the next kind instead.
      if (best >= limit / 3) return best;
    }
  }
  return graphemeCut(text, limit);
}

const graphemes = new Intl.Segmenter(undefined, { granularity: 'grapheme' });

/** The last grapheme boundary at or before `limit`; the limit itself only when one grapheme is longer than it. */
function graphemeCut(text: string, limit: number): number {
  let cut = 0;
  // Segments of the window plus one grapheme's worth, so a boundary exactly at `limit` is seen.
  for (const { index } of graphemes.segment(text.slice(0, limit + 64))) {
    if (index > limit) break;
    cut = index;
  }
  if (cut > 0 && limit - cut < 64) return cut;
  const code = text.charCodeAt(limit - 1);
  return code >= 0xd800 && code <= 0xdbff ? limit - 1 : limit;
}

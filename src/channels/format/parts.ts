// The sending of a reply's parts, the same on every platform: the part the outbox asks for, or all of them in
// order; only the first part of a reply answers (quotes, pings) the message it replies to.

export async function sendParts<P>(
  parts: readonly P[],
  which: number | undefined,
  sendOne: (part: P, first: boolean) => Promise<string>,
): Promise<{ platformId: string }> {
  if (parts.length === 0) throw new Error('the reply has no text to send');
  if (which !== undefined && (which < 0 || which >= parts.length))
    throw new Error(`the reply has ${parts.length} parts; there is no part ${which + 1}`);
  const from = which ?? 0;
  const to = which === undefined ? parts.length : which + 1;
  let platformId = '';
  for (let i = from; i < to; i++) platformId = await sendOne(parts[i] as P, i === 0);
  return { platformId };
}

/**
 * `render` remembering its last answer: the outbox asks a channel how many parts a reply has, then for each part
 * in turn, and the reply need not be rendered again for each. The parts are shared: callers must not change them.
 */
export function lastRendered<P>(render: (markdown: string) => readonly P[]): (markdown: string) => readonly P[] {
  let last: { markdown: string; parts: readonly P[] } | undefined;
  return (markdown) => {
    if (last?.markdown !== markdown) last = { markdown, parts: render(markdown) };
    return last.parts;
  };
}

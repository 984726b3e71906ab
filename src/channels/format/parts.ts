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
 * in turn, and the reply need not be rendered again for each. `room`: characters each part leaves free (for a
 * sender's name put in front). The parts are shared: callers must not change them.
 */
export function lastRendered<P>(
  render: (markdown: string, room: number) => readonly P[],
): (markdown: string, room?: number) => readonly P[] {
  let last: { markdown: string; room: number; parts: readonly P[] } | undefined;
  return (markdown, room = 0) => {
    if (last?.markdown !== markdown || last.room !== room) last = { markdown, room, parts: render(markdown, room) };
    return last.parts;
  };
}

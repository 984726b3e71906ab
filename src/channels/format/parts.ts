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

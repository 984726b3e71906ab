// Reads a download no further than a limit: refused at once when the declared length is over it, cut off
// as soon as the bytes read pass it (a lying or missing Content-Length cannot make the host read more).

/** The body of `res` when it is at most `maxBytes`, else undefined (the stream is cancelled either way). */
export async function readBounded(res: Response, maxBytes: number): Promise<Buffer | undefined> {
  if (!res.body) return Buffer.alloc(0);
  const declared = Number(res.headers.get('content-length') ?? Number.NaN);
  if (declared > maxBytes) {
    await res.body.cancel();
    return undefined;
  }
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

// What went wrong with a remote service the host calls (transcription, embeddings), said in one short line that
// may be shown to the agent or the owner: what the service or the network said, flattened and bounded.

export const seconds = (ms: number) => `${Math.round((ms / 1000) * 10) / 10} s`;

/** One line, short, printable: what a service or the network said goes into a reason. */
export const oneLine = (s: string, max = 200) => {
  const flat = s.replace(/[\p{Cc}\p{Zl}\p{Zp}\s]+/gu, ' ').trim();
  return flat.length > max ? `${flat.slice(0, max)}…` : flat;
};

/** Why a request to `service` ("the transcription service") did not get an answer. */
export function unreachableReason(service: string, err: unknown, timeoutMs: number): string {
  if (err instanceof Error && (err.name === 'TimeoutError' || err.name === 'AbortError')) return `timed out after ${seconds(timeoutMs)}`;
  const cause = err instanceof Error ? (err.cause as { code?: unknown; message?: unknown } | undefined) : undefined;
  const detail =
    typeof cause?.code === 'string'
      ? cause.code
      : typeof cause?.message === 'string'
        ? cause.message
        : err instanceof Error
          ? err.message
          : String(err);
  return `${service} is unreachable: ${oneLine(detail)}`;
}

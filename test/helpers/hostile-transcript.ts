// Transcripts an agent can write to make the host's archive slow (issue 16, item 5): lines that look like
// pincer's prompts but whose tags never close, so a lazy `[\s\S]*?` pattern rescans the rest of the line
// from every opening tag, and lines that make JSON.parse build millions of objects.
import { closeSync, openSync, writeSync } from 'node:fs';

export type HostileLine = 'unclosed-messages' | 'unclosed-notes' | 'nested-arrays' | 'empty-objects';

const UNCLOSED_MESSAGE = '<message sender="Mallory" time="2026-12-06 20:00">tick ';
const UNCLOSED_NOTE = '<system-reminder>tick ';

/** One transcript line of about `bytes` bytes (newline not counted). */
export function hostileLine(kind: HostileLine, bytes: number): string {
  if (kind === 'nested-arrays') {
    const depth = Math.max(1, Math.floor(bytes / 2));
    return `${'['.repeat(depth)}${']'.repeat(depth)}`;
  }
  if (kind === 'empty-objects') return `{"type":"user","x":[${'{},'.repeat(Math.max(1, Math.floor(bytes / 3) - 10))}{}]}`;
  // A user prompt in pincer's format, so the archive takes it for chat messages.
  const [open, close, tag] =
    kind === 'unclosed-messages' ? ['<messages timezone="UTC">\n', '\n</messages>', UNCLOSED_MESSAGE] : ['', ' end', UNCLOSED_NOTE];
  const envelope = (content: string) =>
    JSON.stringify({ type: 'user', timestamp: '2026-12-06T20:00:00.000Z', message: { role: 'user', content } });
  const room = bytes - envelope(`${open}${close}`).length;
  const repeats = Math.max(1, Math.floor(room / JSON.stringify(tag).slice(1, -1).length));
  return envelope(`${open}${tag.repeat(repeats)}${close}`);
}

/**
 * Writes a transcript of at most `maxBytes`: one ordinary exchange (so the archive has something real to
 * show), then whole lines of `lineBytes`, cycling through `kinds`, while they fit. Written line by line:
 * nothing of `maxBytes` is held in memory at once.
 */
export function writeHostileTranscript(path: string, maxBytes: number, lineBytes: number, kinds: readonly HostileLine[]): number {
  const fd = openSync(path, 'w');
  try {
    const ordinary = [
      { type: 'user', timestamp: '2026-12-06T19:59:00.000Z', message: { role: 'user', content: 'hello' } },
      { type: 'assistant', timestamp: '2026-12-06T19:59:01.000Z', message: { content: [{ type: 'text', text: 'Hi!' }] } },
    ];
    let written = writeSync(fd, `${ordinary.map((e) => JSON.stringify(e)).join('\n')}\n`);
    const lines = kinds.map((k) => Buffer.from(`${hostileLine(k, lineBytes)}\n`));
    for (let i = 0; ; i++) {
      const line = lines[i % lines.length];
      if (line === undefined || written + line.length > maxBytes) return written;
      written += writeSync(fd, line);
    }
  } finally {
    closeSync(fd);
  }
}

// Media that arrives with a message is saved into the group's folder (`inbox/`), where the agent can open
// it, under a host-made name; the message text gets a line naming each file for the agent.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { SANDBOX_GROUP_DIR } from '../agent/sandbox-spawn.js';
import type { InboundAttachment } from '../channels/types.js';
import { SafeFsError, writeFileInside } from '../sandbox/safe-fs.js';

const EXTENSIONS: Record<string, string> = {
  'image/jpeg': 'jpg',
  'image/png': 'png',
  'image/gif': 'gif',
  'image/webp': 'webp',
  'audio/ogg': 'ogg',
  'audio/mpeg': 'mp3',
  'audio/mp4': 'm4a',
  'audio/x-m4a': 'm4a',
  'audio/aac': 'aac',
  'audio/opus': 'opus',
  'audio/wav': 'wav',
  'audio/x-wav': 'wav',
  'audio/webm': 'webm',
  'audio/flac': 'flac',
  'video/mp4': 'mp4',
  'application/pdf': 'pdf',
};

/** Letters, digits, `.`, `_`, `-` only; no leading dot; short; always with some name. */
export function sanitizeFileName(name: string | undefined, fallback: string): string {
  const base = (name ?? '').split(/[\\/]/).pop() ?? '';
  const clean = base
    .normalize('NFKD')
    .replace(/[^A-Za-z0-9._-]+/g, '_')
    .replace(/^[._-]+/, '')
    .slice(-80);
  return clean || fallback;
}

/** An attachment written into the group's folder. */
export interface SavedAttachment {
  attachment: InboundAttachment;
  /** The file's name inside `inbox/`. */
  fileName: string;
  /** Where the agent finds it, inside its sandbox. */
  sandboxPath: string;
  /** The line naming it in the message text. */
  line: string;
}

/** Writes each attachment under `inbox/`; what was written, with the line to append to the message text. */
export async function saveAttachments(
  groupDir: string,
  platformId: string,
  sentAt: number,
  attachments: InboundAttachment[],
): Promise<SavedAttachment[]> {
  const stamp = new Date(sentAt).toISOString().replace(/[-:]/g, '').replace('T', '-').slice(0, 15);
  // Names depend only on the message: a redelivery finds its files already there.
  const tag = createHash('sha256').update(platformId).digest('hex').slice(0, 6);
  const saved: SavedAttachment[] = [];
  for (const [i, a] of attachments.entries()) {
    const ext = (a.mime && EXTENSIONS[a.mime]) ?? 'bin';
    const fileName = `${stamp}-${tag}-${i + 1}-${sanitizeFileName(a.name, `${a.kind}.${ext}`)}`;
    const relative = join('inbox', fileName);
    try {
      await writeFileInside(groupDir, relative, a.data, { mode: 0o644 });
    } catch (err) {
      if (!(err instanceof SafeFsError && err.code === 'exists')) throw err;
    }
    const size = a.data.length < 1024 ? `${a.data.length} B` : `${Math.round(a.data.length / 1024)} KB`;
    const sandboxPath = `${SANDBOX_GROUP_DIR}/${relative}`;
    saved.push({ attachment: a, fileName, sandboxPath, line: `[${a.kind}${a.mime ? ` ${a.mime}` : ''}, ${size}: ${sandboxPath}]` });
  }
  return saved;
}

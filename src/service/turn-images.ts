// Images that arrive in a chat are shown to the model itself, not only named: a turn whose messages name
// image files saved under `inbox/` carries them as image blocks after its text. The files are hostile (the
// agent can write its folder, and anyone in the chat can send anything): they are read host-side without
// following links, and only what really is a JPEG, PNG, GIF or WebP of a size the API takes is attached.
// Every file stays named in the text, with a note saying whether (and as which image) it is shown.
import { join } from 'node:path';
import type { ImageMediaType, PromptContent, PromptImageBlock } from '../agent/prompt-stream.js';
import { SANDBOX_GROUP_DIR } from '../agent/sandbox-spawn.js';
import { readFileInside, SafeFsError } from '../sandbox/safe-fs.js';
import type { StoredMessage } from '../store/index.js';

const MIB = 1024 * 1024;

/** At most this many images go into one turn; the rest stay named in the text. */
export const MAX_TURN_IMAGES = 8;
/** The API refuses an image whose base64 form is over 5 MB: the largest file that stays within it. */
export const MAX_IMAGE_BYTES = (5 * MIB * 3) / 4;
/** All images of one turn together: a request must stay within the API's 32 MB, the conversation included. */
export const MAX_TURN_IMAGE_BYTES = 12 * MIB;
/** The API refuses an image with a side longer than this. */
export const MAX_IMAGE_SIDE = 8000;
/** Files named as images that are read at most per turn, shown or not (a text can name any number). */
const MAX_EXAMINED = 2 * MAX_TURN_IMAGES;

const INBOX = 'inbox';

/**
 * The line ingest appends for a saved file (src/service/inbox.ts), e.g.
 * `[image image/jpeg, 29 KB: /workspace/group/inbox/20240101-120000-a1b2c3-1-photo.jpg]`, as a whole line.
 * The name must be one ingest makes (time stamp, tag, index, sanitized name): nothing else is looked at.
 */
const NAMED_FILE = new RegExp(
  `^\\[(image|document)(?: ([^\\s,\\]]+))?, \\d+ K?B: ${SANDBOX_GROUP_DIR.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/${INBOX}/` +
    '(\\d{8}-\\d{6}-[0-9a-f]{6}-\\d{1,4}-[A-Za-z0-9._-]{1,80})\\]$',
  'gm',
);

export interface ImageInfo {
  mediaType: ImageMediaType;
  width: number;
  height: number;
}

/**
 * What the bytes are, by their signature and header (never by a file name): a JPEG, PNG, GIF or WebP with
 * its size in pixels, or undefined for anything else, a truncated header included.
 */
export function sniffImage(data: Buffer): ImageInfo | undefined {
  const at = (offset: number, signature: string | number[]) => {
    const bytes = typeof signature === 'string' ? Buffer.from(signature, 'latin1') : Buffer.from(signature);
    return data.length >= offset + bytes.length && data.subarray(offset, offset + bytes.length).equals(bytes);
  };
  const info = (mediaType: ImageMediaType, width: number, height: number): ImageInfo => ({ mediaType, width, height });
  if (at(0, [0xff, 0xd8, 0xff])) {
    const size = jpegSize(data);
    return size && info('image/jpeg', size.width, size.height);
  }
  if (at(0, [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])) {
    return at(12, 'IHDR') && data.length >= 24 ? info('image/png', data.readUInt32BE(16), data.readUInt32BE(20)) : undefined;
  }
  if (at(0, 'GIF87a') || at(0, 'GIF89a')) {
    return data.length >= 10 ? info('image/gif', data.readUInt16LE(6), data.readUInt16LE(8)) : undefined;
  }
  if (at(0, 'RIFF') && at(8, 'WEBP')) {
    if (at(12, 'VP8 ') && at(23, [0x9d, 0x01, 0x2a]) && data.length >= 30)
      return info('image/webp', data.readUInt16LE(26) & 0x3fff, data.readUInt16LE(28) & 0x3fff);
    if (at(12, 'VP8L') && at(20, [0x2f]) && data.length >= 25) {
      const bits = data.readUInt32LE(21);
      return info('image/webp', (bits & 0x3fff) + 1, ((bits >>> 14) & 0x3fff) + 1);
    }
    if (at(12, 'VP8X') && data.length >= 30) return info('image/webp', data.readUIntLE(24, 3) + 1, data.readUIntLE(27, 3) + 1);
  }
  return undefined;
}

/** A JPEG's size from its first frame header (SOF0-15 but DHT, JPG and DAC), walking the segments before it. */
function jpegSize(data: Buffer): { width: number; height: number } | undefined {
  let i = 2;
  while (i + 9 <= data.length) {
    if (data[i] !== 0xff) return undefined;
    const marker = data[i + 1] ?? 0;
    if (marker === 0xff) i += 1;
    else if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) i += 2;
    else if (marker === 0xd9 || marker === 0xda) return undefined;
    else if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc)
      return { width: data.readUInt16BE(i + 7), height: data.readUInt16BE(i + 5) };
    else {
      const length = data.readUInt16BE(i + 2);
      if (length < 2) return undefined;
      i += 2 + length;
    }
  }
  return undefined;
}

/** An image as a Messages API content block, or the note saying why the API would refuse these bytes. */
export function imageBlock(data: Buffer): { block: PromptImageBlock } | { note: string } {
  if (data.length > MAX_IMAGE_BYTES) return { note: `(too large to show, ${megabytes(data.length)} MB)` };
  const info = sniffImage(data);
  if (!info) return { note: '(not shown: not a JPEG, PNG, GIF or WebP image)' };
  const { mediaType, width, height } = info;
  if (width < 1 || height < 1 || width > MAX_IMAGE_SIDE || height > MAX_IMAGE_SIDE)
    return { note: `(not shown: ${width}×${height} pixels; the model takes 1 to ${MAX_IMAGE_SIDE} on each side)` };
  return { block: { type: 'image', source: { type: 'base64', media_type: mediaType, data: data.toString('base64') } } };
}

/** A turn's content: its text alone, or the text block followed by one block per image. */
export function promptContent(text: string, images: readonly PromptImageBlock[]): PromptContent {
  return images.length === 0 ? text : [{ type: 'text', text }, ...images];
}

/** The inbox files a text names as images (ingest's lines only), in order, each once. */
export function namedImageFiles(text: string): string[] {
  const names: string[] = [];
  for (const [, kind, mime, name] of text.matchAll(NAMED_FILE)) {
    if (name && (kind === 'image' || mime?.startsWith('image/')) && !names.includes(name)) names.push(name);
  }
  return names;
}

export interface TurnImages {
  /** The messages, each named image file's line followed by a note: shown as image N, or why not. */
  messages: StoredMessage[];
  /** The images to show, in the order the text names them. */
  images: PromptImageBlock[];
  /** Files named as images that are not shown. */
  notShown: number;
}

/**
 * Reads the images the messages name from `<groupDir>/inbox/` (bounded, never through a link) and notes in
 * each line what became of its file. Never throws: a file that cannot be read stays named, with the reason.
 */
export async function turnImages(groupDir: string, messages: readonly StoredMessage[]): Promise<TurnImages> {
  const notes = new Map<string, string>();
  const images: PromptImageBlock[] = [];
  let examined = 0;
  let total = 0;
  for (const name of messages.flatMap((m) => namedImageFiles(m.text))) {
    if (notes.has(name)) continue;
    if (images.length >= MAX_TURN_IMAGES || examined >= MAX_EXAMINED) {
      const why = images.length >= MAX_TURN_IMAGES ? `more than ${MAX_TURN_IMAGES} images` : 'too many image files named';
      notes.set(name, `(not shown: ${why} in one turn)`);
      continue;
    }
    examined += 1;
    const read = await readImage(groupDir, name);
    const made = typeof read === 'string' ? { note: read } : imageBlock(read);
    if ('note' in made) notes.set(name, made.note);
    else if (total + read.length > MAX_TURN_IMAGE_BYTES)
      notes.set(name, `(not shown: the images before it already fill ${megabytes(total)} MB of this turn)`);
    else {
      images.push(made.block);
      total += read.length;
      notes.set(name, `(shown to you as image ${images.length})`);
    }
  }
  const annotated = messages.map((m) => {
    if (!namedImageFiles(m.text).length) return m;
    return { ...m, text: m.text.replace(NAMED_FILE, (line, _kind, _mime, name: string) => `${line} ${notes.get(name) ?? ''}`.trimEnd()) };
  });
  return { messages: annotated, images, notShown: notes.size - images.length };
}

/** Why a file is not read, in the agent's terms (the errors themselves name host paths). */
const UNREADABLE: Partial<Record<SafeFsError['code'], string>> = {
  missing: 'the file is not there',
  symlink: 'it is a symbolic link',
  'not-file': 'it is not a regular file',
  outside: 'it is outside the chat folder',
};

/** The file's bytes, or the note saying why it is not shown. */
async function readImage(groupDir: string, name: string): Promise<Buffer | string> {
  try {
    return await readFileInside(groupDir, join(INBOX, name), MAX_IMAGE_BYTES);
  } catch (err) {
    if (!(err instanceof SafeFsError)) return '(not shown: it could not be read)';
    if (err.code !== 'too-big') return `(not shown: ${UNREADABLE[err.code] ?? 'it could not be read'})`;
    // The size safe-fs found on the file it opened: looking again by path could follow a folder swapped meanwhile.
    return `(too large to show, ${err.size === undefined ? `over ${megabytes(MAX_IMAGE_BYTES)}` : megabytes(err.size)} MB)`;
  }
}

function megabytes(bytes: number): string {
  return (bytes / MIB).toFixed(1);
}

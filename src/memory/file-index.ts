// A group's memory files in the search index: its CLAUDE.md, its archived conversations (conversations/*.md) and
// notes it keeps in memory/*.md. The folder is written by the sandbox, so it is read as hostile: only regular
// files, never through a link (src/sandbox/safe-fs.ts), each at most MEMORY_FILE_BYTES; a file that changed since
// it was indexed (size or mtime) is read again, one that is gone leaves the index.
import type { Dirent } from 'node:fs';
import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { readFileInside, SafeFsError } from '../sandbox/safe-fs.js';
import type { FilePassage, Store } from '../store/index.js';

export const MEMORY_FILE_BYTES = 2 * 1024 * 1024;
/** The folders of a group folder whose Markdown files are memory (one level deep each). */
export const MEMORY_FOLDERS = ['conversations', 'memory'];
export const MEMORY_ROOT_FILE = 'CLAUDE.md';
/** Lines of one indexed passage at most: a hit points close enough to be read around. */
const PASSAGE_LINES = 30;
/** Files per folder looked at, at most: a folder of a million files must not hold a search. */
const MAX_FILES_PER_FOLDER = 5000;

/** Whether a path inside a group folder names one of its memory files (what get_memory may read). */
export function isMemoryFile(path: string): boolean {
  if (path === MEMORY_ROOT_FILE) return true;
  const parts = path.split('/');
  return parts.length === 2 && MEMORY_FOLDERS.includes(parts[0] ?? '') && (parts[1] ?? '').endsWith('.md') && !parts[1]?.startsWith('.');
}

/** Archived conversations are the record of what was said: read, searched, never edited. */
export const ARCHIVE_FOLDER = 'conversations';

/**
 * Whether a person may save a memory file at `path`: CLAUDE.md or memory/<name>.md, a name of printable characters
 * no longer than a file system allows. Archives are not editable.
 */
export function isEditableMemoryFile(path: string): boolean {
  if (!isMemoryFile(path) || path.startsWith(`${ARCHIVE_FOLDER}/`)) return false;
  const name = path.split('/').at(-1) ?? '';
  return Buffer.byteLength(name) <= 255 && !/[\p{Cc}\\]/u.test(name);
}

export interface Candidate {
  path: string;
  size: number;
  mtimeMs: number;
}

/** A regular file (not a link) at `path` inside the group folder, with its size and mtime. */
async function regularFile(groupDir: string, path: string): Promise<Candidate | undefined> {
  try {
    const st = await lstat(join(groupDir, path));
    return st.isFile() ? { path, size: st.size, mtimeMs: Math.trunc(st.mtimeMs) } : undefined;
  } catch {
    return undefined;
  }
}

/** A group's memory files as they are on disk now: regular files only, with size and mtime. */
export async function candidates(groupDir: string): Promise<Candidate[]> {
  const out: Candidate[] = [];
  const root = await regularFile(groupDir, MEMORY_ROOT_FILE);
  if (root) out.push(root);
  for (const folder of MEMORY_FOLDERS) {
    const st = await lstat(join(groupDir, folder)).catch(() => undefined);
    if (!st?.isDirectory()) continue;
    let entries: Dirent[];
    try {
      entries = await readdir(join(groupDir, folder), { withFileTypes: true });
    } catch {
      continue;
    }
    for (const e of entries.slice(0, MAX_FILES_PER_FOLDER)) {
      if (!e.isFile() || !e.name.endsWith('.md')) continue;
      const file = await regularFile(groupDir, `${folder}/${e.name}`);
      if (file) out.push(file);
    }
  }
  return out;
}

/** Passages: runs of non-blank lines, cut at PASSAGE_LINES; each with the line it starts at. */
export function passages(text: string): FilePassage[] {
  const out: FilePassage[] = [];
  let start = 0;
  let lines: string[] = [];
  const flush = () => {
    if (lines.length > 0) out.push({ line: start, text: lines.join('\n') });
    lines = [];
  };
  text.split('\n').forEach((line, i) => {
    if (line.trim() === '') flush();
    else {
      if (lines.length === 0) start = i + 1;
      lines.push(line);
      if (lines.length === PASSAGE_LINES) flush();
    }
  });
  flush();
  return out;
}

/** Brings the index of groups' memory files up to date; one refresh per group at a time. */
export class FileIndex {
  readonly #store: Store;
  readonly #log: Logger;
  readonly #running = new Map<string, Promise<void>>();
  readonly #onChanged: ((chatId: string) => void) | undefined;

  /** `onChanged`: a refresh changed what is indexed of a chat's files (their vectors follow). */
  constructor(store: Store, log: Logger, onChanged?: (chatId: string) => void) {
    this.#store = store;
    this.#log = log;
    this.#onChanged = onChanged;
  }

  refresh(chatId: string, groupDir: string): Promise<void> {
    const running = this.#running.get(chatId);
    if (running) return running;
    const run = this.#refresh(chatId, groupDir).finally(() => this.#running.delete(chatId));
    this.#running.set(chatId, run);
    return run;
  }

  async #refresh(chatId: string, groupDir: string): Promise<void> {
    const known = this.#store.fileSearch.known(chatId);
    const files = await candidates(groupDir);
    let changed = known.size > files.length;
    for (const f of files) {
      const before = known.get(f.path);
      known.delete(f.path);
      if (before && before.size === f.size && before.mtimeMs === f.mtimeMs) continue;
      changed = true;
      let text: string;
      try {
        text = (await readFileInside(groupDir, f.path, MEMORY_FILE_BYTES)).toString('utf8');
      } catch (err) {
        if (!(err instanceof SafeFsError)) throw err;
        this.#log.debug({ path: f.path, reason: err.reason }, 'a memory file was not indexed');
        this.#store.fileSearch.remove(chatId, f.path);
        continue;
      }
      this.#store.fileSearch.replace(chatId, f.path, { size: f.size, mtimeMs: f.mtimeMs }, passages(text));
    }
    for (const gone of known.keys()) {
      this.#store.fileSearch.remove(chatId, gone);
      changed = true;
    }
    if (changed) this.#onChanged?.(chatId);
  }
}

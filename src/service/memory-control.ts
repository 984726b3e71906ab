// A group's memory as the agents' tools, the HTTP API and the CLI reach it: search what it said and its memory
// files, read around a hit, list, read and save those files. A group reaches its own; the owner and the main
// group any (Control decides who is who). Saving is the owner's and the main group's: a person editing what the
// agent remembers. The folder is written by a hostile sandbox, so every read and write goes through safe-fs.
import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import type { Logger } from '../log.js';
import {
  ARCHIVE_FOLDER,
  FileIndex,
  isEditableMemoryFile,
  isMemoryFile,
  MEMORY_FILE_BYTES,
  candidates as memoryFileCandidates,
} from '../memory/file-index.js';
import {
  MAX_AROUND,
  type MeaningSearch,
  type MemoryQuery,
  MemoryQueryError,
  MemorySearch,
  type MemorySearchResult,
} from '../memory/memory-search.js';
import { formatLocalTime } from '../router/prompt.js';
import { canChangeOwners } from '../sandbox/access.js';
import { readFileInside, replaceFileInside, SafeFsError } from '../sandbox/safe-fs.js';
import type { Group, Store } from '../store/index.js';
import { type Actor, ControlError } from './control-error.js';
import { groupPaths, type StateLayout } from './layout.js';

/** Control's checks of who may act on which group, lent to this part of it. */
export interface GroupAccess {
  isAdmin(actor: Actor): boolean;
  requireAdmin(actor: Actor, what: string): void;
  actingGroup(actor: Actor & { kind: 'group' }): Group;
  groupByFolder(folder: string): Group;
}

export interface MemoryControlDeps {
  store: Store;
  layout: StateLayout;
  /** pincer's `TZ`: times are shown in it where no group's own applies. */
  timezone: string;
  log: Logger;
  access: GroupAccess;
  /** Recall by meaning, when an embeddings endpoint is configured. */
  meaning?: { search: MeaningSearch; filesChanged(chatId: string): void };
}

export interface MemorySearchInput extends MemoryQuery {
  /** A group's folder, or "all"; default: the acting group's own chat. Other than its own: the main group only. */
  group?: string;
}

export interface MemoryMessageView {
  id: string;
  time: string;
  sender: string;
  fromAssistant: boolean;
  text: string;
}

export interface MemoryFileView {
  path: string;
  size: number;
  modifiedAt: string;
  /** CLAUDE.md and memory/*.md; an archived conversation is the record of what was said, never edited. */
  editable: boolean;
}

/** A memory file as read, with the version a save must name to replace it. */
export interface MemoryFileContent {
  path: string;
  text: string;
  version: string;
}

/**
 * The version of a memory file's content: a hash, not mtime and size, so any change the agent makes is seen
 * whatever it does to the clock or the length.
 */
export function memoryFileVersion(content: Uint8Array): string {
  return createHash('sha256').update(content).digest('hex').slice(0, 24);
}

const MIB = MEMORY_FILE_BYTES / (1024 * 1024);

export class MemoryControl {
  readonly #d: MemoryControlDeps;
  readonly #search: MemorySearch;
  readonly #files: FileIndex;

  constructor(deps: MemoryControlDeps) {
    this.#d = deps;
    this.#search = new MemorySearch(deps.store, deps.meaning?.search);
    this.#files = new FileIndex(deps.store, deps.log, deps.meaning?.filesChanged);
  }

  async search(actor: Actor, input: MemorySearchInput): Promise<MemorySearchResult & { searched: string }> {
    const { access } = this.#d;
    const groups = this.#d.store.groups.list();
    const names = new Map(groups.map((g) => [g.chatId, g.folder]));
    let scope: Group[];
    if (input.group === 'all') {
      access.requireAdmin(actor, 'search every group');
      scope = groups;
    } else if (input.group !== undefined) {
      const g = access.groupByFolder(input.group);
      if (actor.kind === 'group' && g.chatId !== actor.chatId) access.requireAdmin(actor, "search other groups' memory");
      scope = [g];
    } else {
      if (actor.kind === 'owner') throw new ControlError('invalid', 'name a group (its folder) or "all"');
      scope = [access.actingGroup(actor)];
    }
    const timeZone = actor.kind === 'group' ? (access.actingGroup(actor).timezone ?? this.#d.timezone) : this.#d.timezone;
    // The memory files as they are now: the agent may have edited its CLAUDE.md in this very turn.
    await Promise.all(scope.map((g) => this.#files.refresh(g.chatId, this.#groupDir(g))));
    try {
      const result = await this.#search.search(
        scope.map((g) => g.chatId),
        input,
        timeZone,
        names,
      );
      return { ...result, searched: input.group === 'all' ? 'all groups' : (scope[0]?.folder ?? '') };
    } catch (err) {
      if (err instanceof MemoryQueryError) throw new ControlError('invalid', err.message);
      throw err;
    }
  }

  /** A group's memory files (for the owner and the main group): path, size, when they last changed. */
  async listFiles(actor: Actor, folder: string): Promise<MemoryFileView[]> {
    this.#d.access.requireAdmin(actor, "see other groups' memory files");
    const g = this.#d.access.groupByFolder(folder);
    const files = await memoryFileCandidates(this.#groupDir(g));
    return files.map((f) => ({
      path: f.path,
      size: f.size,
      modifiedAt: new Date(f.mtimeMs).toISOString(),
      editable: isEditableMemoryFile(f.path),
    }));
  }

  /** A whole memory file of a group (for the owner and the main group), with its version. */
  async readFile(actor: Actor, folder: string, file: string): Promise<MemoryFileContent> {
    this.#d.access.requireAdmin(actor, "read other groups' memory files");
    const content = await this.#read(this.#d.access.groupByFolder(folder), file);
    return { path: file, text: content.toString('utf8'), version: memoryFileVersion(content) };
  }

  /**
   * Saves a memory file of a group (the owner and the main group): CLAUDE.md or memory/*.md, as a whole.
   * `version` is what the reader was given; null saves a file that is not there yet. A file that changed since
   * (the agent wrote it meanwhile) is refused as a conflict, and nothing is written. Returns the new version.
   */
  async writeFile(actor: Actor, folder: string, file: string, text: string, version: string | null): Promise<MemoryFileContent> {
    const { access } = this.#d;
    access.requireAdmin(actor, "change other groups' memory files");
    const g = access.groupByFolder(folder);
    if (isMemoryFile(file) && file.startsWith(`${ARCHIVE_FOLDER}/`))
      throw new ControlError('invalid', `${file} is an archived conversation, the record of what was said: it cannot be edited`);
    if (!isEditableMemoryFile(file))
      throw new ControlError('invalid', `${JSON.stringify(file)} is not a memory file one can save (CLAUDE.md or memory/<name>.md)`);
    const data = checkedText(file, text);
    const groupDir = this.#groupDir(g);
    // Files pincer writes there stay the sandbox's to change: they take the group folder's owner.
    const owner = canChangeOwners() ? await stat(groupDir).then((st) => ({ uid: st.uid, gid: st.gid })) : undefined;
    const written = memoryFileVersion(data);
    try {
      await replaceFileInside(groupDir, file, data, {
        mode: 0o644,
        owner,
        maxCurrentBytes: MEMORY_FILE_BYTES,
        check: (current) => {
          const now = current === undefined ? null : memoryFileVersion(current);
          if (now === version) return;
          throw new ControlError(
            'conflict',
            version === null
              ? `${file} already exists: open it and edit that; nothing was saved`
              : `${file} changed since you opened it (the agent may have written it meanwhile); nothing was saved: open it again and make your change there`,
          );
        },
      });
    } catch (err) {
      if (!(err instanceof SafeFsError)) throw err;
      if (err.code === 'too-big') throw new ControlError('conflict', `${file} is now larger than ${MIB} MiB; nothing was saved`);
      throw new ControlError('invalid', `${file} cannot be saved: ${err.reason}; nothing was saved`);
    }
    this.#d.log.info(
      { folder: g.folder, file, bytes: data.length, by: actor.kind === 'owner' ? 'owner' : actor.chatId },
      'memory file saved',
    );
    // Indexed afresh now, whatever its size and time: the next search finds what was saved.
    this.#d.store.fileSearch.remove(g.chatId, file);
    await this.#files.refresh(g.chatId, groupDir);
    return { path: file, text, version: written };
  }

  /** Lines of a memory file around `line`: a group's own (the main group may name another group's folder). */
  async fileLines(actor: Actor, input: { file: string; line: number; before: number; after: number; group?: string }): Promise<string> {
    const { access } = this.#d;
    const g = input.group === undefined ? undefined : access.groupByFolder(input.group);
    if (g && actor.kind === 'group' && g.chatId !== actor.chatId) access.requireAdmin(actor, "read other groups' memory");
    const group = g ?? (actor.kind === 'group' ? access.actingGroup(actor) : undefined);
    if (!group) throw new ControlError('invalid', 'name a group (its folder)');
    const lines = (await this.#read(group, input.file)).toString('utf8').split('\n');
    const first = Math.max(1, input.line - Math.min(input.before, MAX_AROUND));
    const last = Math.min(lines.length, input.line + Math.min(input.after, MAX_AROUND));
    return lines
      .slice(first - 1, last)
      .map((l, i) => `${first + i}: ${l}`)
      .join('\n');
  }

  /** A stored message and those around it, in its chat; a group sees only its own chat's (the main group any). */
  around(actor: Actor, id: number, before: number, after: number): MemoryMessageView[] {
    const message = this.#d.store.messages.get(id);
    const visible = message && (this.#d.access.isAdmin(actor) || (actor.kind === 'group' && message.chatId === actor.chatId));
    // The same answer for another group's message as for none: a group learns nothing of other chats.
    if (!message || !visible) throw new ControlError('not_found', `there is no message ${id} in this group's memory`);
    const timeZone = this.#d.store.groups.get(message.chatId)?.timezone ?? this.#d.timezone;
    return this.#search.around(message, before, after).map((m) => ({
      id: String(m.seq),
      time: formatLocalTime(m.sentAt, timeZone),
      sender: m.senderName,
      fromAssistant: m.fromAssistant,
      text: m.text,
    }));
  }

  async #read(group: Group, file: string): Promise<Buffer> {
    if (!isMemoryFile(file)) throw new ControlError('invalid', `${file} is not a memory file (CLAUDE.md, conversations/*.md, memory/*.md)`);
    try {
      return await readFileInside(this.#groupDir(group), file, MEMORY_FILE_BYTES);
    } catch (err) {
      if (err instanceof SafeFsError) throw new ControlError('not_found', `${file}: ${err.reason}`);
      throw err;
    }
  }

  #groupDir(g: Group): string {
    return groupPaths(this.#d.layout, g.folder, g.isMain).groupDir;
  }
}

/** The text as the bytes to save: UTF-8 text (no NUL, no lone surrogate), at most MEMORY_FILE_BYTES. */
function checkedText(file: string, text: string): Buffer {
  if (text.includes('\0')) throw new ControlError('invalid', `the text for ${file} contains a NUL character: not text; nothing was saved`);
  if (/\p{Surrogate}/u.test(text))
    throw new ControlError('invalid', `the text for ${file} is not valid Unicode (a lone surrogate); nothing was saved`);
  const data = Buffer.from(text, 'utf8');
  if (data.length > MEMORY_FILE_BYTES)
    throw new ControlError(
      'invalid',
      `the text for ${file} is ${data.length} bytes, over the ${MIB} MiB a memory file may have; nothing was saved`,
    );
  return data;
}

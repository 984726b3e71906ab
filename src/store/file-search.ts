import type { Db } from './db.js';

/** A passage of a group's memory file, as indexed: the line it starts at (1-based) and its text. */
export interface FilePassage {
  line: number;
  text: string;
}

/** What was indexed of a file: to tell whether it changed since. */
export interface IndexedFile {
  size: number;
  mtimeMs: number;
}

export interface FileHit {
  chatId: string;
  path: string;
  line: number;
  snippet: string;
  /** BM25: lower is better. */
  rank: number;
}

/** The full-text index of groups' memory files (`file_search`), one row per passage. */
export class FileSearchTable {
  readonly #known;
  readonly #deletePassages;
  readonly #deleteFile;
  readonly #insertPassage;
  readonly #upsertFile;
  readonly #search;
  readonly #passages;
  readonly #chats;
  readonly #passage;
  readonly #replace: (chatId: string, path: string, file: IndexedFile, passages: FilePassage[]) => void;
  readonly #remove: (chatId: string, path: string) => void;

  constructor(db: Db) {
    this.#known = db.prepare<[string], { path: string; size: number; mtimeMs: number }>(
      'SELECT path, size, mtime_ms AS mtimeMs FROM memory_files WHERE chat_id = ?',
    );
    this.#deletePassages = db.prepare<[string, string]>('DELETE FROM file_search WHERE chat_id = ? AND path = ?');
    this.#deleteFile = db.prepare<[string, string]>('DELETE FROM memory_files WHERE chat_id = ? AND path = ?');
    this.#insertPassage = db.prepare<[string, string, string, number]>(
      'INSERT INTO file_search (text, chat_id, path, line) VALUES (?, ?, ?, ?)',
    );
    this.#upsertFile = db.prepare<[string, string, number, number]>(
      `INSERT INTO memory_files (chat_id, path, size, mtime_ms) VALUES (?, ?, ?, ?)
       ON CONFLICT (chat_id, path) DO UPDATE SET size = excluded.size, mtime_ms = excluded.mtime_ms`,
    );
    this.#search = db.prepare<{ match: string; chats: string; limit: number }, FileHit>(
      `SELECT chat_id AS chatId, path, line, snippet(file_search, 0, '[', ']', '…', 16) AS snippet, bm25(file_search) AS rank
       FROM file_search WHERE file_search MATCH @match AND chat_id IN (SELECT value FROM json_each(@chats))
       ORDER BY rank LIMIT @limit`,
    );
    this.#passages = db.prepare<[string], { path: string; line: number; text: string }>(
      'SELECT path, line, text FROM file_search WHERE chat_id = ?',
    );
    this.#chats = db.prepare<[], { chatId: string }>('SELECT DISTINCT chat_id AS chatId FROM memory_files');
    this.#passage = db.prepare<[string, string, number], { text: string }>(
      'SELECT text FROM file_search WHERE chat_id = ? AND path = ? AND line = ?',
    );
    this.#replace = db.transaction((chatId: string, path: string, file: IndexedFile, passages: FilePassage[]) => {
      this.#deletePassages.run(chatId, path);
      for (const p of passages) this.#insertPassage.run(p.text, chatId, path, p.line);
      this.#upsertFile.run(chatId, path, file.size, file.mtimeMs);
    });
    this.#remove = db.transaction((chatId: string, path: string) => {
      this.#deletePassages.run(chatId, path);
      this.#deleteFile.run(chatId, path);
    });
  }

  /** The files of a group indexed so far, by path inside its folder. */
  known(chatId: string): Map<string, IndexedFile> {
    return new Map(this.#known.all(chatId).map((r) => [r.path, { size: r.size, mtimeMs: r.mtimeMs }]));
  }

  /** A file's passages, replacing what was indexed of it, in one transaction. */
  replace(chatId: string, path: string, file: IndexedFile, passages: FilePassage[]): void {
    this.#replace(chatId, path, file, passages);
  }

  remove(chatId: string, path: string): void {
    this.#remove(chatId, path);
  }

  /** The chats that have memory files indexed. */
  chats(): string[] {
    return this.#chats.all().map((r) => r.chatId);
  }

  /** Every indexed passage of a chat's memory files (to embed them). */
  passages(chatId: string): Array<{ path: string; line: number; text: string }> {
    return this.#passages.all(chatId);
  }

  /** The text of one passage, if it is still indexed. */
  passageText(chatId: string, path: string, line: number): string | undefined {
    return this.#passage.get(chatId, path, line)?.text;
  }

  search(match: string, chatIds: string[], limit: number): FileHit[] {
    return this.#search.all({ match, chats: JSON.stringify(chatIds), limit });
  }
}

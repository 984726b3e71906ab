import type { Db } from './db.js';

/** A message that matched a search, with where it is from. */
export interface MessageHit {
  seq: number;
  chatId: string;
  senderName: string;
  fromAssistant: boolean;
  sentAt: number;
  /** The matching passage, the matched words in [brackets]. */
  snippet: string;
  /** BM25: lower is better. */
  rank: number;
}

export interface MessageSearchQuery {
  /** An FTS5 query (see src/memory/fts-query.ts: never the user's text as it is). */
  match: string;
  /** The chats searched: never empty (a group's own, or the main group's choice). */
  chatIds: string[];
  from?: number;
  to?: number;
  /** Part of the sender's name, any letter case. */
  sender?: string;
  limit: number;
}

interface HitRow {
  seq: number;
  chatId: string;
  senderName: string;
  fromAssistant: number;
  sentAt: number;
  snippet: string;
  rank: number;
}

/**
 * The full-text index of messages (`message_search`). Messages are never changed or deleted once stored, so the
 * index only grows: `up_to` is the newest seq indexed, moved in the same transaction as the batch it covers.
 */
export class MessageSearchTable {
  readonly #search;
  readonly #upTo;
  readonly #batchEnd;
  readonly #index;
  readonly #advance;
  readonly #inTransaction: (batch: number) => number;

  constructor(db: Db) {
    this.#search = db.prepare<{ match: string; chats: string; from: number; to: number; sender: string | null; limit: number }, HitRow>(
      `SELECT m.seq, m.chat_id AS chatId, m.sender_name AS senderName, m.from_assistant AS fromAssistant, m.sent_at AS sentAt,
         snippet(message_search, 0, '[', ']', '…', 16) AS snippet, bm25(message_search) AS rank
       FROM message_search JOIN messages m ON m.seq = message_search.rowid
       WHERE message_search MATCH @match
         AND m.seq <= (SELECT up_to FROM message_search_progress WHERE id = 1)
         AND m.chat_id IN (SELECT value FROM json_each(@chats))
         AND m.sent_at BETWEEN @from AND @to
         AND (@sender IS NULL OR instr(lower(m.sender_name), lower(@sender)) > 0)
       ORDER BY rank LIMIT @limit`,
    );
    this.#upTo = db.prepare<[], { upTo: number }>('SELECT up_to AS upTo FROM message_search_progress WHERE id = 1');
    this.#batchEnd = db.prepare<[number, number], { last: number | null; count: number }>(
      'SELECT MAX(seq) AS last, COUNT(*) AS count FROM (SELECT seq FROM messages WHERE seq > ? ORDER BY seq LIMIT ?)',
    );
    this.#index = db.prepare<[number, number]>(
      'INSERT INTO message_search (rowid, text) SELECT seq, text FROM messages WHERE seq > ? AND seq <= ? ORDER BY seq',
    );
    this.#advance = db.prepare<[number]>('UPDATE message_search_progress SET up_to = ? WHERE id = 1');
    this.#inTransaction = db.transaction((batch: number) => {
      const upTo = this.#upTo.get()?.upTo ?? 0;
      const end = this.#batchEnd.get(upTo, batch);
      if (!end?.last) return 0;
      this.#index.run(upTo, end.last);
      this.#advance.run(end.last);
      return end.count;
    });
  }

  /** Indexes up to `batch` messages not yet indexed, oldest first, in one transaction; how many it indexed. */
  indexNext(batch: number): number {
    return this.#inTransaction(batch);
  }

  search(q: MessageSearchQuery): MessageHit[] {
    return this.#search
      .all({
        match: q.match,
        chats: JSON.stringify(q.chatIds),
        from: q.from ?? 0,
        to: q.to ?? Number.MAX_SAFE_INTEGER,
        sender: q.sender ?? null,
        limit: q.limit,
      })
      .map((r) => ({ ...r, fromAssistant: r.fromAssistant === 1 }));
  }
}

// Recall over what a group has said: keyword search (SQLite FTS5, BM25) over its stored messages, both sides,
// and the messages around a hit. Which chats a search may see is decided by the caller (Control): a group's
// own, or for the main group any or all.
import { formatLocalTime } from '../router/prompt.js';
import { wallToInstant } from '../scheduler/schedule.js';
import type { MessageHit, Store, StoredMessage } from '../store/index.js';
import { toFtsQuery } from './fts-query.js';
import { INDEX_BATCH } from './message-indexer.js';

export const DEFAULT_HITS = 8;
/** Batches a search indexes itself at most before it runs (about 10,000 messages, some 200 ms). */
const CATCH_UP_BATCHES = 20;
export const MAX_HITS = 50;
/** How many messages get_memory shows on each side of a hit at most. */
export const MAX_AROUND = 20;

export interface MemoryQuery {
  text: string;
  /** First and last day searched, `YYYY-MM-DD` in the searcher's time zone. */
  from?: string;
  to?: string;
  sender?: string;
  limit?: number;
}

/** A hit as the agent and the owner see it: where it is from (a message, or a line of a memory file) and the passage. */
export type MemoryHitView =
  | { id: string; chat: string; time: string; sender: string; snippet: string }
  | { file: string; line: number; chat: string; snippet: string };

export interface MemorySearchResult {
  hits: MemoryHitView[];
  /** all: every word matched; any: no message had them all, so these have some. */
  matched: 'all' | 'any' | 'none';
}

const DAY = /^(\d{4})-(\d{2})-(\d{2})$/;

/** The first (or, with `end`, the last) millisecond of a calendar day in a time zone. */
function dayBound(value: string, timeZone: string, end: boolean): number {
  const m = DAY.exec(value.trim());
  if (!m) throw new MemoryQueryError(`"${value}" is not a day: use YYYY-MM-DD`);
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const wall = Date.UTC(year, month - 1, day + (end ? 1 : 0));
  if (new Date(Date.UTC(year, month - 1, day)).getUTCDate() !== day) throw new MemoryQueryError(`${value} is not a date`);
  return wallToInstant(timeZone, wall) - (end ? 1 : 0);
}

export class MemoryQueryError extends Error {}

export class MemorySearch {
  readonly #store: Store;

  constructor(store: Store) {
    this.#store = store;
  }

  /** Searches the given chats; `names` says how a chat is shown (its group folder). */
  search(chatIds: string[], q: MemoryQuery, timeZone: string, names: ReadonlyMap<string, string>): MemorySearchResult {
    const fts = toFtsQuery(q.text);
    if (!fts) throw new MemoryQueryError('the query has no words to search for');
    const from = q.from === undefined ? undefined : dayBound(q.from, timeZone, false);
    const to = q.to === undefined ? undefined : dayBound(q.to, timeZone, true);
    if (from !== undefined && to !== undefined && from > to) throw new MemoryQueryError(`from ${q.from} is after to ${q.to}`);
    const limit = Math.min(Math.max(1, q.limit ?? DEFAULT_HITS), MAX_HITS);
    // What the indexer has not reached yet (messages of the last few milliseconds) is indexed now; bounded, so a
    // search right after an upgrade of a large store does not hold the event loop while the indexer builds it.
    for (let i = 0; i < CATCH_UP_BATCHES && this.#store.messageSearch.indexNext(INDEX_BATCH) === INDEX_BATCH; i++);
    const base = { chatIds, from, to, sender: q.sender, limit };
    // Files have no time or sender: a search narrowed by either is of messages only.
    const withFiles = from === undefined && to === undefined && q.sender === undefined;
    const chat = (chatId: string) => names.get(chatId) ?? chatId;
    const run = (match: string): MemoryHitView[] => {
      const messages = this.#store.messageSearch.search({ ...base, match }).map((h) => ({ rank: h.rank, view: messageView(h) }));
      const files = withFiles
        ? this.#store.fileSearch.search(match, chatIds, limit).map((h) => ({
            rank: h.rank,
            view: { file: h.path, line: h.line, chat: chat(h.chatId), snippet: h.snippet },
          }))
        : [];
      return [...messages, ...files]
        .sort((a, b) => a.rank - b.rank)
        .slice(0, limit)
        .map((h) => h.view);
    };
    const messageView = (h: MessageHit): MemoryHitView => ({
      id: String(h.seq),
      chat: chat(h.chatId),
      time: formatLocalTime(h.sentAt, timeZone),
      sender: h.senderName,
      snippet: h.snippet,
    });
    const all = run(fts.all);
    if (all.length > 0 || fts.terms === 1) return { hits: all, matched: all.length > 0 ? 'all' : 'none' };
    const any = run(fts.any);
    return { hits: any, matched: any.length > 0 ? 'any' : 'none' };
  }

  /** The messages around one, in its chat: `before` earlier ones, it, `after` later ones. */
  around(message: StoredMessage, before: number, after: number): StoredMessage[] {
    const b = Math.min(Math.max(0, before), MAX_AROUND);
    const a = Math.min(Math.max(0, after), MAX_AROUND);
    const earlier = this.#store.messages.before(message.chatId, message.seq, b);
    const later = this.#store.messages.after(message.chatId, message.seq, a);
    return [...earlier, message, ...later];
  }
}

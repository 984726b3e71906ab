// Recall over what a group has said and written: keyword search (SQLite FTS5, BM25) over its stored messages,
// both sides, and its memory files; with an embeddings endpoint also by meaning (nearest vectors), the two lists
// merged by reciprocal rank fusion with a slight preference for what is recent. And the messages around a hit.
// Which chats a search may see is decided by the caller (Control): a group's own, or for the main group any or all.
import { formatLocalTime } from '../router/prompt.js';
import { wallToInstant } from '../scheduler/schedule.js';
import type { Store, StoredMessage } from '../store/index.js';
import type { MemoryVectors } from '../store/memory-vectors.js';
import type { EmbeddingsClient } from './embeddings-client.js';
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
  /** all: every word matched; any: no message had them all, so these have some (keywords; meaning aside). */
  matched: 'all' | 'any' | 'none';
  /** hybrid: keywords and meaning; keywords: keywords alone (no endpoint, or why not in `meaningSkipped`). */
  mode: 'hybrid' | 'keywords';
  meaningSkipped?: string;
}

/** Recall by meaning: where vectors are kept and how a query becomes one. */
export interface MeaningSearch {
  vectors: MemoryVectors;
  client: EmbeddingsClient;
}

/** Reciprocal rank fusion's constant: a hit's share is 1 / (RRF_K + its rank in a list). */
const RRF_K = 60;
/** Candidates taken from each list, per hit asked for. */
const CANDIDATES_PER_HIT = 4;
/**
 * Recency is a third list, newest first (memory files, which say what holds now, before every message), at this
 * weight: it decides between hits that rank alike, never against a clearly better one (a hit first by meaning and
 * last by date still beats one second by meaning and first by date).
 */
const RECENCY_WEIGHT = 0.25;
/** A query waits this long for its own vector before it is answered on keywords alone. */
const QUERY_EMBED_MS = 5_000;
const SNIPPET_CHARS = 200;

/** A candidate of either list, with what it needs for its view. */
type Candidate =
  | { key: string; kind: 'message'; seq: number; chatId: string; sentAt: number; senderName: string; snippet: string }
  | { key: string; kind: 'file'; chatId: string; path: string; line: number; snippet: string };

const cut = (text: string) => {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length > SNIPPET_CHARS ? `${flat.slice(0, SNIPPET_CHARS)}…` : flat;
};

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

interface SearchScope {
  chatIds: string[];
  from: number | undefined;
  to: number | undefined;
  sender: string | undefined;
  withFiles: boolean;
}

const fileKey = (chatId: string, path: string, line: number) => `f:${chatId}:${line}:${path}`;

function messageCandidate(m: { seq: number; chatId: string; sentAt: number; senderName: string }, snippet: string): Candidate {
  return { key: `m:${m.seq}`, kind: 'message', seq: m.seq, chatId: m.chatId, sentAt: m.sentAt, senderName: m.senderName, snippet };
}

export class MemorySearch {
  readonly #store: Store;
  readonly #meaning: MeaningSearch | undefined;

  constructor(store: Store, meaning?: MeaningSearch) {
    this.#store = store;
    this.#meaning = meaning;
  }

  /** Searches the given chats; `names` says how a chat is shown (its group folder). */
  async search(chatIds: string[], q: MemoryQuery, timeZone: string, names: ReadonlyMap<string, string>): Promise<MemorySearchResult> {
    const fts = toFtsQuery(q.text);
    if (!fts) throw new MemoryQueryError('the query has no words to search for');
    const from = q.from === undefined ? undefined : dayBound(q.from, timeZone, false);
    const to = q.to === undefined ? undefined : dayBound(q.to, timeZone, true);
    if (from !== undefined && to !== undefined && from > to) throw new MemoryQueryError(`from ${q.from} is after to ${q.to}`);
    const limit = Math.min(Math.max(1, q.limit ?? DEFAULT_HITS), MAX_HITS);
    // What the indexer has not reached yet (messages of the last few milliseconds) is indexed now; bounded, so a
    // search right after an upgrade of a large store does not hold the event loop while the indexer builds it.
    for (let i = 0; i < CATCH_UP_BATCHES && this.#store.messageSearch.indexNext(INDEX_BATCH) === INDEX_BATCH; i++);
    // Files have no time or sender: a search narrowed by either is of messages only.
    const withFiles = from === undefined && to === undefined && q.sender === undefined;
    const scope = { chatIds, from, to, sender: q.sender, withFiles };
    const chat = (chatId: string) => names.get(chatId) ?? chatId;
    const view = (c: Candidate): MemoryHitView =>
      c.kind === 'message'
        ? { id: String(c.seq), chat: chat(c.chatId), time: formatLocalTime(c.sentAt, timeZone), sender: c.senderName, snippet: c.snippet }
        : { file: c.path, line: c.line, chat: chat(c.chatId), snippet: c.snippet };

    const pool = this.#meaning ? limit * CANDIDATES_PER_HIT : limit;
    let keywords = this.#keywords(fts.all, scope, pool);
    let matched: MemorySearchResult['matched'] = keywords.length > 0 ? 'all' : 'none';
    if (keywords.length === 0 && fts.terms > 1) {
      keywords = this.#keywords(fts.any, scope, pool);
      matched = keywords.length > 0 ? 'any' : 'none';
    }
    const meaning = await this.#byMeaning(q.text, scope, pool);
    if (!Array.isArray(meaning)) {
      const hits = keywords.slice(0, limit).map(view);
      return { hits, matched, mode: 'keywords', ...(meaning.skipped ? { meaningSkipped: meaning.skipped } : {}) };
    }
    return { hits: this.#fuse([keywords, meaning]).slice(0, limit).map(view), matched, mode: 'hybrid' };
  }

  /** Keyword candidates, messages and file passages merged by BM25, best first. */
  #keywords(match: string, s: SearchScope, pool: number): Candidate[] {
    const messages = this.#store.messageSearch
      .search({ chatIds: s.chatIds, from: s.from, to: s.to, sender: s.sender, limit: pool, match })
      .map((h) => ({ rank: h.rank, candidate: messageCandidate(h, h.snippet) }));
    const files = s.withFiles
      ? this.#store.fileSearch.search(match, s.chatIds, pool).map((h) => ({
          rank: h.rank,
          candidate: {
            key: fileKey(h.chatId, h.path, h.line),
            kind: 'file' as const,
            chatId: h.chatId,
            path: h.path,
            line: h.line,
            snippet: h.snippet,
          },
        }))
      : [];
    return [...messages, ...files]
      .sort((a, b) => a.rank - b.rank)
      .slice(0, pool)
      .map((h) => h.candidate);
  }

  /** Candidates by meaning, nearest first; or why there are none (no endpoint is not a reason worth saying). */
  async #byMeaning(text: string, s: SearchScope, pool: number): Promise<Candidate[] | { skipped?: string }> {
    const meaning = this.#meaning;
    if (!meaning) return {};
    if (meaning.vectors.space()?.model !== meaning.client.model) return { skipped: 'the first vectors are still being made' };
    let query: Float32Array | undefined;
    try {
      [query] = await meaning.client.embed([text], AbortSignal.timeout(QUERY_EMBED_MS));
    } catch (err) {
      return { skipped: err instanceof Error ? err.message : String(err) };
    }
    if (!query) return { skipped: 'the embeddings service answered no vector' };
    const near: Array<{ distance: number; candidate: Candidate }> = [];
    for (const hit of meaning.vectors.nearestMessages(query, s.chatIds, s.from ?? 0, s.to ?? Number.MAX_SAFE_INTEGER, pool)) {
      const m = this.#store.messages.get(hit.seq);
      if (!m) continue;
      if (s.sender !== undefined && !m.senderName.toLowerCase().includes(s.sender.toLowerCase())) continue;
      near.push({ distance: hit.distance, candidate: messageCandidate(m, cut(m.text)) });
    }
    if (s.withFiles)
      for (const hit of meaning.vectors.nearestPassages(query, s.chatIds, pool)) {
        const passage = this.#store.fileSearch.passageText(hit.chatId, hit.path, hit.line);
        if (passage === undefined) continue;
        near.push({
          distance: hit.distance,
          candidate: {
            key: fileKey(hit.chatId, hit.path, hit.line),
            kind: 'file',
            chatId: hit.chatId,
            path: hit.path,
            line: hit.line,
            snippet: cut(passage),
          },
        });
      }
    return near.sort((a, b) => a.distance - b.distance).map((n) => n.candidate);
  }

  /**
   * Reciprocal rank fusion: a candidate's score is the sum over the lists it is in of weight / (RRF_K + rank).
   * A keyword hit keeps its marked snippet (the keyword list comes first).
   */
  #fuse(lists: Candidate[][]): Candidate[] {
    const scored = new Map<string, { candidate: Candidate; score: number }>();
    const add = (list: Candidate[], weight: number) =>
      list.forEach((candidate, rank) => {
        const share = weight / (RRF_K + rank + 1);
        const entry = scored.get(candidate.key);
        if (entry) entry.score += share;
        else scored.set(candidate.key, { candidate, score: share });
      });
    for (const list of lists) add(list, 1);
    const newest = [...scored.values()]
      .map((e) => e.candidate)
      .sort(
        (a, b) => (b.kind === 'file' ? Number.POSITIVE_INFINITY : b.sentAt) - (a.kind === 'file' ? Number.POSITIVE_INFINITY : a.sentAt),
      );
    add(newest, RECENCY_WEIGHT);
    return [...scored.values()].sort((a, b) => b.score - a.score).map((e) => e.candidate);
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

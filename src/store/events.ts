import type { StoreChanges } from './changes.js';
import type { Db } from './db.js';

/** The stages a message passes; a trace is these in order. */
export type Stage =
  | 'received'
  | 'scheduled'
  | 'duplicate'
  | 'engaged'
  | 'ignored'
  | 'over_budget'
  | 'queued'
  | 'spawned'
  | 'prompted'
  /** Not shown to the agent: more unanswered messages waited than one turn carries. */
  | 'omitted'
  | 'model_request'
  | 'tool'
  | 'replied'
  | 'turn_failed'
  | 'delivered'
  | 'delivery_retry'
  | 'delivery_failed'
  /** A chat command (/compact, /clear), or a compaction, was carried out or refused. */
  | 'command'
  /** The conversation's transcript was archived into the group folder (or could not be). */
  | 'archived';

export interface TraceEvent {
  messageSeq: number | null;
  chatId: string;
  stage: Stage;
  detail: string | null;
  at: number;
}

interface EventRow {
  message_seq: number | null;
  chat_id: string;
  stage: Stage;
  detail: string | null;
  at: number;
}

export class EventTable {
  readonly #insert;
  readonly #forMessage;
  readonly #omitted;
  readonly #attempt;
  readonly #changes: StoreChanges;

  constructor(db: Db, changes: StoreChanges) {
    this.#changes = changes;
    this.#insert = db.prepare<[number | null, string, string, string | null, number]>(
      'INSERT INTO events (message_seq, chat_id, stage, detail, at) VALUES (?, ?, ?, ?, ?)',
    );
    this.#forMessage = db.prepare<[number], EventRow>('SELECT * FROM events WHERE message_seq = ? ORDER BY id');
    this.#attempt = db.prepare<[string, number, number], { stage: 'prompted' | 'tool'; detail: string | null }>(
      `SELECT stage, detail FROM events WHERE chat_id = ? AND message_seq BETWEEN ? AND ? AND stage IN ('prompted', 'tool') ORDER BY id`,
    );
    this.#omitted = db.prepare<{ chatId: string; after: number; before: number; detail: string; at: number }>(
      `INSERT INTO events (message_seq, chat_id, stage, detail, at)
       SELECT seq, chat_id, 'omitted', @detail, @at FROM messages
       WHERE chat_id = @chatId AND seq > @after AND seq < @before AND from_assistant = 0`,
    );
  }

  record(e: TraceEvent): void {
    this.#insert.run(e.messageSeq, e.chatId, e.stage, e.detail, e.at);
    this.#changes.emit('event', e);
  }

  /** Records `omitted` for every inbound message of a chat between two seqs (exclusive); returns how many. */
  recordOmitted(chatId: string, after: number, before: number, detail: string, at: number): number {
    const count = this.#omitted.run({ chatId, after, before, detail, at }).changes;
    if (count > 0) this.#changes.emit('event', { messageSeq: null, chatId, stage: 'omitted', detail, at });
    return count;
  }

  /**
   * What an earlier attempt at a turn over these messages did: undefined when none was prompted (the usual case:
   * a turn's messages are answered once, its cursor moving past them), else the tool calls its trace has.
   */
  earlierAttempt(chatId: string, firstSeq: number, lastSeq: number): { toolCalls: string[] } | undefined {
    const rows = this.#attempt.all(chatId, firstSeq, lastSeq);
    if (!rows.some((r) => r.stage === 'prompted')) return undefined;
    return { toolCalls: rows.flatMap((r) => (r.stage === 'tool' && r.detail ? [r.detail] : [])) };
  }

  trace(messageSeq: number): TraceEvent[] {
    return this.#forMessage
      .all(messageSeq)
      .map((r) => ({ messageSeq: r.message_seq, chatId: r.chat_id, stage: r.stage, detail: r.detail, at: r.at }));
  }
}

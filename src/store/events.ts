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
  | 'model_request'
  | 'tool'
  | 'replied'
  | 'turn_failed'
  | 'delivered'
  | 'delivery_retry'
  | 'delivery_failed';

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
  readonly #changes: StoreChanges;

  constructor(db: Db, changes: StoreChanges) {
    this.#changes = changes;
    this.#insert = db.prepare<[number | null, string, string, string | null, number]>(
      'INSERT INTO events (message_seq, chat_id, stage, detail, at) VALUES (?, ?, ?, ?, ?)',
    );
    this.#forMessage = db.prepare<[number], EventRow>('SELECT * FROM events WHERE message_seq = ? ORDER BY id');
  }

  record(e: TraceEvent): void {
    this.#insert.run(e.messageSeq, e.chatId, e.stage, e.detail, e.at);
    this.#changes.emit('event', e);
  }

  trace(messageSeq: number): TraceEvent[] {
    return this.#forMessage
      .all(messageSeq)
      .map((r) => ({ messageSeq: r.message_seq, chatId: r.chat_id, stage: r.stage, detail: r.detail, at: r.at }));
  }
}

import { EventEmitter } from 'node:events';
import type { Db } from './db.js';

export interface StoredMessage {
  seq: number;
  chatId: string;
  channel: string;
  platformId: string;
  senderId: string;
  senderName: string;
  text: string;
  sentAt: number;
  fromAssistant: boolean;
  engages: boolean;
  /** The platform thread the message is in (a Slack thread): its answer goes there. */
  threadId?: string | null;
}

export type NewMessage = Omit<StoredMessage, 'seq'>;

interface MessageRow {
  seq: number;
  chat_id: string;
  channel: string;
  platform_id: string;
  sender_id: string;
  sender_name: string;
  text: string;
  sent_at: number;
  from_assistant: number;
  engages: number;
  thread_id: string | null;
}

const toMessage = (r: MessageRow): StoredMessage => ({
  seq: r.seq,
  chatId: r.chat_id,
  channel: r.channel,
  platformId: r.platform_id,
  senderId: r.sender_id,
  senderName: r.sender_name,
  text: r.text,
  sentAt: r.sent_at,
  fromAssistant: r.from_assistant === 1,
  engages: r.engages === 1,
  threadId: r.thread_id,
});

export class MessageTable {
  /** Emits `appended` with the chat id after a new message is stored (never for a duplicate). */
  readonly changes = new EventEmitter<{ appended: [chatId: string] }>();
  readonly #insert;
  readonly #byPlatformId;
  readonly #get;
  readonly #after;
  readonly #before;
  readonly #latest;
  readonly #pendingInput;
  readonly #hasEngaging;
  readonly #maxSeq;

  constructor(db: Db) {
    this.changes.setMaxListeners(0);
    this.#insert = db.prepare<[string, string, string, string, string, string, number, number, number, string | null], { seq: number }>(
      `INSERT INTO messages (chat_id, channel, platform_id, sender_id, sender_name, text, sent_at, from_assistant, engages, thread_id)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (chat_id, platform_id) DO NOTHING RETURNING seq`,
    );
    this.#byPlatformId = db.prepare<[string, string], MessageRow>('SELECT * FROM messages WHERE chat_id = ? AND platform_id = ?');
    this.#get = db.prepare<[number], MessageRow>('SELECT * FROM messages WHERE seq = ?');
    this.#after = db.prepare<[string, number, number], MessageRow>(
      'SELECT * FROM messages WHERE chat_id = ? AND seq > ? ORDER BY seq LIMIT ?',
    );
    this.#before = db.prepare<[string, number, number], MessageRow>(
      'SELECT * FROM messages WHERE chat_id = ? AND seq < ? ORDER BY seq DESC LIMIT ?',
    );
    this.#latest = db.prepare<[string, number], MessageRow>('SELECT * FROM messages WHERE chat_id = ? ORDER BY seq DESC LIMIT ?');
    // The newest inbound messages after the cursor, newest first (the caller restores their order).
    this.#pendingInput = db.prepare<[string, number, number], MessageRow>(
      'SELECT * FROM messages WHERE chat_id = ? AND seq > ? AND from_assistant = 0 ORDER BY seq DESC LIMIT ?',
    );
    this.#hasEngaging = db.prepare<[string, number], { seq: number }>(
      'SELECT seq FROM messages WHERE chat_id = ? AND seq > ? AND engages = 1 LIMIT 1',
    );
    this.#maxSeq = db.prepare<[string], { seq: number | null }>('SELECT MAX(seq) AS seq FROM messages WHERE chat_id = ?');
  }

  /** Stores a message unless the platform already delivered it; returns its seq and whether it is new. */
  insert(m: NewMessage): { seq: number; duplicate: boolean } {
    const row = this.#insert.get(
      m.chatId,
      m.channel,
      m.platformId,
      m.senderId,
      m.senderName,
      m.text,
      m.sentAt,
      m.fromAssistant ? 1 : 0,
      m.engages ? 1 : 0,
      m.threadId ?? null,
    );
    if (row) {
      this.changes.emit('appended', m.chatId);
      return { seq: row.seq, duplicate: false };
    }
    const existing = this.#byPlatformId.get(m.chatId, m.platformId);
    if (!existing) throw new Error(`message ${m.chatId}/${m.platformId} was neither inserted nor found`);
    return { seq: existing.seq, duplicate: true };
  }

  get(seq: number): StoredMessage | undefined {
    const row = this.#get.get(seq);
    return row && toMessage(row);
  }

  /** A chat's messages (both directions) after a seq, oldest first. */
  /** Up to `limit` messages of a chat just before `seq`, oldest first. */
  before(chatId: string, seq: number, limit: number): StoredMessage[] {
    return this.#before.all(chatId, seq, limit).map(toMessage).reverse();
  }

  after(chatId: string, seq: number, limit: number): StoredMessage[] {
    return this.#after.all(chatId, seq, limit).map(toMessage);
  }

  /** A chat's newest `limit` messages (both directions), oldest first. */
  latest(chatId: string, limit: number): StoredMessage[] {
    return this.#latest.all(chatId, limit).map(toMessage).reverse();
  }

  /** The newest `limit` inbound messages after `seq`, oldest first: what a prompt is made of. */
  pendingInput(chatId: string, seq: number, limit: number): StoredMessage[] {
    return this.#pendingInput.all(chatId, seq, limit).map(toMessage).reverse();
  }

  /** Whether a platform message is stored already (a redelivery), without storing anything. */
  has(chatId: string, platformId: string): boolean {
    return this.#byPlatformId.get(chatId, platformId) !== undefined;
  }

  hasEngaging(chatId: string, afterSeq: number): boolean {
    return this.#hasEngaging.get(chatId, afterSeq) !== undefined;
  }

  maxSeq(chatId: string): number {
    return this.#maxSeq.get(chatId)?.seq ?? 0;
  }
}

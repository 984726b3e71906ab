import type { Db } from './db.js';

export interface OutboxItem {
  id: number;
  chatId: string;
  text: string;
  replyTo: number | null;
  status: 'pending' | 'sent' | 'failed';
  attempts: number;
  nextAttemptAt: number;
  platformId: string | null;
  lastError: string | null;
  createdAt: number;
  /** A reply longer than its platform allows goes out in parts; these many are confirmed sent. */
  partsSent: number;
  /** A file to send with the text: a path inside the chat's group folder. */
  filePath: string | null;
  /** A sub-agent's name the message is shown under (send_message's `sender`); null: the assistant's own. */
  sender: string | null;
}

interface OutboxRow {
  id: number;
  chat_id: string;
  text: string;
  reply_to: number | null;
  status: OutboxItem['status'];
  attempts: number;
  next_attempt_at: number;
  platform_id: string | null;
  last_error: string | null;
  created_at: number;
  parts_sent: number;
  file_path: string | null;
  sender: string | null;
}

const toItem = (r: OutboxRow): OutboxItem => ({
  id: r.id,
  chatId: r.chat_id,
  text: r.text,
  replyTo: r.reply_to,
  status: r.status,
  attempts: r.attempts,
  nextAttemptAt: r.next_attempt_at,
  platformId: r.platform_id,
  lastError: r.last_error,
  createdAt: r.created_at,
  partsSent: r.parts_sent,
  filePath: r.file_path,
  sender: r.sender,
});

export class OutboxTable {
  readonly #insert;
  readonly #due;
  readonly #nextDue;
  readonly #sent;
  readonly #retry;
  readonly #failed;
  readonly #get;
  readonly #partSent;
  readonly #open;
  readonly #insertFile;

  constructor(db: Db) {
    this.#insert = db.prepare<[string, string, number | null, number, number, string | null], { id: number }>(
      `INSERT INTO outbox (chat_id, text, reply_to, status, next_attempt_at, created_at, sender)
       VALUES (?, ?, ?, 'pending', ?, ?, ?) RETURNING id`,
    );
    this.#due = db.prepare<[number, number], OutboxRow>(
      `SELECT * FROM outbox WHERE status = 'pending' AND next_attempt_at <= ? ORDER BY id LIMIT ?`,
    );
    this.#nextDue = db.prepare<[], { at: number | null }>(`SELECT MIN(next_attempt_at) AS at FROM outbox WHERE status = 'pending'`);
    this.#sent = db.prepare<[string, number, number]>(
      `UPDATE outbox SET status = 'sent', platform_id = ?, sent_at = ?, attempts = attempts + 1 WHERE id = ? AND status = 'pending'`,
    );
    this.#retry = db.prepare<[string, number, number]>(
      `UPDATE outbox SET attempts = attempts + 1, last_error = ?, next_attempt_at = ? WHERE id = ? AND status = 'pending'`,
    );
    this.#failed = db.prepare<[string, number]>(
      `UPDATE outbox SET status = 'failed', attempts = attempts + 1, last_error = ? WHERE id = ? AND status = 'pending'`,
    );
    this.#get = db.prepare<[number], OutboxRow>('SELECT * FROM outbox WHERE id = ?');
    this.#open = db.prepare<[], { pending: number; failed: number }>(
      `SELECT COALESCE(SUM(status = 'pending'), 0) AS pending, COALESCE(SUM(status = 'failed'), 0) AS failed FROM outbox`,
    );
    this.#partSent = db.prepare<[number, number]>(`UPDATE outbox SET parts_sent = ? WHERE id = ? AND status = 'pending'`);
    this.#insertFile = db.prepare<[string, string, number | null, number, number, string], { id: number }>(
      `INSERT INTO outbox (chat_id, text, reply_to, status, next_attempt_at, created_at, file_path)
       VALUES (?, ?, ?, 'pending', ?, ?, ?) RETURNING id`,
    );
  }

  /** `sender`: a sub-agent's name to show the message under. */
  add(chatId: string, text: string, replyTo: number | null, at: number, sender?: string): number {
    const row = this.#insert.get(chatId, text, replyTo, at, at, sender ?? null);
    if (!row) throw new Error(`outbox insert for ${chatId} returned no id`);
    return row.id;
  }

  due(now: number, limit: number): OutboxItem[] {
    return this.#due.all(now, limit).map(toItem);
  }

  /** When the earliest pending item is due, or null when nothing is pending. */
  nextDueAt(): number | null {
    return this.#nextDue.get()?.at ?? null;
  }

  markSent(id: number, platformId: string, at: number): void {
    this.#sent.run(platformId, at, id);
  }

  scheduleRetry(id: number, error: string, at: number): void {
    this.#retry.run(error, at, id);
  }

  markFailed(id: number, error: string): void {
    this.#failed.run(error, id);
  }

  /** A file from the chat's group folder (a path inside it), with an optional caption. */
  addFile(chatId: string, filePath: string, caption: string, replyTo: number | null, at: number): number {
    const row = this.#insertFile.get(chatId, caption, replyTo, at, at, filePath);
    if (!row) throw new Error(`outbox file for ${chatId} was not stored`);
    return row.id;
  }

  /** How many replies wait for delivery and how many were given up. */
  openCounts(): { pending: number; failed: number } {
    return this.#open.get() ?? { pending: 0, failed: 0 };
  }

  /** Parts of a long reply are confirmed one by one, so a retry never sends a confirmed part again. */
  markPartsSent(id: number, parts: number): void {
    this.#partSent.run(parts, id);
  }

  get(id: number): OutboxItem | undefined {
    const row = this.#get.get(id);
    return row && toItem(row);
  }
}

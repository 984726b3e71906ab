import type { Db } from './db.js';

/**
 * The web page's logins. Only a hash of each session token is kept, so a copy of the store does not log
 * anyone in; sessions survive a restart of pincer.
 */
export class WebSessionTable {
  readonly #insert;
  readonly #valid;
  readonly #remove;
  readonly #prune;

  constructor(db: Db) {
    this.#insert = db.prepare<[string, number, number]>('INSERT INTO web_sessions (token_hash, created_at, expires_at) VALUES (?, ?, ?)');
    this.#valid = db.prepare<[string, number], { one: number }>(
      'SELECT 1 AS one FROM web_sessions WHERE token_hash = ? AND expires_at > ?',
    );
    this.#remove = db.prepare<[string]>('DELETE FROM web_sessions WHERE token_hash = ?');
    this.#prune = db.prepare<[number]>('DELETE FROM web_sessions WHERE expires_at <= ?');
  }

  add(tokenHash: string, createdAt: number, expiresAt: number): void {
    this.#insert.run(tokenHash, createdAt, expiresAt);
  }

  isValid(tokenHash: string, now: number): boolean {
    return this.#valid.get(tokenHash, now) !== undefined;
  }

  remove(tokenHash: string): void {
    this.#remove.run(tokenHash);
  }

  /** Removes expired sessions; returns how many. */
  prune(now: number): number {
    return this.#prune.run(now).changes;
  }
}

// Who may use the web page: a session cookie got by presenting the API token, or by a one-time login link.
import { createHash, randomBytes } from 'node:crypto';
import type { WebSessionTable } from '../../store/web-sessions.js';
import { tokenMatches } from './token.js';

export const SESSION_COOKIE = 'pincer_session';
export const SESSION_DAYS = 30;
const SESSION_MS = SESSION_DAYS * 24 * 3600_000;
/** A login link is for the person who just started pincer or ran `pincer web`; it should not linger. */
const LOGIN_CODE_MS = 15 * 60_000;
const MAX_LOGIN_CODES = 100;

const hash = (secret: string): string => createHash('sha256').update(secret).digest('hex');
const secret = (): string => randomBytes(32).toString('base64url');

export class WebAuth {
  readonly #sessions: WebSessionTable;
  readonly #token: string;
  readonly #now: () => number;
  /** Hash of each unused login code → when it expires. Kept in memory: a restart voids them, by design. */
  readonly #codes = new Map<string, number>();

  constructor(sessions: WebSessionTable, token: string, now: () => number = Date.now) {
    this.#sessions = sessions;
    this.#token = token;
    this.#now = now;
  }

  /** A new session for whoever presents the API token; undefined when it is wrong. */
  login(presentedToken: string): string | undefined {
    return tokenMatches(this.#token, presentedToken) ? this.#newSession() : undefined;
  }

  /** A code for a one-time login link. */
  createLoginCode(): string {
    const now = this.#now();
    for (const [h, expires] of this.#codes) if (expires <= now) this.#codes.delete(h);
    // Unbounded codes would be a memory leak an API client could drive; the oldest go first.
    while (this.#codes.size >= MAX_LOGIN_CODES) {
      const oldest = this.#codes.keys().next().value;
      if (oldest === undefined) break;
      this.#codes.delete(oldest);
    }
    const code = secret();
    this.#codes.set(hash(code), now + LOGIN_CODE_MS);
    return code;
  }

  /** Spends a login code: a new session, or undefined when the code is unknown, used or expired. */
  redeem(code: string): string | undefined {
    const h = hash(code);
    const expires = this.#codes.get(h);
    this.#codes.delete(h);
    return expires !== undefined && expires > this.#now() ? this.#newSession() : undefined;
  }

  isValid(session: string | undefined): boolean {
    return session !== undefined && session.length > 0 && this.#sessions.isValid(hash(session), this.#now());
  }

  logout(session: string): void {
    this.#sessions.remove(hash(session));
  }

  /** An id for a session that names it without revealing it (to group its live connections). */
  sessionKey(session: string): string {
    return hash(session);
  }

  #newSession(): string {
    const now = this.#now();
    this.#sessions.prune(now);
    const session = secret();
    this.#sessions.add(hash(session), now, now + SESSION_MS);
    return session;
  }
}

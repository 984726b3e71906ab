// What a failed Bot API call becomes: a rate limit the outbox waits out, or one line saying what Telegram (or the
// network) said, without the bot's token (it is part of every URL grammY calls).
import { GrammyError, HttpError } from 'grammy';
import { RateLimitedError } from './types.js';

/** How long Telegram asks to wait, for a 429 answer. */
export function retryAfterMs(err: unknown): number | undefined {
  if (!(err instanceof GrammyError) || err.error_code !== 429) return undefined;
  return Math.max(1, err.parameters.retry_after ?? 1) * 1000;
}

/** An error for the outbox: a rate limit it waits out, or what Telegram (or the network) said, without the token. */
export function sendFailure(err: unknown, what: string, token: string): Error {
  const waitMs = retryAfterMs(err);
  if (waitMs !== undefined) return new RateLimitedError(waitMs, `Telegram rate limit on ${what}: retry after ${waitMs / 1000} s`);
  return new Error(`${what} failed: ${describeError(err, token)}`);
}

/** One line about a grammY error, safe to log and store: the token (part of every URL) is cut out. */
export function describeError(err: unknown, token: string): string {
  let text: string;
  if (err instanceof GrammyError) {
    const moved = err.parameters.migrate_to_chat_id;
    text = `Telegram said ${err.error_code}: ${err.description}${moved ? ` (the group is now tg:${moved}; join that id)` : ''}`;
  } else if (err instanceof HttpError) {
    const cause = err.error instanceof Error ? `: ${err.error.message}` : '';
    text = `Telegram unreachable (${err.message}${cause})`;
  } else text = err instanceof Error ? err.message : String(err);
  return token ? text.split(token).join('<token>') : text;
}

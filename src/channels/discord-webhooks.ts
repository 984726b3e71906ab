// Sub-agents on Discord post through a webhook pincer makes in the channel (one, named "pincer", found again by
// that name or made with Manage Webhooks), executed with the sub-agent's name and picture. The webhook's token is
// a credential: it lives in pincer's store on the host, is sent only to Discord's API, and is cut out of every
// error text. Without the permission (or in a DM, where there are no webhooks) the caller posts with a prefix.
import { DiscordAPIError, makeURLSearchParams, type REST, Routes } from 'discord.js';
import { z } from 'zod';
import type { Logger } from '../log.js';

/** The name of the webhook pincer makes in a channel, and looks for before making one. */
export const WEBHOOK_NAME = 'pincer';
/** Discord's webhook names (and so the names a message is executed under): 1–80 characters. */
const MAX_NAME = 80;
/** How long a channel that refused webhooks is not asked again (a moderator may grant the permission). */
const REFUSED_FOR_MS = 3_600_000;
/** The stored webhook is gone (deleted by a moderator) or its token no longer works. */
const GONE = new Set([10015, 50027]);
/** Discord refused the message's form (a name its rules refuse that `webhookUsername` let through). */
const INVALID_FORM = 50035;

export interface StoredWebhook {
  id: string;
  token: string;
}

/** Where the webhooks are kept (pincer's store). */
export interface WebhookStore {
  get(channelId: string): StoredWebhook | undefined;
  put(channelId: string, webhook: StoredWebhook): void;
  drop(channelId: string, webhookId: string): void;
}

const webhookJson = z.object({
  id: z.string(),
  name: z.string().nullish(),
  token: z.string().optional(),
  application_id: z.string().nullish(),
});
const messageJson = z.object({ id: z.string().min(1) });

/**
 * The name as Discord takes it for a webhook message, or undefined when it cannot show this one (then the name
 * goes before the text): `@ # :` and code fences are dropped; a name with "discord" or "clyde" in it, or named
 * "everyone" or "here", is refused by Discord.
 */
export function webhookUsername(sender: string): string | undefined {
  const name = sender.replace(/```/g, '').replace(/[@#:]/g, '').replace(/\s+/g, ' ').trim().slice(0, MAX_NAME).trim();
  if (!name || /discord|clyde/i.test(name) || /^(everyone|here)$/i.test(name)) return undefined;
  return name;
}

/** A failed call's text without the webhook's token (Discord's errors may carry the URL). */
function withoutToken(err: unknown, token: string | undefined): Error {
  const text = err instanceof Error ? err.message : String(err);
  return token && text.includes(token) ? new Error(text.split(token).join('<token>')) : err instanceof Error ? err : new Error(text);
}

const codeOf = (err: unknown): number | undefined =>
  err instanceof DiscordAPIError && typeof err.code === 'number' ? err.code : undefined;

/**
 * Discord refused webhooks in this channel for good: missing access or Manage Webhooks (403), too many webhooks
 * or a channel type without them (400), a channel it does not know (404). A rate limit or an outage is not that.
 */
const refusesWebhooks = (err: unknown): boolean => err instanceof DiscordAPIError && [400, 403, 404].includes(err.status);

export class DiscordWebhooks {
  readonly #store: WebhookStore;
  readonly #log: Logger;
  /** Channel → when it refused webhooks. */
  readonly #refused = new Map<string, number>();

  constructor(store: WebhookStore, log: Logger) {
    this.#store = store;
    this.#log = log;
  }

  /**
   * Posts `content` under `username` into the channel (into `threadId`, a thread of it, if given) and returns the
   * message's id (`wait=true` makes Discord answer with the message), or undefined when the channel has no webhook
   * for pincer and cannot get one: nothing was posted then. Other failures throw, as the outbox expects.
   */
  async post(
    rest: REST,
    applicationId: string | undefined,
    channelId: string,
    threadId: string | undefined,
    message: { content: string; username: string; avatarUrl?: string },
  ): Promise<string | undefined> {
    for (let attempt = 0; attempt < 2; attempt++) {
      const webhook = await this.#webhookFor(rest, applicationId, channelId);
      if (!webhook) return undefined;
      try {
        const sent = await rest.post(Routes.webhook(webhook.id, webhook.token), {
          auth: false,
          query: makeURLSearchParams({ wait: true, ...(threadId ? { thread_id: threadId } : {}) }),
          body: {
            content: message.content,
            username: message.username,
            ...(message.avatarUrl ? { avatar_url: message.avatarUrl } : {}),
            // Nobody is pinged by accident: no @everyone or role pings from the agent's text.
            allowed_mentions: { parse: ['users'] },
          },
        });
        const parsed = messageJson.safeParse(sent);
        if (!parsed.success) throw new Error('Discord answered the webhook without the message');
        return parsed.data.id;
      } catch (err) {
        const code = codeOf(err);
        if (code === INVALID_FORM) {
          this.#log.warn(
            { channelId, username: message.username },
            'discord: the webhook refused this name: the message goes with the name in front',
          );
          return undefined;
        }
        if (code === undefined || !GONE.has(code) || attempt > 0) throw withoutToken(err, webhook.token);
        // Deleted by someone: forget it and make (or find) another, once.
        this.#store.drop(channelId, webhook.id);
        this.#log.info({ channelId, code }, 'discord: the webhook for sub-agents is gone; making another');
      }
    }
    return undefined;
  }

  async #webhookFor(rest: REST, applicationId: string | undefined, channelId: string): Promise<StoredWebhook | undefined> {
    const stored = this.#store.get(channelId);
    if (stored) return stored;
    const refusedAt = this.#refused.get(channelId);
    if (refusedAt !== undefined && Date.now() - refusedAt < REFUSED_FOR_MS) return undefined;
    try {
      const listed = z.array(webhookJson).parse(await rest.get(Routes.channelWebhooks(channelId)));
      // Only our own: a webhook of another app under the same name is not ours to use.
      const ours = listed.find(
        (w) => w.name === WEBHOOK_NAME && w.token && (applicationId === undefined || w.application_id === applicationId),
      );
      const found = ours ?? webhookJson.parse(await rest.post(Routes.channelWebhooks(channelId), { body: { name: WEBHOOK_NAME } }));
      if (!found.token) throw new Error('Discord made the webhook without a token');
      const webhook = { id: found.id, token: found.token };
      this.#store.put(channelId, webhook);
      this.#refused.delete(channelId);
      this.#log.info({ channelId, webhookId: webhook.id, made: ours === undefined }, 'discord: webhook for sub-agents ready');
      return webhook;
    } catch (err) {
      if (!refusesWebhooks(err)) throw err;
      this.#refused.set(channelId, Date.now());
      this.#log.warn(
        { channelId, code: codeOf(err), error: err instanceof Error ? err.message : String(err) },
        'discord: no webhook in this channel (give the bot Manage Webhooks there): sub-agents post with their name in front',
      );
      return undefined;
    }
  }
}

import type { Db } from './db.js';

/** A webhook pincer made in a Discord channel to post under sub-agents' names. The token is a credential. */
export interface DiscordWebhook {
  id: string;
  token: string;
}

export class DiscordWebhookTable {
  readonly #get;
  readonly #put;
  readonly #drop;

  constructor(db: Db) {
    this.#get = db.prepare<[string], { webhook_id: string; token: string }>(
      'SELECT webhook_id, token FROM discord_webhooks WHERE channel_id = ?',
    );
    this.#put = db.prepare<[string, string, string, number]>(
      `INSERT INTO discord_webhooks (channel_id, webhook_id, token, created_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (channel_id) DO UPDATE SET webhook_id = excluded.webhook_id, token = excluded.token, created_at = excluded.created_at`,
    );
    this.#drop = db.prepare<[string, string]>('DELETE FROM discord_webhooks WHERE channel_id = ? AND webhook_id = ?');
  }

  get(channelId: string): DiscordWebhook | undefined {
    const row = this.#get.get(channelId);
    return row && { id: row.webhook_id, token: row.token };
  }

  put(channelId: string, webhook: DiscordWebhook): void {
    this.#put.run(channelId, webhook.id, webhook.token, Date.now());
  }

  /** Forgets a webhook Discord no longer knows (deleted by a moderator). */
  drop(channelId: string, webhookId: string): void {
    this.#drop.run(channelId, webhookId);
  }
}

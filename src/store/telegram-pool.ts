import type { Db } from './db.js';

/** Which Telegram pool bot posts as which sender in which chat: kept, so a role keeps its bot. */
export class TelegramPoolTable {
  readonly #get;
  readonly #assign;
  readonly #forBot;
  readonly #dropBot;

  constructor(db: Db) {
    this.#get = db.prepare<[string, string], { bot_id: number }>(
      'SELECT bot_id FROM telegram_pool_senders WHERE chat_id = ? AND sender = ?',
    );
    this.#assign = db.prepare<[string, string, number, number]>(
      `INSERT INTO telegram_pool_senders (chat_id, sender, bot_id, assigned_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (chat_id, sender) DO UPDATE SET bot_id = excluded.bot_id, assigned_at = excluded.assigned_at`,
    );
    this.#forBot = db.prepare<[], { bot_id: number; n: number }>('SELECT bot_id, COUNT(*) AS n FROM telegram_pool_senders GROUP BY bot_id');
    this.#dropBot = db.prepare<[number, string]>('DELETE FROM telegram_pool_senders WHERE bot_id = ? AND sender <> ?');
  }

  botOf(chatId: string, sender: string): number | undefined {
    return this.#get.get(chatId, sender)?.bot_id;
  }

  /** How many assignments each bot holds (bots without any are absent). */
  assignmentCounts(): Map<number, number> {
    return new Map(this.#forBot.all().map((r) => [r.bot_id, r.n]));
  }

  /**
   * `botId` now posts as `sender` in `chatId`. A bot carries one name in every chat, so its assignments under
   * another name end here: those senders are given a bot again when they next speak.
   */
  assign(chatId: string, sender: string, botId: number): void {
    this.#dropBot.run(botId, sender);
    this.#assign.run(chatId, sender, botId, Date.now());
  }
}

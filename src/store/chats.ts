import type { Db } from './db.js';

export interface Chat {
  id: string;
  channel: string;
  name: string | null;
  isGroup: boolean;
  lastSeenAt: number;
}

interface ChatRow {
  id: string;
  channel: string;
  name: string | null;
  is_group: number;
  last_seen_at: number;
}

const toChat = (r: ChatRow): Chat => ({
  id: r.id,
  channel: r.channel,
  name: r.name,
  isGroup: r.is_group === 1,
  lastSeenAt: r.last_seen_at,
});

export class ChatTable {
  readonly #upsert;
  readonly #get;
  readonly #list;

  constructor(db: Db) {
    this.#upsert = db.prepare<[string, string, string | null, number, number]>(
      `INSERT INTO chats (id, channel, name, is_group, last_seen_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (id) DO UPDATE SET name = COALESCE(excluded.name, chats.name), is_group = excluded.is_group,
         last_seen_at = MAX(chats.last_seen_at, excluded.last_seen_at)`,
    );
    this.#get = db.prepare<[string], ChatRow>('SELECT * FROM chats WHERE id = ?');
    this.#list = db.prepare<[], ChatRow>('SELECT * FROM chats ORDER BY last_seen_at DESC');
  }

  /** Records that a chat exists (and its newest name); never forgets an earlier name. */
  seen(chat: { id: string; channel: string; name?: string | null; isGroup: boolean }, at: number): void {
    this.#upsert.run(chat.id, chat.channel, chat.name ?? null, chat.isGroup ? 1 : 0, at);
  }

  get(id: string): Chat | undefined {
    const row = this.#get.get(id);
    return row && toChat(row);
  }

  list(): Chat[] {
    return this.#list.all().map(toChat);
  }
}

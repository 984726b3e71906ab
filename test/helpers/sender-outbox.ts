// Sub-agents' messages the way pincer delivers them: a real Store and OutboxWorker in front of one channel
// adapter, with the logs kept as lines, so a test sees what the platform got, what the store recorded and what
// was logged (where no credential may appear).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Logger, pino } from 'pino';
import { ChannelRegistry } from '../../src/channels/registry.js';
import type { Channel, InboundSink } from '../../src/channels/types.js';
import { OutboxWorker } from '../../src/service/outbox-worker.js';
import { type OutboxItem, Store } from '../../src/store/index.js';

export function capturedLog(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { lines, log: pino({ level: 'trace' }, { write: (line: string) => void lines.push(line) }) };
}

/** A sink that takes everything and engages nothing: these tests are about what goes out. */
export const quietSink: InboundSink = {
  ingest: async () => ({ seq: 0, duplicate: false, engaged: false }),
  isJoined: () => false,
  seen: () => false,
  maxMediaBytes: 0,
  typing: () => {},
};

export interface SenderOutbox {
  store: Store;
  /** Queues `text` as send_message does (with `sender`) and waits until the outbox sent it or gave up an attempt. */
  deliver(chatId: string, text: string, sender?: string): Promise<OutboxItem>;
  /** Every text column of every table but `except`, as one string: what could reach an agent or the owner. */
  storedText(except: string[]): string;
  close(): Promise<void>;
}

export function senderOutbox(store: Store, channel: Channel, log: Logger): SenderOutbox {
  const channels = new ChannelRegistry();
  channels.add(channel);
  const worker = new OutboxWorker({
    store,
    channels,
    assistantName: 'Andy',
    log,
    readGroupFile: async () => {
      throw new Error('no files here');
    },
    mainChatId: () => undefined,
  });
  return {
    store,
    async deliver(chatId, text, sender) {
      store.chats.seen({ id: chatId, channel: channel.name, isGroup: true }, Date.now());
      const id = store.outbox.add(chatId, text, null, Date.now(), sender);
      worker.wake();
      const deadline = Date.now() + 10_000;
      for (;;) {
        const item = store.outbox.get(id);
        if (item && (item.status !== 'pending' || item.attempts > 0)) return item;
        if (Date.now() > deadline) throw new Error(`outbox item ${id} was not delivered within 10 s`);
        await sleep(10);
      }
    },
    storedText(except) {
      const tables = store.db
        .prepare<[], { name: string }>(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`)
        .all()
        .map((t) => t.name)
        .filter((name) => !except.includes(name));
      return tables.map((name) => JSON.stringify(store.db.prepare(`SELECT * FROM "${name}"`).all())).join('\n');
    },
    async close() {
      await worker.stop();
    },
  };
}

export function tempStore(): { store: Store; remove(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-senders-'));
  const store = new Store(join(dir, 'pincer.db'));
  return {
    store,
    remove() {
      store.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

// Delivers outbox rows through their channel: at least once, never again after the platform confirmed.
import type { ChannelRegistry } from '../channels/registry.js';
import { splitText } from '../channels/split-text.js';
import { RateLimitedError } from '../channels/types.js';
import type { Logger } from '../log.js';
import { SafeFsError } from '../sandbox/safe-fs.js';
import type { OutboxItem, Store } from '../store/index.js';

/** Delay before attempt n+1 after n failures; past the last one the reply is given up and the owner told. */
export const RETRY_DELAYS_MS = [1_000, 5_000, 30_000, 120_000, 600_000];
const BATCH = 100;
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface OutboxWorkerDeps {
  store: Store;
  channels: ChannelRegistry;
  assistantName: string;
  log: Logger;
  /** Reads a file the agent asked to send, from the chat's group folder (bounded, no links out). */
  readGroupFile(chatId: string, path: string): Promise<{ name: string; data: Buffer }>;
  /** The owner's chat, told about replies that could not be delivered. */
  mainChatId(): string | undefined;
}

export class OutboxWorker {
  readonly #deps: OutboxWorkerDeps;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #again = false;
  #stopped = false;

  constructor(deps: OutboxWorkerDeps) {
    this.#deps = deps;
  }

  /** Something was queued: deliver now (event-driven; retries wait on a timer set to their due time). */
  wake(): void {
    if (this.#stopped) return;
    if (this.#running) {
      this.#again = true;
      return;
    }
    clearTimeout(this.#timer);
    this.#running = this.#drain().finally(() => {
      this.#running = undefined;
      this.#arm();
    });
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  async #drain(): Promise<void> {
    let items: OutboxItem[];
    do {
      this.#again = false;
      items = this.#deps.store.outbox.due(Date.now(), BATCH);
      for (const item of items) {
        if (this.#stopped) return;
        await this.#deliver(item);
      }
    } while (this.#again || items.length === BATCH);
  }

  #arm(): void {
    if (this.#stopped) return;
    if (this.#again) {
      this.wake();
      return;
    }
    const next = this.#deps.store.outbox.nextDueAt();
    if (next === null) return;
    this.#timer = setTimeout(() => this.wake(), Math.min(Math.max(0, next - Date.now()), MAX_TIMER_MS));
  }

  async #deliver(item: OutboxItem): Promise<void> {
    const { store, channels, log } = this.#deps;
    const channel = channels.forChat(item.chatId);
    try {
      if (!channel) throw new Error(`no enabled channel delivers to ${item.chatId}`);
      const answered = item.replyTo === null ? undefined : store.messages.get(item.replyTo);
      const replyTo = answered && { platformId: answered.platformId, ...(answered.threadId ? { threadId: answered.threadId } : {}) };
      let platformId: string;
      if (item.filePath !== null) {
        const file = await this.#deps.readGroupFile(item.chatId, item.filePath);
        ({ platformId } = await channel.send(item.chatId, { text: item.text, file, ...(replyTo ? { replyTo } : {}) }));
      } else {
        // Each part is confirmed in the store as it goes: a retry resumes after the last confirmed one. A channel
        // that formats replies cuts them itself (each part formatted on its own), told which part to send. A
        // sub-agent's name goes to a channel that shows it itself; any other gets it before the text.
        const sender = item.sender !== null && channel.postsAsSender ? { sender: item.sender } : {};
        const text = item.sender !== null && !channel.postsAsSender ? `${item.sender}: ${item.text}` : item.text;
        const formatted = channel.partsOf?.(text, sender.sender);
        const plain = formatted === undefined ? splitText(text, channel.maxTextLength) : [];
        const count = formatted ?? plain.length;
        platformId = item.platformId ?? '';
        for (let i = item.partsSent; i < count; i++) {
          const part = formatted === undefined ? { text: plain[i] as string } : { text, part: i };
          ({ platformId } = await channel.send(item.chatId, { ...part, ...sender, ...(replyTo ? { replyTo } : {}) }));
          if (i < count - 1) store.outbox.markPartsSent(item.id, i + 1);
        }
      }
      const now = Date.now();
      store.transaction(() => {
        store.outbox.markSent(item.id, platformId, now);
        store.messages.insert({
          chatId: item.chatId,
          channel: channel.name,
          platformId,
          senderId: 'assistant',
          senderName: this.#deps.assistantName,
          // The history says who spoke, as the chat showed it.
          text: item.filePath
            ? `${item.text}${item.text ? '\n' : ''}[file: ${item.filePath}]`
            : item.sender !== null
              ? `${item.sender}: ${item.text}`
              : item.text,
          sentAt: now,
          fromAssistant: true,
          engages: false,
        });
        store.events.record({
          messageSeq: item.replyTo,
          chatId: item.chatId,
          stage: 'delivered',
          detail: `via ${channel.name} as ${platformId}`,
          at: now,
        });
      });
    } catch (err) {
      // A file the group folder refuses (a link out, a FIFO, gone) stays refused: no retries, and the chat is told
      // which file and why, by its name in the folder, not by the host's path.
      const refusedFile = err instanceof SafeFsError && item.filePath !== null ? `${item.filePath}: ${err.reason}` : undefined;
      const error = refusedFile ?? (err instanceof Error ? err.message : String(err));
      // A platform that says when to come back is believed (within the usual number of attempts).
      const scheduled = refusedFile ? undefined : RETRY_DELAYS_MS[item.attempts];
      const delay = scheduled === undefined ? undefined : err instanceof RateLimitedError ? Math.max(err.retryAfterMs, 100) : scheduled;
      const now = Date.now();
      if (delay !== undefined && channel) {
        log.warn({ chatId: item.chatId, outboxId: item.id, attempt: item.attempts + 1, error }, 'delivery failed; will retry');
        store.transaction(() => {
          store.outbox.scheduleRetry(item.id, error, now + delay);
          store.events.record({
            messageSeq: item.replyTo,
            chatId: item.chatId,
            stage: 'delivery_retry',
            detail: `${error}; retry in ${delay} ms`,
            at: now,
          });
        });
        return;
      }
      log.error({ chatId: item.chatId, outboxId: item.id, error }, 'delivery failed for good');
      const main = this.#deps.mainChatId();
      store.transaction(() => {
        store.outbox.markFailed(item.id, error);
        store.events.record({ messageSeq: item.replyTo, chatId: item.chatId, stage: 'delivery_failed', detail: error, at: now });
        if (refusedFile && channel) {
          store.outbox.add(item.chatId, `⚠️ A file was not sent: ${refusedFile}.`, item.replyTo, now);
          this.#again = true;
        }
        if (main && main !== item.chatId) {
          const preview = item.text.length > 80 ? `${item.text.slice(0, 80)}…` : item.text;
          store.outbox.add(main, `⚠️ A reply to ${item.chatId} could not be delivered (${error}): "${preview}"`, null, now);
          this.#again = true;
        }
      });
    }
  }
}

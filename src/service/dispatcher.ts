// Engaged messages wake their group's lane through the queue; lanes are tracked for an orderly stop.
import type { Logger } from '../log.js';
import { GroupQueue } from '../queue/group-queue.js';
import type { Store } from '../store/index.js';
import { GroupLane, type LaneDeps } from './group-lane.js';

export class Dispatcher {
  readonly queue: GroupQueue<string>;
  readonly #lanes = new Map<string, GroupLane>();
  readonly #store: Store;
  readonly #log: Logger;
  readonly #maxConcurrent: number;

  constructor(maxConcurrent: number, laneDeps: LaneDeps) {
    this.#maxConcurrent = maxConcurrent;
    this.#store = laneDeps.store;
    this.#log = laneDeps.log;
    this.queue = new GroupQueue<string>(
      maxConcurrent,
      (chatId, notifyIdle) => {
        const group = this.#store.groups.get(chatId);
        if (!group) throw new Error(`dispatcher: ${chatId} is not a registered group`);
        const lane = new GroupLane(laneDeps, group, notifyIdle);
        this.#lanes.set(chatId, lane);
        void lane.done.then(() => this.#lanes.delete(chatId));
        return lane;
      },
      (chatId) => this.#hasWork(chatId),
    );
  }

  /** A message engaged the agent in this chat. */
  wake(chatId: string, seq: number): void {
    const detail = this.queue.isActive(chatId)
      ? 'into the live session'
      : this.queue.activeCount < this.#maxConcurrent
        ? 'a session starts'
        : `waiting for a slot (${this.queue.waitingCount} groups ahead)`;
    this.#store.events.record({ messageSeq: seq, chatId, stage: 'queued', detail, at: Date.now() });
    this.queue.wake(chatId);
  }

  /** After a restart: every group with unanswered engaging messages gets its turn again. */
  recover(): void {
    for (const group of this.#store.groups.list()) {
      if (this.#hasWork(group.chatId)) {
        this.#log.info({ chatId: group.chatId }, 'resuming unanswered messages');
        this.queue.wake(group.chatId);
      }
    }
  }

  isLive(chatId: string): boolean {
    return this.#lanes.has(chatId);
  }

  async stop(): Promise<void> {
    for (const lane of this.#lanes.values()) lane.shutdown();
    await this.queue.drain();
  }

  #hasWork(chatId: string): boolean {
    const { cursor } = this.#store.groups.state(chatId);
    return this.#store.messages.hasEngaging(chatId, cursor);
  }
}

// Per-group serial execution under a global cap: at most one live lane per key, at most `max` lanes in all.
// A freed slot goes to a waiting key in this order, so no group can starve another: a `first` key (the main
// group's messages); else the key whose group holds the fewest slots (a group's isolated runs count against
// it as its lane does, so a group with one slot gets no second while a group with none waits); among those,
// the group served longest ago (turns go round, however many keys one group queues); within a group, the
// longest waiting key.

/** A group's live session as the queue sees it. */
export interface Lane {
  /** New work arrived for this group while its lane is live. */
  wake(): void;
  /** True while the lane holds a slot without a turn in flight. */
  isIdle(): boolean;
  /** Closes the lane if it is idle, freeing its slot for a waiting group. */
  closeIfIdle(): void;
  /** Settles when the lane has ended and its slot is free. */
  readonly done: Promise<void>;
}

/** Opens a lane for a key; undefined when there is nothing to run for it any more (a group just left). */
export type LaneFactory<K> = (key: K, notifyIdle: () => void) => Lane | undefined;

export type WakeResult = 'live' | 'queued' | 'started';

/** How waiting keys are ordered; both are asked each time a slot frees (a group's standing may change). */
export interface QueuePolicy<K> {
  /** The group a key's lane counts against (a scheduled run's: its task's group). */
  groupOf(key: K): K;
  /** Keys served before any other when a slot frees. */
  isFirst(key: K): boolean;
}

export class GroupQueue<K> {
  readonly #active = new Map<K, Lane>();
  readonly #waiting: K[] = [];
  readonly #max: number;
  readonly #open: LaneFactory<K>;
  readonly #hasWork: (key: K) => boolean;
  readonly #policy: QueuePolicy<K>;
  /** Group → the number of the grant that last gave it a slot (grants are counted from 1). */
  readonly #servedAt = new Map<K, number>();
  #grants = 0;
  #stopped = false;

  /** `hasWork` tells, when a lane ends, whether its group still has unanswered work (it is queued again). */
  constructor(
    max: number,
    open: LaneFactory<K>,
    hasWork: (key: K) => boolean,
    policy: QueuePolicy<K> = { groupOf: (key) => key, isFirst: () => false },
  ) {
    this.#max = max;
    this.#open = open;
    this.#hasWork = hasWork;
    this.#policy = policy;
  }

  wake(key: K): WakeResult {
    if (this.#stopped) return 'queued';
    const lane = this.#active.get(key);
    if (lane) {
      lane.wake();
      return 'live';
    }
    if (!this.#waiting.includes(key)) this.#waiting.push(key);
    this.#pump();
    return this.#active.has(key) ? 'started' : 'queued';
  }

  get activeCount(): number {
    return this.#active.size;
  }

  get waitingCount(): number {
    return this.#waiting.length;
  }

  isActive(key: K): boolean {
    return this.#active.has(key);
  }

  /** Opens no more lanes; resolves when every live lane has ended (after the caller asked them to close). */
  async drain(): Promise<void> {
    this.#stopped = true;
    this.#waiting.length = 0;
    await Promise.allSettled([...this.#active.values()].map((l) => l.done));
  }

  #pump(): void {
    if (this.#stopped) return;
    while (this.#waiting.length > 0 && this.#active.size < this.#max) {
      const key = this.#takeNext();
      const lane = this.#open(key, () => this.#pump());
      if (!lane) continue;
      this.#servedAt.set(this.#policy.groupOf(key), ++this.#grants);
      this.#active.set(key, lane);
      void lane.done.finally(() => {
        this.#active.delete(key);
        if (!this.#stopped && this.#hasWork(key) && !this.#waiting.includes(key)) this.#waiting.push(key);
        this.#pump();
      });
      lane.wake();
    }
    // Groups are waiting and every slot is taken: idle (warm) lanes give theirs up.
    let toFree = this.#waiting.length;
    for (const lane of this.#active.values()) {
      if (toFree === 0) break;
      if (lane.isIdle()) {
        lane.closeIfIdle();
        toFree--;
      }
    }
  }

  /** Removes and returns the waiting key that gets the next free slot (see the top of this file). */
  #takeNext(): K {
    const held = new Map<K, number>();
    for (const key of this.#active.keys()) {
      const group = this.#policy.groupOf(key);
      held.set(group, (held.get(group) ?? 0) + 1);
    }
    let best = 0;
    let bestRank: [number, number] = [Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY];
    this.#waiting.forEach((key, i) => {
      const group = this.#policy.groupOf(key);
      const rank: [number, number] = [this.#policy.isFirst(key) ? -1 : (held.get(group) ?? 0), this.#servedAt.get(group) ?? 0];
      // The waiting list is in arrival order: a strictly lower rank is needed to pass an earlier key.
      if (rank[0] < bestRank[0] || (rank[0] === bestRank[0] && rank[1] < bestRank[1])) {
        best = i;
        bestRank = rank;
      }
    });
    return this.#waiting.splice(best, 1)[0] as K;
  }
}

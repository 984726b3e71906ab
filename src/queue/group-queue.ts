// Per-group serial execution under a global cap: at most one live lane per group, at most `max` lanes in all.

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

export class GroupQueue<K> {
  readonly #active = new Map<K, Lane>();
  readonly #waiting: K[] = [];
  readonly #max: number;
  readonly #open: LaneFactory<K>;
  readonly #hasWork: (key: K) => boolean;
  #stopped = false;

  /** `hasWork` tells, when a lane ends, whether its group still has unanswered work (it is queued again). */
  constructor(max: number, open: LaneFactory<K>, hasWork: (key: K) => boolean) {
    this.#max = max;
    this.#open = open;
    this.#hasWork = hasWork;
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
      const key = this.#waiting.shift() as K;
      const lane = this.#open(key, () => this.#pump());
      if (!lane) continue;
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
}

// Engaged messages wake their group's lane through the queue, and isolated scheduled runs get lanes of
// their own (`run:<id>`) under the same cap; lanes are tracked for an orderly stop. Slots no message needs
// hold agents started ahead of a message (prewarm): for the most recently active groups, and for a group
// whose chat shows activity; they give their slot up to any group with work (GroupQueue closes idle lanes).
// A freed slot goes to the main group's messages first, then to the group holding the fewest slots, its
// isolated runs counted with its lane: a group's scheduled runs cannot crowd out the other groups.
import type { Logger } from '../log.js';
import { GroupQueue } from '../queue/group-queue.js';
import type { Store, TaskRun } from '../store/index.js';
import { availableMemory } from './available-memory.js';
import type { Budgets } from './budgets.js';
import { GroupLane, type LaneDeps } from './group-lane.js';
import type { AgentState } from './insight.js';
import { IsolatedRun } from './isolated-run.js';

const RUN_KEY = 'run:';

/** A group whose agent crashed is not started ahead of a message again for this long. */
const CRASH_PAUSE_MS = 60_000;
/** How long a stop waits for the agents' lanes to end. */
const LANES_STOP_MS = 10_000;

export interface PrewarmSettings {
  /** How many of the most recently active groups keep an agent started; 0 turns prewarming off. */
  poolSize: number;
  /** Below this much available memory nothing is started ahead. */
  minFreeBytes: number;
}

export class Dispatcher {
  readonly queue: GroupQueue<string>;
  readonly #lanes = new Map<string, GroupLane | IsolatedRun>();
  readonly #store: Store;
  readonly #budgets: Budgets;
  readonly #log: Logger;
  readonly #maxConcurrent: number;
  readonly #prewarm: PrewarmSettings;
  readonly #canRunAgents: boolean;
  /** Group → when its agent last crashed. */
  readonly #crashedAt = new Map<string, number>();
  #stopping = false;

  constructor(maxConcurrent: number, laneDeps: LaneDeps, prewarm: PrewarmSettings) {
    this.#maxConcurrent = maxConcurrent;
    this.#prewarm = prewarm;
    this.#canRunAgents = laneDeps.runtime.ok && [...laneDeps.settings.models.providers.values()].some((p) => p.credential !== undefined);
    this.#store = laneDeps.store;
    this.#budgets = laneDeps.budgets;
    this.#log = laneDeps.log;
    this.queue = new GroupQueue<string>(
      maxConcurrent,
      (key, notifyIdle) => {
        const lane = key.startsWith(RUN_KEY)
          ? this.#openRun(laneDeps, Number(key.slice(RUN_KEY.length)))
          : this.#openGroup(laneDeps, key, notifyIdle);
        if (!lane) {
          this.#log.warn({ key }, 'nothing to run: the group or run is gone');
          return undefined;
        }
        this.#lanes.set(key, lane);
        // A group's session going live or idle shows on the web page's group list.
        this.#store.changes.emit('groups');
        void lane.done.then(() => {
          this.#lanes.delete(key);
          this.#store.changes.emit('groups');
          if (lane instanceof GroupLane && lane.crashed) this.#crashedAt.set(key, Date.now());
          // After the queue has given the freed slot to any group waiting for one.
          setImmediate(() => this.warmPool());
        });
        return lane;
      },
      (key) => this.#hasWork(key),
      { groupOf: (key) => this.#groupOf(key), isFirst: (key) => this.#store.groups.get(key)?.isMain === true },
    );
  }

  /** A message engaged the agent in this chat. */
  wake(chatId: string, seq: number): void {
    // A live lane checks the budget before each turn itself.
    const budget = this.queue.isActive(chatId) ? ({ ok: true } as const) : this.#budgets.check(chatId);
    if (!budget.ok) {
      this.#budgets.refuse(chatId, [seq], budget);
      return;
    }
    const detail = this.queue.isActive(chatId)
      ? 'into the live session'
      : this.queue.activeCount < this.#maxConcurrent
        ? 'a session starts'
        : `waiting for a slot (${this.queue.waitingCount} others waiting)`;
    this.#store.events.record({ messageSeq: seq, chatId, stage: 'queued', detail, at: Date.now() });
    this.queue.wake(chatId);
  }

  /** An isolated scheduled run was recorded: it waits for a slot like a group. */
  startRun(run: TaskRun): void {
    this.queue.wake(`${RUN_KEY}${run.id}`);
  }

  /** After a restart: every group with unanswered engaging messages, and every unfinished isolated run, goes again. */
  recover(): void {
    this.wakeWaiting();
    for (const run of this.#store.taskRuns.running('isolated')) {
      this.#log.info({ run: run.id, task: run.taskId }, 'resuming an interrupted scheduled run');
      this.startRun(run);
    }
    this.warmPool();
  }

  /** Every group with unanswered engaging messages that may run now (after a restart, or a raised budget). */
  wakeWaiting(): void {
    for (const group of this.#store.groups.list()) {
      // A live lane too: one idle (started ahead, say) with refused messages takes them up now.
      if (this.#hasWork(group.chatId)) {
        this.#log.info({ chatId: group.chatId }, 'answering waiting messages');
        this.queue.wake(group.chatId);
      }
    }
  }

  /** The most recently active groups get an agent started ahead of their next message, while slots and memory allow. */
  warmPool(): void {
    if (this.#prewarm.poolSize === 0 || this.#stopping) return;
    for (const chatId of this.#store.groups.recentlyActive(this.#prewarm.poolSize)) this.prewarm(chatId, 'recently active');
  }

  /**
   * Starts a group's agent ahead of its next message (`why`: what made it likely): only into a free slot no
   * group is waiting for, with memory to spare, within budget. A hint: it never queues and never fails.
   */
  prewarm(chatId: string, why: string): void {
    if (this.#prewarm.poolSize === 0 || this.#stopping || !this.#canRunAgents) return;
    const live = this.#lanes.get(chatId);
    if (live) {
      if (live instanceof GroupLane) live.warm();
      return;
    }
    if (this.queue.activeCount >= this.#maxConcurrent || this.queue.waitingCount > 0) return;
    if (Date.now() - (this.#crashedAt.get(chatId) ?? Number.NEGATIVE_INFINITY) < CRASH_PAUSE_MS) return;
    if (!this.#store.groups.get(chatId) || !this.#budgets.check(chatId).ok) return;
    const free = availableMemory();
    if (free < this.#prewarm.minFreeBytes) {
      this.#log.debug({ chatId, freeMb: Math.round(free / 2 ** 20) }, 'not started ahead: too little memory available');
      return;
    }
    this.queue.wake(chatId);
    const lane = this.#lanes.get(chatId);
    if (!(lane instanceof GroupLane)) return;
    lane.warm();
    this.#log.info({ chatId, why }, 'agent started ahead of a message');
  }

  /** A group was left: its live session ends (what it was doing is not committed). */
  forget(chatId: string): void {
    const lane = this.#lanes.get(chatId);
    if (lane) lane.shutdown();
  }

  /** A group's settings changed: its live session, started with the old ones, ends as soon as it is idle. */
  refresh(chatId: string): void {
    const lane = this.#lanes.get(chatId);
    if (lane instanceof GroupLane) lane.refresh();
  }

  isLive(chatId: string): boolean {
    return this.#lanes.has(chatId);
  }

  /** A group's agent: at work on a turn, up and idle (warm, or started ahead of a message), or none. */
  agentState(chatId: string): AgentState {
    const lane = this.#lanes.get(chatId);
    if (lane === undefined) return 'none';
    // A lane still starting, or closing, without a turn is not at work on anything.
    return lane instanceof GroupLane && !lane.working ? 'ready' : 'working';
  }

  async stop(): Promise<void> {
    this.#stopping = true;
    for (const lane of this.#lanes.values()) lane.shutdown();
    // A lane that never ends must not hold pincer's stop forever: once in about six full test runs, a lane of
    // the prewarm pool did not end (its sandbox already gone), and the stop waited for it. Said loudly, not hidden.
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.queue.drain().then(() => true),
      new Promise<false>((resolve) => {
        timer = setTimeout(() => resolve(false), LANES_STOP_MS);
      }),
    ]);
    clearTimeout(timer);
    if (!drained)
      this.#log.error(
        { lanes: [...this.#lanes.keys()] },
        `agents did not end within ${LANES_STOP_MS / 1000} s of the stop; stopping without them`,
      );
  }

  #openGroup(deps: LaneDeps, chatId: string, notifyIdle: () => void): GroupLane | undefined {
    const group = this.#store.groups.get(chatId);
    return group && new GroupLane(deps, group, notifyIdle);
  }

  #openRun(deps: LaneDeps, runId: number): IsolatedRun | undefined {
    const run = this.#store.taskRuns.get(runId);
    const task = run && this.#store.tasks.get(run.taskId);
    const group = run && this.#store.groups.get(run.chatId);
    return run && task && group && new IsolatedRun(deps, run, task, group);
  }

  /** The group a lane counts against: an isolated run's is its task's group. */
  #groupOf(key: string): string {
    if (!key.startsWith(RUN_KEY)) return key;
    return this.#store.taskRuns.get(Number(key.slice(RUN_KEY.length)))?.chatId ?? key;
  }

  #hasWork(key: string): boolean {
    if (key.startsWith(RUN_KEY)) {
      const run = this.#store.taskRuns.get(Number(key.slice(RUN_KEY.length)));
      return run?.status === 'running' && this.#store.groups.get(run.chatId) !== undefined;
    }
    if (!this.#store.groups.get(key)) return false;
    const { cursor } = this.#store.groups.state(key);
    // Over budget, the messages wait: opening the lane again would only refuse them again.
    return this.#store.messages.hasEngaging(key, cursor) && this.#budgets.check(key).ok;
  }
}

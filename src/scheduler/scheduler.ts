// Runs scheduled tasks on time with one timer, set to the earliest stored due time (no minute polling).
// A due task's next due time is stored, and its run recorded, in the same transaction, before the run
// starts: a crash or restart can never run one due time twice, and after downtime a recurring task runs
// once (late, and saying so), not once per missed slot. A due time that comes while the task's previous run
// still goes (waits for a slot, or runs) is skipped and logged as such: runs of one task never overlap or
// pile up in the queue, however long each takes.
import type { Logger } from '../log.js';
import type { Store, Task, TaskRun } from '../store/index.js';
import { runPrompt, scheduleOf } from './run-prompt.js';
import { nextDueAfter } from './schedule.js';

/** setTimeout's ceiling (about 24.8 days); a later due time re-arms on the way. */
const MAX_TIMER_MS = 2 ** 31 - 1;

export interface SchedulerDeps {
  store: Store;
  log: Logger;
  /** A group-context run's prompt was stored as a message in the group's chat: wake the group. */
  wakeGroup(chatId: string, seq: number): void;
  /** An isolated run was recorded: run it in a fresh session. */
  startIsolated(run: TaskRun): void;
  now?: () => number;
}

export class Scheduler {
  readonly #d: SchedulerDeps;
  readonly #now: () => number;
  #timer: NodeJS.Timeout | undefined;
  #armedFor: number | null = null;
  #stopped = false;

  constructor(deps: SchedulerDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
  }

  /** Fires what is due (after downtime: once per task), then sets the timer. */
  start(): void {
    this.#fire();
  }

  /** Tasks changed: the earliest due time may have moved. */
  rearm(): void {
    if (this.#stopped) return;
    const next = this.#d.store.tasks.nextDueAt();
    if (next === this.#armedFor && this.#timer) return;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = next;
    if (next === null) return;
    const delay = Math.min(Math.max(next - this.#now(), 0), MAX_TIMER_MS);
    this.#timer = setTimeout(() => this.#fire(), delay);
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #fire(): void {
    // Called by the timer or directly (start): either way no other timer may stay pending.
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#armedFor = null;
    if (this.#stopped) return;
    const now = this.#now();
    const { store } = this.#d;
    // All runs due now are recorded in one transaction (one disk sync), then handed over.
    const started = store.transaction(() =>
      store.tasks.due(now).flatMap((task) => {
        try {
          // A nested transaction is a savepoint: a task that fails midway leaves nothing half-written.
          const run = store.transaction(() => this.#recordRun(task, now));
          return run ? [run] : [];
        } catch (err) {
          // One broken task (say, an expression a newer library rejects) must not stop the others.
          this.#d.log.error({ err, task: task.id }, 'scheduled task could not start; it is paused');
          store.tasks.update(task.id, { status: 'paused', nextRunAt: null });
          return [];
        }
      }),
    );
    for (const run of started) {
      this.#d.log.info({ task: run.taskId, run: run.id, lateMs: run.lateMs, context: run.contextMode }, 'scheduled task runs');
      if (run.messageSeq !== null) this.#d.wakeGroup(run.chatId, run.messageSeq);
      else this.#d.startIsolated(run);
    }
    this.rearm();
  }

  /** Stores the task's next due time and its run (and for group context, the run's message); inside a transaction. */
  #recordRun(task: Task, now: number): TaskRun | undefined {
    const { store } = this.#d;
    const dueAt = task.nextRunAt as number;
    const group = store.groups.get(task.chatId);
    if (!group) {
      store.tasks.update(task.id, { status: 'cancelled', nextRunAt: null });
      return undefined;
    }
    // Strictly after both the slot that is due and now: missed slots are skipped, never run in a burst.
    const next = nextDueAfter(scheduleOf(task), Math.max(now, dueAt));
    store.tasks.update(task.id, next === null ? { status: 'completed', nextRunAt: null } : { nextRunAt: next });
    const previous = store.taskRuns.runningFor(task.id);
    if (previous && this.#stillGoing(previous)) {
      const reason = `run #${previous.id} of this task (due ${new Date(previous.dueAt).toISOString()}) was still going`;
      store.taskRuns.skip({ taskId: task.id, chatId: task.chatId, dueAt, at: now, contextMode: task.contextMode, reason });
      this.#d.log.warn({ task: task.id, dueAt, previousRun: previous.id }, 'scheduled run skipped: the previous run still goes');
      return undefined;
    }
    let messageSeq: number | null = null;
    if (task.contextMode === 'group') {
      const { seq, duplicate } = store.messages.insert({
        chatId: task.chatId,
        channel: store.chats.get(task.chatId)?.channel ?? task.chatId.split(':')[0] ?? 'unknown',
        platformId: `task-${task.id}-${dueAt}`,
        senderId: 'pincer:scheduler',
        senderName: `Scheduled task #${task.id}`,
        text: runPrompt(task, dueAt, now),
        sentAt: now,
        fromAssistant: false,
        engages: true,
      });
      if (duplicate) return undefined;
      messageSeq = seq;
      store.events.record({
        messageSeq: seq,
        chatId: task.chatId,
        stage: 'scheduled',
        detail: `task ${task.id} due ${new Date(dueAt).toISOString()}`,
        at: now,
      });
    }
    const run = store.taskRuns.start({
      taskId: task.id,
      chatId: task.chatId,
      dueAt,
      startedAt: now,
      contextMode: task.contextMode,
      messageSeq,
    });
    return run;
  }

  /**
   * An isolated run marked running waits for a slot or runs. A group-context run goes until its message is
   * answered; one the group's cursor passed without finishing it (its turn left it out) holds nothing up.
   */
  #stillGoing(run: TaskRun): boolean {
    if (run.messageSeq === null) return true;
    return run.messageSeq > this.#d.store.groups.state(run.chatId).cursor;
  }
}

import type { Effort } from '../config.js';
import type { StoreChanges } from './changes.js';
import type { Db } from './db.js';
import { storedEffort } from './effort.js';

export type TaskStatus = 'active' | 'paused' | 'completed' | 'cancelled';
export type ContextMode = 'group' | 'isolated';
export type ScheduleKind = 'cron' | 'interval' | 'once';

export interface Task {
  id: number;
  chatId: string;
  prompt: string;
  scheduleType: ScheduleKind;
  scheduleValue: string;
  timezone: string;
  /** Intervals count from here, so a late run never shifts the ones after it. */
  anchorAt: number;
  contextMode: ContextMode;
  status: TaskStatus;
  /** Stored before a run starts: the scheduler's single source of what is due next. */
  nextRunAt: number | null;
  /** The folder of the group whose agent created it, or `owner` (CLI, API). */
  createdBy: string;
  createdAt: number;
  /** An isolated run's own model and effort; null: the group's. */
  model: string | null;
  effort: Effort | null;
}

export type NewTask = Omit<Task, 'id' | 'model' | 'effort'> & Partial<Pick<Task, 'model' | 'effort'>>;

interface TaskRow {
  id: number;
  chat_id: string;
  prompt: string;
  schedule_type: ScheduleKind;
  schedule_value: string;
  timezone: string;
  anchor_at: number;
  context_mode: ContextMode;
  status: TaskStatus;
  next_run_at: number | null;
  created_by: string;
  created_at: number;
  model: string | null;
  effort: string | null;
}

const toTask = (r: TaskRow): Task => ({
  id: r.id,
  chatId: r.chat_id,
  prompt: r.prompt,
  scheduleType: r.schedule_type,
  scheduleValue: r.schedule_value,
  timezone: r.timezone,
  anchorAt: r.anchor_at,
  contextMode: r.context_mode,
  status: r.status,
  nextRunAt: r.next_run_at,
  createdBy: r.created_by,
  createdAt: r.created_at,
  model: r.model,
  effort: storedEffort(r.effort, `task ${r.id}`),
});

/** What may change about a task after it was made; the scheduler's fields move with it. */
export type TaskUpdate = Partial<
  Pick<
    Task,
    'prompt' | 'scheduleType' | 'scheduleValue' | 'timezone' | 'anchorAt' | 'contextMode' | 'status' | 'nextRunAt' | 'model' | 'effort'
  >
>;

const COLUMNS: Record<keyof TaskUpdate, string> = {
  prompt: 'prompt',
  scheduleType: 'schedule_type',
  scheduleValue: 'schedule_value',
  timezone: 'timezone',
  anchorAt: 'anchor_at',
  contextMode: 'context_mode',
  status: 'status',
  nextRunAt: 'next_run_at',
  model: 'model',
  effort: 'effort',
};

export class TaskTable {
  readonly #db: Db;
  /** One prepared statement per set of changed columns: updates are on the scheduler's hot path. */
  readonly #updates = new Map<string, ReturnType<Db['prepare']> & { run(...params: unknown[]): unknown }>();
  readonly #insert;
  readonly #get;
  readonly #list;
  readonly #forChat;
  readonly #due;
  readonly #nextDue;
  readonly #scheduledCount;
  readonly #changes: StoreChanges;

  constructor(db: Db, changes: StoreChanges) {
    this.#db = db;
    this.#changes = changes;
    this.#insert = db.prepare<
      [string, string, string, string, string, number, string, string, number | null, string, number, string | null, string | null],
      { id: number }
    >(
      `INSERT INTO tasks (chat_id, prompt, schedule_type, schedule_value, timezone, anchor_at, context_mode, status, next_run_at, created_by, created_at, model, effort)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    );
    this.#get = db.prepare<[number], TaskRow>('SELECT * FROM tasks WHERE id = ?');
    this.#list = db.prepare<[], TaskRow>(`SELECT * FROM tasks WHERE status != 'cancelled' ORDER BY id`);
    this.#forChat = db.prepare<[string], TaskRow>(`SELECT * FROM tasks WHERE chat_id = ? AND status != 'cancelled' ORDER BY id`);
    this.#due = db.prepare<[number], TaskRow>(`SELECT * FROM tasks WHERE status = 'active' AND next_run_at <= ? ORDER BY next_run_at, id`);
    this.#nextDue = db.prepare<[], { at: number | null }>(`SELECT MIN(next_run_at) AS at FROM tasks WHERE status = 'active'`);
    this.#scheduledCount = db.prepare<[string], { n: number }>(
      `SELECT COUNT(*) AS n FROM tasks WHERE chat_id = ? AND status IN ('active', 'paused')`,
    );
  }

  add(t: NewTask): Task {
    const row = this.#insert.get(
      t.chatId,
      t.prompt,
      t.scheduleType,
      t.scheduleValue,
      t.timezone,
      t.anchorAt,
      t.contextMode,
      t.status,
      t.nextRunAt,
      t.createdBy,
      t.createdAt,
      t.model ?? null,
      t.effort ?? null,
    );
    if (!row) throw new Error(`task for ${t.chatId} was not stored`);
    this.#changes.emit('tasks');
    return { ...t, model: t.model ?? null, effort: t.effort ?? null, id: row.id };
  }

  get(id: number): Task | undefined {
    const row = this.#get.get(id);
    return row && toTask(row);
  }

  /** Every task that is not cancelled, or only a chat's. */
  list(chatId?: string): Task[] {
    return (chatId === undefined ? this.#list.all() : this.#forChat.all(chatId)).map(toTask);
  }

  update(id: number, change: TaskUpdate): Task {
    const entries = Object.entries(change).filter(([, v]) => v !== undefined) as Array<[keyof TaskUpdate, string | number | null]>;
    if (entries.length > 0) {
      const sets = entries.map(([k]) => `${COLUMNS[k]} = ?`).join(', ');
      let statement = this.#updates.get(sets);
      if (!statement) {
        statement = this.#db.prepare<unknown[]>(`UPDATE tasks SET ${sets} WHERE id = ?`);
        this.#updates.set(sets, statement);
      }
      statement.run(...entries.map(([, v]) => v), id);
      this.#changes.emit('tasks');
    }
    const task = this.get(id);
    if (!task) throw new Error(`task ${id} does not exist`);
    return task;
  }

  /** Active tasks due at or before `now`, earliest first. */
  due(now: number): Task[] {
    return this.#due.all(now).map(toTask);
  }

  /** The earliest due time of any active task: where the scheduler's one timer goes. */
  nextDueAt(): number | null {
    return this.#nextDue.get()?.at ?? null;
  }

  /** How many of a chat's tasks may still run: active ones and paused ones (a resume needs no room). */
  scheduledCount(chatId: string): number {
    return this.#scheduledCount.get(chatId)?.n ?? 0;
  }
}

/** `skipped`: the run was due while the task's previous run still went, so it never started. */
export type RunStatus = 'running' | 'ok' | 'error' | 'skipped';

export interface TaskRun {
  id: number;
  taskId: number;
  chatId: string;
  dueAt: number;
  startedAt: number;
  /** How long after its due time the run started (downtime, a busy queue). */
  lateMs: number;
  contextMode: ContextMode;
  /** Group context: the stored message that carries the run's prompt through the group's session. */
  messageSeq: number | null;
  status: RunStatus;
  endedAt: number | null;
  durationMs: number | null;
  result: string | null;
  error: string | null;
  costUsd: number | null;
  /** Isolated runs only: a group-context run's tokens are its turn's. */
  inputTokens: number | null;
  outputTokens: number | null;
}

interface RunRow {
  id: number;
  task_id: number;
  chat_id: string;
  due_at: number;
  started_at: number;
  late_ms: number;
  context_mode: ContextMode;
  message_seq: number | null;
  status: RunStatus;
  ended_at: number | null;
  duration_ms: number | null;
  result: string | null;
  error: string | null;
  cost_usd: number | null;
  input_tokens: number | null;
  output_tokens: number | null;
}

const toRun = (r: RunRow): TaskRun => ({
  id: r.id,
  taskId: r.task_id,
  chatId: r.chat_id,
  dueAt: r.due_at,
  startedAt: r.started_at,
  lateMs: r.late_ms,
  contextMode: r.context_mode,
  messageSeq: r.message_seq,
  status: r.status,
  endedAt: r.ended_at,
  durationMs: r.duration_ms,
  result: r.result,
  error: r.error,
  costUsd: r.cost_usd,
  inputTokens: r.input_tokens,
  outputTokens: r.output_tokens,
});

export interface RunEnd {
  status: 'ok' | 'error';
  endedAt: number;
  durationMs: number | null;
  result: string | null;
  error: string | null;
  costUsd: number | null;
  inputTokens?: number | null;
  outputTokens?: number | null;
}

/** How many tool calls of an isolated run are kept for a later attempt. */
const MAX_KEPT_TOOL_CALLS = 200;

export class TaskRunTable {
  readonly #insert;
  readonly #insertSkipped;
  readonly #get;
  readonly #forTask;
  readonly #running;
  readonly #runningForTask;
  readonly #finish;
  readonly #finishMessages;
  readonly #last;
  readonly #isolatedCosts;
  readonly #beginAttempt;
  readonly #noteToolCall;
  readonly #changes: StoreChanges;

  constructor(db: Db, changes: StoreChanges) {
    this.#changes = changes;
    this.#isolatedCosts = db.prepare<[number], { chatId: string; endedAt: number; costUsd: number | null }>(
      `SELECT chat_id AS chatId, ended_at AS endedAt, cost_usd AS costUsd FROM task_runs
       WHERE context_mode = 'isolated' AND ended_at >= ? ORDER BY id`,
    );
    // UNIQUE (task_id, due_at) is what makes "never twice for one due time" hold even against a bug.
    this.#insert = db.prepare<[number, string, number, number, number, string, number | null], { id: number }>(
      `INSERT INTO task_runs (task_id, chat_id, due_at, started_at, late_ms, context_mode, message_seq, status)
       VALUES (?, ?, ?, ?, ?, ?, ?, 'running') ON CONFLICT (task_id, due_at) DO NOTHING RETURNING id`,
    );
    this.#insertSkipped = db.prepare<[number, string, number, number, number, string, number, string], { id: number }>(
      `INSERT INTO task_runs (task_id, chat_id, due_at, started_at, late_ms, context_mode, status, ended_at, duration_ms, error)
       VALUES (?, ?, ?, ?, ?, ?, 'skipped', ?, 0, ?) ON CONFLICT (task_id, due_at) DO NOTHING RETURNING id`,
    );
    this.#get = db.prepare<[number], RunRow>('SELECT * FROM task_runs WHERE id = ?');
    this.#runningForTask = db.prepare<[number], RunRow>(
      `SELECT * FROM task_runs WHERE task_id = ? AND status = 'running' ORDER BY id DESC LIMIT 1`,
    );
    this.#forTask = db.prepare<[number, number], RunRow>('SELECT * FROM task_runs WHERE task_id = ? ORDER BY id DESC LIMIT ?');
    this.#running = db.prepare<[string], RunRow>(`SELECT * FROM task_runs WHERE status = 'running' AND context_mode = ? ORDER BY id`);
    this.#finish = db.prepare<
      [string, number, number | null, string | null, string | null, number | null, number | null, number | null, number]
    >(
      `UPDATE task_runs SET status = ?, ended_at = ?, duration_ms = ?, result = ?, error = ?, cost_usd = ?, input_tokens = ?, output_tokens = ?
       WHERE id = ? AND status = 'running'`,
    );
    this.#finishMessages = db.prepare<[string, number, number | null, string | null, string | null, number | null, string, number, number]>(
      `UPDATE task_runs SET status = ?, ended_at = ?, duration_ms = ?, result = ?, error = ?, cost_usd = ?
       WHERE chat_id = ? AND message_seq BETWEEN ? AND ? AND status = 'running'`,
    );
    this.#last = db.prepare<[number], RunRow>('SELECT * FROM task_runs WHERE task_id = ? ORDER BY id DESC LIMIT 1');
    // RETURNING sees the row after the update: attempts counts this one too.
    this.#beginAttempt = db.prepare<[number], { attempts: number; tool_calls: string }>(
      `UPDATE task_runs SET attempts = attempts + 1 WHERE id = ? AND status = 'running' RETURNING attempts, tool_calls`,
    );
    this.#noteToolCall = db.prepare<[string, number, number]>(
      `UPDATE task_runs SET tool_calls = json_insert(tool_calls, '$[#]', ?) WHERE id = ? AND json_array_length(tool_calls) < ?`,
    );
  }

  /**
   * An isolated run's session starts: undefined for its first attempt; for a later one (pincer was stopped or
   * crashed during the run), the tool calls the earlier attempts made.
   */
  beginAttempt(id: number): { toolCalls: string[] } | undefined {
    const row = this.#beginAttempt.get(id);
    if (!row || row.attempts <= 1) return undefined;
    // Written only by noteToolCall, as a JSON array of strings.
    const calls: unknown = JSON.parse(row.tool_calls);
    return { toolCalls: Array.isArray(calls) ? calls.filter((c): c is string => typeof c === 'string') : [] };
  }

  /** A tool call of an isolated run, kept (the first MAX_KEPT_TOOL_CALLS) for a later attempt to be told of. */
  noteToolCall(id: number, summary: string): void {
    this.#noteToolCall.run(summary, id, MAX_KEPT_TOOL_CALLS);
  }

  /** Records that a run starts; undefined when this due time already has a run (it never runs twice). */
  start(r: {
    taskId: number;
    chatId: string;
    dueAt: number;
    startedAt: number;
    contextMode: ContextMode;
    messageSeq: number | null;
  }): TaskRun | undefined {
    const row = this.#insert.get(r.taskId, r.chatId, r.dueAt, r.startedAt, r.startedAt - r.dueAt, r.contextMode, r.messageSeq);
    if (!row) return undefined;
    this.#changes.emit('tasks');
    return this.get(row.id);
  }

  /** Records a due time that was not run, and why (nothing when this due time already has a run). */
  skip(r: { taskId: number; chatId: string; dueAt: number; at: number; contextMode: ContextMode; reason: string }): void {
    const row = this.#insertSkipped.get(r.taskId, r.chatId, r.dueAt, r.at, r.at - r.dueAt, r.contextMode, r.at, r.reason);
    if (row) this.#changes.emit('tasks');
  }

  get(id: number): TaskRun | undefined {
    const row = this.#get.get(id);
    return row && toRun(row);
  }

  /** The task's newest run still marked running (waiting for a slot, or under way), if any. */
  runningFor(taskId: number): TaskRun | undefined {
    const row = this.#runningForTask.get(taskId);
    return row && toRun(row);
  }

  /** A task's runs, newest first. */
  forTask(taskId: number, limit: number): TaskRun[] {
    return this.#forTask.all(taskId, limit).map(toRun);
  }

  last(taskId: number): TaskRun | undefined {
    const row = this.#last.get(taskId);
    return row && toRun(row);
  }

  /** Runs still marked running (after a restart: the ones to finish). */
  running(contextMode: ContextMode): TaskRun[] {
    return this.#running.all(contextMode).map(toRun);
  }

  finish(id: number, end: RunEnd): void {
    const { changes } = this.#finish.run(
      end.status,
      end.endedAt,
      end.durationMs,
      end.result,
      end.error,
      end.costUsd,
      end.inputTokens ?? null,
      end.outputTokens ?? null,
      id,
    );
    if (changes > 0) this.#changes.emit('tasks');
  }

  /** Costs of isolated runs since `at` (group-context runs are counted with their group's turns). */
  isolatedCostsSince(at: number): Array<{ chatId: string; endedAt: number; costUsd: number | null }> {
    return this.#isolatedCosts.all(at);
  }

  /** A group turn ended: the runs whose prompts it carried end with it. */
  finishForMessages(chatId: string, firstSeq: number, lastSeq: number, end: RunEnd): void {
    const { changes } = this.#finishMessages.run(
      end.status,
      end.endedAt,
      end.durationMs,
      end.result,
      end.error,
      end.costUsd,
      chatId,
      firstSeq,
      lastSeq,
    );
    if (changes > 0) this.#changes.emit('tasks');
  }
}

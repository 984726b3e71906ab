// Administration of groups and tasks, for the agents' tools, the HTTP API and the CLI alike. Every call
// names who acts: the owner (API token) and the main group may act on any group; another group only on
// its own tasks. The acting group is fixed by the host when it creates a session, never taken from a call.
import type { Effort } from '../config.js';
import type { Logger } from '../log.js';
import { describePolicy, type EgressPolicy, egressPolicySchema } from '../proxy/egress-policy.js';
import { defaultTrigger } from '../router/trigger.js';
import type { ExtraMountRequest, ExtraMountsResult } from '../sandbox/mount-allowlist.js';
import type { Mount } from '../sandbox/types.js';
import { describeSchedule, nextDueAfter, parseSchedule, type ScheduleType } from '../scheduler/schedule.js';
import { type Chat, type ContextMode, GLOBAL_SCOPE, type Group, type Store, type Task, type TaskRun } from '../store/index.js';
import { mcpServersSchema } from '../store/mcp-server-schema.js';
import type { Budgets, SpendView } from './budgets.js';
import { type Actor, ControlError } from './control-error.js';
import { registerGroup } from './groups.js';
import { FOLDER_NAME, folderProblem, groupPaths, type StateLayout } from './layout.js';
import {
  describeIssues,
  keepMaskedSecrets,
  type McpServerView,
  maskServers,
  mcpServerProblems,
  routeOf,
  withoutViewFields,
} from './mcp-servers.js';
import { MemoryControl, type MemoryControlDeps } from './memory-control.js';
import type { ModelDefaults } from './model-choice.js';
import {
  applyModelChange,
  type ModelChange,
  type ModelView,
  modelView,
  type ProviderView,
  providerViews,
  taskModelProblem,
} from './model-settings.js';
import { checkExtraMounts, type SandboxSettings } from './sandbox-plan.js';

export { type Actor, ControlError, type ControlErrorCode } from './control-error.js';

export interface GroupView {
  chatId: string;
  folder: string;
  name: string | null;
  channel: string;
  trigger: string;
  respondToAll: boolean;
  isMain: boolean;
  senderAllowlist: string[] | null;
  timezone: string;
  egressPolicy: string;
  /** The model, provider, effort and fallback the group's next turn runs on. */
  models: ModelView;
  live: boolean;
  lastActivityAt: number | null;
}

export interface TaskView {
  id: number;
  group: string;
  chatId: string;
  prompt: string;
  scheduleType: ScheduleType;
  scheduleValue: string;
  timezone: string;
  schedule: string;
  contextMode: ContextMode;
  /** An isolated run's own model and effort; null: the group's. */
  model: string | null;
  effort: Effort | null;
  status: Task['status'];
  nextRunAt: string | null;
  lastRun: {
    dueAt: string;
    status: TaskRun['status'];
    endedAt: string | null;
    result: string | null;
    error: string | null;
    costUsd: number | null;
  } | null;
  createdBy: string;
}

export interface NewTaskInput {
  prompt: string;
  scheduleType: ScheduleType;
  scheduleValue: string;
  contextMode: ContextMode;
  /** A group's folder; default: the acting group (required for the owner). */
  targetGroup?: string;
  /** Default: the target group's time zone, else pincer's. */
  timezone?: string;
  /** Isolated runs only: their own model and effort instead of the group's. */
  model?: string | null;
  effort?: Effort | null;
}

export interface TaskChange {
  prompt?: string;
  scheduleType?: ScheduleType;
  scheduleValue?: string;
  contextMode?: ContextMode;
  timezone?: string;
  /** null: the group's again. */
  model?: string | null;
  effort?: Effort | null;
}

export interface JoinInput {
  chatId: string;
  folder?: string;
  trigger?: string;
  respondToAll?: boolean;
  senderAllowlist?: string[] | null;
}

export interface GroupChange {
  trigger?: string;
  respondToAll?: boolean;
  senderAllowlist?: string[] | null;
  timezone?: string | null;
}

export interface ControlDeps {
  store: Store;
  layout: StateLayout;
  /** For checking extra mounts as the group's sandbox will see them. */
  sandbox: SandboxSettings;
  assistantName: string;
  /** pincer's `TZ`: the default time zone of groups and their tasks. */
  timezone: string;
  /** The configured providers and the environment's model defaults. */
  models: ModelDefaults;
  /** Active and paused tasks one group may have: each may hold a slot of the queue when it runs. */
  maxTasksPerGroup: number;
  log: Logger;
  /** Tasks changed: the scheduler re-arms its one timer. */
  onTasksChanged(): void;
  /** A chat was joined: its agent may be started ahead of its first message. */
  onGroupJoined(chatId: string): void;
  /** A group was left: its live session, if any, ends. */
  onGroupRemoved(chatId: string): void;
  /** A group's settings changed: a live session started with the old ones ends as soon as it is idle. */
  onGroupChanged(chatId: string): void;
  isLive(chatId: string): boolean;
  budgets: Budgets;
  /** A budget changed: messages that waited for it may be answered now. */
  onBudgetChanged(): void;
  /** Recall by meaning, when an embeddings endpoint is configured. */
  meaning?: MemoryControlDeps['meaning'];
  now?: () => number;
}

export interface BudgetChange {
  /** A group's folder; omitted: the overall budget. */
  group?: string;
  /** USD per calendar day; null removes the limit; omitted keeps it. */
  dailyUsd?: number | null;
  monthlyUsd?: number | null;
}

export interface BudgetsView {
  global: SpendView;
  groups: Array<{ folder: string; chatId: string } & SpendView>;
}

const MAX_BUDGET_USD = 1_000_000;

const MAX_PROMPT = 20_000;
const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

export class Control {
  readonly #d: ControlDeps;
  readonly #now: () => number;
  /** A group's memory: search it, read around a hit, list, read and save its memory files. */
  readonly memory: MemoryControl;

  constructor(deps: ControlDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
    this.memory = new MemoryControl({
      store: deps.store,
      layout: deps.layout,
      timezone: deps.timezone,
      log: deps.log.child({ part: 'memory' }),
      ...(deps.meaning ? { meaning: deps.meaning } : {}),
      access: {
        isAdmin: (actor) => this.#isAdmin(actor),
        requireAdmin: (actor, what) => this.#requireAdmin(actor, what),
        actingGroup: (actor) => this.#actingGroup(actor),
        groupByFolder: (folder) => this.#groupByFolder(folder),
      },
    });
  }

  // ---- groups (owner and main group only) ----

  listGroups(actor: Actor): GroupView[] {
    this.#requireAdmin(actor, 'list groups');
    return this.#d.store.groups.list().map((g) => this.#groupView(g));
  }

  /** Chats pincer has seen, per channel; by default only those not joined yet. */
  listChats(actor: Actor, opts: { includeJoined?: boolean } = {}): Chat[] {
    this.#requireAdmin(actor, 'list chats');
    const joined = new Set(this.#d.store.groups.list().map((g) => g.chatId));
    return this.#d.store.chats.list().filter((c) => opts.includeJoined || !joined.has(c.id));
  }

  registerGroup(actor: Actor, input: JoinInput): GroupView {
    this.#requireAdmin(actor, 'join chats');
    const { store, layout } = this.#d;
    if (store.groups.get(input.chatId)) throw new ControlError('conflict', `${input.chatId} is already joined`);
    const chat = store.chats.get(input.chatId);
    if (!chat && !input.chatId.startsWith('local:')) {
      throw new ControlError('not_found', `pincer has not seen a chat ${input.chatId}; list_chats shows the ones it has`);
    }
    const folder = input.folder ?? this.#freeFolder(chat?.name ?? input.chatId.split(':').slice(1).join('-'));
    const problem = folderProblem(folder);
    if (problem) throw new ControlError('invalid', problem);
    if (store.groups.byFolder(folder)) throw new ControlError('conflict', `folder "${folder}" is taken by another group`);
    const trigger = input.trigger ?? defaultTrigger(this.#d.assistantName);
    this.#checkTrigger(trigger);
    const group = store.transaction(() => {
      const g = registerGroup(
        store,
        layout,
        { chatId: input.chatId, folder, trigger, respondToAll: input.respondToAll ?? false, isMain: false },
        this.#now(),
      );
      return input.senderAllowlist === undefined ? g : store.groups.updateSettings(g.chatId, { senderAllowlist: input.senderAllowlist });
    });
    this.#d.log.info({ chatId: group.chatId, folder, by: this.#who(actor) }, 'group joined');
    this.#d.onGroupJoined(group.chatId);
    return this.#groupView(group);
  }

  updateGroup(actor: Actor, folder: string, change: GroupChange): GroupView {
    this.#requireAdmin(actor, 'change groups');
    const g = this.#groupByFolder(folder);
    if (change.trigger !== undefined) this.#checkTrigger(change.trigger);
    if (change.timezone) this.#checkTimezone(change.timezone);
    const updated = this.#d.store.groups.updateSettings(g.chatId, change);
    this.#d.log.info({ folder, change, by: this.#who(actor) }, 'group changed');
    this.#d.onGroupChanged(g.chatId);
    return this.#groupView(updated);
  }

  /** Leaves a chat: its active tasks are cancelled; its folder and history stay for a later join. */
  unregisterGroup(actor: Actor, folder: string): void {
    this.#requireAdmin(actor, 'leave chats');
    const g = this.#groupByFolder(folder);
    if (g.isMain) throw new ControlError('forbidden', 'the main group cannot be removed');
    const { store } = this.#d;
    store.transaction(() => {
      for (const t of store.tasks.list(g.chatId)) store.tasks.update(t.id, { status: 'cancelled', nextRunAt: null });
      store.groups.remove(g.chatId);
    });
    this.#d.log.info({ folder, by: this.#who(actor) }, 'group left');
    this.#d.onGroupRemoved(g.chatId);
    this.#d.onTasksChanged();
  }

  /** Applies from the group's next connection on. */
  setEgressPolicy(actor: Actor, folder: string, policy: EgressPolicy): GroupView {
    this.#requireAdmin(actor, "change a group's egress policy");
    const g = this.#groupByFolder(folder);
    const parsed = egressPolicySchema.safeParse(policy);
    if (!parsed.success) throw new ControlError('invalid', parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; '));
    this.#d.store.groups.setEgressPolicy(g.chatId, parsed.data);
    this.#d.log.info({ folder, policy: parsed.data, by: this.#who(actor) }, 'egress policy changed');
    return this.#groupView(this.#groupByFolder(folder));
  }

  /** Sets a group's model, effort, provider or fallback; applies from its next turn (a live session ends after its turn). */
  setGroupModel(actor: Actor, folder: string, change: ModelChange): GroupView {
    this.#requireAdmin(actor, "change a group's model");
    const g = this.#groupByFolder(folder);
    const next = applyModelChange(this.#d.models, g.models, change);
    if (!next.ok) throw new ControlError('invalid', next.problem);
    const updated = this.#d.store.groups.setModels(g.chatId, next.models);
    this.#d.log.info({ folder, models: next.models, by: this.#who(actor) }, 'group model changed');
    this.#d.onGroupChanged(g.chatId);
    return this.#groupView(updated);
  }

  /** The configured model providers, without their keys (the main group and the owner only). */
  listProviders(actor: Actor): ProviderView[] {
    this.#requireAdmin(actor, 'list model providers');
    return providerViews(this.#d.models);
  }

  /** Every budget with what was spent today and this month (the main group and the owner only). */
  budgets(actor: Actor): BudgetsView {
    this.#requireAdmin(actor, 'see budgets and spend');
    const { budgets, store } = this.#d;
    return {
      global: budgets.view(),
      groups: store.groups.list().map((g) => ({ folder: g.folder, chatId: g.chatId, ...budgets.view(g.chatId) })),
    };
  }

  /** Sets a group's or the overall budget; messages that waited for it are answered if it now allows. */
  setBudget(actor: Actor, change: BudgetChange): BudgetsView {
    this.#requireAdmin(actor, 'change a budget');
    for (const [name, value] of [
      ['dailyUsd', change.dailyUsd],
      ['monthlyUsd', change.monthlyUsd],
    ] as const) {
      if (value !== undefined && value !== null && !(Number.isFinite(value) && value > 0 && value <= MAX_BUDGET_USD))
        throw new ControlError('invalid', `${name} must be an amount in USD above 0 and at most ${MAX_BUDGET_USD}, or null for no limit`);
    }
    const scope = change.group === undefined ? GLOBAL_SCOPE : this.#groupByFolder(change.group).chatId;
    const current = this.#d.budgets.limits(scope);
    const next = {
      dailyUsd: change.dailyUsd === undefined ? current.dailyUsd : change.dailyUsd,
      monthlyUsd: change.monthlyUsd === undefined ? current.monthlyUsd : change.monthlyUsd,
    };
    const { store } = this.#d;
    // A group without limits has no row; the overall one keeps its row, so "no limit" overrides the environment's.
    if (scope !== GLOBAL_SCOPE && next.dailyUsd === null && next.monthlyUsd === null) store.budgets.remove(scope);
    else store.budgets.set(scope, next, this.#now());
    this.#d.log.info({ scope, ...next, by: this.#who(actor) }, 'budget changed');
    this.#d.onBudgetChanged();
    return this.budgets(actor);
  }

  /** Checked against the owner's allowlist now and at every sandbox start; applies from the group's next session. */
  setExtraMounts(actor: Actor, folder: string, mounts: ExtraMountRequest[]): Mount[] {
    this.#requireAdmin(actor, "change a group's extra mounts");
    const g = this.#groupByFolder(folder);
    let checked: ExtraMountsResult;
    try {
      checked = checkExtraMounts(mounts, g, this.#d.sandbox);
    } catch (err) {
      throw new ControlError('invalid', err instanceof Error ? err.message : String(err));
    }
    if (checked.rejected.length > 0) {
      throw new ControlError(
        'invalid',
        `nothing changed; refused: ${checked.rejected.map((r) => `${r.request.hostPath}: ${r.reason}`).join('; ')}`,
      );
    }
    this.#d.store.groups.setExtraMounts(g.chatId, mounts);
    this.#d.log.info({ folder, mounts: checked.mounts, by: this.#who(actor) }, 'extra mounts changed');
    this.#d.onGroupChanged(g.chatId);
    return checked.mounts;
  }

  /** A group's extra MCP servers, every secret value masked (the main group and the owner only). */
  listMcpServers(actor: Actor, folder: string): McpServerView[] {
    this.#requireAdmin(actor, "see a group's MCP servers");
    return maskServers(this.#groupByFolder(folder).mcpServers);
  }

  /**
   * Replaces a group's extra MCP servers, all or nothing; they apply from its next session (a live one ends
   * as soon as it is idle). A masked value
   * (as listings show it) keeps the stored one. Values are never logged.
   */
  setMcpServers(actor: Actor, folder: string, servers: unknown): McpServerView[] {
    this.#requireAdmin(actor, "change a group's MCP servers");
    const g = this.#groupByFolder(folder);
    const parsed = mcpServersSchema.safeParse(withoutViewFields(servers));
    if (!parsed.success) throw new ControlError('invalid', `nothing changed; ${describeIssues(parsed.error, servers)}`);
    const { servers: next, problems } = keepMaskedSecrets(parsed.data, g.mcpServers);
    const { groupDir } = groupPaths(this.#d.layout, g.folder, g.isMain);
    for (const p of mcpServerProblems(next, groupDir)) problems.push(`server "${p.name}": ${p.reason}`);
    if (problems.length > 0) throw new ControlError('invalid', `nothing changed; refused: ${problems.join('; ')}`);
    this.#d.store.groups.setMcpServers(g.chatId, next);
    const names = next.map((s) => `${s.name} (${routeOf(s)})`);
    this.#d.log.info({ folder, servers: names, by: this.#who(actor) }, 'MCP servers changed');
    this.#d.onGroupChanged(g.chatId);
    return maskServers(next);
  }

  // ---- tasks ----

  scheduleTask(actor: Actor, input: NewTaskInput): TaskView {
    const target = this.#targetGroup(actor, input.targetGroup);
    const prompt = this.#checkPrompt(input.prompt);
    const timezone = input.timezone ?? target.timezone ?? this.#d.timezone;
    const now = this.#now();
    const parsed = parseSchedule(input.scheduleType, input.scheduleValue, timezone, now);
    if (!parsed.ok) throw new ControlError('invalid', parsed.error);
    const model = input.model ?? null;
    const effort = input.effort ?? null;
    if (model !== null || effort !== null) this.#requireAdmin(actor, "choose a task's model or effort");
    this.#checkTaskModel(input.contextMode, model, effort);
    const max = this.#d.maxTasksPerGroup;
    if (this.#d.store.tasks.scheduledCount(target.chatId) >= max)
      throw new ControlError(
        'conflict',
        `group ${target.folder} already has ${max} scheduled tasks (active or paused), the most allowed (PINCER_MAX_TASKS_PER_GROUP): cancel one before scheduling another; nothing was scheduled`,
      );
    const task = this.#d.store.tasks.add({
      chatId: target.chatId,
      prompt,
      scheduleType: input.scheduleType,
      scheduleValue: parsed.value,
      timezone,
      anchorAt: now,
      contextMode: input.contextMode,
      status: 'active',
      nextRunAt: parsed.firstDueAt,
      createdBy: this.#who(actor),
      createdAt: now,
      model,
      effort,
    });
    this.#d.log.info({ task: task.id, group: target.folder, by: task.createdBy }, 'task scheduled');
    this.#d.onTasksChanged();
    return this.#taskView(task);
  }

  /** The owner and the main group see every group's tasks (or one group's); another group only its own. */
  listTasks(actor: Actor, opts: { group?: string } = {}): TaskView[] {
    const { store } = this.#d;
    if (actor.kind === 'owner' || this.#actingGroup(actor).isMain) {
      const chatId = opts.group === undefined ? undefined : this.#groupByFolder(opts.group).chatId;
      return store.tasks.list(chatId).map((t) => this.#taskView(t));
    }
    const own = this.#actingGroup(actor);
    if (opts.group !== undefined && opts.group !== own.folder)
      throw new ControlError('forbidden', "only the main group can see other groups' tasks");
    return store.tasks.list(own.chatId).map((t) => this.#taskView(t));
  }

  updateTask(actor: Actor, id: number, change: TaskChange): TaskView {
    const task = this.#ownTask(actor, id);
    if (task.status === 'cancelled' || task.status === 'completed') throw new ControlError('conflict', `task ${id} is ${task.status}`);
    const prompt = change.prompt === undefined ? undefined : this.#checkPrompt(change.prompt);
    const model = change.model === undefined ? task.model : change.model;
    const effort = change.effort === undefined ? task.effort : change.effort;
    // A group's own model is the main group's choice: another group cannot run its tasks on a dearer one.
    if (change.model !== undefined || change.effort !== undefined) this.#requireAdmin(actor, "choose a task's model or effort");
    this.#checkTaskModel(change.contextMode ?? task.contextMode, model, effort);
    const scheduleChanged = change.scheduleType !== undefined || change.scheduleValue !== undefined || change.timezone !== undefined;
    let schedule: Partial<Task> = {};
    if (scheduleChanged) {
      const type = change.scheduleType ?? task.scheduleType;
      const value = change.scheduleValue ?? task.scheduleValue;
      const timezone = change.timezone ?? task.timezone;
      const now = this.#now();
      const parsed = parseSchedule(type, value, timezone, now);
      if (!parsed.ok) throw new ControlError('invalid', parsed.error);
      schedule = { scheduleType: type, scheduleValue: parsed.value, timezone, anchorAt: now };
      if (task.status === 'active') schedule.nextRunAt = parsed.firstDueAt;
    }
    const updated = this.#d.store.tasks.update(id, { ...schedule, prompt, contextMode: change.contextMode, model, effort });
    this.#d.onTasksChanged();
    return this.#taskView(updated);
  }

  pauseTask(actor: Actor, id: number): TaskView {
    const task = this.#ownTask(actor, id);
    if (task.status !== 'active') throw new ControlError('conflict', `task ${id} is ${task.status}, not active`);
    const updated = this.#d.store.tasks.update(id, { status: 'paused', nextRunAt: null });
    this.#d.onTasksChanged();
    return this.#taskView(updated);
  }

  /** Resumes from now: slots missed while paused are not run. */
  resumeTask(actor: Actor, id: number): TaskView {
    const task = this.#ownTask(actor, id);
    if (task.status !== 'paused') throw new ControlError('conflict', `task ${id} is ${task.status}, not paused`);
    const now = this.#now();
    const next = nextDueAfter(
      { type: task.scheduleType, value: task.scheduleValue, timezone: task.timezone, anchorAt: task.anchorAt },
      now,
    );
    const updated = this.#d.store.tasks.update(
      id,
      next === null ? { status: 'completed', nextRunAt: null } : { status: 'active', nextRunAt: next },
    );
    this.#d.onTasksChanged();
    return this.#taskView(updated);
  }

  cancelTask(actor: Actor, id: number): TaskView {
    const task = this.#ownTask(actor, id);
    if (task.status === 'cancelled') throw new ControlError('conflict', `task ${id} is already cancelled`);
    const updated = this.#d.store.tasks.update(id, { status: 'cancelled', nextRunAt: null });
    this.#d.onTasksChanged();
    return this.#taskView(updated);
  }

  taskRuns(actor: Actor, id: number, limit = 20): TaskRun[] {
    this.#ownTask(actor, id);
    return this.#d.store.taskRuns.forTask(id, Math.min(Math.max(limit, 1), 500));
  }

  // ---- authorization and lookups ----

  #isAdmin(actor: Actor): boolean {
    if (actor.kind === 'owner') return true;
    return this.#actingGroup(actor).isMain;
  }

  #requireAdmin(actor: Actor, what: string): void {
    if (!this.#isAdmin(actor)) throw new ControlError('forbidden', `only the main group can ${what}`);
  }

  /** The acting group, read afresh: a group that was left meanwhile can do nothing. */
  #actingGroup(actor: Actor & { kind: 'group' }): Group {
    const g = this.#d.store.groups.get(actor.chatId);
    if (!g) throw new ControlError('forbidden', `${actor.chatId} is no longer a joined group`);
    return g;
  }

  #who(actor: Actor): string {
    return actor.kind === 'owner' ? 'owner' : (this.#d.store.groups.get(actor.chatId)?.folder ?? actor.chatId);
  }

  #targetGroup(actor: Actor, folder: string | undefined): Group {
    if (actor.kind === 'owner') {
      if (folder === undefined) throw new ControlError('invalid', 'say which group the task is for');
      return this.#groupByFolder(folder);
    }
    const own = this.#actingGroup(actor);
    if (folder === undefined || folder === own.folder) return own;
    if (!own.isMain) throw new ControlError('forbidden', 'only the main group can schedule tasks for other groups');
    return this.#groupByFolder(folder);
  }

  #ownTask(actor: Actor, id: number): Task {
    const task = this.#d.store.tasks.get(id);
    if (!task) throw new ControlError('not_found', `there is no task ${id}`);
    if (actor.kind === 'owner') return task;
    const own = this.#actingGroup(actor);
    if (own.isMain) return task;
    // Another group's task is reported as missing: its existence is not this group's business.
    if (task.chatId !== own.chatId) throw new ControlError('not_found', `there is no task ${id}`);
    return task;
  }

  #groupByFolder(folder: string): Group {
    const g = FOLDER_NAME.test(folder) ? this.#d.store.groups.byFolder(folder) : undefined;
    if (!g) throw new ControlError('not_found', `no group has the folder "${folder}"`);
    return g;
  }

  /** A folder name from a chat's name: host-made, `[a-z0-9_-]`, unique. */
  #freeFolder(name: string): string {
    const base =
      name
        .normalize('NFKD')
        .toLowerCase()
        .replace(/[^a-z0-9]+/g, '-')
        .replace(/^-+|-+$/g, '')
        .slice(0, 56) || 'chat';
    const safe = folderProblem(base) ? `chat-${base}`.slice(0, 56) : base;
    for (let i = 1; ; i++) {
      const candidate = i === 1 ? safe : `${safe}-${i}`;
      if (!this.#d.store.groups.byFolder(candidate) && !folderProblem(candidate)) return candidate;
    }
  }

  #checkPrompt(prompt: string): string {
    const p = prompt.trim();
    if (!p) throw new ControlError('invalid', 'the prompt is empty');
    if (p.length > MAX_PROMPT) throw new ControlError('invalid', `the prompt is longer than ${MAX_PROMPT} characters`);
    return p;
  }

  #checkTaskModel(contextMode: ContextMode, model: string | null, effort: Effort | null): void {
    const problem = taskModelProblem(contextMode, model, effort);
    if (problem) throw new ControlError('invalid', problem);
  }

  #checkTrigger(trigger: string): void {
    if (!/^\S{2,64}$/u.test(trigger))
      throw new ControlError('invalid', `trigger "${trigger}" must be one word of 2 to 64 characters, e.g. @Andy`);
  }

  #checkTimezone(tz: string): void {
    try {
      new Intl.DateTimeFormat('en-US', { timeZone: tz });
    } catch {
      throw new ControlError('invalid', `unknown time zone "${tz}" (use an IANA name such as Europe/Berlin)`);
    }
  }

  #groupView(g: Group): GroupView {
    const chat = this.#d.store.chats.get(g.chatId);
    return {
      chatId: g.chatId,
      folder: g.folder,
      name: chat?.name ?? null,
      channel: chat?.channel ?? g.chatId.split(':')[0] ?? 'unknown',
      trigger: g.trigger,
      respondToAll: g.respondToAll,
      isMain: g.isMain,
      senderAllowlist: g.senderAllowlist,
      timezone: g.timezone ?? this.#d.timezone,
      egressPolicy: describePolicy(g.egressPolicy),
      models: modelView(this.#d.models, g),
      live: this.#d.isLive(g.chatId),
      lastActivityAt: chat?.lastSeenAt ?? null,
    };
  }

  #taskView(t: Task): TaskView {
    const last = this.#d.store.taskRuns.last(t.id);
    return {
      id: t.id,
      group: this.#d.store.groups.get(t.chatId)?.folder ?? t.chatId,
      chatId: t.chatId,
      prompt: t.prompt,
      scheduleType: t.scheduleType,
      scheduleValue: t.scheduleValue,
      timezone: t.timezone,
      schedule: describeSchedule({ type: t.scheduleType, value: t.scheduleValue, timezone: t.timezone, anchorAt: t.anchorAt }),
      contextMode: t.contextMode,
      model: t.model,
      effort: t.effort,
      status: t.status,
      nextRunAt: iso(t.nextRunAt),
      lastRun: last
        ? {
            dueAt: iso(last.dueAt) as string,
            status: last.status,
            endedAt: iso(last.endedAt),
            result: last.result,
            error: last.error,
            costUsd: last.costUsd,
          }
        : null,
      createdBy: t.createdBy,
    };
  }
}

// Answers for the owner: what happened to a message (its trace), what pincer is doing now (status), and
// what it cost (usage per group and day). Read-only; the API and the CLI show it.
import type { ConnectionState } from '../channels/types.js';
import type { Group, Stage, Store, Task, TaskRun, TraceEvent } from '../store/index.js';

export interface TraceView {
  message: { id: string; chatId: string; sender: string; text: string; sentAt: string; engages: boolean };
  stages: Array<{ stage: Stage; at: string; detail: string | null }>;
}

/** A group's agent: at work on a turn, started and idle (warm, or started ahead of a message), or none. */
export type AgentState = 'working' | 'ready' | 'none';

export interface StatusView {
  channels: Array<{ name: string; state: ConnectionState | 'unknown' }>;
  /** live: an agent is up (working or ready). */
  /** model: what the group's next turn runs on, in one line ("claude-haiku-4-5 on anthropic, effort low"). */
  groups: Array<{ folder: string; chatId: string; isMain: boolean; live: boolean; agent: AgentState; model: string }>;
  /** active: the agent slots taken, of which `working` are at work and `ready` wait for a message; waiting: groups queued for a slot. */
  queue: { active: number; working: number; ready: number; waiting: number };
  nextTasks: Array<{ id: number; group: string; nextRunAt: string }>;
  /** costUsd: of the calls with a known price; unpricedCalls: calls whose cost is unknown (not in costUsd, never zero). */
  today: { date: string; costUsd: number; unpricedCalls: number; turns: number };
  outbox: { pending: number; failed: number };
}

export interface UsageRow {
  date: string;
  group: string;
  turns: number;
  /** Model calls the proxy metered (every call the group's sandboxes made). */
  calls: number;
  /** Of the calls with a known price. */
  costUsd: number;
  /** Calls to a model whose price is not known: their cost is not in `costUsd`. */
  unpricedCalls: number;
  inputTokens: number;
  outputTokens: number;
  /** The same calls per provider and model, dearest first. */
  models: ModelUsageRow[];
}

/** One model's calls in a group's day. */
export interface ModelUsageRow {
  /** null: metered before pincer recorded providers (the default one then). */
  provider: string | null;
  /** As the endpoint named it; null when it did not. */
  model: string | null;
  calls: number;
  /** null: unknown, the model's price is not in pincer's list (never counted as free); the tokens are counted. */
  costUsd: number | null;
  inputTokens: number;
  outputTokens: number;
}

export interface InsightDeps {
  store: Store;
  timezone: string;
  channels(): ReadonlyArray<{ name: string; state?(): ConnectionState }>;
  queue(): { active: number; waiting: number };
  agentState(chatId: string): AgentState;
  /** A spend limit of the chat's group (or the overall one) is reached: its messages wait. */
  budgetReached(chatId: string): boolean;
  /** What a group's next turn runs on, in one line. */
  modelOf(group: Group): string;
  now?: () => number;
}

const DAY_MS = 24 * 3600_000;

/** Stages of one message itself; the others are of the turn that answered it (recorded under its last message). */
const MESSAGE_STAGES: ReadonlySet<Stage> = new Set([
  'received',
  'scheduled',
  'duplicate',
  'engaged',
  'ignored',
  'over_budget',
  'queued',
  'prompted',
  'omitted',
]);

/** Stages that show a turn took a message up. */
const TAKEN_UP: ReadonlySet<Stage> = new Set(['prompted', 'model_request', 'tool', 'replied', 'turn_failed']);

export class Insight {
  readonly #d: InsightDeps;
  readonly #day: Intl.DateTimeFormat;
  readonly #now: () => number;

  constructor(deps: InsightDeps) {
    this.#d = deps;
    this.#now = deps.now ?? Date.now;
    // en-CA formats as YYYY-MM-DD: a calendar day in the owner's time zone.
    this.#day = new Intl.DateTimeFormat('en-CA', { timeZone: deps.timezone, year: 'numeric', month: '2-digit', day: '2-digit' });
  }

  /** Every stage a stored message went through, with the reason at each decision; undefined when there is no such message. */
  trace(seq: number): TraceView | undefined {
    const { store } = this.#d;
    const m = store.messages.get(seq);
    if (!m) return undefined;
    return {
      message: {
        id: String(m.seq),
        chatId: m.chatId,
        sender: m.senderName,
        text: m.text,
        sentAt: new Date(m.sentAt).toISOString(),
        engages: m.engages,
      },
      stages: this.#stages(m.chatId, seq).map((e) => ({ stage: e.stage, at: new Date(e.at).toISOString(), detail: e.detail })),
    };
  }

  /**
   * A message's own events, and when a turn answered it together with later messages, that turn's events (they
   * are recorded under the turn's last message): its agent, model calls, tools, reply and delivery.
   */
  #stages(chatId: string, seq: number): TraceEvent[] {
    const { store } = this.#d;
    const own = store.events.trace(seq);
    const last = store.turns.carrying(chatId, seq);
    if (last === undefined || last === seq) return own;
    const prompted = own.findLast((e) => e.stage === 'prompted')?.at ?? 0;
    const turns = store.events
      .trace(last)
      .filter((e) => !MESSAGE_STAGES.has(e.stage) && e.at >= prompted)
      .map((e) => ({ ...e, detail: `with message ${last}${e.detail ? `: ${e.detail}` : ''}` }));
    return [...own, ...turns].sort((a, b) => a.at - b.at);
  }

  status(): StatusView {
    const { store } = this.#d;
    const groups = store.groups.list();
    const folder = new Map(groups.map((g) => [g.chatId, g.folder]));
    const now = this.#now();
    const today = this.usage(1).filter((u) => u.date === this.#day.format(now));
    const agents = groups.map((g) => ({
      folder: g.folder,
      chatId: g.chatId,
      isMain: g.isMain,
      agent: this.#d.agentState(g.chatId),
      model: this.#d.modelOf(g),
    }));
    const queue = this.#d.queue();
    // A slot not held by a ready group's agent is at work (a group's turn, or a scheduled run of its own).
    const ready = agents.filter((g) => g.agent === 'ready').length;
    return {
      channels: this.#d.channels().map((c) => ({ name: c.name, state: c.state?.() ?? 'unknown' })),
      groups: agents.map((g) => ({ ...g, live: g.agent !== 'none' })),
      queue: { active: queue.active, working: Math.max(0, queue.active - ready), ready, waiting: queue.waiting },
      nextTasks: store.tasks
        .list()
        .filter((t) => t.status === 'active' && t.nextRunAt !== null)
        .sort((a, b) => (a.nextRunAt ?? 0) - (b.nextRunAt ?? 0))
        .slice(0, 5)
        .map((t) => ({ id: t.id, group: folder.get(t.chatId) ?? t.chatId, nextRunAt: new Date(t.nextRunAt ?? 0).toISOString() })),
      today: {
        date: this.#day.format(now),
        costUsd: today.reduce((sum, u) => sum + u.costUsd, 0),
        unpricedCalls: today.reduce((sum, u) => sum + u.unpricedCalls, 0),
        turns: today.reduce((sum, u) => sum + u.turns, 0),
      },
      outbox: store.outbox.openCounts(),
    };
  }

  /**
   * A scheduled run as its owner should read it: a run whose message a budget holds back is waiting, not running
   * (it runs once the budget allows: raised, or a new day or month).
   */
  runState(run: TaskRun): string {
    if (run.status !== 'running' || run.messageSeq === null) return run.status;
    // Not taken up by a turn since its latest refusal, or (a refusal the lane did not get to record) while the
    // budget stays reached. A notice's delivery after the refusal says nothing either way.
    const stages = this.#d.store.events.trace(run.messageSeq).map((e) => e.stage);
    const refused = stages.lastIndexOf('over_budget');
    const takenUp = stages.slice(refused + 1).some((stage) => TAKEN_UP.has(stage));
    const held = !takenUp && (refused >= 0 || this.#d.budgetReached(run.chatId));
    return held ? 'waiting: budget reached' : 'running';
  }

  /**
   * A task and its last run as its owner should read them: a one-off whose run has not happened yet is not
   * completed, it is what its run is (running, or waiting).
   */
  taskState(task: Pick<Task, 'id' | 'status'>): { state: string; lastRunState: string | null } {
    const last = this.#d.store.taskRuns.last(task.id);
    const lastRunState = last ? this.runState(last) : null;
    const state = task.status === 'completed' && last?.status === 'running' ? (lastRunState ?? task.status) : task.status;
    return { state, lastRunState };
  }

  /** Turns, metered calls, cost and tokens per group and day (in pincer's time zone) for the last `days` days, newest first. */
  usage(days: number): UsageRow[] {
    const { store } = this.#d;
    const since = this.#now() - days * DAY_MS;
    const folder = new Map(store.groups.list().map((g) => [g.chatId, g.folder]));
    const rows = new Map<string, UsageRow>();
    const rowOf = (chatId: string, at: number): UsageRow => {
      const date = this.#day.format(at);
      const group = folder.get(chatId) ?? chatId;
      const key = `${date} ${group}`;
      let row = rows.get(key);
      if (!row) {
        row = { date, group, turns: 0, calls: 0, costUsd: 0, unpricedCalls: 0, inputTokens: 0, outputTokens: 0, models: [] };
        rows.set(key, row);
      }
      return row;
    };
    for (const t of store.turns.endedSince(since)) rowOf(t.chatId, t.endedAt).turns += 1;
    for (const r of store.taskRuns.isolatedCostsSince(since)) rowOf(r.chatId, r.endedAt).turns += 1;
    // The money and tokens are the proxy's metering, never what an agent reported.
    for (const slot of store.modelUsage.usageSince(since)) {
      const row = rowOf(slot.chatId, slot.at);
      row.calls += slot.calls;
      row.costUsd += slot.costUsd;
      row.unpricedCalls += slot.unpricedCalls;
      row.inputTokens += slot.inputTokens;
      row.outputTokens += slot.outputTokens;
      let m = row.models.find((x) => x.provider === slot.provider && x.model === slot.model);
      if (!m) {
        m = { provider: slot.provider, model: slot.model, calls: 0, costUsd: 0, inputTokens: 0, outputTokens: 0 };
        row.models.push(m);
      }
      m.calls += slot.calls;
      // A model without a known price stays unknown: its known-priced calls (none) do not make it cost zero.
      m.costUsd = m.costUsd === null || slot.unpricedCalls > 0 ? null : m.costUsd + slot.costUsd;
      m.inputTokens += slot.inputTokens;
      m.outputTokens += slot.outputTokens;
    }
    for (const row of rows.values())
      row.models.sort((a, b) => (b.costUsd ?? Number.POSITIVE_INFINITY) - (a.costUsd ?? Number.POSITIVE_INFINITY) || b.calls - a.calls);
    return [...rows.values()].sort((a, b) => b.date.localeCompare(a.date) || a.group.localeCompare(b.group));
  }
}

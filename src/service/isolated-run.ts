// A scheduled run in `isolated` context: a fresh session (no history, its own Claude Code state), one
// prompt, its answer posted to the group's chat, then gone. It takes a queue slot like a group does.
import { describeTurnFailure } from '../agent/failure-text.js';
import { AgentSession, type SessionEnd, type TurnOutcome } from '../agent/session.js';
import type { Logger } from '../log.js';
import type { Lane } from '../queue/group-queue.js';
import { stripInternal } from '../router/outbound.js';
import { formatInterruptedAttempt } from '../router/prompt.js';
import { runPrompt } from '../scheduler/run-prompt.js';
import type { Group, RunEnd, Task, TaskRun } from '../store/index.js';
import { TOOL_SERVER_NAME } from '../store/mcp-server-schema.js';
import { createPincerServer } from '../tools/pincer-server.js';
import { type LaneDeps, RUN_RESULT_CHARS } from './group-lane.js';
import { sessionMcpServers } from './mcp-servers.js';
import { modelChoice } from './model-choice.js';
import { sandboxPlan } from './sandbox-plan.js';
import { systemPromptAppend } from './system-prompt.js';
import { chatToolContext } from './tool-context.js';

export class IsolatedRun implements Lane {
  readonly done: Promise<void>;
  readonly #deps: LaneDeps;
  readonly #run: TaskRun;
  readonly #task: Task;
  readonly #group: Group;
  readonly #log: Logger;
  #session: AgentSession | undefined;
  #timeout: NodeJS.Timeout | undefined;
  #started = false;
  #finished = false;
  #resolveDone!: () => void;

  constructor(deps: LaneDeps, run: TaskRun, task: Task, group: Group) {
    this.#deps = deps;
    this.#run = run;
    this.#task = task;
    this.#group = group;
    this.#log = deps.log.child({ group: group.folder, task: task.id, run: run.id });
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  wake(): void {
    if (this.#started) return;
    this.#started = true;
    this.#begin();
  }

  /** A run is never idle: it holds its slot until its one prompt is answered. */
  isIdle(): boolean {
    return false;
  }

  closeIfIdle(): void {}

  /** pincer is stopping: the run stays `running` in the store and starts again after the restart. */
  shutdown(): void {
    this.#finished = true;
    clearTimeout(this.#timeout);
    if (this.#session) this.#session.kill();
    else this.#resolveDone();
  }

  #begin(): void {
    const { runtime, settings, store } = this.#deps;
    // The task's own model and effort over its group's.
    const chosen = modelChoice(settings.models, this.#group, this.#task);
    if (!chosen.ok || !runtime.ok) {
      this.#finish(null, !chosen.ok ? chosen.reason : runtime.ok ? '' : runtime.reason);
      this.#resolveDone();
      return;
    }
    const { choice } = chosen;
    const chatId = this.#group.chatId;
    const budget = this.#deps.budgets.check(chatId);
    if (!budget.ok) {
      // Logged as failed, not posted: the chat hears about the budget once, not at every run.
      this.#finished = true;
      const now = Date.now();
      store.taskRuns.finish(this.#run.id, {
        status: 'error',
        endedAt: now,
        durationMs: now - this.#run.startedAt,
        result: null,
        error: `not run: ${budget.scope === 'group' ? "the group's" : 'the overall'} ${budget.period === 'day' ? 'daily' : 'monthly'} budget is reached`,
        costUsd: null,
      });
      this.#deps.budgets.refuse(chatId, [], budget);
      this.#resolveDone();
      return;
    }
    const plan = sandboxPlan(this.#deps.layout, this.#group, settings.sandbox, this.#log, { isolated: true });
    // The group's own MCP servers serve its scheduled runs too.
    const extraMcp = sessionMcpServers(store.groups.get(chatId)?.mcpServers ?? [], plan, this.#log);
    const session = new AgentSession({
      runtime: runtime.runtime,
      plan,
      egressPolicy: () => store.groups.get(chatId)?.egressPolicy ?? { mode: 'none' },
      egressTestSeam: this.#deps.egressTestSeam,
      onEgress: (r) => store.egress.record({ chatId, ...r, reason: r.reason ?? null, address: r.address ?? null }),
      provider: choice.provider,
      meter: this.#deps.budgets.meterFor(chatId, choice.provider.name),
      model: choice.model,
      effort: choice.effort,
      fallbackModel: choice.fallbackModel,
      maxRetries: settings.modelMaxRetries,
      resume: undefined,
      timezone: this.#task.timezone,
      systemPromptAppend: systemPromptAppend(settings.assistantName, this.#group, this.#task.timezone),
      mcpServers: {
        ...extraMcp.servers,
        [TOOL_SERVER_NAME]: createPincerServer(chatToolContext(this.#deps, this.#group, () => null)),
      },
      log: this.#log,
      handlers: {
        onSpawned: () => {},
        onModelRequest: (model) => this.#log.debug({ model, provider: choice.provider.name }, 'model request'),
        onToolUse: (summary) => {
          this.#log.debug({ tool: summary }, 'tool used');
          store.taskRuns.noteToolCall(this.#run.id, summary);
        },
        onResult: (outcome) => this.#onResult(outcome),
      },
    });
    this.#session = session;
    void session.done.then(() => extraMcp.close());
    void session.done.then((end) => this.#onEnd(end));
    this.#timeout = setTimeout(() => {
      this.#finish(null, `the run took longer than ${Math.round(settings.turnTimeoutMs / 1000)} s and was stopped`);
      session.kill();
    }, settings.turnTimeoutMs);
    // A run still marked running after a restart starts again: it is told what the cut-off attempt did.
    const interrupted = store.taskRuns.beginAttempt(this.#run.id);
    const prompt = runPrompt(this.#task, this.#run.dueAt, this.#run.startedAt);
    session.push(interrupted ? `${prompt}\n\n${formatInterruptedAttempt(interrupted)}` : prompt);
  }

  #onResult(outcome: TurnOutcome): void {
    if (outcome.ok) this.#finish(outcome, null);
    else this.#finish(outcome, outcome.text);
    this.#session?.close();
  }

  #onEnd(end: SessionEnd): void {
    clearTimeout(this.#timeout);
    if (!this.#finished) this.#finish(null, `the agent stopped unexpectedly (${end.error ?? end.reason})`);
    this.#resolveDone();
  }

  /** Logs the run and posts its answer, or what failed, to the group's chat: once. */
  #finish(outcome: TurnOutcome | null, error: string | null): void {
    if (this.#finished) return;
    this.#finished = true;
    clearTimeout(this.#timeout);
    const { store } = this.#deps;
    const now = Date.now();
    // A model failure comes in Claude Code's words; pincer's own reasons are one plain line already.
    const reason = outcome && error !== null ? describeTurnFailure(error, { tries: this.#deps.settings.modelMaxRetries + 1 }) : error;
    const reply = error === null && outcome ? stripInternal(outcome.text) : `⚠️ Scheduled task #${this.#task.id} failed: ${reason}`;
    const end: RunEnd = {
      status: error === null ? 'ok' : 'error',
      endedAt: now,
      durationMs: outcome?.durationMs ?? now - this.#run.startedAt,
      result: error === null ? reply.slice(0, RUN_RESULT_CHARS) : null,
      error,
      costUsd: outcome?.costUsd ?? null,
      inputTokens: outcome?.inputTokens ?? null,
      outputTokens: outcome?.outputTokens ?? null,
    };
    store.transaction(() => {
      if (reply) store.outbox.add(this.#group.chatId, reply, null, now);
      store.taskRuns.finish(this.#run.id, end);
    });
    this.#log.info({ status: end.status, durationMs: end.durationMs, costUsd: end.costUsd }, 'scheduled run ended');
    this.#deps.onOutbox();
  }
}

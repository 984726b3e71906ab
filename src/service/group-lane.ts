// A group's live session as a state machine: turns are pushed one at a time; each result is committed
// (reply into the outbox, cursor forward) in one transaction before the next turn starts.

import { describeTurnFailure } from '../agent/failure-text.js';
import type { PromptContent } from '../agent/prompt-stream.js';
import { AgentSession, type CompactEnd, type SessionEnd, type TextDelta, type TurnOutcome } from '../agent/session.js';
import type { Logger } from '../log.js';
import type { EgressTestSeam } from '../proxy/egress-proxy.js';
import type { Lane } from '../queue/group-queue.js';
import { stripInternal } from '../router/outbound.js';
import { formatPrompt } from '../router/prompt.js';
import type { Runtime } from '../sandbox/types.js';
import type { Group, Stage, Store, StoredMessage, TurnRecord } from '../store/index.js';
import { TOOL_SERVER_NAME } from '../store/mcp-server-schema.js';
import { createPincerServer } from '../tools/pincer-server.js';
import type { Budgets } from './budgets.js';
import {
  type ChatCommand,
  COMPACT_INSTRUCTIONS,
  commandRefusal,
  MEMORY_FLUSH_PROMPT,
  mayUseCommands,
  parseChatCommand,
} from './chat-commands.js';
import type { Control } from './control.js';
import { sandboxTranscriptPath } from './conversation-archive.js';
import { describeArchive, LaneArchive } from './lane-archive.js';
import { groupPaths, type StateLayout } from './layout.js';
import { sessionMcpServers } from './mcp-servers.js';
import { describeChoice, type ModelChoice, type ModelDefaults, modelChoice, NO_CREDENTIALS } from './model-choice.js';
import { ReplyDraft, type ReplyDraftUpdate } from './reply-draft.js';
import { type SandboxSettings, sandboxPlan } from './sandbox-plan.js';
import { systemPromptAppend } from './system-prompt.js';
import { chatToolContext } from './tool-context.js';
import { promptContent, type TurnImages, turnImages } from './turn-images.js';

/** A scheduled run's log keeps this much of its result. */
export const RUN_RESULT_CHARS = 4000;

/** A prompt shows at most this many unanswered messages (the newest). */
export const PROMPT_MESSAGE_LIMIT = 100;

export interface LaneSettings {
  assistantName: string;
  timezone: string;
  /** The providers and the defaults of groups' model settings. */
  models: ModelDefaults;
  modelMaxRetries: number;
  idleTimeoutMs: number;
  turnTimeoutMs: number;
  /** A conversation this large (tokens of its last model call) is compacted by pincer before the next turn; 0: never. */
  compactAtTokens: number;
  sandbox: SandboxSettings;
}

export interface LaneDeps {
  store: Store;
  layout: StateLayout;
  /** The sandbox runtime, or why there is none on this host. */
  runtime: { ok: true; runtime: Runtime } | { ok: false; reason: string };
  settings: LaneSettings;
  log: Logger;
  /** Replies were committed to the outbox. */
  onOutbox(): void;
  setTyping(chatId: string, on: boolean): void;
  /** The reply being written, for the live view (the web page): its text so far, then the reply as committed. */
  onReplyDraft?(chatId: string, update: ReplyDraftUpdate): void;
  /** Groups and tasks, for the session's tools (acting as its group). */
  control: Control;
  /** Spend limits: a reached one starts no turn. */
  budgets: Budgets;
  /** Tests only: a loopback test site reachable through the egress proxy. */
  egressTestSeam?: EgressTestSeam;
}

interface Turn {
  firstSeq: number;
  lastSeq: number;
  prompt: PromptContent;
  startedAt: number;
  /** The hard limit of the turn; none when no agent runs. */
  timeout: NodeJS.Timeout | undefined;
  /** A chat command's turn: pincer answers it, not the agent. */
  command?: ChatCommand;
  /** A /compact turn saw the compaction happen. */
  compacted?: boolean;
  /** A /compact turn's first step: the agent writes what should last into its memory files. */
  flushing?: boolean;
  /** pincer's own compaction of a conversation grown large: no message asked for it, nothing is sent. */
  byPincer?: boolean;
  /** The text of the model message being written, once the model writes any. */
  draft?: ReplyDraft;
}

type State =
  | { kind: 'starting' }
  | { kind: 'busy'; turn: Turn }
  | { kind: 'idle'; timer: NodeJS.Timeout }
  | { kind: 'closing'; turn?: Turn }
  | { kind: 'ended' };

export class GroupLane implements Lane {
  readonly done: Promise<void>;
  readonly #deps: LaneDeps;
  readonly #group: Group;
  readonly #notifyIdle: () => void;
  readonly #log: Logger;
  #state: State = { kind: 'starting' };
  #session: AgentSession | undefined;
  /** What runs the agent, once #begin found both: the sandbox runtime, and the model as the group was set when this lane opened. */
  #agent: { runtime: Runtime; choice: ModelChoice } | undefined;
  /** The conversation's archive around a compaction or a /clear. */
  readonly #archive: LaneArchive;
  /** Messages up to this seq have been given to the agent (or answered). */
  #pushedUpTo: number;
  #resumed: string | undefined;
  /** The conversation grew past compactAtTokens: pincer compacts it before the next turn. */
  #compactDue = false;
  /** Agent turns answered since the conversation began or was last compacted; undefined for a resumed one. */
  #turnsSinceCompaction: number | undefined;
  #gotResult = false;
  #crashed = false;
  /** The group's settings changed since this lane opened: it ends at its next idle moment. */
  #stale = false;
  #shuttingDown = false;
  #resolveDone!: () => void;

  constructor(deps: LaneDeps, group: Group, notifyIdle: () => void) {
    this.#deps = deps;
    this.#group = group;
    this.#notifyIdle = notifyIdle;
    this.#log = deps.log.child({ group: group.folder });
    this.#pushedUpTo = deps.store.groups.state(group.chatId).cursor;
    this.#archive = new LaneArchive({
      layout: deps.layout,
      group,
      assistantName: deps.settings.assistantName,
      timeZone: group.timezone ?? deps.settings.timezone,
      log: this.#log,
      event: (stage, detail) => this.#event(stage, detail),
      stopping: () => this.#shuttingDown,
    });
    this.done = new Promise((resolve) => {
      this.#resolveDone = resolve;
    });
  }

  wake(): void {
    if (this.#state.kind === 'starting') this.#begin();
    else if (this.#state.kind === 'idle') {
      clearTimeout(this.#state.timer);
      this.#nextTurn();
    }
    // busy: the next turn is looked for when the current one commits; closing/ended: the queue reopens.
  }

  isIdle(): boolean {
    return this.#state.kind === 'idle';
  }

  /** A turn is in flight: the agent is at work on a message. */
  get working(): boolean {
    return this.#currentTurn() !== undefined;
  }

  /** The agent crashed in this lane: starting it again ahead of a message would likely crash again. */
  get crashed(): boolean {
    return this.#crashed;
  }

  /**
   * Starts the agent ahead of a message, so that the next turn skips the sandbox and Claude Code start.
   * Only an idle lane does; its idle time starts again, as the hint says the chat is active.
   */
  warm(): void {
    if (this.#state.kind !== 'idle' || !this.#agent) return;
    clearTimeout(this.#state.timer);
    this.#state = { kind: 'idle', timer: this.#idleTimer() };
    if (!this.#session) this.#liveSession().prepare();
  }

  /**
   * The group's settings changed (trigger, time zone, mounts, MCP servers): this lane and its session hold
   * the old ones, so it ends now if idle, else once its turn is done. The next message, or prewarm, opens
   * a lane with the new settings.
   */
  refresh(): void {
    this.#stale = true;
    this.closeIfIdle();
  }

  closeIfIdle(): void {
    if (this.#state.kind !== 'idle') return;
    clearTimeout(this.#state.timer);
    this.#state = { kind: 'closing' };
    // A lane that only answered commands never started an agent.
    if (this.#session) this.#session.close();
    else this.#end();
  }

  /** pincer is stopping: end now. A turn in flight is not committed, so it runs again after the restart. */
  shutdown(): void {
    this.#shuttingDown = true;
    if (this.#state.kind === 'idle') clearTimeout(this.#state.timer);
    if (this.#state.kind === 'busy') clearTimeout(this.#state.turn.timeout);
    if (this.#session) this.#session.kill();
    else this.#end();
  }

  #begin(): void {
    const { runtime, settings } = this.#deps;
    const chosen = modelChoice(settings.models, this.#group);
    if (!chosen.ok) {
      this.#answerWithoutAgent(
        chosen.reason === NO_CREDENTIALS
          ? "I can't reach a model: no credentials are set. Put ANTHROPIC_API_KEY=… (or CLAUDE_CODE_OAUTH_TOKEN=…) in the .env file next to pincer, or in its environment, and restart pincer."
          : `I can't reach a model: ${chosen.reason}.`,
      );
      return;
    }
    if (!runtime.ok) {
      this.#answerWithoutAgent(`I can't start an agent: ${runtime.reason}. Run \`pincer doctor\` for the fix, then restart pincer.`);
      return;
    }
    this.#agent = { runtime: runtime.runtime, choice: chosen.choice };
    this.#nextTurn();
  }

  /** The live session; started (resuming the stored conversation) when the first turn needs it. */
  #liveSession(): AgentSession {
    if (!this.#session) this.#startSession(this.#deps.store.groups.state(this.#group.chatId).sessionId ?? undefined);
    return this.#session as AgentSession;
  }

  #startSession(resume: string | undefined): void {
    const { store, layout, settings } = this.#deps;
    if (!this.#agent) throw new Error('no agent runtime');
    const { runtime, choice } = this.#agent;
    const chatId = this.#group.chatId;
    this.#resumed = resume;
    this.#turnsSinceCompaction = resume ? undefined : 0;
    this.#gotResult = false;
    const plan = sandboxPlan(layout, this.#group, settings.sandbox, this.#log);
    // The group's own MCP servers, read afresh: a change by the main group applies from the next session.
    const extraMcp = sessionMcpServers(store.groups.get(chatId)?.mcpServers ?? [], plan, this.#log);
    const session = new AgentSession({
      runtime,
      plan,
      // Read live: the main group may change it while this session runs.
      egressPolicy: () => store.groups.get(chatId)?.egressPolicy ?? { mode: 'none' },
      egressTestSeam: this.#deps.egressTestSeam,
      onEgress: (r) => {
        store.egress.record({ chatId, ...r, reason: r.reason ?? null, address: r.address ?? null });
        this.#log.debug({ egress: r }, r.allowed ? 'egress allowed' : 'egress refused');
      },
      provider: choice.provider,
      meter: this.#deps.budgets.meterFor(chatId, choice.provider.name),
      model: choice.model,
      effort: choice.effort,
      fallbackModel: choice.fallbackModel,
      maxRetries: settings.modelMaxRetries,
      resume,
      timezone: this.#group.timezone ?? settings.timezone,
      systemPromptAppend: systemPromptAppend(settings.assistantName, this.#group, this.#group.timezone ?? settings.timezone),
      mcpServers: {
        ...extraMcp.servers,
        [TOOL_SERVER_NAME]: createPincerServer(chatToolContext(this.#deps, this.#group, () => this.#currentTurn()?.lastSeq ?? null)),
      },
      log: this.#log,
      handlers: {
        onSpawned: () => this.#event('spawned', `runtime ${runtime.name}${this.#currentTurn() ? '' : ', ahead of a message'}`),
        onModelRequest: (model) => this.#event('model_request', `${model ?? 'no model named'} via ${choice.provider.name}`),
        onToolUse: (summary) => this.#event('tool', summary),
        ...(this.#deps.onReplyDraft ? { onTextDelta: (delta: TextDelta) => this.#onTextDelta(delta) } : {}),
        onResult: (outcome) => this.#onResult(outcome),
        onPreCompact: (e) => this.#archive.beforeCompaction(e),
        onCompactEnd: (end) => this.#onCompactEnd(end),
      },
    });
    this.#session = session;
    void session.done.then(() => extraMcp.close());
    void session.done.then((end) => this.#onSessionEnd(session, end));
  }

  #currentTurn(): Turn | undefined {
    return this.#state.kind === 'busy' || this.#state.kind === 'closing' ? this.#state.turn : undefined;
  }

  /** A chat command's turn is answered by pincer: what its model writes (a compaction's summary) is not the reply. */
  #onTextDelta(delta: TextDelta): void {
    const turn = this.#currentTurn();
    if (!turn || turn.command) return;
    if (delta.restart || !turn.draft) turn.draft = new ReplyDraft();
    turn.draft.append(delta.text);
    const draft = turn.draft;
    this.#deps.onReplyDraft?.(this.#group.chatId, { kind: 'writing', visible: () => draft.visible() });
  }

  /** The live view's draft gives way to the reply as it goes to the outbox ('' when none does). */
  #endDraft(turn: Turn, reply: string): void {
    if (!turn.draft) return;
    turn.draft = undefined;
    this.#deps.onReplyDraft?.(this.#group.chatId, { kind: 'done', reply });
  }

  #event(stage: Stage, detail: string | null): void {
    const turn = this.#currentTurn();
    // pincer's own compaction belongs to no message: its stages are the chat's, not the last answered message's.
    const messageSeq = turn && !turn.byPincer ? turn.lastSeq : null;
    this.#deps.store.events.record({ messageSeq, chatId: this.#group.chatId, stage, detail, at: Date.now() });
  }

  /** Collects everything unanswered since the last push into one prompt; idles when nothing engages. */
  #nextTurn(): void {
    const { store } = this.#deps;
    const chatId = this.#group.chatId;
    if (this.#compactDue && this.#session) {
      this.#compactDue = false;
      this.#compactByPincer();
      return;
    }
    if (!store.messages.hasEngaging(chatId, this.#pushedUpTo)) {
      this.#becomeIdle();
      return;
    }
    const batch = store.messages.pendingInput(chatId, this.#pushedUpTo, PROMPT_MESSAGE_LIMIT + 1);
    if (batch.length > PROMPT_MESSAGE_LIMIT) batch.shift();
    const commandOf = (m: StoredMessage) => parseChatCommand(m.text, this.#group.trigger);
    // A command runs in order: what engaged the agent before it is answered first.
    const commandAt = batch.findIndex((m) => m.engages && commandOf(m) !== undefined);
    if (commandAt >= 0) {
      const command = batch[commandAt];
      if (command && !batch.slice(0, commandAt).some((m) => m.engages)) {
        this.#runCommand(command, batch[0]?.seq ?? command.seq);
        return;
      }
      batch.splice(commandAt);
    }
    const first = batch[0];
    const last = batch[batch.length - 1];
    // Command-like messages that did not engage (no trigger) are not shown to the agent either.
    const shown = batch.filter((m) => commandOf(m) === undefined);
    if (!first || !last || shown.length === 0) {
      this.#becomeIdle();
      return;
    }
    // A turn just ended may have used up a budget: the next one waits (its messages stay unanswered, kept).
    const budget = this.#deps.budgets.check(chatId);
    if (!budget.ok) {
      // Every message this turn would have answered says why it waits, not only the last.
      this.#deps.budgets.refuse(
        chatId,
        batch.filter((m) => m.engages).map((m) => m.seq),
        budget,
      );
      this.#becomeIdle();
      return;
    }
    // Older unanswered messages than one turn carries are not shown; their traces and the agent say so.
    const omitted = store.events.recordOmitted(
      chatId,
      this.#pushedUpTo,
      first.seq,
      `not shown to the agent: more than ${PROMPT_MESSAGE_LIMIT} unanswered messages waited, only the newest went into the turn`,
      Date.now(),
    );
    // The prompt and the hard limit are set once the images the messages name are read (#pushTurn).
    const turn: Turn = { firstSeq: first.seq, lastSeq: last.seq, prompt: '', startedAt: Date.now(), timeout: undefined };
    this.#pushedUpTo = last.seq;
    this.#state = { kind: 'busy', turn };
    this.#deps.setTyping(chatId, true);
    this.#pushTurn(turn, batch, shown, omitted).catch((err: unknown) => this.#log.error({ err }, 'turn could not be pushed'));
  }

  /** The turn's text, with the images its messages name (read host-side, never through a link), goes in. */
  async #pushTurn(turn: Turn, batch: StoredMessage[], shown: StoredMessage[], omitted: number): Promise<void> {
    const { store, layout, settings } = this.#deps;
    const chatId = this.#group.chatId;
    let seen: TurnImages;
    try {
      seen = await turnImages(groupPaths(layout, this.#group.folder, this.#group.isMain).groupDir, shown);
    } catch (err) {
      this.#log.warn({ err }, 'the images of a turn could not be read; it goes on with the text');
      seen = { messages: shown, images: [], notShown: 0 };
    }
    // pincer may have stopped, or the session ended, while the files were read: then this turn is not pushed.
    if (this.#state.kind !== 'busy' || this.#state.turn !== turn) return;
    // Messages already prompted once and still unanswered: pincer was killed or crashed during their turn.
    const interrupted = store.events.earlierAttempt(chatId, turn.firstSeq, turn.lastSeq);
    turn.prompt = promptContent(formatPrompt(seen.messages, this.#group.timezone ?? settings.timezone, omitted, interrupted), seen.images);
    turn.timeout = setTimeout(() => this.#onTimeout(), settings.turnTimeoutMs);
    const images = seen.images.length > 0 || seen.notShown > 0 ? `, ${seen.images.length} image(s) attached` : '';
    const notShown = seen.notShown > 0 ? ` (${seen.notShown} named but not shown)` : '';
    const again = interrupted ? `, again after an interrupted attempt (${interrupted.toolCalls.length} tool call(s) shown)` : '';
    for (const m of batch)
      store.events.record({
        messageSeq: m.seq,
        chatId,
        stage: 'prompted',
        detail: `turn of ${batch.length} message(s)${images}${notShown}${again}${this.#agent ? `; ${describeChoice(this.#agent.choice)}` : ''}`,
        at: turn.startedAt,
      });
    this.#liveSession().push(turn.prompt);
  }

  /** Runs a chat command (the first unanswered message that engages): refused, /compact or /clear. */
  #runCommand(message: StoredMessage, firstSeq: number): void {
    const command = parseChatCommand(message.text, this.#group.trigger);
    if (!command) return;
    const turn: Turn = { firstSeq, lastSeq: message.seq, prompt: '', startedAt: Date.now(), timeout: undefined, command };
    this.#pushedUpTo = message.seq;
    this.#state = { kind: 'busy', turn };
    if (!mayUseCommands(this.#group, message.senderId)) {
      this.#finishCommand(turn, commandRefusal(command, this.#group), `/${command} from ${message.senderId} refused`, { refused: true });
      this.#nextTurn();
    } else if (command === 'clear') void this.#clear(turn);
    else this.#compact(turn);
  }

  /** Claude Code compacts on `/compact` sent as the prompt; the PreCompact hook archives first. */
  #compact(turn: Turn): void {
    const chatId = this.#group.chatId;
    if (!this.#session && !this.#deps.store.groups.state(chatId).sessionId) {
      this.#finishCommand(turn, 'Nothing to compact yet: this chat has no conversation with me so far.', '/compact: no conversation');
      this.#nextTurn();
      return;
    }
    turn.timeout = setTimeout(() => this.#onTimeout(), this.#deps.settings.turnTimeoutMs);
    this.#deps.setTyping(chatId, true);
    // Nothing said since the last compaction: nothing to keep, and no turn of its own to add to compact.
    if (this.#turnsSinceCompaction === 0) this.#pushCompaction(turn);
    else {
      turn.flushing = true;
      turn.prompt = MEMORY_FLUSH_PROMPT;
      this.#liveSession().push(turn.prompt);
    }
  }

  #pushCompaction(turn: Turn): void {
    turn.flushing = false;
    turn.prompt = `/compact ${COMPACT_INSTRUCTIONS}`;
    this.#archive.forgetLatest();
    this.#liveSession().push(turn.prompt);
  }

  /** The flush turn before a compaction ended: on record, never sent; the compaction goes ahead either way. */
  #afterFlush(turn: Turn, outcome: TurnOutcome): void {
    const detail = outcome.ok
      ? `memory written before compaction${outcome.text.trim() && stripInternal(outcome.text) ? ` (it said: ${stripInternal(outcome.text).slice(0, 200)})` : ''}`
      : `writing memory before compaction failed: ${outcome.text.slice(0, 300)}; compacting anyway`;
    this.#commandEvent(turn, detail);
    this.#pushCompaction(turn);
  }

  /** A command's event: under its message, or for pincer's own compaction under none. */
  #commandEvent(turn: Turn, detail: string): void {
    const messageSeq = turn.byPincer ? null : turn.lastSeq;
    this.#deps.store.events.record({ messageSeq, chatId: this.#group.chatId, stage: 'command', detail, at: Date.now() });
  }

  /**
   * The conversation grew large: pincer compacts it now, between turns, with the same memory flush a /compact
   * gets, before Claude Code would compact it by itself in the middle of a turn (where no flush can run).
   */
  #compactByPincer(): void {
    const turn: Turn = {
      firstSeq: this.#pushedUpTo,
      lastSeq: this.#pushedUpTo,
      prompt: MEMORY_FLUSH_PROMPT,
      startedAt: Date.now(),
      timeout: setTimeout(() => this.#onTimeout(), this.#deps.settings.turnTimeoutMs),
      command: 'compact',
      byPincer: true,
      flushing: true,
    };
    this.#state = { kind: 'busy', turn };
    this.#commandEvent(turn, `the conversation reached ${this.#session?.lastPromptTokens ?? 0} tokens: compacting it, memory first`);
    this.#liveSession().push(turn.prompt);
  }

  /** pincer's own compaction ended: on record; nothing goes to the chat, no message's cursor moves. */
  #afterCompactionByPincer(turn: Turn, outcome: TurnOutcome): void {
    clearTimeout(turn.timeout);
    const archived = this.#archive.latest;
    const where = archived?.kind === 'archived' ? ` (archived in ${archived.file})` : '';
    this.#commandEvent(
      turn,
      !outcome.ok
        ? `compacting the conversation failed: ${outcome.text.slice(0, 300)}`
        : turn.compacted
          ? `conversation compacted by pincer${where}`
          : `nothing was compacted: ${outcome.text.slice(0, 200)}`,
    );
    this.#nextTurn();
  }

  /** Archives the conversation, forgets it, and ends the live session: the next message starts afresh. */
  async #clear(turn: Turn): Promise<void> {
    const chatId = this.#group.chatId;
    const live = this.#session;
    const sessionId = live?.sessionId ?? this.#deps.store.groups.state(chatId).sessionId ?? undefined;
    const archived = sessionId
      ? await this.#archive.archiveNow(sessionId, sandboxTranscriptPath(sessionId), 'the chat sent /clear')
      : undefined;
    // pincer may have stopped meanwhile: then nothing is committed and /clear runs again after the restart.
    if (this.#state.kind !== 'busy' || this.#state.turn !== turn) return;
    const where =
      archived?.kind === 'archived'
        ? ` (the old one is in ${archived.file})`
        : archived?.kind === 'failed'
          ? ` (the old one could not be archived: ${archived.error})`
          : '';
    const reply = `Cleared: a new conversation starts with your next message${where}.`;
    this.#finishCommand(turn, reply, `/clear: ${describeArchive(archived)}`, { clearSession: true });
    if (live) {
      // The lane ends with the session; the queue opens a new one for anything still unanswered.
      this.#state = { kind: 'closing' };
      live.close();
    } else this.#nextTurn();
  }

  async #onCompactEnd(end: CompactEnd): Promise<void> {
    const turn = this.#currentTurn();
    if (end.ok && turn) turn.compacted = true;
    if (end.ok) this.#turnsSinceCompaction = 0;
    await this.#archive.afterCompaction(end);
  }

  #idleTimer(): NodeJS.Timeout {
    return setTimeout(() => this.closeIfIdle(), this.#deps.settings.idleTimeoutMs);
  }

  #becomeIdle(): void {
    this.#state = { kind: 'idle', timer: this.#idleTimer() };
    this.#deps.setTyping(this.#group.chatId, false);
    if (this.#stale) this.closeIfIdle();
    else this.#notifyIdle();
  }

  #onResult(outcome: TurnOutcome): void {
    if (this.#state.kind !== 'busy') {
      this.#log.warn({ state: this.#state.kind }, 'result without a turn in flight; ignored');
      return;
    }
    const turn = this.#state.turn;
    if (!outcome.ok && !this.#gotResult && this.#resumed && /no conversation found/i.test(outcome.text)) {
      this.#restartFresh(turn, outcome.text);
      return;
    }
    this.#gotResult = true;
    if (turn.flushing) {
      this.#afterFlush(turn, outcome);
      return;
    }
    if (turn.byPincer) {
      this.#afterCompactionByPincer(turn, outcome);
      return;
    }
    if (!turn.command) this.#turnsSinceCompaction = (this.#turnsSinceCompaction ?? 0) + 1;
    const reply =
      turn.command === 'compact'
        ? this.#compactReply(turn, outcome)
        : outcome.ok
          ? stripInternal(outcome.text)
          : `⚠️ The agent could not finish: ${describeTurnFailure(outcome.text, { tries: this.#deps.settings.modelMaxRetries + 1 })}`;
    this.#commit(turn, reply, {
      sessionId: outcome.sessionId,
      status: outcome.ok ? 'success' : 'error',
      error: outcome.ok ? null : outcome.text,
      costUsd: outcome.costUsd,
      inputTokens: outcome.inputTokens,
      outputTokens: outcome.outputTokens,
    });
    const limit = this.#deps.settings.compactAtTokens;
    if (!turn.command && outcome.ok && limit > 0 && (this.#session?.lastPromptTokens ?? 0) >= limit) this.#compactDue = true;
    this.#nextTurn();
  }

  #onTimeout(): void {
    if (this.#state.kind !== 'busy') return;
    const turn = this.#state.turn;
    if (turn.byPincer) {
      this.#commandEvent(turn, `compacting the conversation took longer than ${this.#deps.settings.turnTimeoutMs} ms and was stopped`);
      this.#state = { kind: 'closing' };
      this.#session?.kill();
      return;
    }
    const minutes = Math.round(this.#deps.settings.turnTimeoutMs / 60_000);
    const limit = minutes >= 1 ? `${minutes} min` : `${this.#deps.settings.turnTimeoutMs / 1000} s`;
    this.#commit(turn, `⚠️ That took longer than ${limit} and was stopped. Send a new message to continue.`, {
      status: 'timeout',
      error: `turn exceeded ${this.#deps.settings.turnTimeoutMs} ms`,
    });
    this.#state = { kind: 'closing' };
    this.#session?.kill();
  }

  /** A resumed transcript that cannot be loaded must not wedge the group: start a new session, same turn. */
  #restartFresh(turn: Turn, error: string): void {
    if (!this.#agent) return;
    this.#log.warn({ error, sessionId: this.#resumed }, 'resuming the session failed; starting a new one');
    this.#deps.store.groups.setSession(this.#group.chatId, null);
    const old = this.#session;
    this.#startSession(undefined);
    old?.kill();
    this.#session?.push(turn.prompt);
  }

  #onSessionEnd(session: AgentSession, end: SessionEnd): void {
    if (session !== this.#session) return;
    const turn = this.#currentTurn();
    if (this.#shuttingDown) {
      this.#end();
      return;
    }
    if (end.reason === 'crashed' && this.#resumed && !this.#gotResult && turn) {
      this.#restartFresh(turn, end.error ?? end.reason);
      return;
    }
    if (turn?.byPincer && end.reason !== 'closed')
      this.#commandEvent(turn, `compacting the conversation stopped: ${end.error ?? end.reason}`);
    else if (turn && end.reason !== 'closed') {
      this.#commit(turn, `⚠️ The agent stopped unexpectedly (${end.error ?? end.reason}). Please send that again.`, {
        status: 'crashed',
        error: end.error ?? end.reason,
      });
    }
    if (end.reason === 'crashed') {
      this.#crashed = true;
      this.#log.error({ error: end.error }, 'agent session crashed');
    }
    this.#end();
  }

  #end(): void {
    if (this.#state.kind === 'idle') clearTimeout(this.#state.timer);
    const turn = this.#currentTurn();
    if (turn) {
      clearTimeout(turn.timeout);
      this.#endDraft(turn, '');
    }
    this.#state = { kind: 'ended' };
    this.#deps.setTyping(this.#group.chatId, false);
    this.#resolveDone();
  }

  /** No agent can run (no sandbox, no credentials): every unanswered message gets the reason, once per batch. */
  #answerWithoutAgent(reason: string): void {
    const { store } = this.#deps;
    const chatId = this.#group.chatId;
    const last = store.messages.pendingInput(chatId, this.#pushedUpTo, 1)[0];
    if (last && store.messages.hasEngaging(chatId, this.#pushedUpTo)) {
      const now = Date.now();
      const turn: Turn = { firstSeq: this.#pushedUpTo + 1, lastSeq: last.seq, prompt: '', startedAt: now, timeout: undefined };
      this.#commit(turn, `⚠️ ${reason}`, { status: 'unavailable', error: reason });
    }
    this.#end();
  }

  #compactReply(turn: Turn, outcome: TurnOutcome): string {
    if (!outcome.ok) return `⚠️ Compacting failed: ${describeTurnFailure(outcome.text)}`;
    if (!turn.compacted) return `Nothing was compacted: ${(outcome.text || 'the conversation is still empty').replace(/\.$/, '')}.`;
    const archived = this.#archive.latest;
    if (archived?.kind === 'archived') return `Compacted: the conversation so far is archived in ${archived.file}.`;
    if (archived?.kind === 'failed') return `Compacted, but the conversation so far could not be archived: ${archived.error}.`;
    return 'Compacted.';
  }

  /** A command answered by pincer: its reply and the cursor past it in one transaction, no agent turn. */
  #finishCommand(turn: Turn, reply: string, detail: string, opts: { clearSession?: boolean; refused?: boolean } = {}): void {
    const { store } = this.#deps;
    const chatId = this.#group.chatId;
    clearTimeout(turn.timeout);
    const now = Date.now();
    store.transaction(() => {
      store.outbox.add(chatId, reply, turn.lastSeq, now);
      store.groups.advanceCursor(chatId, turn.lastSeq);
      if (opts.clearSession) store.groups.setSession(chatId, null);
      store.taskRuns.finishForMessages(chatId, turn.firstSeq, turn.lastSeq, {
        status: opts.refused ? 'error' : 'ok',
        endedAt: now,
        durationMs: now - turn.startedAt,
        result: opts.refused ? null : reply.slice(0, RUN_RESULT_CHARS),
        error: opts.refused ? reply : null,
        costUsd: null,
      });
      store.events.record({ messageSeq: turn.lastSeq, chatId, stage: 'command', detail, at: now });
    });
    this.#pushedUpTo = Math.max(this.#pushedUpTo, turn.lastSeq);
    this.#deps.setTyping(chatId, false);
    this.#deps.onOutbox();
  }

  #commit(turn: Turn, reply: string, result: Partial<TurnRecord> & Pick<TurnRecord, 'status' | 'error'>): void {
    const { store } = this.#deps;
    const chatId = this.#group.chatId;
    clearTimeout(turn.timeout);
    const now = Date.now();
    store.transaction(() => {
      if (reply) store.outbox.add(chatId, reply, turn.lastSeq, now);
      store.groups.advanceCursor(chatId, turn.lastSeq);
      // Only a completed turn proves the transcript is on disk, so only then is the session resumable.
      if (result.status === 'success' && result.sessionId) store.groups.setSession(chatId, result.sessionId);
      store.turns.record({
        chatId,
        firstSeq: turn.firstSeq,
        lastSeq: turn.lastSeq,
        sessionId: result.sessionId ?? null,
        status: result.status,
        error: result.error,
        startedAt: turn.startedAt,
        endedAt: now,
        durationMs: result.durationMs ?? now - turn.startedAt,
        costUsd: result.costUsd ?? null,
        inputTokens: result.inputTokens ?? null,
        outputTokens: result.outputTokens ?? null,
      });
      // Scheduled runs whose prompts this turn carried end with it.
      store.taskRuns.finishForMessages(chatId, turn.firstSeq, turn.lastSeq, {
        status: result.status === 'success' ? 'ok' : 'error',
        endedAt: now,
        durationMs: result.durationMs ?? now - turn.startedAt,
        result: result.status === 'success' ? reply.slice(0, RUN_RESULT_CHARS) : null,
        error: result.error,
        costUsd: result.costUsd ?? null,
      });
      const detail = reply ? `reply of ${reply.length} chars` : 'no reply text';
      store.events.record({
        messageSeq: turn.lastSeq,
        chatId,
        stage: result.status === 'success' ? 'replied' : 'turn_failed',
        detail: result.error ?? detail,
        at: now,
      });
    });
    this.#pushedUpTo = Math.max(this.#pushedUpTo, turn.lastSeq);
    this.#endDraft(turn, reply);
    this.#deps.setTyping(chatId, false);
    this.#deps.onOutbox();
  }
}

// One live agent session: the SDK's query() in this process, Claude Code in a sandbox, turns pushed in.

import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { rmSync } from 'node:fs';
import { dirname } from 'node:path';
import { type HookCallbackMatcher, type McpServerConfig, type Query, query, type SDKResultMessage } from '@anthropic-ai/claude-agent-sdk';
import { DEFAULT_PROVIDER, type Effort, type ModelCredential, type ModelProvider } from '../config.js';
import type { Logger } from '../log.js';
import type { EgressPolicy } from '../proxy/egress-policy.js';
import { type EgressRecord, type EgressTestSeam, startEgressProxy } from '../proxy/egress-proxy.js';
import { SpendTally } from '../proxy/model-metering.js';
import { type ModelMeter, startModelProxy } from '../proxy/model-proxy.js';
import { handOverFolders } from '../sandbox/access.js';
import type { Runtime } from '../sandbox/types.js';
import { type PromptContent, PromptStream } from './prompt-stream.js';
import { agentEnv, SANDBOX_GLOBAL_DIR, type SandboxPlan, sandboxedSpawn } from './sandbox-spawn.js';
import { OFFERED_BUILTIN_TOOLS, WITHHELD_BUILTIN_TOOLS } from './tool-surface.js';
import { describeToolUse } from './tool-use.js';

export interface TurnOutcome {
  ok: boolean;
  /** The agent's final text, or what went wrong. */
  text: string;
  sessionId: string;
  /** Metered by the model proxy for the calls since the previous result; null when a model's price is not known. */
  costUsd: number | null;
  inputTokens: number | null;
  outputTokens: number | null;
  durationMs: number | null;
}

export interface SessionEnd {
  /** closed: input ended normally; killed: close timed out or kill() was called; crashed: the process failed. */
  reason: 'closed' | 'killed' | 'crashed';
  error?: string;
}

/** Claude Code is about to compact the conversation: asked to (`/compact`) or because it grew too long. */
export interface PreCompactEvent {
  trigger: 'manual' | 'auto';
  sessionId: string;
  /** As Claude Code names it: a path inside the sandbox, written by the sandbox (untrusted). */
  transcriptPath: string;
}

export interface SessionHandlers {
  onSpawned(): void;
  /** A model call went out to the provider, asking for `model` (as the sandbox wrote it; null: none named). */
  onModelRequest(model: string | null): void;
  /** The agent called a tool; `summary` says which and on what, in one line. */
  onToolUse(summary: string): void;
  /**
   * The model wrote more text: `restart` marks the first text of a new model message (the text before a tool call
   * is not the reply; the reply is the last message's text). Written by the sandbox: untrusted, like the result.
   */
  onTextDelta?(delta: TextDelta): void;
  /** Exactly one per pushed prompt, in order. */
  onResult(outcome: TurnOutcome): void;
  /** Awaited before the compaction goes ahead (its failure is logged, never stops it). */
  onPreCompact?(event: PreCompactEvent): Promise<void>;
  /**
   * The compaction is over: done (the conversation now goes on from its summary) or failed. Awaited before
   * the next message of the session, so a /compact turn's result comes after it.
   */
  onCompactEnd?(end: CompactEnd): Promise<void>;
}

export interface TextDelta {
  text: string;
  restart: boolean;
}

export type CompactEnd = { ok: true; trigger: 'manual' | 'auto' } | { ok: false; error: string };

export interface AgentSessionOptions {
  runtime: Runtime;
  plan: SandboxPlan;
  /** Read for every connection the sandbox opens, so a policy change applies from the next one. */
  egressPolicy: () => EgressPolicy;
  /** Tests only: a loopback test site reachable by name. */
  egressTestSeam?: EgressTestSeam;
  onEgress: (record: EgressRecord) => void;
  /** The only endpoint this session's proxy reaches, with its credential (no other provider's). */
  provider: ModelProvider & { credential: ModelCredential };
  /** The group's spend: every model call of the sandbox is admitted and metered by it, at the proxy. */
  meter: ModelMeter;
  /** Undefined: Claude Code's default. */
  model: string | undefined;
  effort: Effort | undefined;
  /** Tried by Claude Code when the model is overloaded or unavailable. */
  fallbackModel: string | undefined;
  /** How often Claude Code retries a failed model request before the turn fails. */
  maxRetries: number;
  resume: string | undefined;
  timezone: string;
  systemPromptAppend: string;
  mcpServers: Record<string, McpServerConfig>;
  log: Logger;
  handlers: SessionHandlers;
}

const STDERR_TAIL = 2000;

export class AgentSession {
  readonly done: Promise<SessionEnd>;
  readonly #input = new PromptStream();
  readonly #abort = new AbortController();
  #stderr = '';
  #killed = false;
  #sessionId: string | undefined;
  #query: Query | undefined;
  #prepare = false;
  /** What the proxy metered since the last result. */
  readonly #spend = new SpendTally();
  /** Tokens the latest metered model call read (its prompt: the conversation's size then). */
  #lastPromptTokens = 0;
  /** The agent's own running total at its last result (a cross-check only: the sandbox writes it). */
  #reportedTotalUsd: number | undefined;

  constructor(options: AgentSessionOptions) {
    this.done = this.#run(options);
  }

  /** How large the conversation was at its latest model call, in tokens, as the proxy metered it. */
  get lastPromptTokens(): number {
    return this.#lastPromptTokens;
  }

  /** Claude Code's id of this conversation, once it has said it (it says so before its first result). */
  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  /**
   * The session was started ahead of its first message: Claude Code does now what it would otherwise do
   * when that message arrives (connect its MCP servers, put its system prompt and tools together), asked
   * through control requests that reach no model.
   */
  prepare(): void {
    this.#prepare = true;
    if (this.#query) this.#warmUp(this.#query);
  }

  #warmUp(q: Query): void {
    void Promise.all([q.mcpServerStatus(), q.getContextUsage({ detail: 'summary' })]).catch(() => undefined);
  }

  /** Starts a turn. The caller keeps at most one turn in flight, so each push gets its own result. */
  push(prompt: PromptContent): void {
    this.#input.push(prompt);
  }

  /** Ends the session gracefully: Claude Code finishes and exits, its transcript saved. */
  close(): void {
    this.#input.close();
  }

  /** Ends the session now: the sandbox and everything in it are killed. */
  kill(): void {
    this.#killed = true;
    this.#input.close();
    this.#abort.abort();
  }

  /** The turn's result: its cost and tokens are what the proxy metered, never what the sandbox says. */
  #outcome(o: AgentSessionOptions, m: SDKResultMessage): TurnOutcome {
    const spent = this.#spend.take();
    // Claude Code reports a running total for the session (continued from the transcript when resumed).
    const total = Number.isFinite(m.total_cost_usd) ? m.total_cost_usd : undefined;
    const base = this.#reportedTotalUsd ?? (o.resume ? undefined : 0);
    const reportedUsd = total !== undefined && base !== undefined ? total - base : undefined;
    this.#reportedTotalUsd = total;
    if (reportedUsd !== undefined && spent.costUsd !== null && Math.abs(reportedUsd - spent.costUsd) > Math.max(0.01, spent.costUsd / 5))
      o.log.warn({ meteredUsd: spent.costUsd, reportedUsd }, "the agent's own figure for a turn's cost differs from the metered one");
    return toOutcome(m, spent);
  }

  async #compactEnd(o: AgentSessionOptions, end: CompactEnd): Promise<void> {
    try {
      await o.handlers.onCompactEnd?.(end);
    } catch (err) {
      o.log.warn({ err }, 'handling the end of a compaction failed');
    }
  }

  async #run(o: AgentSessionOptions): Promise<SessionEnd> {
    const fixedEnv = agentEnv({
      credentialKind: o.provider.credential.kind,
      ...(o.provider.name !== DEFAULT_PROVIDER && o.model ? { aliasModel: o.model } : {}),
      timezone: o.timezone,
      maxRetries: o.maxRetries,
      extraCaCerts: o.plan.extraCaCerts !== undefined,
    });
    const onSpawn = (child: ChildProcessWithoutNullStreams) => {
      child.stderr.on('data', (chunk: Buffer) => {
        const text = chunk.toString('utf8');
        this.#stderr = (this.#stderr + text).slice(-STDERR_TAIL);
        o.log.debug({ stderr: text }, 'agent stderr');
      });
      o.handlers.onSpawned();
    };
    const proxies: Array<{ close(): Promise<void> }> = [];
    try {
      // Both listen before the sandbox starts; one failing closes the other (allSettled, then the finally).
      const started = await Promise.allSettled([
        startEgressProxy(o.plan.egressSocket, { ...o.egressTestSeam, policy: o.egressPolicy, onRecord: o.onEgress }),
        startModelProxy(o.plan.modelSocket, {
          upstream: o.provider.baseUrl,
          credential: o.provider.credential,
          ...(o.model ? { pin: { model: o.model, ...(o.fallbackModel ? { fallback: o.fallbackModel } : {}) } } : {}),
          meter: {
            admit: () => o.meter.admit(),
            record: (call) => {
              o.meter.record(call);
              this.#spend.add(call);
              const u = call.usage;
              this.#lastPromptTokens = u.input + u.cacheRead + u.cacheWrite5m + u.cacheWrite1h;
            },
          },
          onRequest: (_path, model) => o.handlers.onModelRequest(model),
          onRefused: (refusal) => o.log.warn(refusal, 'model proxy refused a request'),
          webSearchAllowed: () => o.egressPolicy().mode !== 'none',
          onScreened: (removed) => o.log.warn({ removed }, 'model proxy took out of a call what the endpoint must not do for this sandbox'),
          onUnmetered: (why) => o.log.warn({ why }, 'a model answer could not be metered'),
          onError: (err) => o.log.warn({ err }, 'model endpoint unreachable'),
        }),
      ]);
      for (const p of started) if (p.status === 'fulfilled') proxies.push(p.value);
      const failed = started.find((p) => p.status === 'rejected');
      if (failed) throw failed.reason;
      // A folder of the group's that a new uid must own (a group joined again) is handed over in slices here, off the
      // synchronous spawn path, which then finds nothing left to do.
      const { plan } = o;
      await handOverFolders([plan.groupDir, plan.stateDir, ...(plan.globalWritable ? [plan.globalDir] : [])], plan.user, o.log);
      const messages = query({
        prompt: this.#input,
        options: {
          cwd: o.plan.groupDir,
          additionalDirectories: [SANDBOX_GLOBAL_DIR],
          settingSources: ['project'],
          // pincer's egress policy is what decides where WebFetch may go; its own check would ask Anthropic
          // about each domain first (and fail under an allowlist that does not name Anthropic's site).
          // No commit attribution: the agent's commits in a group folder are the owner's.
          settings: { skipWebFetchPreflight: true, attribution: { commit: '', pr: '' } },
          systemPrompt: { type: 'preset', preset: 'claude_code', append: o.systemPromptAppend },
          tools: [...OFFERED_BUILTIN_TOOLS],
          disallowedTools: [...WITHHELD_BUILTIN_TOOLS],
          permissionMode: 'bypassPermissions',
          allowDangerouslySkipPermissions: true,
          mcpServers: o.mcpServers,
          mcpServersDelivery: 'initialize',
          hooks: preCompactHooks(o),
          // The model's text as it writes it, for the live view; the turn's result stays what is delivered.
          includePartialMessages: o.handlers.onTextDelta !== undefined,
          ...(o.resume ? { resume: o.resume } : {}),
          ...(o.model ? { model: o.model } : {}),
          ...(o.effort ? { effort: o.effort } : {}),
          ...(o.fallbackModel ? { fallbackModel: o.fallbackModel } : {}),
          env: fixedEnv,
          abortController: this.#abort,
          spawnClaudeCodeProcess: sandboxedSpawn(o.runtime, o.plan, fixedEnv, onSpawn, this.#abort.signal),
        },
      });
      this.#query = messages;
      if (this.#prepare) this.#warmUp(messages);
      let restart = true;
      for await (const m of messages) {
        if ('session_id' in m && typeof m.session_id === 'string' && m.session_id) this.#sessionId = m.session_id;
        if (m.type === 'stream_event') {
          // A subagent's text is not the reply.
          if (m.parent_tool_use_id !== null) continue;
          const e = m.event;
          if (e.type === 'message_start') restart = true;
          else if (e.type === 'content_block_delta' && e.delta.type === 'text_delta' && typeof e.delta.text === 'string') {
            o.handlers.onTextDelta?.({ text: e.delta.text, restart });
            restart = false;
          }
        } else if (m.type === 'result') o.handlers.onResult(this.#outcome(o, m));
        else if (m.type === 'system' && m.subtype === 'compact_boundary')
          await this.#compactEnd(o, { ok: true, trigger: m.compact_metadata.trigger === 'auto' ? 'auto' : 'manual' });
        else if (m.type === 'system' && m.subtype === 'status' && m.compact_result === 'failed')
          await this.#compactEnd(o, { ok: false, error: m.compact_error ?? 'compaction failed' });
        else if (m.type === 'assistant')
          for (const block of m.message.content)
            if (block.type === 'tool_use') o.handlers.onToolUse(describeToolUse(block.name, block.input));
      }
      return { reason: this.#killed ? 'killed' : 'closed' };
    } catch (err) {
      if (this.#killed) return { reason: 'killed' };
      const message = err instanceof Error ? err.message : String(err);
      const tail = this.#stderr.trim().split('\n').slice(-3).join(' | ');
      return { reason: 'crashed', error: tail ? `${message} (${tail})` : message };
    } finally {
      await Promise.all(proxies.map((p) => p.close()));
      // The plan gave this session its own socket folder; nothing else uses it.
      rmSync(dirname(o.plan.modelSocket), { recursive: true, force: true });
    }
  }
}

/** Hooks run in this process, called by the sandboxed Claude Code: their input is as untrusted as it is. */
function preCompactHooks(o: AgentSessionOptions): Partial<Record<'PreCompact', HookCallbackMatcher[]>> {
  const handler = o.handlers.onPreCompact;
  if (!handler) return {};
  const hook: HookCallbackMatcher['hooks'][number] = async (input) => {
    if (input.hook_event_name !== 'PreCompact') return {};
    try {
      await handler({
        trigger: input.trigger === 'auto' ? 'auto' : 'manual',
        sessionId: String(input.session_id),
        transcriptPath: String(input.transcript_path),
      });
    } catch (err) {
      o.log.warn({ err }, 'archiving before a compaction failed; compacting anyway');
    }
    return {};
  };
  return { PreCompact: [{ hooks: [hook], timeout: 120 }] };
}

function toOutcome(m: SDKResultMessage, spent: Pick<TurnOutcome, 'costUsd' | 'inputTokens' | 'outputTokens'>): TurnOutcome {
  const common = { sessionId: m.session_id, ...spent, durationMs: m.duration_ms ?? null };
  if (m.subtype === 'success' && !m.is_error) return { ok: true, text: m.result, ...common };
  const text = m.subtype === 'success' ? m.result : m.errors.join('; ') || m.subtype;
  return { ok: false, text, ...common };
}

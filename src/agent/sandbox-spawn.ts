// Turns the SDK's request to start Claude Code into a sandboxed process that sees only the group's world.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { realpathSync } from 'node:fs';
import type { SpawnedProcess, SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import type { ModelCredential } from '../config.js';
import { execOnlyCopy } from '../sandbox/exec-only.js';
import type { Mount, ResourceLimits, Runtime, SandboxUser } from '../sandbox/types.js';

export const SANDBOX_GROUP_DIR = '/workspace/group';
export const SANDBOX_GLOBAL_DIR = '/workspace/global';
export const SANDBOX_HOME = '/home/agent';
const SANDBOX_CLAUDE = '/opt/claude/claude';
/** The owner's extra CA certificates (PINCER_EXTRA_CA_CERTS), read-only. */
const SANDBOX_CA_CERTS = '/opt/pincer/extra-ca.pem';
/** The ports inside the sandbox where the model proxy and the egress (HTTP(S)_PROXY) proxy are reachable. */
export const MODEL_PORT = 3129;
export const EGRESS_PORT = 3128;

export interface GroupPaths {
  groupDir: string;
  globalDir: string;
  /** Only the main group may change the memory every group reads. */
  globalWritable: boolean;
  /** The group's Claude Code state (CLAUDE_CONFIG_DIR, transcripts): the sandbox's home. */
  stateDir: string;
  /** The host sockets of this session's model and egress proxies. */
  modelSocket: string;
  egressSocket: string;
}

/** Everything that decides what one session's sandbox is: its folders, who it runs as, what it may use. */
export interface SandboxPlan extends GroupPaths {
  /** Unique among live sandboxes, `[a-z0-9-]`. */
  name: string;
  user: SandboxUser;
  limits: ResourceLimits;
  /** Host folders from the owner's allowlist, already checked. */
  extraMounts: Mount[];
  /** A PEM file of CA certificates the sandbox's tools trust besides the system's (a TLS-inspecting proxy's). */
  extraCaCerts?: string;
}

/** SDK-set variables that are safe inside; anything else the SDK passes (or inherits) stays out. */
const PASSED_PREFIXES = ['CLAUDE_CODE_', 'CLAUDE_AGENT_SDK_'];
const NEVER_PASSED = /TOKEN|KEY|SECRET|PASSWORD|CREDENTIAL/i;

/** The environment the sandboxed Claude Code gets: fixed paths, the placeholder credential, no host secrets. */
export function sandboxEnv(fromSdk: SpawnOptions['env'], fixed: Record<string, string>): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(fromSdk)) {
    if (v !== undefined && PASSED_PREFIXES.some((p) => k.startsWith(p)) && !NEVER_PASSED.test(k)) env[k] = v;
  }
  return { ...env, ...fixed };
}

/** The fixed environment of the sandboxed Claude Code: in-sandbox paths, placeholders, both proxies. */
export function agentEnv(o: {
  credentialKind: ModelCredential['kind'];
  timezone: string;
  maxRetries: number;
  extraCaCerts?: boolean;
  /** The model Claude Code's model aliases stand for (a group on another provider than Anthropic). */
  aliasModel?: string;
}): Record<string, string> {
  const egress = `http://127.0.0.1:${EGRESS_PORT}`;
  // Both spellings: curl reads the lower-case ones, Claude Code and most tools the upper-case ones.
  const noProxy = '127.0.0.1,localhost';
  return {
    HOME: SANDBOX_HOME,
    CLAUDE_CONFIG_DIR: `${SANDBOX_HOME}/.claude`,
    TMPDIR: '/tmp',
    CLAUDE_CODE_TMPDIR: '/tmp',
    PATH: '/usr/local/bin:/usr/bin:/bin',
    LANG: 'C.UTF-8',
    TZ: o.timezone,
    ANTHROPIC_BASE_URL: `http://127.0.0.1:${MODEL_PORT}`,
    // A placeholder of the right kind: the host proxy replaces it with the real credential.
    // A subscription's token makes Claude Code speak as a subscriber; every other kind is a key to it (the proxy
    // drops it and adds the provider's own header, or none).
    ...(o.credentialKind === 'oauth' ? { CLAUDE_CODE_OAUTH_TOKEN: 'placeholder' } : { ANTHROPIC_API_KEY: 'placeholder' }),
    // On another provider Claude Code's own names (haiku for its small calls, sonnet and opus for sub-agents)
    // mean nothing: each is the group's model there.
    ...(o.aliasModel
      ? {
          ANTHROPIC_DEFAULT_HAIKU_MODEL: o.aliasModel,
          ANTHROPIC_DEFAULT_SONNET_MODEL: o.aliasModel,
          ANTHROPIC_DEFAULT_OPUS_MODEL: o.aliasModel,
          ANTHROPIC_SMALL_FAST_MODEL: o.aliasModel,
        }
      : {}),
    // Every other connection goes through the host's egress proxy, under the group's policy.
    HTTP_PROXY: egress,
    HTTPS_PROXY: egress,
    http_proxy: egress,
    https_proxy: egress,
    NO_PROXY: noProxy,
    no_proxy: noProxy,
    CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
    CLAUDE_CODE_MAX_RETRIES: String(o.maxRetries),
    CLAUDE_CODE_ADDITIONAL_DIRECTORIES_CLAUDE_MD: '1',
    // Sub-agents and Bash run in the foreground: a background one finishes after the turn's result, and Claude Code
    // then starts a turn of its own whose result would be taken for the answer to the next message.
    CLAUDE_CODE_DISABLE_BACKGROUND_TASKS: '1',
    // One memory, the one pincer names and a person can see: the group's CLAUDE.md. Claude Code's own automatic
    // memory would be a second one, in a folder of its state nobody looks at.
    CLAUDE_CODE_DISABLE_AUTO_MEMORY: '1',
    DISABLE_AUTOUPDATER: '1',
    IS_SANDBOX: '1',
    // Node's addition to its built-in CAs: Claude Code (WebFetch) and Node tools trust the owner's extra ones.
    ...(o.extraCaCerts ? { NODE_EXTRA_CA_CERTS: SANDBOX_CA_CERTS } : {}),
  };
}

export function sandboxedSpawn(
  runtime: Runtime,
  plan: SandboxPlan,
  fixedEnv: Record<string, string>,
  onSpawn: (child: ChildProcessWithoutNullStreams) => void,
  /** pincer ending the session (a stop, a timeout): the sandbox is killed at once. */
  killed?: AbortSignal,
): (options: SpawnOptions) => SpawnedProcess {
  return (options) => {
    const child = runtime.spawn({
      name: plan.name,
      user: plan.user,
      limits: plan.limits,
      mounts: [
        { hostPath: plan.groupDir, sandboxPath: SANDBOX_GROUP_DIR, writable: true },
        { hostPath: plan.globalDir, sandboxPath: SANDBOX_GLOBAL_DIR, writable: plan.globalWritable },
        { hostPath: plan.stateDir, sandboxPath: SANDBOX_HOME, writable: true },
        // Execute-only, so that Claude Code runs non-dumpable: no command of the agent's can trace it or write its memory.
        { hostPath: execOnlyCopy(realpathSync(options.command)), sandboxPath: SANDBOX_CLAUDE, writable: false },
        ...plan.extraMounts,
        ...(plan.extraCaCerts ? [{ hostPath: plan.extraCaCerts, sandboxPath: SANDBOX_CA_CERTS, writable: false }] : []),
      ],
      forwards: [
        { port: MODEL_PORT, hostSocket: plan.modelSocket },
        { port: EGRESS_PORT, hostSocket: plan.egressSocket },
      ],
      env: sandboxEnv(options.env, fixedEnv),
      command: SANDBOX_CLAUDE,
      // Every path option pincer gives the SDK is already in its in-sandbox form.
      args: options.args,
      cwd: SANDBOX_GROUP_DIR,
    });
    // The SDK's own signal comes only after it has waited 2 s for Claude Code to exit by itself.
    const kill = () => child.kill('SIGKILL');
    for (const signal of [options.signal, killed]) {
      if (signal?.aborted) kill();
      else signal?.addEventListener('abort', kill, { once: true });
    }
    onSpawn(child);
    return child;
  };
}

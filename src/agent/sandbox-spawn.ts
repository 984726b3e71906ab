// Turns the SDK's request to start Claude Code into a sandboxed process that sees only the group's world.
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { realpathSync } from 'node:fs';
import type { SpawnedProcess, SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import type { Runtime } from '../sandbox/types.js';

export const SANDBOX_GROUP_DIR = '/workspace/group';
export const SANDBOX_GLOBAL_DIR = '/workspace/global';
export const SANDBOX_HOME = '/home/agent';
const SANDBOX_CLAUDE = '/opt/claude/claude';
/** The port inside the sandbox where the model proxy is reachable. */
export const MODEL_PORT = 3129;

export interface GroupPaths {
  groupDir: string;
  globalDir: string;
  /** Only the main group may change the memory every group reads. */
  globalWritable: boolean;
  /** The group's Claude Code state (CLAUDE_CONFIG_DIR, transcripts): the sandbox's home. */
  stateDir: string;
  /** The host socket of this session's model proxy. */
  modelSocket: string;
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

export function sandboxedSpawn(
  runtime: Runtime,
  paths: GroupPaths,
  fixedEnv: Record<string, string>,
  onSpawn: (child: ChildProcessWithoutNullStreams) => void,
): (options: SpawnOptions) => SpawnedProcess {
  return (options) => {
    const child = runtime.spawn({
      mounts: [
        { hostPath: paths.groupDir, sandboxPath: SANDBOX_GROUP_DIR, writable: true },
        { hostPath: paths.globalDir, sandboxPath: SANDBOX_GLOBAL_DIR, writable: paths.globalWritable },
        { hostPath: paths.stateDir, sandboxPath: SANDBOX_HOME, writable: true },
        { hostPath: realpathSync(options.command), sandboxPath: SANDBOX_CLAUDE, writable: false },
      ],
      forwards: [{ port: MODEL_PORT, hostSocket: paths.modelSocket }],
      env: sandboxEnv(options.env, fixedEnv),
      command: SANDBOX_CLAUDE,
      // Every path option pincer gives the SDK is already in its in-sandbox form.
      args: options.args,
      cwd: SANDBOX_GROUP_DIR,
    });
    options.signal?.addEventListener('abort', () => child.kill('SIGKILL'), { once: true });
    onSpawn(child);
    return child;
  };
}

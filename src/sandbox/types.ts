import type { ChildProcessWithoutNullStreams } from 'node:child_process';

/** A host path made visible inside the sandbox. */
export interface Mount {
  hostPath: string;
  sandboxPath: string;
  writable: boolean;
}

/** A TCP port on the sandbox's own loopback that is bridged to a Unix socket on the host. */
export interface Forward {
  port: number;
  hostSocket: string;
}

/** Everything a runtime needs to start one sandboxed process; runtimes know nothing of chats or groups. */
export interface SandboxSpec {
  mounts: Mount[];
  forwards: Forward[];
  env: Record<string, string>;
  /** Path of the command inside the sandbox. */
  command: string;
  args: string[];
  /** Working directory inside the sandbox. */
  cwd: string;
}

export interface ProbeResult {
  ok: boolean;
  reason?: string;
}

export interface Runtime {
  readonly name: 'bwrap';
  probe(): Promise<ProbeResult>;
  spawn(spec: SandboxSpec): ChildProcessWithoutNullStreams;
}

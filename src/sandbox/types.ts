import type { ChildProcessWithoutNullStreams } from 'node:child_process';

export const RUNTIME_NAMES = ['bwrap', 'docker', 'podman', 'apple-container'] as const;
export type RuntimeName = (typeof RUNTIME_NAMES)[number];

/** A host path made visible inside the sandbox. */
export interface Mount {
  hostPath: string;
  sandboxPath: string;
  writable: boolean;
  /** Not pincer's (an owner's folder from the allowlist): its owner and permissions are never changed. */
  external?: boolean;
}

/** A TCP port on the sandbox's own loopback that is bridged to a Unix socket on the host. */
export interface Forward {
  port: number;
  hostSocket: string;
}

/** What one sandbox may consume; each runtime enforces what its host allows (see `Runtime.limits`). */
export interface ResourceLimits {
  /** Memory (and swap) of everything in the sandbox, /tmp included. */
  memoryBytes: number;
  /** Processes and threads alive at once. */
  pids: number;
  /** CPU time of one process. */
  cpuSeconds: number;
  /** Size of the private /tmp. */
  tmpBytes: number;
  /** Largest file a process may write. */
  fileBytes: number;
}

/** The unprivileged identity a sandbox runs as. */
export interface SandboxUser {
  uid: number;
  gid: number;
}

/** Everything a runtime needs to start one sandboxed process; runtimes know nothing of chats or groups. */
export interface SandboxSpec {
  /** Unique among live sandboxes, `[a-z0-9-]` only: names the container or cgroup. */
  name: string;
  /** Who the sandbox runs as; writable mounts and bridge sockets are handed to this user. */
  user: SandboxUser;
  mounts: Mount[];
  forwards: Forward[];
  env: Record<string, string>;
  /** Path of the command inside the sandbox. */
  command: string;
  args: string[];
  /** Working directory inside the sandbox. */
  cwd: string;
  limits: ResourceLimits;
}

export interface ProbeResult {
  ok: boolean;
  reason?: string;
}

/** How each limit is enforced on this host, or `not enforced`: shown at start, by doctor, in docs. */
export type LimitsReport = Record<keyof ResourceLimits, string>;

export interface Runtime {
  readonly name: RuntimeName;
  probe(): Promise<ProbeResult>;
  /** Which limits hold here and by what means. Valid after a successful probe. */
  limits(): LimitsReport;
  /** Removes what an earlier pincer on the same state left behind when it crashed (containers, cgroups). */
  cleanOrphans(): Promise<void>;
  /**
   * Starts the sandboxed process. When the returned process exits or is killed, the runtime tears down
   * everything else it made for it (container, cgroup): the caller only ever deals with the one process.
   */
  spawn(spec: SandboxSpec): ChildProcessWithoutNullStreams;
}

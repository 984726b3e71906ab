// Docker or Podman: one hardened, network-less container per sandboxed process, driven through the CLI.
//
// Podman takes the same flags. Differences worth knowing:
// - Rootless podman (and rootless docker) map container uids to subordinate host uids, so `--user uid:gid`
//   cannot write bind mounts owned by the host user; podman's `--userns=keep-id` would fix that. pincer
//   keeps one set of flags and is tested with a rootful daemon, where uids are the host's.
// - `--memory-swap` needs swap accounting (cgroup v2, or v1 with swapaccount=1), as with docker.
import { type ChildProcessWithoutNullStreams, execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { grantAccess } from './access.js';
import { bridgeScript, forwardMounts, type MountCheck } from './bridge.js';
import { holdMounts, mountChecks } from './held-mounts.js';
import type { LimitsReport, Mount, ProbeResult, Runtime, SandboxSpec } from './types.js';

const execFileAsync = promisify(execFile);

export interface DockerOptions {
  cli: 'docker' | 'podman';
  /** The agent image (see container/Dockerfile); never pulled: it must exist locally. */
  image: string;
  /** Short hex id of this pincer's state folder: labels its containers, so two pincers on a host never touch each other's. */
  instance: string;
  log?: Logger;
}

/** Host variables a container CLI needs to find and reach its daemon; nothing else of pincer's environment. */
const CLI_ENV = [
  'PATH',
  'HOME',
  'USER',
  'TMPDIR',
  'XDG_RUNTIME_DIR',
  'XDG_CONFIG_HOME',
  'XDG_DATA_HOME',
  'DOCKER_HOST',
  'DOCKER_CONTEXT',
  'DOCKER_CONFIG',
  'DOCKER_API_VERSION',
  'DOCKER_CERT_PATH',
  'DOCKER_TLS_VERIFY',
  'CONTAINER_HOST',
  'CONTAINER_CONNECTION',
  'CONTAINERS_CONF',
  'CONTAINERS_STORAGE_CONF',
];

/** The environment a container CLI runs with. */
export function cliEnv(): Record<string, string> {
  const env: Record<string, string> = { PATH: '/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin' };
  for (const k of CLI_ENV) {
    const v = process.env[k];
    if (v !== undefined) env[k] = v;
  }
  return env;
}

/** The first line of a failed command's stderr (or its message), for reasons shown to the user. */
export function failureDetail(err: unknown): string {
  const e = err as { stderr?: unknown; message?: unknown };
  const text = typeof e.stderr === 'string' && e.stderr.trim() ? e.stderr : String(e.message ?? err);
  return (
    text
      .trim()
      .split('\n')
      .find((l) => l.trim()) ?? 'unknown error'
  ).trim();
}

function isMissingCommand(err: unknown): boolean {
  return (err as { code?: unknown }).code === 'ENOENT';
}

/**
 * Runs a container CLI's `run …`. Killing the CLI leaves its container (or VM) running, so `removeArgs`
 * (`rm -f <name>`) runs whenever the CLI goes, however it went; failures are only logged.
 */
export function spawnContainer(cli: string, args: string[], removeArgs: string[], log?: Logger): ChildProcessWithoutNullStreams {
  // A session of its own: the CLI would pass the terminal's Ctrl-C on to the container before pincer ends it.
  const child = spawn(cli, args, { stdio: ['pipe', 'pipe', 'pipe'], env: cliEnv(), detached: true });
  let removed = false;
  const remove = (): void => {
    if (removed) return;
    removed = true;
    execFile(cli, removeArgs, { env: cliEnv(), timeout: 60_000 }, (err, _stdout, stderr) => {
      if (err && !/no such container|no container with name|not found/i.test(String(stderr))) {
        log?.debug({ cli, removeArgs, err: failureDetail(err) }, 'container removal failed');
      }
    });
  };
  child.once('exit', remove);
  child.once('error', remove);
  return child;
}

/** The folder with the agent image's Dockerfile, as an absolute path when this is a checkout of the project. */
export function containerDir(): string {
  const dir = fileURLToPath(new URL('../../container/', import.meta.url));
  return existsSync(join(dir, 'Dockerfile')) ? dir.replace(/\/$/, '') : 'container/';
}

export function assertInstance(instance: string): void {
  if (!/^[0-9a-f]{1,32}$/.test(instance)) throw new Error(`container instance id must be short lowercase hex, got "${instance}"`);
}

export function assertSandboxName(name: string): void {
  if (!/^[a-z0-9][a-z0-9-]*$/.test(name)) throw new Error(`sandbox name must be [a-z0-9-], got "${name}"`);
}

/** One field of a `--mount` value; docker parses the value as CSV, so a comma or quote in a path needs quoting. */
function csvField(field: string): string {
  return /[",\n\r]/.test(field) ? `"${field.replaceAll('"', '""')}"` : field;
}

function mountArg(m: Mount): string {
  const fields = ['type=bind', `src=${m.hostPath}`, `dst=${m.sandboxPath}`];
  if (!m.writable) fields.push('readonly');
  return fields.map(csvField).join(',');
}

/** What the daemon says it can enforce; unknown until a probe asked. */
interface DaemonLimits {
  memory: boolean | undefined;
  swap: boolean | undefined;
  pids: boolean | undefined;
}

export class DockerRuntime implements Runtime {
  readonly name: 'docker' | 'podman';
  readonly image: string;
  readonly instance: string;
  readonly #log: Logger | undefined;
  #daemon: DaemonLimits = { memory: undefined, swap: undefined, pids: undefined };

  constructor(options: DockerOptions) {
    assertInstance(options.instance);
    this.name = options.cli;
    this.image = options.image;
    this.instance = options.instance;
    this.#log = options.log;
  }

  /** The container's name: the instance keeps pincers apart, the spec's name keeps sandboxes apart. */
  containerName(specName: string): string {
    return `pincer-${this.instance}-${specName}`;
  }

  async probe(): Promise<ProbeResult> {
    const cli = this.name;
    try {
      await this.#run(['version'], 15_000);
    } catch (err) {
      return { ok: false, reason: this.#daemonReason(err) };
    }
    try {
      await this.#run(['image', 'inspect', '--format', '{{.Id}}', this.image], 15_000);
    } catch (err) {
      const detail = failureDetail(err);
      const fix = `build it with \`${cli} build -t ${this.image} ${containerDir()}\``;
      if (/no such image|image not known|not found/i.test(detail)) return { ok: false, reason: `image ${this.image} not found: ${fix}` };
      return { ok: false, reason: `cannot inspect image ${this.image} (${detail}): ${fix}` };
    }
    await this.#readDaemonLimits();
    return { ok: true };
  }

  limits(): LimitsReport {
    const d = this.#daemon;
    const memory =
      d.memory === false
        ? 'not enforced (the daemon has no memory cgroup)'
        : d.swap === false
          ? 'container memory cgroup (--memory; swap not limited: the daemon has no swap accounting)'
          : 'container memory cgroup (--memory, --memory-swap: no swap)';
    return {
      memoryBytes: memory,
      pids: d.pids === false ? 'not enforced (the daemon has no pids cgroup)' : 'container pids cgroup (--pids-limit)',
      cpuSeconds: 'RLIMIT_CPU per process (--ulimit cpu)',
      tmpBytes: 'tmpfs size (--tmpfs /tmp size=), counted in the container memory',
      fileBytes: 'RLIMIT_FSIZE per process (--ulimit fsize)',
    };
  }

  /** Removes every container labelled with this instance, running or not. Throws when the CLI fails. */
  async cleanOrphans(): Promise<void> {
    const { stdout } = await this.#run(['ps', '-aq', '--filter', `label=pincer.instance=${this.instance}`], 30_000);
    const ids = stdout.split(/\s+/).filter(Boolean);
    if (ids.length === 0) return;
    await this.#run(['rm', '-f', ...ids], 60_000);
    this.#log?.info({ runtime: this.name, containers: ids.length }, 'removed containers an earlier pincer left behind');
  }

  spawn(spec: SandboxSpec): ChildProcessWithoutNullStreams {
    // The daemon mounts by path, later: the sandbox checks that each extra mount is the folder opened here.
    const held = holdMounts(spec.mounts.filter((m) => m.external));
    try {
      const args = this.buildArgs(spec, mountChecks(held.mounts));
      grantAccess(spec, this.#log);
      return spawnContainer(this.name, args, ['rm', '-f', this.containerName(spec.name)], this.#log);
    } finally {
      held.release();
    }
  }

  /** The CLI's arguments for one sandbox (`run …`); public so tests can read them. */
  buildArgs(spec: SandboxSpec, checks: MountCheck[] = []): string[] {
    assertSandboxName(spec.name);
    const { uid, gid } = spec.user;
    const l = spec.limits;
    const a: string[] = [
      'run',
      '--rm',
      '-i',
      // No `--init`: docker-init would hold the host's end of Claude Code's stream where an agent's command could
      // trace it. The bridge script is PID 1 and reaps the orphans of the agent's commands instead.
      '--pull',
      'never',
      '--name',
      this.containerName(spec.name),
      '--label',
      `pincer.instance=${this.instance}`,
      // The agent's stream-json output must not also be written to the daemon's log files.
      '--log-driver',
      'none',
      '--network',
      'none',
      '--user',
      `${uid}:${gid}`,
      '--cap-drop',
      'ALL',
      '--security-opt',
      'no-new-privileges',
      '--read-only',
      '--tmpfs',
      `/tmp:rw,nosuid,nodev,size=${l.tmpBytes},mode=1777`,
      '--memory',
      String(l.memoryBytes),
      '--memory-swap',
      String(l.memoryBytes),
      '--pids-limit',
      String(l.pids),
      '--ulimit',
      `cpu=${l.cpuSeconds}`,
      '--ulimit',
      `fsize=${l.fileBytes}`,
    ];
    for (const m of [...forwardMounts(spec.forwards), ...spec.mounts]) a.push('--mount', mountArg(m));
    for (const [k, v] of Object.entries(spec.env)) a.push('-e', `${k}=${v}`);
    a.push('--workdir', spec.cwd, '--entrypoint', '/bin/sh', this.image);
    a.push('-c', bridgeScript(spec.forwards, checks), 'pincer-sandbox', spec.command, ...spec.args);
    return a;
  }

  #run(args: string[], timeout: number): Promise<{ stdout: string; stderr: string }> {
    return execFileAsync(this.name, args, { env: cliEnv(), timeout, maxBuffer: 16 * 1024 * 1024 });
  }

  #daemonReason(err: unknown): string {
    const cli = this.name;
    if (isMissingCommand(err)) {
      const how =
        cli === 'docker' ? 'Docker Engine (https://docs.docker.com/engine/install/)' : 'Podman (https://podman.io/docs/installation)';
      return `${cli} is not installed: install ${how}, or choose another PINCER_RUNTIME`;
    }
    const detail = failureDetail(err);
    if (/permission denied/i.test(detail)) {
      return `${cli} cannot reach its daemon (${detail}): add your user to the docker group (\`sudo usermod -aG docker $USER\`, then log in again) or run pincer as root`;
    }
    if (cli === 'docker' && /cannot connect|daemon running/i.test(detail)) {
      return `the docker daemon is not running (${detail}): start it (\`sudo systemctl start docker\`) or point DOCKER_HOST at it`;
    }
    if (cli === 'podman') return `podman does not answer (${detail}): check \`podman info\` (on macOS: \`podman machine start\`)`;
    return `${cli} does not answer (${detail}): check \`${cli} info\``;
  }

  /** Asks the daemon which cgroup limits it can enforce (docker's info flags, podman's cgroup controllers). */
  async #readDaemonLimits(): Promise<void> {
    try {
      const { stdout } = await this.#run(['info', '--format', '{{json .}}'], 15_000);
      const info = JSON.parse(stdout) as {
        MemoryLimit?: boolean;
        SwapLimit?: boolean;
        PidsLimit?: boolean;
        host?: { cgroupControllers?: string[] };
      };
      const controllers = info.host?.cgroupControllers;
      this.#daemon = {
        memory: info.MemoryLimit ?? controllers?.includes('memory'),
        swap: info.SwapLimit ?? controllers?.includes('memory'),
        pids: info.PidsLimit ?? controllers?.includes('pids'),
      };
    } catch (err) {
      this.#log?.debug({ runtime: this.name, err: failureDetail(err) }, 'could not read what the daemon enforces');
    }
  }
}

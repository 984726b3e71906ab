// Apple Container (github.com/apple/container, macOS on Apple silicon): one lightweight VM per sandboxed process.
//
// UNTESTED on real hardware: the flags below come from apple/container's command reference and sources
// (release 1.1.0 and later); only the argv is unit-tested, on Linux.
//
// How it differs from docker:
// - The VM is the isolation boundary. `--network none` (1.1.0+) leaves it only its loopback.
// - Forwards: a VM cannot reach a host Unix socket through a shared folder (virtiofs gives ENOTSUP for a
//   socket inside a mounted folder), but since 1.1.0 `-v host.sock:guest.sock` on the socket file itself
//   relays it over vsock. So each forward's socket is mounted per file at the place the bridge script
//   expects (/run/pincer/<i>/<name>), and socat inside turns it into 127.0.0.1:<port> as with docker.
//   The guest sees the relayed socket as root-owned with the host's mode bits, so the host socket is made
//   0666: the folder it lives in is what keeps other host users out.
// - No `--security-opt no-new-privileges` and no `--pids-limit`: `container run` has no such flags.
//   Processes are capped with RLIMIT_NPROC instead; memory is the VM's size.
// - `--mount type=bind` accepts folders only, so every bind uses `-v src:dst[:ro]`, whose parser splits on
//   ':' and ',' with no quoting: such paths are refused.
// - Files shared through virtiofs may appear root-owned inside the VM; if the sandbox user cannot write its
//   group folder there, that is the first thing to check on real hardware.
import { type ChildProcessWithoutNullStreams, execFile } from 'node:child_process';
import { chmodSync } from 'node:fs';
import { basename } from 'node:path';
import { promisify } from 'node:util';
import type { Logger } from '../log.js';
import { grantAccess } from './access.js';
import { bridgeScript, forwardDir } from './bridge.js';
import { assertInstance, assertSandboxName, cliEnv, containerDir, failureDetail, spawnContainer } from './docker.js';
import type { LimitsReport, ProbeResult, Runtime, SandboxSpec } from './types.js';

const execFileAsync = promisify(execFile);
const MIB = 1024 * 1024;
/** First release with `--network none` and host-to-guest Unix socket relays. */
const MIN_VERSION: [number, number, number] = [1, 1, 0];

export interface AppleContainerOptions {
  image: string;
  /** Short hex id of this pincer's state folder: prefixes its container names. */
  instance: string;
  log?: Logger;
  /** The CLI, `container` unless told otherwise. */
  cli?: string;
}

function volumeArg(hostPath: string, sandboxPath: string, writable: boolean): string {
  for (const p of [hostPath, sandboxPath]) {
    if (/[:,\n]/.test(p)) throw new Error(`apple container cannot mount a path with ':' or ',': ${p}`);
  }
  return `${hostPath}:${sandboxPath}${writable ? '' : ':ro'}`;
}

function mib(bytes: number): string {
  return `${Math.max(1, Math.ceil(bytes / MIB))}M`;
}

export class AppleContainerRuntime implements Runtime {
  readonly name = 'apple-container' as const;
  readonly image: string;
  readonly instance: string;
  readonly #cli: string;
  readonly #log: Logger | undefined;

  constructor(options: AppleContainerOptions) {
    assertInstance(options.instance);
    this.image = options.image;
    this.instance = options.instance;
    this.#cli = options.cli ?? 'container';
    this.#log = options.log;
  }

  /** The container's name, which Apple Container also uses as its id. */
  containerName(specName: string): string {
    return `pincer-${this.instance}-${specName}`;
  }

  async probe(): Promise<ProbeResult> {
    if (process.platform !== 'darwin') {
      return { ok: false, reason: `Apple Container runs on macOS only (this is ${process.platform}): choose bwrap, docker or podman` };
    }
    let version: string;
    try {
      version = (await this.#run(['--version'], 15_000)).stdout;
    } catch (err) {
      if ((err as { code?: unknown }).code === 'ENOENT') {
        return {
          ok: false,
          reason: 'the `container` CLI is not installed: install it from https://github.com/apple/container/releases (1.1.0 or newer)',
        };
      }
      return { ok: false, reason: `\`container --version\` failed (${failureDetail(err)})` };
    }
    const found = /(\d+)\.(\d+)\.(\d+)/.exec(version);
    const parts = found ? [Number(found[1]), Number(found[2]), Number(found[3])] : undefined;
    if (parts && compareVersions(parts, MIN_VERSION) < 0) {
      return {
        ok: false,
        reason: `container ${parts.join('.')} is too old: pincer needs ${MIN_VERSION.join('.')} or newer (for --network none and socket forwarding); upgrade from https://github.com/apple/container/releases`,
      };
    }
    try {
      await this.#run(['system', 'status'], 15_000);
    } catch (err) {
      return {
        ok: false,
        reason: `the container system service is not running (${failureDetail(err)}): start it with \`container system start\``,
      };
    }
    try {
      await this.#run(['image', 'inspect', this.image], 15_000);
    } catch (err) {
      return {
        ok: false,
        reason: `image ${this.image} not found (${failureDetail(err)}): build it with \`container build -t ${this.image} ${containerDir()}\``,
      };
    }
    return { ok: true };
  }

  limits(): LimitsReport {
    return {
      memoryBytes: 'VM memory size (--memory)',
      pids: 'RLIMIT_NPROC of the sandbox user inside the VM (--ulimit nproc)',
      cpuSeconds: 'RLIMIT_CPU per process (--ulimit cpu)',
      tmpBytes: 'tmpfs size (--mount type=tmpfs,size=), inside the VM memory',
      fileBytes: 'RLIMIT_FSIZE per process (--ulimit fsize)',
    };
  }

  /** Removes every container whose name carries this instance (the CLI cannot filter by label). */
  async cleanOrphans(): Promise<void> {
    const { stdout } = await this.#run(['list', '--all', '--quiet'], 30_000);
    const prefix = `pincer-${this.instance}-`;
    const ids = stdout.split(/\s+/).filter((id) => id.startsWith(prefix));
    if (ids.length === 0) return;
    await this.#run(['delete', '--force', ...ids], 60_000);
    this.#log?.info({ runtime: this.name, containers: ids.length }, 'removed containers an earlier pincer left behind');
  }

  spawn(spec: SandboxSpec): ChildProcessWithoutNullStreams {
    const args = this.buildArgs(spec);
    grantAccess(spec, this.#log);
    for (const f of spec.forwards) chmodSync(f.hostSocket, 0o666);
    return spawnContainer(this.#cli, args, ['delete', '--force', this.containerName(spec.name)], this.#log);
  }

  /** The CLI's arguments for one sandbox (`run …`); public so tests can read them. */
  buildArgs(spec: SandboxSpec): string[] {
    assertSandboxName(spec.name);
    const { uid, gid } = spec.user;
    const l = spec.limits;
    const a: string[] = [
      'run',
      '--rm',
      '-i',
      // No `--init`: the bridge script is PID 1 and reaps, holding none of the host's stream (see bridgeScript).
      '--name',
      this.containerName(spec.name),
      '--label',
      `pincer.instance=${this.instance}`,
      '--network',
      'none',
      '--user',
      `${uid}:${gid}`,
      '--cap-drop',
      'ALL',
      '--read-only',
      '--mount',
      `type=tmpfs,target=/tmp,size=${mib(l.tmpBytes)},mode=1777`,
      '--memory',
      mib(l.memoryBytes),
      '--ulimit',
      `nproc=${l.pids}`,
      '--ulimit',
      `cpu=${l.cpuSeconds}`,
      '--ulimit',
      `fsize=${l.fileBytes}`,
    ];
    spec.forwards.forEach((f, i) => {
      // No `:ro` on a relayed socket: it is a vsock endpoint, not a file, and how ro applies to it is unknown.
      a.push('-v', volumeArg(f.hostSocket, `${forwardDir(i)}/${basename(f.hostSocket)}`, true));
    });
    for (const m of spec.mounts) a.push('-v', volumeArg(m.hostPath, m.sandboxPath, m.writable));
    for (const [k, v] of Object.entries(spec.env)) a.push('-e', `${k}=${v}`);
    a.push('--workdir', spec.cwd, '--entrypoint', '/bin/sh', this.image);
    a.push('-c', bridgeScript(spec.forwards), 'pincer-sandbox', spec.command, ...spec.args);
    return a;
  }

  #run(args: string[], timeout: number): Promise<{ stdout: string; stderr: string }> {
    return execFileAsync(this.#cli, args, { env: cliEnv(), timeout, maxBuffer: 16 * 1024 * 1024 });
  }
}

function compareVersions(a: number[], b: number[]): number {
  for (let i = 0; i < 3; i++) {
    const d = (a[i] ?? 0) - (b[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

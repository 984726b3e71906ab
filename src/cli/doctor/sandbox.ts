// The sandbox runtime `auto` (or PINCER_RUNTIME) picks, and a real sandbox start: a trivial command started
// exactly as an agent's Claude Code is (same plan, spawn path, environment, bridges to both proxies, limits).
import type { ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import { agentEnv, sandboxedSpawn } from '../../agent/sandbox-spawn.js';
import type { Config } from '../../config.js';
import { createLogger, type Logger } from '../../log.js';
import { startEgressProxy } from '../../proxy/egress-proxy.js';
import { startModelProxy } from '../../proxy/model-proxy.js';
import { canChangeOwners } from '../../sandbox/access.js';
import { selectRuntime } from '../../sandbox/select.js';
import type { Runtime } from '../../sandbox/types.js';
import { registerGroup } from '../../service/groups.js';
import { prepareState, type StateLayout } from '../../service/layout.js';
import { sandboxPlan } from '../../service/sandbox-plan.js';
import { Store } from '../../store/index.js';
import { type Check, fail, ok, oneLine, since, warn } from './check.js';

/** A first container start may have to set up its network namespace and overlay: be patient, but not forever. */
const START_TIMEOUT_MS = 30_000;
const RUNTIME_NAMES = ['bwrap', 'docker', 'podman', 'apple-container'];

/** The same 12 hex digits pincer names its cgroups and containers by (a hash of PINCER_HOME), so leftovers are its to clean. */
function instanceOf(home: string): string {
  return createHash('sha256').update(home).digest('hex').slice(0, 12);
}

function readSysctl(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/** The AppArmor profile Ubuntu's own guidance gives for a program that needs unprivileged user namespaces. */
const APPARMOR_FIX =
  "printf 'abi <abi/4.0>,\\ninclude <tunables/global>\\nprofile bwrap /usr/bin/bwrap flags=(unconfined) {\\n  userns,\\n}\\n' " +
  '| sudo tee /etc/apparmor.d/bwrap && sudo apparmor_parser -r /etc/apparmor.d/bwrap';

/** The fixes for one runtime's probe failure, from what it said and what this host's kernel settings are. */
export function runtimeFixes(name: string, reason: string): string[] {
  if (name === 'bwrap') {
    if (/socat is not installed/.test(reason)) return ['install socat: sudo apt-get install socat (Fedora: sudo dnf install socat)'];
    if (/ENOENT/.test(reason))
      return ['install bubblewrap: sudo apt-get install bubblewrap socat (Fedora: sudo dnf install bubblewrap socat)'];
    const fixes: string[] = [];
    if (readSysctl('/proc/sys/kernel/apparmor_restrict_unprivileged_userns') === '1') {
      fixes.push(
        'AppArmor blocks unprivileged user namespaces (kernel.apparmor_restrict_unprivileged_userns=1, Ubuntu 23.10 and later): allow them for bwrap with a profile:',
        APPARMOR_FIX,
        'or for all programs: sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (keep it in /etc/sysctl.d/60-userns.conf)',
      );
    }
    if (readSysctl('/proc/sys/kernel/unprivileged_userns_clone') === '0') {
      fixes.push('unprivileged user namespaces are off: sudo sysctl -w kernel.unprivileged_userns_clone=1 (keep it in /etc/sysctl.d/)');
    }
    if (readSysctl('/proc/sys/user/max_user_namespaces') === '0') {
      fixes.push('user namespaces are disabled: sudo sysctl -w user.max_user_namespaces=15000 (keep it in /etc/sysctl.d/)');
    }
    if (fixes.length === 0) {
      fixes.push(
        'bubblewrap needs unprivileged user namespaces; inside a container (Docker, LXC, CI) they are usually blocked: run pincer on the host, or set PINCER_RUNTIME=docker',
      );
    }
    return fixes;
  }
  if (name === 'docker' || name === 'podman') {
    if (/is not installed/.test(reason)) return [`install ${name}, or choose another PINCER_RUNTIME`];
    if (/daemon is not running/.test(reason))
      return ['start the daemon: sudo systemctl start docker (or point DOCKER_HOST at a running one)'];
    if (/cannot reach its daemon/.test(reason))
      return ['add your user to the docker group: sudo usermod -aG docker $USER, then log in again'];
    const build = /build it with `([^`]+)`/.exec(reason)?.[1];
    if (build) return [`build the agent image: ${build}`];
    return [`see container/README.md for ${name}`];
  }
  if (name === 'apple-container') {
    const hint = /: ([^:]+)$/.exec(reason)?.[1];
    return hint ? [hint] : ['see container/README.md for Apple Container'];
  }
  return [];
}

/** `no sandbox runtime works here (bwrap: …; docker: …)` → each runtime with what it said. */
export function splitReasons(reason: string): Array<{ name: string; reason: string }> {
  const inner = reason.replace(/^no sandbox runtime works here \(/, '').replace(/\)$/, '');
  const names = RUNTIME_NAMES.join('|');
  return inner
    .split(new RegExp(`; (?=(?:${names}): )`))
    .map((part) => {
      const m = new RegExp(`^(${names}): ([\\s\\S]*)$`).exec(part);
      return m ? { name: m[1] as string, reason: m[2] as string } : { name: '', reason: part };
    })
    .filter((p) => p.reason);
}

/**
 * Picks the runtime as pincer would and starts one sandbox through it. The scratch state (a group, its folders,
 * the sockets) lives in `scratchParent` (inside PINCER_HOME when usable: the same path a real sandbox's mounts
 * take) and is removed afterwards; the running pincer's own state is never touched.
 */
export async function sandboxChecks(config: Config, scratchParent: string | undefined): Promise<Check[]> {
  const log = createLogger('silent');
  let scratch: string;
  try {
    scratch = mkdtempSync(join(scratchParent ?? tmpdir(), '.doctor-'));
  } catch {
    scratch = mkdtempSync(join(tmpdir(), 'pincer-doctor-'));
  }
  let layout: StateLayout | undefined;
  try {
    layout = prepareState(scratch);
    const asked = config.runtime === 'auto' ? 'auto' : `PINCER_RUNTIME=${config.runtime}`;
    const choice = await selectRuntime({
      wanted: config.runtime,
      stateDir: layout.runDir,
      instance: instanceOf(config.home),
      containerImage: config.containerImage,
      log,
      cleanOrphans: false,
    });
    if (!choice.ok) {
      const parts = splitReasons(choice.reason);
      const fixes = parts.flatMap((p) =>
        runtimeFixes(p.name || config.runtime, p.reason).map((f) => (p.name && parts.length > 1 ? `${p.name}: ${f}` : f)),
      );
      if (config.runtime === 'auto' && process.platform === 'linux') {
        fixes.push('or use a container runtime: PINCER_RUNTIME=docker with the agent image (container/README.md)');
      }
      return [fail('sandbox runtime', `${asked}: ${choice.reason}; every message would be answered with this reason`, ...fixes)];
    }
    const runtime = choice.runtime;
    const checks: Check[] = [ok('sandbox runtime', `${runtime.name}${config.runtime === 'auto' ? ' (what auto picks here)' : ''}`)];
    checks.push(await startOne(config, runtime, layout, log));
    const limits = runtime.limits();
    const weak = Object.entries(limits).filter(([, how]) => /^not enforced/.test(how));
    const detail = Object.entries(limits)
      .map(([k, v]) => `${k}: ${v}`)
      .join('; ');
    checks.push(
      weak.length
        ? warn(
            'sandbox limits',
            detail,
            `${weak.map(([k]) => k).join(', ')} cannot be enforced on this host (docs/SECURITY.md#resource-limits-per-sandbox)`,
          )
        : ok('sandbox limits', detail),
    );
    return checks;
  } catch (err) {
    return [fail('sandbox runtime', `could not prepare a sandbox: ${oneLine(err)}`, 'see docs/TROUBLESHOOTING.md')];
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function startOne(config: Config, runtime: Runtime, layout: StateLayout, log: Logger): Promise<Check> {
  const store = new Store(layout.db);
  const closers: Array<() => Promise<void>> = [];
  try {
    const group = registerGroup(
      store,
      layout,
      { chatId: 'local:doctor', folder: 'doctor', trigger: `@${config.assistantName}`, respondToAll: true, isMain: false },
      Date.now(),
    );
    const plan = sandboxPlan(
      layout,
      group,
      {
        limits: config.sandboxLimits,
        uidBase: config.sandboxUidBase,
        mountAllowlistPath: join(layout.home, 'no-mount-allowlist.json'),
        protectedPaths: [config.home],
      },
      log,
    );
    // Both bridges' host ends exist, as for an agent (the runtime hands them to the sandbox user when root).
    const model = await startModelProxy(plan.modelSocket, {
      upstream: config.modelBaseUrl,
      credential: config.credential ?? { kind: 'api-key', value: 'none' },
    });
    closers.push(() => model.close());
    const egress = await startEgressProxy(plan.egressSocket, { policy: () => ({ mode: 'none' }), onRecord: () => {} });
    closers.push(() => egress.close());

    const env = agentEnv({ credentialKind: config.credential?.kind ?? 'api-key', timezone: config.timezone, maxRetries: 0 });
    const abort = new AbortController();
    let child: ChildProcessWithoutNullStreams | undefined;
    const start = sandboxedSpawn(runtime, plan, env, (c) => {
      child = c;
    });
    const started = performance.now();
    const options: SpawnOptions = {
      command: realpathSync('/bin/sh'),
      args: ['-c', 'echo ok'],
      cwd: plan.groupDir,
      env,
      signal: abort.signal,
    };
    start(options);
    if (!child) throw new Error('the runtime returned no process');
    const proc = child;
    let out = '';
    proc.stdout.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    proc.stderr.on('data', (c: Buffer) => {
      out += c.toString('utf8');
    });
    const timer = setTimeout(() => abort.abort(), START_TIMEOUT_MS);
    const end = await new Promise<{ code: number | null; signal: NodeJS.Signals | null; error?: Error }>((resolve) => {
      proc.once('error', (error) => resolve({ code: null, signal: null, error }));
      proc.once('close', (code, signal) => resolve({ code, signal }));
    });
    clearTimeout(timer);
    const ms = since(started);
    const who = canChangeOwners() ? `as uid ${plan.user.uid}` : 'as your user';
    if (end.code === 0 && out.trim() === 'ok') {
      return ok('sandbox start', `a ${runtime.name} sandbox (${who}, both proxy bridges up) ran \`echo ok\` in ${ms} ms`, ms);
    }
    const what = end.error
      ? oneLine(end.error)
      : abort.signal.aborted
        ? `no exit within ${START_TIMEOUT_MS / 1000} s`
        : `exit ${end.code ?? end.signal}${out.trim() ? `: ${oneLine(out.trim(), 400)}` : ''}`;
    return fail(
      'sandbox start',
      `${runtime.name} probed fine, but a real sandbox did not run (${what})`,
      ...startFixes(runtime.name, out, config),
    );
  } catch (err) {
    return fail('sandbox start', `${runtime.name}: ${oneLine(err)}`, ...startFixes(runtime.name, String(err), config));
  } finally {
    for (const close of closers) await close().catch(() => {});
    store.close();
  }
}

function startFixes(name: string, output: string, config: Config): string[] {
  if (/port bridge \d+ did not start/.test(output) || /socat/.test(output)) {
    return ['socat must exist inside the sandbox: on the host for bwrap (apt-get install socat), in the image for containers'];
  }
  if (/cannot join the sandbox cgroup/.test(output)) {
    return ['pincer runs as root but cannot use cgroups here: check that /sys/fs/cgroup is writable (systemd: Delegate=yes)'];
  }
  if (name === 'bwrap' && /Permission denied|Can't find source path/i.test(output) && canChangeOwners()) {
    return [
      `as root each sandbox runs as its own user (uid ${config.sandboxUidBase} and up), which must be able to enter every folder on the way to ${config.home}: chmod o+x on them, or set PINCER_HOME elsewhere`,
    ];
  }
  if (name !== 'bwrap') {
    return [
      `the agent image ${config.containerImage} must run a program mounted from the host (Claude Code is): rebuild it from container/Dockerfile`,
    ];
  }
  return ['run it by hand with LOG_LEVEL=debug npm start and see docs/TROUBLESHOOTING.md'];
}

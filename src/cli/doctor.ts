// `pincer doctor`: what this machine needs to run pincer, each failure with its fix.
import { accessSync, constants, existsSync, mkdirSync } from 'node:fs';
import { createServer } from 'node:net';
import { type Config, ConfigError, loadConfig } from '../config.js';
import { createLogger } from '../log.js';
import { describePolicy } from '../proxy/egress-policy.js';
import { loadMountAllowlist } from '../sandbox/mount-allowlist.js';
import { selectRuntime } from '../sandbox/select.js';
import { prepareState } from '../service/layout.js';
import { Store } from '../store/index.js';

interface Check {
  name: string;
  ok: boolean;
  /** A problem that stops pincer from answering (not just a warning). */
  blocking: boolean;
  detail: string;
}

function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', () => resolve(false));
    server.listen(port, host, () => server.close(() => resolve(true)));
  });
}

async function pincerAnswers(config: Config): Promise<boolean> {
  try {
    const res = await fetch(`http://${config.host}:${config.port}/healthz`, { signal: AbortSignal.timeout(1000) });
    return res.ok;
  } catch {
    return false;
  }
}

export async function runDoctor(): Promise<number> {
  const checks: Check[] = [];
  const nodeMajor = Number(process.versions.node.split('.')[0]);
  checks.push({
    name: 'node',
    ok: nodeMajor >= 20,
    blocking: true,
    detail: nodeMajor >= 20 ? `v${process.versions.node}` : `v${process.versions.node}: install Node.js 20 or newer`,
  });

  let config: Config;
  try {
    config = loadConfig(process.env, process.cwd());
    checks.push({ name: 'config', ok: true, blocking: true, detail: 'environment and .env are valid' });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    checks.push({ name: 'config', ok: false, blocking: true, detail: err.message });
    return report(checks);
  }

  try {
    if (!existsSync(config.home)) mkdirSync(config.home, { recursive: true });
    accessSync(config.home, constants.W_OK);
    const layout = prepareState(config.home);
    checks.push({ name: 'state dir', ok: true, blocking: true, detail: `${layout.home} (writable)` });
    const runtime = await selectRuntime({
      wanted: config.runtime,
      stateDir: layout.runDir,
      instance: layout.instance,
      containerImage: config.containerImage,
      log: createLogger('silent'),
      cleanOrphans: false,
    });
    checks.push({
      name: 'sandbox',
      ok: runtime.ok,
      blocking: true,
      detail: runtime.ok
        ? `${runtime.runtime.name} starts sandboxes here`
        : config.runtime === 'auto' || config.runtime === 'bwrap'
          ? `${runtime.reason}. Fix: apt-get install bubblewrap socat (Debian/Ubuntu), or set PINCER_RUNTIME=docker`
          : runtime.reason,
    });
    if (runtime.ok) {
      const limits = runtime.runtime.limits();
      const lines = Object.entries(limits).map(([k, v]) => `${k}: ${v}`);
      checks.push({ name: 'sandbox limits', ok: true, blocking: false, detail: lines.join('; ') });
    }
    checks.push(mountAllowlistCheck(config.mountAllowlistPath));
    const store = new Store(layout.db);
    try {
      const policies = store.groups.list().map((g) => `${g.folder}: ${describePolicy(g.egressPolicy)}`);
      checks.push({ name: 'egress policies', ok: true, blocking: false, detail: policies.join('; ') || 'no groups yet' });
    } finally {
      store.close();
    }
  } catch (err) {
    checks.push({
      name: 'state dir',
      ok: false,
      blocking: true,
      detail: `${config.home}: ${(err as Error).message}. Fix: set PINCER_HOME to a writable folder`,
    });
  }

  const credential = config.credential;
  checks.push({
    name: 'model credentials',
    ok: credential !== undefined,
    blocking: true,
    detail: credential
      ? `${credential.kind === 'api-key' ? 'ANTHROPIC_API_KEY' : 'CLAUDE_CODE_OAUTH_TOKEN'} is set; endpoint ${config.modelBaseUrl}`
      : 'none: set ANTHROPIC_API_KEY (or CLAUDE_CODE_OAUTH_TOKEN) in .env or the environment',
  });

  const messengers = Object.keys(config.channels);
  checks.push({
    name: 'channels',
    ok: true,
    blocking: false,
    detail: `local${messengers.length ? `, ${messengers.join(', ')}` : " only (set a messenger's credentials to enable it: docs/CHANNELS.md)"}`,
  });

  if (await portFree(config.host, config.port)) {
    checks.push({ name: 'port', ok: true, blocking: true, detail: `${config.host}:${config.port} is free` });
  } else if (await pincerAnswers(config)) {
    checks.push({ name: 'port', ok: true, blocking: false, detail: `pincer is already running on ${config.host}:${config.port}` });
  } else {
    checks.push({
      name: 'port',
      ok: false,
      blocking: true,
      detail: `${config.host}:${config.port} is taken by another program: set PINCER_PORT`,
    });
  }
  return report(checks);
}

function mountAllowlistCheck(path: string): Check {
  try {
    const allowlist = loadMountAllowlist(path);
    const detail = allowlist
      ? `${path}: ${allowlist.allowedRoots.length} allowed root(s)`
      : `${path} does not exist: no extra mounts (that is the safe default)`;
    return { name: 'mount allowlist', ok: true, blocking: false, detail };
  } catch (err) {
    return {
      name: 'mount allowlist',
      ok: false,
      blocking: false,
      detail: `${(err as Error).message}: extra mounts are off until it is fixed`,
    };
  }
}

function report(checks: Check[]): number {
  for (const c of checks) process.stdout.write(`${c.ok ? 'ok  ' : c.blocking ? 'FAIL' : 'warn'}  ${c.name.padEnd(18)} ${c.detail}\n`);
  const failed = checks.filter((c) => !c.ok && c.blocking).length;
  process.stdout.write(failed ? `\n${failed} problem(s) keep pincer from answering.\n` : '\nAll good.\n');
  return failed ? 1 : 0;
}

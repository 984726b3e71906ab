// The escape battery: each attempt runs inside a real sandbox, started exactly as an agent's is (same
// plan, same spawn path, same environment, the real model and egress proxies), and must fail. Runs on
// every runtime that works here and prints a table of attempt × runtime × result.
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { homedir, networkInterfaces, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import { agentEnv, type SandboxPlan, sandboxedSpawn } from '../src/agent/sandbox-spawn.js';
import { createLogger } from '../src/log.js';
import { type EgressRecord, startEgressProxy } from '../src/proxy/egress-proxy.js';
import { startModelProxy } from '../src/proxy/model-proxy.js';
import { bridgeScript } from '../src/sandbox/bridge.js';
import { BwrapRuntime } from '../src/sandbox/bwrap.js';
import { DockerRuntime } from '../src/sandbox/docker.js';
import type { ResourceLimits, Runtime } from '../src/sandbox/types.js';
import { registerGroup } from '../src/service/groups.js';
import { groupPaths, prepareState, type StateLayout } from '../src/service/layout.js';
import { sandboxPlan } from '../src/service/sandbox-plan.js';
import { type Group, Store } from '../src/store/index.js';
import { dockerUnavailable, ensureTestImage } from './helpers/docker.js';
import { REAL_KEY, sandboxUnavailable } from './helpers/harness.js';

const log = createLogger('silent');
const MIB = 1024 * 1024;
const LIMITS: ResourceLimits = { memoryBytes: 512 * MIB, pids: 256, cpuSeconds: 60, tmpBytes: 64 * MIB, fileBytes: 64 * MIB };
const MARKER = `host-service-${process.pid}`;
const PROCESS_MARKER = '987.654321';

/** attempt → runtime → result, printed at the end. */
const results = new Map<string, Map<string, string>>();
function record(attempt: string, runtime: string, result: string): void {
  const row = results.get(attempt) ?? new Map<string, string>();
  row.set(runtime, result);
  results.set(attempt, row);
}

interface Upstream {
  url: string;
  seen: IncomingHttpHeaders[];
  /** Method and path of every request that reached the upstream. */
  calls: string[];
  close(): Promise<void>;
}

/** Stands in for the model endpoint: an API error on /v1/, and a header echo elsewhere (a reflecting page). */
async function startUpstream(): Promise<Upstream> {
  const seen: IncomingHttpHeaders[] = [];
  const calls: string[] = [];
  const server: Server = createServer((req, res) => {
    seen.push(req.headers);
    calls.push(`${req.method} ${req.url}`);
    req.resume();
    if ((req.url ?? '').startsWith('/v1/')) {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"type":"error","error":{"type":"invalid_request_error","message":"bad body"}}');
    } else {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(req.headers));
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    seen,
    calls,
    close: () => new Promise((r) => server.close(() => r())),
  };
}

/** A host service the sandbox must not reach, on every address of the host. */
async function startHostService(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createServer((_req, res) => res.end(MARKER));
  await new Promise<void>((r) => server.listen(0, '0.0.0.0', r));
  return { port: (server.address() as AddressInfo).port, close: () => new Promise((r) => server.close(() => r())) };
}

function lanAddress(): string | undefined {
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) if (a.family === 'IPv4' && !a.internal) return a.address;
  }
  return undefined;
}

interface World {
  runtimeName: string;
  runtime: Runtime;
  home: string;
  layout: StateLayout;
  store: Store;
  alpha: Group;
  beta: Group;
  upstream: Upstream;
  hostService: { port: number; close(): Promise<void> };
  homeCanary: string;
  egress: EgressRecord[];
  hostSleeper: ChildProcess;
}

interface RunResult {
  out: string;
  code: number | null;
  signal: NodeJS.Signals | null;
  plan: SandboxPlan;
}

/** Runs a shell script as the group's agent would run: the shell takes the place of Claude Code. */
async function runIn(
  w: World,
  group: Group,
  script: string,
  opts: {
    limits?: Partial<ResourceLimits>;
    timeoutMs?: number;
    during?: () => Promise<void>;
    mountAllowlistPath?: string;
    /** Runs between the host's check of the plan (its extra mounts) and the sandbox's start. */
    beforeSpawn?: () => void;
  } = {},
): Promise<RunResult> {
  const plan = sandboxPlan(
    w.layout,
    group,
    {
      limits: { ...LIMITS, ...opts.limits },
      uidBase: 1_000_000,
      mountAllowlistPath: opts.mountAllowlistPath ?? join(w.home, 'no-allowlist.json'),
      protectedPaths: [w.home],
    },
    log,
  );
  opts.beforeSpawn?.();
  const egress = await startEgressProxy(plan.egressSocket, { policy: () => ({ mode: 'open' }), onRecord: (r) => w.egress.push(r) });
  const model = await startModelProxy(plan.modelSocket, { upstream: w.upstream.url, credential: { kind: 'api-key', value: REAL_KEY } });
  try {
    const env = agentEnv({ credentialKind: 'api-key', timezone: 'UTC', maxRetries: 0 });
    const abort = new AbortController();
    const start = sandboxedSpawn(w.runtime, plan, env, () => {});
    const child = start({
      command: realpathSync('/bin/sh'),
      args: ['-c', script],
      cwd: plan.groupDir,
      env: { ...env, ANTHROPIC_API_KEY: REAL_KEY, SECRET_FROM_HOST: REAL_KEY },
      signal: abort.signal,
    } as SpawnOptions) as unknown as ChildProcess;
    let out = '';
    child.stdout?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    child.stderr?.on('data', (c: Buffer) => {
      out += c.toString();
    });
    const timer = setTimeout(() => abort.abort(), opts.timeoutMs ?? 30_000);
    const closed = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once('close', (code, signal) => resolve({ code, signal })),
    );
    if (opts.during) {
      await opts.during();
      abort.abort();
    }
    const { code, signal } = await closed;
    clearTimeout(timer);
    return { out, code, signal, plan };
  } finally {
    await Promise.all([egress.close(), model.close()]);
  }
}

interface Attempt {
  name: string;
  /** Why this attempt cannot be made on this host: reported as skipped, never as blocked. */
  skip?: string;
  script: (w: World) => string;
  /** Extra checks on the host side after the attempt (what the script cannot see for itself). */
  check?: (w: World, r: RunResult) => void;
}

const noise = '2>/dev/null';
const findOutsideUsr = (name: string) =>
  `find / -path /proc -prune -o -path /usr -prune -o -path /sys -prune -o -name '${name}' -print ${noise}`;
// `--noproxy ''` overrides the sandbox's NO_PROXY (which sends 127.0.0.1 direct, for the model proxy).
const viaProxy = (url: string) => `curl -s --noproxy '' --max-time 5 -x http://127.0.0.1:3128 '${url}' ${noise}`;
const direct = (url: string) => `curl -s --noproxy '*' --max-time 3 '${url}' ${noise}`;

const ATTEMPTS: Attempt[] = [
  { name: 'read /etc/shadow', script: () => `cat /etc/shadow ${noise} && echo ESCAPED` },
  {
    name: "read the user's home",
    script: (w) => `cat '${w.homeCanary}' ${noise} && echo ESCAPED; ls -A '${homedir()}' ${noise} | grep -q . && echo ESCAPED-ls`,
  },
  {
    name: 'read the pincer store',
    script: (w) =>
      `cat '${w.layout.db}' >/dev/null ${noise} && echo ESCAPED; ${findOutsideUsr('pincer.db*')} | grep -q . && echo ESCAPED-find`,
  },
  {
    name: 'read the project directory',
    script: () =>
      `cat '${process.cwd()}/package.json' ${noise} && echo ESCAPED; ${findOutsideUsr('tsconfig.json')} | grep -q . && echo ESCAPED-find`,
  },
  {
    name: "read another group's folder",
    script: (w) =>
      `cat '${join(w.layout.groupsDir, w.beta.folder, 'secret-beta.txt')}' ${noise} && echo ESCAPED; ` +
      `${findOutsideUsr('secret-beta.txt')} | grep -q . && echo ESCAPED-find; ls /workspace ${noise} | grep -v -e group -e global && echo ESCAPED-ls`,
  },
  {
    name: 'find the real key in the environment',
    script: () =>
      // The pattern never spells the key out: this script's own command line must not match it.
      `env | grep -q 'sk-ant-test-[R]EAL' && echo ESCAPED; cat /proc/*/environ ${noise} | tr '\\0' '\\n' | grep -q 'sk-ant-test-[R]EAL' && echo ESCAPED-proc; ` +
      `cat /proc/*/cmdline ${noise} | tr '\\0' '\\n' | grep -q 'sk-ant-test-[R]EAL' && echo ESCAPED-cmdline`,
  },
  {
    name: 'find the real key in files',
    script: () => `grep -rqs --exclude-dir=proc --exclude-dir=sys --exclude-dir=usr 'sk-ant-test-[R]EAL' / && echo ESCAPED`,
  },
  {
    name: "find the real key in the proxy's answers",
    script: () =>
      `for p in /v1/messages /v1/../echo /echo '/v1/%2e%2e/echo' //echo '/v1/..%2fecho'; do ` +
      `curl -s --noproxy '*' --max-time 5 -H 'x-api-key: placeholder' -d '{}' "http://127.0.0.1:3129$p"; ` +
      `curl -s --noproxy '*' --max-time 5 -H 'x-api-key: placeholder' -X GET "http://127.0.0.1:3129$p"; done | grep -q 'sk-ant-test-[R]EAL' && echo ESCAPED; ` +
      `${viaProxy('http://127.0.0.1:3129/v1/messages')} | grep -q 'sk-ant-test-[R]EAL' && echo ESCAPED-egress`,
    check: (w) => {
      // The control: the proxy really forwarded, with the real key, to the upstream (only on /v1/).
      assert.ok(
        w.upstream.seen.some((h) => h['x-api-key'] === REAL_KEY),
        'the model proxy never forwarded the real key',
      );
      assert.ok(!w.upstream.seen.some((h) => h['x-api-key'] === 'placeholder'), 'the placeholder reached the upstream');
    },
  },
  {
    name: "use the owner's key on other model API paths (files, batches, admin keys)",
    script: () =>
      `for c in 'GET /v1/files' 'DELETE /v1/files/file_1' 'GET /v1/messages/batches' 'POST /v1/organizations/api_keys' ` +
      `'GET /v1/models' 'POST /v1/messages/../files' 'POST /v1//files' 'POST /v1/messages/%2e%2e/files' 'PUT /v1/messages'; do ` +
      `set -- $c; curl -s --noproxy '*' --max-time 5 -X "$1" -H 'x-api-key: placeholder' -d '{}' "http://127.0.0.1:3129$2"; echo; done`,
    check: (w, r) => {
      assert.match(r.out, /permission_error/, `the proxy did not refuse: ${r.out}`);
      const other = w.upstream.calls.filter((c) => !/^POST \/v1\/messages(\?beta=true)?$/.test(c));
      assert.deepEqual(other, [], "calls other than Claude Code's reached the upstream with the real key");
    },
  },
  {
    name: 'flood the egress log with refused connections',
    script: () =>
      `i=0; while [ $i -lt 300 ]; do curl -s --noproxy '' --max-time 2 -x http://127.0.0.1:3128 http://127.0.0.1:1/ >/dev/null ${noise}; i=$((i+1)); done; echo sent $i`,
    check: (w, r) => {
      assert.match(r.out, /sent 300/);
      const flood = w.egress.filter((e) => e.port === 1 || e.host === '');
      const refusals = flood.reduce((n, e) => n + e.count, 0);
      // Every refusal is counted, in a few rows: the first 20 of each 10 s on their own, the rest of those 10 s
      // in one summary. How many windows the flood spans depends on how fast this host runs 300 curls.
      assert.ok(refusals >= 300, `only ${refusals} refusals were counted`);
      const first = Math.min(...flood.map((e) => e.startedAt));
      const last = Math.max(...flood.map((e) => e.startedAt + e.durationMs));
      const windows = Math.ceil((last - first) / 10_000) + 1;
      assert.ok(flood.length <= 21 * windows, `${flood.length} rows for ${refusals} refusals over ${windows} windows of 10 s`);
      assert.ok(
        flood.some((e) => e.count > 1),
        `${flood.length} rows for ${refusals} refusals: none is a summary`,
      );
    },
  },
  {
    name: 'reach a host service on 127.0.0.1 directly',
    script: (w) => `${direct(`http://127.0.0.1:${w.hostService.port}/`)} | grep -q ${MARKER} && echo ESCAPED`,
  },
  {
    name: "reach a host service on the host's LAN address directly",
    skip: lanAddress() ? undefined : 'this host has no non-loopback IPv4 address to attack',
    script: (w) => `${direct(`http://${lanAddress()}:${w.hostService.port}/`)} | grep -q ${MARKER} && echo ESCAPED`,
  },
  {
    name: 'reach a private and the metadata address directly',
    // Without a network, connecting fails at once (curl exit 7); anything else means packets left.
    script: () =>
      `for u in http://10.255.255.1/ http://169.254.169.254/latest/meta-data/ http://100.64.0.1/; do ` +
      `curl -s --noproxy '*' --max-time 2 "$u" >/dev/null ${noise}; rc=$?; [ $rc -ne 7 ] && echo "ESCAPED-$u-rc$rc"; done; true`,
  },
  {
    name: 'reach 127.0.0.1, the LAN address and metadata through the proxy',
    script: (w) => {
      const port = w.hostService.port;
      const urls = [
        `http://127.0.0.1:${port}/`,
        `http://localhost:${port}/`,
        `http://[::ffff:127.0.0.1]:${port}/`,
        `http://2130706433:${port}/`,
        `http://0.0.0.0:${port}/`,
        `https://127.0.0.1:${port}/`,
        'http://169.254.169.254/latest/meta-data/',
        `http://${lanAddress() ?? '10.0.0.1'}:${port}/`,
      ];
      return `for u in ${urls.map((u) => `'${u}'`).join(' ')}; do curl -s --noproxy '' --max-time 5 -x http://127.0.0.1:3128 "$u" ${noise}; echo; done | tee /tmp/answers | grep -q ${MARKER} && echo ESCAPED; grep -c 'pincer egress' /tmp/answers`;
    },
    check: (w, r) => {
      // The proxy answered (it is the sandbox's way out) and refused each by policy, not by accident.
      assert.match(r.out, /^[1-9]/m, `the egress proxy never answered: ${r.out}`);
      const meta = w.egress.filter((e) => e.host === '169.254.169.254');
      assert.ok(meta.length > 0 && meta.every((e) => !e.allowed), 'the metadata request was not refused by the proxy');
      assert.ok(w.egress.filter((e) => e.port === w.hostService.port).every((e) => !e.allowed));
    },
  },
  {
    name: 'create a user namespace (unshare -r)',
    script: () => `unshare -r true ${noise} && echo ESCAPED; unshare -U true ${noise} && echo ESCAPED-U`,
  },
  {
    name: 'remount a read-only bind writable',
    script: () =>
      `mount -o remount,rw,bind /workspace/global ${noise} && echo ESCAPED; mount -o remount,rw /opt/claude/claude ${noise} && echo ESCAPED-claude; ` +
      `echo x >> /workspace/global/CLAUDE.md ${noise} && echo ESCAPED-write`,
  },
  {
    name: 'write outside the writable mounts',
    script: () =>
      `for d in / /usr /usr/bin /etc /opt/claude /run/pincer/0 /workspace; do touch "$d/escape-probe" ${noise} && echo "ESCAPED-$d"; done; ` +
      `echo x > /opt/claude/claude ${noise} && echo ESCAPED-binary; true`,
  },
  {
    name: 'see host processes',
    script: () =>
      `grep -qa '${PROCESS_MARKER.replace('.', '[.]')}' /proc/*/cmdline ${noise} && echo ESCAPED; [ "$(ls /proc | grep -c '^[0-9]')" -gt 30 ] && echo ESCAPED-count; true`,
  },
  {
    name: 'hold a capability or run as root',
    script: () =>
      `grep -q '^CapEff:[[:space:]]*0000000000000000' /proc/self/status || echo ESCAPED-caps; ` +
      `grep -q '^NoNewPrivs:[[:space:]]*1' /proc/self/status || echo ESCAPED-nnp; [ "$(id -u)" = 0 ] && echo ESCAPED-root; true`,
  },
  {
    // The script stands in for Claude Code (run, as Claude Code is, from an execute-only copy); the attacker is
    // its child with stdio of its own, as Claude Code's Bash is. Opening /proc/<pid>/mem for writing needs the
    // same access as ptrace attach.
    name: "forge Claude Code's output: write its memory, or trace a process holding the host's stream",
    script: () =>
      `cat > /tmp/forge.sh <<'EOF'
pids=$(ls /proc | grep '^[0-9]*$'); n=0
for p in $pids; do
  [ "$p" = "$$" ] || [ ! -d /proc/$p ] && continue
  n=$((n+1))
  (exec 3<>/proc/$p/mem) 2>/dev/null || continue
  [ "$p" = "$PPID" ] && echo "ESCAPED-agent-memory-writable"
  for f in /proc/$p/fd/*; do
    l=$(readlink $f 2>/dev/null); ino=\${l#*[}; ino=\${ino%]}
    # Sockets made inside are listed in the sandbox's own network namespace (a relay's listener, its internals);
    # one that is not came from outside, as the host's end of Claude Code's stream would. Any pipe could too.
    case "$l" in pipe:*) ;; socket:*) grep -qsE " $ino( |$)" /proc/net/tcp /proc/net/tcp6 /proc/net/unix && continue;; *) continue;; esac
    echo "ESCAPED-$p-$(cat /proc/$p/comm)-fd-\${f##*/}-holds-$l"
  done
done
echo "examined $n"
EOF
/bin/sh /tmp/forge.sh </dev/null >/tmp/forge.out 2>&1; cat /tmp/forge.out`,
    check: (_w, r) => assert.match(r.out, /examined [2-9]/, `the attacker saw no other process: ${r.out}`),
  },
  {
    name: 'plant a symlink for the host to follow',
    script: (w) => `rm -f CLAUDE.md && ln -s '${join(w.home, 'planted-target')}' CLAUDE.md && echo planted`,
    check: (w, r) => {
      assert.match(r.out, /planted/);
      // The host prepares the group's folders again (as at every session start): it must not write through the link.
      groupPaths(w.layout, w.alpha.folder, false);
      assert.equal(existsSync(join(w.home, 'planted-target')), false, 'the host followed a planted symlink');
    },
  },
];

const RUNTIMES: Array<{ name: string; unavailable(): Promise<string | undefined>; make(stateDir: string): Promise<Runtime> }> = [
  {
    name: 'bwrap',
    unavailable: sandboxUnavailable,
    make: async (stateDir) => new BwrapRuntime({ stateDir, instance: process.pid.toString(16) }),
  },
  {
    name: 'docker',
    unavailable: dockerUnavailable,
    make: async () => new DockerRuntime({ cli: 'docker', image: await ensureTestImage(), instance: process.pid.toString(16) }),
  },
];

for (const rt of RUNTIMES) {
  const skip = await rt.unavailable();
  describe(`escape battery on ${rt.name}`, { skip }, () => {
    let w: World;

    before(async () => {
      const home = mkdtempSync(join(tmpdir(), 'pincer-escape-'));
      const layout = prepareState(home);
      const store = new Store(layout.db);
      const alpha = registerGroup(
        store,
        layout,
        { chatId: 'local:alpha', folder: 'alpha', trigger: '@Andy', respondToAll: true, isMain: false },
        1,
      );
      const beta = registerGroup(
        store,
        layout,
        { chatId: 'local:beta', folder: 'beta', trigger: '@Andy', respondToAll: true, isMain: false },
        2,
      );
      writeFileSync(join(layout.groupsDir, 'beta', 'secret-beta.txt'), 'beta secret');
      const homeCanary = join(homedir(), `.pincer-escape-canary-${process.pid}`);
      writeFileSync(homeCanary, 'user secret');
      const runtime = await rt.make(layout.runDir);
      const probe = await runtime.probe();
      assert.ok(probe.ok, probe.reason);
      w = {
        runtimeName: rt.name,
        runtime,
        home,
        layout,
        store,
        alpha,
        beta,
        upstream: await startUpstream(),
        hostService: await startHostService(),
        homeCanary,
        egress: [],
        hostSleeper: spawn('sleep', [PROCESS_MARKER], { stdio: 'ignore' }),
      };
    });

    after(async () => {
      w.hostSleeper.kill();
      await w.upstream.close();
      await w.hostService.close();
      w.store.close();
      rmSync(w.homeCanary, { force: true });
      rmSync(w.home, { recursive: true, force: true });
    });

    it('control: the sandbox runs, writes its folder and reaches its proxies', async () => {
      const r = await runIn(
        w,
        w.alpha,
        `echo hi > /workspace/group/ok.txt && cat /workspace/group/ok.txt; ${viaProxy('http://127.0.0.1:1/')}`,
      );
      assert.match(r.out, /hi/);
      assert.match(r.out, /pincer egress/, `the egress proxy did not answer: ${r.out}`);
      assert.equal(readFileSync(join(w.layout.groupsDir, 'alpha', 'ok.txt'), 'utf8'), 'hi\n');
    });

    for (const attempt of ATTEMPTS) {
      it(`${attempt.name} fails`, { skip: attempt.skip }, async () => {
        const r = await runIn(w, w.alpha, attempt.script(w));
        const escaped = r.out.includes('ESCAPED');
        record(attempt.name, rt.name, escaped ? 'ESCAPED' : 'blocked');
        assert.equal(escaped, false, `escaped: ${r.out}`);
        attempt.check?.(w, r);
      });
    }

    it('swapping an extra mount for a link to the project between check and mount fails', async () => {
      // The attacker's set-up: a read-write allowlist root holding the group's narrower mount, and a secret
      // elsewhere. Another sandbox that can write the root swaps the inner folder for a link right after the check.
      const root = mkdtempSync(join(tmpdir(), 'pincer-escape-root-'));
      const secret = mkdtempSync(join(tmpdir(), 'pincer-escape-project-'));
      try {
        mkdirSync(join(root, 'inner'));
        writeFileSync(join(root, 'inner', 'note.txt'), 'inner note');
        writeFileSync(join(secret, 'dot-env'), 'ANTHROPIC_API_KEY=swapped-in-secret');
        for (const d of [root, join(root, 'inner'), secret]) chmodSync(d, 0o755);
        chmodSync(join(secret, 'dot-env'), 0o644);
        const allowlist = join(w.home, 'allowlist.json');
        writeFileSync(allowlist, JSON.stringify({ allowedRoots: [{ path: root, allowReadWrite: true }], nonMainReadOnly: false }));
        const group = { ...w.alpha, extraMounts: [{ hostPath: join(root, 'inner'), name: 'inner', readOnly: true }] };
        const control = await runIn(w, group, 'cat /workspace/extra/inner/note.txt', { mountAllowlistPath: allowlist });
        assert.match(control.out, /inner note/, `control: the extra mount was not there: ${control.out}`);
        let out: string;
        try {
          const r = await runIn(w, group, 'cat /workspace/extra/inner/dot-env; ls /workspace/extra/inner', {
            mountAllowlistPath: allowlist,
            beforeSpawn: () => {
              renameSync(join(root, 'inner'), join(root, 'inner-moved'));
              symlinkSync(secret, join(root, 'inner'));
            },
          });
          out = r.out;
        } catch (err) {
          out = `refused: ${(err as Error).message}`;
        }
        const escaped = out.includes('swapped-in-secret') || out.includes('dot-env');
        record('swap an extra mount between check and mount', rt.name, escaped ? 'ESCAPED' : 'blocked');
        assert.equal(escaped, false, `the swapped folder was mounted: ${out}`);
        assert.match(out, /changed after it was checked|not the folder that was checked/);
      } finally {
        rmSync(root, { recursive: true, force: true });
        rmSync(secret, { recursive: true, force: true });
      }
    });

    it('an extra mount that is not the folder the host opened stops the sandbox before the agent runs', async () => {
      // The daemon (or bwrap) mounts a path after the host's check: the sandbox compares what it got with the
      // device and inode the host opened, so a swap in that last window is caught too.
      const spec = {
        name: `check-${process.pid}`,
        user: { uid: 1_000_001, gid: 1_000_001 },
        mounts: [{ hostPath: '/usr/share', sandboxPath: '/workspace/extra/share', writable: false }],
        forwards: [],
        env: { PATH: '/usr/bin:/bin' },
        command: '/bin/echo',
        args: ['AGENT-RAN'],
        cwd: '/',
        limits: LIMITS,
      };
      const script = bridgeScript([], [{ sandboxPath: '/workspace/extra/share', identity: '1:1' }]);
      const child =
        w.runtime instanceof DockerRuntime
          ? spawn('docker', [...w.runtime.buildArgs(spec, [{ sandboxPath: '/workspace/extra/share', identity: '1:1' }])])
          : spawn('bwrap', [
              '--unshare-all',
              '--ro-bind',
              '/usr',
              '/usr',
              '--symlink',
              'usr/bin',
              '/bin',
              '--symlink',
              'usr/lib',
              '/lib',
              '--symlink',
              'usr/lib64',
              '/lib64',
              '--proc',
              '/proc',
              '--dev',
              '/dev',
              '--ro-bind',
              '/usr/share',
              '/workspace/extra/share',
              '--',
              '/bin/sh',
              '-c',
              script,
              'pincer-sandbox',
              '/bin/echo',
              'AGENT-RAN',
            ]);
      let out = '';
      child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
      child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
      const code = await new Promise<number | null>((r) => child.once('close', r));
      record('a mount that is not the checked folder', rt.name, out.includes('AGENT-RAN') ? 'ESCAPED' : 'stopped');
      assert.equal(code, 98, out);
      assert.doesNotMatch(out, /AGENT-RAN/);
      assert.match(out, /not the folder that was checked/);
    });

    it('a fork bomb is stopped by the limits without harming the host or other groups', async () => {
      let hostOk = false;
      let otherOk = '';
      const r = await runIn(w, w.alpha, 'f() { f | f & }; f; sleep 30', {
        limits: { pids: 64 },
        during: async () => {
          await new Promise((res) => setTimeout(res, 2500));
          hostOk = await new Promise<boolean>((res) => spawn('true').once('close', (c) => res(c === 0)));
          otherOk = (await runIn(w, w.beta, 'echo beta-alive')).out;
        },
      });
      const contained = hostOk && otherOk.includes('beta-alive');
      record('fork bomb', rt.name, contained ? 'contained' : 'HOST HARMED');
      assert.ok(hostOk, 'the host could not start a process during the fork bomb');
      assert.match(otherOk, /beta-alive/, 'another group could not run during the fork bomb');
      assert.notEqual(r.signal ?? r.code, 0);
      await waitFor(
        () => processesOf(r.plan.user.uid) === 0,
        10_000,
        `processes of the bomb's user survive: ${processesOf(r.plan.user.uid)}`,
      );
    });

    it('a memory bomb is stopped by the memory limit', async () => {
      const r = await runIn(w, w.alpha, `head -c 2000M /dev/zero | tail -n 1 > /dev/null; echo "exit=$?"`, {
        limits: { memoryBytes: 128 * MIB },
        timeoutMs: 60_000,
      });
      const stopped = !/exit=0\b/.test(r.out);
      record('memory bomb', rt.name, stopped ? 'stopped' : 'NOT STOPPED');
      assert.ok(stopped, `the memory bomb ran to completion: ${r.out}`);
    });

    it('a full /tmp stops at its size and does not fill the host disk', async () => {
      const r = await runIn(w, w.alpha, `dd if=/dev/zero of=/tmp/fill bs=1M count=200 ${noise}; du -m /tmp/fill | cut -f1`, {
        limits: { tmpBytes: 32 * MIB },
      });
      const mb = Number(r.out.trim().split('\n').pop());
      const bounded = Number.isFinite(mb) && mb <= 33;
      record('fill /tmp', rt.name, bounded ? `stopped at ${mb} MiB` : `GREW TO ${mb} MiB`);
      assert.ok(bounded, `/tmp grew to ${r.out}`);
    });

    it('a giant file in the group folder stops at the file size limit', async () => {
      const r = await runIn(w, w.alpha, `dd if=/dev/zero of=/workspace/group/big bs=1M count=100 ${noise}; echo done`, {
        limits: { fileBytes: 8 * MIB },
      });
      const size = statSync(join(w.layout.groupsDir, 'alpha', 'big')).size;
      unlinkSync(join(w.layout.groupsDir, 'alpha', 'big'));
      record('giant file', rt.name, size <= 8 * MIB ? `stopped at ${size / MIB} MiB` : `GREW TO ${size / MIB} MiB`);
      assert.ok(size <= 8 * MIB, `the file grew to ${size} bytes (${r.out})`);
    });

    it('a CPU hog is stopped by the CPU time limit', async () => {
      const started = Date.now();
      const r = await runIn(w, w.alpha, 'while :; do :; done', { limits: { cpuSeconds: 1 }, timeoutMs: 20_000 });
      const ms = Date.now() - started;
      record('CPU hog', rt.name, ms < 15_000 ? `stopped after ${(ms / 1000).toFixed(1)} s` : 'NOT STOPPED');
      assert.ok(ms < 15_000, `the CPU hog ran ${ms} ms (${r.signal ?? r.code})`);
    });
  });
}

/** Live processes of a uid on the host: a sandbox that ended must leave none. */
function processesOf(uid: number): number {
  let n = 0;
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      const status = readFileSync(`/proc/${pid}/status`, 'utf8');
      if (new RegExp(`^Uid:\\s+${uid}\\s`, 'm').test(status)) n++;
    } catch {
      // Exited meanwhile.
    }
  }
  return n;
}

async function waitFor(cond: () => boolean, ms: number, message: string): Promise<void> {
  const until = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > until) assert.fail(message);
    await new Promise((r) => setTimeout(r, 100));
  }
}

after(() => {
  if (results.size === 0) return;
  const runtimes = [...new Set([...results.values()].flatMap((row) => [...row.keys()]))];
  const width = Math.max(...[...results.keys()].map((k) => k.length));
  const lines = [`${'attempt'.padEnd(width)}  ${runtimes.map((r) => r.padEnd(22)).join('')}`];
  for (const [attempt, row] of results)
    lines.push(`${attempt.padEnd(width)}  ${runtimes.map((r) => (row.get(r) ?? 'skipped').padEnd(22)).join('')}`);
  process.stdout.write(`\nEscape battery\n${lines.join('\n')}\n`);
});

// The run folder (sockets, the sandboxes' /etc files) is pincer's own, inside its state folder, whatever the
// state folder's length. An earlier version moved it to a predictable /tmp/pincer-<hash> when the path was too
// long for a Unix socket, and took that folder as it found it: another local user who made it first (links for
// the /etc files, a relay in place of the model socket) had root write through the links and took the main agent.
import assert from 'node:assert/strict';
import { type ChildProcess, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { SpawnOptions } from '@anthropic-ai/claude-agent-sdk';
import { agentEnv, sandboxedSpawn } from '../src/agent/sandbox-spawn.js';
import { createLogger } from '../src/log.js';
import { startEgressProxy } from '../src/proxy/egress-proxy.js';
import { startModelProxy } from '../src/proxy/model-proxy.js';
import { BwrapRuntime } from '../src/sandbox/bwrap.js';
import { registerGroup } from '../src/service/groups.js';
import { prepareState } from '../src/service/layout.js';
import { sandboxPlan } from '../src/service/sandbox-plan.js';
import { Store } from '../src/store/index.js';
import { REAL_KEY, sandboxUnavailable } from './helpers/harness.js';

const MIB = 1024 * 1024;
const ATTACKER_UID = 4242;
const UID_BASE = 1_000_000;

describe('the run folder', async () => {
  const skip = (await sandboxUnavailable()) ?? (process.getuid?.() === 0 ? undefined : 'the attack needs root to play another user');
  let base: string;
  before(() => {
    base = mkdtempSync(join(tmpdir(), 'pincer-run-'));
    // Folders on the way to what a sandbox mounts must be passable by its user, as a real PINCER_HOME's are.
    chmodSync(base, 0o711);
  });
  after(() => rmSync(base, { recursive: true, force: true }));

  it('stays in a long state folder, and a folder another user planted in /tmp is never used', { skip }, async () => {
    const home = join(base, 'a-rather-long-state-folder-name-'.repeat(3));
    // The attacker's set-up, where the old fallback looked: a link for each sandbox /etc file, a socket folder.
    const planted = join(tmpdir(), `pincer-${createHash('sha256').update(home).digest('hex').slice(0, 12)}`);
    const target = join(base, 'root-owned-target');
    writeFileSync(target, 'untouched\n');
    rmSync(planted, { recursive: true, force: true });
    mkdirSync(join(planted, `etc-${UID_BASE + 1}`), { recursive: true });
    mkdirSync(join(planted, 's'));
    for (const name of ['passwd', 'group', 'hosts', 'nsswitch.conf']) symlinkSync(target, join(planted, `etc-${UID_BASE + 1}`, name));
    spawnSync('chown', ['-hR', `${ATTACKER_UID}:${ATTACKER_UID}`, planted]);
    const plantedBefore = readdirSync(planted).sort();

    const upstreamSaw: string[] = [];
    const upstream = createServer((req, res) => {
      upstreamSaw.push(String(req.headers['x-api-key']));
      req.resume();
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"type":"error","error":{"type":"invalid_request_error","message":"from the real upstream"}}');
    });
    await new Promise<void>((r) => upstream.listen(0, '127.0.0.1', r));
    const store = new Store(join(base, 'unused.db'));
    try {
      const layout = prepareState(home);
      assert.ok(layout.runDir.startsWith(`${home}/`), `run folder ${layout.runDir} is outside the state folder`);
      const group = registerGroup(
        store,
        layout,
        { chatId: 'local:main', folder: 'main', trigger: '@Andy', respondToAll: true, isMain: true },
        1,
      );
      const plan = sandboxPlan(
        layout,
        group,
        {
          limits: { memoryBytes: 512 * MIB, pids: 256, cpuSeconds: 60, tmpBytes: 64 * MIB, fileBytes: 64 * MIB },
          uidBase: UID_BASE,
          mountAllowlistPath: join(base, 'none.json'),
          protectedPaths: [home],
        },
        createLogger('silent'),
      );
      assert.ok(Buffer.byteLength(plan.modelSocket) > 107, `the test needs a socket path over 107 bytes: ${plan.modelSocket}`);
      const model = await startModelProxy(plan.modelSocket, {
        upstream: `http://127.0.0.1:${(upstream.address() as AddressInfo).port}`,
        credential: { kind: 'api-key', value: REAL_KEY },
      });
      const egress = await startEgressProxy(plan.egressSocket, { policy: () => ({ mode: 'none' }), onRecord: () => {} });
      try {
        const env = agentEnv({ credentialKind: 'api-key', timezone: 'UTC', maxRetries: 0 });
        const child = sandboxedSpawn(new BwrapRuntime({ stateDir: layout.runDir, instance: 'runfolder' }), plan, env, () => {})({
          command: realpathSync('/bin/sh'),
          args: ['-c', `curl -s --noproxy '*' -H 'x-api-key: placeholder' -d '{}' http://127.0.0.1:3129/v1/messages; cat /etc/passwd`],
          cwd: plan.groupDir,
          env,
          signal: new AbortController().signal,
        } as SpawnOptions) as unknown as ChildProcess;
        let out = '';
        child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
        child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
        await new Promise((r) => child.once('close', r));
        assert.match(out, /from the real upstream/, `the model proxy on a long socket path did not answer: ${out}`);
        assert.match(out, /^agent:x:1000001:/m, out);
        assert.deepEqual(upstreamSaw, [REAL_KEY]);
      } finally {
        await Promise.all([model.close(), egress.close()]);
      }
      assert.equal(readFileSync(target, 'utf8'), 'untouched\n', 'root wrote through a planted link');
      assert.deepEqual(readdirSync(planted).sort(), plantedBefore, 'pincer used the planted folder');
      assert.ok(lstatSync(join(planted, `etc-${UID_BASE + 1}`, 'passwd')).isSymbolicLink());
    } finally {
      store.close();
      rmSync(planted, { recursive: true, force: true });
      await new Promise((r) => upstream.close(r));
    }
  });

  it('refuses a run folder that is a link or another user’s', { skip }, () => {
    const home = join(base, 'linked');
    mkdirSync(home);
    const elsewhere = join(base, 'elsewhere');
    mkdirSync(elsewhere);
    symlinkSync(elsewhere, join(home, 'run'));
    assert.throws(() => prepareState(home), /must be a folder of pincer's own user .*not a link/);
    rmSync(join(home, 'run'));
    mkdirSync(join(home, 'run'));
    chownSync(join(home, 'run'), ATTACKER_UID, ATTACKER_UID);
    assert.throws(() => prepareState(home), new RegExp(`owned by uid ${ATTACKER_UID}`));
  });
});

// 8. A sandbox floods its egress proxy with refused CONNECTs (from a process of its own, as a sandbox would),
// while the host records into a real store, as the service does. Measured in the host process: its event-loop
// delay, requests through the flooded proxy and through another group's, the rows written. Then, as root, the
// hand-over of a group folder to a new sandbox uid: in one synchronous call (the spawn path), and in slices.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { startEgressProxy } from '../src/proxy/egress-proxy.js';
import { chownTree, chownTreeInSlices, DEFAULT_CHOWN_LIMITS } from '../src/sandbox/chown-tree.js';
import { Store } from '../src/store/index.js';
import { type Section, section } from './lib/report.js';
import { QUICK } from './lib/settings.js';

const FLOOD = QUICK ? 2_000 : 10_000;
const PARALLEL = 64;
const FOLDER_ENTRIES = QUICK ? 5_000 : 40_000;

/** The flooding sandbox: its own process, CONNECTs to a refused address, PARALLEL at a time, each on a new connection. */
const FLOOD_SCRIPT = `
const { connect } = require('node:net');
const [socketPath, total, parallel] = [process.argv[1], Number(process.argv[2]), Number(process.argv[3])];
let sent = 0;
const one = () => new Promise((resolve) => {
  const s = connect(socketPath);
  s.on('data', () => s.end());
  s.on('error', () => {});
  s.on('close', resolve);
  s.write('CONNECT 127.0.0.2:22 HTTP/1.1\\r\\nHost: 127.0.0.2:22\\r\\n\\r\\n');
});
const worker = async () => { while (sent < total) { sent += 1; await one(); } };
Promise.all(Array.from({ length: parallel }, worker)).then(() => process.exit(0));
`;

function timedGet(socketPath: string, port: number): Promise<number> {
  const started = performance.now();
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path: `http://127.0.0.1:${port}/`, agent: false }, (res) => {
      res.resume();
      res.once('end', () => resolve(performance.now() - started));
    });
    req.once('error', reject);
    req.end();
  });
}

export async function egressFloodSection(): Promise<Section> {
  const s = section('egress', 8, `egress flood (${FLOOD.toLocaleString('en-US')} refused CONNECTs) and folder hand-over`);
  const dir = mkdtempSync(join(tmpdir(), 'pincer-bench-egress-'));
  const store = new Store(join(dir, 'pincer.db'));
  const site = createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  const port = (site.address() as AddressInfo).port;
  const proxyFor = (chatId: string, name: string) =>
    startEgressProxy(join(dir, name), {
      policy: () => ({ mode: 'open' }),
      allowAddress: (a) => a === '127.0.0.1',
      onRecord: (r) => store.egress.record({ chatId, ...r, reason: r.reason ?? null, address: r.address ?? null }),
    });
  const flooded = await proxyFor('local:flood', 'flood.sock');
  const other = await proxyFor('local:other', 'other.sock');
  let floodedOpen = true;
  try {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    const started = performance.now();
    const child = spawn(process.execPath, ['-e', FLOOD_SCRIPT, flooded.socketPath, String(FLOOD), String(PARALLEL)], {
      stdio: 'ignore',
      env: { PATH: process.env.PATH ?? '' },
    });
    const done = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    let flooding = true;
    void done.then(() => {
      flooding = false;
    });
    const same: number[] = [];
    const another: number[] = [];
    while (flooding) {
      same.push(await timedGet(flooded.socketPath, port));
      another.push(await timedGet(other.socketPath, port));
      await new Promise((r) => setTimeout(r, 20));
    }
    const floodMs = performance.now() - started;
    delay.disable();
    // Closing records what is still only counted.
    await flooded.close();
    floodedOpen = false;
    const rows = store.db
      .prepare<[], { n: number; total: number }>(
        "SELECT COUNT(*) AS n, SUM(count) AS total FROM egress_log WHERE chat_id = 'local:flood' AND allowed = 0",
      )
      .get();
    s.rows.push(
      { metric: 'request through another group’s proxy during the flood', unit: 'ms', samples: another },
      { metric: 'request through the flooded proxy itself during the flood', unit: 'ms', samples: same },
      { metric: 'host event-loop delay during the flood, max', unit: 'ms', value: delay.max / 1e6 },
      { metric: 'host event-loop delay during the flood, p99', unit: 'ms', value: delay.percentile(99) / 1e6 },
    );
    s.notes.push(
      `${FLOOD.toLocaleString('en-US')} refused CONNECTs (${PARALLEL} at a time, from another process) took ${(floodMs / 1000).toFixed(1)} s ` +
        `(${Math.round(FLOOD / (floodMs / 1000)).toLocaleString('en-US')}/s); the egress log got ${rows?.n ?? 0} rows for them, counting ${rows?.total ?? 0}.`,
    );

    if (process.getuid?.() !== 0) s.notes.push('folder hand-over not measured: only root can give files away');
    else {
      const folder = join(dir, 'group');
      const perDir = 500;
      for (let d = 0; d < FOLDER_ENTRIES / perDir; d++) {
        mkdirSync(join(folder, `d${d}`), { recursive: true });
        for (let f = 0; f < perDir - 1; f++) writeFileSync(join(folder, `d${d}`, `f${f}`), '');
      }
      const t0 = performance.now();
      const result = chownTree(folder, 1_234_567, 1_234_567);
      const ms = performance.now() - t0;
      const entries = result.visited.toLocaleString('en-US');
      s.rows.push({ metric: `hand a ${entries}-entry group folder to a new uid, at spawn (one synchronous call)`, unit: 'ms', value: ms });
      const sliced = monitorEventLoopDelay({ resolution: 1 });
      sliced.enable();
      const t1 = performance.now();
      await chownTreeInSlices(folder, 1_234_568, 1_234_568);
      const slicedMs = performance.now() - t1;
      sliced.disable();
      s.rows.push(
        { metric: 'the same ahead of the start, in slices: total', unit: 'ms', value: slicedMs },
        { metric: '  host event-loop delay meanwhile, max', unit: 'ms', value: sliced.max / 1e6 },
      );
      s.notes.push(
        `hand-over: ${((ms * 1000) / result.visited).toFixed(1)} µs per entry; the bound of ${DEFAULT_CHOWN_LIMITS.maxEntries.toLocaleString('en-US')} entries at spawn is about ${(((ms / result.visited) * DEFAULT_CHOWN_LIMITS.maxEntries) / 1000).toFixed(1)} s of blocking at this rate.`,
      );
    }
  } finally {
    if (floodedOpen) await flooded.close();
    await other.close();
    await new Promise<void>((resolve) => site.close(() => resolve()));
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return s;
}

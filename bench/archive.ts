// 8. The conversation archive of a hostile 64 MB transcript (issue 16, item 5). The agent writes its own
// transcript; on /clear and around every compaction pincer renders it. Each case is a 64 MB transcript (the
// archive's size bound) made to be slow: lines of unclosed <message> or <system-reminder> tags (which the
// old regular expressions rescanned from every opening tag), deeply nested arrays and millions of empty
// objects (JSON.parse amplifiers), one 64 MB line; and an ordinary transcript of the same size for
// comparison. While each archive runs, this process's event loop is watched (monitorEventLoopDelay) and a
// node:http server in this process, standing for pincer's API, is asked GET /healthz every 10 ms.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { Agent, createServer, get } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type HostileLine, writeHostileTranscript } from '../test/helpers/hostile-transcript.js';
import { pincerEntry } from './lib/pincer-child.js';
import { type Section, section } from './lib/report.js';
import { QUICK } from './lib/settings.js';
import { sleep } from './lib/wait.js';

type ArchiveModule = typeof import('../src/service/conversation-archive.js');

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const TARGET_HEALTHZ_MS = 100;
const SESSION = '25aed90d-83fe-4023-a5c0-2e97e90f6905';
const MB = 1024 * 1024;
/** How long the probes run with no archive, for comparison. */
const IDLE_MS = 5_000;

interface Case {
  name: string;
  lineBytes: number;
  kinds: HostileLine[];
}

const CASES: Case[] = [
  { name: "1 MB lines of unclosed `<message>` tags (the attacker's)", lineBytes: MB, kinds: ['unclosed-messages'] },
  { name: '1 MB lines of unclosed `<system-reminder>` notes', lineBytes: MB, kinds: ['unclosed-notes'] },
  {
    name: '1 MB lines: unclosed tags, nested arrays, empty objects in turn',
    lineBytes: MB,
    kinds: ['unclosed-messages', 'nested-arrays', 'unclosed-notes', 'empty-objects'],
  },
  { name: 'one 64 MB line of unclosed `<message>` tags', lineBytes: 64 * MB - 4096, kinds: ['unclosed-messages'] },
];

/** The built module when dist/ is (or can be made) current, as pincer runs it; else the sources under tsx. */
async function archiveModule(): Promise<{ mod: ArchiveModule; note: string }> {
  const entry = await pincerEntry();
  if (entry.kind === 'dist') {
    const mod: ArchiveModule = await import(pathToFileURL(join(ROOT, 'dist', 'service', 'conversation-archive.js')).href);
    return { mod, note: `the archive ran from dist/ (${entry.note}), its worker too` };
  }
  return {
    mod: await import('../src/service/conversation-archive.js'),
    note: `the archive ran from the sources under tsx (${entry.note}): the worker's start includes compiling it`,
  };
}

/** GET /healthz every 10 ms until stopped; each round trip's time. */
function probeHealthz(port: number): { stop(): Promise<number[]> } {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const times: number[] = [];
  let running = true;
  const once = () =>
    new Promise<void>((resolve, reject) => {
      const started = performance.now();
      get({ host: '127.0.0.1', port, path: '/healthz', agent }, (res) => {
        res.resume();
        res.on('end', () => {
          times.push(performance.now() - started);
          resolve();
        });
      }).on('error', reject);
    });
  const loop = (async () => {
    while (running) {
      await once();
      await sleep(10);
    }
  })();
  return {
    async stop() {
      running = false;
      await loop;
      agent.destroy();
      return times;
    },
  };
}

export async function archiveSection(): Promise<Section> {
  const s = section('archive', 8, 'conversation archive of a 64 MB hostile transcript');
  const runs = QUICK ? 1 : 3;
  const { mod, note } = await archiveModule();
  const dir = mkdtempSync(join(tmpdir(), 'pincer-bench-archive-'));
  const server = createServer((_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end('{"ok":true}');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const healthz: number[] = [];
  const loopDelays: number[] = [];
  try {
    // What this machine does to the same probes with no archive running: the floor the figures stand on.
    const idle = monitorEventLoopDelay({ resolution: 10 });
    const idleProbe = probeHealthz(port);
    idle.enable();
    await sleep(IDLE_MS);
    idle.disable();
    const idleHealthz = await idleProbe.stop();
    s.rows.push(
      { metric: `no archive running (${IDLE_MS / 1000} s): worst event-loop delay`, unit: 'ms', value: idle.max / 1e6 },
      { metric: 'no archive running: GET /healthz', unit: 'ms', samples: idleHealthz },
    );
    const projects = join(dir, 'state', '.claude', 'projects', '-workspace-group');
    mkdirSync(projects, { recursive: true });
    const transcript = join(projects, `${SESSION}.jsonl`);
    const fixture = readFileSync(join(ROOT, 'test', 'fixtures', 'claude-code-transcript.jsonl'), 'utf8');
    const cases: Array<{ name: string; write: () => void }> = [
      ...CASES.map((c) => ({
        name: c.name,
        write: () => writeHostileTranscript(transcript, mod.MAX_TRANSCRIPT_BYTES, c.lineBytes, c.kinds),
      })),
      {
        name: 'an ordinary transcript (a real one repeated)',
        write: () => writeFileRepeated(transcript, fixture, mod.MAX_TRANSCRIPT_BYTES),
      },
    ];
    let n = 0;
    for (const c of cases) {
      process.stdout.write(`  ${c.name}…\n`);
      c.write();
      const size = statSync(transcript).size;
      const times: number[] = [];
      for (let i = 0; i < runs; i++) {
        const groupDir = join(dir, `group-${++n}`);
        mkdirSync(groupDir);
        const delay = monitorEventLoopDelay({ resolution: 10 });
        const probe = probeHealthz(port);
        await sleep(50);
        delay.enable();
        const started = performance.now();
        const result = await mod.archiveTranscript({
          groupDir,
          stateDir: join(dir, 'state'),
          transcriptPath: mod.sandboxTranscriptPath(SESSION),
          sessionId: SESSION,
          chatId: 'local:main',
          assistantName: 'Andy',
          timeZone: 'UTC',
          reason: 'the bench sent /clear',
          now: Date.now(),
        });
        times.push(performance.now() - started);
        delay.disable();
        healthz.push(...(await probe.stop()));
        loopDelays.push(delay.max / 1e6);
        if (result.kind === 'failed') throw new Error(`${c.name}: ${result.error}`);
        if (i === 0)
          s.notes.push(
            `${c.name}: ${(size / MB).toFixed(1)} MB → ${result.kind === 'archived' ? `${result.messages} message(s), ${(statSync(join(groupDir, result.file)).size / MB).toFixed(2)} MB of Markdown` : 'nothing to archive'}`,
          );
      }
      s.rows.push({ metric: `archive of ${c.name}`, unit: 'ms', samples: times });
    }
  } finally {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  }
  s.rows.push({ metric: 'worst event-loop delay during an archive (each run)', unit: 'ms', samples: loopDelays });
  s.rows.push({
    metric: 'GET /healthz during the archives (node:http in the same process)',
    unit: 'ms',
    samples: healthz,
    target: { stat: 'max', op: '<=', limit: TARGET_HEALTHZ_MS },
  });
  s.notes.push(
    note,
    `${runs} run(s) of each case; each transcript is about ${mod.MAX_TRANSCRIPT_BYTES / MB} MB, the size bound of an archive (larger ones are refused unread)`,
    `before this change (regular expressions on the main thread), one 1.5 MB line of unclosed \`<message>\` tags held the event loop 4.7 s and one of unclosed \`<system-reminder>\` notes 39.8 s (\`test/conversation-archive.test.ts\` on the old code, this machine); the cost grows with the square of a line's length: by those figures one 64 MB line would have held it about 2.5 hours (\`<message>\`) or 20 hours (\`<system-reminder>\`)`,
    'the event-loop delay is monitorEventLoopDelay at 10 ms resolution: how late a timer ran, the same wait every request of every group would see',
  );
  return s;
}

/** `text` repeated up to `maxBytes` (whole copies only). */
function writeFileRepeated(path: string, text: string, maxBytes: number): void {
  const copy = Buffer.from(text);
  const copies = Math.floor(maxBytes / copy.length);
  const all = Buffer.alloc(copy.length * copies);
  for (let i = 0; i < copies; i++) copy.copy(all, i * copy.length);
  writeFileSync(path, all);
}

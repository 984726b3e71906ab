// pincer's benchmark suite: `npm run bench` (see docs/BENCHMARKS.md, which a full run rewrites).
// Each measurement prints its numbers with its target as it finishes; the summary and the report come at the end.
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import { sandboxUnavailable } from '../test/helpers/harness.js';
import { archiveSection } from './archive.js';
import { egressFloodSection } from './egress-flood.js';
import { ingestSection } from './ingest.js';
import { drift } from './lib/clock.js';
import { type ExchangeRun, runExchanges } from './lib/exchanges.js';
import { describeMachine, loadNow } from './lib/machine.js';
import { renderMarkdown } from './lib/markdown.js';
import { printSection, type Section, section, summaryLine, targetRows, verdict } from './lib/report.js';
import { pincerEnv, QUICK, SIZES, selected } from './lib/settings.js';
import { median } from './lib/stats.js';
import { memorySection } from './memory.js';
import { memoryRecallSection } from './memory-recall.js';
import { modelRequestSection } from './model-request.js';
import { pollingSection } from './polling-baseline.js';
import { replySendSection } from './reply-send.js';
import { schedulerSection } from './scheduler.js';
import { spawnSection } from './spawn.js';
import { toolSurfaceSection } from './tool-surface.js';

// Loading this CA bundle adds ~85 ms to every node start; nothing the suite starts should pay it.
delete process.env.NODE_EXTRA_CA_CERTS;

const REPORT = fileURLToPath(new URL('../docs/BENCHMARKS.md', import.meta.url));

async function main(): Promise<number> {
  const started = performance.now();
  const sections: Section[] = [];
  const add = (s: Section) => {
    printSection(s);
    sections.push(s);
  };
  const measure = async (id: string, item: number, title: string, run: () => Promise<Section> | Section) => {
    if (!selected(id)) return;
    process.stdout.write(`\n-- ${item}. ${title} …\n`);
    try {
      add(await run());
    } catch (err) {
      const s = section(id, item, title);
      s.failed = err instanceof Error ? err.message : String(err);
      add(s);
    }
  };

  const loadAtStart = loadNow();
  process.stdout.write(
    `pincer benchmark suite${QUICK ? ' (BENCH_QUICK: smoke run, few iterations)' : ''}; load average ${loadAtStart.toFixed(2)}\n`,
  );
  if (loadAtStart > cpus().length / 2)
    process.stdout.write(`note: load average ${loadAtStart.toFixed(2)} before the run: other work on this host will skew the figures\n`);
  const sandboxSkip = await sandboxUnavailable();
  let runtime = sandboxSkip ? `none (${sandboxSkip})` : 'bwrap';

  // Items 1–3 read the same messages: cold and warm exchanges through one real pincer each.
  const exchangeItems: Array<[string, number, string, (r: ExchangeRun) => Promise<Section> | Section]> = [
    ['spawn', 1, 'message accepted → sandbox spawned (cold)', spawnSection],
    ['model', 2, 'message → first model request, cold and warm', modelRequestSection],
    ['reply', 3, "model's final text → channel send call", replySendSection],
  ];
  let exchanges: ExchangeRun | undefined;
  if (exchangeItems.some(([id]) => selected(id))) {
    if (sandboxSkip) {
      for (const [id, item, title] of exchangeItems) {
        if (!selected(id)) continue;
        const s = section(id, item, title);
        s.skipped = sandboxSkip;
        add(s);
      }
    } else {
      process.stdout.write('\n-- messages through pincer (items 1–3) …\n');
      try {
        exchanges = await runExchanges();
        runtime = exchanges.runtime;
      } catch (err) {
        const reason = err instanceof Error ? err.message : String(err);
        for (const [id, item, title] of exchangeItems) {
          if (!selected(id)) continue;
          const s = section(id, item, title);
          s.failed = reason;
          add(s);
        }
      }
      const run = exchanges;
      if (run) {
        for (const [id, item, title, read] of exchangeItems) await measure(id, item, title, () => read(run));
        for (const p of run.problems) process.stdout.write(`problem: ${p}\n`);
        const model = sections.find((s) => s.id === 'model');
        for (const p of run.problems) model?.notes.push(`problem during the run: ${p}`);
      }
    }
  }
  await measure('ingest', 4, 'ingest throughput and dispatch', () => ingestSection(sandboxSkip));
  await measure('scheduler', 5, 'scheduler lateness', schedulerSection);
  await measure('memory', 6, 'host memory', () => memorySection(sandboxSkip));
  const warm = exchanges?.samples.filter((x) => x.kind === 'warm').map((x) => x.firstRequestAt - x.sentAt);
  await measure('baseline', 7, 'baseline: 2-second polling', () => pollingSection(warm && median(warm)));
  await measure('egress', 8, 'egress flood and folder hand-over', egressFloodSection);
  await measure('archive', 9, 'conversation archive of a 64 MB hostile transcript', archiveSection);
  await measure('recall', 11, 'recall: keyword and hybrid search over 50,000 messages, 300 planted facts', memoryRecallSection);
  await measure('tools', 10, "what the model is shown: pincer's tools and prompt, per request", () => toolSurfaceSection(sandboxSkip));

  const seconds = (performance.now() - started) / 1000;
  process.stdout.write(`\n== targets (${seconds.toFixed(0)} s)\n`);
  for (const { section: s, row } of targetRows(sections))
    process.stdout.write(`${(verdict(row) ?? '').padEnd(8)} ${s.item}. ${row.metric.trim()}: ${summaryLine(row)}\n`);
  for (const s of sections) {
    if (s.skipped) process.stdout.write(`SKIPPED  ${s.item}. ${s.title}: ${s.skipped}\n`);
    if (s.failed) process.stdout.write(`FAILED   ${s.item}. ${s.title}: ${s.failed}\n`);
  }
  const off = drift();
  if (Math.abs(off) > 2)
    process.stdout.write(`note: the wall clock moved ${off.toFixed(1)} ms against the monotonic clock during the run\n`);

  const partial = (process.env.BENCH_ONLY ?? '') !== '';
  const out = process.env.BENCH_OUT || (QUICK || partial ? undefined : REPORT);
  if (out) {
    const machine = describeMachine(runtime, loadAtStart);
    writeFileSync(out, renderMarkdown(sections, { machine, quick: QUICK, seconds, sizes: SIZES, pincerEnv: pincerEnv() }));
    process.stdout.write(`report written to ${out}\n`);
  } else process.stdout.write(`${QUICK ? 'quick' : 'partial'} run: ${REPORT} left alone (BENCH_OUT=<file> writes a report)\n`);
  return sections.some((s) => s.failed) ? 1 : 0;
}

let code = 1;
try {
  code = await main();
} catch (err) {
  process.stderr.write(`bench failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
}
process.exitCode = code;
// Everything is stopped; should a stray handle still hold the event loop, do not hang.
setTimeout(() => {
  process.stderr.write('note: a handle kept the process alive after the bench; exiting\n');
  process.exit(code);
}, 5_000).unref();

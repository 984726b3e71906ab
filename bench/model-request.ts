// 2. Message → first model request: from the moment the client sends the message (POST) to the moment the
// fake model receives the first request that carries it; cold (no session was live when the previous one
// ended: with prewarming as configured by default, and off) and warm (a follow-up into a live, idle
// session). The breakdown follows the message through its trace (events table).
import type { ExchangeRun, Sample } from './lib/exchanges.js';
import { gap, stageAt, startedAhead } from './lib/exchanges.js';
import { type Row, type Section, section } from './lib/report.js';
import { median } from './lib/stats.js';

/** The issue's targets: a cold message reaches the model in 300 ms (median), a warm follow-up in 100 ms. */
const COLD_MS = 300;
const WARM_MS = 100;

const toModel = (x: Sample) => x.firstRequestAt - x.sentAt;

function breakdown(samples: Sample[], spawned: boolean): Row[] {
  const rows: Row[] = [
    { metric: 'POST sent → 202 received by the client', unit: 'ms', samples: samples.map((x) => x.acceptedAt - x.sentAt) },
    { metric: 'POST sent → stored (received)', unit: 'ms', samples: samples.map((x) => stageAt(x.trace, 'received') - x.sentAt) },
    { metric: 'received → queued (dispatcher woke the queue)', unit: 'ms', samples: samples.map((x) => gap(x, 'received', 'queued')) },
    { metric: 'queued → prompted (lane built the prompt)', unit: 'ms', samples: samples.map((x) => gap(x, 'queued', 'prompted')) },
  ];
  if (spawned) {
    rows.push(
      { metric: 'prompted → spawned', unit: 'ms', samples: samples.map((x) => gap(x, 'prompted', 'spawned')) },
      {
        metric: '  prompted → runtime.spawn() called (proxies up, SDK starting)',
        unit: 'ms',
        samples: samples.map((x) => (x.spawn?.called ?? Number.NaN) - stageAt(x.trace, 'prompted')),
      },
      {
        metric: '  runtime.spawn() itself',
        unit: 'ms',
        samples: samples.map((x) => (x.spawn ? x.spawn.returned - x.spawn.called : Number.NaN)),
      },
      {
        metric: 'spawned → Claude Code first output (sandbox + CLI boot)',
        unit: 'ms',
        samples: samples.map((x) => (x.spawn?.firstStdout ?? Number.NaN) - (x.spawn?.returned ?? Number.NaN)),
      },
      {
        metric: 'first output → model_request at the host proxy (CLI init)',
        unit: 'ms',
        samples: samples.map((x) => stageAt(x.trace, 'model_request') - (x.spawn?.firstStdout ?? Number.NaN)),
      },
      { metric: 'spawned → model_request', unit: 'ms', samples: samples.map((x) => gap(x, 'spawned', 'model_request')) },
    );
  } else {
    rows.push({
      metric: 'prompted → model_request at the host proxy',
      unit: 'ms',
      samples: samples.map((x) => gap(x, 'prompted', 'model_request')),
    });
  }
  rows.push(
    {
      metric: 'model_request (proxy) → fake model received',
      unit: 'ms',
      samples: samples.map((x) => x.firstRequestAt - stageAt(x.trace, 'model_request')),
    },
    { metric: '= POST sent → fake model received', unit: 'ms', samples: samples.map(toModel) },
  );
  return rows;
}

/** One line: the cold path's steps (medians, which need not add up to the total's median exactly). */
function coldSummary(samples: Sample[]): string {
  const m = (f: (x: Sample) => number) => median(samples.map(f)).toFixed(1);
  const steps: Array<[string, (x: Sample) => number]> = [
    ['stored', (x) => stageAt(x.trace, 'received') - x.sentAt],
    ['queued and prompted', (x) => gap(x, 'received', 'prompted')],
    ['sandbox spawned', (x) => gap(x, 'prompted', 'spawned')],
    ['sandbox + Claude Code boot', (x) => (x.spawn?.firstStdout ?? Number.NaN) - (x.spawn?.returned ?? Number.NaN)],
    ['Claude Code init to its model request', (x) => stageAt(x.trace, 'model_request') - (x.spawn?.firstStdout ?? Number.NaN)],
    ['proxy to model', (x) => x.firstRequestAt - stageAt(x.trace, 'model_request')],
  ];
  return `${steps.map(([label, f]) => `${label} ${m(f)}`).join(', ')}; total ${m(toModel)} ms`;
}

export function modelRequestSection(run: ExchangeRun): Section {
  const s = section('model', 2, 'message → first model request, cold and warm');
  const prewarmed = run.samples.filter((x) => x.kind === 'prewarmed');
  const resumed = run.samples.filter((x) => x.kind === 'resumed');
  const first = run.samples.filter((x) => x.kind === 'first');
  const typed = run.samples.filter((x) => x.kind === 'typed');
  const warm = run.samples.filter((x) => x.kind === 'warm');
  s.rows.push(
    {
      metric: 'cold, known group (session ended), as configured by default (prewarming on)',
      unit: 'ms',
      samples: prewarmed.map(toModel),
      target: { stat: 'median', op: '<=', limit: COLD_MS },
    },
    { metric: 'cold, known group (session ended), prewarming off', unit: 'ms', samples: resumed.map(toModel) },
    {
      metric: 'cold, first message of a new chat',
      unit: 'ms',
      samples: first.map(toModel),
      target: { stat: 'median', op: '<=', limit: COLD_MS },
    },
    {
      metric: 'cold, first message of a new chat typed in the web page or pincer chat (typing hint first)',
      unit: 'ms',
      samples: typed.map(toModel),
      target: { stat: 'median', op: '<=', limit: COLD_MS },
    },
    {
      metric: 'warm, follow-up into a live session',
      unit: 'ms',
      samples: warm.map(toModel),
      target: { stat: 'median', op: '<=', limit: WARM_MS },
    },
  );
  const ahead = prewarmed.filter(startedAhead);
  s.tables.push(
    { title: 'where the time goes, cold, known group, agent started ahead', rows: breakdown(ahead, false) },
    { title: 'where the time goes, cold, known group, prewarming off', rows: breakdown(resumed, true) },
    { title: 'where the time goes, cold, new chat', rows: breakdown(first, true) },
    { title: 'where the time goes, cold, new chat after a typing hint', rows: breakdown(typed.filter(startedAhead), false) },
    { title: 'where the time goes, warm', rows: breakdown(warm, false) },
  );
  if (prewarmed.length > 0) {
    const lead = median(ahead.map((x) => x.sentAt - (x.spawn?.called ?? Number.NaN)));
    s.notes.push(
      `cold, known group, prewarming on: ${ahead.length} of ${prewarmed.length} messages found their agent started ahead (median ${(lead / 1000).toFixed(1)} s before the message)`,
    );
  }
  if (resumed.length > 0) s.notes.push(`cold, known group, prewarming off, medians of each step: ${coldSummary(resumed)}`);
  if (first.length > 0) s.notes.push(`cold, new chat, medians of each step: ${coldSummary(first)}`);
  if (typed.length > 0)
    s.notes.push(
      `cold, new chat after a typing hint: ${typed.filter(startedAhead).length} of ${typed.length} messages found their agent started ahead (the hint joins the chat and starts it)`,
    );
  const side = run.samples.reduce((n, x) => n + x.sideRequests, 0);
  const agent = run.samples.reduce((n, x) => n + x.agentRequests, 0);
  s.notes.push(`model requests carrying the timed messages: ${agent} agent-loop, ${side} side requests`);
  s.notes.push(
    'a cold message is sent once the sandbox that served the previous one has exited and a settle pause has passed; n/a in a breakdown: the stage did not happen for that message (e.g. no sandbox was started for it)',
  );
  return s;
}

// docs/BENCHMARKS.md, written from one run's sections.
import { type Machine, machineLines } from './machine.js';
import { describeTarget, fmt, markdownTable, type Section, statOf, targetRows, verdict } from './report.js';

export interface RunInfo {
  machine: Machine;
  quick: boolean;
  seconds: number;
  sizes: Record<string, number>;
  /** BENCH_PINCER_ENV, if set. */
  pincerEnv: Record<string, string>;
}

const HOW_TO_RUN = `\`\`\`sh
npm run bench                                   # the whole suite (a few minutes); rewrites this file
BENCH_QUICK=1 npm run bench                     # smoke run with few iterations; leaves this file alone
BENCH_ONLY=ingest,scheduler npm run bench       # some measurements (ids: spawn, model, reply, ingest, scheduler, memory, baseline, archive)
BENCH_PINCER_ENV="NAME=value …" npm run bench   # every pincer under test gets this configuration (e.g. a feature switch)
BENCH_OUT=/tmp/bench.md npm run bench           # write the report elsewhere (also for quick or partial runs)
\`\`\`

Sizes can be changed one by one: \`BENCH_N\` (cold/warm/Telegram messages), \`BENCH_N_FIRST\`, \`BENCH_SETTLE_MS\`,
\`BENCH_GROUPS\`, \`BENCH_INGEST\`, \`BENCH_HTTP\`, \`BENCH_HTTP_CONCURRENCY\`, \`BENCH_TASKS\`, \`BENCH_SPREAD_SEC\`,
\`BENCH_SESSIONS\`, \`BENCH_BASELINE_N\`. Measurements that need bubblewrap (1, 2, 3 and the live sessions of 6) are
skipped, with the reason printed, on a host without it. The suite unsets \`NODE_EXTRA_CA_CERTS\` for every process it
starts (it adds ~85 ms to each node start on some machines).`;

const METHOD = `- **The model** is the scripted fake of the Messages API (\`test/helpers/fake-model.ts\`) on loopback: it answers
  every agent request at once with \`ok\`. Everything else is real: the store, the queue, the Claude Agent SDK, Claude
  Code itself in a bubblewrap sandbox behind pincer's model proxy, grammY for Telegram against the fake Bot API.
- **Items 1–3 and 7** run pincer inside the suite's process (\`test/helpers/harness.ts\`, sources under tsx): the suite
  reads the store's events directly and times \`runtime.spawn()\` by wrapping the runtime object's method (pincer's
  code is not changed). **Items 4 (HTTP) and 6** run \`pincer start\` as a child process from the built \`dist/\`.
  **Item 8** runs pincer's archive (and its worker thread) from the built \`dist/\` in the suite's process, beside
  a \`node:http\` server answering \`GET /healthz\`: both on the one event loop, as in pincer.
- **One clock.** Every time is on the \`Date.now()\` scale: the events table's \`at\` (whole milliseconds), the Telegram
  fake's and the scheduler's readings; \`performance.now()\` readings (the fake model's \`receivedAt\`, the end of its
  answer, the suite's own) are converted with one offset measured at start. Gaps against an event are exact to ±1 ms.
- **Cold** means no live session for the group: the previous one ended on its idle timeout (1 s here) and a settle
  pause passed before the message, so anything pincer prepares in the background has had its chance. *Known group*
  resumes the group's conversation; *new chat* is a chat's first message (joined on the spot). **Warm** is a
  follow-up into a live session, 300 ms after its previous reply.
- **Targets** name the statistic they are judged on (median, p95, or the single figure).`;

function summary(sections: Section[]): string {
  const rows = targetRows(sections).map(({ section, row }) => {
    const t = row.target;
    const v = verdict(row);
    const value = t ? fmt(statOf(row, t.stat), row.unit) : '';
    return `| ${section.item} | ${row.metric.trim()} | ${t ? describeTarget(t, row.unit) : ''} | ${value} | **${v}** |`;
  });
  const missing = sections
    .filter((s) => s.skipped || s.failed)
    .map(
      (s) =>
        `| ${s.item} | ${s.title} | | | **${s.skipped ? 'SKIPPED' : 'FAILED'}**: ${(s.skipped ?? s.failed ?? '').replace(/\|/g, '\\|')} |`,
    );
  return ['| # | measurement | target | result | |', '|---|---|---|---:|---|', ...rows, ...missing].join('\n');
}

function sectionText(s: Section): string {
  const out = [`## ${s.item}. ${s.title}`, ''];
  if (s.skipped) out.push(`**Skipped:** ${s.skipped}`, '');
  if (s.failed) out.push(`**Failed:** ${s.failed}`, '');
  if (s.rows.length > 0) out.push(markdownTable(s.rows), '');
  for (const t of s.tables)
    if (t.rows.length > 0) out.push(`${t.title[0]?.toUpperCase()}${t.title.slice(1)}:`, '', markdownTable(t.rows), '');
  for (const n of s.notes) out.push(`- ${n}`);
  if (s.notes.length > 0) out.push('');
  return out.join('\n');
}

export function renderMarkdown(sections: Section[], info: RunInfo): string {
  const machine = machineLines(info.machine)
    .map(([k, v]) => `| ${k} | ${v} |`)
    .join('\n');
  const env = Object.entries(info.pincerEnv);
  return [
    '# Benchmarks',
    '',
    `Written by \`npm run bench\` (\`bench/run.ts\`) on ${info.machine.date.slice(0, 10)}, a ${info.quick ? 'quick (smoke)' : 'full'} run of ${Math.round(info.seconds)} s. ` +
      'The numbers are of this one machine; run the suite again to get yours.',
    ...(env.length > 0 ? ['', `Every pincer under test had \`${env.map(([k, v]) => `${k}=${v}`).join(' ')}\`.`] : []),
    '',
    '## Machine',
    '',
    '| | |',
    '|---|---|',
    machine,
    '',
    '## Targets',
    '',
    summary(sections),
    '',
    ...sections.map(sectionText),
    '## How the numbers are taken',
    '',
    METHOD,
    '',
    `Sizes of this run: ${Object.entries(info.sizes)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')}.`,
    '',
    '## How to run',
    '',
    HOW_TO_RUN,
    '',
  ].join('\n');
}

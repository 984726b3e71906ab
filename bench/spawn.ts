// 1. Message accepted → sandbox spawned: from the `received` event (the message is stored) to the `spawned`
// event (runtime.spawn() returned the sandboxed Claude Code process), for cold messages that start one:
// a known group with prewarming off, and a new chat.
import type { ExchangeRun, Sample } from './lib/exchanges.js';
import { gap, startedAhead } from './lib/exchanges.js';
import { type Section, section } from './lib/report.js';

export function spawnSection(run: ExchangeRun): Section {
  const s = section('spawn', 1, 'message accepted → sandbox spawned (cold)');
  const resumed = run.samples.filter((x) => x.kind === 'resumed');
  const first = run.samples.filter((x) => x.kind === 'first');
  const cold = [...resumed, ...first];
  const prewarmed = run.samples.filter((x) => x.kind === 'prewarmed');
  const launch = (x: Sample) => (x.spawn ? x.spawn.returned - x.spawn.called : Number.NaN);
  s.rows.push(
    {
      metric: 'known group, session ended, prewarming off: received → spawned',
      unit: 'ms',
      samples: resumed.map((x) => gap(x, 'received', 'spawned')),
    },
    { metric: 'new chat: received → spawned', unit: 'ms', samples: first.map((x) => gap(x, 'received', 'spawned')) },
    { metric: 'runtime.spawn() call itself (bwrap launch)', unit: 'ms', samples: cold.map(launch) },
  );
  const ahead = cold.filter(startedAhead).length;
  const warmed = prewarmed.filter(startedAhead).length;
  if (prewarmed.length > 0)
    s.notes.push(
      `known group with prewarming on: ${warmed} of ${prewarmed.length} messages were served by an agent started before they were sent (no spawn on their path)`,
    );
  const none = cold.filter((x) => !x.spawn).length;
  if (ahead > 0) s.notes.push(`${ahead} of ${cold.length} cold messages were served by a sandbox started before they were sent`);
  if (none > 0)
    s.notes.push(`${none} of ${cold.length} cold messages started no sandbox between the previous session's end and their model request`);
  s.notes.push('events are whole milliseconds (Date.now()); n/a: the trace of the message has no `spawned` stage');
  return s;
}

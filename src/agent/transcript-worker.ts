// Worker thread: reads one agent-written transcript (bounded, no links) and renders it, so that however big
// or hostile it is, it costs this thread's time and never pincer's event loop. Started per archive by
// render-transcript-file.ts, which validates what comes back.
import { parentPort, workerData } from 'node:worker_threads';
import { readFileInside, SafeFsError } from '../sandbox/safe-fs.js';
import { type RenderJob, RenderJobSchema, type RenderOutcome } from './render-transcript-file.js';
import { renderTranscript } from './transcript-markdown.js';

async function render(job: RenderJob): Promise<RenderOutcome> {
  let bytes: Buffer;
  try {
    bytes = await readFileInside(job.stateDir, job.relativePath, job.maxBytes);
  } catch (err) {
    if (err instanceof SafeFsError && err.code === 'missing') return { kind: 'missing' };
    const reason = err instanceof SafeFsError ? err.reason : err instanceof Error ? err.message : String(err);
    return { kind: 'unreadable', reason };
  }
  return { kind: 'rendered', transcript: renderTranscript(bytes, job) };
}

const job = RenderJobSchema.parse(workerData);
parentPort?.postMessage(await render(job));

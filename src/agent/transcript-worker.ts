// Worker thread: reads one agent-written transcript (bounded, no links) and renders it, so that however big
// or hostile it is, it costs this thread's time and never pincer's event loop. Started per archive by
// render-transcript-file.ts, which validates what comes back.
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { readFileInside, SafeFsError } from '../sandbox/safe-fs.js';
import { type RenderJob, RenderJobSchema, type RenderOutcome } from './render-transcript-file.js';
import { renderTranscript } from './transcript-markdown.js';

/** About a tenth of the main thread's share of a busy CPU (Linux's weights: 1024 at nice 0, 110 at nice 10). */
const WORKER_NICE = 10;

async function render(job: RenderJob): Promise<RenderOutcome> {
  let bytes: Buffer;
  try {
    bytes = await readFileInside(job.stateDir, job.relativePath, job.maxBytes);
  } catch (err) {
    if (err instanceof SafeFsError && err.code === 'missing') return { kind: 'missing' };
    const reason = err instanceof SafeFsError ? err.reason : err instanceof Error ? err.message : String(err);
    return { kind: 'unreadable', reason };
  }
  yieldToMainThread();
  const transcript = renderTranscript(bytes, job);
  // TextEncoder's array has a buffer of its own, so handing it over detaches nothing else.
  return { kind: 'rendered', transcript: { ...transcript, body: new TextEncoder().encode(transcript.body) } };
}

/**
 * The archive is background work: on a busy machine the main thread (every group, the API) goes first. Not
 * the lowest priority, though: a compaction waits for this, and on a saturated machine nice 19 would starve it.
 * On Linux a nice value is per thread, so this lowers this worker only; elsewhere it would lower all of pincer.
 * Done after the read, so that libuv's thread pool, should this read have started it, keeps pincer's priority.
 */
function yieldToMainThread(): void {
  if (process.platform !== 'linux') return;
  try {
    setPriority(WORKER_NICE);
  } catch {
    // Not allowed here (a seccomp policy): the worker still runs, at pincer's priority.
  }
}

const job = RenderJobSchema.parse(workerData);
const outcome = await render(job);
parentPort?.postMessage(outcome, outcome.kind === 'rendered' ? [outcome.transcript.body.buffer] : []);

// Renders a transcript file in a worker thread (transcript-worker.ts): reading and parsing up to 64 MB the
// agent wrote takes seconds of CPU, which on the main thread would stall every group and the API. The
// worker is bounded in time and heap, and only a few run at once.
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';
import { z } from 'zod';
import type { RenderedTranscript } from './transcript-markdown.js';

/**
 * A worker still running after this is stopped. The rendering is linear, about a second of CPU for 64 MB;
 * this leaves room for a busy machine, within the 120 s Claude Code gives the PreCompact hook (session.ts).
 */
export const RENDER_TIMEOUT_MS = 90_000;
/** The worker's JavaScript heap: the file itself is outside it (a Buffer), lines are parsed one at a time. */
const WORKER_HEAP_MB = 512;
/** Workers rendering at once; further archives wait their turn. */
const MAX_WORKERS = 2;

export const RenderJobSchema = z.object({
  /** The folder the path is relative to (the sandbox's home on the host). */
  stateDir: z.string(),
  relativePath: z.string(),
  maxBytes: z.number().int().nonnegative(),
  assistantName: z.string(),
  timeZone: z.string(),
});
export type RenderJob = z.infer<typeof RenderJobSchema>;

/** What the worker sends: the body as UTF-8 bytes, handed over without a copy (an 8 MB string would be copied and encoded on the main thread). */
export type RenderedTranscriptBytes = Omit<RenderedTranscript, 'body'> & { body: Uint8Array };

const RenderedSchema = z.object({
  body: z.instanceof(Uint8Array),
  messages: z.number(),
  skippedLines: z.number(),
  oversizedLines: z.number(),
  unreadLines: z.number(),
  leftOutMessages: z.number(),
  from: z.number().nullable(),
  to: z.number().nullable(),
}) satisfies z.ZodType<RenderedTranscriptBytes>;

const OutcomeSchema = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('rendered'), transcript: RenderedSchema }),
  z.object({ kind: z.literal('missing') }),
  /** The file was refused (a link, too big, not a regular file) or could not be read. */
  z.object({ kind: z.literal('unreadable'), reason: z.string() }),
]);
export type RenderOutcome = z.infer<typeof OutcomeSchema>;
/** What the caller gets: the worker's outcome, or why the worker gave none. */
export type RenderResult = RenderOutcome | { kind: 'failed'; reason: string };

// The worker is this module's sibling: .ts when run from the sources (tests, the bench, under tsx), .js once built.
const EXTENSION = extname(fileURLToPath(import.meta.url));
const WORKER_URL = new URL(`./transcript-worker${EXTENSION}`, import.meta.url);

function startWorker(options: WorkerOptions): Worker {
  if (EXTENSION !== '.ts') return new Worker(WORKER_URL, options);
  // tsx's loader does not reach into a worker by itself: register it there before loading the TypeScript.
  const tsx = JSON.stringify(import.meta.resolve('tsx/esm/api'));
  const shim = `import(${tsx}).then(({ register }) => { register(); return import(${JSON.stringify(WORKER_URL.href)}); })`;
  return new Worker(shim, { ...options, eval: true });
}

let running = 0;
const waiting: Array<() => void> = [];

export async function renderTranscriptFile(job: RenderJob): Promise<RenderResult> {
  if (running < MAX_WORKERS) running++;
  else await new Promise<void>((resolve) => waiting.push(resolve));
  try {
    return await runWorker(job);
  } finally {
    // The slot passes straight to the next waiting archive, if any.
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

function runWorker(job: RenderJob): Promise<RenderResult> {
  return new Promise((resolve) => {
    const worker = startWorker({
      workerData: job,
      resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
    });
    let settled = false;
    const settle = (result: RenderResult) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(result);
      void worker.terminate();
    };
    const timer = setTimeout(
      () => settle({ kind: 'failed', reason: `rendering took over ${RENDER_TIMEOUT_MS / 1000} s and was stopped` }),
      RENDER_TIMEOUT_MS,
    );
    worker.on('message', (message: unknown) => {
      const parsed = OutcomeSchema.safeParse(message);
      settle(
        parsed.success ? parsed.data : { kind: 'failed', reason: `the render worker sent something unexpected: ${parsed.error.message}` },
      );
    });
    worker.on('error', (err) => settle({ kind: 'failed', reason: `the render worker failed: ${err.message}` }));
    worker.on('exit', (code) => settle({ kind: 'failed', reason: `the render worker exited (code ${code}) without a result` }));
  });
}

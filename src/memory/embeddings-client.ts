// Text to vectors through an OpenAI-compatible `/embeddings` endpoint (OpenAI, Ollama, Voyage, LiteLLM …),
// called by the host only: the key is a host secret and never appears in an error. Vectors come back scaled to
// length 1, so that a dot product is their cosine.
import { z } from 'zod';
import { readBounded } from '../channels/bounded-body.js';
import type { EmbeddingsConfig } from '../config.js';
import { oneLine, unreachableReason } from '../remote-reason.js';

/** Texts per request: small enough for every provider's limit (OpenAI takes 2,048, Voyage 128). */
export const EMBED_BATCH = 32;
/** Characters of one text embedded: a long message is represented by its start (≈2,000 tokens). */
export const EMBED_TEXT_CHARS = 8000;
const TIMEOUT_MS = 30_000;
/** 32 vectors of 3,072 floats as JSON are ≈2 MB. */
const MAX_ANSWER_BYTES = 16 * 1024 * 1024;
const MAX_DIMENSIONS = 8192;

const answerSchema = z.object({
  data: z.array(z.object({ index: z.number().int().min(0), embedding: z.array(z.number()).min(1).max(MAX_DIMENSIONS) })),
});
const errorSchema = z.object({ error: z.union([z.string(), z.object({ message: z.string() })]) });

export class EmbeddingsError extends Error {}

/** `<base>/embeddings`; a URL that already ends so is taken as is. */
export function embeddingsEndpoint(base: string): string {
  const trimmed = base.replace(/\/+$/, '');
  return trimmed.endsWith('/embeddings') ? trimmed : `${trimmed}/embeddings`;
}

export class EmbeddingsClient {
  readonly model: string;
  readonly endpoint: string;
  readonly #key: string | undefined;

  constructor(config: EmbeddingsConfig) {
    this.model = config.model;
    this.endpoint = embeddingsEndpoint(config.url);
    this.#key = config.key;
  }

  /** One vector per text, in order, each of length 1; throws EmbeddingsError with a reason fit to show. */
  async embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    try {
      return await this.#embed(texts, signal);
    } catch (err) {
      const reason =
        err instanceof EmbeddingsError ? err.message : `embedding failed: ${oneLine(err instanceof Error ? err.message : String(err))}`;
      // Whatever a service echoes back, a reason never carries the key.
      throw new EmbeddingsError(this.#key ? reason.split(this.#key).join('<key>') : reason);
    }
  }

  async #embed(texts: string[], signal?: AbortSignal): Promise<Float32Array[]> {
    if (texts.length === 0) return [];
    const timeout = AbortSignal.timeout(TIMEOUT_MS);
    let res: Response;
    try {
      res = await fetch(this.endpoint, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          accept: 'application/json',
          ...(this.#key ? { authorization: `Bearer ${this.#key}` } : {}),
        },
        body: JSON.stringify({ model: this.model, input: texts.map((t) => t.slice(0, EMBED_TEXT_CHARS)), encoding_format: 'float' }),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
        redirect: 'error',
      });
    } catch (err) {
      throw new EmbeddingsError(unreachableReason('the embeddings service', err, TIMEOUT_MS));
    }
    let body: Buffer | undefined;
    try {
      body = await readBounded(res, res.ok ? MAX_ANSWER_BYTES : 64 * 1024);
    } catch (err) {
      throw new EmbeddingsError(unreachableReason('the embeddings service', err, TIMEOUT_MS));
    }
    if (!res.ok) throw new EmbeddingsError(statusReason(res.status, body));
    if (body === undefined)
      throw new EmbeddingsError(`the embeddings service's answer was larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MB`);
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      throw new EmbeddingsError('the embeddings service answered with something that is not JSON');
    }
    const answer = answerSchema.safeParse(json);
    if (!answer.success) throw new EmbeddingsError('the embeddings service answered without a list of embeddings ("data")');
    const vectors: Array<Float32Array | undefined> = new Array(texts.length);
    for (const item of answer.data.data) if (item.index < texts.length) vectors[item.index] = unit(item.embedding);
    const dims = vectors[0]?.length;
    if (vectors.some((v) => v === undefined || v.length !== dims))
      throw new EmbeddingsError(
        `the embeddings service answered ${answer.data.data.length} vectors of mixed or missing sizes for ${texts.length} texts`,
      );
    return vectors as Float32Array[];
  }
}

/** A vector scaled to length 1 (a zero vector stays zero: it matches nothing). */
function unit(values: number[]): Float32Array {
  const v = Float32Array.from(values);
  let norm = 0;
  for (const x of v) norm += x * x;
  norm = Math.sqrt(norm);
  if (norm > 0 && Number.isFinite(norm)) for (let i = 0; i < v.length; i++) v[i] = (v[i] as number) / norm;
  return v;
}

function statusReason(status: number, body: Buffer | undefined): string {
  if (status === 401 || status === 403) return `the embeddings service answered ${status}: check PINCER_EMBEDDINGS_KEY`;
  let said = '';
  try {
    const parsed = errorSchema.safeParse(JSON.parse(body?.toString('utf8') ?? ''));
    if (parsed.success) said = `: ${oneLine(typeof parsed.data.error === 'string' ? parsed.data.error : parsed.data.error.message)}`;
  } catch {
    // Not JSON: the status says enough.
  }
  const hint = status === 404 ? ' (check PINCER_EMBEDDINGS_URL and PINCER_EMBEDDINGS_MODEL)' : '';
  return `the embeddings service answered ${status}${hint}${said}`;
}

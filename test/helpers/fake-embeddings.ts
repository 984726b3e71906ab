// A fake of an OpenAI-compatible embeddings API (POST /v1/embeddings, as OpenAI documents it: `model`, `input` as
// a list of strings, an answer of `data: [{ index, embedding }]`), embedding with the concept embedder. It takes
// only its own bearer key, records every request, and can be told to fail.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { conceptEmbedding } from './concept-embedder.js';

export interface EmbeddingsRequest {
  authorization: string | undefined;
  model: string;
  input: string[];
  /** What the fake answered. */
  status: number;
}

export interface FakeEmbeddings {
  /** Base URL, as PINCER_EMBEDDINGS_URL takes it (…/v1). */
  url: string;
  key: string;
  requests: EmbeddingsRequest[];
  /** Every text embedded so far (answered with a vector), in order. */
  inputs(): string[];
  /** Answer the next `n` requests with this status. */
  failNext(n: number, status?: number): void;
  close(): Promise<void>;
}

async function body(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export async function startFakeEmbeddings(key = 'emb-test-key-1234'): Promise<FakeEmbeddings> {
  const requests: EmbeddingsRequest[] = [];
  let failing = 0;
  let failStatus = 503;
  const server = createServer(async (req, res) => {
    const text = await body(req);
    const answer = (status: number, json: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(json));
    };
    if (req.method !== 'POST' || req.url !== '/v1/embeddings') return answer(404, { error: { message: `no route ${req.url}` } });
    let parsed: { model?: unknown; input?: unknown };
    try {
      parsed = JSON.parse(text) as { model?: unknown; input?: unknown };
    } catch {
      return answer(400, { error: { message: 'not JSON' } });
    }
    const input = Array.isArray(parsed.input) ? parsed.input.map(String) : [String(parsed.input)];
    const request: EmbeddingsRequest = { authorization: req.headers.authorization, model: String(parsed.model), input, status: 200 };
    requests.push(request);
    if (req.headers.authorization !== `Bearer ${key}`) {
      request.status = 401;
      return answer(401, { error: { message: `Incorrect API key provided: ${req.headers.authorization ?? 'none'}` } });
    }
    if (failing > 0) {
      failing--;
      request.status = failStatus;
      return answer(failStatus, { error: { message: 'overloaded, try later' } });
    }
    answer(200, {
      object: 'list',
      model: parsed.model,
      data: input.map((t, index) => ({ object: 'embedding', index, embedding: conceptEmbedding(t) })),
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    key,
    requests,
    inputs: () => requests.filter((r) => r.status === 200).flatMap((r) => r.input),
    failNext(n, status = 503) {
      failing = n;
      failStatus = status;
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// The host side of the sandbox's only way to the model: a Unix-socket HTTP server that forwards only the
// calls Claude Code makes, swaps the sandbox's placeholder credential for the real one, streams the exchange
// through unbuffered, and meters each answer's usage for the group's budget.

import { rmSync } from 'node:fs';
import {
  type ClientRequest,
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ModelCredential } from '../config.js';
import { type MeteredCall, usageReader } from './model-metering.js';
import { type ModelPin, screenModelRequest } from './model-request.js';
import { listenUnix } from './unix-listen.js';

/** The group's spend, as the proxy sees it: asked before each call goes out, told what each answer used. */
export interface ModelMeter {
  /** Whether a call may go out now; a refusal's message is what Claude Code is answered. */
  admit(): { ok: true } | { ok: false; message: string };
  record(call: MeteredCall): void;
}

/** A request the proxy answered itself, without forwarding it. */
export interface ProxyRefusal {
  method: string;
  path: string;
  reason: string;
}

export interface ModelProxyOptions {
  /** Base URL of the group's provider, e.g. https://api.anthropic.com: the only endpoint this proxy reaches. */
  upstream: string;
  /** That provider's credential; no other provider's is ever given to this proxy. */
  credential: ModelCredential;
  /** Without one nothing is metered or refused for budget (pincer doctor's one-token check). */
  meter?: ModelMeter;
  /** Called as each request is forwarded, with the model it asks for (null when it names none). */
  onRequest?: (path: string, model: string | null) => void;
  onRefused?: (refusal: ProxyRefusal) => void;
  /** The model the group runs on: calls naming a dearer one are sent to it (see ModelPin). */
  pin?: ModelPin;
  /** Whether the endpoint may search the web for this sandbox (not when its egress policy lets nothing out). */
  webSearchAllowed?: () => boolean;
  /** What was taken out of a call the endpoint must not do for this sandbox (see model-request.ts). */
  onScreened?: (removed: string[]) => void;
  /** A successful model answer whose usage could not be read: its cost is not counted. */
  onUnmetered?: (why: string) => void;
  onError?: (err: Error) => void;
}

export interface ModelProxy {
  socketPath: string;
  close(): Promise<void>;
}

/** Headers that describe this hop or carry the sandbox's (placeholder) credential: never forwarded. */
const DROPPED = new Set([
  'host',
  'connection',
  'keep-alive',
  'proxy-authorization',
  'proxy-connection',
  'transfer-encoding',
  'upgrade',
  'x-api-key',
  'authorization',
  'accept-encoding',
  // The body goes on as pincer parsed and wrote it: plain JSON of its own length.
  'content-encoding',
  'content-length',
]);

export function forwardHeaders(incoming: IncomingMessage['headers'], credential: ModelCredential): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) if (v !== undefined && !DROPPED.has(k)) out[k] = v;
  // Uncompressed, so that the usage in the answer can be read on its way through.
  out['accept-encoding'] = 'identity';
  // Only the header of this proxy's own provider: a sandbox's proxy knows one credential and no other.
  if (credential.kind === 'api-key') out['x-api-key'] = credential.value;
  else if (credential.kind !== 'none') out.authorization = `Bearer ${credential.value}`;
  return out;
}

/**
 * The calls Claude Code makes, as it spells them (its own gateway lists exactly these two paths): a model
 * call is metered, a token count is free. Anything else (files, batches, admin keys, any other spelling)
 * is refused, so the real credential goes with nothing else.
 */
const CALLS: ReadonlyMap<string, 'message' | 'count'> = new Map([
  ['/v1/messages', 'message'],
  ['/v1/messages?beta=true', 'message'],
  ['/v1/messages/count_tokens', 'count'],
  ['/v1/messages/count_tokens?beta=true', 'count'],
]);

/** Which allowed call a request is, compared as sent (no decoding, no normalizing); undefined: refused. */
export function allowedCall(method: string | undefined, url: string): 'message' | 'count' | undefined {
  return method === 'POST' ? CALLS.get(url) : undefined;
}

/** The meter's answer; a meter that fails refuses (a budget that cannot be read is not a budget that allows). */
function admit(options: ModelProxyOptions): { ok: true } | { ok: false; message: string } {
  try {
    return options.meter?.admit() ?? { ok: true };
  } catch (err) {
    options.onError?.(new Error(`checking the budget failed: ${err instanceof Error ? err.message : String(err)}`));
    return { ok: false, message: 'pincer: the budget could not be checked; no model call goes out' };
  }
}

/** Model calls one sandbox may have going at once, and waiting for their turn beyond those. */
const MAX_CALLS_IN_FLIGHT = 8;
const MAX_CALLS_WAITING = 64;
/** Claude Code's largest calls (a full context window of text and images) are a few MB. */
const MAX_REQUEST_BYTES = 32 * 1024 * 1024;
/** How long the answer to a call the agent abandoned is still read, to meter it. */
const ABANDONED_ANSWER_MS = 10 * 60_000;

function answerError(res: ServerResponse, status: number, type: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ type: 'error', error: { type, message } }));
}

export async function startModelProxy(socketPath: string, options: ModelProxyOptions): Promise<ModelProxy> {
  const base = new URL(options.upstream);
  const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
  const basePath = base.pathname.replace(/\/$/, '');

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/';
    const method = req.method ?? '';
    const call = allowedCall(method, path);
    if (!call) {
      req.resume();
      options.onRefused?.({ method, path, reason: 'not a call Claude Code makes' });
      answerError(res, 403, 'permission_error', 'pincer model proxy forwards only POST /v1/messages and /v1/messages/count_tokens');
      return;
    }
    // Spend is known only once an answer ends: calls in flight are capped, so that a burst of parallel calls
    // admitted just under a budget overruns it by a few calls at most. The rest wait their turn (bounded).
    if (waiting.length >= MAX_CALLS_WAITING) {
      req.resume();
      options.onRefused?.({ method, path, reason: 'too many model calls at once' });
      answerError(res, 429, 'rate_limit_error', `pincer: more than ${MAX_CALLS_IN_FLIGHT + MAX_CALLS_WAITING} model calls at once`);
      return;
    }
    const go = (): void => {
      if (res.destroyed) {
        next();
        return;
      }
      const admission = admit(options);
      if (!admission.ok) {
        req.resume();
        options.onRefused?.({ method, path, reason: admission.message });
        // 402: Claude Code does not retry it (it retries 400, 429 and 5xx) and ends the turn with the message.
        answerError(res, 402, 'billing_error', admission.message);
        next();
        return;
      }
      inFlight++;
      screenAndForward(req, res, path, method, call, () => {
        inFlight--;
        next();
      });
    };
    if (inFlight < MAX_CALLS_IN_FLIGHT) go();
    else waiting.push(go);
  };

  /** Answers read on after their agent left; ended when the proxy closes (pincer stops or the session ends). */
  const abandoned = new Set<ClientRequest>();
  let closing = false;
  let inFlight = 0;
  const waiting: Array<() => void> = [];
  const next = (): void => {
    if (inFlight < MAX_CALLS_IN_FLIGHT) waiting.shift()?.();
  };

  const forward = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    method: string,
    call: 'message' | 'count',
    body: Buffer,
    model: string | null,
    done: () => void,
  ): void => {
    options.onRequest?.(path, model);
    let agentGone = false;
    let bodySent = false;
    let answer: IncomingMessage | undefined;
    const upstreamReq = send(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port || undefined,
        method,
        path: basePath + path,
        headers: { ...forwardHeaders(req.headers, options.credential), host: base.host, 'content-length': String(body.length) },
      },
      (upstreamRes) => {
        answer = upstreamRes;
        if (call === 'message') meterAnswer(upstreamRes, options);
        if (agentGone) {
          upstreamRes.resume();
          return;
        }
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        // A stream the endpoint cuts midway is cut here too: pipe() alone would leave the agent waiting forever.
        upstreamRes.on('error', (err) => {
          if (!agentGone) options.onError?.(err);
          res.destroy(err);
        });
        upstreamRes.pipe(res);
      },
    );
    let upstreamClosed = false;
    upstreamReq.once('close', () => {
      upstreamClosed = true;
      done();
    });
    res.on('close', () => {
      // Over, or cut by the endpoint (then the agent's side was cut after it): nothing more to read.
      if (res.writableFinished || upstreamClosed || upstreamReq.destroyed) return;
      agentGone = true;
      // A call sent whole is billed as it runs upstream, whether the agent waits or not: its answer is read to
      // the end (bounded in time), so that all it used is metered. One sent in part is stopped.
      if (closing || !bodySent || call !== 'message' || !options.meter) {
        upstreamReq.destroy();
        return;
      }
      answer?.unpipe(res);
      answer?.resume();
      abandoned.add(upstreamReq);
      const limit = setTimeout(() => upstreamReq.destroy(), ABANDONED_ANSWER_MS).unref();
      upstreamReq.once('close', () => {
        clearTimeout(limit);
        abandoned.delete(upstreamReq);
      });
    });
    upstreamReq.on('error', (err) => {
      if (agentGone) return;
      options.onError?.(err);
      if (res.headersSent) {
        res.destroy(err);
        return;
      }
      res.writeHead(502, { 'content-type': 'application/json' });
      const message = `pincer proxy could not reach the model endpoint ${base.origin}: ${err.message}`;
      res.end(JSON.stringify({ type: 'error', error: { type: 'api_error', message } }));
    });
    upstreamReq.end(body, () => {
      bodySent = true;
    });
  };

  /** Reads a call's body (bounded), takes out what the endpoint must not do, and forwards it. */
  const screenAndForward = (
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    method: string,
    call: 'message' | 'count',
    done: () => void,
  ): void => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_REQUEST_BYTES) chunks.push(chunk);
    });
    let handedOn = false;
    // The agent left before its call was whole: nothing goes out, its turn in the queue is over.
    req.once('close', () => {
      if (!handedOn) done();
    });
    req.once('end', () => {
      handedOn = true;
      if (size > MAX_REQUEST_BYTES) {
        options.onRefused?.({ method, path, reason: `a request body over ${MAX_REQUEST_BYTES} bytes` });
        answerError(res, 413, 'request_too_large', `pincer: a model call's body may be at most ${MAX_REQUEST_BYTES} bytes`);
        done();
        return;
      }
      const screened = screenModelRequest(Buffer.concat(chunks), options.webSearchAllowed?.() ?? true, options.pin);
      if (!screened.ok) {
        options.onRefused?.({ method, path, reason: screened.reason });
        answerError(res, 403, 'permission_error', `pincer model proxy refuses ${screened.reason}`);
        done();
        return;
      }
      if (screened.removed.length > 0) options.onScreened?.(screened.removed);
      forward(req, res, path, method, call, screened.body, screened.model, done);
    });
  };

  rmSync(socketPath, { force: true });
  const server: Server = createServer(handle);
  await listenUnix(server, socketPath);
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        closing = true;
        for (const r of abandoned) r.destroy();
        server.closeAllConnections();
        server.close(() => {
          rmSync(socketPath, { force: true });
          resolve();
        });
      }),
  };
}

/**
 * Reads the usage of a model answer as it streams past, and records it once the answer is over: whole, cut
 * by the endpoint, or abandoned by the agent (what the endpoint had reported by then was billed).
 */
function meterAnswer(upstreamRes: IncomingMessage, options: ModelProxyOptions): void {
  const { meter } = options;
  const status = upstreamRes.statusCode ?? 0;
  // An error answer bills nothing.
  if (!meter || status < 200 || status >= 300) return;
  const encoding = upstreamRes.headers['content-encoding'];
  const reader = encoding === undefined || encoding === 'identity' ? usageReader(upstreamRes.headers['content-type']) : undefined;
  if (!reader) {
    options.onUnmetered?.(`answer ${status} of type ${upstreamRes.headers['content-type'] ?? 'none'}, encoding ${encoding ?? 'none'}`);
    return;
  }
  upstreamRes.on('data', (chunk: Buffer) => reader.write(chunk));
  upstreamRes.once('close', () => {
    const used = reader.result();
    if (!used) {
      options.onUnmetered?.(`answer ${status} without a readable usage`);
      return;
    }
    try {
      meter.record(used);
    } catch (err) {
      options.onError?.(new Error(`recording a model call's usage failed: ${err instanceof Error ? err.message : String(err)}`));
    }
  });
}

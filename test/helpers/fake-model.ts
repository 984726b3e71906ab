// A scripted fake of the Anthropic Messages API (streaming SSE), on loopback, for tests and benchmarks.
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ModelRequest {
  headers: IncomingHttpHeaders;
  body: {
    model?: string;
    system?: unknown;
    messages?: Array<{ role: string; content: unknown }>;
    tools?: Array<{ name: string; defer_loading?: boolean }>;
    stream?: boolean;
  };
  receivedAt: number;
  /** 1 for the first request with this exact body, 2 for its first retry, and so on (always set by the fake). */
  attempt?: number;
  /** When the exchange ended (answered, cut, or the client went away); unset while it is open. */
  closedAt?: number;
}

/** An error answer: `error` is the message; the body is shaped like the real API's, its type taken from the status. */
export interface ErrorReply {
  status: number;
  error: string;
  /** Overrides the error type the status implies (e.g. `overloaded_error` for 529). */
  errorType?: string;
  /** Extra response headers, e.g. `{ 'retry-after': '1' }`. */
  headers?: Record<string, string>;
  delayMs?: number;
}

/**
 * A call of the tool `name`. The fake answers only calls of tools the request offers (see offeredTools), as a
 * real model only picks from what it is shown; `mistake` marks a call a real model may still make by mistake (a
 * tool it was not offered), for the tests of what then happens.
 */
export interface ToolCall {
  name: string;
  input: unknown;
  mistake?: true;
}

/** One block of an assistant message: text, or a tool call. */
export type ContentBlock = { text: string } | { toolUse: ToolCall };

/** The token counts a reply reports (the API's `usage` names); unset ones are the fake's defaults (10 in, 5 out, no cache). */
export interface ReplyUsage {
  input_tokens?: number;
  output_tokens?: number;
  cache_creation_input_tokens?: number;
  cache_read_input_tokens?: number;
}

/** A text written in pieces, as a real model streams it: `pieceChars` characters per delta, `gapMs` apart. */
export interface Streamed {
  pieceChars: number;
  gapMs: number;
}

export type ModelReply =
  | { text: string; delayMs?: number; usage?: ReplyUsage; streamed?: Streamed }
  | { toolUse: ToolCall; delayMs?: number; usage?: ReplyUsage }
  /** Several blocks in one message, in order (e.g. text, then parallel tool calls); it stops for tools when any is a call. */
  | { content: ContentBlock[]; delayMs?: number; usage?: ReplyUsage }
  | ErrorReply
  /** A normal text reply's first `cutAfterEvents` SSE events, then the connection is destroyed. */
  | { cutAfterEvents: number; text?: string; delayMs?: number }
  /** The request is accepted and never answered, until the fake closes. */
  | { hang: true; delayMs?: number };

export type ModelScript = (req: ModelRequest) => ModelReply | Promise<ModelReply>;

export interface FakeModel {
  url: string;
  requests: ModelRequest[];
  /** Each scripted call of a tool its request did not offer (answered with an error instead). */
  unofferedCalls: string[];
  setScript(script: ModelScript): void;
  /** Resolves with the next request that the predicate accepts (or the first one from now). */
  nextRequest(predicate?: (r: ModelRequest) => boolean): Promise<ModelRequest>;
  close(): Promise<void>;
}

/** Text of the newest user turn, joined (tool results included as their text). */
export function lastUserText(req: ModelRequest): string {
  const msgs = req.body.messages ?? [];
  const last = [...msgs].reverse().find((m) => m.role === 'user');
  return last ? contentText(last.content) : '';
}

/** Text of the newest user turn that is not a tool's result: the prompt the model is working on. */
export function promptText(req: ModelRequest): string {
  const isResult = (c: unknown) => Array.isArray(c) && c.some((b) => isRecord(b) && b.type === 'tool_result');
  const prompt = [...(req.body.messages ?? [])].reverse().find((m) => m.role === 'user' && !isResult(m.content));
  return prompt ? contentText(prompt.content) : '';
}

/**
 * The newest message of the conversation that is not one of Claude Code's mid-conversation system notes (which it
 * may add after a tool's result).
 */
function newestTurn(req: ModelRequest): { role: string; content: unknown } | undefined {
  return [...(req.body.messages ?? [])].reverse().find((m) => m.role !== 'system');
}

/** True when the newest user turn answers a tool call. */
export function isToolResult(req: ModelRequest): boolean {
  const last = newestTurn(req);
  return Array.isArray(last?.content) && last.content.some((b) => isRecord(b) && b.type === 'tool_result');
}

/** True for the main agent loop (it offers tools); false for side requests such as title generation. */
export function isAgentTurn(req: ModelRequest): boolean {
  return (req.body.tools?.length ?? 0) > 0;
}

/**
 * The tools a model answering this request can call: those sent with their schemas, and deferred ones whose
 * schemas a tool search has loaded (a `tool_reference` to them in a tool result so far), as the API expands them.
 */
export function offeredTools(req: ModelRequest): Set<string> {
  const loaded = new Set<string>();
  for (const m of req.body.messages ?? [])
    if (Array.isArray(m.content))
      for (const block of m.content)
        if (isRecord(block) && block.type === 'tool_result' && Array.isArray(block.content))
          for (const inner of block.content)
            if (isRecord(inner) && inner.type === 'tool_reference' && typeof inner.tool_name === 'string') loaded.add(inner.tool_name);
  return new Set((req.body.tools ?? []).filter((t) => !t.defer_loading || loaded.has(t.name)).map((t) => t.name));
}

export const offers = (req: ModelRequest, name: string): boolean => offeredTools(req).has(name);

/** The tools Claude Code names in the conversation as loadable with ToolSearch (their schemas not sent). */
export function deferredToolNames(req: ModelRequest): string[] {
  const list = /The following deferred tools are now available via ToolSearch\.[^\n]*\n((?:[^\n]+\n?)*)/.exec(allText(req));
  return list?.[1]
    ? list[1]
        .split('\n')
        .map((l) => l.trim())
        .filter(Boolean)
    : [];
}

/** The system prompt's text, its blocks joined. */
export function systemText(req: ModelRequest): string {
  const system = req.body.system;
  if (typeof system === 'string') return system;
  return Array.isArray(system) ? system.map((b) => (isRecord(b) && typeof b.text === 'string' ? b.text : '')).join('\n') : '';
}

/** Every text of the conversation (not the system prompt), joined. */
function allText(req: ModelRequest): string {
  return (req.body.messages ?? []).map((m) => contentText(m.content)).join('\n');
}

/** The name of the tool whose result the newest user turn carries, if it carries one. */
export function answeredTool(req: ModelRequest): string | undefined {
  const msgs = req.body.messages ?? [];
  const last = newestTurn(req);
  if (!Array.isArray(last?.content)) return undefined;
  const result = last.content.find((b) => isRecord(b) && b.type === 'tool_result');
  if (!isRecord(result)) return undefined;
  for (const m of msgs)
    if (m.role === 'assistant' && Array.isArray(m.content))
      for (const b of m.content)
        if (isRecord(b) && b.type === 'tool_use' && b.id === result.tool_use_id && typeof b.name === 'string') return b.name;
  return undefined;
}

/**
 * What a real model does to use a tool: call it when the request offers it, or else load it with a tool search
 * first (the deferred tools are named in the prompt); the caller calls again once the search has answered.
 */
export function useTool(req: ModelRequest, name: string, input: unknown): ModelReply {
  if (offers(req, name)) return { toolUse: { name, input } };
  if (!offers(req, 'ToolSearch')) throw new Error(`the request offers neither ${name} nor ToolSearch`);
  return { toolUse: { name: 'ToolSearch', input: { query: `select:${name}` } } };
}

/** The calls in a reply of tools the request did not offer, unless marked as a mistake the test makes on purpose. */
function unoffered(req: ModelRequest, reply: ModelReply): string[] {
  const blocks = 'toolUse' in reply ? [reply] : 'content' in reply ? reply.content : [];
  const offered = offeredTools(req);
  return blocks.flatMap((b) => ('toolUse' in b && !b.toolUse.mistake && !offered.has(b.toolUse.name) ? [b.toolUse.name] : []));
}

export function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null;
}

/** The text of a message's content (a string or blocks), tool results included as their text. */
export function contentText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (!Array.isArray(content)) return '';
  return content
    .map((b) => {
      if (!isRecord(b)) return '';
      if (b.type === 'text' && typeof b.text === 'string') return b.text;
      if (b.type === 'tool_result') return contentText(b.content);
      return '';
    })
    .join('\n');
}

function sse(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/** The error type the real API sends with each status. */
const ERROR_TYPES: Record<number, string> = {
  400: 'invalid_request_error',
  401: 'authentication_error',
  403: 'permission_error',
  404: 'not_found_error',
  413: 'request_too_large',
  429: 'rate_limit_error',
  500: 'api_error',
  529: 'overloaded_error',
};

export function errorBody(reply: ErrorReply): string {
  const type = reply.errorType ?? ERROR_TYPES[reply.status] ?? 'api_error';
  return JSON.stringify({ type: 'error', error: { type, message: reply.error } });
}

type ContentReply = (ContentBlock | { content: ContentBlock[] }) & { usage?: ReplyUsage };

/** The whole reply's usage: the defaults with what the reply sets. */
function usageOf(reply: ContentReply): Required<ReplyUsage> {
  return { input_tokens: 10, output_tokens: 5, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, ...reply.usage };
}

/** The blocks of a content reply: a plain text or tool reply is a message of one block. */
function blocksOf(reply: ContentReply): ContentBlock[] {
  return 'content' in reply ? reply.content : [reply];
}

const stopReasonOf = (blocks: ContentBlock[]) => (blocks.some((b) => 'toolUse' in b) ? 'tool_use' : 'end_turn');

function messageId(): string {
  return `msg_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

function toolUseId(): string {
  return `toolu_${randomUUID().replace(/-/g, '').slice(0, 24)}`;
}

/** A reply as one JSON message, for a request with `stream: false`. */
function wholeMessage(reply: ContentReply, model: string): unknown {
  const blocks = blocksOf(reply);
  const content = blocks.map((b) =>
    'text' in b ? { type: 'text', text: b.text } : { type: 'tool_use', id: toolUseId(), name: b.toolUse.name, input: b.toolUse.input },
  );
  return {
    id: messageId(),
    type: 'message',
    role: 'assistant',
    model,
    content,
    stop_reason: stopReasonOf(blocks),
    stop_sequence: null,
    usage: usageOf(reply),
  };
}

/** A text cut into deltas of at most `size` characters (whole code points); one delta when size is infinite. */
function textPieces(text: string, size: number): string[] {
  if (!Number.isFinite(size) || text.length <= size) return [text];
  const chars = [...text];
  const pieces: string[] = [];
  for (let i = 0; i < chars.length; i += size) pieces.push(chars.slice(i, i + size).join(''));
  return pieces;
}

/** The SSE events of a streamed reply: the message's start, each block's start, delta and stop, the message's end. */
function streamReply(reply: ContentReply, model: string, pieceChars = Number.POSITIVE_INFINITY): string[] {
  const blocks = blocksOf(reply);
  const id = messageId();
  // As the API does: the input counts at the start, the output's running total at the end.
  const { output_tokens, ...input } = usageOf(reply);
  const usage = { ...input, output_tokens: 0 };
  const out = [
    sse('message_start', {
      type: 'message_start',
      message: { id, type: 'message', role: 'assistant', model, content: [], stop_reason: null, stop_sequence: null, usage },
    }),
  ];
  blocks.forEach((block, index) => {
    if ('text' in block) {
      out.push(sse('content_block_start', { type: 'content_block_start', index, content_block: { type: 'text', text: '' } }));
      for (const piece of textPieces(block.text, pieceChars))
        out.push(sse('content_block_delta', { type: 'content_block_delta', index, delta: { type: 'text_delta', text: piece } }));
    } else {
      out.push(
        sse('content_block_start', {
          type: 'content_block_start',
          index,
          content_block: { type: 'tool_use', id: toolUseId(), name: block.toolUse.name, input: {} },
        }),
      );
      out.push(
        sse('content_block_delta', {
          type: 'content_block_delta',
          index,
          delta: { type: 'input_json_delta', partial_json: JSON.stringify(block.toolUse.input) },
        }),
      );
    }
    out.push(sse('content_block_stop', { type: 'content_block_stop', index }));
  });
  out.push(
    sse('message_delta', {
      type: 'message_delta',
      delta: { stop_reason: stopReasonOf(blocks), stop_sequence: null },
      usage: { output_tokens },
    }),
  );
  out.push(sse('message_stop', { type: 'message_stop' }));
  return out;
}

/**
 * How the fake wants to be authenticated, as providers do: `x-api-key: <key>` (Anthropic), `authorization: Bearer
 * <key>` (OpenRouter, LiteLLM), or no credential at all (a local Ollama). Anything else is answered 401, as the
 * real ones answer it; every request is recorded either way, so a test sees each header that arrived.
 */
export type FakeAuth = { style: 'x-api-key' | 'bearer'; key: string } | { style: 'none' };

function authProblem(auth: FakeAuth, headers: IncomingHttpHeaders): string | undefined {
  const apiKey = headers['x-api-key'];
  const bearer = headers.authorization;
  if (auth.style === 'none') return apiKey !== undefined || bearer !== undefined ? 'this endpoint takes no credential' : undefined;
  if (auth.style === 'x-api-key') return apiKey === auth.key && bearer === undefined ? undefined : 'invalid x-api-key';
  return bearer === `Bearer ${auth.key}` && apiKey === undefined ? undefined : 'invalid bearer token';
}

export async function startFakeModel(script: ModelScript = () => ({ text: 'ok' }), options: { auth?: FakeAuth } = {}): Promise<FakeModel> {
  let current = script;
  const requests: ModelRequest[] = [];
  const unofferedCalls: string[] = [];
  const attempts = new Map<string, number>();
  const waiters: Array<{ predicate: (r: ModelRequest) => boolean; resolve: (r: ModelRequest) => void }> = [];

  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const path = (req.url ?? '').split('?')[0];
        if (req.method !== 'POST' || path !== '/v1/messages') {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: path } }));
          return;
        }
        const raw = Buffer.concat(chunks);
        const digest = createHash('sha256').update(raw).digest('hex');
        const attempt = (attempts.get(digest) ?? 0) + 1;
        attempts.set(digest, attempt);
        const request: ModelRequest = {
          headers: req.headers,
          body: JSON.parse(raw.toString('utf8')) as ModelRequest['body'],
          receivedAt: performance.now(),
          attempt,
        };
        res.once('close', () => {
          request.closedAt = performance.now();
        });
        requests.push(request);
        for (const w of [...waiters]) {
          if (w.predicate(request)) {
            waiters.splice(waiters.indexOf(w), 1);
            w.resolve(request);
          }
        }
        const refused = options.auth && authProblem(options.auth, req.headers);
        let reply: ModelReply = refused ? { status: 401, error: refused, errorType: 'authentication_error' } : await current(request);
        const notOffered = unoffered(request, reply);
        if (notOffered.length > 0) {
          // The script called a tool no real model could have picked: the test must not pass through it.
          unofferedCalls.push(...notOffered);
          reply = { status: 400, error: `the scripted model called ${notOffered.join(', ')}, which this request did not offer` };
        }
        if (reply.delayMs) await new Promise((r) => setTimeout(r, reply.delayMs));
        if ('status' in reply) {
          res.writeHead(reply.status, { 'content-type': 'application/json', ...reply.headers });
          res.end(errorBody(reply));
          return;
        }
        if ('hang' in reply) {
          // Headers are not even sent: the client waits for an answer that never comes.
          await new Promise((resolve) => res.once('close', resolve));
          return;
        }
        const model = request.body.model ?? 'claude-test';
        if (request.body.stream === false) {
          // Claude Code's last resort after failed streams: the same reply as one JSON message.
          if ('cutAfterEvents' in reply) {
            res.writeHead(200, { 'content-type': 'application/json' });
            res.write('', () => res.socket?.destroy());
            return;
          }
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify(wholeMessage(reply, model)));
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
        if ('cutAfterEvents' in reply) {
          const events = streamReply({ text: reply.text ?? 'this reply is cut off midway' }, model);
          const head = events.slice(0, reply.cutAfterEvents).join('');
          // Written, then the connection is dropped without the stream's end (no final chunk).
          res.write(head, () => res.socket?.destroy());
          return;
        }
        const streamed = 'streamed' in reply ? reply.streamed : undefined;
        for (const event of streamReply(reply, model, streamed?.pieceChars)) {
          res.write(event);
          if (streamed && event.startsWith('event: content_block_delta')) await new Promise((r) => setTimeout(r, streamed.gapMs));
        }
        res.end();
      })().catch((err: unknown) => {
        res.writeHead(500);
        res.end(String(err));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    unofferedCalls,
    setScript(s) {
      current = s;
    },
    nextRequest(predicate = () => true) {
      return new Promise((resolve) => waiters.push({ predicate, resolve }));
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

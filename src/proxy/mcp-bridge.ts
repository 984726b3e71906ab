// The host side of a secret-carrying http MCP server: a Unix socket that speaks MCP's stdio framing (one
// JSON-RPC message per line) to the sandbox, where `socat STDIO UNIX-CONNECT:…` is the server Claude Code
// starts, and MCP's Streamable HTTP to the real server, adding the secret headers. The sandbox chooses
// neither the URL, the method nor a header: only the JSON-RPC messages, which all go to the one URL.
// Server-initiated messages arrive in the answers' event streams; the optional standalone GET stream is
// not opened.

import { chmodSync, chownSync, rmSync } from 'node:fs';
import { type ClientRequest, request as httpRequest, type IncomingMessage, type OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server, type Socket } from 'node:net';
import type { SandboxUser } from '../sandbox/types.js';
import { listenUnix } from './unix-listen.js';

export interface McpBridgeOptions {
  /** The MCP endpoint; every message is POSTed to exactly this URL. */
  url: string;
  /** Added to every request; the sandbox never sees them. */
  headers: Record<string, string>;
  /** The sandbox's user, when pincer is root: the socket is handed to it (and no one else may connect). */
  owner?: SandboxUser;
  /** What went wrong upstream, in words that never include a header value. */
  onError?: (reason: string) => void;
}

export interface McpBridge {
  socketPath: string;
  close(): Promise<void>;
}

/** One line from the sandbox; a longer one ends the connection. */
const MAX_LINE = 4 * 1024 * 1024;
/** One JSON answer from the server. */
const MAX_JSON_BODY = 16 * 1024 * 1024;
/** One event of an answer's event stream. */
const MAX_EVENT = 16 * 1024 * 1024;
const CLOSE_DELETE_TIMEOUT_MS = 2_000;

type JsonRpcId = string | number;

interface Exchange {
  /** The id of the request the message is, if it is one (a notification or a response has none). */
  id: JsonRpcId | undefined;
  isInitialize: boolean;
  answered: boolean;
}

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Starts listening at once (the socket exists when this returns); the sandbox connects later. */
export function startMcpBridge(socketPath: string, options: McpBridgeOptions): McpBridge {
  const url = new URL(options.url);
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  const connections = new Set<Socket>();

  const server: Server = createServer((socket) => {
    connections.add(socket);
    socket.once('close', () => connections.delete(socket));
    serve(socket, { url, send, options });
  });
  server.on('error', (err) => options.onError?.(`bridge socket: ${err.message}`));
  rmSync(socketPath, { force: true });
  listenUnix(server, socketPath)
    .then(() => {
      chmodSync(socketPath, 0o600);
      if (options.owner) chownSync(socketPath, options.owner.uid, options.owner.gid);
    })
    .catch((err: unknown) => options.onError?.(`bridge socket: ${err instanceof Error ? err.message : String(err)}`));

  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        for (const c of connections) c.destroy();
        server.close(() => {
          rmSync(socketPath, { force: true });
          resolve();
        });
      }),
  };
}

interface Upstream {
  url: URL;
  send: typeof httpRequest;
  options: McpBridgeOptions;
}

/** One connection is one MCP client session: its session id and protocol version are its own. */
function serve(socket: Socket, up: Upstream): void {
  let buffered = '';
  let sessionId: string | undefined;
  let protocolVersion: string | undefined;
  /** Anything after an `initialize` waits for its answer (which brings the session id). */
  let gate: Promise<void> = Promise.resolve();
  const inflight = new Set<ClientRequest>();
  let closed = false;

  const write = (message: unknown): void => {
    if (!closed && socket.writable) socket.write(`${JSON.stringify(message)}\n`);
  };

  const headers = (length: number): OutgoingHttpHeaders => ({
    ...up.options.headers,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'content-length': length,
    ...(sessionId ? { 'mcp-session-id': sessionId } : {}),
    ...(protocolVersion ? { 'mcp-protocol-version': protocolVersion } : {}),
  });

  /** A message for the sandbox: noted when it answers the exchange's request. */
  const deliver = (ex: Exchange, message: unknown): void => {
    for (const m of Array.isArray(message) ? message : [message]) {
      if (!isRecord(m)) continue;
      if (ex.id !== undefined && m.id === ex.id && ('result' in m || 'error' in m)) {
        ex.answered = true;
        if (ex.isInitialize && isRecord(m.result) && typeof m.result.protocolVersion === 'string')
          protocolVersion = m.result.protocolVersion.slice(0, 64);
      }
      write(m);
    }
  };

  /** A request the server did not answer gets an error answer, so the client never waits forever. */
  const fail = (ex: Exchange, reason: string): void => {
    up.options.onError?.(reason);
    if (ex.id === undefined || ex.answered) return;
    ex.answered = true;
    write({ jsonrpc: '2.0', id: ex.id, error: { code: -32603, message: `pincer MCP bridge: the server ${reason}` } });
  };

  const post = (body: string, ex: Exchange): Promise<void> =>
    new Promise<void>((resolve) => {
      let settled = false;
      const settle = (problem?: string): void => {
        if (settled) return;
        settled = true;
        inflight.delete(req);
        if (!closed) {
          if (problem) fail(ex, problem);
          else if (!ex.answered && ex.id !== undefined) fail(ex, 'ended its answer without answering the request');
        }
        resolve();
      };
      const req = up.send(up.url, { method: 'POST', headers: headers(Buffer.byteLength(body)) }, (res) => {
        res.once('error', (err) => settle(`broke off its answer: ${err.message}`));
        const sid = res.headers['mcp-session-id'];
        if (ex.isInitialize && typeof sid === 'string' && /^[\x21-\x7e]{1,256}$/.test(sid)) sessionId = sid;
        const status = res.statusCode ?? 0;
        const type = (res.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
        const drain = (problem?: string): void => {
          res.resume();
          res.once('end', () => settle(problem));
        };
        if (status === 202 || status === 204) drain();
        else if (status < 200 || status > 299) drain(`answered HTTP ${status}`);
        else if (type === 'text/event-stream')
          readEvents(
            res,
            (data) => deliverText(ex, data),
            () => settle(),
          );
        else if (type === 'application/json')
          readJson(
            res,
            (data) => deliverText(ex, data),
            () => settle(),
          );
        else drain(`answered with ${type ? `content type ${type}` : 'no content type'}`);
      });
      inflight.add(req);
      req.on('error', (err) => settle(`could not be reached: ${err.message}`));
      req.end(body);
    });

  const deliverText = (ex: Exchange, data: string): void => {
    let parsed: unknown;
    try {
      parsed = JSON.parse(data);
    } catch {
      up.options.onError?.('the server sent something that is not JSON');
      return;
    }
    deliver(ex, parsed);
  };

  const onLine = (line: string): void => {
    let message: unknown;
    try {
      message = JSON.parse(line);
    } catch {
      write({ jsonrpc: '2.0', id: null, error: { code: -32700, message: 'Parse error' } });
      return;
    }
    const m = isRecord(message) ? message : {};
    const isRequest = typeof m.method === 'string' && (typeof m.id === 'string' || typeof m.id === 'number');
    const ex: Exchange = { id: isRequest ? (m.id as JsonRpcId) : undefined, isInitialize: m.method === 'initialize', answered: false };
    if (ex.isInitialize) {
      sessionId = undefined;
      protocolVersion = undefined;
      gate = post(line, ex);
    } else void gate.then(() => post(line, ex));
  };

  socket.setEncoding('utf8');
  socket.on('data', (chunk: string) => {
    buffered += chunk;
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line) onLine(line);
      nl = buffered.indexOf('\n');
    }
    if (buffered.length > MAX_LINE) socket.destroy();
  });
  socket.on('error', () => {});
  socket.once('close', () => {
    closed = true;
    for (const req of inflight) req.destroy();
    inflight.clear();
    if (sessionId) endSession(up, sessionId, protocolVersion);
  });
}

/** The client is gone: the server may forget its session (best effort, never waited for). */
function endSession(up: Upstream, sessionId: string, protocolVersion: string | undefined): void {
  const req = up.send(up.url, {
    method: 'DELETE',
    headers: {
      ...up.options.headers,
      'mcp-session-id': sessionId,
      ...(protocolVersion ? { 'mcp-protocol-version': protocolVersion } : {}),
    },
    timeout: CLOSE_DELETE_TIMEOUT_MS,
  });
  req.on('response', (res) => res.resume());
  req.on('timeout', () => req.destroy());
  req.on('error', () => {});
  req.end();
}

function readJson(res: IncomingMessage, onData: (data: string) => void, onEnd: () => void): void {
  const chunks: Buffer[] = [];
  let size = 0;
  res.on('data', (chunk: Buffer) => {
    size += chunk.length;
    if (size > MAX_JSON_BODY) res.destroy(new Error('answer too large'));
    else chunks.push(chunk);
  });
  res.once('end', () => {
    const text = Buffer.concat(chunks).toString('utf8').trim();
    if (text) onData(text);
    onEnd();
  });
}

/** Server-sent events: each event's `data:` lines joined make one JSON-RPC message (or batch). */
function readEvents(res: IncomingMessage, onData: (data: string) => void, onEnd: () => void): void {
  let pending = '';
  let data: string[] = [];
  let dataSize = 0;
  const dispatch = (): void => {
    if (data.length > 0) onData(data.join('\n'));
    data = [];
    dataSize = 0;
  };
  res.setEncoding('utf8');
  res.on('data', (chunk: string) => {
    pending += chunk;
    let nl = pending.search(/\r\n|\r|\n/);
    // A CR at the very end may be the first half of a CRLF: wait for what follows.
    while (nl >= 0 && !(nl === pending.length - 1 && pending.endsWith('\r'))) {
      const width = pending.startsWith('\r\n', nl) ? 2 : 1;
      const line = pending.slice(0, nl);
      pending = pending.slice(nl + width);
      if (line === '') dispatch();
      else if (line.startsWith('data:')) {
        const value = line.slice(5).replace(/^ /, '');
        dataSize += value.length;
        if (dataSize > MAX_EVENT) {
          res.destroy(new Error('event too large'));
          return;
        }
        data.push(value);
      }
      nl = pending.search(/\r\n|\r|\n/);
    }
    if (pending.length > MAX_EVENT) res.destroy(new Error('event too large'));
  });
  res.once('end', () => {
    if (pending.startsWith('data:')) data.push(pending.slice(5).replace(/^ /, ''));
    dispatch();
    onEnd();
  });
}

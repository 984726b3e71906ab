// The host side of the sandbox's general egress (its HTTP_PROXY / HTTPS_PROXY): a Unix-socket HTTP proxy
// that checks each destination against the group's policy by name, resolves it once, refuses loopback,
// private, link-local and metadata addresses, and connects by IP to an address it checked, so a second
// DNS answer can never steer the connection elsewhere (DNS rebinding). It adds nothing to what it
// forwards: no credentials of any kind.

import { promises as dns } from 'node:dns';
import { rmSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
  STATUS_CODES,
} from 'node:http';
import { isIP, connect as netConnect, type Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import { refusedAddressReason } from './address-class.js';
import { type EgressPolicy, hostAllowedByPolicy, isHostName } from './egress-policy.js';
import type { EgressRecord } from './egress-record.js';
import { DEFAULT_REFUSAL_LIMITS, RefusalSummarizer } from './refusal-summary.js';
import { listenUnix } from './unix-listen.js';

export type { EgressRecord } from './egress-record.js';

export interface EgressProxyOptions {
  /** Read for each new connection, so a policy change applies from the next connection on. */
  policy: () => EgressPolicy;
  /** Called once per connection or request when it ends (allowed or refused). */
  onRecord: (record: EgressRecord) => void;
  /** Test seam: name resolution (default: dns.promises.lookup with all: true). */
  resolve?: (host: string) => Promise<string[]>;
  /** Test seam: addresses treated as public although they are not (a loopback test site). Never set in production. */
  allowAddress?: (address: string) => boolean;
  /** Time allowed for resolving and connecting, together (default 10 s). */
  connectTimeoutMs?: number;
}

/** What tests may change about the proxy: where names resolve, and which otherwise refused addresses pass. */
export type EgressTestSeam = Pick<EgressProxyOptions, 'resolve' | 'allowAddress'>;

export interface EgressProxy {
  socketPath: string;
  close(): Promise<void>;
}

const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Connections one sandbox may hold open at once; more are closed as they arrive (and counted as refusals). */
export const MAX_OPEN_CONNECTIONS = 256;
/** How long a refused client may keep its half of the connection open before we drop it. */
const LINGER_MS = 2_000;
/** What a client may send before its tunnel is up (a TLS ClientHello sent early fits easily). */
const MAX_EARLY_BYTES = 64 * 1024;

/** Headers that describe one hop, not the exchange; never forwarded in either direction. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'te', 'trailer', 'transfer-encoding', 'upgrade']);

/** A request that will not be forwarded, with what the client is told. */
class EgressFailure extends Error {
  constructor(
    readonly status: number,
    readonly reason: string,
    readonly line: string,
  ) {
    super(line);
  }
}

class DeadlineExceeded extends Error {}
class ClientGone extends Error {}

type MutableRecord = Omit<EgressRecord, 'durationMs' | 'count'>;

const defaultResolve = async (host: string): Promise<string[]> =>
  (await dns.lookup(host, { all: true, verbatim: true })).map((a) => a.address);

export async function startEgressProxy(socketPath: string, options: EgressProxyOptions): Promise<EgressProxy> {
  const resolve = options.resolve ?? defaultResolve;
  const timeoutMs = options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  // Tunnels leave the server's own connection tracking, so close() needs its own list.
  const live = new Set<Duplex>();
  const track = (s: Duplex): void => {
    live.add(s);
    s.once('close', () => live.delete(s));
  };

  const record = (rec: EgressRecord): void => {
    try {
      options.onRecord(rec);
    } catch {
      // A failing observer must not take the proxy (and every sandbox's egress) down with it.
    }
  };
  // A flood of refused connections becomes a few rows, not one each (20 per 10 s, then a summary): the store's
  // writes run on this thread.
  const refusals = new RefusalSummarizer(DEFAULT_REFUSAL_LIMITS, record);
  const emit = (rec: MutableRecord): void => {
    const done: EgressRecord = { ...rec, durationMs: Date.now() - rec.startedAt, count: 1 };
    if (done.allowed) record(done);
    else refusals.refused(done);
  };

  /** Policy by name, one resolution, address rules, then a connection by IP to an address that passed. */
  const openUpstream = async (rec: MutableRecord, signal: AbortSignal): Promise<Socket> => {
    const { host, port } = rec;
    const target = `${host}:${port}`;
    const deadline = Date.now() + timeoutMs;
    const verdict = hostAllowedByPolicy(host, options.policy());
    if (!verdict.ok) throw refusal(target, verdict.reason);

    let addresses: string[];
    if (isIP(host) !== 0) addresses = [host];
    else {
      try {
        addresses = await raceDeadline(resolve(host), deadline, signal);
      } catch (err) {
        if (err instanceof DeadlineExceeded)
          throw new EgressFailure(504, `timed out resolving ${host}`, `pincer egress: timed out resolving ${host} after ${timeoutMs} ms`);
        if (err instanceof ClientGone) throw err;
        const message = errorMessage(err);
        throw new EgressFailure(502, `could not resolve ${host}: ${message}`, `pincer egress: could not resolve ${host}: ${message}`);
      }
    }
    if (addresses.length === 0)
      throw new EgressFailure(502, `${host} resolved to no address`, `pincer egress: ${host} resolved to no address`);

    let firstRefusal: string | undefined;
    const usable = addresses.filter((address) => {
      const reason = options.allowAddress?.(address) ? undefined : refusedAddressReason(address);
      firstRefusal ??= reason;
      return reason === undefined;
    });
    if (usable.length === 0) throw refusal(target, firstRefusal ?? 'no usable address');
    rec.allowed = true;

    // Later addresses are fallbacks for a failed connect (an IPv6 answer on a host without IPv6, say).
    let lastError: unknown;
    for (const address of usable) {
      rec.address = address;
      try {
        const socket = await connectTo(address, port, deadline, signal);
        track(socket);
        return socket;
      } catch (err) {
        if (err instanceof DeadlineExceeded) {
          const line = `pincer egress: timed out connecting to ${target} (${address}) after ${timeoutMs} ms`;
          throw new EgressFailure(504, `timed out connecting to ${address}`, line);
        }
        if (err instanceof ClientGone) throw err;
        lastError = err;
      }
    }
    const message = errorMessage(lastError);
    throw new EgressFailure(502, message, `pincer egress: could not reach ${target} (${rec.address}): ${message}`);
  };

  const handleConnect = async (req: IncomingMessage, client: Duplex, head: Buffer): Promise<void> => {
    const rec: MutableRecord = { host: '', port: 0, method: 'CONNECT', allowed: false, bytesUp: 0, bytesDown: 0, startedAt: Date.now() };
    track(client);
    // Errors surface as 'close', which is where the record is made.
    client.on('error', () => {});
    const clientClosed = whenClosed(client);
    const abort = new AbortController();
    const onGone = (): void => abort.abort();
    // Keep reading while we decide, so a client that leaves is noticed (a paused socket never sees its EOF);
    // anything it sends ahead of our answer is held for the upstream.
    const early: Buffer[] = head.length > 0 ? [head] : [];
    let earlyBytes = head.length;
    const onEarly = (chunk: Buffer): void => {
      early.push(chunk);
      earlyBytes += chunk.length;
      if (earlyBytes > MAX_EARLY_BYTES) client.destroy();
    };
    client.on('data', onEarly);
    client.once('end', onGone);
    client.once('close', onGone);

    let upstream: Socket;
    try {
      const target = parseAuthority(req.url ?? '');
      if (target === undefined) {
        const line = `pincer egress: CONNECT needs host:port, got ${JSON.stringify(req.url ?? '')}`;
        throw new EgressFailure(400, 'bad CONNECT target', line);
      }
      rec.host = target.host;
      rec.port = target.port;
      upstream = await openUpstream(rec, abort.signal);
    } catch (err) {
      const failure = asFailure(err);
      rec.reason = failure.reason;
      if (!client.destroyed) answerRaw(client, failure);
      await clientClosed;
      emit(rec);
      return;
    } finally {
      client.off('data', onEarly);
      client.off('end', onGone);
    }

    upstream.on('error', () => {});
    const upstreamClosed = whenClosed(upstream);
    client.on('data', (chunk: Buffer) => {
      rec.bytesUp += chunk.length;
    });
    upstream.on('data', (chunk: Buffer) => {
      rec.bytesDown += chunk.length;
    });
    // With the client gone nothing more can be delivered; with the upstream gone, nothing more can be sent.
    client.once('close', () => upstream.destroy());
    upstream.once('close', (hadError: boolean) => {
      if (hadError) client.destroy();
      else lingerThenClose(client);
    });
    if (client.destroyed) upstream.destroy();
    client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (earlyBytes > 0) {
      rec.bytesUp += earlyBytes;
      upstream.write(Buffer.concat(early));
    }
    client.pipe(upstream);
    upstream.pipe(client);
    await Promise.all([clientClosed, upstreamClosed]);
    emit(rec);
  };

  const handleRequest = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const rec: MutableRecord = {
      host: '',
      port: 0,
      method: req.method ?? 'GET',
      allowed: false,
      bytesUp: 0,
      bytesDown: 0,
      startedAt: Date.now(),
    };
    const abort = new AbortController();
    let emitted = false;
    res.once('close', () => {
      abort.abort();
      if (!res.writableFinished && rec.reason === undefined) rec.reason = 'connection closed before the response was complete';
      emitted = true;
      emit(rec);
    });

    let upstreamSocket: Socket;
    let url: URL;
    try {
      url = parseAbsoluteHttp(req.url ?? '');
      rec.host = url.hostname.replace(/^\[(.*)\]$/, '$1');
      rec.port = url.port === '' ? 80 : Number(url.port);
      upstreamSocket = await openUpstream(rec, abort.signal);
    } catch (err) {
      const failure = asFailure(err);
      rec.reason = failure.reason;
      if (!res.headersSent && !res.destroyed) answerHttp(res, failure);
      return;
    }
    if (emitted) {
      upstreamSocket.destroy();
      return;
    }

    const upstreamReq = httpRequest({
      createConnection: () => upstreamSocket,
      method: req.method,
      path: `${url.pathname}${url.search}`,
      // The request target names the host (RFC 9112 §3.2.2): its Host wins over any the client sent.
      headers: { ...endToEndHeaders(req.headers, ['host', 'expect']), host: url.host },
    });
    upstreamReq.on('response', (upstreamRes) => {
      upstreamRes.on('data', (chunk: Buffer) => {
        rec.bytesDown += chunk.length;
      });
      // A body cut short upstream must reach the client as a cut, not as a clean end.
      upstreamRes.on('error', () => res.destroy());
      upstreamRes.once('close', () => {
        if (!upstreamRes.complete) res.destroy();
      });
      try {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.statusMessage, endToEndHeaders(upstreamRes.headers, []));
      } catch (err) {
        rec.reason = `unusable upstream response: ${errorMessage(err)}`;
        res.destroy();
        upstreamReq.destroy();
        return;
      }
      upstreamRes.pipe(res);
    });
    upstreamReq.on('error', (err) => {
      rec.reason ??= errorMessage(err);
      if (res.headersSent || res.destroyed) res.destroy();
      else answerHttp(res, new EgressFailure(502, rec.reason, `pincer egress: ${rec.host}:${rec.port} failed: ${rec.reason}`));
    });
    res.once('close', () => upstreamReq.destroy());
    req.on('data', (chunk: Buffer) => {
      rec.bytesUp += chunk.length;
    });
    req.pipe(upstreamReq);
  };

  rmSync(socketPath, { force: true });
  // The handlers catch what they expect; anything else ends that one connection, never the process.
  const server: Server = createServer((req, res) => {
    handleRequest(req, res).catch(() => res.destroy());
  });
  server.on('connect', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    handleConnect(req, socket, head).catch(() => socket.destroy());
  });
  server.maxConnections = MAX_OPEN_CONNECTIONS;
  server.on('drop', () => {
    const at = Date.now();
    const reason = `more than ${MAX_OPEN_CONNECTIONS} connections open at once`;
    // Closed before a byte was read: neither method nor target is known.
    refusals.refused({
      host: '',
      port: 0,
      method: '',
      allowed: false,
      reason,
      bytesUp: 0,
      bytesDown: 0,
      startedAt: at,
      durationMs: 0,
      count: 1,
    });
  });
  await listenUnix(server, socketPath);
  // A listening server that errors later (rare) must not crash the host.
  server.on('error', () => {});
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolveClose) => {
        server.close(() => {
          rmSync(socketPath, { force: true });
          // Connections destroyed just now have recorded their refusals: what is still only counted goes out last.
          refusals.flush();
          resolveClose();
        });
        server.closeAllConnections();
        for (const s of live) s.destroy();
      }),
  };
}

function refusal(target: string, reason: string): EgressFailure {
  return new EgressFailure(403, reason, `pincer egress: refused ${target}: ${reason}`);
}

function asFailure(err: unknown): EgressFailure {
  if (err instanceof EgressFailure) return err;
  if (err instanceof ClientGone) return new EgressFailure(499, 'client closed the connection', 'pincer egress: client went away');
  const message = errorMessage(err);
  return new EgressFailure(502, message, `pincer egress: ${message}`);
}

function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `host:port` or `[v6]:port`, as CONNECT carries it; the host lowercased and without a trailing dot. */
export function parseAuthority(authority: string): { host: string; port: number } | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(authority);
  if (m === null) return undefined;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return undefined;
  if (m[1] !== undefined) return isIP(m[1]) === 6 ? { host: m[1].toLowerCase(), port } : undefined;
  const host = (m[2] ?? '').toLowerCase().replace(/\.$/, '');
  return isIP(host) === 4 || isHostName(host) ? { host, port } : undefined;
}

function parseAbsoluteHttp(target: string): URL {
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(target)) {
    const line =
      'pincer egress: this is a proxy: send absolute-form requests (GET http://host/path) for http, or CONNECT host:port for https';
    throw new EgressFailure(400, 'not an absolute-form request', line);
  }
  let url: URL;
  try {
    url = new URL(target);
  } catch {
    throw new EgressFailure(400, 'unparseable request target', `pincer egress: cannot parse request target ${JSON.stringify(target)}`);
  }
  if (url.protocol !== 'http:') {
    const line = `pincer egress: only http:// is forwarded as a request; ${url.protocol}// goes through CONNECT (HTTPS_PROXY)`;
    throw new EgressFailure(400, `unsupported scheme ${url.protocol}`, line);
  }
  if (url.hostname === '') throw new EgressFailure(400, 'no host in request target', 'pincer egress: the request target names no host');
  return url;
}

/** The end-to-end headers: hop-by-hop ones, those the Connection header names, and every proxy-* dropped. */
function endToEndHeaders(headers: IncomingHttpHeaders, alsoDrop: string[]): OutgoingHttpHeaders {
  const named = new Set(
    String(headers.connection ?? '')
      .split(',')
      .map((h) => h.trim().toLowerCase())
      .filter((h) => h !== ''),
  );
  const out: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || HOP_BY_HOP.has(name) || name.startsWith('proxy-') || named.has(name) || alsoDrop.includes(name)) continue;
    out[name] = value;
  }
  return out;
}

function answerHttp(res: ServerResponse, failure: EgressFailure): void {
  const body = `${failure.line}\n`;
  res.writeHead(failure.status, {
    'content-type': 'text/plain; charset=utf-8',
    'content-length': Buffer.byteLength(body),
    connection: 'close',
  });
  res.end(body);
}

/** The answer to a refused CONNECT, written on the raw socket since the server hands it over unparsed. */
function answerRaw(socket: Duplex, failure: EgressFailure): void {
  const body = `${failure.line}\n`;
  const head = [
    `HTTP/1.1 ${failure.status} ${STATUS_CODES[failure.status] ?? 'Error'}`,
    'content-type: text/plain; charset=utf-8',
    `content-length: ${Buffer.byteLength(body)}`,
    'connection: close',
  ].join('\r\n');
  socket.end(`${head}\r\n\r\n${body}`);
  lingerThenClose(socket);
}

/** End our side; give the client a moment to close its own before dropping the connection. */
function lingerThenClose(socket: Duplex): void {
  // Read and drop what still comes (a finished pipe leaves the socket paused), so the client's EOF is seen
  // and closing does not reset the connection under our last bytes.
  socket.resume();
  socket.end();
  const timer = setTimeout(() => socket.destroy(), LINGER_MS);
  timer.unref();
  socket.once('close', () => clearTimeout(timer));
}

function whenClosed(stream: Duplex): Promise<void> {
  return new Promise((resolveClosed) => {
    if (stream.closed) resolveClosed();
    else stream.once('close', () => resolveClosed());
  });
}

function raceDeadline<T>(work: Promise<T>, deadline: number, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolveRace, reject) => {
    if (signal.aborted) {
      reject(new ClientGone());
      return;
    }
    const onAbort = (): void => reject(new ClientGone());
    const timer = setTimeout(() => reject(new DeadlineExceeded()), Math.max(0, deadline - Date.now()));
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(resolveRace, reject).finally(() => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
    });
  });
}

function connectTo(address: string, port: number, deadline: number, signal: AbortSignal): Promise<Socket> {
  return new Promise<Socket>((resolveConnect, reject) => {
    if (signal.aborted) {
      reject(new ClientGone());
      return;
    }
    const socket = netConnect({ host: address, port });
    const cleanup = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', onAbort);
      socket.off('error', fail);
    };
    const fail = (err: Error): void => {
      cleanup();
      socket.destroy();
      reject(err);
    };
    const onAbort = (): void => fail(new ClientGone());
    const timer = setTimeout(() => fail(new DeadlineExceeded()), Math.max(0, deadline - Date.now()));
    signal.addEventListener('abort', onAbort, { once: true });
    socket.once('error', fail);
    socket.once('connect', () => {
      cleanup();
      resolveConnect(socket);
    });
  });
}

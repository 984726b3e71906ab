// The host side of the sandbox's only way to the model: a Unix-socket HTTP server that swaps the
// sandbox's placeholder credential for the real one and streams the exchange through unbuffered.

import { rmSync } from 'node:fs';
import {
  createServer,
  request as httpRequest,
  type IncomingMessage,
  type OutgoingHttpHeaders,
  type Server,
  type ServerResponse,
} from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { ModelCredential } from '../config.js';
import { listenUnix } from './unix-listen.js';

export interface ModelProxyOptions {
  /** Base URL of the real model endpoint, e.g. https://api.anthropic.com */
  upstream: string;
  credential: ModelCredential;
  /** Called as each request arrives, before it is forwarded. */
  onRequest?: (path: string) => void;
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
]);

export function forwardHeaders(incoming: IncomingMessage['headers'], credential: ModelCredential): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const [k, v] of Object.entries(incoming)) if (v !== undefined && !DROPPED.has(k)) out[k] = v;
  if (credential.kind === 'api-key') out['x-api-key'] = credential.value;
  else out.authorization = `Bearer ${credential.value}`;
  return out;
}

/** `/v1/…` in origin form, nothing that could climb out of it once joined to the endpoint's base path. */
export function isApiPath(path: string): boolean {
  if (!path.startsWith('/v1/')) return false;
  const pathname = path.split('?')[0] ?? '';
  let decoded: string;
  try {
    decoded = decodeURIComponent(pathname);
  } catch {
    return false;
  }
  return !decoded.split('/').some((segment) => segment === '..' || segment === '.') && !decoded.includes('\\');
}

export async function startModelProxy(socketPath: string, options: ModelProxyOptions): Promise<ModelProxy> {
  const base = new URL(options.upstream);
  const send = base.protocol === 'https:' ? httpsRequest : httpRequest;
  const basePath = base.pathname.replace(/\/$/, '');

  const handle = (req: IncomingMessage, res: ServerResponse): void => {
    const path = req.url ?? '/';
    // The real credential goes only with API calls: never to another path of the endpoint's host.
    if (!isApiPath(path)) {
      res.writeHead(404, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: 'pincer model proxy forwards only /v1/ paths' } }),
      );
      req.resume();
      return;
    }
    options.onRequest?.(path);
    let agentGone = false;
    const upstreamReq = send(
      {
        protocol: base.protocol,
        hostname: base.hostname,
        port: base.port || undefined,
        method: req.method,
        path: basePath + path,
        headers: { ...forwardHeaders(req.headers, options.credential), host: base.host },
      },
      (upstreamRes) => {
        res.writeHead(upstreamRes.statusCode ?? 502, upstreamRes.headers);
        // A stream the endpoint cuts midway is cut here too: pipe() alone would leave the agent waiting forever.
        upstreamRes.on('error', (err) => {
          if (!agentGone) options.onError?.(err);
          res.destroy(err);
        });
        upstreamRes.pipe(res);
      },
    );
    // The agent gave up (its own timeout, or the sandbox is gone): so does the request upstream.
    res.on('close', () => {
      if (res.writableFinished) return;
      agentGone = true;
      upstreamReq.destroy();
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
    req.pipe(upstreamReq);
  };

  rmSync(socketPath, { force: true });
  const server: Server = createServer(handle);
  await listenUnix(server, socketPath);
  return {
    socketPath,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => {
          rmSync(socketPath, { force: true });
          resolve();
        });
      }),
  };
}

// An HTTP forwarder on loopback that can hold a response back after the server behind it answered: the
// window in which a platform has taken a message but the sender has not heard so (for crash tests).
// Clients may reach it under a tag (`urlFor(tag)`), so each exchange says which client made it.
import { EventEmitter } from 'node:events';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/** A request the server behind answered, whether or not its client was still there to hear it. */
export interface Exchange {
  tag: string | undefined;
  /** The path as forwarded (without the tag). */
  path: string;
  status: number;
  body: Buffer;
}

export interface DelayProxy {
  url: string;
  /** The proxy's address for one client: its exchanges carry `tag`. */
  urlFor(tag: string): string;
  /** Requests forwarded and not yet answered to their client (held ones included), whose path contains `pathPart`. */
  inFlight(pathPart: string): number;
  exchanges: Exchange[];
  /** Emits `hold` when an answer starts being held back. */
  events: EventEmitter<{ hold: [path: string] }>;
  close(): Promise<void>;
}

const TAGGED = /^\/_t\/([\w-]+)(\/.*)$/;

/**
 * Forwards every request to `target`; `holdMs(path)` says how long to keep the answer back once the target
 * gave it (0: pass it on at once). Like a network, it does not tell the target when a client goes away after
 * sending its whole request: the target finishes it, and the exchange is recorded.
 */
export async function startDelayProxy(target: string, holdMs: (path: string) => number): Promise<DelayProxy> {
  const upstream = new URL(target);
  const events = new EventEmitter<{ hold: [path: string] }>();
  const timers = new Set<NodeJS.Timeout>();
  const open = new Map<object, string>();
  const exchanges: Exchange[] = [];

  const server: Server = createServer((req, res) => {
    const tagged = TAGGED.exec(req.url ?? '/');
    const tag = tagged?.[1];
    const path = tagged?.[2] ?? req.url ?? '/';
    const token = {};
    open.set(token, path);
    const done = () => open.delete(token);
    const forwarded = request(
      { host: upstream.hostname, port: upstream.port, method: req.method, path, headers: req.headers },
      (answer) => {
        const chunks: Buffer[] = [];
        answer.on('data', (c: Buffer) => chunks.push(c));
        answer.on('end', () => {
          const body = Buffer.concat(chunks);
          const status = answer.statusCode ?? 502;
          exchanges.push({ tag, path, status, body });
          const reply = () => {
            done();
            if (res.destroyed) return;
            res.writeHead(status, answer.headers);
            res.end(body);
          };
          const ms = holdMs(path);
          if (ms <= 0 || res.destroyed) return reply();
          events.emit('hold', path);
          const timer = setTimeout(() => {
            timers.delete(timer);
            reply();
          }, ms);
          timers.add(timer);
        });
      },
    );
    forwarded.on('error', () => {
      done();
      if (!res.headersSent && !res.destroyed) res.writeHead(502).end();
    });
    res.on('close', done);
    // Only a request cut off before its end is dropped: the target never saw all of it.
    req.on('close', () => {
      if (!req.complete) forwarded.destroy();
    });
    req.pipe(forwarded);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const url = `http://127.0.0.1:${port}`;
  return {
    url,
    urlFor: (tag) => {
      if (!/^[\w-]+$/.test(tag)) throw new Error(`a proxy tag is letters, digits, _ and -: ${tag}`);
      return `${url}/_t/${tag}`;
    },
    inFlight: (pathPart) => [...open.values()].filter((p) => p.includes(pathPart)).length,
    exchanges,
    events,
    close: () =>
      new Promise((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

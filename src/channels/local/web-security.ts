// Which requests come from pincer's own page: the Host a request names, and the Origin a browser adds.

import type { FastifyRequest } from 'fastify';
import ipaddr from 'ipaddr.js';

/** Requests that change nothing; a cookie alone authorizes only these from another origin's page (none, given SameSite). */
export const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

function hostname(host: string): string {
  // "[::1]:7477" → "::1", "localhost:7477" → "localhost"
  const bracketed = /^\[([^\]]+)\](?::\d+)?$/.exec(host);
  if (bracketed?.[1]) return bracketed[1];
  return host.replace(/:\d+$/, '').toLowerCase();
}

/**
 * DNS rebinding: a foreign site whose name resolves to 127.0.0.1 reaches this port with its own name as
 * Host. IP addresses and localhost cannot be rebound; other names must be listed (PINCER_ALLOWED_HOSTS).
 */
export function hostAllowed(hostHeader: string | undefined, allowed: readonly string[]): boolean {
  if (!hostHeader) return false;
  const name = hostname(hostHeader);
  if (ipaddr.isValid(name)) return true;
  return name === 'localhost' || name.endsWith('.localhost') || allowed.includes(name);
}

/** Answers remembered per Host header value; bounded, as a client may send any. */
const HOST_MEMO_SIZE = 64;

/**
 * hostAllowed for a fixed list, remembering its answers: every request repeats the same Host, and parsing it
 * (regular expressions, an IP address check) was about 1% of pincer's CPU under a load of small requests.
 */
export function hostCheck(allowed: readonly string[]): (hostHeader: string | undefined) => boolean {
  const memo = new Map<string, boolean>();
  return (hostHeader) => {
    if (!hostHeader) return false;
    let ok = memo.get(hostHeader);
    if (ok === undefined) {
      ok = hostAllowed(hostHeader, allowed);
      if (memo.size >= HOST_MEMO_SIZE) memo.clear();
      memo.set(hostHeader, ok);
    }
    return ok;
  };
}

/** Whether the browser says the request comes from a page served by this very host (http, or https behind a proxy). */
export function sameOrigin(req: FastifyRequest): boolean {
  const origin = req.headers.origin;
  const host = req.headers.host;
  if (!origin || !host) return false;
  return origin === `http://${host}` || origin === `https://${host}`;
}

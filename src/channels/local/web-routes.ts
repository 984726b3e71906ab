// The web page: its files, logging in (the API token, or a one-time link) and out, and the headers that
// keep the page to itself. What the page shows comes from the JSON API; live changes from live.ts.
import { readdirSync, readFileSync } from 'node:fs';
import { extname, join, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { SESSION_COOKIE, SESSION_DAYS, type WebAuth } from './web-auth.js';
import { sameOrigin } from './web-security.js';

/** The page's files, next to src/ and dist/ alike. */
const WEB_DIR = fileURLToPath(new URL('../../../web/', import.meta.url));

const CONTENT_TYPES: Record<string, string> = {
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
};

/** No inline script or style anywhere, no framing, no third party: injected text has nowhere to run. */
const CONTENT_SECURITY_POLICY =
  "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
  "frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/** Reached from a one-time link: the cookie is set, and a same-site step to the page lets SameSite=Strict send it. */
const ENTER_PAGE =
  '<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="0;url=/"><title>pincer</title><a href="/">Continue to pincer</a>\n';

interface Asset {
  body: Buffer;
  type: string;
}

/** Every file the page may load, read once into a fixed map: no request path ever reaches the file system. */
function loadAssets(): Map<string, Asset> {
  const assets = new Map<string, Asset>();
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      const type = CONTENT_TYPES[extname(entry.name)];
      if (entry.isFile() && type && !entry.name.endsWith('.d.ts'))
        assets.set(`/assets/${relative(WEB_DIR, path).split(sep).join('/')}`, { body: readFileSync(path), type });
    }
  };
  walk(WEB_DIR);
  // The markdown parser, served as the ES module it ships as.
  assets.set('/assets/vendor/marked.js', {
    body: readFileSync(fileURLToPath(import.meta.resolve('marked'))),
    type: CONTENT_TYPES['.js'] ?? '',
  });
  return assets;
}

export interface WebRouteDeps {
  auth: WebAuth;
  /** Where the token lives, for the login page's error. */
  tokenHint: string;
  /** A session logged out: its live connections end too. */
  onLogout(sessionKey: string): void;
}

const loginBody = z.strictObject({ token: z.string().min(1).max(512) });
const loginQuery = z.object({ code: z.string().min(1).max(128).optional() });

export function cookieOptions() {
  return { httpOnly: true, sameSite: 'strict', path: '/', maxAge: SESSION_DAYS * 24 * 3600 } as const;
}

export function registerWebRoutes(app: FastifyInstance, deps: WebRouteDeps): void {
  const assets = loadAssets();
  const page = (name: string) => readFileSync(join(WEB_DIR, name));
  const indexPage = page('index.html');
  const loginPage = page('login.html');
  const loggedIn = (req: FastifyRequest) => deps.auth.isValid(req.cookies[SESSION_COOKIE]);
  const sendPage = (reply: FastifyReply, body: Buffer | string) =>
    reply.header('cache-control', 'no-store').type('text/html; charset=utf-8').send(body);

  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-security-policy', CONTENT_SECURITY_POLICY);
    reply.header('x-content-type-options', 'nosniff');
    reply.header('x-frame-options', 'DENY');
    // A login link's code must not travel on in a Referer.
    reply.header('referrer-policy', 'no-referrer');
    reply.header('cross-origin-opener-policy', 'same-origin');
    return payload;
  });

  app.get('/', async (req, reply) => (loggedIn(req) ? sendPage(reply, indexPage) : reply.redirect('/login')));

  app.get('/login', async (req, reply) => {
    const { code } = loginQuery.safeParse(req.query).data ?? {};
    if (code === undefined) return loggedIn(req) ? reply.redirect('/') : sendPage(reply, loginPage);
    const session = deps.auth.redeem(code);
    if (!session) return reply.redirect('/login?expired=1');
    reply.setCookie(SESSION_COOKIE, session, cookieOptions());
    return sendPage(reply, ENTER_PAGE);
  });

  app.post('/login', async (req, reply) => {
    if (req.headers.origin !== undefined && !sameOrigin(req)) return reply.code(403).send({ error: 'cross-origin login refused' });
    const parsed = loginBody.safeParse(req.body);
    if (!parsed.success) return reply.code(400).send({ error: 'send {"token": "…"} as JSON' });
    const session = deps.auth.login(parsed.data.token);
    if (!session) return reply.code(401).send({ error: `wrong token: it is in ${deps.tokenHint}` });
    reply.setCookie(SESSION_COOKIE, session, cookieOptions());
    return { ok: true };
  });

  app.post('/logout', async (req, reply) => {
    if (!sameOrigin(req)) return reply.code(403).send({ error: 'cross-origin logout refused' });
    const session = req.cookies[SESSION_COOKIE];
    if (session) {
      deps.onLogout(deps.auth.sessionKey(session));
      deps.auth.logout(session);
    }
    reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return reply.code(204).send();
  });

  app.get('/assets/*', async (req, reply) => {
    const asset = assets.get(req.url.split('?')[0] ?? '');
    if (!asset) return reply.code(404).send({ error: `no asset ${req.url.split('?')[0]}` });
    return reply.header('cache-control', 'no-cache').type(asset.type).send(asset.body);
  });
}

// Each configured messenger: its credentials, and a real, cheap call that proves them (nothing is sent to
// anyone, no update is consumed). A failing channel is an error: that channel cannot work.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';
import { loadBaileys } from '../../channels/whatsapp.js';
import type { ChannelConfig } from '../../config.js';
import { type Check, fail, ok, oneLine, since, warn } from './check.js';

const TIMEOUT_MS = 5_000;

interface Reply {
  status: number;
  json: Record<string, unknown> | undefined;
  ms: number;
}

async function call(url: string, init: RequestInit): Promise<Reply> {
  const started = performance.now();
  const res = await fetch(url, { ...init, signal: AbortSignal.timeout(TIMEOUT_MS) });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (typeof v === 'object' && v !== null && !Array.isArray(v)) json = v as Record<string, unknown>;
  } catch {
    // not JSON: judged by status
  }
  return { status: res.status, json, ms: since(started) };
}

/** A network failure in words, with any secret that might be in it blanked. */
function unreachable(err: unknown, ...secrets: string[]): string {
  let text = (err as Error)?.name === 'TimeoutError' ? `no answer within ${TIMEOUT_MS / 1000} s` : oneLine(err);
  for (const s of secrets) if (s) text = text.replaceAll(s, '<token>');
  return text;
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined);

export async function telegramCheck(c: NonNullable<ChannelConfig['telegram']>): Promise<Check> {
  const botFather = 'get the current token from @BotFather (/mybots → your bot → API Token) and set TELEGRAM_BOT_TOKEN to it';
  if (!/^\d+:[A-Za-z0-9_-]+$/.test(c.token)) {
    return fail('telegram', 'TELEGRAM_BOT_TOKEN does not look like a bot token (123456789:AAE…)', botFather);
  }
  let r: Reply;
  try {
    r = await call(`${c.apiRoot}/bot${c.token}/getMe`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  } catch (err) {
    return fail(
      'telegram',
      `cannot reach ${c.apiRoot}: ${unreachable(err, c.token)}`,
      'check the network (and TELEGRAM_API_ROOT, if you set it)',
    );
  }
  const result = r.json?.result as Record<string, unknown> | undefined;
  if (r.status === 200 && r.json?.ok === true && result) {
    return ok('telegram', `bot @${str(result.username) ?? '?'} (id ${str(result.id) ?? '?'}) answers getMe in ${r.ms} ms`, r.ms);
  }
  const description = str(r.json?.description) ?? `HTTP ${r.status}`;
  if (r.status === 401 || r.status === 404) {
    return fail('telegram', `Telegram refused TELEGRAM_BOT_TOKEN (${description}): it is wrong or was revoked`, botFather);
  }
  return fail('telegram', `getMe failed (${description})`, `check TELEGRAM_API_ROOT (now ${c.apiRoot}) and try again`);
}

const SLACK_DOC = 'docs/channels/slack.md';

export async function slackCheck(c: NonNullable<ChannelConfig['slack']>): Promise<Check> {
  const base = c.apiUrl.endsWith('/') ? c.apiUrl : `${c.apiUrl}/`;
  const slack = (method: string, token: string) =>
    call(new URL(method, base).href, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: '',
    });
  let auth: Reply;
  try {
    auth = await slack('auth.test', c.botToken);
  } catch (err) {
    return fail(
      'slack',
      `cannot reach ${base}: ${unreachable(err, c.botToken, c.appToken)}`,
      'check the network (and SLACK_API_URL, if you set it)',
    );
  }
  if (auth.json?.ok !== true) {
    const code = str(auth.json?.error) ?? `HTTP ${auth.status}`;
    return fail(
      'slack',
      `Slack refused SLACK_BOT_TOKEN (auth.test: ${code})`,
      `${c.botToken.startsWith('xoxb-') ? 'it is wrong or was revoked' : 'it must be the Bot User OAuth Token (xoxb-…)'}: copy it from your app's OAuth & Permissions page (${SLACK_DOC})`,
    );
  }
  let socket: Reply;
  try {
    // Only asks for a Socket Mode address; nothing connects to it.
    socket = await slack('apps.connections.open', c.appToken);
  } catch (err) {
    return fail('slack', `cannot reach ${base}: ${unreachable(err, c.botToken, c.appToken)}`, 'check the network');
  }
  if (socket.json?.ok !== true) {
    const code = str(socket.json?.error) ?? `HTTP ${socket.status}`;
    return fail(
      'slack',
      `the bot token works, but Slack refused SLACK_APP_TOKEN (apps.connections.open: ${code})`,
      `SLACK_APP_TOKEN must be an app-level token (xapp-…) with connections:write, and Socket Mode must be on: Basic Information → App-Level Tokens (${SLACK_DOC})`,
    );
  }
  const ms = auth.ms + socket.ms;
  return ok('slack', `bot ${str(auth.json.user) ?? '?'} in ${str(auth.json.team) ?? '?'}; Socket Mode token accepted (${ms} ms)`, ms);
}

/** Application flags: message content may be read (verified bots, and bots in under 100 servers). */
const MESSAGE_CONTENT_FLAGS = (1 << 18) | (1 << 19);

export async function discordCheck(c: NonNullable<ChannelConfig['discord']>): Promise<Check> {
  const portal = 'Discord Developer Portal → your application → Bot';
  const get = (path: string) => call(`${c.apiUrl}/v10${path}`, { headers: { authorization: `Bot ${c.token}` } });
  let me: Reply;
  try {
    me = await get('/users/@me');
  } catch (err) {
    return fail(
      'discord',
      `cannot reach ${c.apiUrl}: ${unreachable(err, c.token)}`,
      'check the network (and DISCORD_API_URL, if you set it)',
    );
  }
  if (me.status === 401) {
    return fail(
      'discord',
      'Discord refused DISCORD_BOT_TOKEN (401 Unauthorized): it is wrong or was reset',
      `${portal} → Reset Token, and set DISCORD_BOT_TOKEN to the new one (docs/channels/discord.md)`,
    );
  }
  if (me.status !== 200 || !me.json) {
    return fail(
      'discord',
      `GET /users/@me failed (HTTP ${me.status}${str(me.json?.message) ? `: ${str(me.json?.message)}` : ''})`,
      'try again later',
    );
  }
  const bot = `${str(me.json.username) ?? '?'} (id ${str(me.json.id) ?? '?'})`;
  // The gateway refuses pincer's intents without Message Content: worth saying before it happens.
  try {
    const app = await get('/applications/@me');
    const flags = typeof app.json?.flags === 'number' ? app.json.flags : undefined;
    if (app.status === 200 && flags !== undefined && (flags & MESSAGE_CONTENT_FLAGS) === 0) {
      return fail(
        'discord',
        `bot ${bot} is accepted, but the Message Content Intent is off: Discord would refuse the connection (close 4014)`,
        `${portal} → Privileged Gateway Intents → Message Content Intent on, save (docs/channels/discord.md)`,
      );
    }
  } catch {
    // Only a hint: the token itself is proven.
  }
  return ok('discord', `bot ${bot} accepted in ${me.ms} ms`, me.ms);
}

class RpcError extends Error {
  constructor(
    readonly code: number,
    message: string,
  ) {
    super(message);
  }
}

function rpcOutcome(v: unknown, id: string): { result: unknown } | { error: RpcError } | undefined {
  if (typeof v !== 'object' || v === null) return undefined;
  const m = v as { id?: unknown; result?: unknown; error?: { code?: unknown; message?: unknown } };
  if (m.id !== id) return undefined;
  if (m.error) return { error: new RpcError(Number(m.error.code ?? 0), String(m.error.message ?? 'error')) };
  return { result: m.result };
}

/** One JSON-RPC call on `daemon --tcp`; this connection unsubscribes from incoming messages first, so none is handed to doctor. */
function tcpCall(host: string, port: number, method: string, params: Record<string, unknown>): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => socket.destroy(new Error(`no answer within ${TIMEOUT_MS / 1000} s`)), TIMEOUT_MS);
    let buf = '';
    let settled = false;
    const done = (fn: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      fn();
    };
    socket.setEncoding('utf8');
    socket.on('connect', () => {
      socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: 'doctor-unsub', method: 'unsubscribeReceive', params: {} })}\n`);
      socket.write(`${JSON.stringify({ jsonrpc: '2.0', id: 'doctor', method, params })}\n`);
    });
    socket.on('data', (chunk: string) => {
      buf += chunk;
      for (let nl = buf.indexOf('\n'); nl !== -1; nl = buf.indexOf('\n')) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (!line) continue;
        let outcome: ReturnType<typeof rpcOutcome>;
        try {
          outcome = rpcOutcome(JSON.parse(line), 'doctor');
        } catch {
          continue;
        }
        if (!outcome) continue;
        if ('error' in outcome) done(() => reject(outcome.error));
        else done(() => resolve(outcome.result));
      }
    });
    socket.on('error', (err) => done(() => reject(err)));
    socket.on('close', () => done(() => reject(new Error('signal-cli closed the connection'))));
  });
}

async function httpCall(base: URL, method: string, params: Record<string, unknown>): Promise<unknown> {
  const check = await call(new URL('api/v1/check', base).href, {});
  if (check.status !== 200) throw new Error(`GET /api/v1/check answered HTTP ${check.status}: is this signal-cli's daemon --http?`);
  const r = await call(new URL('api/v1/rpc', base).href, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 'doctor', method, params }),
  });
  const outcome = rpcOutcome(r.json, 'doctor');
  if (!outcome) throw new Error(`signal-cli answered ${method} with HTTP ${r.status} and no JSON-RPC response`);
  if ('error' in outcome) throw outcome.error;
  return outcome.result;
}

export async function signalCheck(c: NonNullable<ChannelConfig['signal']>): Promise<Check> {
  const daemon = `signal-cli -a ${c.account} daemon --http 127.0.0.1:8080 --no-receive-stdout`;
  let url: URL;
  try {
    url = new URL(c.url);
  } catch {
    return fail('signal', `SIGNAL_CLI_URL ${c.url} is not a URL`, 'use http://host:port (daemon --http) or tcp://host:port (daemon --tcp)');
  }
  const started = performance.now();
  let result: unknown;
  try {
    const params = { account: c.account };
    if (url.protocol === 'tcp:') {
      const port = Number(url.port);
      if (!url.hostname || !port) return fail('signal', `SIGNAL_CLI_URL ${c.url} needs a host and a port`, 'e.g. tcp://127.0.0.1:7583');
      result = await tcpCall(url.hostname.replace(/^\[|\]$/g, ''), port, 'listGroups', params);
    } else {
      result = await httpCall(new URL(url.href.endsWith('/') ? url.href : `${url.href}/`), 'listGroups', params);
    }
  } catch (err) {
    if (err instanceof RpcError && /account/i.test(err.message)) {
      return fail(
        'signal',
        `signal-cli at ${c.url} does not have the account ${c.account} (${err.message})`,
        `register or link it first (signal-cli -a ${c.account} register, or signal-cli link -n pincer: docs/channels/signal.md), then run the daemon for it: ${daemon}`,
      );
    }
    if (err instanceof RpcError)
      return fail('signal', `signal-cli answered listGroups with an error: ${err.message}`, 'see docs/channels/signal.md');
    return fail(
      'signal',
      `signal-cli is not reachable at ${c.url}: ${unreachable(err)}`,
      `start its daemon: ${daemon} (docs/channels/signal.md), or set SIGNAL_CLI_URL to where it listens`,
    );
  }
  const ms = since(started);
  const groups = Array.isArray(result) ? `${result.length} group(s)` : 'groups listed';
  return ok('signal', `signal-cli at ${c.url} has ${c.account} (${groups}) in ${ms} ms`, ms);
}

export async function whatsappCheck(home: string): Promise<Check> {
  const authDir = join(home, 'whatsapp-auth');
  const login = `stop pincer, run \`npx pincer whatsapp login\` and scan the QR code in WhatsApp → Linked devices (docs/channels/whatsapp.md)`;
  try {
    await loadBaileys();
  } catch (err) {
    return fail(
      'whatsapp',
      `the WhatsApp library (baileys, an optional dependency) cannot be loaded: ${oneLine(err)}`,
      'run npm install again without --omit=optional (or --no-optional)',
    );
  }
  const credsPath = join(authDir, 'creds.json');
  if (!existsSync(credsPath)) return fail('whatsapp', `not linked yet: no login in ${authDir}`, login);
  let creds: { registered?: unknown; me?: { id?: unknown; name?: unknown } | null };
  try {
    creds = JSON.parse(readFileSync(credsPath, 'utf8')) as typeof creds;
  } catch (err) {
    return fail('whatsapp', `the login in ${authDir} cannot be read: ${oneLine(err)}`, login);
  }
  const me = typeof creds.me?.id === 'string' ? creds.me.id.split(/[:@]/)[0] : undefined;
  if (!me) return fail('whatsapp', `the login in ${authDir} is incomplete (linking never finished)`, login);
  const mode = statSync(authDir).mode & 0o777;
  if (mode & 0o077) {
    return warn(
      'whatsapp',
      `linked as ${me}, but ${authDir} is mode 0${mode.toString(8)}: the login is the key to the account`,
      `chmod 700 ${authDir}`,
    );
  }
  if (creds.registered !== true) {
    // pincer's channel starts only on a login baileys marks registered, which only a pairing-code link does.
    return fail(
      'whatsapp',
      `linked as ${me}, but the login is not marked registered (creds.registered): pincer's WhatsApp channel refuses to start on it`,
      `link again with a pairing code, which marks it: stop pincer, npx pincer whatsapp login --pairing-code <your number with country code>`,
    );
  }
  // A connection would push pincer's own off (one login, one client): the login's presence is what is checked.
  return ok('whatsapp', `linked as ${me} (login in ${authDir}; the connection itself is made at start)`);
}

export async function channelChecks(channels: ChannelConfig, home: string): Promise<Check[]> {
  const names = Object.keys(channels);
  const summary = ok(
    'channels',
    `local${names.length ? `, ${names.join(', ')}` : " only (set a messenger's credentials to enable it: docs/CHANNELS.md)"}`,
  );
  const pending: Array<Promise<Check>> = [];
  if (channels.telegram) pending.push(telegramCheck(channels.telegram));
  if (channels.slack) pending.push(slackCheck(channels.slack));
  if (channels.discord) pending.push(discordCheck(channels.discord));
  if (channels.signal) pending.push(signalCheck(channels.signal));
  if (channels.whatsapp) pending.push(whatsappCheck(home));
  return [summary, ...(await Promise.all(pending))];
}

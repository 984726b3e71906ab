// A fake Slack on loopback speaking the real wire protocol, for driving @slack/bolt in Socket Mode: the Web API
// (`POST /api/<method>`, form-encoded, `{ok, …}` answers, 429 with Retry-After), apps.connections.open handing out
// a WebSocket URL, the Socket Mode socket (`hello`, `events_api` envelopes acked by envelope_id, redelivery of
// unacked envelopes on the next connection), the external file upload flow, and private file downloads.
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type WebSocket, WebSocketServer } from 'ws';

export interface SlackCall {
  method: string;
  params: Record<string, string>;
  token: string | undefined;
  at: number;
}

export interface PostedMessage {
  channel: string;
  text: string;
  threadTs?: string;
  ts: string;
  at: number;
  file?: { id: string; name: string; data: Buffer };
  /** The name and picture it shows, when the app posted it under another name (chat:write.customize). */
  username?: string;
  iconEmoji?: string;
  iconUrl?: string;
}

export type Failure = { status: 429; retryAfter: number } | { status: number } | { error: string };

export interface FakeFile {
  id: string;
  name: string;
  mimetype: string;
  data: Buffer;
  /** The size the event claims (Slack's `size`); defaults to the real one. */
  declaredSize?: number;
  /** Serve without a content-length header (chunked), so only counting the bytes tells the size. */
  chunked?: boolean;
}

interface Envelope {
  id: string;
  payload: Record<string, unknown>;
  retryAttempt: number;
  sent: boolean;
}

export interface FakeSlack {
  /** `http://127.0.0.1:P/api/`: SLACK_API_URL. */
  apiUrl: string;
  origin: string;
  port: number;
  botToken: string;
  appToken: string;
  botUserId: string;
  botId: string;
  calls: SlackCall[];
  posted: PostedMessage[];
  acked: Set<string>;
  users: Map<string, { name: string; realName?: string; displayName?: string }>;
  channels: Map<string, { name?: string; isIm?: boolean }>;
  /** WebSocket connections accepted so far. */
  connections(): number;
  isConnected(): boolean;
  /** A message timestamp, unique in this fake (Slack's `ts`: seconds.micro). */
  nextTs(): string;
  /** Delivers an `events_api` envelope (queued until a socket is there); returns its envelope id. */
  sendEvent(event: Record<string, unknown>, options?: { retryAttempt?: number }): string;
  /** Drops the socket: abruptly (no close frame), or as Slack does when it rotates connections. */
  dropSocket(how?: 'terminate' | 'disconnect-message'): void;
  /** The next call of `method` fails this way. */
  failNext(method: string, failure: Failure): void;
  /** Makes assistant.threads.setStatus answer this error from now on (undefined: succeed). */
  statusError: string | undefined;
  /**
   * The bot token's scopes, sent as Slack does in every Web API answer's `x-oauth-scopes` header (unless
   * `sendsScopes` is off). Without `chat:write.customize`, chat.postMessage's `username` and `icon_*` are
   * `ignored` (what apps report) or refused with `missing_scope`, as `withoutCustomize` says.
   */
  scopes: string[];
  sendsScopes: boolean;
  withoutCustomize: 'ignored' | 'missing_scope';
  addFile(file: FakeFile): Record<string, unknown>;
  /** Downloads of /files/… with their Authorization header. */
  downloads: Array<{ id: string; authorization: string | undefined }>;
  /** Resolves with `check()`'s first truthy value, re-checked on every request, post, ack and connection. */
  waitFor<T>(check: () => T | undefined | null | false, timeoutMs: number, what: string): Promise<T>;
  close(): Promise<void>;
}

export async function startFakeSlack(
  options: { botToken?: string; appToken?: string; botUserId?: string; botId?: string; teamId?: string; port?: number } = {},
): Promise<FakeSlack> {
  const botToken = options.botToken ?? 'xoxb-fake-bot-token';
  const appToken = options.appToken ?? 'xapp-fake-app-token';
  const botUserId = options.botUserId ?? 'UBOT';
  const botId = options.botId ?? 'BBOT';
  const teamId = options.teamId ?? 'T0001';
  const changes = new EventEmitter();
  changes.setMaxListeners(0);
  const changed = () => changes.emit('change');

  const calls: SlackCall[] = [];
  const posted: PostedMessage[] = [];
  const acked = new Set<string>();
  const users = new Map<string, { name: string; realName?: string; displayName?: string }>();
  const channels = new Map<string, { name?: string; isIm?: boolean }>();
  const failures = new Map<string, Failure[]>();
  const files = new Map<string, FakeFile>();
  const uploads = new Map<string, { filename: string; data?: Buffer }>();
  const downloads: Array<{ id: string; authorization: string | undefined }> = [];
  const pending: Envelope[] = [];
  let socket: WebSocket | undefined;
  let connectionCount = 0;
  let seq = 0;
  let uploadSeq = 0;
  let envelopeSeq = 0;
  const base = Math.floor(Date.now() / 1000);
  const nextTs = () => `${base + Math.floor(++seq / 1000)}.${String(seq).padStart(6, '0')}`;

  const fake: FakeSlack = {
    apiUrl: '',
    origin: '',
    port: 0,
    botToken,
    appToken,
    botUserId,
    botId,
    calls,
    posted,
    acked,
    users,
    channels,
    statusError: undefined,
    scopes: ['chat:write', 'chat:write.customize', 'channels:history', 'users:read', 'files:read', 'files:write'],
    withoutCustomize: 'ignored',
    sendsScopes: true,
    downloads,
    connections: () => connectionCount,
    isConnected: () => socket !== undefined && socket.readyState === socket.OPEN,
    nextTs,
    sendEvent(event, opts = {}) {
      const id = `env-${++envelopeSeq}`;
      const payload = {
        token: 'verification-token',
        team_id: teamId,
        api_app_id: 'A0001',
        event: { event_ts: event.ts, ...event },
        type: 'event_callback',
        event_id: `Ev${String(event.ts ?? envelopeSeq).replace('.', '')}`,
        event_time: base,
        authorizations: [{ enterprise_id: null, team_id: teamId, user_id: botUserId, is_bot: true, is_enterprise_install: false }],
        is_ext_shared_channel: false,
      };
      const envelope: Envelope = { id, payload, retryAttempt: opts.retryAttempt ?? 0, sent: false };
      pending.push(envelope);
      flush();
      return id;
    },
    dropSocket(how = 'terminate') {
      if (!socket) return;
      if (how === 'terminate') socket.terminate();
      else socket.send(JSON.stringify({ type: 'disconnect', reason: 'refresh_requested', debug_info: { host: 'fake' } }));
    },
    failNext(method, failure) {
      failures.set(method, [...(failures.get(method) ?? []), failure]);
    },
    addFile(file) {
      files.set(file.id, file);
      const url = `${fake.origin}/files/${file.id}/${encodeURIComponent(file.name)}`;
      return {
        id: file.id,
        name: file.name,
        title: file.name,
        mimetype: file.mimetype,
        filetype: file.name.split('.').pop(),
        size: file.declaredSize ?? file.data.length,
        mode: 'hosted',
        url_private: url,
        url_private_download: `${url}?download=1`,
      };
    },
    waitFor(check, timeoutMs, what) {
      return new Promise((resolve, reject) => {
        const test = () => {
          const value = check();
          if (value) {
            done();
            resolve(value);
          }
        };
        const timer = setTimeout(() => {
          done();
          reject(new Error(`fake slack: timed out after ${timeoutMs} ms waiting for ${what}`));
        }, timeoutMs);
        const done = () => {
          clearTimeout(timer);
          changes.off('change', test);
        };
        changes.on('change', test);
        test();
      });
    },
    close: async () => {
      socket?.terminate();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };

  /** Sends what is pending; an envelope sent before and not acked goes again as a retry (as Slack does). */
  function flush(): void {
    if (!socket || socket.readyState !== socket.OPEN) return;
    for (const envelope of pending) {
      if (envelope.sent) continue;
      envelope.sent = true;
      socket.send(
        JSON.stringify({
          envelope_id: envelope.id,
          payload: envelope.payload,
          type: 'events_api',
          accepts_response_payload: false,
          retry_attempt: envelope.retryAttempt,
          retry_reason: envelope.retryAttempt > 0 ? 'timeout' : '',
        }),
      );
    }
  }

  const wss = new WebSocketServer({ noServer: true });
  wss.on('connection', (ws) => {
    connectionCount++;
    socket?.terminate();
    socket = ws;
    // What a previous socket took but never acked comes again on the new one.
    for (const envelope of pending) {
      if (envelope.sent) {
        envelope.sent = false;
        envelope.retryAttempt++;
      }
    }
    ws.on('message', (data) => {
      let parsed: unknown;
      try {
        parsed = JSON.parse(String(data));
      } catch {
        return;
      }
      const id = typeof parsed === 'object' && parsed !== null && 'envelope_id' in parsed ? parsed.envelope_id : undefined;
      if (typeof id === 'string') {
        acked.add(id);
        const at = pending.findIndex((e) => e.id === id);
        if (at >= 0) pending.splice(at, 1);
        changed();
      }
    });
    ws.on('close', () => {
      if (socket === ws) socket = undefined;
      changed();
    });
    ws.send(
      JSON.stringify({
        type: 'hello',
        num_connections: 1,
        debug_info: { host: 'fake-slack', build_number: 1, approximate_connection_time: 18060 },
        connection_info: { app_id: 'A0001' },
      }),
    );
    flush();
    changed();
  });

  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      handle(req, res, Buffer.concat(chunks)).catch((err: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ ok: false, error: 'fake_failure', detail: String(err) }));
      });
    });
  });
  server.on('upgrade', (req, sock, head) => {
    if (!req.url?.startsWith('/ws')) {
      sock.destroy();
      return;
    }
    wss.handleUpgrade(req, sock, head, (ws) => wss.emit('connection', ws, req));
  });

  const json = (res: ServerResponse, body: Record<string, unknown>, status = 200, headers: Record<string, string> = {}) => {
    const scopes = fake.sendsScopes ? { 'x-oauth-scopes': fake.scopes.join(',') } : {};
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', ...scopes, ...headers });
    res.end(JSON.stringify(body));
  };

  async function handle(req: IncomingMessage, res: ServerResponse, body: Buffer): Promise<void> {
    const url = new URL(req.url ?? '/', fake.origin);
    if (req.method === 'GET' && url.pathname.startsWith('/files/')) return serveFile(req, res, url);
    if (req.method === 'POST' && url.pathname.startsWith('/upload/')) return receiveUpload(req, res, url, body);
    if (req.method !== 'POST' || !url.pathname.startsWith('/api/')) return json(res, { ok: false, error: 'not_found' }, 404);
    const method = url.pathname.slice('/api/'.length);
    const params = await parseParams(req.headers['content-type'] ?? '', body);
    const auth = req.headers.authorization;
    const token = auth?.startsWith('Bearer ') ? auth.slice('Bearer '.length) : params.token;
    calls.push({ method, params, token, at: Date.now() });
    changed();
    const failure = failures.get(method)?.shift();
    if (failure) {
      if ('error' in failure) return json(res, { ok: false, error: failure.error });
      if (failure.status === 429 && 'retryAfter' in failure)
        return json(res, { ok: false, error: 'ratelimited' }, 429, { 'retry-after': String(failure.retryAfter) });
      return json(res, { ok: false, error: 'fake_http_error' }, failure.status);
    }
    if (method === 'apps.connections.open') {
      if (token !== appToken)
        return json(res, { ok: false, error: token?.startsWith('xoxb-') ? 'not_allowed_token_type' : 'invalid_auth' });
      return json(res, { ok: true, url: `ws://127.0.0.1:${fake.port}/ws?ticket=${connectionCount + 1}` });
    }
    if (token !== botToken) return json(res, { ok: false, error: 'invalid_auth' });
    switch (method) {
      case 'auth.test':
        return json(res, {
          ok: true,
          url: 'https://fake.slack.com/',
          team: 'Fake Team',
          user: 'andy',
          team_id: teamId,
          user_id: botUserId,
          bot_id: botId,
          is_enterprise_install: false,
        });
      case 'chat.postMessage': {
        if (!params.channel) return json(res, { ok: false, error: 'channel_not_found' });
        if (!params.text) return json(res, { ok: false, error: 'no_text' });
        // chat.postMessage's docs: past 40,000 characters Slack refuses the text (msg_too_long).
        if (params.text.length > 40_000) return json(res, { ok: false, error: 'msg_too_long' });
        // Authorship: `username`, `icon_emoji` (which wins over `icon_url`) need chat:write.customize.
        const customizes = params.username !== undefined || params.icon_emoji !== undefined || params.icon_url !== undefined;
        const mayCustomize = fake.scopes.includes('chat:write.customize');
        if (customizes && !mayCustomize && fake.withoutCustomize === 'missing_scope')
          return json(res, { ok: false, error: 'missing_scope', needed: 'chat:write.customize', provided: fake.scopes.join(',') });
        const face: Pick<PostedMessage, 'username' | 'iconEmoji' | 'iconUrl'> =
          customizes && mayCustomize
            ? {
                ...(params.username ? { username: params.username } : {}),
                ...(params.icon_emoji ? { iconEmoji: params.icon_emoji } : params.icon_url ? { iconUrl: params.icon_url } : {}),
              }
            : {};
        const ts = nextTs();
        posted.push({
          channel: params.channel,
          text: params.text,
          ts,
          at: Date.now(),
          ...(params.thread_ts ? { threadTs: params.thread_ts } : {}),
          ...face,
        });
        changed();
        return json(res, {
          ok: true,
          channel: params.channel,
          ts,
          message: {
            type: 'message',
            ...(face.username ? { subtype: 'bot_message', username: face.username } : { user: botUserId }),
            bot_id: botId,
            text: params.text,
            ts,
            thread_ts: params.thread_ts,
            ...(face.iconEmoji ? { icons: { emoji: face.iconEmoji } } : face.iconUrl ? { icons: { image_48: face.iconUrl } } : {}),
          },
        });
      }
      case 'users.info': {
        const user = params.user ? users.get(params.user) : undefined;
        if (!user || !params.user) return json(res, { ok: false, error: 'user_not_found' });
        return json(res, {
          ok: true,
          user: {
            id: params.user,
            team_id: teamId,
            name: user.name,
            real_name: user.realName ?? user.name,
            is_bot: false,
            profile: { display_name: user.displayName ?? '', real_name: user.realName ?? user.name },
          },
        });
      }
      case 'conversations.info': {
        const channel = params.channel ? channels.get(params.channel) : undefined;
        if (!channel || !params.channel) return json(res, { ok: false, error: 'channel_not_found' });
        return json(res, {
          ok: true,
          channel: { id: params.channel, name: channel.name, is_channel: !channel.isIm, is_im: channel.isIm ?? false },
        });
      }
      case 'assistant.threads.setStatus':
        if (fake.statusError) return json(res, { ok: false, error: fake.statusError });
        if (!params.channel_id || !params.thread_ts) return json(res, { ok: false, error: 'invalid_arguments' });
        return json(res, { ok: true });
      case 'files.getUploadURLExternal': {
        if (!params.filename || !params.length) return json(res, { ok: false, error: 'invalid_arguments' });
        const id = `F${String(++uploadSeq).padStart(6, '0')}`;
        uploads.set(id, { filename: params.filename });
        return json(res, { ok: true, upload_url: `${fake.origin}/upload/${id}`, file_id: id });
      }
      case 'files.completeUploadExternal': {
        const list = JSON.parse(params.files ?? '[]') as Array<{ id: string; title?: string }>;
        const completed = [];
        for (const entry of list) {
          const upload = uploads.get(entry.id);
          if (!upload?.data) return json(res, { ok: false, error: 'file_not_found' });
          if (params.channel_id) {
            posted.push({
              channel: params.channel_id,
              text: params.initial_comment ?? '',
              ts: nextTs(),
              at: Date.now(),
              file: { id: entry.id, name: upload.filename, data: upload.data },
              ...(params.thread_ts ? { threadTs: params.thread_ts } : {}),
            });
          }
          completed.push({ id: entry.id, name: upload.filename, title: entry.title ?? upload.filename });
        }
        changed();
        return json(res, { ok: true, files: completed });
      }
      default:
        return json(res, { ok: false, error: 'unknown_method' });
    }
  }

  async function receiveUpload(req: IncomingMessage, res: ServerResponse, url: URL, body: Buffer): Promise<void> {
    const id = url.pathname.slice('/upload/'.length);
    const upload = uploads.get(id);
    if (!upload) {
      res.writeHead(404);
      res.end();
      return;
    }
    const type = req.headers['content-type'] ?? '';
    if (type.startsWith('multipart/form-data')) {
      const form = await new Response(body, { headers: { 'content-type': type } }).formData();
      const part = [...form.values()].find((v): v is File => typeof v !== 'string');
      upload.data = part ? Buffer.from(await part.arrayBuffer()) : Buffer.alloc(0);
    } else {
      upload.data = body;
    }
    res.writeHead(200, { 'content-type': 'text/plain' });
    res.end(`OK - ${upload.data.length}`);
  }

  function serveFile(req: IncomingMessage, res: ServerResponse, url: URL): void {
    const id = url.pathname.split('/')[2] ?? '';
    const file = files.get(id);
    downloads.push({ id, authorization: req.headers.authorization });
    changed();
    if (!file) {
      res.writeHead(404);
      res.end();
      return;
    }
    // Slack answers an unauthorized file URL with its sign-in page, not with an error status.
    if (req.headers.authorization !== `Bearer ${botToken}`) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end('<!DOCTYPE html><html><body>Sign in to Slack</body></html>');
      return;
    }
    if (file.chunked) {
      res.writeHead(200, { 'content-type': file.mimetype });
      for (let at = 0; at < file.data.length; at += 64 * 1024) res.write(file.data.subarray(at, at + 64 * 1024));
      res.end();
      return;
    }
    res.writeHead(200, { 'content-type': file.mimetype, 'content-length': String(file.data.length) });
    res.end(file.data);
  }

  await new Promise<void>((resolve) => server.listen(options.port ?? 0, '127.0.0.1', resolve));
  fake.port = (server.address() as AddressInfo).port;
  fake.origin = `http://127.0.0.1:${fake.port}`;
  fake.apiUrl = `${fake.origin}/api/`;
  return fake;
}

async function parseParams(contentType: string, body: Buffer): Promise<Record<string, string>> {
  const params: Record<string, string> = {};
  if (contentType.startsWith('application/x-www-form-urlencoded')) {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) params[k] = v;
  } else if (contentType.startsWith('application/json')) {
    const parsed: unknown = JSON.parse(body.toString('utf8') || '{}');
    if (typeof parsed === 'object' && parsed !== null)
      for (const [k, v] of Object.entries(parsed)) params[k] = typeof v === 'string' ? v : JSON.stringify(v);
  } else if (contentType.startsWith('multipart/form-data')) {
    const form = await new Response(body, { headers: { 'content-type': contentType } }).formData();
    for (const [k, v] of form.entries()) if (typeof v === 'string') params[k] = v;
  }
  return params;
}

/** A user's message event as Slack sends it (`message` in a channel or DM, or `app_mention`). */
export function messageEvent(
  fake: FakeSlack,
  fields: {
    channel: string;
    user: string;
    text: string;
    channelType?: 'channel' | 'group' | 'im' | 'mpim';
    type?: 'message' | 'app_mention';
    ts?: string;
    threadTs?: string;
    parentUserId?: string;
    files?: Array<Record<string, unknown>>;
    subtype?: string;
    botId?: string;
  },
): Record<string, unknown> {
  const type = fields.type ?? 'message';
  return {
    type,
    ...(fields.subtype ? { subtype: fields.subtype } : fields.files ? { subtype: 'file_share' } : {}),
    user: fields.user,
    text: fields.text,
    ts: fields.ts ?? fake.nextTs(),
    channel: fields.channel,
    team: 'T0001',
    ...(type === 'message' ? { channel_type: fields.channelType ?? (fields.channel.startsWith('D') ? 'im' : 'channel') } : {}),
    ...(fields.threadTs ? { thread_ts: fields.threadTs, parent_user_id: fields.parentUserId ?? fields.user } : {}),
    ...(fields.files ? { files: fields.files, upload: false } : {}),
    ...(fields.botId ? { bot_id: fields.botId } : {}),
  };
}

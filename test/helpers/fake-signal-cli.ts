// A fake of signal-cli's JSON-RPC daemon on loopback, speaking both of its wire protocols at once:
// `daemon --tcp` (newline-delimited JSON-RPC 2.0 both ways, `receive` notifications on the same socket) and
// `daemon --http` (POST /api/v1/rpc, GET /api/v1/events as SSE with `event: receive` and ids, Last-Event-ID
// replay, GET /api/v1/check). Received messages that no client is connected for are kept until one connects,
// as the daemon's queue does. Sends answer per recipient; failures can be injected; connections can be dropped.
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from 'node:net';

export interface FakeGroup {
  id: string;
  name: string;
  members: string[];
}

export interface RpcCall {
  method: string;
  params: Record<string, unknown>;
  transport: 'tcp' | 'http';
  at: number;
}

/** One injected send failure: a recipient's result type, or the whole call answered with a JSON-RPC error. */
export type InjectedFailure =
  | { type: string; recipient?: string; retryAfterSeconds?: number; token?: string }
  | { rpcError: { code: number; message: string; data?: unknown } };

export interface DataMessageSpec {
  from: string;
  fromUuid?: string;
  name?: string;
  text?: string;
  timestamp?: number;
  group?: { id: string; name?: string };
  mentions?: Array<{ start: number; length?: number; number?: string; uuid?: string }>;
  attachments?: Array<{ id: string; contentType: string; filename?: string; size: number }>;
  quote?: { id: number; authorNumber?: string; authorUuid?: string; text?: string };
}

export interface TypingSpec {
  action?: 'STARTED' | 'STOPPED';
  /** The group it is typed in (its base64 id, as signal-cli writes it). */
  groupId?: string;
  fromUuid?: string;
}

export type Envelope = Record<string, unknown>;

export interface FakeSignalCli {
  account: string;
  accountUuid: string;
  tcpUrl: string;
  httpUrl: string;
  calls: RpcCall[];
  groups: FakeGroup[];
  /** Delivers a `receive` notification now to every connected client, or keeps it until one connects. */
  receive(envelope: Envelope): void;
  dataMessage(spec: DataMessageSpec): Envelope;
  /** Our own sent message as our other devices report it (a sync message). */
  syncEcho(text: string, to: string): Envelope;
  receipt(from: string, timestamps: number[]): Envelope;
  /** signal-cli's typing notification (`typingMessage`, with `groupId` when in a group); STARTED unless told. */
  typing(from: string, options?: TypingSpec): Envelope;
  /** Stores a file for getAttachment; returns what a data message lists for it. */
  addAttachment(data: Buffer, contentType: string, filename?: string): { id: string; contentType: string; filename?: string; size: number };
  /** Each next send consumes one. */
  failSends(...failures: InjectedFailure[]): void;
  /** Closes every TCP connection and SSE stream at once. */
  dropConnections(): void;
  /** While false, new connections are closed at once (TCP) or answered 503 (events): a daemon that is restarting. */
  setAccepting(on: boolean): void;
  connectedClients(): number;
  /** Notifications kept for lack of a connected client. */
  undelivered(): number;
  callsOf(method: string): RpcCall[];
  /** The first call (already made or to come) the predicate accepts. */
  waitForCall(predicate: (c: RpcCall) => boolean, timeoutMs?: number): Promise<RpcCall>;
  close(): Promise<void>;
}

interface RpcError {
  code: number;
  message: string;
  data?: unknown;
}

const TEXT_STYLES = new Set(['NONE', 'BOLD', 'ITALIC', 'SPOILER', 'STRIKETHROUGH', 'MONOSPACE']);

/**
 * signal-cli's `textStyle` is a list of "start:length:STYLE" (its `--text-style`), each a range of the message in
 * UTF-16 code units, as Signal's body ranges are: anything else is refused here, so a wrong offset fails a test.
 */
export function textStyleError(message: unknown, textStyle: unknown): string | undefined {
  if (textStyle === undefined) return undefined;
  if (!Array.isArray(textStyle)) return 'textStyle must be a list';
  const length = typeof message === 'string' ? message.length : 0;
  for (const entry of textStyle) {
    const [start, len, style, ...rest] = String(entry).split(':');
    const from = Number(start);
    const size = Number(len);
    if (rest.length > 0 || !Number.isInteger(from) || !Number.isInteger(size) || !TEXT_STYLES.has(style ?? ''))
      return `Invalid text style: ${String(entry)}`;
    if (from < 0 || size <= 0 || from + size > length)
      return `Text style ${String(entry)} is outside the message of ${length} UTF-16 code units`;
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export async function startFakeSignalCli(
  options: { account?: string; accountUuid?: string; groups?: FakeGroup[]; tcpPort?: number; httpPort?: number } = {},
): Promise<FakeSignalCli> {
  const account = options.account ?? '+15550000000';
  const accountUuid = options.accountUuid ?? '00000000-0000-4000-8000-00000000b07a';
  const groups: FakeGroup[] = options.groups ?? [];
  const calls: RpcCall[] = [];
  const waiters: Array<{ predicate: (c: RpcCall) => boolean; resolve: (c: RpcCall) => void }> = [];
  const attachments = new Map<string, Buffer>();
  const failures: InjectedFailure[] = [];
  const pending: string[] = [];
  const tcpClients = new Set<Socket>();
  const sseClients = new Set<ServerResponse>();
  const sseBuffer: Array<{ id: number; data: string }> = [];
  const sseRun = Date.now();
  let sseSeq = 0;
  let accepting = true;
  let lastTimestamp = 0;
  let attachmentSeq = 0;

  const timestamp = () => {
    lastTimestamp = Math.max(Date.now(), lastTimestamp + 1);
    return lastTimestamp;
  };

  const record = (call: RpcCall) => {
    calls.push(call);
    for (const w of [...waiters]) {
      if (w.predicate(call)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(call);
      }
    }
  };

  const writeSse = (res: ServerResponse, id: number, data: string) => res.write(`id:${sseRun}-${id}\nevent:receive\ndata:${data}\n\n`);

  /** `data` is the notification's params as JSON (the SSE payload); TCP wraps it as a JSON-RPC notification. */
  const deliver = (data: string) => {
    const id = ++sseSeq;
    sseBuffer.push({ id, data });
    if (sseBuffer.length > 1000) sseBuffer.shift();
    for (const s of tcpClients) s.write(`{"jsonrpc":"2.0","method":"receive","params":${data}}\n`);
    for (const res of sseClients) writeSse(res, id, data);
  };

  const flushPending = () => {
    while (pending.length > 0 && tcpClients.size + sseClients.size > 0) deliver(pending.shift() as string);
  };

  const recipientsOf = (params: Record<string, unknown>): { list: string[]; groupId?: string } | RpcError => {
    if (typeof params.groupId === 'string') {
      const group = groups.find((g) => g.id === params.groupId);
      if (!group) return { code: -1, message: `Group not found: ${params.groupId}` };
      return { list: group.members.filter((m) => m !== account), groupId: group.id };
    }
    const r = params.recipient;
    const list = Array.isArray(r) ? r.filter((x): x is string => typeof x === 'string') : typeof r === 'string' ? [r] : [];
    if (list.length === 0) return { code: -1, message: 'No recipients given' };
    return { list };
  };

  const results = (list: string[], groupId: string | undefined, failure?: InjectedFailure) =>
    list.map((recipient, i) => {
      const failed = failure && 'type' in failure && (failure.recipient ? failure.recipient === recipient : i === 0) ? failure : undefined;
      return {
        recipientAddress: recipient.startsWith('+') ? { uuid: null, number: recipient } : { uuid: recipient, number: null },
        ...(groupId ? { groupId } : {}),
        type: failed?.type ?? 'SUCCESS',
        ...(failed?.token ? { token: failed.token } : {}),
        ...(failed?.retryAfterSeconds !== undefined ? { retryAfterSeconds: failed.retryAfterSeconds } : {}),
      };
    });

  const handle = (req: unknown, transport: 'tcp' | 'http'): Record<string, unknown> | undefined => {
    if (!isRecord(req) || typeof req.method !== 'string') {
      return { jsonrpc: '2.0', error: { code: -32600, message: 'method field must be set', data: null }, id: null };
    }
    const id = req.id ?? null;
    const params = isRecord(req.params) ? req.params : {};
    const answer = (result: unknown) => ({ jsonrpc: '2.0', result, id });
    const fail = (e: RpcError) => ({ jsonrpc: '2.0', error: { code: e.code, message: e.message, data: e.data ?? null }, id });
    record({ method: req.method, params, transport, at: Date.now() });
    if (params.account !== undefined && params.account !== account)
      return fail({ code: -32602, message: 'Specified account does not exist' });
    switch (req.method) {
      case 'listGroups':
        return answer(groups.map((g) => ({ id: g.id, name: g.name, isMember: true, isBlocked: false, members: g.members })));
      case 'send': {
        const to = recipientsOf(params);
        if ('code' in to) return fail(to);
        if (typeof params.message !== 'string' && !Array.isArray(params.attachments)) {
          return fail({
            code: -1,
            message: 'Sending empty message is not allowed, either a message, attachment or sticker must be given.',
          });
        }
        const styleError = textStyleError(params.message, params.textStyle);
        if (styleError) return fail({ code: -32602, message: styleError });
        const failure = failures.shift();
        if (failure && 'rpcError' in failure) return fail(failure.rpcError);
        return answer({ timestamp: timestamp(), results: results(to.list, to.groupId, failure) });
      }
      case 'sendTyping':
      case 'sendReceipt': {
        const to = recipientsOf(params);
        if ('code' in to) return fail(to);
        return answer({ timestamp: timestamp(), results: results(to.list, to.groupId) });
      }
      case 'getAttachment': {
        const data = typeof params.id === 'string' ? attachments.get(params.id) : undefined;
        if (!data) return fail({ code: -3, message: `An error occurred reading attachment: ${String(params.id)}` });
        return answer({ data: data.toString('base64') });
      }
      default:
        return fail({ code: -32601, message: 'Method not implemented' });
    }
  };

  // ---- --tcp ----
  const tcp: Server = createTcpServer((socket) => {
    if (!accepting) {
      socket.destroy();
      return;
    }
    socket.setEncoding('utf8');
    tcpClients.add(socket);
    let buf = '';
    socket.on('data', (chunk: string) => {
      buf += chunk;
      let nl = buf.indexOf('\n');
      while (nl !== -1) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        nl = buf.indexOf('\n');
        if (!line) continue;
        let req: unknown;
        try {
          req = JSON.parse(line);
        } catch {
          socket.write(`${JSON.stringify({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error', data: null }, id: null })}\n`);
          continue;
        }
        const res = handle(req, 'tcp');
        if (res) socket.write(`${JSON.stringify(res)}\n`);
      }
    });
    socket.on('close', () => tcpClients.delete(socket));
    socket.on('error', () => {});
    flushPending();
  });

  // ---- --http ----
  const httpServer = createHttpServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '').split('?')[0];
    if (req.method === 'GET' && path === '/api/v1/check') {
      res.writeHead(200).end();
      return;
    }
    if (req.method === 'GET' && path === '/api/v1/events') {
      if (!accepting) {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('restarting');
        return;
      }
      res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
      res.write(':\n');
      const last = req.headers['last-event-id'];
      if (typeof last === 'string' && last.startsWith(`${sseRun}-`)) {
        const after = Number(last.slice(`${sseRun}-`.length));
        for (const ev of sseBuffer) if (ev.id > after) writeSse(res, ev.id, ev.data);
      }
      sseClients.add(res);
      res.on('close', () => sseClients.delete(res));
      flushPending();
      return;
    }
    if (req.method === 'POST' && path === '/api/v1/rpc') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        let body: unknown;
        try {
          body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
        } catch {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32700, message: 'Parse error', data: null }, id: null }));
          return;
        }
        const out = Array.isArray(body) ? body.map((b) => handle(b, 'http')) : handle(body, 'http');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(out));
      });
      return;
    }
    res.writeHead(404).end();
  });

  await new Promise<void>((resolve) => tcp.listen(options.tcpPort ?? 0, '127.0.0.1', resolve));
  await new Promise<void>((resolve) => httpServer.listen(options.httpPort ?? 0, '127.0.0.1', resolve));
  const tcpPort = (tcp.address() as AddressInfo).port;
  const httpPort = (httpServer.address() as AddressInfo).port;

  const dropConnections = () => {
    for (const s of tcpClients) s.destroy();
    tcpClients.clear();
    for (const res of sseClients) res.destroy();
    sseClients.clear();
  };

  return {
    account,
    accountUuid,
    tcpUrl: `tcp://127.0.0.1:${tcpPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    calls,
    groups,
    receive(envelope) {
      pending.push(JSON.stringify({ envelope, account }));
      flushPending();
    },
    dataMessage(spec) {
      const ts = spec.timestamp ?? timestamp();
      const data: Record<string, unknown> = { timestamp: ts, message: spec.text ?? null, expiresInSeconds: 0, viewOnce: false };
      if (spec.mentions) {
        data.mentions = spec.mentions.map((m) => ({
          name: m.number ?? m.uuid ?? null,
          number: m.number ?? null,
          uuid: m.uuid ?? null,
          start: m.start,
          length: m.length ?? 1,
        }));
      }
      if (spec.attachments) {
        data.attachments = spec.attachments.map((a) => ({
          ...a,
          filename: a.filename ?? null,
          width: null,
          height: null,
          caption: null,
          uploadTimestamp: null,
        }));
      }
      if (spec.quote) {
        data.quote = {
          id: spec.quote.id,
          author: spec.quote.authorNumber ?? spec.quote.authorUuid,
          authorNumber: spec.quote.authorNumber ?? null,
          authorUuid: spec.quote.authorUuid ?? null,
          text: spec.quote.text ?? '',
          attachments: [],
        };
      }
      if (spec.group) data.groupInfo = { groupId: spec.group.id, groupName: spec.group.name ?? null, revision: 1, type: 'DELIVER' };
      return {
        source: spec.from,
        sourceNumber: spec.from.startsWith('+') ? spec.from : null,
        sourceUuid: spec.fromUuid ?? (spec.from.startsWith('+') ? null : spec.from),
        sourceName: spec.name ?? null,
        sourceDevice: 1,
        timestamp: ts,
        serverReceivedTimestamp: ts + 5,
        serverDeliveredTimestamp: ts + 9,
        dataMessage: data,
      };
    },
    syncEcho(text, to) {
      const ts = timestamp();
      return {
        source: account,
        sourceNumber: account,
        sourceUuid: accountUuid,
        sourceName: null,
        sourceDevice: 2,
        timestamp: ts,
        syncMessage: {
          sentMessage: { destination: to, destinationNumber: to, timestamp: ts, message: text, expiresInSeconds: 0, viewOnce: false },
        },
      };
    },
    receipt(from, timestamps) {
      const ts = timestamp();
      return {
        source: from,
        sourceNumber: from,
        sourceDevice: 1,
        timestamp: ts,
        receiptMessage: { when: ts, isDelivery: true, isRead: false, isViewed: false, timestamps },
      };
    },
    typing(from, spec = {}) {
      const ts = timestamp();
      return {
        source: from,
        sourceNumber: from.startsWith('+') ? from : null,
        sourceUuid: spec.fromUuid ?? (from.startsWith('+') ? null : from),
        sourceName: null,
        sourceDevice: 1,
        timestamp: ts,
        serverReceivedTimestamp: ts + 5,
        serverDeliveredTimestamp: ts + 9,
        // JsonTypingMessage: groupId is left out (not null) outside a group.
        typingMessage: { action: spec.action ?? 'STARTED', timestamp: ts, ...(spec.groupId ? { groupId: spec.groupId } : {}) },
      };
    },
    addAttachment(data, contentType, filename) {
      const id = `att${++attachmentSeq}${filename?.includes('.') ? `.${filename.split('.').pop()}` : ''}`;
      attachments.set(id, data);
      return { id, contentType, ...(filename ? { filename } : {}), size: data.length };
    },
    failSends(...f) {
      failures.push(...f);
    },
    dropConnections,
    setAccepting(on) {
      accepting = on;
    },
    connectedClients: () => tcpClients.size + sseClients.size,
    undelivered: () => pending.length,
    callsOf: (method) => calls.filter((c) => c.method === method),
    waitForCall(predicate, timeoutMs = 10_000) {
      const found = calls.find(predicate);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const waiter = {
          predicate,
          resolve: (c: RpcCall) => {
            clearTimeout(timer);
            resolve(c);
          },
        };
        const timer = setTimeout(() => {
          waiters.splice(waiters.indexOf(waiter), 1);
          reject(new Error(`no matching signal-cli call within ${timeoutMs} ms (calls: ${calls.map((c) => c.method).join(',')})`));
        }, timeoutMs);
        waiters.push(waiter);
      });
    },
    async close() {
      dropConnections();
      httpServer.closeAllConnections();
      await Promise.all([
        new Promise<void>((resolve) => tcp.close(() => resolve())),
        new Promise<void>((resolve) => httpServer.close(() => resolve())),
      ]);
    },
  };
}

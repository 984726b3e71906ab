// Starts a real pincer (in this process) against the scripted fake model, on loopback, in a temp home.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export type { ApiMessage } from '../../src/cli/api-client.js';

import type { Channel } from '../../src/channels/types.js';
import type { ApiMessage } from '../../src/cli/api-client.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import type { EgressTestSeam } from '../../src/proxy/egress-proxy.js';
import { BwrapRuntime } from '../../src/sandbox/bwrap.js';
import { type Pincer, startPincer } from '../../src/service/app.js';
import { type FakeModel, type ModelScript, startFakeModel } from './fake-model.js';

export const REAL_KEY = 'sk-ant-test-REAL-KEY-never-in-sandbox';
/** The API token of every harness pincer. */
export const HARNESS_TOKEN = 'test-token-0123456789';

export interface Harness {
  pincer: Pincer;
  fake: FakeModel;
  home: string;
  base: string;
  request(method: string, path: string, body?: unknown, token?: string | null): Promise<{ status: number; body: Record<string, unknown> }>;
  send(chat: string, text: string, sender?: string): Promise<string>;
  /** Waits (long-polling the API) for the next assistant message in a chat after a message id. */
  reply(chat: string, after: string, timeoutMs?: number): Promise<ApiMessage>;
  messages(chat: string, after?: string): Promise<ApiMessage[]>;
  stop(): Promise<void>;
}

/** Why the sandbox tests cannot run here, or undefined when they can. */
export async function sandboxUnavailable(): Promise<string | undefined> {
  const dir = mkdtempSync(join(tmpdir(), 'pincer-probe-'));
  try {
    const probe = await new BwrapRuntime({ stateDir: dir, instance: 'probe' }).probe();
    return probe.ok ? undefined : `bubblewrap sandbox unavailable: ${probe.reason}`;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** `fake` and `home`, when given, belong to the caller: stop() leaves them alone (for restart tests). */
export async function startHarness(
  options: {
    script?: ModelScript;
    env?: Record<string, string>;
    fake?: FakeModel;
    home?: string;
    channels?: Channel[];
    egressTestSeam?: EgressTestSeam;
  } = {},
): Promise<Harness> {
  const fake = options.fake ?? (await startFakeModel(options.script));
  const home = options.home ?? mkdtempSync(join(tmpdir(), 'pincer-test-'));
  const config = loadConfig(
    {
      PINCER_HOME: home,
      PINCER_PORT: '0',
      PINCER_TOKEN: HARNESS_TOKEN,
      ANTHROPIC_API_KEY: REAL_KEY,
      ANTHROPIC_BASE_URL: fake.url,
      TZ: 'Europe/Berlin',
      PINCER_IDLE_TIMEOUT_SEC: '30',
      ...options.env,
    },
    home,
  );
  const pincer = await startPincer(config, createLogger(process.env.PINCER_TEST_LOG ?? 'silent'), {
    channels: options.channels ?? [],
    ...(options.egressTestSeam ? { egressTestSeam: options.egressTestSeam } : {}),
  });
  const base = `http://127.0.0.1:${pincer.local.port}`;
  const token = HARNESS_TOKEN;

  const request: Harness['request'] = async (method, path, body, tok = token) => {
    const headers: Record<string, string> = {};
    if (tok) headers.authorization = `Bearer ${tok}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const res = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body),
    });
    return { status: res.status, body: (await res.json()) as Record<string, unknown> };
  };

  const messages = async (chat: string, after = '0') => {
    const res = await request('GET', `/api/v1/messages?chat=${encodeURIComponent(chat)}&after=${after}`);
    return res.body.messages as ApiMessage[];
  };

  return {
    pincer,
    fake,
    home,
    base,
    request,
    messages,
    async send(chat, text, sender) {
      const res = await request('POST', '/api/v1/messages', { chat, text, ...(sender ? { sender } : {}) });
      if (res.status !== 202) throw new Error(`send failed: ${res.status} ${JSON.stringify(res.body)}`);
      return res.body.id as string;
    },
    async reply(chat, after, timeoutMs = 60_000) {
      const deadline = Date.now() + timeoutMs;
      let cursor = after;
      while (Date.now() < deadline) {
        const wait = Math.max(1, Math.min(10, Math.ceil((deadline - Date.now()) / 1000)));
        const res = await request('GET', `/api/v1/messages?chat=${encodeURIComponent(chat)}&after=${cursor}&wait=${wait}`);
        const page = res.body as { messages: ApiMessage[]; cursor: string };
        const found = page.messages.find((m) => m.fromAssistant);
        if (found) return found;
        cursor = page.cursor;
      }
      throw new Error(`no reply in ${chat} after ${after} within ${timeoutMs} ms`);
    },
    async stop() {
      await pincer.stop();
      if (!options.fake) await fake.close();
      if (!options.home) rmSync(home, { recursive: true, force: true });
      if (fake.unofferedCalls.length > 0)
        throw new Error(`the scripted model called tools its requests did not offer: ${[...new Set(fake.unofferedCalls)].join(', ')}`);
    },
  };
}

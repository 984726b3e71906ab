// pincer's ingest path in this process, wired as app.ts wires it (store → ingest → Dispatcher → GroupQueue, the
// message index following),
// on a temporary home. Its sandbox runtime starts agents that never answer (`sleep`): the first
// MAX_CONCURRENT_AGENTS groups get a lane that stays busy, every other group waits for a slot. That is pincer
// under load, every slot taken by a long turn, and it lets ingest and dispatch be driven fast and counted
// without thousands of sandboxes or any model.
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { InboundMessage, InboundSink } from '../../src/channels/types.js';
import { loadConfig } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { MessageIndexer } from '../../src/memory/message-indexer.js';
import type { Runtime } from '../../src/sandbox/types.js';
import { Budgets } from '../../src/service/budgets.js';
import { Control } from '../../src/service/control.js';
import { Dispatcher } from '../../src/service/dispatcher.js';
import { createIngest } from '../../src/service/ingest.js';
import { prepareState, type StateLayout } from '../../src/service/layout.js';
import { Store } from '../../src/store/index.js';

export interface Core {
  home: string;
  layout: StateLayout;
  store: Store;
  dispatcher: Dispatcher;
  /** Ingest that goes on to the dispatcher, as in pincer. */
  ingest: InboundSink;
  /** Ingest that only stores (its `onEngaged` counts): the store's share of the path. */
  storeOnly: InboundSink;
  /** Engaged messages handed to the dispatcher so far. */
  dispatched: number;
  close(): Promise<void>;
}

export interface CoreOptions {
  /** Called right after the dispatcher took an engaged message. */
  onDispatched?(chatId: string, seq: number): void;
  /** The full-text index following the store, as app.ts runs it (default); false: none, to measure its cost. */
  index?: boolean;
}

/** A runtime whose agents are alive and silent: the SDK waits for them until the lane is shut down. */
const silentRuntime: Runtime = {
  name: 'bwrap',
  probe: async () => ({ ok: true }),
  limits: () => ({
    memoryBytes: 'not enforced',
    pids: 'not enforced',
    cpuSeconds: 'not enforced',
    tmpBytes: 'not enforced',
    fileBytes: 'not enforced',
  }),
  cleanOrphans: async () => {},
  spawn: (): ChildProcessWithoutNullStreams => spawn('sleep', ['600'], { stdio: ['pipe', 'pipe', 'pipe'] }),
};

/** A chat id of group i, on a messenger (so that ingest does not join it on the fly as it does local chats). */
export const groupChat = (i: number): string => `tg:-100${i}`;

export function startCore(options: CoreOptions = {}): Core {
  const home = mkdtempSync(join(tmpdir(), 'pincer-bench-core-'));
  const config = loadConfig({ PINCER_HOME: home, TZ: 'UTC', ANTHROPIC_API_KEY: 'sk-ant-bench-not-a-real-key' }, home);
  const log = createLogger('silent');
  const layout = prepareState(home);
  const store = new Store(layout.db);
  const budgets = new Budgets({ store, timezone: config.timezone, defaults: config.defaultBudget, log, onOutbox: () => {} });
  let dispatcher: Dispatcher | undefined;
  const sandbox = {
    limits: config.sandboxLimits,
    uidBase: config.sandboxUidBase,
    mountAllowlistPath: config.mountAllowlistPath,
    protectedPaths: [home],
  };
  const models = { providers: config.providers, effort: undefined, fallbackModel: undefined };
  const control = new Control({
    store,
    layout,
    sandbox,
    assistantName: config.assistantName,
    timezone: config.timezone,
    models,
    maxTasksPerGroup: config.maxTasksPerGroup,
    log,
    onTasksChanged: () => {},
    onGroupJoined: () => {},
    onGroupRemoved: () => {},
    onGroupChanged: () => {},
    isLive: (chatId) => dispatcher?.isLive(chatId) ?? false,
    budgets,
    onBudgetChanged: () => {},
  });
  const agents = new Dispatcher(
    config.maxConcurrentAgents,
    {
      store,
      layout,
      runtime: { ok: true, runtime: silentRuntime },
      settings: {
        assistantName: config.assistantName,
        timezone: config.timezone,
        models,
        modelMaxRetries: config.modelMaxRetries,
        compactAtTokens: config.compactAtTokens,
        idleTimeoutMs: config.idleTimeoutMs,
        turnTimeoutMs: config.turnTimeoutMs,
        sandbox,
      },
      control,
      budgets,
      log,
      onOutbox: () => {},
      setTyping: () => {},
    },
    config.prewarm,
  );
  dispatcher = agents;
  const deps = { store, layout, assistantName: config.assistantName, maxMediaBytes: config.mediaMaxBytes, log };
  const indexer = options.index === false ? undefined : new MessageIndexer(store, log);
  indexer?.start();
  const core: Core = {
    home,
    layout,
    store,
    dispatcher: agents,
    dispatched: 0,
    ingest: createIngest({
      ...deps,
      onEngaged: (chatId, seq) => {
        agents.wake(chatId, seq);
        core.dispatched++;
        options.onDispatched?.(chatId, seq);
      },
    }),
    storeOnly: createIngest({
      ...deps,
      onEngaged: () => {
        core.dispatched++;
      },
    }),
    async close() {
      indexer?.stop();
      await agents.stop();
      store.close();
      rmSync(home, { recursive: true, force: true });
    },
  };
  return core;
}

/** Joins `count` messenger groups that answer every message (each message engages). */
export function registerGroups(core: Core, count: number): string[] {
  const now = Date.now();
  const chats = Array.from({ length: count }, (_, i) => groupChat(i));
  core.store.transaction(() => {
    chats.forEach((chatId, i) => {
      core.store.chats.seen({ id: chatId, channel: 'telegram', name: `Group ${i}`, isGroup: true }, now);
      core.store.groups.register({ chatId, folder: `g${i}`, trigger: '@Andy', respondToAll: true, isMain: false }, now, 0);
    });
  });
  return chats;
}

let platformIds = 0;

/** A text message as a messenger adapter would hand it over. */
export function inbound(chatId: string, text = 'hello there, how are you?'): InboundMessage {
  return {
    chatId,
    channel: 'telegram',
    platformId: `bench-${++platformIds}`,
    senderId: 'tg:4242',
    senderName: 'Olive',
    text,
    sentAt: Date.now(),
    isGroup: true,
  };
}

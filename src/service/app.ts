// The composition root: builds every part from the configuration and wires the path of a message.

import { basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enabledMessengers } from '../channels/enabled.js';
import { LocalChannel } from '../channels/local/channel.js';
import { loadOrCreateToken } from '../channels/local/token.js';
import { ChannelRegistry } from '../channels/registry.js';
import type { Channel } from '../channels/types.js';
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import { recallByMeaning } from '../memory/meaning.js';
import { MessageIndexer } from '../memory/message-indexer.js';
import type { EgressTestSeam } from '../proxy/egress-proxy.js';
import { readFileInside } from '../sandbox/safe-fs.js';
import { type RuntimeChoice, selectRuntime } from '../sandbox/select.js';
import { Scheduler } from '../scheduler/scheduler.js';
import { Store } from '../store/index.js';
import { Budgets } from './budgets.js';
import { Control } from './control.js';
import { Dispatcher } from './dispatcher.js';
import { ensureMainGroup } from './groups.js';
import { createIngest } from './ingest.js';
import { Insight } from './insight.js';
import { type InstanceLock, takeInstanceLock } from './instance-lock.js';
import { groupPaths, prepareState, type StateLayout } from './layout.js';
import { describeGroupModel } from './model-choice.js';
import { OutboxWorker } from './outbox-worker.js';
import { MAX_SEND_FILE_BYTES } from './tool-context.js';
import { transcriber } from './transcribe.js';

/** This checkout or installed package: its code (and maybe its .env) must never be mounted into a sandbox. */
const PROJECT_ROOT = fileURLToPath(new URL('../../', import.meta.url));

export interface Pincer {
  config: Config;
  layout: StateLayout;
  store: Store;
  runtime: RuntimeChoice;
  local: LocalChannel;
  dispatcher: Dispatcher;
  scheduler: Scheduler;
  control: Control;
  token: string;
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Channels beyond the configured ones (a test's adapter with a stand-in socket). */
  channels?: Channel[];
  /** Tests only: lets the sandboxes' egress proxy reach a loopback test site by name. */
  egressTestSeam?: EgressTestSeam;
}

/**
 * Starts pincer on the state folder `config.home`. Throws AlreadyRunningError, having touched nothing, when
 * another live pincer uses that folder: its sockets, sandboxes and containers are not orphans.
 */
export async function startPincer(config: Config, log: Logger, options: StartOptions = {}): Promise<Pincer> {
  const lock = takeInstanceLock(config.home, `http://${config.host}:${config.port}`);
  try {
    return await startLocked(config, log, options, lock);
  } catch (err) {
    lock.release();
    throw err;
  }
}

async function startLocked(config: Config, log: Logger, options: StartOptions, lock: InstanceLock): Promise<Pincer> {
  const layout = prepareState(config.home);
  const store = new Store(layout.db);
  const runtime = await selectRuntime({
    wanted: config.runtime,
    stateDir: layout.runDir,
    instance: layout.instance,
    containerImage: config.containerImage,
    log: log.child({ part: 'sandbox' }),
    cleanOrphans: true,
  });
  if (!runtime.ok) log.error({ reason: runtime.reason }, 'no sandbox runtime: messages will be answered with the reason');
  if (!config.credential)
    log.warn('no model credentials (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN): messages will be answered with how to set them');
  const token = loadOrCreateToken(layout.home, config.token);
  ensureMainGroup(store, layout, config.assistantName, config.mainChat);

  const sandbox = {
    limits: config.sandboxLimits,
    uidBase: config.sandboxUidBase,
    mountAllowlistPath: config.mountAllowlistPath,
    protectedPaths: [layout.home, PROJECT_ROOT],
    groups: () => store.groups.list(),
    ...(config.extraCaCerts ? { extraCaCerts: config.extraCaCerts } : {}),
  };
  // Control, dispatcher and scheduler call each other; each is reached through a closure made before the next exists.
  let dispatcher: Dispatcher | undefined;
  let scheduler: Scheduler | undefined;
  let outboxWorker: OutboxWorker | undefined;
  const budgets = new Budgets({
    store,
    timezone: config.timezone,
    defaults: config.defaultBudget,
    log: log.child({ part: 'budget' }),
    onOutbox: () => outboxWorker?.wake(),
  });
  const meaning = recallByMeaning(config.embeddings, store, log.child({ part: 'memory' }));
  const models = { providers: config.providers, effort: config.effort, fallbackModel: config.fallbackModel };
  const control = new Control({
    store,
    layout,
    sandbox,
    assistantName: config.assistantName,
    timezone: config.timezone,
    models,
    maxTasksPerGroup: config.maxTasksPerGroup,
    log: log.child({ part: 'control' }),
    onTasksChanged: () => scheduler?.rearm(),
    onGroupJoined: (chatId) => dispatcher?.prewarm(chatId, 'the chat was just joined'),
    onGroupRemoved: (chatId) => dispatcher?.forget(chatId),
    onGroupChanged: (chatId) => dispatcher?.refresh(chatId),
    isLive: (chatId) => dispatcher?.isLive(chatId) ?? false,
    budgets,
    onBudgetChanged: () => dispatcher?.wakeWaiting(),
    ...(meaning ? { meaning } : {}),
  });

  const channels = new ChannelRegistry();
  const insight = new Insight({
    store,
    timezone: config.timezone,
    channels: () => channels.list(),
    queue: () => ({ active: dispatcher?.queue.activeCount ?? 0, waiting: dispatcher?.queue.waitingCount ?? 0 }),
    agentState: (chatId) => dispatcher?.agentState(chatId) ?? 'none',
    budgetReached: (chatId) => !budgets.check(chatId).ok,
    modelOf: (group) => describeGroupModel(models, group),
  });
  const local = new LocalChannel({
    store,
    host: config.host,
    port: config.port,
    token,
    log,
    control,
    insight,
    assistantName: config.assistantName,
    allowedHosts: config.allowedHosts,
    tokenHint: config.token ? 'PINCER_TOKEN' : `the file ${layout.home}/token`,
  });
  channels.add(local);
  for (const messenger of await enabledMessengers(config.channels, config.assistantName, layout.home, store, log)) channels.add(messenger);
  for (const extra of options.channels ?? []) channels.add(extra);

  const outbox = new OutboxWorker({
    store,
    channels,
    assistantName: config.assistantName,
    log: log.child({ part: 'outbox' }),
    mainChatId: () => store.groups.list().find((g) => g.isMain)?.chatId,
    readGroupFile: async (chatId, path) => {
      const group = store.groups.get(chatId);
      if (!group) throw new Error(`${chatId} is no longer a joined group`);
      const data = await readFileInside(groupPaths(layout, group.folder, group.isMain).groupDir, path, MAX_SEND_FILE_BYTES);
      return { name: basename(path), data };
    },
  });
  outboxWorker = outbox;
  const agents = new Dispatcher(
    config.maxConcurrentAgents,
    {
      store,
      layout,
      runtime,
      settings: {
        assistantName: config.assistantName,
        timezone: config.timezone,
        models,
        modelMaxRetries: config.modelMaxRetries,
        idleTimeoutMs: config.idleTimeoutMs,
        turnTimeoutMs: config.turnTimeoutMs,
        compactAtTokens: config.compactAtTokens,
        sandbox,
      },
      control,
      budgets,
      ...(options.egressTestSeam ? { egressTestSeam: options.egressTestSeam } : {}),
      log: log.child({ part: 'agent' }),
      onOutbox: () => outbox.wake(),
      // The web page shows every chat's reply as it is written, whichever channel delivers it.
      onReplyDraft: (chatId, update) => local.showReplyDraft(chatId, update),
      setTyping: (chatId, on) => {
        void channels
          .forChat(chatId)
          ?.setTyping?.(chatId, on)
          .catch((err: unknown) => log.debug({ err, chatId }, 'typing indicator failed'));
      },
    },
    config.prewarm,
  );
  dispatcher = agents;
  const tasks = new Scheduler({
    store,
    log: log.child({ part: 'scheduler' }),
    wakeGroup: (chatId, seq) => agents.wake(chatId, seq),
    startIsolated: (run) => agents.startRun(run),
  });
  scheduler = tasks;
  const ingest = createIngest({
    store,
    layout,
    assistantName: config.assistantName,
    maxMediaBytes: config.mediaMaxBytes,
    log: log.child({ part: 'ingest' }),
    onEngaged: (chatId, seq) => agents.wake(chatId, seq),
    onActivity: (chatId) => agents.prewarm(chatId, 'the chat is active'),
    ...(config.transcription ? { transcribe: transcriber(config.transcription) } : {}),
  });

  const failed = await channels.startAll(ingest);
  const localFailed = failed.find((f) => f.channel === local.name);
  // Without its own API pincer cannot be reached or administered: that one is fatal (a taken port, say).
  if (localFailed) throw new Error(`the local API could not start on ${config.host}:${config.port}: ${localFailed.error}`);
  for (const f of failed) log.error(f, 'channel did not start');
  outbox.wake();
  agents.recover();
  tasks.start();
  const indexer = new MessageIndexer(store, log.child({ part: 'memory' }));
  indexer.start();
  meaning?.embedder.start();
  lock.announce(local.url);
  log.info({ url: local.url, home: layout.home }, 'pincer is running');

  return {
    config,
    layout,
    store,
    runtime,
    local,
    dispatcher: agents,
    scheduler: tasks,
    control,
    token,
    async stop() {
      tasks.stop();
      indexer.stop();
      await meaning?.embedder.stop();
      await channels.stopAll();
      await agents.stop();
      await outbox.stop();
      store.close();
      lock.release();
    },
  };
}

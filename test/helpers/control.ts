// A Control over a test's own store, with no dispatcher or scheduler behind it: every callback does nothing.
import { join } from 'node:path';
import { createLogger, type Logger } from '../../src/log.js';
import { Budgets } from '../../src/service/budgets.js';
import { Control } from '../../src/service/control.js';
import type { StateLayout } from '../../src/service/layout.js';
import type { Store } from '../../src/store/index.js';

export function standaloneControl(layout: StateLayout, store: Store, log: Logger = createLogger('silent')): Control {
  return new Control({
    store,
    layout,
    sandbox: {
      limits: { memoryBytes: 1, pids: 1, cpuSeconds: 1, tmpBytes: 1, fileBytes: 1 },
      uidBase: 1_000_000,
      mountAllowlistPath: join(layout.home, 'none.json'),
      protectedPaths: [layout.home],
    },
    assistantName: 'Andy',
    timezone: 'Europe/Berlin',
    models: {
      providers: new Map([['anthropic', { name: 'anthropic', baseUrl: 'http://127.0.0.1:9', credential: undefined, model: undefined }]]),
      effort: undefined,
      fallbackModel: undefined,
    },
    maxTasksPerGroup: 50,
    log,
    onTasksChanged: () => {},
    onGroupJoined: () => {},
    onGroupRemoved: () => {},
    onGroupChanged: () => {},
    isLive: () => false,
    budgets: new Budgets({
      store,
      timezone: 'Europe/Berlin',
      defaults: { dailyUsd: null, monthlyUsd: null },
      log: createLogger('silent'),
      onOutbox: () => {},
    }),
    onBudgetChanged: () => {},
  });
}

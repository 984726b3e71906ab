import { EventEmitter } from 'node:events';
import type { TraceEvent } from './events.js';

/**
 * What changed, for whoever shows it live (the web page): tasks and runs, groups (settings, and a session
 * going live or idle), trace events. Emitted right after the write, perhaps inside a transaction that could
 * still roll back, so listeners re-read rather than trust a payload.
 */
export type StoreChanges = EventEmitter<{ tasks: []; groups: []; event: [TraceEvent] }>;

export function storeChanges(): StoreChanges {
  const changes: StoreChanges = new EventEmitter();
  changes.setMaxListeners(0);
  return changes;
}

import { BudgetTable } from './budgets.js';
import { type StoreChanges, storeChanges } from './changes.js';
import { ChatTable } from './chats.js';
import { type Db, openDb } from './db.js';
import { DiscordWebhookTable } from './discord-webhooks.js';
import { EgressTable } from './egress.js';
import { EventTable } from './events.js';
import { FileSearchTable } from './file-search.js';
import { GroupTable } from './groups.js';
import { MessageSearchTable } from './message-search.js';
import { MessageTable } from './messages.js';
import { ModelUsageTable } from './model-usage.js';
import { OutboxTable } from './outbox.js';
import { TaskRunTable, TaskTable } from './tasks.js';
import { TelegramPoolTable } from './telegram-pool.js';
import { TurnTable } from './turns.js';
import { WebSessionTable } from './web-sessions.js';

export type { BudgetLimits, BudgetScope } from './budgets.js';
export { GLOBAL_SCOPE } from './budgets.js';
export type { StoreChanges } from './changes.js';
export type { Chat } from './chats.js';
export type { DiscordWebhook } from './discord-webhooks.js';
export type { EgressEntry } from './egress.js';
export type { Stage, TraceEvent } from './events.js';
export type { FileHit, FilePassage, IndexedFile } from './file-search.js';
export type { Group, GroupModels, GroupSettings, GroupState, NewGroup } from './groups.js';
export type { MessageHit, MessageSearchQuery } from './message-search.js';
export type { NewMessage, StoredMessage } from './messages.js';
export type { ModelUsageEntry, UsageSlot } from './model-usage.js';
export type { OutboxItem } from './outbox.js';
export type { ContextMode, NewTask, RunEnd, ScheduleKind, Task, TaskRun, TaskStatus, TaskUpdate } from './tasks.js';
export type { TurnRecord } from './turns.js';

/** The single source of truth: one SQLite file, one table family per module. */
export class Store {
  readonly db: Db;
  readonly chats: ChatTable;
  readonly groups: GroupTable;
  readonly messages: MessageTable;
  readonly messageSearch: MessageSearchTable;
  readonly fileSearch: FileSearchTable;
  readonly outbox: OutboxTable;
  readonly events: EventTable;
  readonly turns: TurnTable;
  readonly egress: EgressTable;
  readonly tasks: TaskTable;
  readonly taskRuns: TaskRunTable;
  readonly webSessions: WebSessionTable;
  readonly budgets: BudgetTable;
  readonly modelUsage: ModelUsageTable;
  /** The webhooks and pool bots through which sub-agents post under their own names. */
  readonly discordWebhooks: DiscordWebhookTable;
  readonly telegramPool: TelegramPoolTable;
  /** Tasks, groups and trace events as they change (messages have their own `messages.changes`). */
  readonly changes: StoreChanges = storeChanges();
  /** One transaction wrapper for every call: better-sqlite3 builds a new one per `db.transaction()`. */
  readonly #inTransaction: (fn: () => unknown) => unknown;

  constructor(path: string) {
    this.db = openDb(path);
    this.#inTransaction = this.db.transaction((fn: () => unknown) => fn());
    this.chats = new ChatTable(this.db);
    this.groups = new GroupTable(this.db, this.changes);
    this.messages = new MessageTable(this.db);
    this.messageSearch = new MessageSearchTable(this.db);
    this.fileSearch = new FileSearchTable(this.db);
    this.outbox = new OutboxTable(this.db);
    this.events = new EventTable(this.db, this.changes);
    this.turns = new TurnTable(this.db);
    this.egress = new EgressTable(this.db);
    this.tasks = new TaskTable(this.db, this.changes);
    this.taskRuns = new TaskRunTable(this.db, this.changes);
    this.webSessions = new WebSessionTable(this.db);
    this.budgets = new BudgetTable(this.db);
    this.modelUsage = new ModelUsageTable(this.db);
    this.discordWebhooks = new DiscordWebhookTable(this.db);
    this.telegramPool = new TelegramPoolTable(this.db);
  }

  /** Runs `fn` in one transaction: all of its writes land, or none. */
  transaction<T>(fn: () => T): T {
    return this.#inTransaction(fn) as T;
  }

  close(): void {
    this.db.close();
  }
}

// The shapes the server's JSON API answers with (src/channels/local/*-api.ts); type-checking only, never served.

export interface GroupView {
  chatId: string;
  folder: string;
  name: string | null;
  channel: string;
  trigger: string;
  respondToAll: boolean;
  isMain: boolean;
  senderAllowlist: string[] | null;
  timezone: string;
  /** Already in words. */
  egressPolicy: string;
  /** What the group's next turn runs on (own: the group's own settings, null for the default). */
  models: {
    provider: string;
    model: string | null;
    effort: Effort | null;
    fallbackModel: string | null;
    own: { provider: string | null; model: string | null; effort: Effort | null; fallbackModel: string | null };
    /** Why the group cannot run now, or null. */
    problem: string | null;
  };
  live: boolean;
  /** Epoch ms. */
  lastActivityAt: number | null;
}

export type Effort = 'low' | 'medium' | 'high' | 'xhigh' | 'max';

/** A configured model provider, without its key. */
export interface ProviderView {
  name: string;
  baseUrl: string;
  auth: string;
  model: string | null;
  isDefault: boolean;
}

export interface SeenChat {
  id: string;
  channel: string;
  name: string | null;
  isGroup: boolean;
  /** Epoch ms. */
  lastSeenAt: number;
}

export interface Message {
  /** Numeric, as a string. */
  id: string;
  chat: string;
  sender: string;
  text: string;
  /** ISO time. */
  time: string;
  fromAssistant: boolean;
}

export interface MessagePage {
  messages: Message[];
  cursor: string;
  typing: boolean;
}

export interface SendResult {
  id: string;
  duplicate: boolean;
  engaged: boolean;
}

export type TaskStatus = 'active' | 'paused' | 'completed' | 'cancelled';

export interface TaskView {
  id: number;
  /** The group's folder. */
  group: string;
  chatId: string;
  prompt: string;
  scheduleType: 'cron' | 'interval' | 'once';
  scheduleValue: string;
  timezone: string;
  /** The schedule in words. */
  schedule: string;
  contextMode: string;
  status: TaskStatus;
  /** The status as the owner should read it, e.g. "waiting: budget reached" for a one-off its budget holds. */
  state: string;
  nextRunAt: string | null;
  lastRun: {
    dueAt: string;
    status: string;
    /** In words: "waiting: budget reached" for a run its budget holds. */
    state: string;
    endedAt: string | null;
    result: string | null;
    error: string | null;
    costUsd?: number | null;
  } | null;
  createdBy: string;
}

export interface TaskRun {
  id: number;
  taskId: number;
  chatId: string;
  /** Epoch ms. */
  dueAt: number;
  startedAt: number;
  lateMs: number;
  contextMode: string;
  messageSeq: number | null;
  status: string;
  /** In words: "waiting: budget reached" for a run its budget holds. */
  state: string;
  endedAt: number | null;
  durationMs: number | null;
  result: string | null;
  error: string | null;
  costUsd: number | null;
}

export interface TraceStage {
  stage: string;
  /** ISO time. */
  at: string;
  detail: string | null;
}

export interface Trace {
  message: { id: string; chatId: string; sender: string; text: string; sentAt: string; engages: boolean };
  stages: TraceStage[];
}

export interface UsageRow {
  date: string;
  group: string;
  turns: number;
  /** Model calls metered at the proxy (every call the group's sandboxes made). */
  calls: number;
  /** Of those, calls to a model without a known price: their tokens count, their cost is not in costUsd. */
  unpricedCalls: number;
  costUsd: number;
  inputTokens: number;
  outputTokens: number;
  /** Per provider and model; costUsd null: unknown (no known price), never zero. */
  models: Array<{
    provider: string | null;
    model: string | null;
    calls: number;
    costUsd: number | null;
    inputTokens: number;
    outputTokens: number;
  }>;
}

export interface StatusView {
  channels: Array<{ name: string; state: string }>;
  groups: Array<{ folder: string; chatId: string; isMain: boolean; live: boolean; agent: 'working' | 'ready' | 'none'; model: string }>;
  queue: { active: number; working: number; ready: number; waiting: number };
  nextTasks: Array<{ id: number; group: string; nextRunAt: string }>;
  /** unpricedCalls: calls of unknown cost, not in costUsd. */
  today: { date: string; costUsd: number; unpricedCalls: number; turns: number };
  outbox: { pending: number; failed: number };
}

/** What the live WebSocket says: what changed (the page re-reads it), and the reply being written. */
export type LiveEvent =
  | { type: 'hello'; assistantName: string }
  | { type: 'messages'; chat: string }
  | { type: 'typing'; chat: string; typing: boolean }
  | { type: 'activity'; chat: string; message: string | null; stage: string; detail: string | null; at: string }
  | { type: 'tasks' }
  | { type: 'groups' }
  /** The reply being written: the chat's draft is now its first `from` characters followed by `text`. */
  | { type: 'draft'; chat: string; from: number; text: string }
  /** The reply is written: `reply` is what is delivered ('' when nothing is), replacing the draft. */
  | { type: 'draft-end'; chat: string; reply: string };

/** A page of the app: mounted into the main area, told about live events, asked to re-read after a reconnect. */
export interface View {
  onLive?(event: LiveEvent): void;
  refresh?(): void;
  unmount?(): void;
}

export interface MemoryFile {
  /** Inside the group folder: CLAUDE.md, memory/<name>.md or conversations/<name>.md. */
  path: string;
  size: number;
  /** ISO time. */
  modifiedAt: string;
  /** False for archived conversations. */
  editable: boolean;
}

export interface MemoryFileContent {
  path: string;
  text: string;
  /** What a save names to replace this very content. */
  version: string;
}

export type MemoryHit =
  | { id: string; chat: string; time: string; sender: string; snippet: string }
  | { file: string; line: number; chat: string; snippet: string };

export interface MemorySearchResult {
  hits: MemoryHit[];
  matched: 'all' | 'any' | 'none';
  searched: string;
}

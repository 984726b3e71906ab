import { z } from 'zod';
import type { Effort } from '../config.js';
import { type EgressPolicy, egressPolicySchema } from '../proxy/egress-policy.js';
import { type ExtraMountRequest, extraMountRequestSchema } from '../sandbox/mount-allowlist.js';
import type { StoreChanges } from './changes.js';
import type { Db } from './db.js';
import { storedEffort } from './effort.js';
import { type McpServer, mcpServersSchema } from './mcp-server-schema.js';

const extraMountsSchema = extraMountRequestSchema.array();
const senderAllowlistSchema = z.array(z.string().min(1).max(200)).max(1000);

/** A chat that pincer has joined: it has a folder, an agent and a trigger. */
export interface Group {
  chatId: string;
  folder: string;
  trigger: string;
  respondToAll: boolean;
  isMain: boolean;
  createdAt: number;
  /** A small number never given to another group, even after this one is removed: its sandbox user is uid base + slot. */
  sandboxSlot: number;
  /** Where the group's sandbox may connect, through the host's egress proxy. */
  egressPolicy: EgressPolicy;
  /** Host folders the owner asked to mount; checked against the allowlist at every sandbox start. */
  extraMounts: ExtraMountRequest[];
  /** Sender ids whose messages may engage the agent; null: everyone in the chat. */
  senderAllowlist: string[] | null;
  /** The group's own time zone for its tasks and prompts; null: pincer's `TZ`. */
  timezone: string | null;
  /** Extra MCP servers of the group's agent, secrets included: never shown as they are (see maskServers). */
  mcpServers: McpServer[];
  /** The group's own model settings; each null: the environment's default (see src/service/model-choice.ts). */
  models: GroupModels;
}

export interface GroupModels {
  /** A configured provider's name; null: the default (ANTHROPIC_*). */
  provider: string | null;
  model: string | null;
  effort: Effort | null;
  fallbackModel: string | null;
}

/** What the caller decides when joining a chat; the rest has defaults. */
export type NewGroup = Pick<Group, 'chatId' | 'folder' | 'trigger' | 'respondToAll' | 'isMain'>;

export interface GroupState {
  /** seq of the newest message whose turn has completed (its reply is in the outbox). */
  cursor: number;
  sessionId: string | null;
}

interface GroupRow {
  chat_id: string;
  folder: string;
  trigger: string;
  respond_to_all: number;
  is_main: number;
  created_at: number;
  sandbox_slot: number;
  egress_policy: string;
  extra_mounts: string;
  sender_allowlist: string | null;
  timezone: string | null;
  mcp_servers: string;
  model: string | null;
  effort: string | null;
  provider: string | null;
  fallback_model: string | null;
}

/** Stored JSON is parsed strictly: a row edited by hand into nonsense fails loudly, naming the group. */
function parseColumn<T>(row: GroupRow, column: string, raw: string, schema: { parse(v: unknown): T }): T {
  try {
    return schema.parse(JSON.parse(raw));
  } catch (err) {
    throw new Error(`group ${row.chat_id}: stored ${column} is invalid: ${err instanceof Error ? err.message : String(err)}`);
  }
}

const toGroup = (r: GroupRow): Group => ({
  chatId: r.chat_id,
  folder: r.folder,
  trigger: r.trigger,
  respondToAll: r.respond_to_all === 1,
  isMain: r.is_main === 1,
  createdAt: r.created_at,
  sandboxSlot: r.sandbox_slot,
  egressPolicy: parseColumn(r, 'egress_policy', r.egress_policy, egressPolicySchema),
  extraMounts: parseColumn(r, 'extra_mounts', r.extra_mounts, extraMountsSchema),
  senderAllowlist: r.sender_allowlist === null ? null : parseColumn(r, 'sender_allowlist', r.sender_allowlist, senderAllowlistSchema),
  timezone: r.timezone,
  mcpServers: parseColumn(r, 'mcp_servers', r.mcp_servers, mcpServersSchema),
  models: {
    provider: r.provider,
    model: r.model,
    effort: storedEffort(r.effort, `group ${r.chat_id}`),
    fallbackModel: r.fallback_model,
  },
});

/** What the owner may change about a joined chat. */
export type GroupSettings = Partial<Pick<Group, 'trigger' | 'respondToAll' | 'senderAllowlist' | 'timezone'>>;

export class GroupTable {
  readonly #nextSlot;
  readonly #insert;
  readonly #insertState;
  readonly #registerRows;
  readonly #get;
  readonly #byFolder;
  readonly #list;
  readonly #state;
  readonly #setCursor;
  readonly #setSession;
  readonly #setEgress;
  readonly #setMounts;
  readonly #setMcpServers;
  readonly #setSettings;
  readonly #setModels;
  readonly #removeGroup;
  readonly #clearMain;
  readonly #setMain;
  readonly #removeState;
  readonly #recentlyActive;
  readonly #changes: StoreChanges;

  constructor(db: Db, changes: StoreChanges) {
    this.#changes = changes;
    this.#registerRows = db.transaction((group: NewGroup, at: number, cursor: number) => {
      const slot = this.#nextSlot.get()?.last;
      if (slot === undefined) throw new Error('the store has no sandbox slot counter: its schema is incomplete');
      this.#insert.run(group.chatId, group.folder, group.trigger, group.respondToAll ? 1 : 0, group.isMain ? 1 : 0, at, slot);
      this.#insertState.run(group.chatId, cursor);
    });
    // The slot counter only grows (it outlives removed groups and restarts), so a uid is never handed on.
    this.#nextSlot = db.prepare<[], { last: number }>(`UPDATE sequences SET last = last + 1 WHERE name = 'sandbox_slot' RETURNING last`);
    this.#insert = db.prepare<[string, string, string, number, number, number, number]>(
      `INSERT INTO groups (chat_id, folder, trigger, respond_to_all, is_main, created_at, sandbox_slot)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.#insertState = db.prepare<[string, number]>('INSERT INTO group_state (chat_id, cursor) VALUES (?, ?)');
    this.#get = db.prepare<[string], GroupRow>('SELECT * FROM groups WHERE chat_id = ?');
    this.#byFolder = db.prepare<[string], GroupRow>('SELECT * FROM groups WHERE folder = ?');
    this.#list = db.prepare<[], GroupRow>('SELECT * FROM groups ORDER BY created_at');
    // Each group's newest turn is one step down its (chat_id, id) index; groups never answered come last, main first.
    this.#recentlyActive = db.prepare<[number], { chat_id: string }>(
      `SELECT chat_id FROM groups g
       ORDER BY (SELECT MAX(t.id) FROM turns t WHERE t.chat_id = g.chat_id) DESC NULLS LAST, is_main DESC, created_at
       LIMIT ?`,
    );
    this.#state = db.prepare<[string], { cursor: number; session_id: string | null }>(
      'SELECT cursor, session_id FROM group_state WHERE chat_id = ?',
    );
    this.#setCursor = db.prepare<[number, string]>('UPDATE group_state SET cursor = MAX(cursor, ?) WHERE chat_id = ?');
    this.#setSession = db.prepare<[string | null, string]>('UPDATE group_state SET session_id = ? WHERE chat_id = ?');
    this.#setEgress = db.prepare<[string, string]>('UPDATE groups SET egress_policy = ? WHERE chat_id = ?');
    this.#setMounts = db.prepare<[string, string]>('UPDATE groups SET extra_mounts = ? WHERE chat_id = ?');
    this.#setMcpServers = db.prepare<[string, string]>('UPDATE groups SET mcp_servers = ? WHERE chat_id = ?');
    this.#setSettings = db.prepare<[string, number, string | null, string | null, string]>(
      'UPDATE groups SET trigger = ?, respond_to_all = ?, sender_allowlist = ?, timezone = ? WHERE chat_id = ?',
    );
    this.#setModels = db.prepare<[string | null, string | null, string | null, string | null, string]>(
      'UPDATE groups SET provider = ?, model = ?, effort = ?, fallback_model = ? WHERE chat_id = ?',
    );
    this.#removeState = db.prepare<[string]>('DELETE FROM group_state WHERE chat_id = ?');
    this.#removeGroup = db.prepare<[string]>('DELETE FROM groups WHERE chat_id = ?');
    this.#clearMain = db.prepare('UPDATE groups SET is_main = 0 WHERE is_main = 1');
    this.#setMain = db.prepare<[string]>('UPDATE groups SET is_main = 1, respond_to_all = 1 WHERE chat_id = ?');
  }

  /** Joins a chat. The cursor starts at `cursor` so that history before joining is not answered. */
  register(group: NewGroup, at: number, cursor: number): Group {
    this.#registerRows(group, at, cursor);
    this.#changes.emit('groups');
    const stored = this.get(group.chatId);
    if (!stored) throw new Error(`group ${group.chatId} vanished while it was registered`);
    return stored;
  }

  get(chatId: string): Group | undefined {
    const row = this.#get.get(chatId);
    return row && toGroup(row);
  }

  byFolder(folder: string): Group | undefined {
    const row = this.#byFolder.get(folder);
    return row && toGroup(row);
  }

  list(): Group[] {
    return this.#list.all().map(toGroup);
  }

  /** The chat ids of the `limit` groups whose agent worked most recently (the main group when none has yet). */
  recentlyActive(limit: number): string[] {
    return this.#recentlyActive.all(limit).map((r) => r.chat_id);
  }

  state(chatId: string): GroupState {
    const row = this.#state.get(chatId);
    if (!row) throw new Error(`no state for group ${chatId}: it is not registered`);
    return { cursor: row.cursor, sessionId: row.session_id };
  }

  /** Moves the cursor forward only; a late or repeated commit can never move it back. */
  advanceCursor(chatId: string, seq: number): void {
    this.#setCursor.run(seq, chatId);
  }

  setSession(chatId: string, sessionId: string | null): void {
    this.#setSession.run(sessionId, chatId);
  }

  setEgressPolicy(chatId: string, policy: EgressPolicy): void {
    this.#setEgress.run(JSON.stringify(egressPolicySchema.parse(policy)), chatId);
    this.#changes.emit('groups');
  }

  setExtraMounts(chatId: string, mounts: ExtraMountRequest[]): void {
    this.#setMounts.run(JSON.stringify(extraMountsSchema.parse(mounts)), chatId);
  }

  /** Checked again as it is written: the store never holds a list it would refuse to read. */
  setMcpServers(chatId: string, servers: McpServer[]): void {
    this.#setMcpServers.run(JSON.stringify(mcpServersSchema.parse(servers)), chatId);
    this.#changes.emit('groups');
  }

  /** Changes what is given; the rest stays. */
  updateSettings(chatId: string, change: GroupSettings): Group {
    const g = this.get(chatId);
    if (!g) throw new Error(`group ${chatId} is not registered`);
    const next = { ...g, ...Object.fromEntries(Object.entries(change).filter(([, v]) => v !== undefined)) };
    const allowlist = next.senderAllowlist === null ? null : JSON.stringify(senderAllowlistSchema.parse(next.senderAllowlist));
    this.#setSettings.run(next.trigger, next.respondToAll ? 1 : 0, allowlist, next.timezone, chatId);
    this.#changes.emit('groups');
    return this.get(chatId) as Group;
  }

  /** Replaces the group's model settings (checked by the caller against the configured providers). */
  setModels(chatId: string, models: GroupModels): Group {
    this.#setModels.run(models.provider, models.model, models.effort, models.fallbackModel, chatId);
    this.#changes.emit('groups');
    const g = this.get(chatId);
    if (!g) throw new Error(`group ${chatId} is not registered`);
    return g;
  }

  /** Leaves a chat: pincer stops answering it. Its messages and folder stay, so joining again picks up. */
  remove(chatId: string): void {
    this.#removeState.run(chatId);
    this.#removeGroup.run(chatId);
    this.#changes.emit('groups');
  }

  /** Makes a joined chat the main group (the owner's); the former main group stays an ordinary group. Call in a transaction. */
  makeMain(chatId: string): void {
    this.#clearMain.run();
    this.#setMain.run(chatId);
    this.#changes.emit('groups');
  }
}

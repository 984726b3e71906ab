// Versioned schema. Each entry runs once, in order, inside a transaction; never edit a shipped entry.
export const MIGRATIONS: readonly string[] = [
  `
  CREATE TABLE chats (
    id TEXT PRIMARY KEY,
    channel TEXT NOT NULL,
    name TEXT,
    is_group INTEGER NOT NULL DEFAULT 0,
    last_seen_at INTEGER NOT NULL
  );
  CREATE TABLE groups (
    chat_id TEXT PRIMARY KEY REFERENCES chats(id),
    folder TEXT NOT NULL UNIQUE,
    trigger TEXT NOT NULL,
    respond_to_all INTEGER NOT NULL DEFAULT 0,
    is_main INTEGER NOT NULL DEFAULT 0,
    created_at INTEGER NOT NULL
  );
  CREATE UNIQUE INDEX groups_one_main ON groups(is_main) WHERE is_main = 1;
  CREATE TABLE messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL REFERENCES chats(id),
    channel TEXT NOT NULL,
    platform_id TEXT NOT NULL,
    sender_id TEXT NOT NULL,
    sender_name TEXT NOT NULL,
    text TEXT NOT NULL,
    sent_at INTEGER NOT NULL,
    from_assistant INTEGER NOT NULL DEFAULT 0,
    engages INTEGER NOT NULL DEFAULT 0,
    UNIQUE (chat_id, platform_id)
  );
  CREATE INDEX messages_by_chat ON messages(chat_id, seq);
  CREATE TABLE group_state (
    chat_id TEXT PRIMARY KEY REFERENCES groups(chat_id),
    cursor INTEGER NOT NULL DEFAULT 0,
    session_id TEXT
  );
  CREATE TABLE outbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL REFERENCES chats(id),
    text TEXT NOT NULL,
    reply_to INTEGER REFERENCES messages(seq),
    status TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    platform_id TEXT,
    last_error TEXT,
    created_at INTEGER NOT NULL,
    sent_at INTEGER
  );
  CREATE INDEX outbox_pending ON outbox(next_attempt_at) WHERE status = 'pending';
  CREATE TABLE turns (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL REFERENCES chats(id),
    first_seq INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    session_id TEXT,
    status TEXT NOT NULL,
    error TEXT,
    started_at INTEGER NOT NULL,
    ended_at INTEGER NOT NULL,
    duration_ms INTEGER,
    cost_usd REAL,
    input_tokens INTEGER,
    output_tokens INTEGER
  );
  CREATE INDEX turns_by_chat ON turns(chat_id, id);
  CREATE TABLE events (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    message_seq INTEGER,
    chat_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    detail TEXT,
    at INTEGER NOT NULL
  );
  CREATE INDEX events_by_message ON events(message_seq);
  `,
  `
  ALTER TABLE groups ADD COLUMN sandbox_slot INTEGER;
  UPDATE groups SET sandbox_slot = rowid;
  CREATE UNIQUE INDEX groups_sandbox_slot ON groups(sandbox_slot);
  ALTER TABLE groups ADD COLUMN egress_policy TEXT NOT NULL DEFAULT '{"mode":"open"}';
  ALTER TABLE groups ADD COLUMN extra_mounts TEXT NOT NULL DEFAULT '[]';
  CREATE TABLE egress_log (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL,
    method TEXT NOT NULL,
    host TEXT NOT NULL,
    port INTEGER NOT NULL,
    allowed INTEGER NOT NULL,
    reason TEXT,
    address TEXT,
    bytes_up INTEGER NOT NULL,
    bytes_down INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    duration_ms INTEGER NOT NULL
  );
  CREATE INDEX egress_by_chat ON egress_log(chat_id, id);
  `,
  `
  ALTER TABLE groups ADD COLUMN sender_allowlist TEXT;
  ALTER TABLE groups ADD COLUMN timezone TEXT;
  CREATE TABLE tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL,
    prompt TEXT NOT NULL,
    schedule_type TEXT NOT NULL CHECK (schedule_type IN ('cron', 'interval', 'once')),
    schedule_value TEXT NOT NULL,
    timezone TEXT NOT NULL,
    anchor_at INTEGER NOT NULL,
    context_mode TEXT NOT NULL CHECK (context_mode IN ('group', 'isolated')),
    status TEXT NOT NULL CHECK (status IN ('active', 'paused', 'completed', 'cancelled')),
    next_run_at INTEGER,
    created_by TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE INDEX tasks_due ON tasks(next_run_at) WHERE status = 'active';
  CREATE TABLE task_runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES tasks(id),
    chat_id TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    late_ms INTEGER NOT NULL,
    context_mode TEXT NOT NULL,
    message_seq INTEGER,
    status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'error')),
    ended_at INTEGER,
    duration_ms INTEGER,
    result TEXT,
    error TEXT,
    cost_usd REAL,
    UNIQUE (task_id, due_at)
  );
  CREATE INDEX task_runs_by_task ON task_runs(task_id, id);
  CREATE INDEX task_runs_by_message ON task_runs(message_seq) WHERE message_seq IS NOT NULL;
  `,
  `
  ALTER TABLE messages ADD COLUMN thread_id TEXT;
  ALTER TABLE outbox ADD COLUMN parts_sent INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE outbox ADD COLUMN file_path TEXT;
  `,
  `
  CREATE TABLE web_sessions (
    token_hash TEXT PRIMARY KEY,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
  );
  `,
  `
  CREATE TABLE budgets (
    scope TEXT PRIMARY KEY,
    daily_usd REAL,
    monthly_usd REAL,
    updated_at INTEGER NOT NULL
  );
  CREATE TABLE budget_notices (
    chat_id TEXT NOT NULL,
    period TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (chat_id, period)
  );
  CREATE INDEX turns_by_end ON turns(ended_at);
  CREATE INDEX task_runs_by_end ON task_runs(ended_at) WHERE context_mode = 'isolated';
  ALTER TABLE task_runs ADD COLUMN input_tokens INTEGER;
  ALTER TABLE task_runs ADD COLUMN output_tokens INTEGER;
  `,
  `
  ALTER TABLE groups ADD COLUMN mcp_servers TEXT NOT NULL DEFAULT '[]';
  `,
  // A run due while the task's previous run still goes is logged as 'skipped'. SQLite cannot alter a CHECK:
  // the table is rebuilt (nothing references task_runs).
  `
  CREATE TABLE task_runs_new (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    task_id INTEGER NOT NULL REFERENCES tasks(id),
    chat_id TEXT NOT NULL,
    due_at INTEGER NOT NULL,
    started_at INTEGER NOT NULL,
    late_ms INTEGER NOT NULL,
    context_mode TEXT NOT NULL,
    message_seq INTEGER,
    status TEXT NOT NULL CHECK (status IN ('running', 'ok', 'error', 'skipped')),
    ended_at INTEGER,
    duration_ms INTEGER,
    result TEXT,
    error TEXT,
    cost_usd REAL,
    input_tokens INTEGER,
    output_tokens INTEGER,
    UNIQUE (task_id, due_at)
  );
  INSERT INTO task_runs_new (id, task_id, chat_id, due_at, started_at, late_ms, context_mode, message_seq, status, ended_at,
                             duration_ms, result, error, cost_usd, input_tokens, output_tokens)
    SELECT id, task_id, chat_id, due_at, started_at, late_ms, context_mode, message_seq, status, ended_at,
           duration_ms, result, error, cost_usd, input_tokens, output_tokens FROM task_runs;
  DROP TABLE task_runs;
  ALTER TABLE task_runs_new RENAME TO task_runs;
  CREATE INDEX task_runs_by_task ON task_runs(task_id, id);
  CREATE INDEX task_runs_by_message ON task_runs(message_seq) WHERE message_seq IS NOT NULL;
  CREATE INDEX task_runs_by_end ON task_runs(ended_at) WHERE context_mode = 'isolated';
  CREATE INDEX task_runs_running ON task_runs(task_id, id) WHERE status = 'running';
  `,
  `
  CREATE TABLE model_usage (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    chat_id TEXT NOT NULL,
    model TEXT,
    input_tokens INTEGER NOT NULL,
    output_tokens INTEGER NOT NULL,
    cache_write_tokens INTEGER NOT NULL,
    cache_read_tokens INTEGER NOT NULL,
    web_searches INTEGER NOT NULL,
    cost_usd REAL,
    budget_usd REAL NOT NULL,
    at INTEGER NOT NULL
  );
  CREATE INDEX model_usage_by_time ON model_usage(at, budget_usd);
  CREATE INDEX model_usage_by_chat ON model_usage(chat_id, at, budget_usd);
  -- Spend before metering (the agent's own figures) still counts for this day's and month's budgets.
  INSERT INTO model_usage (chat_id, model, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, web_searches, cost_usd, budget_usd, at)
    SELECT chat_id, NULL, COALESCE(input_tokens, 0), COALESCE(output_tokens, 0), 0, 0, 0, cost_usd, cost_usd, ended_at
    FROM turns WHERE cost_usd IS NOT NULL;
  INSERT INTO model_usage (chat_id, model, input_tokens, output_tokens, cache_write_tokens, cache_read_tokens, web_searches, cost_usd, budget_usd, at)
    SELECT chat_id, NULL, COALESCE(input_tokens, 0), COALESCE(output_tokens, 0), 0, 0, 0, cost_usd, cost_usd, ended_at
    FROM task_runs WHERE context_mode = 'isolated' AND cost_usd IS NOT NULL AND ended_at IS NOT NULL;
  `,
  // Sandbox slots come from a counter that only grows: a removed group's uid is never handed to another group.
  `
  CREATE TABLE sequences (
    name TEXT PRIMARY KEY,
    last INTEGER NOT NULL
  );
  INSERT INTO sequences (name, last) SELECT 'sandbox_slot', COALESCE(MAX(sandbox_slot), 0) FROM groups;
  `,
  // One egress row may stand for many refusals of a flooding sandbox.
  `
  ALTER TABLE egress_log ADD COLUMN count INTEGER NOT NULL DEFAULT 1;
  `,
  // An isolated run cut off by a restart runs again: it is told it is a second attempt and what the first one did.
  `
  ALTER TABLE task_runs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
  ALTER TABLE task_runs ADD COLUMN tool_calls TEXT NOT NULL DEFAULT '[]';
  `,
  // Recall over everything a group has said: a full-text index of the messages (both sides); unicode61 folds
  // diacritics (Café matches cafe). It is brought up to date in batches right after messages are stored
  // (src/memory/message-indexer.ts) and before every search, from `up_to`: indexing each message in its own
  // transaction cost about six times what storing it does, in batches of 500 about a twentieth. No prefix index:
  // it tripled that cost, and a prefix query over a personal history is fast without one.
  `
  CREATE VIRTUAL TABLE message_search USING fts5(
    text, content = 'messages', content_rowid = 'seq',
    tokenize = 'unicode61 remove_diacritics 2'
  );
  CREATE TABLE message_search_progress (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    up_to INTEGER NOT NULL
  );
  INSERT INTO message_search_progress (id, up_to) VALUES (1, 0);
  `,
  // Recall over a group's memory files (its CLAUDE.md, archived conversations, memory/ notes): passages of each
  // file with the line they start at, and what was indexed of each file, to re-read only what changed.
  `
  CREATE VIRTUAL TABLE file_search USING fts5(
    text, chat_id UNINDEXED, path UNINDEXED, line UNINDEXED,
    tokenize = 'unicode61 remove_diacritics 2'
  );
  CREATE TABLE memory_files (
    chat_id TEXT NOT NULL,
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ms INTEGER NOT NULL,
    PRIMARY KEY (chat_id, path)
  );
  `,
  // Recall by meaning (when an embeddings endpoint is configured): which model's vectors are stored and how far
  // embedding has come (messages forward from `high`, history backward from `low`), and the passages of memory
  // files that have a vector. The vector tables themselves (sqlite-vec) are made when the model's size is known:
  // src/store/memory-vectors.ts.
  `
  CREATE TABLE embedding_space (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    model TEXT NOT NULL,
    dims INTEGER NOT NULL,
    high INTEGER NOT NULL,
    low INTEGER NOT NULL
  );
  CREATE TABLE passage_vector_keys (
    id INTEGER PRIMARY KEY,
    chat_id TEXT NOT NULL,
    path TEXT NOT NULL,
    line INTEGER NOT NULL,
    hash TEXT NOT NULL,
    UNIQUE (chat_id, path, line, hash)
  );
  `,
  // Sub-agents that post as themselves: an outbox row may name its sender (a sub-agent's role), shown by the
  // platforms that can (src/channels/); the Discord webhook pincer made per channel to post under such a name
  // (its token is a credential: it stays here, on the host); the Telegram pool bot each chat's sender was given.
  `
  ALTER TABLE outbox ADD COLUMN sender TEXT;
  CREATE TABLE discord_webhooks (
    channel_id TEXT PRIMARY KEY,
    webhook_id TEXT NOT NULL,
    token TEXT NOT NULL,
    created_at INTEGER NOT NULL
  );
  CREATE TABLE telegram_pool_senders (
    chat_id TEXT NOT NULL,
    sender TEXT NOT NULL,
    bot_id INTEGER NOT NULL,
    assigned_at INTEGER NOT NULL,
    PRIMARY KEY (chat_id, sender)
  );
  `,
  // The model per group (and per scheduled task): null is the default of the environment (PINCER_MODEL, PINCER_EFFORT,
  // PINCER_FALLBACK_MODEL, the ANTHROPIC_* provider). Each metered call remembers the provider it went to.
  `
  ALTER TABLE groups ADD COLUMN model TEXT;
  ALTER TABLE groups ADD COLUMN effort TEXT;
  ALTER TABLE groups ADD COLUMN provider TEXT;
  ALTER TABLE groups ADD COLUMN fallback_model TEXT;
  ALTER TABLE tasks ADD COLUMN model TEXT;
  ALTER TABLE tasks ADD COLUMN effort TEXT;
  ALTER TABLE model_usage ADD COLUMN provider TEXT;
  `,
];

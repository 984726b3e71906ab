// Configuration: the environment over an optional .env file, validated once at start.
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { parse as parseDotenv } from 'dotenv';
import { z } from 'zod';
import { type ResourceLimits, RUNTIME_NAMES, type RuntimeName } from './sandbox/types.js';

const MIB = 1024 * 1024;

const validTimeZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const emptyToUndefined = (v: unknown) => (v === '' ? undefined : v);
const optionalString = z.preprocess(emptyToUndefined, z.string().optional());
const positiveInt = (fallback: number) => z.preprocess(emptyToUndefined, z.coerce.number().int().positive().default(fallback));

/** Claude Code's effort levels (the SDK's `EffortLevel`). */
export const EFFORT_LEVELS = ['low', 'medium', 'high', 'xhigh', 'max'] as const;
export type Effort = (typeof EFFORT_LEVELS)[number];

/** How a provider takes its credential: the header pincer's proxy adds on the host. */
export const PROVIDER_AUTH = ['x-api-key', 'bearer', 'none'] as const;

/** The provider of the ANTHROPIC_* settings: what groups use unless set otherwise. */
export const DEFAULT_PROVIDER = 'anthropic';

const schema = z.object({
  ASSISTANT_NAME: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[\p{L}\p{N}_-]{1,32}$/u, 'a single word of letters, digits, _ or - (at most 32)')
      .default('Andy'),
  ),
  TZ: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .refine(validTimeZone, 'an IANA time zone such as Europe/Berlin')
      .default(() => Intl.DateTimeFormat().resolvedOptions().timeZone),
  ),
  PINCER_HOME: z.preprocess(emptyToUndefined, z.string().default('data')),
  PINCER_HOST: z.preprocess(emptyToUndefined, z.string().default('127.0.0.1')),
  PINCER_PORT: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(65535).default(7477)),
  /** Host names (besides IP addresses and localhost) the API and web page answer to: a reverse proxy's, say. */
  PINCER_ALLOWED_HOSTS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .transform((v) =>
        v
          .split(',')
          .map((h) => h.trim().toLowerCase())
          .filter((h) => h.length > 0),
      )
      .default([]),
  ),
  PINCER_TOKEN: z.preprocess(emptyToUndefined, z.string().min(16, 'at least 16 characters').optional()),
  MAX_CONCURRENT_AGENTS: positiveInt(3),
  PINCER_RUNTIME: z.preprocess(emptyToUndefined, z.enum(['auto', ...RUNTIME_NAMES]).default('auto')),
  PINCER_CONTAINER_IMAGE: z.preprocess(emptyToUndefined, z.string().min(1).default('pincer-agent:latest')),
  PINCER_SANDBOX_MEMORY_MB: positiveInt(2048),
  PINCER_SANDBOX_PIDS: positiveInt(512),
  PINCER_SANDBOX_CPU_SEC: positiveInt(3600),
  PINCER_SANDBOX_TMP_MB: positiveInt(512),
  PINCER_SANDBOX_FILE_MB: positiveInt(1024),
  PINCER_SANDBOX_UID_BASE: z.preprocess(emptyToUndefined, z.coerce.number().int().min(1000).max(2_000_000_000).default(1_000_000)),
  PINCER_MOUNT_ALLOWLIST: optionalString,
  PINCER_MEDIA_MAX_MB: positiveInt(20),
  /** A PEM file of CA certificates the agents' tools should trust too (a TLS-inspecting corporate proxy's). */
  PINCER_EXTRA_CA_CERTS: z.preprocess(emptyToUndefined, z.string().optional()),
  /** An OpenAI-compatible API (`https://api.openai.com/v1`) that transcribes voice notes, reached by the host only. */
  PINCER_TRANSCRIBE_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).optional()),
  PINCER_TRANSCRIBE_KEY: optionalString,
  PINCER_TRANSCRIBE_MODEL: z.preprocess(emptyToUndefined, z.string().min(1).default('whisper-1')),
  /** An OpenAI-compatible embeddings API (OpenAI, Ollama, Voyage …) for recall by meaning; the host calls it, never a sandbox. */
  PINCER_EMBEDDINGS_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).optional()),
  PINCER_EMBEDDINGS_KEY: optionalString,
  PINCER_EMBEDDINGS_MODEL: optionalString,
  /** Spend limits over all groups, in USD per calendar day / month (pincer's time zone); the main group can change them. */
  PINCER_BUDGET_DAILY_USD: z.preprocess(emptyToUndefined, z.coerce.number().positive('must be a positive amount in USD').optional()),
  PINCER_BUDGET_MONTHLY_USD: z.preprocess(emptyToUndefined, z.coerce.number().positive('must be a positive amount in USD').optional()),
  PINCER_MAIN_CHAT: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .regex(/^[a-z]+:.{1,256}$/, 'a chat id such as tg:123456')
      .optional(),
  ),
  TELEGRAM_BOT_TOKEN: optionalString,
  TELEGRAM_API_ROOT: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).default('https://api.telegram.org')),
  /** Extra bot tokens, comma-separated: each posts as one sub-agent (renamed to its role), never polls. */
  TELEGRAM_POOL_TOKENS: z.preprocess(
    emptyToUndefined,
    z
      .string()
      .transform((s) =>
        s
          .split(',')
          .map((t) => t.trim())
          .filter(Boolean),
      )
      .pipe(z.array(z.string().regex(/^\d+:[\w-]+$/, 'each a bot token such as 123456:ABC-def')).max(20))
      .optional(),
  ),
  /** An image address for a sub-agent's face on Slack and Discord, `{name}` standing for its name (URL-encoded). */
  PINCER_SENDER_AVATAR_URL: z.preprocess(
    emptyToUndefined,
    z
      .url({ protocol: /^https$/ })
      .refine((u) => u.includes('{name}'), 'must contain {name}')
      .optional(),
  ),
  SLACK_BOT_TOKEN: optionalString,
  SLACK_APP_TOKEN: optionalString,
  SLACK_API_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).default('https://slack.com/api/')),
  DISCORD_BOT_TOKEN: optionalString,
  DISCORD_API_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).default('https://discord.com/api')),
  SIGNAL_ACCOUNT: optionalString,
  SIGNAL_CLI_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^(https?|tcp)$/ }).default('http://127.0.0.1:8080')),
  WHATSAPP_ENABLED: z.preprocess(emptyToUndefined, z.enum(['true', 'false', '1', '0']).default('false')),
  ANTHROPIC_API_KEY: optionalString,
  CLAUDE_CODE_OAUTH_TOKEN: optionalString,
  ANTHROPIC_BASE_URL: z.preprocess(emptyToUndefined, z.url({ protocol: /^https?$/ }).default('https://api.anthropic.com')),
  PINCER_MODEL: optionalString,
  /** Claude Code's reasoning effort for groups that set none (the SDK's `effort`); unset: Claude Code's default. */
  PINCER_EFFORT: z.preprocess(emptyToUndefined, z.enum(EFFORT_LEVELS).optional()),
  /** Tried when the model is overloaded or unavailable (the SDK's `fallbackModel`), for groups on the default provider. */
  PINCER_FALLBACK_MODEL: optionalString,
  PINCER_MODEL_MAX_RETRIES: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(20).default(5)),
  PINCER_IDLE_TIMEOUT_SEC: positiveInt(300),
  /** How many recently active groups keep an agent started ahead of their next message; 0: none, and no hints either. */
  PINCER_PREWARM: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).max(64).default(1)),
  /** An agent is started ahead of a message only while the host has this much memory available. */
  PINCER_PREWARM_MIN_FREE_MB: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).default(1024)),
  PINCER_TURN_TIMEOUT_SEC: positiveInt(900),
  /** A conversation whose last model call read this many tokens is compacted (after a memory flush) before the next turn; 0: never. */
  PINCER_COMPACT_AT_TOKENS: z.preprocess(emptyToUndefined, z.coerce.number().int().min(0).default(150_000)),
  PINCER_MAX_TASKS_PER_GROUP: positiveInt(50),
  LOG_LEVEL: z.preprocess(emptyToUndefined, z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info')),
  /** auto: readable lines on a terminal, JSON lines otherwise (a journal, a file, a pipe). */
  LOG_FORMAT: z.preprocess(emptyToUndefined, z.enum(['auto', 'json', 'text']).default('auto')),
});

/**
 * The real model credential; it stays on the host and never enters a sandbox. `api-key` goes as `x-api-key`,
 * `oauth` (a Claude subscription's token) and `bearer` (OpenRouter, LiteLLM) as `authorization: Bearer`,
 * `none` (a local Ollama) as no header at all.
 */
export type ModelCredential =
  | { kind: 'api-key'; value: string }
  | { kind: 'oauth'; value: string }
  | { kind: 'bearer'; value: string }
  | { kind: 'none' };

/** An Anthropic-compatible endpoint and how to authenticate to it. */
export interface ModelProvider {
  /** `anthropic` for the ANTHROPIC_* settings; else the <NAME> of PINCER_PROVIDER_<NAME>_URL, lower-cased. */
  name: string;
  baseUrl: string;
  /** Undefined only for the default provider without ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN. */
  credential: ModelCredential | undefined;
  /** The model groups on this provider use when they set none (PINCER_MODEL for the default one). */
  model: string | undefined;
}

export interface Config {
  assistantName: string;
  timezone: string;
  home: string;
  host: string;
  port: number;
  allowedHosts: string[];
  token: string | undefined;
  maxConcurrentAgents: number;
  runtime: 'auto' | RuntimeName;
  containerImage: string;
  sandboxLimits: ResourceLimits;
  /** Sandboxes run as uidBase + group id when pincer is root: one unprivileged user per group. */
  sandboxUidBase: number;
  /** Where extra mounts are allowed from; outside the project and every sandbox. */
  mountAllowlistPath: string;
  mediaMaxBytes: number;
  /** Real path of PINCER_EXTRA_CA_CERTS. */
  extraCaCerts: string | undefined;
  /** Where voice notes are transcribed (the key is a host secret); undefined: they reach the agent as files only. */
  transcription: { url: string; key: string | undefined; model: string } | undefined;
  /** Where messages and memory files are embedded for recall by meaning (the key is a host secret); undefined: keywords alone. */
  embeddings: EmbeddingsConfig | undefined;
  /** The global budget when the owner has not set one in pincer. */
  defaultBudget: { dailyUsd: number | null; monthlyUsd: number | null };
  /** A messenger chat (the owner's DM) to be the main group instead of `local:main`. */
  mainChat: string | undefined;
  channels: ChannelConfig;
  credential: ModelCredential | undefined;
  modelBaseUrl: string;
  model: string | undefined;
  /** Every provider by name, the default one (`anthropic`, the fields above) first. */
  providers: ReadonlyMap<string, ModelProvider>;
  /** Effort for groups that set none; undefined: Claude Code's default. */
  effort: Effort | undefined;
  /** Fallback model for groups on the default provider that set none. */
  fallbackModel: string | undefined;
  modelMaxRetries: number;
  idleTimeoutMs: number;
  /** Agents started ahead of a message: the pool of recently active groups, and the memory it needs free. */
  prewarm: { poolSize: number; minFreeBytes: number };
  turnTimeoutMs: number;
  /** pincer compacts a conversation itself from this size (tokens of its last model call), before Claude Code would; 0: never. */
  compactAtTokens: number;
  /** Active and paused scheduled tasks one group may have. */
  maxTasksPerGroup: number;
  logLevel: string;
  logFormat: 'auto' | 'json' | 'text';
}

/** Each messenger is enabled by its credentials being set; its endpoint can point elsewhere (self-hosted, tests). */
export interface ChannelConfig {
  /** `poolTokens`: extra bots that post as sub-agents. */
  telegram?: { token: string; apiRoot: string; poolTokens: string[] };
  slack?: { botToken: string; appToken: string; apiUrl: string };
  discord?: { token: string; apiUrl: string };
  signal?: { account: string; url: string };
  whatsapp?: { enabled: true };
  /** A sub-agent's picture on Slack and Discord: an https address with `{name}` in it. */
  senderAvatarUrl?: string;
}

export interface EmbeddingsConfig {
  /** Base URL of an OpenAI-compatible API: `<url>/embeddings` is called. */
  url: string;
  key: string | undefined;
  model: string;
}

export class ConfigError extends Error {}

/** Reads `.env` in `cwd` (if present) under `env`; variables set in the environment win. */
export function loadConfig(env: Record<string, string | undefined>, cwd: string): Config {
  const dotenvPath = join(cwd, '.env');
  const fromFile = existsSync(dotenvPath) ? parseDotenv(readFileSync(dotenvPath)) : {};
  const merged = { ...fromFile, ...env };
  const parsed = schema.safeParse(merged);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration (environment or ${dotenvPath}):\n${lines.join('\n')}`);
  }
  const c = parsed.data;
  if (c.PINCER_TRANSCRIBE_KEY && !c.PINCER_TRANSCRIBE_URL)
    throw new ConfigError(
      `invalid configuration (environment or ${dotenvPath}):\n  PINCER_TRANSCRIBE_URL: must be set with PINCER_TRANSCRIBE_KEY (https://api.openai.com/v1, say)`,
    );
  if ((c.PINCER_EMBEDDINGS_KEY || c.PINCER_EMBEDDINGS_MODEL) && !c.PINCER_EMBEDDINGS_URL)
    throw new ConfigError(
      `invalid configuration (environment or ${dotenvPath}):\n  PINCER_EMBEDDINGS_URL: must be set with PINCER_EMBEDDINGS_KEY or _MODEL (https://api.openai.com/v1, or http://127.0.0.1:11434/v1 for Ollama)`,
    );
  if (c.PINCER_EMBEDDINGS_URL && !c.PINCER_EMBEDDINGS_MODEL)
    throw new ConfigError(
      `invalid configuration (environment or ${dotenvPath}):\n  PINCER_EMBEDDINGS_MODEL: must be set with PINCER_EMBEDDINGS_URL (text-embedding-3-small, or nomic-embed-text for Ollama)`,
    );
  const credential: ModelCredential | undefined = c.ANTHROPIC_API_KEY
    ? { kind: 'api-key', value: c.ANTHROPIC_API_KEY }
    : c.CLAUDE_CODE_OAUTH_TOKEN
      ? { kind: 'oauth', value: c.CLAUDE_CODE_OAUTH_TOKEN }
      : undefined;
  const providers = new Map<string, ModelProvider>([
    [DEFAULT_PROVIDER, { name: DEFAULT_PROVIDER, baseUrl: c.ANTHROPIC_BASE_URL, credential, model: c.PINCER_MODEL }],
  ]);
  for (const p of namedProviders(merged, dotenvPath)) providers.set(p.name, p);
  return {
    assistantName: c.ASSISTANT_NAME,
    timezone: c.TZ,
    home: resolve(cwd, c.PINCER_HOME),
    host: c.PINCER_HOST,
    port: c.PINCER_PORT,
    allowedHosts: c.PINCER_ALLOWED_HOSTS,
    token: c.PINCER_TOKEN,
    maxConcurrentAgents: c.MAX_CONCURRENT_AGENTS,
    runtime: c.PINCER_RUNTIME,
    containerImage: c.PINCER_CONTAINER_IMAGE,
    sandboxLimits: {
      memoryBytes: c.PINCER_SANDBOX_MEMORY_MB * MIB,
      pids: c.PINCER_SANDBOX_PIDS,
      cpuSeconds: c.PINCER_SANDBOX_CPU_SEC,
      tmpBytes: c.PINCER_SANDBOX_TMP_MB * MIB,
      fileBytes: c.PINCER_SANDBOX_FILE_MB * MIB,
    },
    sandboxUidBase: c.PINCER_SANDBOX_UID_BASE,
    mountAllowlistPath: c.PINCER_MOUNT_ALLOWLIST ?? join(homedir(), '.config', 'pincer', 'mount-allowlist.json'),
    mediaMaxBytes: c.PINCER_MEDIA_MAX_MB * MIB,
    extraCaCerts: c.PINCER_EXTRA_CA_CERTS === undefined ? undefined : caCertsFile(resolve(cwd, c.PINCER_EXTRA_CA_CERTS)),
    transcription: c.PINCER_TRANSCRIBE_URL
      ? { url: c.PINCER_TRANSCRIBE_URL, key: c.PINCER_TRANSCRIBE_KEY, model: c.PINCER_TRANSCRIBE_MODEL }
      : undefined,
    embeddings:
      c.PINCER_EMBEDDINGS_URL && c.PINCER_EMBEDDINGS_MODEL
        ? { url: c.PINCER_EMBEDDINGS_URL.replace(/\/$/, ''), key: c.PINCER_EMBEDDINGS_KEY, model: c.PINCER_EMBEDDINGS_MODEL }
        : undefined,
    defaultBudget: { dailyUsd: c.PINCER_BUDGET_DAILY_USD ?? null, monthlyUsd: c.PINCER_BUDGET_MONTHLY_USD ?? null },
    mainChat: c.PINCER_MAIN_CHAT,
    channels: {
      ...(c.TELEGRAM_BOT_TOKEN
        ? {
            telegram: {
              token: c.TELEGRAM_BOT_TOKEN,
              apiRoot: c.TELEGRAM_API_ROOT.replace(/\/$/, ''),
              poolTokens: c.TELEGRAM_POOL_TOKENS ?? [],
            },
          }
        : {}),
      ...(c.PINCER_SENDER_AVATAR_URL ? { senderAvatarUrl: c.PINCER_SENDER_AVATAR_URL } : {}),
      ...(c.SLACK_BOT_TOKEN && c.SLACK_APP_TOKEN
        ? { slack: { botToken: c.SLACK_BOT_TOKEN, appToken: c.SLACK_APP_TOKEN, apiUrl: c.SLACK_API_URL } }
        : {}),
      ...(c.DISCORD_BOT_TOKEN ? { discord: { token: c.DISCORD_BOT_TOKEN, apiUrl: c.DISCORD_API_URL.replace(/\/$/, '') } } : {}),
      ...(c.SIGNAL_ACCOUNT ? { signal: { account: c.SIGNAL_ACCOUNT, url: c.SIGNAL_CLI_URL } } : {}),
      ...(c.WHATSAPP_ENABLED === 'true' || c.WHATSAPP_ENABLED === '1' ? { whatsapp: { enabled: true as const } } : {}),
    },
    credential,
    modelBaseUrl: c.ANTHROPIC_BASE_URL,
    model: c.PINCER_MODEL,
    providers,
    effort: c.PINCER_EFFORT,
    fallbackModel: c.PINCER_FALLBACK_MODEL,
    modelMaxRetries: c.PINCER_MODEL_MAX_RETRIES,
    idleTimeoutMs: c.PINCER_IDLE_TIMEOUT_SEC * 1000,
    prewarm: { poolSize: c.PINCER_PREWARM, minFreeBytes: c.PINCER_PREWARM_MIN_FREE_MB * MIB },
    turnTimeoutMs: c.PINCER_TURN_TIMEOUT_SEC * 1000,
    compactAtTokens: c.PINCER_COMPACT_AT_TOKENS,
    maxTasksPerGroup: c.PINCER_MAX_TASKS_PER_GROUP,
    logLevel: c.LOG_LEVEL,
    logFormat: c.LOG_FORMAT,
  };
}

const PROVIDER_VARIABLE = /^PINCER_PROVIDER_([A-Z0-9_]+)_(URL|AUTH|KEY|MODEL)$/;

const providerSchema = z.object({
  URL: z.url({ protocol: /^https?$/ }),
  AUTH: z.enum(PROVIDER_AUTH).optional(),
  KEY: z.string().min(1).optional(),
  MODEL: z.string().min(1).max(200).optional(),
});

/**
 * Named providers from PINCER_PROVIDER_<NAME>_URL / _AUTH / _KEY / _MODEL (one variable a line in a .env file,
 * no JSON to quote). _AUTH defaults to x-api-key with a key and none without.
 */
function namedProviders(vars: Record<string, string | undefined>, dotenvPath: string): ModelProvider[] {
  const byName = new Map<string, Record<string, string>>();
  for (const [key, value] of Object.entries(vars)) {
    const m = PROVIDER_VARIABLE.exec(key);
    if (!m?.[1] || !m[2] || value === undefined || value === '') continue;
    const fields = byName.get(m[1]) ?? {};
    fields[m[2]] = value;
    byName.set(m[1], fields);
  }
  const problems: string[] = [];
  const providers: ModelProvider[] = [];
  for (const [upper, fields] of byName) {
    const where = `PINCER_PROVIDER_${upper}`;
    const name = upper.toLowerCase();
    if (name === DEFAULT_PROVIDER) {
      problems.push(
        `${where}_*: "${DEFAULT_PROVIDER}" is the provider of ANTHROPIC_BASE_URL and ANTHROPIC_API_KEY; give this one another name`,
      );
      continue;
    }
    const parsed = providerSchema.safeParse(fields);
    if (!parsed.success) {
      for (const i of parsed.error.issues)
        problems.push(
          `${where}_${String(i.path[0] ?? 'URL')}: ${i.path[0] === 'URL' && fields.URL === undefined ? 'must be set (the endpoint, e.g. https://openrouter.ai/api)' : i.message}`,
        );
      continue;
    }
    const { URL: baseUrl, KEY: key, MODEL: model } = parsed.data;
    const auth = parsed.data.AUTH ?? (key ? 'x-api-key' : 'none');
    if (auth !== 'none' && !key) {
      problems.push(`${where}_KEY: must be set for ${where}_AUTH=${auth}`);
      continue;
    }
    if (auth === 'none' && key) {
      problems.push(`${where}_AUTH: is none, so ${where}_KEY would never be sent; say x-api-key or bearer, or remove the key`);
      continue;
    }
    const credential: ModelCredential =
      auth === 'none' ? { kind: 'none' } : { kind: auth === 'bearer' ? 'bearer' : 'api-key', value: key as string };
    providers.push({ name, baseUrl, credential, model });
  }
  if (problems.length > 0)
    throw new ConfigError(`invalid configuration (environment or ${dotenvPath}):\n${problems.map((p) => `  ${p}`).join('\n')}`);
  return providers.sort((a, b) => a.name.localeCompare(b.name));
}

/** The extra CA file must be a readable PEM certificate file; its real path is what gets mounted. */
function caCertsFile(path: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new ConfigError(`PINCER_EXTRA_CA_CERTS: cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (!text.includes('-----BEGIN CERTIFICATE-----')) throw new ConfigError(`PINCER_EXTRA_CA_CERTS: ${path} holds no PEM certificate`);
  return realpathSync(path);
}

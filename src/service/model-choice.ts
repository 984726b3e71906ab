// Which model a group's (or a scheduled run's) agent uses, on which provider, with which effort and fallback: the
// group's own settings over the environment's defaults, a task's over its group's.
import { DEFAULT_PROVIDER, type Effort, type ModelCredential, type ModelProvider } from '../config.js';
import type { Group, Task } from '../store/index.js';

/** The environment's part: every configured provider and the defaults for groups that set nothing. */
export interface ModelDefaults {
  providers: ReadonlyMap<string, ModelProvider>;
  effort: Effort | undefined;
  /** For groups on the default provider only: another provider does not know its name. */
  fallbackModel: string | undefined;
}

/** A provider a session can use: it has its credential (of whatever kind, `none` included). */
export type ReadyProvider = ModelProvider & { credential: ModelCredential };

export interface ModelChoice {
  provider: ReadyProvider;
  /** Undefined: Claude Code's own default model. */
  model: string | undefined;
  effort: Effort | undefined;
  fallbackModel: string | undefined;
}

/** Why the default provider cannot be used: its credential is not set. */
export const NO_CREDENTIALS = 'no model credentials are set (ANTHROPIC_API_KEY or CLAUDE_CODE_OAUTH_TOKEN)';

export type ModelChoiceResult = { ok: true; choice: ModelChoice } | { ok: false; reason: string };

export function modelChoice(defaults: ModelDefaults, group: Group, task?: Pick<Task, 'model' | 'effort'>): ModelChoiceResult {
  const own = group.models;
  const name = own.provider ?? DEFAULT_PROVIDER;
  const provider = defaults.providers.get(name);
  if (!provider)
    return {
      ok: false,
      reason: `the group's provider "${name}" is not configured (no PINCER_PROVIDER_${name.toUpperCase()}_URL); set it, or set the group's provider back to the default`,
    };
  const { credential } = provider;
  if (!credential) return { ok: false, reason: NO_CREDENTIALS };
  const model = task?.model ?? own.model ?? provider.model;
  const fallback = own.fallbackModel ?? (provider.name === DEFAULT_PROVIDER ? defaults.fallbackModel : undefined);
  return {
    ok: true,
    choice: {
      provider: { ...provider, credential },
      model,
      effort: task?.effort ?? own.effort ?? defaults.effort,
      // Claude Code refuses a fallback that is the model itself.
      fallbackModel: fallback !== undefined && fallback !== model ? fallback : undefined,
    },
  };
}

/** One line for the trace and logs: "claude-haiku-4-5 on anthropic, effort low". */
export function describeChoice(c: ModelChoice): string {
  const parts = [`${c.model ?? "Claude Code's default model"} on ${c.provider.name}`];
  if (c.effort) parts.push(`effort ${c.effort}`);
  if (c.fallbackModel) parts.push(`fallback ${c.fallbackModel}`);
  return parts.join(', ');
}

/** The group's choice in one line, or why it has none. */
export function describeGroupModel(defaults: ModelDefaults, group: Group): string {
  const chosen = modelChoice(defaults, group);
  return chosen.ok ? describeChoice(chosen.choice) : `none: ${chosen.reason}`;
}

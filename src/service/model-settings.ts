// A group's model settings as the owner and the main group change and read them: checked against the configured
// providers, shown with what is in force (the group's own value, else the environment's default).
import { DEFAULT_PROVIDER, EFFORT_LEVELS, type Effort } from '../config.js';
import type { Group, GroupModels } from '../store/index.js';
import { type ModelDefaults, modelChoice } from './model-choice.js';

/** Each field: a value sets it, null goes back to the default, omitted keeps it. */
export interface ModelChange {
  provider?: string | null;
  model?: string | null;
  effort?: Effort | null;
  fallbackModel?: string | null;
}

/** What a group runs on; `own` is what the group itself sets (null: the default). */
export interface ModelView {
  provider: string;
  /** null: Claude Code's default model. */
  model: string | null;
  effort: Effort | null;
  fallbackModel: string | null;
  own: GroupModels;
  /** Why the group cannot run now (its provider is gone from the configuration, say); null when it can. */
  problem: string | null;
}

/** A configured provider as listings show it: never its key. */
export interface ProviderView {
  name: string;
  baseUrl: string;
  auth: 'x-api-key' | 'bearer' | 'none' | 'not set';
  model: string | null;
  isDefault: boolean;
}

/**
 * A model id as providers spell them: Anthropic's (`claude-haiku-4-5`, `claude-sonnet-4-5[1m]`), OpenRouter's
 * (`anthropic/claude-sonnet-4.5`), Ollama's (`qwen3:8b`). No spaces or control characters: it goes into a
 * command line and a request body.
 */
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._:/@+[\]-]{0,199}$/;

/** The group's settings after `change`, or what is wrong with it (nothing is changed then). */
export function applyModelChange(
  defaults: ModelDefaults,
  current: GroupModels,
  change: ModelChange,
): { ok: true; models: GroupModels } | { ok: false; problem: string } {
  const problems: string[] = [];
  for (const [field, value] of [
    ['model', change.model],
    ['fallbackModel', change.fallbackModel],
  ] as const)
    if (typeof value === 'string' && !MODEL_ID.test(value))
      problems.push(`${field} "${value.slice(0, 80)}" is not a model id (letters, digits and . _ : / @ + - [ ], at most 200)`);
  if (change.effort !== undefined && change.effort !== null && !EFFORT_LEVELS.includes(change.effort))
    problems.push(`effort must be one of ${EFFORT_LEVELS.join(', ')}`);
  if (typeof change.provider === 'string' && !defaults.providers.has(change.provider))
    problems.push(`there is no provider "${change.provider}"; configured: ${[...defaults.providers.keys()].join(', ')}`);
  if (problems.length > 0) return { ok: false, problem: `nothing changed; ${problems.join('; ')}` };
  const pick = <K extends keyof GroupModels>(k: K): GroupModels[K] =>
    change[k] === undefined ? current[k] : (change[k] as GroupModels[K]);
  // The default provider is stored as none: the group follows whatever ANTHROPIC_* say.
  const provider = pick('provider');
  return {
    ok: true,
    models: {
      provider: provider === DEFAULT_PROVIDER ? null : provider,
      model: pick('model'),
      effort: pick('effort'),
      fallbackModel: pick('fallbackModel'),
    },
  };
}

/** What is wrong with a task's own model and effort (only an isolated run has a session of its own to run them in). */
export function taskModelProblem(contextMode: 'group' | 'isolated', model: string | null, effort: Effort | null): string | undefined {
  if (model !== null && !MODEL_ID.test(model))
    return `model "${model.slice(0, 80)}" is not a model id (letters, digits and . _ : / @ + - [ ], at most 200)`;
  if (effort !== null && !EFFORT_LEVELS.includes(effort)) return `effort must be one of ${EFFORT_LEVELS.join(', ')}`;
  if ((model !== null || effort !== null) && contextMode === 'group')
    return "a task in the group's context runs in the group's conversation, on the group's model; make it isolated (context_mode isolated) to give it a model or effort of its own";
  return undefined;
}

export function modelView(defaults: ModelDefaults, group: Group): ModelView {
  const chosen = modelChoice(defaults, group);
  if (!chosen.ok)
    return {
      provider: group.models.provider ?? DEFAULT_PROVIDER,
      model: group.models.model,
      effort: group.models.effort,
      fallbackModel: group.models.fallbackModel,
      own: group.models,
      problem: chosen.reason,
    };
  const c = chosen.choice;
  return {
    provider: c.provider.name,
    model: c.model ?? null,
    effort: c.effort ?? null,
    fallbackModel: c.fallbackModel ?? null,
    own: group.models,
    problem: null,
  };
}

export function providerViews(defaults: ModelDefaults): ProviderView[] {
  return [...defaults.providers.values()].map((p) => ({
    name: p.name,
    baseUrl: p.baseUrl,
    auth: !p.credential ? 'not set' : p.credential.kind === 'api-key' ? 'x-api-key' : p.credential.kind === 'none' ? 'none' : 'bearer',
    model: p.model ?? null,
    isDefault: p.name === DEFAULT_PROVIDER,
  }));
}

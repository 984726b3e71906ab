// The owner's administration over HTTP: groups and scheduled tasks, each call a thin shell around Control.
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { EFFORT_LEVELS } from '../../config.js';
import { MEMORY_FILE_BYTES } from '../../memory/file-index.js';
import { type Actor, type Control, ControlError, type ControlErrorCode, type TaskView } from '../../service/control.js';
import type { Insight } from '../../service/insight.js';
import type { TaskRun } from '../../store/index.js';

export interface AdminApiDeps {
  control: Control;
  insight: Insight;
  authorized: (req: FastifyRequest, reply: FastifyReply) => boolean;
  /** A fresh one-time link that logs a browser in to the web page. */
  loginLink(): string;
}

/** Whoever holds the API token is the owner. */
const OWNER: Actor = { kind: 'owner' };

const STATUS: Record<ControlErrorCode, number> = { invalid: 400, forbidden: 403, not_found: 404, conflict: 409 };

const validTimeZone = (tz: string): boolean => {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
};

const timezone = z.string().min(1).max(64).refine(validTimeZone, 'must be an IANA time zone such as Europe/Berlin');
const senderAllowlist = z.array(z.string().min(1).max(200)).max(1000);
const scheduleType = z.enum(['cron', 'interval', 'once']);
const contextMode = z.enum(['group', 'isolated']);
const flag = z.enum(['0', '1', 'true', 'false']).transform((v) => v === '1' || v === 'true');
const positiveInt = z
  .string()
  .regex(/^[1-9][0-9]{0,14}$/, 'must be a positive integer')
  .transform(Number);

/** A body must be an object of known fields; "expected object, received undefined" says less than this. */
const body = <S extends z.ZodRawShape>(shape: S) =>
  z.strictObject(shape, { error: (issue) => (issue.code === 'invalid_type' ? 'must be a JSON object' : undefined) });

/** A PATCH that changes nothing is more likely a typo than an intent. */
const someField = (value: object) => Object.values(value).some((v) => v !== undefined);

const joinBody = body({
  chatId: z.string().regex(/^[a-z][a-z0-9_-]*:.{1,256}$/, 'must be a chat id such as telegram:-100123 or local:work'),
  folder: z.string().min(1).max(64).optional(),
  trigger: z.string().min(1).max(64).optional(),
  respondToAll: z.boolean().optional(),
  senderAllowlist: senderAllowlist.nullable().optional(),
});

/** A model id or a provider name; null puts the field back to the default. Control checks the rest. */
const modelName = z.string().min(1).max(200).nullable().optional();

const groupChangeBody = body({
  trigger: z.string().min(1).max(64).optional(),
  respondToAll: z.boolean().optional(),
  senderAllowlist: senderAllowlist.nullable().optional(),
  timezone: timezone.nullable().optional(),
  model: modelName,
  effort: z.enum(EFFORT_LEVELS).nullable().optional(),
  provider: z.string().min(1).max(64).nullable().optional(),
  fallbackModel: modelName,
}).refine(someField, 'say what to change: trigger, respondToAll, senderAllowlist, timezone, model, effort, provider or fallbackModel');

const amount = z.number().positive('must be above 0').max(1_000_000, 'must be at most 1000000').nullable().optional();
const budgetBody = body({ group: z.string().min(1).max(64).optional(), dailyUsd: amount, monthlyUsd: amount }).refine(
  (b) => b.dailyUsd !== undefined || b.monthlyUsd !== undefined,
  'say what to change: dailyUsd or monthlyUsd (a number, or null for no limit)',
);

/** The list itself is checked by Control (it names each server in what it refuses). */
const mcpServersBody = body({ servers: z.array(z.unknown()) });

const chatsQuery = z.object({ all: flag.optional() });
const tasksQuery = z.object({ group: z.string().min(1).max(64).optional() });
const usageQuery = z.object({ days: positiveInt.pipe(z.number().max(366, 'must be at most 366')).optional() });
const runsQuery = z.object({ limit: positiveInt.pipe(z.number().max(500, 'must be at most 500')).optional() });
const folderParams = z.object({ folder: z.string().min(1).max(256) });
const idParams = z.object({ id: positiveInt });

const prompt = z.string().min(1).max(20_000);
const scheduleValue = z.string().min(1).max(200);

const newTaskBody = body({
  group: z.string().min(1).max(64),
  prompt,
  scheduleType,
  scheduleValue,
  contextMode: contextMode.default('group'),
  timezone: timezone.optional(),
  model: modelName,
  effort: z.enum(EFFORT_LEVELS).nullable().optional(),
});

const taskChangeBody = body({
  prompt: prompt.optional(),
  scheduleType: scheduleType.optional(),
  scheduleValue: scheduleValue.optional(),
  contextMode: contextMode.optional(),
  timezone: timezone.optional(),
  model: modelName,
  effort: z.enum(EFFORT_LEVELS).nullable().optional(),
}).refine(someField, 'say what to change: prompt, scheduleType, scheduleValue, contextMode, timezone, model or effort');

const day = z.string().regex(/^\d{4}-\d{2}-\d{2}$/, 'must be a day as YYYY-MM-DD');
const memorySearchQuery = z.strictObject({
  q: z.string().trim().min(1, 'say what to search for').max(500),
  group: z.string().min(1).max(64),
  from: day.optional(),
  to: day.optional(),
  sender: z.string().min(1).max(100).optional(),
  limit: positiveInt.optional(),
});
const memoryFileQuery = z.strictObject({ path: z.string().min(1).max(300) });
const memorySaveBody = body({
  path: z.string().min(1).max(300),
  text: z.string(),
  version: z
    .string()
    .regex(/^[0-9a-f]{1,64}$/, 'must be the version the file was read with')
    .nullable()
    .optional(),
});
/** A memory file at its limit, with every character escaped as JSON may (\uXXXX, 6 bytes each), and the rest. */
const MEMORY_BODY_BYTES = 6 * MEMORY_FILE_BYTES + 64 * 1024;

function describe(error: z.ZodError, where: string): string {
  return error.issues.map((i) => `${i.path.join('.') || where}: ${i.message}`).join('; ');
}

/** Bad input and Control's refusals travel the same way: a ControlError the route wrapper turns into a status. */
function parse<S extends z.ZodType>(schema: S, value: unknown, where: string): z.output<S> {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ControlError('invalid', describe(parsed.error, where));
  return parsed.data;
}

const iso = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

/** Runs keep their millisecond fields; the ISO twins are for people reading the JSON. */
function presentRun(r: TaskRun) {
  return { ...r, dueAtIso: iso(r.dueAt), startedAtIso: iso(r.startedAt), endedAtIso: iso(r.endedAt) };
}

/** A task with its state in words (a one-off held by a budget is waiting, not completed). */
function withState(insight: Insight, t: TaskView) {
  const { state, lastRunState } = insight.taskState(t);
  return { ...t, state, lastRun: t.lastRun && { ...t.lastRun, state: lastRunState ?? t.lastRun.status } };
}

export function registerAdminRoutes(app: FastifyInstance, deps: AdminApiDeps): void {
  const { control, authorized } = deps;

  type Handler = (req: FastifyRequest, reply: FastifyReply) => unknown;
  const guarded =
    (handler: Handler) =>
    async (req: FastifyRequest, reply: FastifyReply): Promise<unknown> => {
      if (!authorized(req, reply)) return reply;
      try {
        return await handler(req, reply);
      } catch (err) {
        if (err instanceof ControlError) return reply.code(STATUS[err.code]).send({ error: err.message });
        throw err;
      }
    };

  // ---- groups ----

  app.get(
    '/api/v1/groups',
    guarded(() => ({ groups: control.listGroups(OWNER) })),
  );

  app.post(
    '/api/v1/groups',
    guarded((req, reply) => {
      const body = parse(joinBody, req.body, 'body');
      return reply.code(201).send({ group: control.registerGroup(OWNER, body) });
    }),
  );

  app.patch(
    '/api/v1/groups/:folder',
    guarded((req) => {
      const { folder } = parse(folderParams, req.params, 'path');
      const { model, effort, provider, fallbackModel, ...settings } = parse(groupChangeBody, req.body, 'body');
      const models = { model, effort, provider, fallbackModel };
      // The model first: a refused model or provider (the likelier mistake) leaves the other settings as they were.
      const changed = someField(models) ? control.setGroupModel(OWNER, folder, models) : undefined;
      return { group: someField(settings) ? control.updateGroup(OWNER, folder, settings) : changed };
    }),
  );

  app.get(
    '/api/v1/providers',
    guarded(() => ({ providers: control.listProviders(OWNER) })),
  );

  app.delete(
    '/api/v1/groups/:folder',
    guarded((req) => {
      const { folder } = parse(folderParams, req.params, 'path');
      control.unregisterGroup(OWNER, folder);
      return { ok: true };
    }),
  );

  app.get(
    '/api/v1/groups/:folder/mcp-servers',
    guarded((req) => {
      const { folder } = parse(folderParams, req.params, 'path');
      return { servers: control.listMcpServers(OWNER, folder) };
    }),
  );

  /** Replaces the whole list; applies from the group's next session. Secrets come back masked. */
  app.put(
    '/api/v1/groups/:folder/mcp-servers',
    guarded((req) => {
      const { folder } = parse(folderParams, req.params, 'path');
      const { servers } = parse(mcpServersBody, req.body, 'body');
      return { servers: control.setMcpServers(OWNER, folder, servers), appliesFrom: 'the next session of the group' };
    }),
  );

  app.get(
    '/api/v1/chats',
    guarded((req) => {
      const { all } = parse(chatsQuery, req.query, 'query');
      return { chats: control.listChats(OWNER, { includeJoined: all ?? false }) };
    }),
  );

  // ---- tasks ----

  app.get(
    '/api/v1/tasks',
    guarded((req) => {
      const { group } = parse(tasksQuery, req.query, 'query');
      return { tasks: control.listTasks(OWNER, group === undefined ? {} : { group }).map((t) => withState(deps.insight, t)) };
    }),
  );

  app.post(
    '/api/v1/tasks',
    guarded((req, reply) => {
      const { group, ...input } = parse(newTaskBody, req.body, 'body');
      return reply.code(201).send({ task: control.scheduleTask(OWNER, { ...input, targetGroup: group }) });
    }),
  );

  app.patch(
    '/api/v1/tasks/:id',
    guarded((req) => {
      const { id } = parse(idParams, req.params, 'path');
      const change = parse(taskChangeBody, req.body, 'body');
      return { task: control.updateTask(OWNER, id, change) };
    }),
  );

  const transitions = {
    pause: (id: number) => control.pauseTask(OWNER, id),
    resume: (id: number) => control.resumeTask(OWNER, id),
    cancel: (id: number) => control.cancelTask(OWNER, id),
  } as const;
  for (const [action, apply] of Object.entries(transitions)) {
    app.post(
      `/api/v1/tasks/:id/${action}`,
      guarded((req) => {
        const { id } = parse(idParams, req.params, 'path');
        return { task: apply(id) };
      }),
    );
  }

  app.get(
    '/api/v1/tasks/:id/runs',
    guarded((req) => {
      const { id } = parse(idParams, req.params, 'path');
      const { limit } = parse(runsQuery, req.query, 'query');
      return { runs: control.taskRuns(OWNER, id, limit).map((r) => ({ ...presentRun(r), state: deps.insight.runState(r) })) };
    }),
  );

  // ---- memory ----

  app.get(
    '/api/v1/memory/search',
    guarded(async (req) => {
      const q = parse(memorySearchQuery, req.query, 'query');
      return control.memory.search(OWNER, { text: q.q, group: q.group, from: q.from, to: q.to, sender: q.sender, limit: q.limit });
    }),
  );

  app.get(
    '/api/v1/groups/:folder/memory',
    guarded(async (req) => {
      const { folder } = parse(folderParams, req.params, 'path');
      return { files: await control.memory.listFiles(OWNER, folder) };
    }),
  );

  app.get(
    '/api/v1/groups/:folder/memory/file',
    guarded(async (req) => {
      const { folder } = parse(folderParams, req.params, 'path');
      const { path } = parse(memoryFileQuery, req.query, 'query');
      return control.memory.readFile(OWNER, folder, path);
    }),
  );

  /** Saves a whole memory file; `version` is the one the GET gave (omitted or null: a file not there yet). */
  app.put(
    '/api/v1/groups/:folder/memory/file',
    {
      bodyLimit: MEMORY_BODY_BYTES,
      // Who may send a body this large is checked before it is read.
      onRequest: async (req, reply) => {
        if (!authorized(req, reply)) return reply;
      },
    },
    guarded(async (req) => {
      const { folder } = parse(folderParams, req.params, 'path');
      const { path, text, version } = parse(memorySaveBody, req.body, 'body');
      const saved = await control.memory.writeFile(OWNER, folder, path, text, version ?? null);
      return { path: saved.path, version: saved.version };
    }),
  );

  // ---- spend ----

  app.get(
    '/api/v1/budgets',
    guarded(() => control.budgets(OWNER)),
  );

  app.put(
    '/api/v1/budgets',
    guarded((req) => control.setBudget(OWNER, parse(budgetBody, req.body, 'body'))),
  );

  app.post(
    '/api/v1/login-links',
    guarded((_req, reply) => reply.code(201).send({ url: deps.loginLink() })),
  );

  // ---- answers: a message's trace, what runs now, what it cost ----

  app.get(
    '/api/v1/messages/:id/trace',
    guarded((req, reply) => {
      const { id } = parse(idParams, req.params, 'path');
      const trace = deps.insight.trace(id);
      return trace ?? reply.code(404).send({ error: `there is no message ${id}` });
    }),
  );

  app.get(
    '/api/v1/status',
    guarded(() => deps.insight.status()),
  );

  app.get(
    '/api/v1/usage',
    guarded((req) => {
      const { days } = parse(usageQuery, req.query, 'query');
      return { usage: deps.insight.usage(days ?? 30) };
    }),
  );
}

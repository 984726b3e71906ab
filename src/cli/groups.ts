// `pincer groups …`: the chats pincer has joined, and the ones it has seen, through the running pincer's API.
import { readFileSync } from 'node:fs';
import { Command, Option } from 'commander';
import { z } from 'zod';
import type { ApiClient } from './api-client.js';
import { commaList, localTime, printJson, printLine, printTable, truncate, withPincer } from './output.js';

const groupSchema = z.object({
  chatId: z.string(),
  folder: z.string(),
  name: z.string().nullable(),
  channel: z.string(),
  trigger: z.string(),
  respondToAll: z.boolean(),
  isMain: z.boolean(),
  senderAllowlist: z.array(z.string()).nullable(),
  timezone: z.string(),
  egressPolicy: z.string(),
  models: z.object({
    provider: z.string(),
    model: z.string().nullable(),
    effort: z.string().nullable(),
    fallbackModel: z.string().nullable(),
    problem: z.string().nullable(),
  }),
  live: z.boolean(),
});
const chatSchema = z.object({
  id: z.string(),
  channel: z.string(),
  name: z.string().nullable(),
  isGroup: z.boolean(),
  lastSeenAt: z.number(),
});
const groupsAnswer = z.object({ groups: z.array(groupSchema) });
const groupAnswer = z.object({ group: groupSchema });
const chatsAnswer = z.object({ chats: z.array(chatSchema) });

const mcpServerSchema = z.object({
  name: z.string(),
  type: z.string(),
  route: z.string(),
  command: z.string().optional(),
  args: z.array(z.string()).optional(),
  env: z.record(z.string(), z.string()).optional(),
  url: z.string().optional(),
  headers: z.record(z.string(), z.string()).optional(),
  secretHeaders: z.record(z.string(), z.string()).optional(),
});
const mcpServersAnswer = z.object({ servers: z.array(mcpServerSchema) });

type GroupRow = z.infer<typeof groupSchema>;

const providersAnswer = z.object({
  providers: z.array(
    z.object({ name: z.string(), baseUrl: z.string(), auth: z.string(), model: z.string().nullable(), isDefault: z.boolean() }),
  ),
});

/** "claude-haiku-4-5 on anthropic, effort low", or why the group cannot run. */
function modelSummary(g: GroupRow): string {
  const m = g.models;
  if (m.problem) return `none: ${m.problem}`;
  const parts = [`${m.model ?? 'default model'} on ${m.provider}`];
  if (m.effort) parts.push(`effort ${m.effort}`);
  if (m.fallbackModel) parts.push(`fallback ${m.fallbackModel}`);
  return parts.join(', ');
}

/** `--model default` (and the like) puts the field back to pincer's default. */
const orDefault = (v: string | undefined): string | null | undefined => (v === 'default' ? null : v);

/** Who can wake the agent: any message, one starting with the trigger, and whether only some senders count. */
function engagedBy(g: GroupRow): string {
  const how = g.isMain || g.respondToAll ? 'everyone' : 'trigger';
  if (g.senderAllowlist === null) return how;
  const senders = `allowlist (${g.senderAllowlist.length})`;
  return how === 'everyone' ? senders : `${senders} + trigger`;
}

function summary(g: GroupRow): string {
  const senders = g.senderAllowlist === null ? '' : `, senders ${g.senderAllowlist.join(',') || '(none)'}`;
  return `trigger ${g.trigger}, engaged by ${engagedBy(g)}${senders}, time zone ${g.timezone}, model ${modelSummary(g)}`;
}

async function listGroups(client: ApiClient, json: boolean): Promise<void> {
  const answer = await client.request('GET', '/api/v1/groups');
  if (json) return printJson(answer);
  const { groups } = groupsAnswer.parse(answer);
  if (groups.length === 0) return printLine('no groups');
  printTable(
    ['FOLDER', 'CHAT', 'CHANNEL', 'TRIGGER', 'ENGAGED BY', 'TIME ZONE', 'EGRESS', 'MODEL', 'LIVE'],
    groups.map((g) => [
      g.isMain ? `${g.folder} (main)` : g.folder,
      truncate(g.name ? `${g.chatId} ${g.name}` : g.chatId, 40),
      g.channel,
      g.trigger,
      engagedBy(g),
      g.timezone,
      truncate(g.egressPolicy, 40),
      truncate(modelSummary(g), 60),
      g.live ? 'yes' : 'no',
    ]),
  );
}

async function listChats(client: ApiClient, all: boolean, json: boolean): Promise<void> {
  const answer = await client.request('GET', `/api/v1/chats${all ? '?all=1' : ''}`);
  if (json) return printJson(answer);
  const { chats } = chatsAnswer.parse(answer);
  if (chats.length === 0) return printLine(all ? 'pincer has seen no chats yet' : 'no chats waiting to be joined');
  const folders = new Map<string, string>();
  if (all) for (const g of groupsAnswer.parse(await client.request('GET', '/api/v1/groups')).groups) folders.set(g.chatId, g.folder);
  const headers = ['CHAT', 'CHANNEL', 'NAME', 'KIND', 'LAST SEEN', ...(all ? ['JOINED AS'] : [])];
  printTable(
    headers,
    chats.map((c) => [
      c.id,
      c.channel,
      truncate(c.name ?? '-', 40),
      c.isGroup ? 'group' : 'direct',
      localTime(c.lastSeenAt),
      ...(all ? [folders.get(c.id) ?? '-'] : []),
    ]),
  );
}

/** servers.json: the list itself, or `{ "servers": [...] }` as the API answers it. */
function readServersFile(path: string): unknown[] {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new Error(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`);
  }
  if (Array.isArray(parsed)) return parsed;
  const servers = (parsed as { servers?: unknown } | null)?.servers;
  if (Array.isArray(servers)) return servers;
  throw new Error(`${path} must hold a JSON list of servers, or an object with a "servers" list`);
}

async function mcpServers(client: ApiClient, folder: string, opts: { jsonFile?: string; clear?: boolean; json?: boolean }): Promise<void> {
  const path = `/api/v1/groups/${encodeURIComponent(folder)}/mcp-servers`;
  const change = opts.clear ? [] : opts.jsonFile === undefined ? undefined : readServersFile(opts.jsonFile);
  const answer = await client.request(change === undefined ? 'GET' : 'PUT', path, change === undefined ? undefined : { servers: change });
  if (opts.json) return printJson(answer);
  const { servers } = mcpServersAnswer.parse(answer);
  if (change !== undefined) printLine(`MCP servers of "${folder}" set (${servers.length}); they apply from its next message`);
  if (servers.length === 0) return printLine(`group "${folder}" has no MCP servers`);
  printTable(
    ['NAME', 'TYPE', 'ROUTE', 'COMMAND OR URL', 'SECRETS (masked)'],
    servers.map((s) => [
      s.name,
      s.type,
      s.route,
      truncate(s.url ?? [s.command ?? '', ...(s.args ?? [])].join(' '), 60),
      Object.keys({ ...s.env, ...s.secretHeaders }).join(',') || '-',
    ]),
  );
}

export function groupsCommand(): Command {
  const groups = new Command('groups').description('the chats pincer answers in (its groups), and the chats it has seen');

  groups
    .command('list')
    .description('list the joined groups (or, with --chats, the chats seen but not joined)')
    .option('--json', 'print the API answer as JSON')
    .option('--chats', 'list the chats pincer has seen and not joined')
    .option('--all', 'with --chats: the joined chats too')
    .action(async (opts: { json?: boolean; chats?: boolean; all?: boolean }) => {
      process.exitCode = await withPincer((client) =>
        opts.chats || opts.all ? listChats(client, opts.all === true, opts.json === true) : listGroups(client, opts.json === true),
      );
    });

  groups
    .command('add')
    .description('join a chat: pincer answers in it from now on, with its own agent and folder')
    .argument('<chatId>', 'the chat, e.g. local:work or telegram:-100123 (see groups list --chats)')
    .option('--folder <folder>', "the group's folder name (default: from the chat's name)")
    .option('--trigger <trigger>', 'the word that engages the agent (default: @ and the assistant name)')
    .option('--respond-to-all', 'answer every message, not only those starting with the trigger')
    .option('--senders <ids>', 'only these sender ids (comma-separated) engage the agent')
    .action(async (chatId: string, opts: { folder?: string; trigger?: string; respondToAll?: boolean; senders?: string }) => {
      process.exitCode = await withPincer(async (client) => {
        const body = {
          chatId,
          folder: opts.folder,
          trigger: opts.trigger,
          respondToAll: opts.respondToAll,
          senderAllowlist: opts.senders === undefined ? undefined : commaList(opts.senders),
        };
        const { group } = groupAnswer.parse(await client.request('POST', '/api/v1/groups', body));
        printLine(`joined ${group.chatId} as group "${group.folder}": ${summary(group)}`);
      });
    });

  groups
    .command('remove')
    .description('leave a group: pincer stops answering and cancels its tasks; its folder and history stay')
    .argument('<folder>', "the group's folder")
    .action(async (folder: string) => {
      process.exitCode = await withPincer(async (client) => {
        await client.request('DELETE', `/api/v1/groups/${encodeURIComponent(folder)}`);
        printLine(`group "${folder}" removed (its tasks cancelled; its folder and history kept)`);
      });
    });

  groups
    .command('set')
    .description("change a group's trigger, who engages it, its time zone, or its model (from its next turn)")
    .argument('<folder>', "the group's folder")
    .option('--trigger <trigger>', 'the word that engages the agent')
    .option('--respond-to-all', 'answer every message')
    .option('--no-respond-to-all', 'answer only messages starting with the trigger')
    .addOption(new Option('--senders <ids>', 'only these sender ids (comma-separated) engage the agent').conflicts('allSenders'))
    .addOption(new Option('--all-senders', 'every sender may engage the agent (drops the allowlist)'))
    .addOption(new Option('--timezone <tz>', "the group's time zone, e.g. Europe/Berlin").conflicts('defaultTimezone'))
    .addOption(new Option('--default-timezone', "use pincer's time zone (TZ) again"))
    .option('--model <id>', 'the model its agent runs on, e.g. claude-haiku-4-5 ("default": PINCER_MODEL or the provider\'s)')
    .option('--effort <level>', 'low, medium, high, xhigh or max ("default": PINCER_EFFORT)')
    .option('--provider <name>', 'a provider of PINCER_PROVIDER_<NAME>_URL, or "default" (ANTHROPIC_*); see groups providers')
    .option('--fallback-model <id>', 'the model used while its model is overloaded ("default": PINCER_FALLBACK_MODEL)')
    .action(
      async (
        folder: string,
        opts: {
          trigger?: string;
          respondToAll?: boolean;
          senders?: string;
          allSenders?: boolean;
          timezone?: string;
          defaultTimezone?: boolean;
          model?: string;
          effort?: string;
          provider?: string;
          fallbackModel?: string;
        },
      ) => {
        const body = {
          trigger: opts.trigger,
          respondToAll: opts.respondToAll,
          senderAllowlist: opts.allSenders ? null : opts.senders === undefined ? undefined : commaList(opts.senders),
          timezone: opts.defaultTimezone ? null : opts.timezone,
          model: orDefault(opts.model),
          effort: orDefault(opts.effort),
          provider: orDefault(opts.provider),
          fallbackModel: orDefault(opts.fallbackModel),
        };
        if (Object.values(body).every((v) => v === undefined)) {
          process.stderr.write(
            'nothing to change: give --trigger, --[no-]respond-to-all, --senders or --all-senders, --timezone or --default-timezone, --model, --effort, --provider or --fallback-model\n',
          );
          process.exitCode = 1;
          return;
        }
        process.exitCode = await withPincer(async (client) => {
          const { group } = groupAnswer.parse(await client.request('PATCH', `/api/v1/groups/${encodeURIComponent(folder)}`, body));
          printLine(`group "${group.folder}" updated: ${summary(group)}`);
        });
      },
    );

  groups
    .command('providers')
    .description('the model providers groups can be set to (PINCER_PROVIDER_<NAME>_*), without their keys')
    .option('--json', 'print the API answer as JSON')
    .action(async (opts: { json?: boolean }) => {
      process.exitCode = await withPincer(async (client) => {
        const answer = await client.request('GET', '/api/v1/providers');
        if (opts.json) return printJson(answer);
        printTable(
          ['PROVIDER', 'ENDPOINT', 'AUTH', 'DEFAULT MODEL'],
          providersAnswer
            .parse(answer)
            .providers.map((p) => [p.isDefault ? `${p.name} (default)` : p.name, p.baseUrl, p.auth, p.model ?? "Claude Code's default"]),
        );
      });
    });

  groups
    .command('mcp')
    .description("list a group's extra MCP servers, or replace them (from its next session on)")
    .argument('<folder>', "the group's folder")
    .addOption(
      new Option('--json-file <file>', 'replace them with the servers in this JSON file (a list, see docs/SECURITY.md)').conflicts('clear'),
    )
    .option('--clear', 'remove all of them')
    .option('--json', 'print the API answer as JSON')
    .action(async (folder: string, opts: { jsonFile?: string; clear?: boolean; json?: boolean }) => {
      process.exitCode = await withPincer((client) => mcpServers(client, folder, opts));
    });

  return groups;
}

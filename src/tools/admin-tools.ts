// Tools only the main group's session gets (structural authorization); Control checks again on each call.
import { tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import { EFFORT_LEVELS } from '../config.js';
import type { Actor, Control } from '../service/control.js';
import { answer } from './tool-result.js';

const folder = z.string().min(1).max(64).describe("The group's folder name");

/** The shape only: Control checks everything else and says what is wrong in its own words. */
const strings = z.record(z.string(), z.string());
const mcpServer = z.union([
  z.object({
    name: z.string().describe('a-z, 0-9, _ or -; the tools appear as mcp__<name>__<tool>'),
    type: z.literal('stdio'),
    command: z.string().describe('Absolute path: a program under /usr or /bin, or one in the group folder (/workspace/group/…)'),
    args: z.array(z.string()).optional(),
    env: strings.optional().describe('Environment of the server; inside the sandbox, never shown in listings'),
  }),
  z.object({
    name: z.string(),
    type: z.literal('http'),
    url: z.string().describe('http:// or https:// URL of the MCP endpoint'),
    headers: strings.optional().describe('Plain headers, given to the agent as they are'),
    secretHeaders: strings.optional().describe('Headers such as Authorization: added by pincer on the host, never seen by the agent'),
  }),
]);

export function adminTools(control: Control, actor: Actor) {
  return [
    tool(
      'list_groups',
      'List the chats pincer has joined (groups) with folder, trigger and who may engage the agent. For chats seen but not joined, list_chats.',
      {},
      async () => answer(() => control.listGroups(actor)),
    ),
    tool(
      'list_chats',
      'List chats pincer has seen on its channels but not joined, with their ids and names: the first step of "join the Family Chat group" (then register_group with its chat_id).',
      { include_joined: z.boolean().optional() },
      async (a) => answer(() => control.listChats(actor, { includeJoined: a.include_joined })),
    ),
    tool(
      'register_group',
      'Join a chat (chat_id from list_chats) so the assistant answers there. It gets its own folder (chosen from the chat name unless given), memory and sandbox; by default it answers messages that start with its trigger.',
      {
        chat_id: z.string().min(3).max(300).describe('The chat id from list_chats, e.g. tg:-100123'),
        folder: z.string().min(1).max(64).optional().describe('Lowercase letters, digits, _ or -'),
        trigger: z.string().min(2).max(64).optional().describe('Word that engages the agent, default @<name>'),
        respond_to_all: z.boolean().optional().describe('Answer every message, not only those starting with the trigger'),
        sender_allowlist: z.array(z.string().min(1).max(200)).max(1000).optional().describe('Only these sender ids engage the agent'),
      },
      async (a) =>
        answer(() =>
          control.registerGroup(actor, {
            chatId: a.chat_id,
            folder: a.folder,
            trigger: a.trigger,
            respondToAll: a.respond_to_all,
            senderAllowlist: a.sender_allowlist,
          }),
        ),
    ),
    tool(
      'unregister_group',
      'Leave a chat: the assistant stops answering there; its tasks are cancelled, its folder kept.',
      { folder },
      async (a) =>
        answer(() => {
          control.unregisterGroup(actor, a.folder);
          return `Left ${a.folder}.`;
        }),
    ),
    tool(
      'set_egress_policy',
      "Change where a group's sandbox may connect: open (any public host), allowlist (only the listed domains and their subdomains) or none.",
      {
        folder,
        mode: z.enum(['open', 'allowlist', 'none']),
        domains: z.array(z.string().min(1).max(253)).max(200).optional().describe('For allowlist: e.g. ["github.com", "pypi.org"]'),
      },
      async ({ folder, mode, domains }) =>
        answer(() => {
          const g = control.setEgressPolicy(actor, folder, mode === 'allowlist' ? { mode, domains: domains ?? [] } : { mode });
          return `Egress policy of ${folder} is now ${g.egressPolicy}; it applies from its next connection.`;
        }),
    ),
    tool(
      'set_group_model',
      `Choose the model a group's agent runs on: a cheaper one for a chat that needs little ("use the cheaper model for the family group": set_group_model({folder: "family-chat", model: "claude-haiku-4-5"})), a stronger one where it matters, the reasoning effort, or another provider (an endpoint the owner configured: ${providerList(control, actor)}). "default" puts a field back to pincer's default; an omitted field stays. Applies from the group's next turn. list_groups shows what each group runs on. Not for budgets (set_budget).`,
      {
        folder,
        model: z
          .string()
          .min(1)
          .max(200)
          .optional()
          .describe('A model id of the provider, e.g. claude-haiku-4-5, claude-sonnet-4-5, or "default"'),
        effort: z
          .enum([...EFFORT_LEVELS, 'default'])
          .optional()
          .describe('How hard it thinks: low is cheapest and fastest'),
        provider: z.string().min(1).max(64).optional().describe('A configured provider name, or "default"'),
        fallback_model: z.string().min(1).max(200).optional().describe('Used while the model is overloaded or unavailable, or "default"'),
      },
      async (a) =>
        answer(() => {
          const orDefault = <T extends string>(v: T | 'default' | undefined): T | null | undefined => (v === 'default' ? null : v);
          const g = control.setGroupModel(actor, a.folder, {
            model: orDefault(a.model),
            effort: orDefault(a.effort),
            provider: orDefault(a.provider),
            fallbackModel: orDefault(a.fallback_model),
          });
          return { group: g.folder, ...g.models, appliesFrom: "the group's next turn" };
        }),
    ),
    tool(
      'show_spend',
      'Show what was spent today and this month, overall and per group, against the budgets (USD per day / month).',
      {},
      async () => answer(() => control.budgets(actor)),
    ),
    tool(
      'set_budget',
      'Set a spending limit in USD per calendar day and/or month, for one group or (without group) for all groups together. null removes a limit; an omitted one stays. When a budget is reached the group gets no agent until it is raised or the period ends; raising it answers the messages that waited.',
      {
        group: folder.optional().describe("The group's folder; omit for the overall budget"),
        daily_usd: z.number().positive().max(1_000_000).nullable().optional(),
        monthly_usd: z.number().positive().max(1_000_000).nullable().optional(),
      },
      async (a) =>
        answer(() => {
          const view = control.setBudget(actor, { group: a.group, dailyUsd: a.daily_usd, monthlyUsd: a.monthly_usd });
          const spend = a.group === undefined ? view.global : view.groups.find((g) => g.folder === a.group);
          return { budget: a.group ?? 'overall', ...spend };
        }),
    ),
    tool(
      'set_extra_mounts',
      "Set the host folders mounted into a group's sandbox at /workspace/extra/<name>. Only folders under the roots of the owner's mount allowlist are accepted; replaces the group's previous list.",
      {
        folder,
        mounts: z
          .array(z.object({ hostPath: z.string().min(1).max(4096), name: z.string().max(64).optional(), readOnly: z.boolean().optional() }))
          .max(20),
      },
      async ({ folder, mounts }) =>
        answer(() => {
          const accepted = control.setExtraMounts(actor, folder, mounts);
          const list = accepted.map((m) => `${m.hostPath} at ${m.sandboxPath} (${m.writable ? 'read-write' : 'read-only'})`).join(', ');
          return `Extra mounts of ${folder}: ${list || 'none'}. They apply from its next message (a live session of it ends once idle).`;
        }),
    ),
    tool(
      'list_mcp_servers',
      "List a group's extra MCP servers (names, commands, URLs); secret values show as ********.",
      { folder },
      async (a) => answer(() => control.listMcpServers(actor, a.folder)),
    ),
    tool(
      'set_mcp_servers',
      "Replace a group's extra MCP servers (e.g. a mail or calendar server the owner installed). stdio servers run inside the group's sandbox; http servers are reached by URL, and their secretHeaders are added by pincer on the host. A value of ******** keeps the stored secret. Applies from the group's next message (a live session of it ends once idle). Secrets sent here pass through this conversation: the owner may prefer `pincer groups mcp`.",
      { folder, servers: z.array(mcpServer).max(20) },
      async (a) =>
        answer(() => {
          const servers = control.setMcpServers(actor, a.folder, a.servers);
          const list = servers.map((s) => `${s.name} (${s.type}, ${s.route})`).join(', ');
          return `MCP servers of ${a.folder}: ${list || 'none'}. They apply from its next message (a live session of it ends once idle).`;
        }),
    ),
  ];
}

/** The providers the owner configured, for the model to pick from: "anthropic (default), ollama (qwen3:8b)". */
function providerList(control: Control, actor: Actor): string {
  return control
    .listProviders(actor)
    .map((p) => `${p.name}${p.isDefault ? ' (default)' : p.model ? ` (${p.model})` : ''}`)
    .join(', ');
}

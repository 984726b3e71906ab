// pincer's tools for one session, run in the host process. The acting group is fixed here, at creation;
// nothing the agent sends can change whom a call acts for.
import { createSdkMcpServer, type McpSdkServerConfigWithInstance, tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import { SANDBOX_GROUP_DIR } from '../agent/sandbox-spawn.js';
import type { Control } from '../service/control.js';
import { TOOL_SERVER_NAME } from '../store/mcp-server-schema.js';
import { adminTools } from './admin-tools.js';
import { memoryTools } from './memory-tools.js';
import { senderName } from './sender-name.js';
import { taskTools } from './task-tools.js';

const MAX_MESSAGE_CHARS = 20_000;

export interface ToolContext {
  /** The session's own chat. */
  chatId: string;
  /** Only the main group's session gets the administration tools. */
  isMain: boolean;
  /** Queues a message to the session's own chat (through the outbox), under a sub-agent's name if given. */
  send(text: string, sender?: string): void;
  /** Queues a file from the group folder (a path inside it) to the session's own chat; throws why not. */
  sendFile(relativePath: string, caption: string): Promise<void>;
  control: Control;
}

/** The tools one session gets: what exists for it is itself the first line of authorization. */
export function sessionTools(ctx: ToolContext) {
  const actor = { kind: 'group' as const, chatId: ctx.chatId };
  const sendMessage = tool(
    'send_message',
    [
      'Send a message to this chat now, while you keep working: progress on long work ("Looking at the 40 invoices now…"), a partial result, or a sub-agent\'s report under its own name (sender: "Researcher").',
      'Your final answer is sent to the chat for you: do not repeat it here.',
      "Not Claude Code's SendMessage (messages between agents): this one reaches the people in the chat.",
    ].join(' '),
    {
      text: z.string().trim().min(1).max(MAX_MESSAGE_CHARS).describe('The message text'),
      sender: z.string().trim().min(1).max(64).optional().describe('Name to show as the sender, e.g. a sub-agent role'),
    },
    async ({ text, sender }) => {
      const name = sender === undefined ? '' : senderName(sender);
      ctx.send(text, name || undefined);
      return { content: [{ type: 'text', text: 'Message queued for delivery.' }] };
    },
  );
  const sendFile = tool(
    'send_file',
    `Send a file from this chat's folder (${SANDBOX_GROUP_DIR}) to the chat as an attachment, e.g. a report, a chart or a PDF you made: {"path": "out/report.pdf", "caption": "This week's report"}. Write the file there first; links and files outside the folder are refused.`,
    {
      path: z.string().min(1).max(1024).describe(`Path inside ${SANDBOX_GROUP_DIR}, relative or absolute`),
      caption: z.string().max(1000).optional(),
    },
    async ({ path, caption }) => {
      const relative = path.startsWith(`${SANDBOX_GROUP_DIR}/`) ? path.slice(SANDBOX_GROUP_DIR.length + 1) : path;
      try {
        await ctx.sendFile(relative, caption ?? '');
        return { content: [{ type: 'text', text: `File ${relative} queued for delivery.` }] };
      } catch (err) {
        return { content: [{ type: 'text', text: `Error: ${err instanceof Error ? err.message : String(err)}` }], isError: true };
      }
    },
  );
  return [
    sendMessage,
    sendFile,
    ...taskTools(ctx.control, actor),
    ...memoryTools(ctx.control, actor, ctx.isMain),
    ...(ctx.isMain ? adminTools(ctx.control, actor) : []),
  ];
}

export function createPincerServer(ctx: ToolContext): McpSdkServerConfigWithInstance {
  return createSdkMcpServer({ name: TOOL_SERVER_NAME, version: '1.0.0', alwaysLoad: true, tools: sessionTools(ctx) });
}

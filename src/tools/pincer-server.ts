// pincer's tools for one session, run in the host process. The acting group is fixed here, at creation;
// nothing the agent sends can change whom a call acts for.
import { createSdkMcpServer, type McpSdkServerConfigWithInstance, tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import type { Control } from '../service/control.js';
import { adminTools } from './admin-tools.js';
import { taskTools } from './task-tools.js';

export const TOOL_SERVER_NAME = 'pincer';
const MAX_MESSAGE_CHARS = 20_000;

export interface ToolContext {
  /** The session's own chat. */
  chatId: string;
  /** Only the main group's session gets the administration tools. */
  isMain: boolean;
  /** Queues a message to the session's own chat (through the outbox). */
  send(text: string): void;
  control: Control;
}

/** The tools one session gets: what exists for it is itself the first line of authorization. */
export function sessionTools(ctx: ToolContext) {
  const actor = { kind: 'group' as const, chatId: ctx.chatId };
  const sendMessage = tool(
    'send_message',
    "Send a message to this chat right away, while you keep working (progress, partial results). Your final answer is sent automatically; don't repeat it here.",
    {
      text: z.string().trim().min(1).max(MAX_MESSAGE_CHARS).describe('The message text'),
      sender: z.string().trim().min(1).max(64).optional().describe('Name to show as the sender, e.g. a sub-agent role'),
    },
    async ({ text, sender }) => {
      ctx.send(sender ? `${sender}: ${text}` : text);
      return { content: [{ type: 'text', text: 'Message queued for delivery.' }] };
    },
  );
  return [sendMessage, ...taskTools(ctx.control, actor), ...(ctx.isMain ? adminTools(ctx.control, actor) : [])];
}

export function createPincerServer(ctx: ToolContext): McpSdkServerConfigWithInstance {
  return createSdkMcpServer({ name: TOOL_SERVER_NAME, version: '1.0.0', tools: sessionTools(ctx) });
}

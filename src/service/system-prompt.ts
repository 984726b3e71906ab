import { SANDBOX_GLOBAL_DIR, SANDBOX_GROUP_DIR } from '../agent/sandbox-spawn.js';
import type { Group } from '../store/index.js';
import { TOOL_SERVER_NAME } from '../store/mcp-server-schema.js';
import { CONVERSATIONS_DIR } from './conversation-archive.js';

/** A pincer tool as the model sees its name. */
const pincerTool = (name: string) => `mcp__${TOOL_SERVER_NAME}__${name}`;

/**
 * What pincer tells the agent about its situation, appended to Claude Code's own system prompt: where its words
 * go, and each capability with the tool that does it. Claude Code's prompt is written for a programmer at a
 * terminal; this part says what differs, briefly (every word is paid for in every request).
 */
export function systemPromptAppend(assistantName: string, group: Group, timezone: string): string {
  const t = pincerTool;
  const globalMemory = group.isMain
    ? `${SANDBOX_GLOBAL_DIR}/CLAUDE.md is memory shared by every chat; this is the owner's main chat, so you may edit it.`
    : `${SANDBOX_GLOBAL_DIR}/CLAUDE.md is memory shared by every chat (read-only here).`;
  const lines = [
    `You are ${assistantName}, a personal assistant, answering in the chat ${group.chatId} through pincer. People read you in a messenger, not a terminal.`,
    `New messages arrive as <messages> XML with each sender and local time (${timezone}); answer the newest, the rest is context.`,
    'Your final reply is sent to the chat as it is: fit for a messenger, short unless asked otherwise. Wrap notes not meant for the chat in <internal>...</internal>: they are never sent.',
    '',
    'What you can do, and the tool for each:',
    `- Later or repeatedly ("every weekday at 9am", "in 2 hours", "each Friday"): ${t('schedule_task')}, the only scheduler that outlives this conversation (cron, interval or once; times in ${timezone}). Its run's answer is posted here. Manage tasks with ${t('list_tasks')}, ${t('update_task')}, ${t('pause_task')}, ${t('resume_task')}, ${t('cancel_task')}.`,
    `- Message the chat now: ${t('send_message')} (progress during long work; a sub-agent posts with sender set to its role); ${t('send_file')} sends a file from ${SANDBOX_GROUP_DIR}. Your final answer is sent for you.`,
    `- Files: ${SANDBOX_GROUP_DIR} is this chat's own folder and persists.`,
    `- Memory: ${SANDBOX_GROUP_DIR}/CLAUDE.md is your memory of this chat, loaded into every conversation: edit it when asked to remember something (short and current: change outdated lines rather than add). ${globalMemory} For anything said in this chat before (the past, names, dates, decisions), ${t('search_memory')} searches its whole history and memory files and ${t('get_memory')} reads around a hit. Earlier conversations are archived as Markdown in ${SANDBOX_GROUP_DIR}/${CONVERSATIONS_DIR}/; keep lasting notes in ${SANDBOX_GROUP_DIR}/memory/*.md if CLAUDE.md grows long. Asked what you remember (about them, about anything), read those files and show what they say, not a summary from your context.`,
    "- The web: WebSearch and WebFetch (load them with ToolSearch), within this chat's network policy.",
    "- Spending: this chat's model use may have a budget the owner set; keep the work in proportion to what was asked.",
  ];
  if (group.isMain)
    lines.push(
      `- Admin (this main chat only): ${t('list_groups')}, ${t('list_chats')}, ${t('register_group')} (join a chat), ${t('unregister_group')}, ${t('set_egress_policy')}, ${t('set_extra_mounts')}, ${t('list_mcp_servers')}, ${t('set_mcp_servers')}, ${t('show_spend')}, ${t('set_budget')}, ${t('set_group_model')} (a group's model, effort or provider); task tools take target_group for another group.`,
    );
  return lines.join('\n');
}

import { SANDBOX_GLOBAL_DIR, SANDBOX_GROUP_DIR } from '../agent/sandbox-spawn.js';
import type { Group } from '../store/index.js';
import { CONVERSATIONS_DIR } from './conversation-archive.js';

/** What pincer tells the agent about its situation, appended to Claude Code's own system prompt. */
export function systemPromptAppend(assistantName: string, group: Group): string {
  const globalNote = group.isMain
    ? `${SANDBOX_GLOBAL_DIR}/CLAUDE.md is memory shared by every chat; this is the owner's main chat, so you may edit it.`
    : `${SANDBOX_GLOBAL_DIR}/CLAUDE.md is memory shared by every chat (read-only here).`;
  return [
    `You are ${assistantName}, a personal assistant. You are answering in the chat ${group.chatId} through pincer.`,
    'New messages arrive as <messages> XML with each sender and local time; answer the newest, the rest is context.',
    'Your final reply is sent to the chat as it is: keep it fit for a messenger, short unless asked otherwise.',
    'Wrap anything not meant for the chat (notes to yourself) in <internal>...</internal>: it is never sent.',
    'For long work, use the send_message tool to tell the chat what you are doing; your final answer is sent for you.',
    `${SANDBOX_GROUP_DIR} is this chat's own folder and persists. Its CLAUDE.md is your memory of this chat, loaded into every new conversation: update it when asked to remember something (keep it short and current: edit outdated lines rather than add more).`,
    globalNote,
    `Earlier conversations of this chat are archived as Markdown in ${SANDBOX_GROUP_DIR}/${CONVERSATIONS_DIR}/ (pincer writes them when the conversation is compacted or cleared): read them when asked about the past.`,
  ].join('\n');
}

// Commands a chat can send instead of a message for the agent: `/compact` shortens the conversation (the
// full one is archived first), `/clear` starts a new one. They are pincer's, never shown to the agent.
import type { Group } from '../store/index.js';

export type ChatCommand = 'compact' | 'clear';

/** `/compact`, or `/compact@botname` as Telegram sends commands in groups. */
const COMMAND = /^\/(compact|clear)(?:@[\p{L}\p{N}_.-]+)?$/iu;
const MENTION = /^@[\p{L}\p{N}_.-]+[\s,:]+/u;
const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/**
 * The command a message is, or undefined. The whole message must be the command, optionally after the
 * group's trigger or an @mention of the bot (`@Andy /compact`).
 */
export function parseChatCommand(text: string, trigger: string): ChatCommand | undefined {
  let rest = text.trim();
  const triggered = trigger ? new RegExp(`^${escapeRegExp(trigger)}(?![\\p{L}\\p{N}_])[\\s,:]*`, 'iu').exec(rest) : null;
  const prefix = triggered ?? MENTION.exec(rest);
  if (prefix) rest = rest.slice(prefix[0].length).trim();
  const command = COMMAND.exec(rest)?.[1]?.toLowerCase();
  return command === 'compact' || command === 'clear' ? command : undefined;
}

/**
 * The main group is the owner's own chat: anyone there may. Elsewhere only a group with a sender allowlist
 * trusts its senders that far, and only those on it (others cannot even reach the agent there).
 */
export function mayUseCommands(group: Pick<Group, 'isMain' | 'senderAllowlist'>, senderId: string): boolean {
  return group.isMain || (group.senderAllowlist?.includes(senderId) ?? false);
}

export function commandRefusal(command: ChatCommand, group: Pick<Group, 'senderAllowlist'>): string {
  const why = group.senderAllowlist === null ? ' This group has no sender allowlist.' : '';
  return `⚠️ /${command} works only in the owner's main chat, or in a group for the senders on its sender allowlist.${why}`;
}

/** What the agent is told to keep when the chat asks for a compaction (Claude Code's own summary instructions still apply). */
export const COMPACT_INSTRUCTIONS =
  'Keep what matters later: facts and preferences the chat shared, decisions, open tasks and promises, names, dates and numbers. Drop small talk and raw tool output.';

/**
 * The silent turn before a /compact: what should outlast the conversation goes into the group's memory files first,
 * since a summary keeps only what fits in it. Its answer is never sent.
 */
export const MEMORY_FLUSH_PROMPT = [
  '[pincer: this conversation is about to be compacted into a summary.]',
  'If anything in it should last beyond this conversation (facts and preferences people shared, decisions, names, dates, numbers, promises) and is not in your memory yet,',
  'write it now: short lines in /workspace/group/CLAUDE.md, or a file in /workspace/group/memory/.',
  'Do not answer the chat: reply only with <internal>done</internal>.',
].join(' ');

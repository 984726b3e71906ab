// @ts-check
// What the whole page shares across views: the assistant's name, the joined groups, which chats have unread
// messages, and what the agent is doing in each chat.
import { listGroups } from './api.js';

/** @typedef {import('./types.js').GroupView} GroupView */

export const state = {
  assistantName: 'pincer',
  /** @type {GroupView[]} */
  groups: [],
  /** Chats with messages that arrived while another view or chat was open. */
  unread: new Set(/** @type {string[]} */ ([])),
  /** Chats the agent is working in. */
  typing: new Set(/** @type {string[]} */ ([])),
  /** The agent's latest step per chat while it works, e.g. "using Bash: ls". */
  progress: new Map(/** @type {Array<[string, string]>} */ ([])),
  /** The reply being written in each chat, as much as is shown of it. */
  drafts: new Map(/** @type {Array<[string, string]>} */ ([])),
  /** The chat last opened, for the nav's chat link. */
  lastChat: /** @type {string | null} */ (null),
};

/** Re-reads the joined groups; the main group first, then by name, so the list keeps its order as chats get busy. */
export async function loadGroups() {
  const groups = await listGroups();
  groups.sort((a, b) => Number(b.isMain) - Number(a.isMain) || groupLabel(a).localeCompare(groupLabel(b)));
  state.groups = groups;
  return groups;
}

/**
 * What a group is called on the page: its chat's name, else its folder.
 * @param {GroupView} group
 */
export function groupLabel(group) {
  return group.name ?? group.folder;
}

/** The chat to open when none is named: the main group's, else the first group's. */
export function defaultChat() {
  return (state.groups.find((g) => g.isMain) ?? state.groups[0])?.chatId ?? null;
}

/**
 * @param {string} chatId
 * @returns {GroupView | undefined}
 */
export function groupOf(chatId) {
  return state.groups.find((g) => g.chatId === chatId);
}

/**
 * The words for an agent's step, or null for a step not worth showing.
 * @param {string} stage
 * @param {string | null} detail
 */
export function progressText(stage, detail) {
  if (stage === 'tool') return detail ? `using ${detail}` : 'using a tool';
  if (stage === 'model_request') return 'thinking…';
  if (stage === 'spawned') return 'starting…';
  return null;
}

/**
 * Applies a typing change to the shared state; a finished turn forgets its progress.
 * @param {string} chat
 * @param {boolean} typing
 */
export function setTyping(chat, typing) {
  if (typing) state.typing.add(chat);
  else {
    state.typing.delete(chat);
    state.progress.delete(chat);
  }
}

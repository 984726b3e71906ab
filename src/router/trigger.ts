import type { Group } from '../store/index.js';

const escapeRegExp = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The default trigger for an assistant name: `@Andy`. */
export const defaultTrigger = (assistantName: string): string => `@${assistantName}`;

/** True when a message must start a turn: always in the main group and respond-to-all groups, else on the trigger. */
export function engages(group: Pick<Group, 'trigger' | 'respondToAll' | 'isMain'>, text: string): boolean {
  if (group.isMain || group.respondToAll) return true;
  return new RegExp(`^\\s*${escapeRegExp(group.trigger)}(?![\\p{L}\\p{N}_])`, 'iu').test(text);
}

/** A group with a sender allowlist is engaged only by those senders; the rest is kept as context. */
export function senderMayEngage(group: Pick<Group, 'senderAllowlist'>, senderId: string): boolean {
  return group.senderAllowlist === null || group.senderAllowlist.includes(senderId);
}

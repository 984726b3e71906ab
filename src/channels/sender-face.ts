// A sub-agent's picture where a platform shows one beside its name (Slack, Discord): the configured address with
// the name in it, else one of the platform's emoji chosen by the name, so that a role keeps its face.

export type SenderFace = { url: string } | { emoji: string };

/** `urlTemplate`: an https address with `{name}` in it (PINCER_SENDER_AVATAR_URL). */
export function senderFace(sender: string, urlTemplate: string | undefined, emoji: readonly string[]): SenderFace {
  if (urlTemplate) return { url: urlTemplate.split('{name}').join(encodeURIComponent(sender)) };
  let hash = 0;
  for (const ch of sender.toLowerCase()) hash = (hash * 31 + (ch.codePointAt(0) ?? 0)) >>> 0;
  return { emoji: emoji[hash % emoji.length] ?? '' };
}

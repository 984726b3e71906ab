// The reply as the model writes it, for the live view: only what would be delivered so far. Text inside
// `<internal>` never shows, not even while the tag is still being written.
import { stripInternal } from '../router/outbound.js';

const OPENING_TAG = '<internal>';
/**
 * A draft shows at most this much: the deltas come from the sandbox, which could send without end; the reply
 * itself is delivered whole from the outbox.
 */
export const MAX_DRAFT_CHARS = 200_000;

/** How many characters at the end of `text` could be the start of an opening tag still being written. */
function partialTagLength(text: string): number {
  for (let n = Math.min(OPENING_TAG.length - 1, text.length); n > 0; n--) if (OPENING_TAG.startsWith(text.slice(-n))) return n;
  return 0;
}

/** What the user may see of a reply being written (an unclosed `<internal>` hides everything after it). */
export function visibleDraft(raw: string): string {
  return stripInternal(raw.slice(0, raw.length - partialTagLength(raw)));
}

/** The text of one model message, growing; its visible part is worked out only when someone reads it. */
export class ReplyDraft {
  #raw = '';
  #visible: string | undefined = '';

  append(text: string): void {
    if (this.#raw.length >= MAX_DRAFT_CHARS) return;
    this.#raw += text.slice(0, MAX_DRAFT_CHARS - this.#raw.length);
    this.#visible = undefined;
  }

  visible(): string {
    this.#visible ??= visibleDraft(this.#raw);
    return this.#visible;
  }
}

/** What a lane says about the reply being written in a chat: its text so far, then the reply as committed. */
export type ReplyDraftUpdate = { kind: 'writing'; visible(): string } | { kind: 'done'; reply: string };

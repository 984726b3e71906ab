// The first key of a line tells pincer someone types, so the chat's agent can start before the line is sent.

/** At most one typing hint this often: one starts the chat's agent, which then stays up for a while anyway. */
export const TYPING_HINT_MS = 10_000;

/** What readline reports of a key (node:readline's keypress event). */
export interface Keypress {
  name?: string;
  ctrl?: boolean;
  meta?: boolean;
}

/** A character someone types, not a control key (Backspace, Escape and the sequences that start with it). */
function printable(str: string | undefined): boolean {
  const code = str?.codePointAt(0);
  return code !== undefined && code >= 0x20 && code !== 0x7f;
}

/**
 * A keypress handler that calls `hint` when the first character of a line is typed, at most once per
 * TYPING_HINT_MS: Enter ends the line, control keys (arrows, Ctrl+…) are not typing.
 */
export function typingHinter(hint: () => void, now: () => number = Date.now): (str: string | undefined, key: Keypress | undefined) => void {
  let lineStarted = false;
  let last = Number.NEGATIVE_INFINITY;
  return (str, key) => {
    if (key?.name === 'return' || key?.name === 'enter') {
      lineStarted = false;
      return;
    }
    if (lineStarted || key?.ctrl || key?.meta || !printable(str)) return;
    lineStarted = true;
    if (now() - last < TYPING_HINT_MS) return;
    last = now();
    hint();
  };
}

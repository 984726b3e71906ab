// Text that came from a chat or a sandbox (a reply, a sender's name, a tool's summary in a trace), made safe to
// print on the owner's terminal: an escape sequence in it could set the clipboard, rename the window, hide or
// rewrite lines on screen. Control characters other than newline and tab are dropped, and so are the invisible
// marks that reorder how a line reads (bidirectional overrides and isolates).

/** C0 controls but tab and newline, DEL and the C1 controls, U+202A–U+202E and U+2066–U+2069. */
function unprintable(code: number): boolean {
  return (
    (code < 0x20 && code !== 0x09 && code !== 0x0a) ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

export function terminalText(text: string): string {
  let out = '';
  for (const ch of text) if (!unprintable(ch.codePointAt(0) ?? 0)) out += ch;
  return out;
}

// A sub-agent's name as the agent gave it (send_message's `sender`), made fit to show as a sender: one line, no
// control characters, no marks that reorder how it reads (bidi overrides and isolates), no invisible characters
// that would make two names look the same. Platforms add their own rules (src/channels/).

/** C0/C1 controls, zero-width and joiner marks, bidi marks, overrides and isolates, the BOM. */
function unshown(code: number): boolean {
  return (
    code < 0x20 ||
    (code >= 0x7f && code <= 0x9f) ||
    (code >= 0x200b && code <= 0x200f) ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2060 && code <= 0x2069) ||
    code === 0xfeff
  );
}

/** The name, cleaned; empty when nothing showable is left. */
export function senderName(raw: string): string {
  let out = '';
  for (const ch of raw) out += unshown(ch.codePointAt(0) ?? 0) ? ' ' : ch;
  return out.replace(/\s+/g, ' ').trim();
}

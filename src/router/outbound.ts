/** Removes `<internal>…</internal>` (the agent's notes to itself); an unclosed tag hides the rest. */
export function stripInternal(text: string): string {
  return text
    .replace(/<internal>[\s\S]*?(<\/internal>|$)/g, '')
    .replace(/\n{3,}/g, '\n\n')
    .trim();
}

// The lines `pincer chat` handles itself. Everything else, other slash commands included (/compact, /clear),
// is a message for the chat.

export type ChatCommand = { kind: 'help' } | { kind: 'quit' } | { kind: 'trace'; id: string | null } | { kind: 'message'; text: string };

export function parseLine(line: string): ChatCommand | null {
  const text = line.trim();
  if (text === '') return null;
  const [word, ...rest] = text.split(/\s+/);
  if (word === '/help') return { kind: 'help' };
  if (word === '/quit' || word === '/exit') return { kind: 'quit' };
  if (word === '/trace' && rest.length <= 1) return { kind: 'trace', id: rest[0]?.replace(/^#/, '') ?? null };
  return { kind: 'message', text };
}

export function helpText(assistant: string): string {
  return [
    'Commands of this terminal:',
    '  /help         this list',
    '  /trace [id]   what happened to a message, stage by stage (without an id: the last question asked here; as pincer trace)',
    '  /quit         leave (also /exit, Ctrl-D, or Ctrl-C on an empty line)',
    `Anything else goes to ${assistant}, other slash commands too (/compact, /clear).`,
    'Message ids (#12) are shown next to each message.',
  ].join('\n');
}

// What a tool call is doing, in one short line for a trace and the web page's progress ("Bash: ls -la").

const MAX_SUMMARY = 120;
/** The one argument that says what a call of each common tool is about. */
const KEY_ARGUMENTS = ['command', 'file_path', 'path', 'url', 'query', 'pattern', 'description', 'prompt', 'text'];

export function describeToolUse(name: string, input: unknown): string {
  const mcp = /^mcp__[^_]+(?:_[^_]+)*__(.+)$/.exec(name);
  const shown = mcp?.[1] ?? name;
  if (typeof input !== 'object' || input === null) return shown;
  const args = input as Record<string, unknown>;
  const key = KEY_ARGUMENTS.find((k) => typeof args[k] === 'string' && args[k] !== '');
  if (key === undefined) return shown;
  const value = String(args[key]).replace(/\s+/g, ' ').trim();
  const line = `${shown}: ${value}`;
  return line.length > MAX_SUMMARY ? `${line.slice(0, MAX_SUMMARY - 1)}…` : line;
}

// A reply as an agent writes one (Markdown with headings, bold, a list, a link, inline code, a code block with its
// language, a table, emoji and non-Latin text), and a long one, for the messenger formatting tests.

export const AGENT_REPLY = [
  '## Trip plan for Zoë 🚀',
  '',
  "Here's **what I booked** for *Tuesday*: the ~~9:00~~ 10:30 train.",
  '',
  '- **Train:** ICE 123 to [München](https://bahn.de/tickets?id=42)',
  '- Hotel: 東京ホテル 🏨',
  '- Budget checked with `budget.py`',
  '',
  '1. Pack',
  '2. Leave',
  '',
  '> The museum closes at 17:00.',
  '',
  '| Day | Plan 🗺️ |',
  '|-----|---------|',
  '| Tue | Museum |',
  '| Wed | Hike ⛰️ |',
  '',
  '```python',
  'total = sum(costs)  # **not bold**',
  'print(f"{total} €")',
  '```',
].join('\n');

/** What a reader must never see of the Markdown: its syntax. */
export const MARKDOWN_SYNTAX = ['**', '##', '|---', '|-----|', '](http'];

/** A reply several messages long: paragraphs with bold and emoji, then a code block longer than one message. */
export function longAgentReply(codeLines: number): string {
  const paragraphs = Array.from(
    { length: 40 },
    (_, i) => `**Point ${i + 1}** 🍕: the *tomato* sauce simmers for ${i + 10} minutes, stirred now and then, so that nothing burns.`,
  );
  const code = Array.from({ length: codeLines }, (_, i) => `step_${i} = prepare("ingredient ${i}")  # 日本`);
  return `# Recipe\n\n${paragraphs.join('\n\n')}\n\n\`\`\`python\n${code.join('\n')}\n\`\`\`\n\nBuon appetito! 🇮🇹`;
}

// Recall for every group's agent: search what the chat has said (both sides, all of its history) and read around a
// hit. A group searches its own chat; the main group may name another group or "all".
import { tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import { MAX_AROUND, MAX_HITS } from '../memory/memory-search.js';
import type { Actor, Control } from '../service/control.js';
import { answerLater } from './tool-result.js';

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a day as YYYY-MM-DD')
  .optional();

export function memoryTools(control: Control, actor: Actor, isMain: boolean) {
  return [
    tool(
      'search_memory',
      [
        'Search everything this chat has said, both sides, over its whole history (not only this conversation), and its memory files (CLAUDE.md, archived conversations, memory/*.md): use it for questions about the past, names, dates and decisions ("what did we decide about the trip in March?", "what was the plumber\'s number?") before saying you don\'t know.',
        'Words are matched in any form of accents and case; all words must match (if none has them all, hits with some come back, marked). "Quoted phrases" match as a phrase; word* matches a prefix.',
        'Where pincer has recall by meaning, what says the same in other words is found too (the result\'s "mode" is "hybrid"), so ask as the user would.',
        'A message hit has its id, local time and sender, a file hit its file and line; each a snippet with the matched words in [brackets]; read around one with get_memory. A search by day or sender is of messages only.',
        'Example: {"query": "trip march hotel", "from": "2026-01-01"}.',
        isMain ? 'group: another group\'s folder, or "all" for every group (this main chat only).' : '',
      ]
        .filter(Boolean)
        .join(' '),
      {
        query: z.string().trim().min(1).max(500).describe('Words to look for'),
        from: day.describe("First day searched, YYYY-MM-DD in the chat's time zone"),
        to: day.describe('Last day searched, YYYY-MM-DD'),
        sender: z.string().trim().min(1).max(100).optional().describe('Only messages whose sender name contains this'),
        limit: z.number().int().min(1).max(MAX_HITS).optional().describe('Hits to return (default 8)'),
        ...(isMain ? { group: z.string().min(1).max(64).optional().describe('A group folder, or "all"; default this chat') } : {}),
      },
      async (a) =>
        answerLater(() =>
          control.memory.search(actor, {
            text: a.query,
            from: a.from,
            to: a.to,
            sender: a.sender,
            limit: a.limit,
            group: 'group' in a && typeof a.group === 'string' ? a.group : undefined,
          }),
        ),
    ),
    tool(
      'get_memory',
      [
        'Read around a search_memory hit: for a message (message_id), the messages before and after it in its chat, with senders and times;',
        'for a file hit (file and line), the lines around that line.',
        'Examples: {"message_id": 1234, "before": 5, "after": 5}; {"file": "conversations/2026-03-02-1015-trip.md", "line": 40}.',
      ].join(' '),
      {
        message_id: z.number().int().positive().optional().describe('The id of a message hit'),
        file: z.string().min(1).max(300).optional().describe('The file of a file hit, as search_memory gave it'),
        line: z.number().int().positive().optional().describe('The line of a file hit'),
        before: z.number().int().min(0).max(MAX_AROUND).optional().describe('Messages or lines before it (default 5)'),
        after: z.number().int().min(0).max(MAX_AROUND).optional().describe('Messages or lines after it (default 5)'),
        ...(isMain ? { group: z.string().min(1).max(64).optional().describe('For a file hit in another group: its folder') } : {}),
      },
      async (a) =>
        answerLater(async () => {
          const before = a.before ?? 5;
          const after = a.after ?? 5;
          if (a.message_id !== undefined) return control.memory.around(actor, a.message_id, before, after);
          if (a.file === undefined) throw new Error('give message_id, or file and line, of a search_memory hit');
          const group = 'group' in a && typeof a.group === 'string' ? a.group : undefined;
          return control.memory.fileLines(actor, { file: a.file, line: a.line ?? 1, before, after, group });
        }),
    ),
  ];
}

// Recall for every group's agent: search what the chat has said (both sides, all of its history) and read around a
// hit. A group searches its own chat; the main group may name another group or "all".
import { tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import { MAX_AROUND, MAX_HITS } from '../memory/memory-search.js';
import type { Actor, Control } from '../service/control.js';
import { answer } from './tool-result.js';

const day = z
  .string()
  .regex(/^\d{4}-\d{2}-\d{2}$/, 'a day as YYYY-MM-DD')
  .optional();

export function memoryTools(control: Control, actor: Actor, isMain: boolean) {
  return [
    tool(
      'search_memory',
      [
        'Search everything this chat has said, both sides, over its whole history (not only this conversation): use it for questions about the past, names, dates and decisions ("what did we decide about the trip in March?", "what was the plumber\'s number?") before saying you don\'t know.',
        'Words are matched in any form of accents and case; all words must match (if none has them all, hits with some come back, marked). "Quoted phrases" match as a phrase; word* matches a prefix.',
        'Each hit has its message id, local time, sender and a snippet with the matched words in [brackets]; read around one with get_memory.',
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
        answer(() =>
          control.searchMemory(actor, {
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
      `Read the messages around one that search_memory found (by its id): the ones before and after it in its chat, with senders and times. Example: {"message_id": 1234, "before": 5, "after": 5}.`,
      {
        message_id: z.number().int().positive().describe('The id of a hit'),
        before: z.number().int().min(0).max(MAX_AROUND).optional().describe('Messages before it (default 5)'),
        after: z.number().int().min(0).max(MAX_AROUND).optional().describe('Messages after it (default 5)'),
      },
      async (a) => answer(() => control.memoryAround(actor, a.message_id, a.before ?? 5, a.after ?? 5)),
    ),
  ];
}

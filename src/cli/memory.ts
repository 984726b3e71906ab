// `pincer memory …`: what a group remembers, through the running pincer's API: search everything it has said and
// its memory files, list those files, print one.
import { Command } from 'commander';
import { z } from 'zod';
import { editCommand } from './memory-edit.js';
import { printJson, printLine, printTable, truncate, withPincer } from './output.js';

const hitSchema = z.union([
  z.object({ id: z.string(), chat: z.string(), time: z.string(), sender: z.string(), snippet: z.string() }),
  z.object({ file: z.string(), line: z.number(), chat: z.string(), snippet: z.string() }),
]);
const searchAnswer = z.object({ hits: z.array(hitSchema), matched: z.enum(['all', 'any', 'none']), searched: z.string() });
const filesAnswer = z.object({ files: z.array(z.object({ path: z.string(), size: z.number(), modifiedAt: z.string() })) });
const fileAnswer = z.object({ path: z.string(), text: z.string() });

const oneLine = (text: string) => text.replace(/\s+/g, ' ').trim();

function searchCommand(): Command {
  return new Command('search')
    .description('search what a group has said (both sides, its whole history) and its memory files')
    .argument('<query...>', 'words; "a phrase" in quotes; word* for a prefix')
    .requiredOption('-g, --group <folder>', 'the group\'s folder, or "all"')
    .option('--from <day>', 'first day, YYYY-MM-DD')
    .option('--to <day>', 'last day, YYYY-MM-DD')
    .option('--sender <name>', 'only messages whose sender name contains this')
    .option('-n, --limit <n>', 'hits to show (default 8, at most 50)')
    .option('--json', 'print the API answer as JSON')
    .action(
      async (words: string[], opts: { group: string; from?: string; to?: string; sender?: string; limit?: string; json?: boolean }) => {
        process.exitCode = await withPincer(async (client) => {
          const params = new URLSearchParams({ q: words.join(' '), group: opts.group });
          for (const key of ['from', 'to', 'sender', 'limit'] as const) {
            const value = opts[key];
            if (value !== undefined) params.set(key, value);
          }
          const answer = await client.request('GET', `/api/v1/memory/search?${params}`);
          if (opts.json) return printJson(answer);
          const { hits, matched } = searchAnswer.parse(answer);
          if (hits.length === 0) return printLine(`nothing found in ${opts.group === 'all' ? 'any group' : `group "${opts.group}"`}`);
          if (matched === 'any') printLine('no message has all the words; these have some:');
          printTable(
            ['WHERE', 'GROUP', 'WHEN / FILE', 'FROM', 'PASSAGE'],
            hits.map((h) =>
              'id' in h
                ? [`message ${h.id}`, h.chat, h.time, h.sender, truncate(oneLine(h.snippet), 90)]
                : [`line ${h.line}`, h.chat, h.file, '', truncate(oneLine(h.snippet), 90)],
            ),
          );
        });
      },
    );
}

function showCommand(): Command {
  return new Command('show')
    .description("a group's memory files, or one of them (CLAUDE.md, conversations/…, memory/…)")
    .argument('<group>', "the group's folder")
    .argument('[file]', 'a file to print, e.g. CLAUDE.md')
    .option('--json', 'print the API answer as JSON')
    .action(async (group: string, file: string | undefined, opts: { json?: boolean }) => {
      process.exitCode = await withPincer(async (client) => {
        const base = `/api/v1/groups/${encodeURIComponent(group)}/memory`;
        if (file === undefined) {
          const answer = await client.request('GET', base);
          if (opts.json) return printJson(answer);
          const { files } = filesAnswer.parse(answer);
          if (files.length === 0) return printLine(`group "${group}" has no memory files`);
          printTable(
            ['FILE', 'BYTES', 'CHANGED'],
            files.map((f) => [f.path, String(f.size), f.modifiedAt]),
          );
          return;
        }
        const answer = await client.request('GET', `${base}/file?path=${encodeURIComponent(file)}`);
        if (opts.json) return printJson(answer);
        process.stdout.write(fileAnswer.parse(answer).text);
      });
    });
}

export function memoryCommand(): Command {
  return new Command('memory')
    .description('what a group remembers: search it, list, print and edit its memory files')
    .addCommand(searchCommand())
    .addCommand(showCommand())
    .addCommand(editCommand());
}

// `pincer memory edit <group> [file]`: a group's memory file in the owner's editor. The copy lives in a private
// folder of its own (mkdtemp, 0700), and is saved through the API with the version it was read at: when the
// agent changed the file meanwhile, nothing is overwritten and the owner's copy is kept for them to merge.
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import { Command } from 'commander';
import { z } from 'zod';
import { ARCHIVE_FOLDER, isEditableMemoryFile } from '../memory/file-index.js';
import { ApiError } from './api-client.js';
import { printLine, withPincer } from './output.js';

const fileAnswer = z.object({ path: z.string(), text: z.string(), version: z.string() });
const savedAnswer = z.object({ path: z.string(), version: z.string() });

/** Runs the owner's editor on `file` the way git does: $VISUAL, else $EDITOR, else vi, words split by the shell. */
function runEditor(file: string): Promise<number> {
  const editor = process.env.VISUAL?.trim() || process.env.EDITOR?.trim() || 'vi';
  return new Promise((resolve, reject) => {
    const child = spawn('/bin/sh', ['-c', `${editor} "$1"`, editor, file], { stdio: 'inherit' });
    child.on('error', (err) => reject(new Error(`could not start the editor (${editor}): ${err.message}`)));
    child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 1)));
  });
}

/**
 * The file as it is now, or, when there is no such file (not yet, or something other than a file planted at its
 * name, which a save replaces), an empty one to create (version null).
 */
async function current(file: string, get: () => Promise<unknown>): Promise<{ text: string; version: string | null }> {
  try {
    return fileAnswer.parse(await get());
  } catch (err) {
    // Only a refusal about the file itself; a group that does not exist is a 404 too.
    if (!(err instanceof ApiError && err.status === 404 && err.message.startsWith(`${file}: `))) throw err;
    if (!/does not exist$/.test(err.message))
      process.stderr.write(`${err.message}: starting from an empty file, which replaces it when saved\n`);
    return { text: '', version: null };
  }
}

export function editCommand(): Command {
  return new Command('edit')
    .description(
      "edit a group's CLAUDE.md or a note in memory/ in $VISUAL or $EDITOR; a change the agent made meanwhile is never overwritten",
    )
    .argument('<group>', "the group's folder")
    .argument('[file]', 'CLAUDE.md or memory/<name>.md', 'CLAUDE.md')
    .action(async (group: string, file: string) => {
      process.exitCode = await withPincer(async (client) => {
        // Refused before an editor opens, so no one types into a file that cannot be saved.
        if (file.startsWith(`${ARCHIVE_FOLDER}/`))
          throw new Error(
            `${file} is an archived conversation, the record of what was said: it is read-only (pincer memory show prints it)`,
          );
        if (!isEditableMemoryFile(file))
          throw new Error(`${JSON.stringify(file)} is not a memory file one can edit: CLAUDE.md or memory/<name>.md`);
        const base = `/api/v1/groups/${encodeURIComponent(group)}/memory/file`;
        const before = await current(file, () => client.request('GET', `${base}?path=${encodeURIComponent(file)}`));
        // A folder only this user can enter: the copy is never at a name someone else could predict or plant.
        const dir = await mkdtemp(join(tmpdir(), 'pincer-memory-'));
        const copy = join(dir, basename(file));
        await writeFile(copy, before.text, { mode: 0o600, flag: 'wx' });
        const kept = `your copy is kept at ${copy}`;
        const status = await runEditor(copy);
        if (status !== 0) throw new Error(`the editor exited with status ${status}: nothing was saved; ${kept}`);
        const text = await readFile(copy, 'utf8');
        if (text === before.text) {
          await rm(dir, { recursive: true, force: true });
          return printLine(`${group}/${file} unchanged: nothing to save`);
        }
        try {
          savedAnswer.parse(await client.request('PUT', base, { path: file, text, version: before.version }));
        } catch (err) {
          if (err instanceof ApiError && err.status === 409)
            throw new Error(
              `${group}/${file} changed meanwhile (the agent wrote it while you edited): nothing was saved; ${kept}. Run the edit again and bring your change over.`,
            );
          throw new Error(`${err instanceof Error ? err.message : String(err)}; ${kept}`);
        }
        await rm(dir, { recursive: true, force: true });
        printLine(`saved ${group}/${file}`);
      });
    });
}

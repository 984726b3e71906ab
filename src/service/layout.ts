// Where pincer keeps its state (PINCER_HOME) and how a group's folders are laid out.
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GroupPaths } from '../agent/sandbox-spawn.js';

/** Folder names are chosen by the host and always match this; never taken raw from a chat. */
export const FOLDER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const RESERVED_FOLDERS = new Set(['global']);
/** Unix socket paths are limited to 108 bytes; leave room for `/<folder>/model.sock`. */
const MAX_RUN_DIR = 108 - 1 - 64 - '/model.sock'.length;

export interface StateLayout {
  home: string;
  db: string;
  groupsDir: string;
  globalDir: string;
  sessionsDir: string;
  runDir: string;
}

export function folderProblem(folder: string): string | undefined {
  if (!FOLDER_NAME.test(folder)) return `folder "${folder}" must match ${FOLDER_NAME}`;
  if (RESERVED_FOLDERS.has(folder)) return `folder "${folder}" is reserved`;
  return undefined;
}

/**
 * Creates the state folders and returns their paths. Folders on the way to what a sandbox mounts are
 * traversable (0711) but not listable, because bubblewrap resolves its mounts as the unprivileged sandbox
 * user; everything private in them (the store, the token, each group's folder) is 0600/0700.
 */
export function prepareState(home: string): StateLayout {
  mkdirSync(home, { recursive: true });
  chmodSync(home, 0o711);
  const preferredRun = join(home, 'run');
  const runDir =
    preferredRun.length <= MAX_RUN_DIR
      ? preferredRun
      : join(tmpdir(), `pincer-${createHash('sha256').update(home).digest('hex').slice(0, 12)}`);
  const layout: StateLayout = {
    home,
    db: join(home, 'pincer.db'),
    groupsDir: join(home, 'groups'),
    globalDir: join(home, 'groups', 'global'),
    sessionsDir: join(home, 'sessions'),
    runDir,
  };
  for (const dir of [layout.groupsDir, layout.sessionsDir, runDir]) {
    mkdirSync(dir, { recursive: true });
    chmodSync(dir, 0o711);
  }
  mkdirSync(layout.globalDir, { recursive: true });
  const globalMemory = join(layout.globalDir, 'CLAUDE.md');
  if (!existsSync(globalMemory)) writeFileSync(globalMemory, '# Shared memory\n\nNotes here are read by the assistant in every chat.\n');
  return layout;
}

/** The host folders of a group's sandbox, created on first use. */
export function groupPaths(layout: StateLayout, folder: string, isMain: boolean): GroupPaths {
  const problem = folderProblem(folder);
  if (problem) throw new Error(problem);
  const groupDir = join(layout.groupsDir, folder);
  const stateDir = join(layout.sessionsDir, folder);
  const socketDir = join(layout.runDir, folder);
  for (const dir of [groupDir, stateDir]) mkdirSync(dir, { recursive: true, mode: 0o700 });
  mkdirSync(socketDir, { recursive: true, mode: 0o711 });
  const memory = join(groupDir, 'CLAUDE.md');
  if (!existsSync(memory)) writeFileSync(memory, `# Memory of this chat (${folder})\n`);
  return { groupDir, globalDir: layout.globalDir, globalWritable: isMain, stateDir, modelSocket: join(socketDir, 'model.sock') };
}

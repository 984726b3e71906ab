// Where pincer keeps its state (PINCER_HOME) and how a group's folders are laid out.
import { createHash } from 'node:crypto';
import { chmodSync, lstatSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { GroupPaths } from '../agent/sandbox-spawn.js';
import { BROWSER_SKILL, BROWSER_SKILL_PATH } from './browser-skill.js';

/** Folder names are chosen by the host and always match this; never taken raw from a chat. */
export const FOLDER_NAME = /^[a-z0-9][a-z0-9_-]{0,63}$/;
const RESERVED_FOLDERS = new Set(['global']);

export interface StateLayout {
  home: string;
  db: string;
  groupsDir: string;
  globalDir: string;
  sessionsDir: string;
  /** Always inside the state folder: sockets with long paths are bound through a descriptor (proxy/unix-listen.ts). */
  runDir: string;
  /** One folder per live sandbox, holding its proxies' sockets; emptied at start. */
  socketsDir: string;
  /** Short and stable for this state folder: names this pincer's cgroups and containers. */
  instance: string;
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
  const instance = createHash('sha256').update(home).digest('hex').slice(0, 12);
  const runDir = join(home, 'run');
  const layout: StateLayout = {
    home,
    db: join(home, 'pincer.db'),
    groupsDir: join(home, 'groups'),
    globalDir: join(home, 'groups', 'global'),
    sessionsDir: join(home, 'sessions'),
    runDir,
    socketsDir: join(runDir, 's'),
    instance,
  };
  // Socket folders of sandboxes that died with an earlier pincer are useless: start clean.
  rmSync(layout.socketsDir, { recursive: true, force: true });
  for (const dir of [layout.groupsDir, layout.sessionsDir, runDir, layout.socketsDir]) {
    mkdirSync(dir, { recursive: true });
    ownFolder(dir);
    chmodSync(dir, 0o711);
  }
  mkdirSync(layout.globalDir, { recursive: true });
  createIfMissing(join(layout.globalDir, 'CLAUDE.md'), '# Shared memory\n\nNotes here are read by the assistant in every chat.\n');
  return layout;
}

/** pincer's own folders must be folders of pincer's user, not links or someone else's planted in their place. */
function ownFolder(dir: string): void {
  const st = lstatSync(dir);
  if (!st.isDirectory() || st.uid !== process.geteuid?.()) {
    throw new Error(
      `${dir} must be a folder of pincer's own user (uid ${process.geteuid?.()}), not ${st.isSymbolicLink() ? 'a link' : `owned by uid ${st.uid}`}`,
    );
  }
}

/**
 * Sandboxes write these folders, so a name in them may be a planted symlink, even a dangling one: the
 * file is created exclusively (O_EXCL does not follow links), and an existing entry is left alone.
 */
function createIfMissing(path: string, content: string): void {
  try {
    writeFileSync(path, content, { flag: 'wx' });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
}

/** The host folders of a group's sandbox, created on first use. */
export function groupPaths(layout: StateLayout, folder: string, isMain: boolean): Omit<GroupPaths, 'modelSocket' | 'egressSocket'> {
  const problem = folderProblem(folder);
  if (problem) throw new Error(problem);
  const groupDir = join(layout.groupsDir, folder);
  const stateDir = join(layout.sessionsDir, folder);
  // A folder made just now holds nothing a sandbox planted: folders can be created in it as they are named.
  const fresh = mkdirSync(groupDir, { recursive: true, mode: 0o700 }) !== undefined;
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  createIfMissing(join(groupDir, 'CLAUDE.md'), `# Memory of this chat (${folder})\n`);
  if (fresh) {
    mkdirSync(dirname(join(groupDir, BROWSER_SKILL_PATH)), { recursive: true });
    createIfMissing(join(groupDir, BROWSER_SKILL_PATH), BROWSER_SKILL);
  }
  return {
    groupDir,
    globalDir: layout.globalDir,
    globalWritable: isMain,
    stateDir,
  };
}

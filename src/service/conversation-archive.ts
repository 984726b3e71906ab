// Archives a group's Claude Code transcript as Markdown in its folder (`conversations/`), before a
// compaction or a /clear loses the detail (a compaction's is prepared first and written once it is done).
// Both sides are folders the sandbox writes: the transcript is read bounded and without following links,
// and rendered in a worker thread within bounds (the agent can make it as big and as odd as it likes);
// the archive is created new, never through a link.
import { renderTranscriptFile } from '../agent/render-transcript-file.js';
import { SANDBOX_GROUP_DIR, SANDBOX_HOME } from '../agent/sandbox-spawn.js';
import { TRANSCRIPT_LIMITS, type TranscriptFacts, transcriptHeading } from '../agent/transcript-markdown.js';
import { formatLocalTime } from '../router/prompt.js';
import { SafeFsError, writeFileInside } from '../sandbox/safe-fs.js';

/** The group folder's archive of conversations. */
export const CONVERSATIONS_DIR = 'conversations';
/** A transcript larger than this is not archived (it is read whole, in a worker thread). */
export const MAX_TRANSCRIPT_BYTES = 64 * 1024 * 1024;
/** Archives of one session in the same minute get `-2`, `-3`… up to this many. */
const MAX_SAME_NAME = 50;
const SESSION_ID = /^[A-Za-z0-9_-]{1,128}$/;

export interface ArchiveRequest {
  groupDir: string;
  /** The host folder mounted as the sandbox's home (CLAUDE_CONFIG_DIR is its `.claude`). */
  stateDir: string;
  /** The transcript as Claude Code names it: a path inside the sandbox. */
  transcriptPath: string;
  sessionId: string;
  chatId: string;
  assistantName: string;
  timeZone: string;
  /** Why it is archived, said in the file. */
  reason: string;
  now: number;
}

export type ArchiveResult =
  /** `file` is relative to the group folder (and to /workspace/group inside the sandbox). */
  { kind: 'archived'; file: string; messages: number } | { kind: 'empty' } | { kind: 'failed'; error: string };

/** Where Claude Code keeps a session's transcript, inside the sandbox (its project folder is the cwd, sanitised). */
export function sandboxTranscriptPath(sessionId: string): string {
  const project = SANDBOX_GROUP_DIR.replace(/[^A-Za-z0-9]/g, '-');
  return `${SANDBOX_HOME}/.claude/projects/${project}/${sessionId}.jsonl`;
}

/** The path relative to the state folder, or undefined when it is not inside the sandbox's home. */
export function stateRelativePath(sandboxPath: string): string | undefined {
  const prefix = `${SANDBOX_HOME}/`;
  if (!sandboxPath.startsWith(prefix) || !sandboxPath.endsWith('.jsonl')) return undefined;
  const rest = sandboxPath.slice(prefix.length);
  // safe-fs refuses `..`, absolute paths and links on the way; this only keeps the name readable in errors.
  return rest === '' || rest.includes('\0') ? undefined : rest;
}

/** `2026-11-25-1320-0e225f2b.md`: the local minute and the session's first characters. */
export function archiveName(now: number, timeZone: string, sessionId: string, n: number): string {
  const stamp = formatLocalTime(now, timeZone).replace(' ', '-').replace(':', '');
  const short =
    sessionId
      .replace(/[^a-z0-9]/gi, '')
      .slice(0, 8)
      .toLowerCase() || 'session';
  return `${stamp}-${short}${n > 1 ? `-${n}` : ''}.md`;
}

/** A conversation read and rendered, not yet written: what a compaction is about to replace. */
export interface PreparedArchive {
  kind: 'prepared';
  /** UTF-8: the rendered body comes from the worker as bytes, and is written as it is. */
  markdown: Uint8Array;
  messages: number;
  now: number;
  timeZone: string;
  sessionId: string;
}

/** Reads and renders the transcript as it is now; nothing is written. */
export async function prepareArchive(
  r: Omit<ArchiveRequest, 'groupDir'>,
): Promise<PreparedArchive | Exclude<ArchiveResult, { kind: 'archived' }>> {
  if (!SESSION_ID.test(r.sessionId)) return { kind: 'failed', error: 'the session id is malformed' };
  const relative = stateRelativePath(r.transcriptPath);
  if (relative === undefined)
    return { kind: 'failed', error: `the transcript ${JSON.stringify(r.transcriptPath)} is not in the agent's home` };
  const rendered = await renderTranscriptFile({
    stateDir: r.stateDir,
    relativePath: relative,
    maxBytes: MAX_TRANSCRIPT_BYTES,
    assistantName: r.assistantName,
    timeZone: r.timeZone,
  });
  if (rendered.kind === 'missing') return { kind: 'empty' };
  if (rendered.kind === 'unreadable') return { kind: 'failed', error: `the transcript could not be read: ${rendered.reason}` };
  if (rendered.kind === 'failed') return { kind: 'failed', error: `the transcript could not be rendered: ${rendered.reason}` };
  const found = rendered.transcript;
  if (found.messages === 0) return { kind: 'empty' };
  const now = formatLocalTime(r.now, r.timeZone);
  const span =
    found.from !== null && found.to !== null
      ? `${formatLocalTime(found.from, r.timeZone)} to ${formatLocalTime(found.to, r.timeZone)}`
      : 'unknown times';
  const heading = transcriptHeading(`Conversation archived ${now}`, [
    `Chat: ${r.chatId}`,
    `Messages from ${span} (${r.timeZone})`,
    `Archived because ${r.reason}`,
    `Session: ${r.sessionId}`,
    ...boundNotes(found),
  ]);
  const markdown = Buffer.concat([Buffer.from(heading, 'utf8'), found.body]);
  return {
    kind: 'prepared',
    markdown,
    messages: found.messages,
    now: r.now,
    timeZone: r.timeZone,
    sessionId: r.sessionId,
  };
}

/** Writes a prepared archive as a new file in the group's conversations folder. */
export async function writeArchive(groupDir: string, p: PreparedArchive): Promise<ArchiveResult> {
  for (let n = 1; n <= MAX_SAME_NAME; n++) {
    const file = `${CONVERSATIONS_DIR}/${archiveName(p.now, p.timeZone, p.sessionId, n)}`;
    try {
      await writeFileInside(groupDir, file, p.markdown, { mode: 0o644 });
      return { kind: 'archived', file, messages: p.messages };
    } catch (err) {
      if (err instanceof SafeFsError && err.code === 'exists') continue;
      return { kind: 'failed', error: `${file} could not be written: ${reasonOf(err)}` };
    }
  }
  return { kind: 'failed', error: `${MAX_SAME_NAME} archives of this session already exist for this minute` };
}

/** Reads, renders and writes in one go. */
export async function archiveTranscript(r: ArchiveRequest): Promise<ArchiveResult> {
  const prepared = await prepareArchive(r);
  return prepared.kind === 'prepared' ? writeArchive(r.groupDir, prepared) : prepared;
}

/** What of the transcript the archive does not show, and why. */
function boundNotes(found: TranscriptFacts): string[] {
  const n = (count: number) => count.toLocaleString('en-US');
  const mib = (bytes: number) => `${(bytes / 1024 / 1024).toLocaleString('en-US')} MiB`;
  const limits = TRANSCRIPT_LIMITS;
  const notes: string[] = [];
  if (found.skippedLines > 0) notes.push(`${n(found.skippedLines)} unreadable transcript line(s) left out`);
  if (found.oversizedLines > 0)
    notes.push(
      `${n(found.oversizedLines)} transcript line(s) over ${mib(limits.maxLineBytes)} or ${n(limits.maxLineBrackets)} brackets left out unread`,
    );
  if (found.unreadLines > 0) notes.push(`${n(found.unreadLines)} transcript line(s) past the first ${n(limits.maxLines)} not read`);
  if (found.leftOutMessages > 0)
    notes.push(
      `${n(found.leftOutMessages)} later message(s) left out: an archive holds at most ${n(limits.maxSections)} messages and ${mib(limits.maxBodyChars)} of text`,
    );
  return notes;
}

function reasonOf(err: unknown): string {
  if (err instanceof SafeFsError) return err.reason;
  return err instanceof Error ? err.message : String(err);
}

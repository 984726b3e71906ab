// A group lane's archive of its conversation: rendered into the group folder (`conversations/`) before a
// /clear forgets it, and around a compaction: read before Claude Code compacts, written only once the
// compaction is done, so a compaction that fails (too little to compact, a model error) leaves no archive
// and the transcript keeps everything for the next one.
import type { CompactEnd, PreCompactEvent } from '../agent/session.js';
import type { Logger } from '../log.js';
import type { Group, Stage } from '../store/index.js';
import {
  type ArchiveRequest,
  type ArchiveResult,
  archiveTranscript,
  type PreparedArchive,
  prepareArchive,
  writeArchive,
} from './conversation-archive.js';
import { groupPaths, type StateLayout } from './layout.js';

export interface LaneArchiveDeps {
  layout: StateLayout;
  group: Group;
  assistantName: string;
  /** The group's time zone, for the archive's file name and times. */
  timeZone: string;
  log: Logger;
  /** Records a trace event (for the turn in flight, if any). */
  event(stage: Stage, detail: string): void;
  /** pincer is stopping: nothing more goes on record. */
  stopping(): boolean;
}

export class LaneArchive {
  readonly #d: LaneArchiveDeps;
  /** The conversation as it was when a compaction began. */
  #beforeCompaction: PreparedArchive | ArchiveResult | undefined;
  /** What the latest compaction's archive gave. */
  #latest: ArchiveResult | undefined;

  constructor(deps: LaneArchiveDeps) {
    this.#d = deps;
  }

  /** What the latest compaction's archive gave, since `forgetLatest()`. */
  get latest(): ArchiveResult | undefined {
    return this.#latest;
  }

  /** A /compact begins: what an earlier compaction archived is not its answer. */
  forgetLatest(): void {
    this.#latest = undefined;
  }

  async beforeCompaction(e: PreCompactEvent): Promise<void> {
    const reason = e.trigger === 'manual' ? 'the chat sent /compact' : 'it grew too long and Claude Code compacted it';
    this.#beforeCompaction = undefined;
    this.#beforeCompaction = await safely(() => prepareArchive(this.#request(e.sessionId, e.transcriptPath, reason)));
  }

  async afterCompaction(end: CompactEnd): Promise<void> {
    const prepared = this.#beforeCompaction;
    this.#beforeCompaction = undefined;
    if (!end.ok) {
      this.#d.event('command', `compaction failed: ${end.error}`);
      return;
    }
    this.#d.event('command', `conversation compacted (${end.trigger === 'manual' ? 'asked for' : 'automatically: it grew too long'})`);
    const { groupDir } = groupPaths(this.#d.layout, this.#d.group.folder, this.#d.group.isMain);
    this.#latest = prepared?.kind === 'prepared' ? await safely(() => writeArchive(groupDir, prepared)) : prepared;
    this.#record(this.#latest);
  }

  /** Archives the session's whole transcript now (before a /clear). */
  async archiveNow(sessionId: string, transcriptPath: string, reason: string): Promise<ArchiveResult> {
    const result = await safely(() => archiveTranscript(this.#request(sessionId, transcriptPath, reason)));
    this.#record(result);
    return result;
  }

  #request(sessionId: string, transcriptPath: string, reason: string): ArchiveRequest {
    const { layout, group } = this.#d;
    const { groupDir, stateDir } = groupPaths(layout, group.folder, group.isMain);
    return {
      groupDir,
      stateDir,
      transcriptPath,
      sessionId,
      chatId: group.chatId,
      assistantName: this.#d.assistantName,
      timeZone: this.#d.timeZone,
      reason,
      now: Date.now(),
    };
  }

  #record(result: ArchiveResult | undefined): void {
    if (result?.kind === 'failed') this.#d.log.warn({ error: result.error }, 'conversation not archived');
    if (!this.#d.stopping()) this.#d.event('archived', describeArchive(result));
  }
}

export function describeArchive(result: ArchiveResult | undefined): string {
  if (result?.kind === 'archived') return `archived ${result.messages} message(s) in ${result.file}`;
  if (result?.kind === 'failed') return `not archived: ${result.error}`;
  return 'nothing to archive';
}

async function safely<T>(run: () => Promise<T>): Promise<T | ArchiveResult> {
  try {
    return await run();
  } catch (err) {
    return { kind: 'failed', error: err instanceof Error ? err.message : String(err) };
  }
}

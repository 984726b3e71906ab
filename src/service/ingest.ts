// Ingest: store first (idempotent), decide whether the message engages the agent, then wake the dispatcher.
// Media of a joined chat is saved into its folder first, so the stored text can name the files; voice notes
// are transcribed (when a service is configured) before the message is stored, their transcript in its text.
import { LOCAL_CHAT } from '../channels/local/chat-id.js';
import type { InboundAttachment, InboundMessage, InboundSink, IngestResult } from '../channels/types.js';
import type { Logger } from '../log.js';
import { engages, senderMayEngage } from '../router/trigger.js';
import type { Store } from '../store/index.js';
import { joinLocalChat } from './groups.js';
import { type SavedAttachment, saveAttachments } from './inbox.js';
import { groupPaths, type StateLayout } from './layout.js';
import { audioLine, oggOpusSeconds, type Transcribe, type Transcription } from './transcribe.js';

export interface IngestDeps {
  store: Store;
  layout: StateLayout;
  assistantName: string;
  maxMediaBytes: number;
  log: Logger;
  onEngaged(chatId: string, seq: number): void;
  /** A joined group is active without engaging the agent (a message without the trigger, someone typing). */
  onActivity?(chatId: string): void;
  /** Turns audio into text (bounded in time, never throwing); absent when no transcription service is configured. */
  transcribe?: Transcribe;
}

/**
 * Lone UTF-16 surrogates (a malformed client, a JSON `\ud800` escape) have no UTF-8 form: SQLite would keep
 * invalid bytes that read back as three U+FFFD each. Each becomes one U+FFFD here, as any UTF-8 encoder does,
 * so what is stored is valid UTF-8 and reads back exactly as stored.
 */
const wellFormed = (s: string): string => s.replace(/\p{Cs}/gu, '\uFFFD');

const NOT_CONFIGURED: Transcription = { ok: false, reason: 'no transcription service is configured' };

/**
 * Voice notes are Ogg Opus (Telegram's `voice/file_N.oga`, WhatsApp's `voice-note.ogg`, Discord's), or unnamed
 * (Signal); other audio (a named mp3) is a file someone sent. Only the label differs: both are transcribed.
 */
const isVoiceNote = (a: InboundAttachment): boolean =>
  !a.name || /voice|ptt|\.(oga|opus)$/i.test(a.name) || a.mime === 'audio/ogg' || a.mime === 'audio/opus';

export function createIngest(deps: IngestDeps): InboundSink {
  const { store } = deps;
  const store_ = (m: InboundMessage, mediaLines: string[]): IngestResult & { joined: boolean } =>
    store.transaction(() => {
      const now = Date.now();
      store.chats.seen({ id: m.chatId, channel: m.channel, name: m.chatName ?? null, isGroup: m.isGroup }, now);
      const group = store.groups.get(m.chatId) ?? joinLocalChat(store, deps.layout, m.chatId, deps.assistantName, now);
      const allowedSender = group ? senderMayEngage(group, m.senderId) : false;
      const engaged = group ? allowedSender && (m.mentionsBot === true || engages(group, m.text)) : false;
      const text = mediaLines.length > 0 ? `${m.text}${m.text ? '\n' : ''}${mediaLines.join('\n')}` : m.text;
      const { seq, duplicate } = store.messages.insert({
        chatId: m.chatId,
        channel: m.channel,
        platformId: m.platformId,
        senderId: m.senderId,
        senderName: m.senderName,
        text,
        sentAt: m.sentAt,
        fromAssistant: false,
        engages: engaged,
        threadId: m.threadId ?? null,
      });
      const event = (stage: 'received' | 'duplicate' | 'engaged' | 'ignored', detail: string | null) =>
        store.events.record({ messageSeq: seq, chatId: m.chatId, stage, detail, at: now });
      if (duplicate) {
        event('duplicate', `platform id ${m.platformId} was already stored`);
        return { seq, duplicate, engaged: false, joined: group !== undefined };
      }
      event('received', `from ${m.senderName} via ${m.channel}${mediaLines.length ? ` with ${mediaLines.length} file(s)` : ''}`);
      if (!group) event('ignored', 'chat is not a registered group (the main group can join it)');
      else if (!allowedSender) event('ignored', `sender ${m.senderId} is not on the group's sender allowlist; kept as context`);
      else if (!engaged) event('ignored', `no trigger (${group.trigger}); kept as context`);
      else {
        const why = group.isMain
          ? 'main group'
          : group.respondToAll
            ? 'group responds to every message'
            : m.mentionsBot
              ? 'the bot was mentioned'
              : `trigger ${group.trigger}`;
        event('engaged', why);
      }
      return { seq, duplicate, engaged, joined: group !== undefined };
    });

  /** The line of each saved file; audio files are transcribed first, all at once, each bounded in time. */
  const describeFiles = (chatId: string, saved: SavedAttachment[]): Promise<string[]> =>
    Promise.all(
      saved.map(async (f) => {
        const a = f.attachment;
        if (a.kind !== 'audio') return f.line;
        const started = Date.now();
        const outcome = deps.transcribe
          ? await deps.transcribe(a.data, f.fileName, a.mime).catch((err: unknown) => ({ ok: false as const, reason: String(err) }))
          : NOT_CONFIGURED;
        if (deps.transcribe) {
          const facts = { chatId, file: f.fileName, ms: Date.now() - started };
          if (outcome.ok) deps.log.info({ ...facts, chars: outcome.text.length }, 'voice note transcribed');
          else deps.log.warn({ ...facts, reason: outcome.reason }, 'voice note not transcribed');
        }
        const label = isVoiceNote(a) ? 'voice note' : 'audio';
        return audioLine({ label, path: f.sandboxPath, seconds: oggOpusSeconds(a.data) }, outcome);
      }),
    );

  const deliver = (raw: InboundMessage, mediaLines: string[]): IngestResult => {
    const m = {
      ...raw,
      text: wellFormed(raw.text),
      senderName: wellFormed(raw.senderName),
      ...(raw.chatName === undefined ? {} : { chatName: wellFormed(raw.chatName) }),
    };
    const { joined, ...result } = store_(m, mediaLines.map(wellFormed));
    if (result.engaged) deps.onEngaged(m.chatId, result.seq);
    else if (!result.duplicate && joined) deps.onActivity?.(m.chatId);
    return result;
  };

  const ingestOne = async (m: InboundMessage): Promise<IngestResult> => {
    let lines: string[] = [];
    const media = (m.attachments ?? []).filter((a) => a.data.length <= deps.maxMediaBytes);
    // Read here only for media: the common text message reads its group once, in the storing transaction.
    const group = media.length > 0 ? store.groups.get(m.chatId) : undefined;
    // A redelivery's media was saved (and its voice notes transcribed) the first time: it is not done again.
    if (group && media.length > 0 && !store.messages.has(m.chatId, m.platformId)) {
      let saved: SavedAttachment[] | undefined;
      try {
        saved = await saveAttachments(groupPaths(deps.layout, group.folder, group.isMain).groupDir, m.platformId, m.sentAt, media);
      } catch (err) {
        // The text still arrives; the agent is told a file could not be kept.
        deps.log.warn({ err, chatId: m.chatId }, 'inbound media could not be saved');
        lines = [`[${media.length} attached file(s) could not be saved: ${err instanceof Error ? err.message : String(err)}]`];
      }
      if (saved) lines = await describeFiles(m.chatId, saved);
    }
    const dropped = (m.attachments?.length ?? 0) - media.length;
    if (dropped > 0)
      lines.push(`[${dropped} attached file(s) larger than ${Math.round(deps.maxMediaBytes / 1024 / 1024)} MB were not kept]`);
    return deliver(m, lines);
  };

  // Deliveries of one platform message run one after another: a redelivery that arrives while the first is
  // still being transcribed waits, then finds it stored (a duplicate) instead of transcribing it again.
  const inFlight = new Map<string, Promise<unknown>>();

  return {
    maxMediaBytes: deps.maxMediaBytes,
    isJoined: (chatId) => store.groups.get(chatId) !== undefined,
    seen: (chatId, platformId) => store.messages.has(chatId, platformId),
    typing: (chatId) => {
      // A new local chat is joined by its first keystroke, as by its first message (only local chats join on
      // their own), so that its agent can start while that message is written.
      const joined =
        store.groups.get(chatId) ??
        store.transaction(() => {
          if (!LOCAL_CHAT.test(chatId)) return undefined;
          const now = Date.now();
          store.chats.seen({ id: chatId, channel: 'local', name: chatId.slice('local:'.length), isGroup: false }, now);
          return joinLocalChat(store, deps.layout, chatId, deps.assistantName, now);
        });
      if (joined) deps.onActivity?.(chatId);
    },
    async ingest(m) {
      const key = `${m.chatId}\n${m.platformId}`;
      const earlier = inFlight.get(key);
      const run = earlier ? earlier.then(() => ingestOne(m)) : ingestOne(m);
      const settled = run.catch(() => undefined);
      inFlight.set(key, settled);
      try {
        return await run;
      } finally {
        if (inFlight.get(key) === settled) inFlight.delete(key);
      }
    },
  };
}

/** A file that came with a message, already downloaded by the adapter (bounded by `InboundSink.maxMediaBytes`). */
export interface InboundAttachment {
  kind: 'image' | 'audio' | 'video' | 'document';
  /** The platform's file name, if any; the host sanitizes it. */
  name?: string;
  mime?: string;
  data: Buffer;
}

/** A platform event turned into pincer's shape by a channel adapter. */
export interface InboundMessage {
  /** `<channel>:<platform chat id>`, e.g. `local:main`, `tg:123456`. */
  chatId: string;
  channel: string;
  /** The platform's id of this message; with the chat id it makes ingest idempotent. */
  platformId: string;
  senderId: string;
  senderName: string;
  text: string;
  sentAt: number;
  chatName?: string;
  isGroup: boolean;
  /** The platform says the message is addressed to the bot (a mention of it, a reply to it): it engages like the trigger. */
  mentionsBot?: boolean;
  /** The platform thread it was said in (a Slack thread): the answer goes there. */
  threadId?: string;
  attachments?: InboundAttachment[];
}

export interface IngestResult {
  seq: number;
  duplicate: boolean;
  engaged: boolean;
}

/** What a channel hands its inbound traffic to. */
export interface InboundSink {
  /** Resolves once the message is stored (media first written into the chat's folder). */
  ingest(message: InboundMessage): Promise<IngestResult>;
  /** Whether pincer answers in this chat: adapters download media only for joined chats. */
  isJoined(chatId: string): boolean;
  /** Whether this platform message was stored already (a redelivery): adapters skip downloading it again. */
  seen(chatId: string, platformId: string): boolean;
  /** The largest media file an adapter should download. */
  readonly maxMediaBytes: number;
  /**
   * Someone started typing in this chat (for platforms that tell bots). Only a hint: pincer may start the
   * chat's agent ahead of the message, so that the message reaches the model sooner.
   */
  typing(chatId: string): void;
}

export interface Outbound {
  /** The agent's Markdown: an adapter with `partsOf` shows it in its platform's own formatting. */
  text: string;
  /** The stored message this answers, for platforms that thread or quote replies. */
  replyTo?: { platformId: string; threadId?: string };
  /**
   * Which of the reply's parts (see `Channel.partsOf`) to send; absent, every part in order. Only the first
   * part quotes (or pings) the message it answers.
   */
  part?: number;
  /** A file to send, `text` its caption. */
  file?: { name: string; data: Buffer };
  /**
   * A sub-agent's name (send_message's `sender`), only for a channel with `postsAsSender`: the message is shown
   * under it, as a sender of its own where the platform allows, else with the name before the text.
   */
  sender?: string;
}

/** A send refused for now by the platform's rate limit: retry after this long, not on the usual schedule. */
export class RateLimitedError extends Error {
  constructor(
    readonly retryAfterMs: number,
    message: string,
  ) {
    super(message);
  }
}

export type ConnectionState = 'connected' | 'connecting' | 'disconnected';

export interface Channel {
  readonly name: string;
  /** Longest text one platform message holds; the outbox sends longer replies in parts. */
  readonly maxTextLength: number;
  /**
   * How many messages this reply (the agent's Markdown) takes once formatted for the platform, each part
   * formatted on its own. Without it the outbox cuts the text at `maxTextLength` and sends it as is. With a
   * `sender`, the parts leave room for the name in front, in case the platform cannot show it otherwise.
   */
  partsOf?(markdown: string, sender?: string): number;
  /**
   * The channel shows `Outbound.sender` itself (a sub-agent's own name and face where its platform allows).
   * Without it the outbox puts the name before the text ("Researcher: …").
   */
  readonly postsAsSender?: boolean;
  owns(chatId: string): boolean;
  start(sink: InboundSink): Promise<void>;
  send(chatId: string, out: Outbound): Promise<{ platformId: string }>;
  /** On while the agent works on this chat; the adapter refreshes it as its platform requires. */
  setTyping?(chatId: string, on: boolean): Promise<void>;
  /** For `pincer status`. */
  state?(): ConnectionState;
  stop(): Promise<void>;
}

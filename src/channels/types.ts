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
}

export interface IngestResult {
  seq: number;
  duplicate: boolean;
  engaged: boolean;
}

/** What a channel hands its inbound traffic to. */
export interface InboundSink {
  ingest(message: InboundMessage): IngestResult;
}

export interface Outbound {
  text: string;
}

export interface Channel {
  readonly name: string;
  owns(chatId: string): boolean;
  start(sink: InboundSink): Promise<void>;
  send(chatId: string, out: Outbound): Promise<{ platformId: string }>;
  setTyping?(chatId: string, on: boolean): Promise<void>;
  stop(): Promise<void>;
}

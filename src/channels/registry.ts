import type { Channel, InboundSink } from './types.js';

export class ChannelRegistry {
  readonly #channels: Channel[] = [];

  add(channel: Channel): void {
    if (this.#channels.some((c) => c.name === channel.name)) throw new Error(`channel ${channel.name} is registered twice`);
    this.#channels.push(channel);
  }

  /** The channel that delivers to a chat id, or undefined when no enabled channel owns it. */
  forChat(chatId: string): Channel | undefined {
    return this.#channels.find((c) => c.owns(chatId));
  }

  list(): readonly Channel[] {
    return this.#channels;
  }

  async startAll(sink: InboundSink): Promise<void> {
    for (const c of this.#channels) await c.start(sink);
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled(this.#channels.map((c) => c.stop()));
  }
}

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

  /** Starts every channel; one that cannot start (say, a revoked token) does not keep the others down. */
  async startAll(sink: InboundSink): Promise<Array<{ channel: string; error: string }>> {
    const results = await Promise.allSettled(this.#channels.map((c) => c.start(sink)));
    return results.flatMap((r, i) =>
      r.status === 'rejected'
        ? [{ channel: this.#channels[i]?.name ?? '?', error: r.reason instanceof Error ? r.reason.message : String(r.reason) }]
        : [],
    );
  }

  async stopAll(): Promise<void> {
    await Promise.allSettled(this.#channels.map((c) => c.stop()));
  }
}

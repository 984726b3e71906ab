// PLACEHOLDER, being replaced by the discord adapter: the constructor's options are the contract.
import type { Logger } from '../log.js';
import type { Channel, InboundSink, Outbound } from './types.js';

export type DiscordChannelOptions = { token: string; apiUrl: string } & { assistantName: string; log: Logger };

export class DiscordChannel implements Channel {
  readonly name = 'discord';
  readonly maxTextLength = 4000;
  constructor(readonly options: DiscordChannelOptions) {}
  owns(_chatId: string): boolean {
    return false;
  }
  async start(_sink: InboundSink): Promise<void> {
    throw new Error('discord is not built yet');
  }
  async send(_chatId: string, _out: Outbound): Promise<{ platformId: string }> {
    throw new Error('discord is not built yet');
  }
  async stop(): Promise<void> {}
}

// PLACEHOLDER, being replaced by the telegram adapter: the constructor's options are the contract.
import type { Logger } from '../log.js';
import type { Channel, InboundSink, Outbound } from './types.js';

export type TelegramChannelOptions = { token: string; apiRoot: string } & { assistantName: string; log: Logger };

export class TelegramChannel implements Channel {
  readonly name = 'telegram';
  readonly maxTextLength = 4000;
  constructor(readonly options: TelegramChannelOptions) {}
  owns(_chatId: string): boolean {
    return false;
  }
  async start(_sink: InboundSink): Promise<void> {
    throw new Error('telegram is not built yet');
  }
  async send(_chatId: string, _out: Outbound): Promise<{ platformId: string }> {
    throw new Error('telegram is not built yet');
  }
  async stop(): Promise<void> {}
}

// PLACEHOLDER, being replaced by the slack adapter: the constructor's options are the contract.
import type { Logger } from '../log.js';
import type { Channel, InboundSink, Outbound } from './types.js';

export type SlackChannelOptions = { botToken: string; appToken: string; apiUrl: string } & { assistantName: string; log: Logger };

export class SlackChannel implements Channel {
  readonly name = 'slack';
  readonly maxTextLength = 4000;
  constructor(readonly options: SlackChannelOptions) {}
  owns(_chatId: string): boolean {
    return false;
  }
  async start(_sink: InboundSink): Promise<void> {
    throw new Error('slack is not built yet');
  }
  async send(_chatId: string, _out: Outbound): Promise<{ platformId: string }> {
    throw new Error('slack is not built yet');
  }
  async stop(): Promise<void> {}
}

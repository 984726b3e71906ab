// PLACEHOLDER, being replaced by the signal adapter: the constructor's options are the contract.
import type { Logger } from '../log.js';
import type { Channel, InboundSink, Outbound } from './types.js';

export type SignalChannelOptions = { account: string; url: string } & { assistantName: string; log: Logger };

export class SignalChannel implements Channel {
  readonly name = 'signal';
  readonly maxTextLength = 4000;
  constructor(readonly options: SignalChannelOptions) {}
  owns(_chatId: string): boolean {
    return false;
  }
  async start(_sink: InboundSink): Promise<void> {
    throw new Error('signal is not built yet');
  }
  async send(_chatId: string, _out: Outbound): Promise<{ platformId: string }> {
    throw new Error('signal is not built yet');
  }
  async stop(): Promise<void> {}
}

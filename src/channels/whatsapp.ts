// PLACEHOLDER, being replaced by the whatsapp adapter: the constructor's options are the contract.
import type { Logger } from '../log.js';
import type { Channel, InboundSink, Outbound } from './types.js';

export type WhatsAppChannelOptions = { authDir: string } & { assistantName: string; log: Logger };

export class WhatsAppChannel implements Channel {
  readonly name = 'whatsapp';
  readonly maxTextLength = 4000;
  constructor(readonly options: WhatsAppChannelOptions) {}
  owns(_chatId: string): boolean {
    return false;
  }
  async start(_sink: InboundSink): Promise<void> {
    throw new Error('whatsapp is not built yet');
  }
  async send(_chatId: string, _out: Outbound): Promise<{ platformId: string }> {
    throw new Error('whatsapp is not built yet');
  }
  async stop(): Promise<void> {}
}

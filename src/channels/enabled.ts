// The messengers whose credentials are set, each as its adapter; the local channel is always there. Each
// adapter's module (and its platform library: discord.js, Bolt, grammY, Baileys) is loaded only when that
// messenger is enabled: together they would add about 45 MB to a pincer that uses none of them.
import { join } from 'node:path';
import type { ChannelConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Channel } from './types.js';

/** `stateHome`: pincer's state folder; WhatsApp keeps its login there, where no sandbox can see it. */
export async function enabledMessengers(config: ChannelConfig, assistantName: string, stateHome: string, log: Logger): Promise<Channel[]> {
  const channels: Channel[] = [];
  const logFor = (part: string) => log.child({ part: `channel:${part}` });
  if (config.telegram) {
    const { TelegramChannel } = await import('./telegram.js');
    channels.push(new TelegramChannel({ ...config.telegram, assistantName, log: logFor('telegram') }));
  }
  if (config.slack) {
    const { SlackChannel } = await import('./slack.js');
    channels.push(new SlackChannel({ ...config.slack, assistantName, log: logFor('slack') }));
  }
  if (config.discord) {
    const { DiscordChannel } = await import('./discord.js');
    channels.push(new DiscordChannel({ ...config.discord, assistantName, log: logFor('discord') }));
  }
  if (config.signal) {
    const { SignalChannel } = await import('./signal.js');
    channels.push(new SignalChannel({ ...config.signal, assistantName, log: logFor('signal') }));
  }
  if (config.whatsapp) {
    const { WhatsAppChannel } = await import('./whatsapp.js');
    channels.push(new WhatsAppChannel({ authDir: join(stateHome, 'whatsapp-auth'), assistantName, log: logFor('whatsapp') }));
  }
  return channels;
}

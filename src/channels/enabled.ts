// The messengers whose credentials are set, each as its adapter; the local channel is always there.
import { join } from 'node:path';
import type { ChannelConfig } from '../config.js';
import type { Logger } from '../log.js';
import { DiscordChannel } from './discord.js';
import { SignalChannel } from './signal.js';
import { SlackChannel } from './slack.js';
import { TelegramChannel } from './telegram.js';
import type { Channel } from './types.js';
import { WhatsAppChannel } from './whatsapp.js';

/** `stateHome`: pincer's state folder; WhatsApp keeps its login there, where no sandbox can see it. */
export function enabledMessengers(config: ChannelConfig, assistantName: string, stateHome: string, log: Logger): Channel[] {
  const channels: Channel[] = [];
  const logFor = (part: string) => log.child({ part: `channel:${part}` });
  if (config.telegram) channels.push(new TelegramChannel({ ...config.telegram, assistantName, log: logFor('telegram') }));
  if (config.slack) channels.push(new SlackChannel({ ...config.slack, assistantName, log: logFor('slack') }));
  if (config.discord) channels.push(new DiscordChannel({ ...config.discord, assistantName, log: logFor('discord') }));
  if (config.signal) channels.push(new SignalChannel({ ...config.signal, assistantName, log: logFor('signal') }));
  if (config.whatsapp)
    channels.push(new WhatsAppChannel({ authDir: join(stateHome, 'whatsapp-auth'), assistantName, log: logFor('whatsapp') }));
  return channels;
}

// The messengers whose credentials are set, each as its adapter; the local channel is always there. Each
// adapter's module (and its platform library: discord.js, Bolt, grammY, Baileys) is loaded only when that
// messenger is enabled: together they would add about 45 MB to a pincer that uses none of them.
import { join } from 'node:path';
import type { ChannelConfig } from '../config.js';
import type { Logger } from '../log.js';
import type { Store } from '../store/index.js';
import type { Channel } from './types.js';

/**
 * `stateHome`: pincer's state folder; WhatsApp keeps its login there, where no sandbox can see it. `store` keeps
 * what lets sub-agents post as themselves (Discord webhooks, Telegram pool bots' assignments).
 */
export async function enabledMessengers(
  config: ChannelConfig,
  assistantName: string,
  stateHome: string,
  store: Pick<Store, 'discordWebhooks' | 'telegramPool'>,
  log: Logger,
): Promise<Channel[]> {
  const channels: Channel[] = [];
  const logFor = (part: string) => log.child({ part: `channel:${part}` });
  if (config.telegram) {
    const { TelegramChannel } = await import('./telegram.js');
    const { poolTokens, ...telegram } = config.telegram;
    const pool = { tokens: poolTokens, assignments: store.telegramPool };
    channels.push(new TelegramChannel({ ...telegram, pool, assistantName, log: logFor('telegram') }));
  }
  if (config.slack) {
    const { SlackChannel } = await import('./slack.js');
    const face = config.senderAvatarUrl ? { senderAvatarUrl: config.senderAvatarUrl } : {};
    channels.push(new SlackChannel({ ...config.slack, ...face, assistantName, log: logFor('slack') }));
  }
  if (config.discord) {
    const { DiscordChannel } = await import('./discord.js');
    const face = config.senderAvatarUrl ? { senderAvatarUrl: config.senderAvatarUrl } : {};
    channels.push(
      new DiscordChannel({ ...config.discord, ...face, webhooks: store.discordWebhooks, assistantName, log: logFor('discord') }),
    );
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

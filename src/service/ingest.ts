// Ingest: store first (idempotent), decide whether the message engages the agent, then wake the dispatcher.
import type { InboundMessage, InboundSink, IngestResult } from '../channels/types.js';
import { engages, senderMayEngage } from '../router/trigger.js';
import type { Store } from '../store/index.js';
import { joinLocalChat } from './groups.js';
import type { StateLayout } from './layout.js';

export interface IngestDeps {
  store: Store;
  layout: StateLayout;
  assistantName: string;
  onEngaged(chatId: string, seq: number): void;
}

export function createIngest(deps: IngestDeps): InboundSink {
  const { store } = deps;
  const ingestOne = (m: InboundMessage): IngestResult =>
    store.transaction(() => {
      const now = Date.now();
      store.chats.seen({ id: m.chatId, channel: m.channel, name: m.chatName ?? null, isGroup: m.isGroup }, now);
      const group = store.groups.get(m.chatId) ?? joinLocalChat(store, deps.layout, m.chatId, deps.assistantName, now);
      const allowedSender = group ? senderMayEngage(group, m.senderId) : false;
      const engaged = group ? allowedSender && engages(group, m.text) : false;
      const { seq, duplicate } = store.messages.insert({
        chatId: m.chatId,
        channel: m.channel,
        platformId: m.platformId,
        senderId: m.senderId,
        senderName: m.senderName,
        text: m.text,
        sentAt: m.sentAt,
        fromAssistant: false,
        engages: engaged,
      });
      const event = (stage: 'received' | 'duplicate' | 'engaged' | 'ignored', detail: string | null) =>
        store.events.record({ messageSeq: seq, chatId: m.chatId, stage, detail, at: now });
      if (duplicate) {
        event('duplicate', `platform id ${m.platformId} was already stored`);
        return { seq, duplicate, engaged: false };
      }
      event('received', `from ${m.senderName} via ${m.channel}`);
      if (!group) event('ignored', 'chat is not a registered group (the main group can join it)');
      else if (!allowedSender) event('ignored', `sender ${m.senderId} is not on the group's sender allowlist; kept as context`);
      else if (!engaged) event('ignored', `no trigger (${group.trigger}); kept as context`);
      else
        event('engaged', group.isMain ? 'main group' : group.respondToAll ? 'group responds to every message' : `trigger ${group.trigger}`);
      return { seq, duplicate, engaged };
    });

  return {
    ingest(m) {
      const result = ingestOne(m);
      if (result.engaged) deps.onEngaged(m.chatId, result.seq);
      return result;
    },
  };
}

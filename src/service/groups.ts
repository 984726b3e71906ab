// Joining chats: which chats become groups, with which folder and trigger.
import { LOCAL_CHAT } from '../channels/local/chat-id.js';
import { defaultTrigger } from '../router/trigger.js';
import type { Group, NewGroup, Store } from '../store/index.js';
import { folderProblem, groupPaths, type StateLayout } from './layout.js';

export const MAIN_CHAT = 'local:main';

/** Registers a group; the caller holds a transaction when it must be atomic with other writes. */
export function registerGroup(store: Store, layout: StateLayout, g: NewGroup, at: number): Group {
  const problem = folderProblem(g.folder);
  if (problem) throw new Error(`cannot register ${g.chatId}: ${problem}`);
  if (store.groups.byFolder(g.folder)) throw new Error(`cannot register ${g.chatId}: folder "${g.folder}" is taken`);
  groupPaths(layout, g.folder, g.isMain);
  // A chat seen on its channel keeps what the channel said of it (name, group or not); others are recorded now.
  if (!store.chats.get(g.chatId)) store.chats.seen({ id: g.chatId, channel: g.chatId.split(':')[0] ?? 'unknown', isGroup: false }, at);
  return store.groups.register(g, at, store.messages.maxSeq(g.chatId));
}

/**
 * `local:main` is the owner's main group out of the box. `PINCER_MAIN_CHAT` (the owner's DM on a messenger)
 * takes the role instead: joined if need be (folder `owner`), and the former main group stays an ordinary one.
 */
export function ensureMainGroup(store: Store, layout: StateLayout, assistantName: string, mainChat?: string): void {
  if (!mainChat || mainChat === MAIN_CHAT) {
    if (store.groups.list().some((g) => g.isMain) || store.groups.get(MAIN_CHAT)) return;
    registerGroup(
      store,
      layout,
      { chatId: MAIN_CHAT, folder: 'main', trigger: defaultTrigger(assistantName), respondToAll: true, isMain: true },
      Date.now(),
    );
    return;
  }
  if (store.groups.get(mainChat)?.isMain) return;
  store.transaction(() => {
    if (!store.groups.get(mainChat)) {
      const folder = ['owner', 'owner-dm', 'owner-main'].find((f) => !store.groups.byFolder(f)) ?? `owner-${Date.now()}`;
      registerGroup(
        store,
        layout,
        { chatId: mainChat, folder, trigger: defaultTrigger(assistantName), respondToAll: true, isMain: false },
        Date.now(),
      );
    }
    store.groups.makeMain(mainChat);
  });
}

/**
 * Local chats are the owner's own (reaching them takes the API token), so a new one is joined on its first
 * message and answers everything said in it.
 */
export function joinLocalChat(store: Store, layout: StateLayout, chatId: string, assistantName: string, at: number): Group | undefined {
  if (!LOCAL_CHAT.test(chatId)) return undefined;
  const folder = chatId.slice('local:'.length);
  if (folderProblem(folder) || store.groups.byFolder(folder)) return undefined;
  return registerGroup(store, layout, { chatId, folder, trigger: defaultTrigger(assistantName), respondToAll: true, isMain: false }, at);
}

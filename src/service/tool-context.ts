// What a session's tools may do in its own chat: post text and files through the outbox.
import { isAbsolute } from 'node:path';
import { SANDBOX_GROUP_DIR } from '../agent/sandbox-spawn.js';
import { stripInternal } from '../router/outbound.js';
import { readFileInside, SafeFsError } from '../sandbox/safe-fs.js';
import type { Group, Store } from '../store/index.js';
import type { ToolContext } from '../tools/pincer-server.js';
import { groupPaths, type StateLayout } from './layout.js';

/** The largest file the agent may send into a chat. */
export const MAX_SEND_FILE_BYTES = 50 * 1024 * 1024;

/** What the tools need of a lane or an isolated run (a narrow view, so that neither is imported here). */
export interface ToolContextDeps {
  store: Store;
  layout: StateLayout;
  control: ToolContext['control'];
  onOutbox(): void;
}

/** `replyTo`: the stored message the session is answering now, if any (for threading). */
export function chatToolContext(deps: ToolContextDeps, group: Group, replyTo: () => number | null): ToolContext {
  const { store } = deps;
  const chatId = group.chatId;
  return {
    chatId,
    isMain: group.isMain,
    control: deps.control,
    send: (text, sender) => {
      const clean = stripInternal(text);
      if (!clean) return;
      store.outbox.add(chatId, clean, replyTo(), Date.now(), sender);
      deps.onOutbox();
    },
    sendFile: async (relativePath, caption) => {
      // Checked now, so the agent hears at once of a missing, linked-out or oversized file; read again at delivery.
      try {
        await readFileInside(groupPaths(deps.layout, group.folder, group.isMain).groupDir, relativePath, MAX_SEND_FILE_BYTES);
      } catch (err) {
        // The refusal names the file as the agent knows it, not by the host's path (which it has no use for).
        if (err instanceof SafeFsError) {
          // send_file passes absolute paths under the folder on as relative ones; any other absolute path is outside it.
          if (isAbsolute(relativePath)) throw new Error(`${relativePath}: not inside ${SANDBOX_GROUP_DIR}; only files there can be sent`);
          throw new Error(`${SANDBOX_GROUP_DIR}/${relativePath}: ${err.reason}`);
        }
        throw err;
      }
      store.outbox.addFile(chatId, relativePath, stripInternal(caption), replyTo(), Date.now());
      deps.onOutbox();
    },
  };
}

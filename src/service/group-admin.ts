// What the main group may change about any group's isolation; other groups never get these tools.
import type { Logger } from '../log.js';
import { describePolicy, egressPolicySchema } from '../proxy/egress-policy.js';
import type { Store } from '../store/index.js';
import type { GroupAdmin } from '../tools/admin-tools.js';
import { checkExtraMounts, type SandboxSettings } from './sandbox-plan.js';

/** A refusal the agent should read and relay; it changes nothing. */
export class AdminError extends Error {}

export function createGroupAdmin(store: Store, sandbox: SandboxSettings, log: Logger): GroupAdmin {
  const group = (folder: string) => {
    const g = store.groups.list().find((x) => x.folder === folder);
    if (!g) throw new AdminError(`no group has the folder "${folder}"`);
    return g;
  };
  return {
    setEgressPolicy(folder, policy) {
      const g = group(folder);
      const parsed = egressPolicySchema.parse(policy);
      store.groups.setEgressPolicy(g.chatId, parsed);
      log.info({ group: folder, policy: parsed }, 'egress policy changed');
      return `Egress policy of ${folder} is now ${describePolicy(parsed)}; it applies from its next connection.`;
    },
    setExtraMounts(folder, mounts) {
      const g = group(folder);
      const { mounts: accepted, rejected } = checkExtraMounts(mounts, g, sandbox);
      if (rejected.length > 0) {
        throw new AdminError(`nothing changed; refused: ${rejected.map((r) => `${r.request.hostPath}: ${r.reason}`).join('; ')}`);
      }
      store.groups.setExtraMounts(g.chatId, mounts);
      log.info({ group: folder, mounts: accepted }, 'extra mounts changed');
      const list = accepted.map((m) => `${m.hostPath} at ${m.sandboxPath} (${m.writable ? 'read-write' : 'read-only'})`).join(', ');
      return `Extra mounts of ${folder}: ${list || 'none'}. They apply from its next session.`;
    },
  };
}

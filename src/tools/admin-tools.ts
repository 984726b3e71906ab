// Tools only the main group's session gets: structural authorization, since other sessions lack them.
import { tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import type { EgressPolicy } from '../proxy/egress-policy.js';
import type { ExtraMountRequest } from '../sandbox/mount-allowlist.js';

/** What the main group may change about any group's isolation (implemented by the service). */
export interface GroupAdmin {
  /** Applies from the group's next connection on; returns a sentence for the agent. */
  setEgressPolicy(folder: string, policy: EgressPolicy): string;
  /** Checked against the allowlist now and again at every sandbox start; applies from the next session. */
  setExtraMounts(folder: string, mounts: ExtraMountRequest[]): string;
}

type ToolText = { content: Array<{ type: 'text'; text: string }>; isError?: boolean };

/** A refusal or invalid argument goes back to the agent as a tool error; nothing was changed. */
function answer(run: () => string): ToolText {
  try {
    return { content: [{ type: 'text', text: run() }] };
  } catch (err) {
    return { content: [{ type: 'text', text: `Error: ${err instanceof Error ? err.message : String(err)}` }], isError: true };
  }
}

const folder = z.string().min(1).max(64).describe("The group's folder name");

export function adminTools(admin: GroupAdmin) {
  return [
    tool(
      'set_egress_policy',
      "Change where a group's sandbox may connect: open (any public host), allowlist (only the listed domains and their subdomains) or none.",
      {
        folder,
        mode: z.enum(['open', 'allowlist', 'none']),
        domains: z.array(z.string().min(1).max(253)).max(200).optional().describe('For allowlist: e.g. ["github.com", "pypi.org"]'),
      },
      async ({ folder, mode, domains }) =>
        answer(() => admin.setEgressPolicy(folder, mode === 'allowlist' ? { mode, domains: domains ?? [] } : { mode })),
    ),
    tool(
      'set_extra_mounts',
      "Set the host folders mounted into a group's sandbox at /workspace/extra/<name>. Only folders under the roots of the owner's mount allowlist are accepted; replaces the group's previous list.",
      {
        folder,
        mounts: z
          .array(z.object({ hostPath: z.string().min(1).max(4096), name: z.string().max(64).optional(), readOnly: z.boolean().optional() }))
          .max(20),
      },
      async ({ folder, mounts }) => answer(() => admin.setExtraMounts(folder, mounts)),
    ),
  ];
}

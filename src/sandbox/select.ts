import type { Logger } from '../log.js';
import { BwrapRuntime } from './bwrap.js';
import type { Runtime } from './types.js';

export type RuntimeChoice = { ok: true; runtime: Runtime } | { ok: false; reason: string };

/** Picks the sandbox runtime: `auto` takes bubblewrap on Linux when it works here. */
export async function selectRuntime(wanted: 'auto' | 'bwrap', stateDir: string, log: Logger): Promise<RuntimeChoice> {
  if (process.platform !== 'linux') {
    return { ok: false, reason: `no sandbox runtime for ${process.platform} yet: pincer needs Linux with bubblewrap` };
  }
  const bwrap = new BwrapRuntime({ stateDir });
  const probe = await bwrap.probe();
  if (!probe.ok) return { ok: false, reason: `${wanted === 'auto' ? 'auto: ' : ''}${probe.reason ?? 'bubblewrap failed'}` };
  log.info({ runtime: bwrap.name, sandboxUid: bwrap.user?.uid ?? process.getuid?.() }, 'sandbox runtime selected');
  return { ok: true, runtime: bwrap };
}

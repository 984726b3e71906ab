import type { Logger } from '../log.js';
import { AppleContainerRuntime } from './apple-container.js';
import { BwrapRuntime } from './bwrap.js';
import { DockerRuntime } from './docker.js';
import type { Runtime, RuntimeName } from './types.js';

export type RuntimeChoice = { ok: true; runtime: Runtime } | { ok: false; reason: string };

export interface RuntimeSettings {
  wanted: 'auto' | RuntimeName;
  /** The runtime's own files (bubblewrap's synthesized /etc). */
  stateDir: string;
  /** Identifies this pincer's state: names its cgroups and labels its containers. */
  instance: string;
  containerImage: string;
  log: Logger;
  /** Remove what a crashed pincer left (off for `pincer doctor`, which may run beside a live pincer). */
  cleanOrphans: boolean;
}

function build(name: RuntimeName, s: RuntimeSettings): Runtime {
  switch (name) {
    case 'bwrap':
      return new BwrapRuntime({ stateDir: s.stateDir, instance: s.instance, log: s.log });
    case 'docker':
    case 'podman':
      return new DockerRuntime({ cli: name, image: s.containerImage, instance: s.instance, log: s.log });
    case 'apple-container':
      return new AppleContainerRuntime({ image: s.containerImage, instance: s.instance, log: s.log });
  }
}

/** What `auto` tries, in order, on each platform. */
function candidates(): RuntimeName[] {
  if (process.platform === 'linux') return ['bwrap', 'docker', 'podman'];
  if (process.platform === 'darwin') return ['apple-container', 'docker', 'podman'];
  return ['docker', 'podman'];
}

/**
 * Picks the sandbox runtime: the one asked for, or with `auto` the first that works here (bubblewrap on
 * Linux, Apple Container on macOS, else Docker or Podman). Says which at start, with its limits, and
 * clears what a crashed pincer left behind.
 */
export async function selectRuntime(s: RuntimeSettings): Promise<RuntimeChoice> {
  const names = s.wanted === 'auto' ? candidates() : [s.wanted];
  const reasons: string[] = [];
  for (const name of names) {
    const runtime = build(name, s);
    const probe = await runtime.probe();
    if (!probe.ok) {
      reasons.push(`${name}: ${probe.reason ?? 'unavailable'}`);
      continue;
    }
    if (s.cleanOrphans) await runtime.cleanOrphans();
    s.log.info({ runtime: name, asked: s.wanted, limits: runtime.limits() }, 'sandbox runtime selected');
    return { ok: true, runtime };
  }
  return { ok: false, reason: `no sandbox runtime works here (${reasons.join('; ')})` };
}

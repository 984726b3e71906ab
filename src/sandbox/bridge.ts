// The sandbox has no network but its own loopback. Each forward listens on 127.0.0.1:port inside and
// relays to a host Unix socket whose folder is mounted read-only; the command starts once every port listens.
import { basename, dirname } from 'node:path';
import type { Forward, Mount } from './types.js';

/** Where the folder of the i-th forward's socket appears inside the sandbox. */
export function forwardDir(index: number): string {
  return `/run/pincer/${index}`;
}

/** The read-only mounts that make each forward's host socket reachable inside. */
export function forwardMounts(forwards: Forward[]): Mount[] {
  return forwards.map((f, i) => ({ hostPath: dirname(f.hostSocket), sandboxPath: forwardDir(i), writable: false }));
}

/**
 * A `/bin/sh -c` script that starts one socat relay per forward, waits until each port listens
 * (read from /proc/net/tcp, no network tools needed), then execs its arguments.
 */
export function bridgeScript(forwards: Forward[]): string {
  const lines = forwards.map(
    (f, i) => `socat TCP-LISTEN:${f.port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:${forwardDir(i)}/${basename(f.hostSocket)} &`,
  );
  for (const f of forwards) {
    const hex = f.port.toString(16).toUpperCase().padStart(4, '0');
    lines.push(
      `n=0; until grep -q '0100007F:${hex} ' /proc/net/tcp; do n=$((n+1)); ` +
        `if [ $n -gt 1000 ]; then echo 'pincer: port bridge ${f.port} did not start' >&2; exit 97; fi; sleep 0.002; done`,
    );
  }
  lines.push('exec "$@"');
  return lines.join('\n');
}

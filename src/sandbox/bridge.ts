// The sandbox has no network but its own loopback. Each forward listens on 127.0.0.1:port inside and
// relays to a host Unix socket whose folder is mounted read-only; the command starts once every port listens.
import { basename, dirname } from 'node:path';
import type { Forward, Mount } from './types.js';

/** An external mount and the `device:inode` the host opened and checked for it. */
export interface MountCheck {
  sandboxPath: string;
  identity: string;
}

/** Where the folder of the i-th forward's socket appears inside the sandbox. */
export function forwardDir(index: number): string {
  return `/run/pincer/${index}`;
}

/** The read-only mounts that make each forward's host socket reachable inside. */
export function forwardMounts(forwards: Forward[]): Mount[] {
  return forwards.map((f, i) => ({ hostPath: dirname(f.hostSocket), sandboxPath: forwardDir(i), writable: false }));
}

/**
 * A `/bin/sh -c` script, the sandbox's PID 1: it starts one socat relay per forward, waits until each port
 * listens (read from /proc/net/tcp, no network tools needed), then runs its arguments (Claude Code) as its
 * child and reaps every orphan until that child ends, with its exit status.
 *
 * Only Claude Code holds the host's end of its stdin, stdout and stderr: the relays get /dev/null, and this
 * shell lets go of them once Claude Code runs. Claude Code's stream is the host's channel to the agent; a
 * process that an agent's command can trace (this shell, a relay) must hold nothing that writes to it.
 */
export function bridgeScript(forwards: Forward[], mounts: MountCheck[] = []): string {
  // The runtime mounted a path the host checked; a folder swapped in between (by another sandbox that can write
  // where it lies) is caught here, before anything of the agent's runs.
  const lines = mounts.map(
    (m) =>
      `[ "$(stat -c %d:%i '${m.sandboxPath}')" = '${m.identity}' ] || { echo 'pincer: ${m.sandboxPath} is not the folder that was checked' >&2; exit 98; }`,
  );
  lines.push(
    ...forwards.map(
      (f, i) =>
        `socat TCP-LISTEN:${f.port},bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:${forwardDir(i)}/${basename(f.hostSocket)} </dev/null >/dev/null 2>&1 &`,
    ),
  );
  for (const f of forwards) {
    const hex = f.port.toString(16).toUpperCase().padStart(4, '0');
    lines.push(
      `n=0; until grep -q '0100007F:${hex} ' /proc/net/tcp; do n=$((n+1)); ` +
        `if [ $n -gt 1000 ]; then echo 'pincer: port bridge ${f.port} did not start' >&2; exit 97; fi; sleep 0.002; done`,
    );
  }
  // A background command's stdin would be /dev/null: hand it the real one explicitly.
  lines.push('exec 3<&0', '"$@" <&3 3<&- &', 'exec 3<&- </dev/null >/dev/null 2>&1', 'wait $!');
  return lines.join('\n');
}

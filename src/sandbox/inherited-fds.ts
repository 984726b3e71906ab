// Node opens every descriptor of its own close-on-exec; one without that flag was inherited from whatever
// started pincer (a supervisor's pipe, a CI runner's log). A child keeps such a descriptor through exec, and
// bubblewrap, setpriv and prlimit close nothing: it would reach the sandbox's PID 1 and relays, processes an
// agent's command can trace, and so be the agent's. pincer uses none of them: they are closed before a sandbox starts.
import { closeSync, readdirSync, readFileSync } from 'node:fs';

const O_CLOEXEC = 0o2000000;

/** Closes every descriptor above stderr that lacks close-on-exec (Linux; elsewhere there is no /proc to ask). */
export function closeInheritedDescriptors(): number[] {
  let names: string[];
  try {
    names = readdirSync('/proc/self/fdinfo');
  } catch {
    return [];
  }
  // Node's own IPC channel, if it has one, is close-on-exec like everything else it opens.
  const closed: number[] = [];
  for (const name of names) {
    const fd = Number(name);
    if (!Number.isInteger(fd) || fd <= 2) continue;
    let flags: number;
    try {
      const match = /^flags:\s*([0-7]+)$/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'));
      if (!match?.[1]) continue;
      flags = Number.parseInt(match[1], 8);
    } catch {
      continue; // Closed meanwhile (the directory's own descriptor among them).
    }
    if ((flags & O_CLOEXEC) !== 0) continue;
    try {
      closeSync(fd);
      closed.push(fd);
    } catch {}
  }
  return closed;
}

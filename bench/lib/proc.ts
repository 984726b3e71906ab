// Memory of processes, read from /proc (Linux): resident set (what `process.memoryUsage().rss` reports for
// the process itself) and proportional set (shared pages divided among the processes sharing them).
import { readdirSync, readFileSync } from 'node:fs';

function readKb(file: string, field: string): number | undefined {
  try {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(file, 'utf8'));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined; // the process is gone (or not ours to read)
  }
}

/** Resident set in MB (VmRSS: the same figure as process.memoryUsage().rss inside the process). */
export function rssMb(pid: number): number | undefined {
  const kb = readKb(`/proc/${pid}/status`, 'VmRSS');
  return kb === undefined ? undefined : kb / 1024;
}

/** Proportional set in MB: pages shared by n processes count 1/n to each, so a sum over processes is honest. */
export function pssMb(pid: number): number | undefined {
  const kb = readKb(`/proc/${pid}/smaps_rollup`, 'Pss');
  return kb === undefined ? undefined : kb / 1024;
}

/** Every process's parent, from /proc/<pid>/stat (the command name may hold spaces and parentheses). */
function parents(): Map<number, number> {
  const out = new Map<number, number>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
      out.set(Number(entry), Number(fields[1]));
    } catch {
      // exited meanwhile
    }
  }
  return out;
}

export interface ProcessInfo {
  pid: number;
  command: string;
}

/** Every descendant of `pid` (children, their children, …), whatever namespace they live in. */
export function descendants(pid: number): ProcessInfo[] {
  const ppid = parents();
  const children = new Map<number, number[]>();
  for (const [child, parent] of ppid) children.set(parent, [...(children.get(parent) ?? []), child]);
  const out: ProcessInfo[] = [];
  const stack = [...(children.get(pid) ?? [])];
  while (stack.length > 0) {
    const p = stack.pop() as number;
    let command = '?';
    try {
      command = readFileSync(`/proc/${p}/comm`, 'utf8').trim();
    } catch {
      // exited meanwhile
    }
    out.push({ pid: p, command });
    stack.push(...(children.get(p) ?? []));
  }
  return out;
}

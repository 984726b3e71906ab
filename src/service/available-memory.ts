// How much memory pincer may still use: what the system has available, or less when pincer runs under a
// memory limit of its own (a container's, a systemd unit's MemoryMax), where the system's figure would lie.
import { freemem, totalmem } from 'node:os';
import { ownCgroupMemoryUsage } from '../sandbox/cgroup.js';

export function availableMemory(): number {
  const free = freemem();
  // Node reports "no limit" as a huge number (or 0 where it cannot tell).
  const limit = process.constrainedMemory?.() ?? 0;
  if (!limit || limit >= totalmem()) return free;
  const used = ownCgroupMemoryUsage();
  return used === undefined ? free : Math.min(free, Math.max(0, limit - used));
}

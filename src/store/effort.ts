// A stored effort level is read back strictly: a row edited by hand into nonsense fails loudly, naming its owner.
import { EFFORT_LEVELS, type Effort } from '../config.js';

const LEVELS: ReadonlySet<string> = new Set(EFFORT_LEVELS);

export function storedEffort(raw: string | null, owner: string): Effort | null {
  if (raw === null) return null;
  if (!LEVELS.has(raw)) throw new Error(`${owner}: stored effort "${raw}" is none of ${EFFORT_LEVELS.join(', ')}`);
  return raw as Effort;
}

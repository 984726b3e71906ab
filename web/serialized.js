// @ts-check
// Re-reading after live events: they come in bursts, and two reads of one list must never race (an older
// answer would overwrite a newer one).
import { attempt } from './errors.js';

/**
 * Wraps an async step so that it never runs twice at once: calls while it runs fold into one more run after
 * it. Failures go to the error bar.
 * @param {() => Promise<void>} step
 * @returns {() => Promise<void>} resolves when the run that covers this call has finished
 */
export function serialized(step) {
  /** @type {Promise<void> | null} */
  let running = null;
  let again = false;
  const loop = async () => {
    do {
      again = false;
      await attempt(step);
    } while (again);
    running = null;
  };
  return () => {
    if (running) {
      again = true;
      return running;
    }
    running = loop();
    return running;
  };
}

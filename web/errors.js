// @ts-check
// The error bar: every failed call ends up here, visible until dismissed, so no error passes unseen.
import { required } from './dom.js';

/** Thrown after a 401 sent the browser to the login page: nothing to show, the page is going away. */
export class SessionEnded extends Error {
  constructor() {
    super('the session ended');
    this.name = 'SessionEnded';
  }
}

/** How an error about pincer being out of reach starts: it goes away by itself once pincer is back. */
export const UNREACHABLE = 'pincer is not reachable';

/** @param {unknown} err */
const describe = (err) => (err instanceof Error ? err.message : String(err));

/**
 * Shows an error in #error-bar; a repeat of the same error says how often it happened.
 * @param {unknown} err
 */
export function showError(err) {
  if (err instanceof SessionEnded) return;
  const bar = required('#error-bar', HTMLElement);
  const text = required('#error-text', HTMLElement);
  const message = describe(err);
  const repeats = text.dataset.message === message && !bar.hidden ? Number(text.dataset.repeats ?? '1') + 1 : 1;
  text.dataset.message = message;
  text.dataset.repeats = String(repeats);
  text.textContent = repeats > 1 ? `${message} (×${repeats})` : message;
  bar.hidden = false;
  console.error(err);
}

export function hideError() {
  required('#error-bar', HTMLElement).hidden = true;
}

/** pincer is back: an error that only said it was out of reach is over. */
export function hideUnreachable() {
  if ((required('#error-text', HTMLElement).dataset.message ?? '').startsWith(UNREACHABLE)) hideError();
}

/**
 * Runs an async step and shows its failure: for event handlers and live updates, whose promise nobody awaits.
 * @param {() => Promise<unknown>} step
 * @returns {Promise<void>}
 */
export async function attempt(step) {
  try {
    await step();
  } catch (err) {
    showError(err);
  }
}

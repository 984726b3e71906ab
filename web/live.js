// @ts-check
// The live connection: the server says what changed, the page re-reads it through the API. A dropped
// connection loses nothing: it reconnects with backoff and the page re-reads what it shows.

/** @typedef {import('./types.js').LiveEvent} LiveEvent */

const FIRST_DELAY_MS = 500;
const MAX_DELAY_MS = 10_000;
/** The server closes a logged-out session's connections with this code. */
const LOGGED_OUT = 4401;

/**
 * @typedef {object} LiveHandlers
 * @property {(event: LiveEvent) => void} onEvent
 * @property {(reconnected: boolean) => void} onOpen reconnected: an earlier connection dropped, so changes may have been missed
 * @property {(state: 'connecting' | 'live' | 'reconnecting') => void} onState
 * @property {() => void} onRefused a connection failed before it opened (perhaps the session ended)
 * @property {() => void} onLoggedOut
 */

/** @param {unknown} data */
function parse(data) {
  if (typeof data !== 'string') return null;
  try {
    const event = JSON.parse(data);
    return event !== null && typeof event === 'object' && typeof event.type === 'string' ? /** @type {LiveEvent} */ (event) : null;
  } catch {
    return null;
  }
}

/**
 * Connects and stays connected.
 * @param {LiveHandlers} handlers
 */
export function connectLive(handlers) {
  const url = `${location.protocol === 'https:' ? 'wss://' : 'ws://'}${location.host}/api/v1/live`;
  let delay = FIRST_DELAY_MS;
  let everOpened = false;

  const connect = () => {
    const socket = new WebSocket(url);
    let opened = false;
    socket.addEventListener('open', () => {
      opened = true;
      delay = FIRST_DELAY_MS;
      handlers.onState('live');
      handlers.onOpen(everOpened);
      everOpened = true;
    });
    socket.addEventListener('message', (message) => {
      const event = parse(message.data);
      if (event) handlers.onEvent(event);
    });
    socket.addEventListener('close', (close) => {
      if (close.code === LOGGED_OUT) {
        handlers.onLoggedOut();
        return;
      }
      handlers.onState('reconnecting');
      if (!opened) handlers.onRefused();
      setTimeout(connect, delay);
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    });
  };

  handlers.onState('connecting');
  connect();
}

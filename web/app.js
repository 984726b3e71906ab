// @ts-check
// The page: routes the hash to a view, keeps the live connection, and hands what it says to the open view.
import { logout, status } from './api.js';
import { required } from './dom.js';
import { attempt, hideError, hideUnreachable, showError } from './errors.js';
import { connectLive } from './live.js';
import { defaultChat, loadGroups, progressText, setTyping, state } from './state.js';
import { mountActivity } from './views/activity.js';
import { chatHref, mountChat } from './views/chat.js';
import { mountGroups } from './views/groups.js';
import { mountMemory } from './views/memory.js';
import { mountRuns, mountTasks } from './views/tasks.js';
import { mountTrace } from './views/trace.js';

/**
 * @typedef {import('./types.js').View} View
 * @typedef {import('./types.js').LiveEvent} LiveEvent
 * @typedef {{ nav: string, mount: (root: HTMLElement) => View }} Route
 */

const main = required('#view', HTMLElement);
const liveState = required('#live-state', HTMLElement);

/** @type {View} */
let current = {};

/** @param {string} part */
function decode(part) {
  try {
    return decodeURIComponent(part);
  } catch {
    return null;
  }
}

/**
 * The view a hash names; null when the hash should be replaced by the default chat.
 * @param {string} hash
 * @returns {Route | null}
 */
function route(hash) {
  const [, page = '', param] = /^#\/([^/]*)(?:\/(.*))?$/.exec(hash) ?? [];
  const id = param === undefined ? null : decode(param);
  if (page === 'chat' && id !== null) return { nav: 'chat', mount: (root) => mountChat(root, id) };
  if (page === 'groups') return { nav: 'groups', mount: mountGroups };
  if (page === 'memory') return { nav: 'groups', mount: (root) => mountMemory(root, id) };
  if (page === 'tasks' && id === null) return { nav: 'tasks', mount: mountTasks };
  if (page === 'tasks' && id !== null && /^[1-9][0-9]*$/.test(id)) return { nav: 'tasks', mount: (root) => mountRuns(root, Number(id)) };
  if (page === 'activity') return { nav: 'activity', mount: mountActivity };
  if (page === 'trace' && id !== null && /^[0-9]+$/.test(id)) return { nav: 'activity', mount: (root) => mountTrace(root, id) };
  return null;
}

function show() {
  const next = route(location.hash);
  if (next === null) {
    const chat = state.lastChat ?? defaultChat();
    if (chat !== null) {
      location.replace(chatHref(chat));
      return;
    }
  }
  current.unmount?.();
  main.replaceChildren();
  const { nav, mount } = next ?? { nav: 'chat', mount: (/** @type {HTMLElement} */ root) => mountChat(root, null) };
  for (const link of document.querySelectorAll('nav a[data-nav]')) {
    if (link.getAttribute('data-nav') === nav) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  // Focus moves to the new view for keyboard and screen reader users; a view may then focus its own field.
  main.focus({ preventScroll: true });
  current = mount(main);
}

/** @param {LiveEvent} event */
function onLive(event) {
  switch (event.type) {
    case 'hello':
      state.assistantName = event.assistantName;
      required('#assistant-name', HTMLElement).textContent = event.assistantName;
      document.title = event.assistantName;
      break;
    case 'messages':
      if (route(location.hash)?.nav !== 'chat' || state.lastChat !== event.chat) state.unread.add(event.chat);
      break;
    case 'typing':
      setTyping(event.chat, event.typing);
      break;
    case 'activity': {
      const progress = progressText(event.stage, event.detail);
      if (progress !== null) state.progress.set(event.chat, progress);
      break;
    }
    case 'draft':
      state.drafts.set(event.chat, (state.drafts.get(event.chat) ?? '').slice(0, event.from) + event.text);
      break;
    case 'draft-end':
      state.drafts.delete(event.chat);
      break;
    case 'groups':
      // The views read the refreshed list.
      void attempt(async () => {
        await loadGroups();
        current.onLive?.(event);
      });
      return;
  }
  current.onLive?.(event);
}

function wireShell() {
  required('#error-dismiss', HTMLButtonElement).addEventListener('click', hideError);
  required('#logout', HTMLButtonElement).addEventListener('click', () =>
    attempt(async () => {
      await logout();
      location.replace('/login');
    }),
  );
  // The nav's chat link returns to the chat open last.
  required('a[data-nav="chat"]', HTMLAnchorElement).addEventListener('click', (e) => {
    const chat = state.lastChat ?? defaultChat();
    if (chat === null) return;
    e.preventDefault();
    location.hash = chatHref(chat);
  });
  window.addEventListener('hashchange', show);
  window.addEventListener('unhandledrejection', (e) => showError(e.reason));
}

async function start() {
  wireShell();
  connectLive({
    onEvent: onLive,
    onOpen(reconnected) {
      // Whatever changed while the connection was down is read again.
      if (reconnected) {
        // A draft that ended while the connection was down would linger; the server sends live ones afresh.
        state.drafts.clear();
        hideUnreachable();
        void attempt(async () => {
          await loadGroups();
          current.refresh?.();
        });
      }
    },
    onState(s) {
      liveState.dataset.state = s;
      liveState.textContent = s === 'live' ? 'live' : s === 'connecting' ? 'connecting…' : 'reconnecting…';
    },
    onRefused() {
      // A refused connection may be an ended session: any API call then leads to the login page. Other
      // failures here are the outage the connection indicator already shows.
      status().catch(() => {});
    },
    onLoggedOut: () => location.replace('/login'),
  });
  try {
    await loadGroups();
  } catch (err) {
    showError(err);
  }
  show();
}

void start();

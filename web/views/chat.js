// @ts-check
// A conversation: the list of joined chats, the open chat's messages (the newest 100, then whatever arrives),
// what the agent is doing, and the composer for local chats.
import { ApiError, messages, sendMessage, typing as typingHint } from '../api.js';
import { h, replace } from '../dom.js';
import { hideError, showError, UNREACHABLE } from '../errors.js';
import { messageTime, preciseTime } from '../format.js';
import { renderMarkdown } from '../markdown.js';
import { serialized } from '../serialized.js';
import { groupLabel, groupOf, setTyping, state } from '../state.js';

/**
 * @typedef {import('../types.js').View} View
 * @typedef {import('../types.js').Message} Message
 */

const FIRST_PAGE = 100;
/** The server answers at most this many after a cursor; a full page means there may be more. */
const AFTER_PAGE = 200;
const MAX_TEXT = 100_000;
/** Within this many pixels of the bottom, new messages keep the view at the bottom. */
const NEAR_BOTTOM_PX = 80;
/** A message brought into view keeps this much of what came before it above. */
const START_MARGIN_PX = 8;
/** At most one typing hint per chat this often: one starts the chat's agent, which then stays up for a while. */
const TYPING_HINT_MS = 10_000;

/**
 * When each chat's last typing hint went out; kept across views, so reopening a chat does not send another at once.
 * @type {Map<string, number>}
 */
const typingHintSent = new Map();

/**
 * Someone typed in the composer: tell pincer, at most once per TYPING_HINT_MS for a chat (fire and forget).
 * @param {string} chatId
 */
function hintTyping(chatId) {
  const now = Date.now();
  if (now - (typingHintSent.get(chatId) ?? Number.NEGATIVE_INFINITY) < TYPING_HINT_MS) return;
  typingHintSent.set(chatId, now);
  void typingHint(chatId);
}

/** @param {string} chatId */
export const chatHref = (chatId) => `#/chat/${encodeURIComponent(chatId)}`;

/** Only local chats can be written to from the page; the others live on their own platform. */
const writable = (/** @type {string} */ chatId) => chatId.startsWith('local:');

/**
 * @param {HTMLElement} root
 * @param {string | null} chatId null: no chat to open (nothing joined)
 * @returns {View}
 */
export function mountChat(root, chatId) {
  if (chatId !== null) {
    state.lastChat = chatId;
    state.unread.delete(chatId);
  }
  const chatList = h('ul', { id: 'chat-list', class: 'chat-list' });
  const renderChatList = () => replace(chatList, ...chatListItems(chatId));
  renderChatList();
  if (chatId === null) {
    replace(
      root,
      h(
        'div',
        { class: 'chat-view' },
        h('aside', { class: 'chats', 'aria-label': 'Chats' }, chatList),
        h('section', { class: 'conversation' }, h('p', { class: 'empty' }, 'No chats joined yet: join one under Groups.')),
      ),
    );
    return { onLive: (e) => e.type === 'groups' && renderChatList(), refresh: renderChatList };
  }
  const openChat = chatId;

  const list = h('div', { id: 'messages', role: 'log', 'aria-live': 'polite', tabindex: 0 });
  const typing = h('p', { id: 'typing', class: 'typing', hidden: true, 'aria-live': 'polite' });
  const title = h('h2', {}, openChat);
  const badge = h('span', { class: 'badge' });
  const renderTitle = () => {
    const group = groupOf(openChat);
    title.textContent = group ? groupLabel(group) : openChat;
    badge.textContent = channelOf(openChat);
  };
  renderTitle();
  const writer = writable(openChat) ? composerFor(openChat, () => pull().then(scrollToBottom)) : null;
  const composer = writer ? writer.form : h('p', { class: 'read-only' }, `read-only: this conversation lives on ${channelOf(openChat)}`);

  replace(
    root,
    h(
      'div',
      { class: 'chat-view' },
      h('aside', { class: 'chats', 'aria-label': 'Chats' }, chatList),
      h('section', { class: 'conversation' }, h('header', { class: 'conversation-head' }, title, badge), list, typing, composer),
    ),
  );

  const renderTyping = () => {
    const working = state.typing.has(openChat);
    typing.hidden = !working;
    const progress = state.progress.get(openChat);
    replace(
      typing,
      h('span', { class: 'dots', 'aria-hidden': 'true' }),
      `${state.assistantName} is working…`,
      progress ? ` ${progress}` : null,
    );
  };

  const nearBottom = () => list.scrollHeight - list.scrollTop - list.clientHeight < NEAR_BOTTOM_PX;
  /** Where the view was put last; a scroll elsewhere is the reader's own. */
  let placedAt = -1;
  const scrollToBottom = () => {
    list.scrollTop = list.scrollHeight;
    placedAt = list.scrollTop;
  };
  /**
   * Follows a growing or new message down, but never past its start: a long reply is read from its top.
   * @param {HTMLElement} el
   */
  const revealStart = (el) => {
    const top = el.getBoundingClientRect().top - list.getBoundingClientRect().top + list.scrollTop - START_MARGIN_PX;
    list.scrollTop = Math.min(list.scrollHeight - list.clientHeight, top);
    placedAt = list.scrollTop;
  };

  /** The reply being written, shown where it will appear, until the delivered message takes its place. */
  /** @type {{ el: HTMLElement, body: HTMLElement, follow: boolean, done: boolean } | null} */
  let draft = null;
  list.addEventListener('scroll', () => {
    if (draft && Math.abs(list.scrollTop - placedAt) > 2) draft.follow = false;
  });
  /**
   * @param {string} text
   * @param {boolean} done the reply is written: this is what will be delivered
   */
  const renderDraft = (text, done) => {
    if (draft === null) {
      const body = h('div', { class: 'body md' });
      const el = h(
        'article',
        { class: 'msg draft', 'data-from': 'assistant', 'aria-busy': 'true' },
        h('header', { class: 'msg-head' }, h('span', { class: 'sender' }, state.assistantName), h('span', { class: 'time' }, 'writing…')),
        body,
      );
      draft = { el, body, follow: nearBottom(), done: false };
      list.querySelector(':scope > .empty')?.remove();
      list.appendChild(el);
    }
    replace(draft.body, renderMarkdown(text));
    if (done) {
      draft.done = true;
      draft.el.removeAttribute('aria-busy');
    }
    if (draft.follow) revealStart(draft.el);
  };
  const dropDraft = () => {
    draft?.el.remove();
    draft = null;
  };
  const showDraftFromState = () => {
    const text = state.drafts.get(openChat);
    if (text !== undefined) renderDraft(text, false);
  };

  /** Ids already shown: a live notice and a send can both fetch the same message. */
  const shown = new Set();
  /** @type {string | null} */
  let cursor = null;
  let disposed = false;

  /** @param {Message[]} batch */
  const show = (batch) => {
    const fresh = batch.filter((m) => !shown.has(m.id));
    if (fresh.length === 0) return;
    // A written draft gives way to the delivered reply, which keeps the draft's place in the view.
    const replaced = draft?.done === true && fresh.some((m) => m.fromAssistant) ? draft : null;
    const stick = replaced ? replaced.follow : nearBottom();
    if (replaced) dropDraft();
    list.querySelector(':scope > .empty')?.remove();
    /** @type {HTMLElement | null} */
    let firstReply = null;
    for (const m of fresh) {
      shown.add(m.id);
      const el = messageElement(m);
      if (m.fromAssistant && firstReply === null) firstReply = el;
      list.insertBefore(el, draft?.el ?? null);
    }
    if (stick) {
      if (firstReply) revealStart(firstReply);
      else scrollToBottom();
    }
  };

  // The first call reads the newest page; every later one what came after the cursor, page by page.
  const pull = serialized(async () => {
    if (disposed) return;
    if (cursor === null) {
      const page = await messages(openChat, { latest: FIRST_PAGE });
      if (disposed) return;
      cursor = page.cursor;
      setTyping(openChat, page.typing);
      if (page.messages.length === 0)
        list.appendChild(
          h('p', { class: 'empty' }, writable(openChat) ? 'No messages yet. Say hello below.' : 'No messages in this chat yet.'),
        );
      show(page.messages);
      scrollToBottom();
      showDraftFromState();
      renderTyping();
      return;
    }
    for (;;) {
      const page = await messages(openChat, { after: cursor });
      if (disposed) return;
      cursor = page.cursor;
      setTyping(openChat, page.typing);
      show(page.messages);
      renderTyping();
      if (page.messages.length < AFTER_PAGE) return;
    }
  });

  // The browser's network is back (pincer's own outage shows as the live connection coming back: refresh).
  const sendKept = () => writer?.sendKept();
  window.addEventListener('online', sendKept);

  renderTyping();
  void pull();
  if (composer instanceof HTMLFormElement && matchMedia('(pointer: fine)').matches) composer.querySelector('textarea')?.focus();

  return {
    onLive(event) {
      if (event.type === 'draft' && event.chat === openChat) showDraftFromState();
      else if (event.type === 'draft-end' && event.chat === openChat) {
        if (event.reply === '') dropDraft();
        else renderDraft(event.reply, true);
      } else if (event.type === 'messages' && event.chat === openChat) void pull();
      else if (event.type === 'messages' || event.type === 'groups') {
        renderChatList();
        renderTitle();
      } else if ((event.type === 'typing' || event.type === 'activity') && event.chat === openChat) renderTyping();
      else if (event.type === 'hello') renderTyping();
    },
    refresh() {
      // pincer is back: a message kept while it was not goes now.
      sendKept();
      renderChatList();
      renderTitle();
      if (!state.drafts.has(openChat)) dropDraft();
      void pull();
    },
    unmount() {
      disposed = true;
      window.removeEventListener('online', sendKept);
    },
  };
}

/** @param {string} chatId */
function channelOf(chatId) {
  return groupOf(chatId)?.channel ?? chatId.split(':', 1)[0] ?? '';
}

/** @param {string | null} openChat */
function chatListItems(openChat) {
  if (state.groups.length === 0) return [h('li', { class: 'empty' }, 'No groups yet.')];
  return state.groups.map((g) =>
    h(
      'li',
      {},
      h(
        'a',
        { href: chatHref(g.chatId), 'data-chat': g.chatId, 'aria-current': g.chatId === openChat ? 'page' : null },
        h('span', { class: 'chat-name' }, groupLabel(g)),
        h('span', { class: 'badge' }, g.channel),
        state.unread.has(g.chatId) ? h('span', { class: 'unread-dot', role: 'img', 'aria-label': 'unread messages' }) : null,
      ),
    ),
  );
}

/** @param {Message} m */
function messageElement(m) {
  const from = m.fromAssistant ? 'assistant' : 'user';
  // The agent writes markdown; what a person typed is shown as typed, line breaks and all.
  const body = m.fromAssistant ? h('div', { class: 'body md' }, renderMarkdown(m.text)) : h('div', { class: 'body plain' }, m.text);
  return h(
    'article',
    { class: 'msg', 'data-id': m.id, 'data-from': from },
    h(
      'header',
      { class: 'msg-head' },
      h('span', { class: 'sender' }, m.sender),
      h('time', { class: 'time', datetime: m.time, title: preciseTime(m.time) }, messageTime(m.time)),
      m.fromAssistant
        ? null
        : h(
            'a',
            { class: 'trace-link', href: `#/trace/${encodeURIComponent(m.id)}`, title: 'why was this (not) answered? see its trace' },
            'why?',
          ),
    ),
    body,
  );
}

/** Said when a message could not reach pincer: in plain words, with what happens next. */
const UNREACHABLE_TEXT = `${UNREACHABLE}; your message is kept and will be sent when it is back.`;

/**
 * The message box: Enter sends, Shift+Enter starts a new line. The text is cleared only once the server has it;
 * when pincer cannot be reached it stays, and goes when pincer is back (`sendKept`), stored once whatever happens.
 * @param {string} chatId
 * @param {() => Promise<void>} afterSend
 * @returns {{ form: HTMLFormElement, sendKept: () => void }}
 */
function composerFor(chatId, afterSend) {
  const text = h('textarea', {
    id: 'text',
    name: 'text',
    rows: 2,
    maxlength: MAX_TEXT,
    placeholder: 'Message — Enter sends, Shift+Enter for a new line',
    'aria-label': 'Message',
  });
  const send = h('button', { id: 'send', type: 'submit' }, 'Send');
  const form = h('form', { id: 'composer', class: 'composer' }, text, send);

  // Typing, pasting or dictating adds text; deleting it is not someone starting to write.
  text.addEventListener('input', () => {
    if (text.value.trim() !== '') hintTyping(chatId);
  });
  text.addEventListener('keydown', (e) => {
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      form.requestSubmit();
    }
  });
  /** The message that could not reach pincer, with the id it was tried under; it is still in the box. */
  /** @type {{ value: string, id: string } | null} */
  let kept = null;
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const value = text.value;
    if (value.trim() === '' || send.disabled) return;
    if (value.length > MAX_TEXT) {
      showError(`The message is ${value.length.toLocaleString()} characters long; at most ${MAX_TEXT.toLocaleString()} fit.`);
      return;
    }
    // The same text tried again keeps its id: if the lost attempt did arrive, it is not stored twice.
    const id = kept?.value === value ? kept.id : crypto.randomUUID();
    send.disabled = true;
    form.setAttribute('aria-busy', 'true');
    try {
      await sendMessage(chatId, value, id);
      if (kept !== null) hideError();
      kept = null;
      form.removeAttribute('data-kept');
      // Only what was sent is cleared: text typed while it was on its way stays.
      text.value = text.value.startsWith(value) ? text.value.slice(value.length) : text.value;
      await afterSend();
    } catch (err) {
      if (err instanceof ApiError && err.status === 0) {
        kept = { value, id };
        form.dataset.kept = 'true';
        showError(UNREACHABLE_TEXT);
      } else showError(err);
    } finally {
      send.disabled = false;
      form.removeAttribute('aria-busy');
      text.focus();
    }
  });
  const sendKept = () => {
    if (kept !== null && text.value === kept.value) form.requestSubmit();
  };
  return { form, sendKept };
}

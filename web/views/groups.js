// @ts-check
// The joined groups (trigger, who may engage, model, egress, session) with an inline editor of the trigger and
// of the model, and the chats pincer has seen but not joined, each with a join form.
import { joinChat, listProviders, listSeenChats, updateGroup } from '../api.js';
import { cell, h, replace, table } from '../dom.js';
import { attempt } from '../errors.js';
import { dateTime, timeAgo } from '../format.js';
import { serialized } from '../serialized.js';
import { groupLabel, loadGroups, state } from '../state.js';
import { chatHref } from './chat.js';
import { memoryHref } from './memory.js';

/**
 * @typedef {import('../types.js').View} View
 * @typedef {import('../types.js').GroupView} GroupView
 * @typedef {import('../types.js').SeenChat} SeenChat
 * @typedef {import('../types.js').ProviderView} ProviderView
 */

const EFFORTS = ['low', 'medium', 'high', 'xhigh', 'max'];

const HEADINGS = ['Name', 'Channel', 'Folder', 'Trigger', 'Senders', 'Model', 'Egress', 'Session', 'Last activity', ''];

/**
 * @param {HTMLElement} root
 * @returns {View}
 */
export function mountGroups(root) {
  const groupsBox = h('div', { class: 'groups-box' });
  const seenBox = h('div', { class: 'seen-box' });
  replace(
    root,
    h(
      'section',
      { class: 'page' },
      h('h2', {}, 'Groups'),
      h('p', { class: 'hint' }, 'Each group has its own agent, folder and memory. It answers messages that start with its trigger.'),
      groupsBox,
      h('h3', {}, 'Chats pincer has seen'),
      h('p', { class: 'hint' }, 'Not joined yet: pincer reads along but never answers. Join one to give it an agent.'),
      seenBox,
    ),
  );

  // Open forms survive a re-render (a live update while typing), input and all.
  /** @type {{ folder: string, form: HTMLElement } | null} */
  let editing = null;
  /** @type {{ chatId: string, form: HTMLFormElement } | null} */
  let joining = null;
  /** @type {SeenChat[]} */
  let seen = [];
  /** @type {ProviderView[]} */
  let providers = [];

  const renderGroups = () => {
    const rows = state.groups.flatMap((g) => {
      const row = groupRow(g, () => {
        editing =
          editing?.folder === g.folder
            ? null
            : {
                folder: g.folder,
                form: h('div', { class: 'edit-forms' }, triggerForm(g, close, saved), modelForm(g, providers, close, saved)),
              };
        renderGroups();
        editing?.form.querySelector('input')?.focus();
      });
      if (editing?.folder !== g.folder) return [row];
      return [row, h('tr', { class: 'edit-row' }, h('td', { colspan: HEADINGS.length }, editing.form))];
    });
    replace(
      groupsBox,
      state.groups.length === 0
        ? h('p', { class: 'empty' }, 'No groups yet: join a chat below.')
        : table({ id: 'groups', class: 'stack' }, HEADINGS, rows),
    );
  };
  const close = () => {
    editing = null;
    joining = null;
    renderGroups();
    renderSeen();
  };
  const saved = () => {
    editing = null;
    joining = null;
    void reload();
  };

  const renderSeen = () => {
    const items = seen.map((chat) => {
      const item = seenItem(chat, () => {
        joining = joining?.chatId === chat.id ? null : { chatId: chat.id, form: joinForm(chat, close, saved) };
        renderSeen();
        joining?.form.querySelector('input')?.focus();
      });
      if (joining?.chatId === chat.id) item.appendChild(joining.form);
      return item;
    });
    replace(
      seenBox,
      h(
        'ul',
        { id: 'seen-chats', class: 'seen-chats' },
        items.length > 0
          ? items
          : h(
              'li',
              { class: 'empty' },
              'No other chats seen yet. Add pincer to a Telegram, Slack, Discord, Signal or WhatsApp chat and say something there: the chat shows up here.',
            ),
      ),
    );
  };

  const reload = serialized(async () => {
    const [, chats, known] = await Promise.all([loadGroups(), listSeenChats(), listProviders()]);
    providers = known;
    seen = chats.sort((a, b) => b.lastSeenAt - a.lastSeenAt);
    if (editing && !state.groups.some((g) => g.folder === editing?.folder)) editing = null;
    if (joining && !seen.some((c) => c.id === joining?.chatId)) joining = null;
    renderGroups();
    renderSeen();
  });

  renderGroups();
  void reload();
  return {
    onLive(event) {
      if (event.type === 'groups') void reload();
      // A group's agent starting or finishing a turn changes its Session column.
      else if (event.type === 'typing') renderGroups();
    },
    refresh: () => void reload(),
  };
}

/**
 * A group's agent in one word: at work on a turn, up and waiting for a message (kept warm or started ahead), or none.
 * @param {GroupView} g
 */
function sessionState(g) {
  if (!g.live) return h('span', { class: 'session', 'data-state': 'none', title: 'no agent runs; the next message starts one' }, 'none');
  const working = state.typing.has(g.chatId);
  return working
    ? h('span', { class: 'session', 'data-state': 'working' }, 'working')
    : h('span', { class: 'session', 'data-state': 'ready', title: 'started, waiting for a message' }, 'ready');
}

/**
 * @param {GroupView} g
 * @param {() => void} onEdit
 */
function groupRow(g, onEdit) {
  const edit = h(
    'button',
    { type: 'button', class: 'edit secondary', 'aria-label': `Edit the trigger and model of ${groupLabel(g)}` },
    'Edit',
  );
  edit.addEventListener('click', onEdit);
  const senders = g.senderAllowlist;
  return h(
    'tr',
    { 'data-folder': g.folder },
    cell('Name', h('a', { href: chatHref(g.chatId) }, groupLabel(g)), g.isMain ? h('span', { class: 'badge main' }, 'main') : null),
    cell('Channel', h('span', { class: 'badge' }, g.channel)),
    cell('Folder', h('code', {}, g.folder)),
    cell('Trigger', h('code', {}, g.trigger), g.respondToAll ? h('span', { class: 'note' }, ' · responds to all') : null),
    cell('Senders', senders === null ? 'anyone' : h('span', { title: senders.join(', ') }, `${senders.length} allowed`)),
    cell('Model', modelSummary(g)),
    cell('Egress', g.egressPolicy),
    cell('Session', sessionState(g)),
    cell(
      'Last activity',
      g.lastActivityAt === null
        ? '—'
        : h('time', { datetime: new Date(g.lastActivityAt).toISOString(), title: dateTime(g.lastActivityAt) }, timeAgo(g.lastActivityAt)),
    ),
    cell('', h('span', { class: 'row-actions' }, h('a', { href: memoryHref(g.folder), class: 'memory-link' }, 'Memory'), edit)),
  );
}

/**
 * @param {GroupView} g
 * @param {() => void} onCancel
 * @param {() => void} onSaved
 */
function triggerForm(g, onCancel, onSaved) {
  const trigger = h('input', {
    name: 'trigger',
    value: g.trigger,
    required: true,
    maxlength: 64,
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const respondToAll = h('input', { type: 'checkbox', name: 'respondToAll', checked: g.respondToAll });
  const save = h('button', { type: 'submit' }, 'Save');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const form = h(
    'form',
    { class: 'trigger-form inline-form' },
    h('label', {}, 'Trigger ', trigger),
    h('label', { class: 'check' }, respondToAll, ' respond to every message, trigger or not'),
    save,
    cancel,
  );
  cancel.addEventListener('click', onCancel);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    save.disabled = true;
    void attempt(async () => {
      try {
        await updateGroup(g.folder, { trigger: trigger.value.trim(), respondToAll: respondToAll.checked });
        onSaved();
      } finally {
        save.disabled = false;
      }
    });
  });
  return form;
}

/**
 * What the group's next turn runs on: the model (or Claude Code's default) on its provider, with its effort.
 * @param {GroupView} g
 */
function modelSummary(g) {
  const m = g.models;
  if (m.problem) return h('span', { class: 'error', title: m.problem }, 'cannot run');
  const own = m.own.model !== null || m.own.provider !== null || m.own.effort !== null;
  return h(
    'span',
    { class: 'model', title: m.fallbackModel ? `fallback: ${m.fallbackModel}` : own ? 'set for this group' : "pincer's default" },
    h('code', {}, m.model ?? 'default model'),
    h('span', { class: 'note' }, ` on ${m.provider}${m.effort ? ` · effort ${m.effort}` : ''}`),
  );
}

/**
 * The group's own model settings; an empty field (or "default") goes back to pincer's default. Applies from the
 * group's next turn.
 * @param {GroupView} g
 * @param {ProviderView[]} providers
 * @param {() => void} onCancel
 * @param {() => void} onSaved
 */
function modelForm(g, providers, onCancel, onSaved) {
  const own = g.models.own;
  const fallbackName = providers.find((p) => p.isDefault)?.name ?? 'default';
  const provider = h(
    'select',
    { name: 'provider' },
    h('option', { value: '' }, `default (${fallbackName})`),
    ...providers.filter((p) => !p.isDefault).map((p) => h('option', { value: p.name, selected: own.provider === p.name }, p.name)),
  );
  const model = h('input', {
    name: 'model',
    value: own.model ?? '',
    maxlength: 200,
    placeholder: g.models.own.model === null && g.models.model ? g.models.model : 'default',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const effort = h(
    'select',
    { name: 'effort' },
    h('option', { value: '' }, 'default'),
    ...EFFORTS.map((e) => h('option', { value: e, selected: own.effort === e }, e)),
  );
  const fallback = h('input', {
    name: 'fallbackModel',
    value: own.fallbackModel ?? '',
    maxlength: 200,
    placeholder: 'none',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const save = h('button', { type: 'submit' }, 'Save model');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const form = h(
    'form',
    { class: 'model-form inline-form' },
    h('label', {}, 'Provider ', provider),
    h('label', {}, 'Model ', model),
    h('label', {}, 'Effort ', effort),
    h('label', {}, 'Fallback ', fallback),
    save,
    cancel,
  );
  cancel.addEventListener('click', onCancel);
  /** @param {string} v */
  const orDefault = (v) => (v.trim() === '' || v.trim() === 'default' ? null : v.trim());
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    save.disabled = true;
    void attempt(async () => {
      try {
        await updateGroup(g.folder, {
          provider: orDefault(provider.value),
          model: orDefault(model.value),
          effort: orDefault(effort.value),
          fallbackModel: orDefault(fallback.value),
        });
        onSaved();
      } finally {
        save.disabled = false;
      }
    });
  });
  return form;
}

/**
 * @param {SeenChat} chat
 * @param {() => void} onJoin
 */
function seenItem(chat, onJoin) {
  const join = h('button', { type: 'button', class: 'join' }, 'Join');
  join.addEventListener('click', onJoin);
  return h(
    'li',
    { class: 'seen-chat', 'data-chat-id': chat.id },
    h('span', { class: 'chat-name' }, chat.name ?? chat.id),
    h('span', { class: 'badge' }, chat.channel),
    h(
      'span',
      { class: 'note' },
      `${chat.isGroup ? 'group' : 'direct chat'} · last seen `,
      h('time', { datetime: new Date(chat.lastSeenAt).toISOString(), title: dateTime(chat.lastSeenAt) }, timeAgo(chat.lastSeenAt)),
    ),
    h('code', { class: 'chat-id' }, chat.id),
    join,
  );
}

/**
 * @param {SeenChat} chat
 * @param {() => void} onCancel
 * @param {() => void} onJoined
 */
function joinForm(chat, onCancel, onJoined) {
  const folder = h('input', {
    name: 'folder',
    maxlength: 64,
    placeholder: 'optional, e.g. family',
    autocomplete: 'off',
    spellcheck: 'false',
  });
  const submit = h('button', { type: 'submit' }, 'Join');
  const cancel = h('button', { type: 'button', class: 'secondary' }, 'Cancel');
  const form = h('form', { class: 'join-form inline-form' }, h('label', {}, 'Folder name ', folder), submit, cancel);
  cancel.addEventListener('click', onCancel);
  form.addEventListener('submit', (e) => {
    e.preventDefault();
    submit.disabled = true;
    const name = folder.value.trim();
    void attempt(async () => {
      try {
        await joinChat(name === '' ? { chatId: chat.id } : { chatId: chat.id, folder: name });
        onJoined();
      } finally {
        submit.disabled = false;
      }
    });
  });
  return form;
}

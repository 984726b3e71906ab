// @ts-check
// What pincer is doing and has done: its status now, a group's latest inbound messages (each a way into its
// trace), and what the last 30 days cost.
import { messages, status, usage } from '../api.js';
import { h, replace, table } from '../dom.js';
import { cost, dateTime, messageTime, number, preciseTime, truncate } from '../format.js';
import { serialized } from '../serialized.js';
import { defaultChat, groupLabel, state } from '../state.js';

/**
 * @typedef {import('../types.js').View} View
 * @typedef {import('../types.js').StatusView} StatusView
 * @typedef {import('../types.js').UsageRow} UsageRow
 * @typedef {import('../types.js').Message} Message
 */

const USAGE_DAYS = 30;
const INBOUND_SHOWN = 30;
const USAGE_HEADINGS = ['Date', 'Group', 'Turns', 'Cost', 'Input tokens', 'Output tokens', 'By model'];

/** The group picked last, kept while the page is open. */
let pickedChat = /** @type {string | null} */ (null);

/**
 * @param {HTMLElement} root
 * @returns {View}
 */
export function mountActivity(root) {
  const statusBox = h('div', { id: 'status', class: 'status-grid' });
  const picker = h('select', { id: 'activity-group', name: 'group' });
  const inboundBox = h('div');
  const usageBox = h('div');
  replace(
    root,
    h(
      'section',
      { class: 'page' },
      h('h2', {}, 'Activity'),
      statusBox,
      h('h3', {}, 'Latest messages'),
      h('p', { class: 'hint' }, h('label', {}, 'Group ', picker), ' Open one to see what happened to it, and why.'),
      inboundBox,
      h('h3', {}, `Usage, last ${USAGE_DAYS} days`),
      usageBox,
    ),
  );

  const renderPicker = () => {
    const known = state.groups.some((g) => g.chatId === pickedChat);
    if (!known) pickedChat = defaultChat();
    replace(
      picker,
      ...state.groups.map((g) => h('option', { value: g.chatId, selected: g.chatId === pickedChat }, `${groupLabel(g)} (${g.channel})`)),
    );
  };

  const loadStatus = serialized(async () => replace(statusBox, ...statusCards(await status())));
  const loadUsage = serialized(async () => replace(usageBox, usageTable(await usage(USAGE_DAYS))));
  const loadInbound = serialized(async () => {
    const chat = pickedChat;
    if (chat === null) {
      replace(inboundBox, h('p', { class: 'empty' }, 'No groups yet.'));
      return;
    }
    const page = await messages(chat, { latest: 100 });
    if (chat !== pickedChat) return;
    const inbound = page.messages
      .filter((m) => !m.fromAssistant)
      .reverse()
      .slice(0, INBOUND_SHOWN);
    replace(
      inboundBox,
      inbound.length === 0
        ? h('p', { class: 'empty' }, 'Nobody has written in this group yet.')
        : h('ul', { id: 'inbound', class: 'inbound' }, ...inbound.map(inboundItem)),
    );
  });

  picker.addEventListener('change', () => {
    pickedChat = picker.value;
    void loadInbound();
  });
  const all = () => {
    renderPicker();
    void loadStatus();
    void loadUsage();
    void loadInbound();
  };
  all();

  return {
    onLive(event) {
      if (event.type === 'messages' && event.chat === pickedChat) void loadInbound();
      if (event.type === 'typing' || event.type === 'tasks') void loadStatus();
      // A finished turn has a cost.
      if (event.type === 'typing' && !event.typing) void loadUsage();
      if (event.type === 'groups') {
        renderPicker();
        void loadStatus();
      }
    },
    refresh: all,
  };
}

/** @param {Message} m */
function inboundItem(m) {
  return h(
    'li',
    { 'data-id': m.id },
    h('time', { class: 'time', datetime: m.time, title: preciseTime(m.time) }, messageTime(m.time)),
    h('span', { class: 'sender' }, m.sender),
    h('span', { class: 'excerpt' }, truncate(m.text, 160)),
    h('a', { class: 'trace-link', href: `#/trace/${encodeURIComponent(m.id)}` }, 'trace'),
  );
}

/**
 * @param {string} title
 * @param {...(Node | string | null)} content
 */
const card = (title, ...content) => h('div', { class: 'card' }, h('h4', {}, title), ...content);

/** @param {StatusView} s */
function statusCards(s) {
  const named = (/** @type {string} */ agent) => s.groups.filter((g) => g.agent === agent).map((g) => g.folder);
  const working = named('working');
  const ready = named('ready');
  return [
    card(
      'Channels',
      s.channels.length === 0
        ? h('p', { class: 'note' }, 'none')
        : h(
            'ul',
            { class: 'plain-list' },
            ...s.channels.map((c) => h('li', {}, `${c.name} `, h('span', { class: 'conn', 'data-state': c.state }, c.state))),
          ),
    ),
    card(
      'Agents',
      h('p', {}, `${s.queue.working} working, ${s.queue.ready} ready, ${s.queue.waiting} waiting`),
      h(
        'p',
        { class: 'note' },
        working.length + ready.length === 0
          ? 'no agent started'
          : [working.length ? `working: ${working.join(', ')}` : '', ready.length ? `ready: ${ready.join(', ')}` : '']
              .filter(Boolean)
              .join(' · '),
      ),
    ),
    card(
      'Today',
      h('p', { class: 'big' }, cost(s.today.costUsd)),
      s.today.unpricedCalls > 0
        ? h(
            'p',
            { class: 'note unknown-cost' },
            `+ ${number(s.today.unpricedCalls)} call${s.today.unpricedCalls === 1 ? '' : 's'} of unknown cost (no known price)`,
          )
        : null,
      h('p', { class: 'note' }, `${number(s.today.turns)} turns · ${s.today.date}`),
    ),
    card(
      'Outbox',
      h('p', {}, `${s.outbox.pending} pending`),
      h('p', { class: s.outbox.failed > 0 ? 'error' : 'note' }, `${s.outbox.failed} failed`),
    ),
    card(
      'Next tasks',
      s.nextTasks.length === 0
        ? h('p', { class: 'note' }, 'none scheduled')
        : h(
            'ul',
            { class: 'plain-list' },
            ...s.nextTasks.map((t) =>
              h('li', {}, h('a', { href: `#/tasks/${t.id}` }, `#${t.id}`), ` ${t.group} · ${dateTime(t.nextRunAt)}`),
            ),
          ),
    ),
  ];
}

/**
 * The cost of a row's calls: unknown when none has a known price, the known part "+ unknown" when some have not.
 * @param {Pick<UsageRow, 'calls' | 'costUsd' | 'unpricedCalls'>} r
 */
function costWithUnknown(r) {
  if (r.unpricedCalls === 0) return cost(r.costUsd);
  return r.unpricedCalls === r.calls ? 'unknown' : `${cost(r.costUsd)} + unknown`;
}

/** @param {UsageRow[]} rows */
function usageTable(rows) {
  if (rows.length === 0) return h('p', { class: 'empty' }, `Nothing spent in the last ${USAGE_DAYS} days.`);
  const total = rows.reduce(
    (sum, r) => ({
      turns: sum.turns + r.turns,
      calls: sum.calls + r.calls,
      costUsd: sum.costUsd + r.costUsd,
      unpricedCalls: sum.unpricedCalls + r.unpricedCalls,
      inputTokens: sum.inputTokens + r.inputTokens,
      outputTokens: sum.outputTokens + r.outputTokens,
      models: [],
    }),
    { turns: 0, calls: 0, costUsd: 0, unpricedCalls: 0, inputTokens: 0, outputTokens: 0, models: [] },
  );
  /**
   * @param {string} date
   * @param {string} group
   * @param {Pick<UsageRow, 'turns' | 'calls' | 'costUsd' | 'unpricedCalls' | 'inputTokens' | 'outputTokens' | 'models'>} r
   * @param {string | null} className
   */
  const row = (date, group, r, className) =>
    h(
      'tr',
      { class: className },
      h('td', { 'data-label': 'Date' }, date),
      h('td', { 'data-label': 'Group' }, group),
      h('td', { 'data-label': 'Turns', class: 'num' }, number(r.turns)),
      // Calls to a model without a known price are not in the sum: said, never shown as free.
      h('td', { 'data-label': 'Cost', class: 'num' }, costWithUnknown(r)),
      h('td', { 'data-label': 'Input tokens', class: 'num' }, number(r.inputTokens)),
      h('td', { 'data-label': 'Output tokens', class: 'num' }, number(r.outputTokens)),
      h(
        'td',
        { 'data-label': 'By model', class: 'by-model' },
        // One model a line, as plain text lines (no boxes inside the cell to lay over each other).
        r.models.flatMap((m, i) => [
          i > 0 ? h('br') : null,
          `${m.model ?? 'unnamed'} (${m.provider ?? 'anthropic'}): ${m.costUsd === null ? 'unknown' : cost(m.costUsd)}, ${number(m.inputTokens)} in / ${number(m.outputTokens)} out`,
        ]),
      ),
    );
  return table(
    { id: 'usage', class: 'stack' },
    USAGE_HEADINGS,
    rows.map((r) => row(r.date, r.group, r, null)),
    [row('Total', '', total, 'total')],
  );
}

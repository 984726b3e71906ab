// @ts-check
// What happened to one message, stage by stage, with the reason at each decision and the time since it arrived.
import { trace } from '../api.js';
import { h, replace } from '../dom.js';
import { clockTime, preciseTime } from '../format.js';
import { serialized } from '../serialized.js';
import { groupLabel, groupOf } from '../state.js';
import { chatHref } from './chat.js';

/**
 * @typedef {import('../types.js').View} View
 * @typedef {import('../types.js').Trace} Trace
 */

/** @type {Record<string, string>} */
const STAGE_LABELS = {
  received: 'Received',
  scheduled: 'Scheduled task run',
  duplicate: 'Duplicate: already stored',
  engaged: 'Engages the agent',
  ignored: 'Not answered',
  over_budget: 'Budget reached: no agent',
  queued: 'Queued',
  spawned: 'Agent started',
  prompted: 'Handed to the agent',
  omitted: 'Not shown to the agent',
  model_request: 'Asked the model',
  tool: 'Used a tool',
  replied: 'Replied',
  turn_failed: 'Turn failed',
  delivered: 'Reply delivered',
  delivery_retry: 'Delivery retried',
  delivery_failed: 'Delivery failed',
  command: 'Chat command',
  archived: 'Conversation archived',
};

/**
 * @param {HTMLElement} root
 * @param {string} messageId
 * @returns {View}
 */
export function mountTrace(root, messageId) {
  const box = h('section', { id: 'trace', class: 'page' }, h('h2', {}, `Message ${messageId}`), h('p', { class: 'note' }, 'Loading…'));
  replace(root, box);
  const reload = serialized(async () => {
    try {
      replace(box, ...traceContent(await trace(messageId)));
    } catch (err) {
      replace(box, h('h2', {}, `Message ${messageId}`), h('p', { class: 'empty' }, 'This trace could not be read (see the error above).'));
      throw err;
    }
  });
  void reload();
  return {
    onLive(event) {
      if (event.type === 'activity' && event.message === messageId) void reload();
    },
    refresh: () => void reload(),
  };
}

/** @param {Trace} t */
function traceContent(t) {
  const m = t.message;
  const group = groupOf(m.chatId);
  const start = Date.parse((t.stages.find((s) => s.stage === 'received') ?? t.stages[0])?.at ?? m.sentAt);
  return [
    h('h2', {}, `Message ${m.id}`),
    h(
      'p',
      { class: 'trace-meta' },
      h('span', { class: 'sender' }, m.sender),
      ' in ',
      h('a', { href: chatHref(m.chatId) }, group ? groupLabel(group) : m.chatId),
      ' · ',
      h('time', { datetime: m.sentAt }, preciseTime(m.sentAt)),
      ' · ',
      m.engages ? 'meant for the agent' : 'not addressed to the agent',
    ),
    h('blockquote', { class: 'trace-text plain' }, m.text),
    t.stages.length === 0
      ? h('p', { class: 'empty' }, 'No stages recorded for this message.')
      : h(
          'ol',
          { class: 'stages' },
          ...t.stages.map((s) =>
            h(
              'li',
              { class: 'stage', 'data-stage': s.stage },
              h('span', { class: 'stage-label' }, STAGE_LABELS[s.stage] ?? s.stage),
              h('span', { class: 'offset' }, `+${Math.max(0, Date.parse(s.at) - start)} ms`),
              h('time', { class: 'stage-time', datetime: s.at, title: preciseTime(s.at) }, clockTime(s.at)),
              s.detail ? h('p', { class: 'detail' }, s.detail) : null,
            ),
          ),
        ),
  ];
}

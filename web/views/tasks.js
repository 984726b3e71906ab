// @ts-check
// Scheduled tasks: what runs when, in the task's own time zone, how it last went, and pause, resume and
// cancel; and one task's run log.
import { changeTask, listTasks, taskRuns } from '../api.js';
import { cell, h, replace, table } from '../dom.js';
import { attempt } from '../errors.js';
import { cost, dateTime, duration, firstLine, timeInZone, truncate } from '../format.js';
import { serialized } from '../serialized.js';

/**
 * @typedef {import('../types.js').View} View
 * @typedef {import('../types.js').TaskView} TaskView
 * @typedef {import('../types.js').TaskRun} TaskRun
 */

const TASK_HEADINGS = ['Group', 'Prompt', 'Schedule', 'Next run', 'Last run', 'Status', ''];
const RUN_HEADINGS = ['Due', 'Started', 'Status', 'Duration', 'Cost', 'Result'];

/**
 * @param {HTMLElement} root
 * @returns {View}
 */
export function mountTasks(root) {
  const box = h('div');
  replace(
    root,
    h(
      'section',
      { class: 'page' },
      h('h2', {}, 'Tasks'),
      h('p', { class: 'hint' }, 'Scheduled prompts: each runs in its group at its time, in its own time zone.'),
      box,
    ),
  );
  const reload = serialized(async () => {
    const tasks = await listTasks();
    replace(
      box,
      tasks.length === 0
        ? h('p', { class: 'empty' }, "No tasks yet. Ask the assistant: 'remind me every weekday at 9 to …'")
        : table(
            { id: 'tasks', class: 'stack' },
            TASK_HEADINGS,
            tasks.map((t) => taskRow(t, reload)),
          ),
    );
  });
  void reload();
  return {
    onLive(event) {
      if (event.type === 'tasks') void reload();
    },
    refresh: () => void reload(),
  };
}

/**
 * @param {TaskView} t
 * @param {() => Promise<void>} reload
 */
function taskRow(t, reload) {
  /** @param {'pause' | 'resume' | 'cancel'} action */
  const button = (action) => {
    const b = h('button', { type: 'button', 'data-action': action, class: action === 'cancel' ? 'danger' : 'secondary' }, action);
    b.addEventListener('click', () => {
      if (action === 'cancel' && !confirm(`Cancel task ${t.id} (“${truncate(t.prompt, 60)}”)? It will not run again.`)) return;
      b.disabled = true;
      void attempt(async () => {
        try {
          await changeTask(t.id, action);
          await reload();
        } finally {
          b.disabled = false;
        }
      });
    });
    return b;
  };
  const finished = t.status === 'cancelled' || t.status === 'completed';
  return h(
    'tr',
    { 'data-task-id': t.id },
    cell('Group', t.group),
    cell('Prompt', h('span', { class: 'prompt', title: t.prompt }, truncate(t.prompt, 80))),
    cell('Schedule', h('span', { title: `${t.scheduleType}: ${t.scheduleValue} · ${t.contextMode} context` }, t.schedule)),
    cell('Next run', t.nextRunAt === null ? '—' : timeInZone(t.nextRunAt, t.timezone)),
    cell('Last run', lastRun(t)),
    h('td', { class: 'status', 'data-label': 'Status', 'data-status': stateKind(t.state) }, t.state),
    cell(
      '',
      h(
        'span',
        { class: 'actions' },
        t.status === 'active' ? button('pause') : null,
        t.status === 'paused' ? button('resume') : null,
        finished ? null : button('cancel'),
        h('a', { class: 'runs-link', href: `#/tasks/${t.id}` }, 'runs'),
      ),
    ),
  );
}

/**
 * The kind of a state in words, for its colour: "waiting: budget reached" is a waiting.
 * @param {string} words
 */
function stateKind(words) {
  return words.split(':', 1)[0] ?? words;
}

/** @param {TaskView} t */
function lastRun(t) {
  const run = t.lastRun;
  if (run === null) return h('span', { class: 'note' }, 'not run yet');
  const outcome = run.error ?? run.result ?? '';
  return h(
    'span',
    { title: outcome || null },
    h('span', { class: 'run-status', 'data-status': stateKind(run.state) }, run.state),
    ' ',
    h('time', { datetime: run.dueAt }, dateTime(run.dueAt)),
    outcome ? h('span', { class: 'outcome' }, ` — ${firstLine(outcome, 80)}`) : null,
  );
}

/**
 * One task's runs, newest first.
 * @param {HTMLElement} root
 * @param {number} taskId
 * @returns {View}
 */
export function mountRuns(root, taskId) {
  const summary = h('p', { class: 'hint' });
  const box = h('div');
  replace(
    root,
    h(
      'section',
      { class: 'page' },
      h('p', {}, h('a', { href: '#/tasks' }, '← all tasks')),
      h('h2', {}, `Runs of task ${taskId}`),
      summary,
      box,
    ),
  );
  const reload = serialized(async () => {
    const [tasks, runs] = await Promise.all([listTasks(), taskRuns(taskId)]);
    // The list leaves out cancelled tasks; their runs are still worth reading.
    const task = tasks.find((t) => t.id === taskId);
    replace(
      summary,
      task
        ? [h('span', { class: 'prompt' }, truncate(task.prompt, 200)), ` — ${task.schedule}, ${task.state}`]
        : 'This task is cancelled or gone.',
    );
    replace(
      box,
      runs.length === 0
        ? h(
            'p',
            { class: 'empty' },
            'This task has not run yet.',
            task?.nextRunAt ? ` Its first run: ${timeInZone(task.nextRunAt, task.timezone)}.` : null,
          )
        : table({ id: 'runs', class: 'stack' }, RUN_HEADINGS, runs.map(runRow)),
    );
  });
  void reload();
  return {
    onLive(event) {
      if (event.type === 'tasks') void reload();
    },
    refresh: () => void reload(),
  };
}

/** @param {TaskRun} r */
function runRow(r) {
  const late = r.lateMs >= 1000 ? h('span', { class: 'note late' }, ` (+${duration(r.lateMs)} late)`) : null;
  return h(
    'tr',
    { 'data-run-id': r.id },
    cell('Due', dateTime(r.dueAt)),
    cell('Started', dateTime(r.startedAt), late),
    cell('Status', h('span', { class: 'run-status', 'data-status': stateKind(r.state) }, r.state)),
    cell('Duration', r.status === 'running' ? `${stateKind(r.state)}…` : duration(r.durationMs)),
    cell('Cost', cost(r.costUsd)),
    cell(
      'Result',
      outcome(r),
      r.messageSeq === null ? null : h('a', { class: 'trace-link', href: `#/trace/${r.messageSeq}`, title: 'the run’s trace' }, 'trace'),
    ),
  );
}

/**
 * The result or error: its first line, and the whole text one click away when there is more.
 * @param {TaskRun} r
 */
function outcome(r) {
  const text = r.error ?? r.result;
  if (text === null || text.trim() === '') return h('span', { class: 'note' }, '—');
  const className = r.error === null ? 'outcome' : 'outcome error';
  const head = firstLine(text);
  if (head === text.trim()) return h('span', { class: className }, head);
  return h('details', { class: className }, h('summary', {}, head), h('div', { class: 'full-text' }, text));
}

// Scheduled tasks, for every group's agent: its own group's tasks; the main group may name any group.
import { tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import { EFFORT_LEVELS } from '../config.js';
import type { Actor, Control } from '../service/control.js';
import { answer } from './tool-result.js';

const scheduleType = z.enum(['cron', 'interval', 'once']);
const contextMode = z.enum(['group', 'isolated']);
const taskId = z.number().int().positive().describe('The task id (from list_tasks)');

const taskModel = z
  .string()
  .min(1)
  .max(200)
  .optional()
  .describe("Main group, isolated tasks only: a model id, e.g. claude-haiku-4-5; default: the group's");
const taskEffort = z
  .enum(EFFORT_LEVELS)
  .optional()
  .describe("Main group, isolated tasks only: low, medium, high, xhigh or max; default: the group's");

export function taskTools(control: Control, actor: Actor) {
  return [
    tool(
      'schedule_task',
      [
        'The only way to do something later or repeatedly ("every weekday at 9am…", "in 2 hours remind me…", "each Friday check…").',
        "At each due time an agent runs `prompt` and its answer is posted to this chat. Tasks are kept by pincer: they survive restarts and this conversation's end (Claude Code's own cron and wake-ups do not, and are not offered).",
        'Write `prompt` as an instruction to your future self, with everything it needs: it may run without this conversation.',
        'schedule_type cron: 5-field cron, e.g. "0 9 * * 1-5" (weekdays 09:00); interval: "30m", "2h", "1d" (at least 1 minute); once: local time "YYYY-MM-DDTHH:MM".',
        "Times are in the group's time zone unless `timezone` is given.",
        'context_mode group (default): runs in this chat with its conversation; isolated: a fresh session without history (for self-contained jobs).',
        'Example: {"prompt": "Send an overview of the sales pipeline", "schedule_type": "cron", "schedule_value": "0 9 * * 1-5"}.',
        "target_group: another group's folder (main group only).",
        "A group's number of active and paused tasks is limited: cancel tasks no longer needed.",
        "A run due while the same task's previous run still goes is skipped.",
        "Main group only: an isolated task may run on its own model and effort (e.g. a cheap model for a daily digest); a group task runs on the group's.",
      ].join(' '),
      {
        prompt: z.string().min(1).max(20_000).describe('What the agent should do when the task runs'),
        schedule_type: scheduleType,
        schedule_value: z.string().min(1).max(200),
        context_mode: contextMode.optional().describe('Default: group'),
        target_group: z.string().min(1).max(64).optional(),
        timezone: z.string().min(1).max(64).optional().describe("IANA time zone; default: the group's"),
        model: taskModel,
        effort: taskEffort,
      },
      async (a) =>
        answer(() =>
          control.scheduleTask(actor, {
            prompt: a.prompt,
            scheduleType: a.schedule_type,
            scheduleValue: a.schedule_value,
            contextMode: a.context_mode ?? 'group',
            targetGroup: a.target_group,
            timezone: a.timezone,
            model: a.model,
            effort: a.effort,
          }),
        ),
    ),
    tool(
      'list_tasks',
      "List scheduled tasks with their ids, schedules, next run and last result: this group's, or (main group) every group's or one group's. Use it to find the id before update_task, pause_task, resume_task or cancel_task (\"pause the Monday briefing\").",
      { group: z.string().min(1).max(64).optional().describe('A group folder (main group only for other groups)') },
      async (a) => answer(() => control.listTasks(actor, { group: a.group })),
    ),
    tool(
      'update_task',
      'Change a scheduled task (id from list_tasks): its prompt, schedule, time zone or context mode; omitted fields stay. E.g. {"task_id": 3, "schedule_value": "0 8 * * 1"}.',
      {
        task_id: taskId,
        prompt: z.string().min(1).max(20_000).optional(),
        schedule_type: scheduleType.optional(),
        schedule_value: z.string().min(1).max(200).optional(),
        context_mode: contextMode.optional(),
        timezone: z.string().min(1).max(64).optional(),
        model: taskModel.nullable().describe("null: the group's model again"),
        effort: taskEffort.nullable(),
      },
      async (a) =>
        answer(() =>
          control.updateTask(actor, a.task_id, {
            prompt: a.prompt,
            scheduleType: a.schedule_type,
            scheduleValue: a.schedule_value,
            contextMode: a.context_mode,
            timezone: a.timezone,
            model: a.model,
            effort: a.effort,
          }),
        ),
    ),
    tool(
      'pause_task',
      'Pause a scheduled task (id from list_tasks) until resume_task: it keeps its schedule but does not run.',
      { task_id: taskId },
      async (a) => answer(() => control.pauseTask(actor, a.task_id)),
    ),
    tool('resume_task', 'Resume a paused task from now on (runs missed while paused are skipped).', { task_id: taskId }, async (a) =>
      answer(() => control.resumeTask(actor, a.task_id)),
    ),
    tool(
      'cancel_task',
      'Cancel a scheduled task for good (id from list_tasks); to stop it for a while, pause_task.',
      { task_id: taskId },
      async (a) => answer(() => control.cancelTask(actor, a.task_id)),
    ),
  ];
}

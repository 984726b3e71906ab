// Scheduled tasks, for every group's agent: its own group's tasks; the main group may name any group.
import { tool } from '@anthropic-ai/claude-agent-sdk';
import { z } from 'zod';
import type { Actor, Control } from '../service/control.js';
import { answer } from './tool-result.js';

const scheduleType = z.enum(['cron', 'interval', 'once']);
const contextMode = z.enum(['group', 'isolated']);
const taskId = z.number().int().positive().describe('The task id (from list_tasks)');

export function taskTools(control: Control, actor: Actor) {
  return [
    tool(
      'schedule_task',
      [
        'Schedule a prompt to run later or repeatedly; its answer is posted to the chat.',
        'schedule_type cron: 5-field cron in the task time zone, e.g. "0 9 * * 1-5" (weekdays 09:00);',
        'interval: a duration such as "30m", "2h", "1d" (at least 1 minute);',
        'once: a local time "YYYY-MM-DDTHH:MM" in the time zone.',
        'context_mode group: runs in this chat with its conversation; isolated: a fresh session without history.',
        'target_group: another group folder (main group only).',
        "A group's number of active and paused tasks is limited: cancel tasks no longer needed.",
        "A run due while the same task's previous run still goes is skipped (see its runs).",
      ].join(' '),
      {
        prompt: z.string().min(1).max(20_000).describe('What the agent should do when the task runs'),
        schedule_type: scheduleType,
        schedule_value: z.string().min(1).max(200),
        context_mode: contextMode.optional().describe('Default: group'),
        target_group: z.string().min(1).max(64).optional(),
        timezone: z.string().min(1).max(64).optional().describe("IANA time zone; default: the group's"),
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
          }),
        ),
    ),
    tool(
      'list_tasks',
      "List scheduled tasks: this group's, or (main group) every group's or one group's.",
      { group: z.string().min(1).max(64).optional().describe('A group folder (main group only for other groups)') },
      async (a) => answer(() => control.listTasks(actor, { group: a.group })),
    ),
    tool(
      'update_task',
      'Change a task: its prompt, schedule, time zone or context mode.',
      {
        task_id: taskId,
        prompt: z.string().min(1).max(20_000).optional(),
        schedule_type: scheduleType.optional(),
        schedule_value: z.string().min(1).max(200).optional(),
        context_mode: contextMode.optional(),
        timezone: z.string().min(1).max(64).optional(),
      },
      async (a) =>
        answer(() =>
          control.updateTask(actor, a.task_id, {
            prompt: a.prompt,
            scheduleType: a.schedule_type,
            scheduleValue: a.schedule_value,
            contextMode: a.context_mode,
            timezone: a.timezone,
          }),
        ),
    ),
    tool('pause_task', 'Pause a task until resumed.', { task_id: taskId }, async (a) => answer(() => control.pauseTask(actor, a.task_id))),
    tool('resume_task', 'Resume a paused task from now on (missed runs are skipped).', { task_id: taskId }, async (a) =>
      answer(() => control.resumeTask(actor, a.task_id)),
    ),
    tool('cancel_task', 'Cancel a task for good.', { task_id: taskId }, async (a) => answer(() => control.cancelTask(actor, a.task_id))),
  ];
}

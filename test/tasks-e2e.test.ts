// The README's phrases, played through the whole app with the scripted model: the agent (real Claude Code
// in a real sandbox) calls pincer's tools, and the resulting state is checked in the store. Then scheduled
// runs really run, in the group's session and in a fresh isolated one.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isAgentTurn, isToolResult, lastUserText, type ModelRequest } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();
const tool = (name: string, input: unknown) => ({ toolUse: { name: `mcp__pincer__${name}`, input } });

describe('scheduled tasks and administration from the main chat', { skip }, () => {
  let h: Harness;
  const requests: ModelRequest[] = [];

  before(async () => {
    h = await startHarness({
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        requests.push(req);
        const text = lastUserText(req);
        if (isToolResult(req)) {
          const chat = /"id": "(tg:[^"]+)",\s*"channel": "tg",\s*"name": "Family Chat"/.exec(text);
          if (chat) return tool('register_group', { chat_id: chat[1] });
          return { text: `Tool said: ${text.slice(0, 3000)}` };
        }
        if (text.includes('[Scheduled run of task'))
          return { text: text.includes('isolated check') ? 'isolated report done' : 'pipeline report: 3 deals' };
        if (text.includes('every weekday morning at 9am')) {
          return tool('schedule_task', {
            prompt: 'Send an overview of the sales pipeline',
            schedule_type: 'cron',
            schedule_value: '0 9 * * 1-5',
          });
        }
        if (text.includes('list all scheduled tasks across groups')) return tool('list_tasks', {});
        if (text.includes('pause the Monday briefing task')) {
          const briefing = h.pincer.store.tasks.list().find((t) => t.prompt.startsWith('Monday briefing'));
          return tool('pause_task', { task_id: briefing?.id ?? 0 });
        }
        if (text.includes('join the Family Chat group')) return tool('list_chats', {});
        return { text: 'ok' };
      },
    });
  });
  after(async () => h?.stop());

  test('"send an overview of the sales pipeline every weekday morning at 9am" schedules a cron task in the local time zone', async () => {
    const reply = await h.reply(
      'local:main',
      await h.send('local:main', '@Andy send an overview of the sales pipeline every weekday morning at 9am'),
    );
    assert.match(reply.text, /every weekday at 09:00 \(Europe\/Berlin\)/);
    const task = h.pincer.store.tasks.list('local:main').find((t) => t.prompt.includes('sales pipeline'));
    assert.ok(task);
    assert.equal(task.scheduleValue, '0 9 * * 1-5');
    assert.equal(task.timezone, 'Europe/Berlin');
    assert.equal(task.createdBy, 'main');
    const local = new Intl.DateTimeFormat('en-GB', {
      timeZone: 'Europe/Berlin',
      weekday: 'short',
      hour: '2-digit',
      minute: '2-digit',
    }).format(task.nextRunAt ?? 0);
    assert.match(local, /^(Mon|Tue|Wed|Thu|Fri) 09:00$/);
  });

  test('"list all scheduled tasks across groups" lists every group\'s tasks', async () => {
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'local:team', folder: 'team' });
    h.pincer.control.scheduleTask(
      { kind: 'owner' },
      {
        prompt: 'Monday briefing: the week ahead',
        scheduleType: 'cron',
        scheduleValue: '0 8 * * 1',
        contextMode: 'group',
        targetGroup: 'team',
      },
    );
    const reply = await h.reply('local:main', await h.send('local:main', '@Andy list all scheduled tasks across groups'));
    assert.match(reply.text, /sales pipeline/);
    assert.match(reply.text, /Monday briefing/);
    assert.match(reply.text, /"group": "team"/);
  });

  test('"pause the Monday briefing task" pauses it', async () => {
    await h.reply('local:main', await h.send('local:main', '@Andy pause the Monday briefing task'));
    const briefing = h.pincer.store.tasks.list().find((t) => t.prompt.startsWith('Monday briefing'));
    assert.equal(briefing?.status, 'paused');
    assert.equal(briefing?.nextRunAt, null);
  });

  test('"join the Family Chat group" joins the seen chat with its own folder and memory', async () => {
    h.pincer.store.chats.seen({ id: 'tg:-100777', channel: 'tg', name: 'Family Chat', isGroup: true }, Date.now());
    const reply = await h.reply('local:main', await h.send('local:main', '@Andy join the Family Chat group'));
    assert.match(reply.text, /family-chat/);
    const group = h.pincer.store.groups.get('tg:-100777');
    assert.equal(group?.folder, 'family-chat');
    assert.equal(group?.isMain, false);
    assert.ok(existsSync(join(h.home, 'groups', 'family-chat', 'CLAUDE.md')));
  });

  test('a group-context task runs on time in the group session, posts its answer and logs the run', async () => {
    const due = Date.now() + 1500;
    const task = h.pincer.control.scheduleTask(
      { kind: 'owner' },
      {
        prompt: 'report the pipeline',
        scheduleType: 'once',
        scheduleValue: new Date(due).toISOString(),
        contextMode: 'group',
        targetGroup: 'main',
      },
    );
    const last = (await h.messages('local:main')).at(-1)?.id ?? '0';
    const reply = await waitForReply(h, last, /pipeline report/);
    assert.ok(Date.now() >= due);
    const run = h.pincer.store.taskRuns.forTask(task.id, 5)[0];
    assert.equal(run?.status, 'ok');
    assert.equal(run?.result, reply.text);
    assert.ok(run && run.startedAt - due < 1000, `started ${run?.startedAt ? run.startedAt - due : '?'} ms after due`);
    assert.ok(run?.costUsd !== null, 'the run records its cost');
    assert.equal(h.pincer.store.tasks.get(task.id)?.status, 'completed');
    const prompt = requests.map(lastUserText).find((t) => t.includes(`task #${task.id}`)) ?? '';
    assert.match(prompt, /Scheduled run of task #\d+ \(once on .*\), due .* Europe\/Berlin/);
    assert.ok(
      requests.some((r) => JSON.stringify(r.body.messages).includes('sales pipeline') && lastUserText(r).includes(`task #${task.id}`)),
      'group context carries the conversation',
    );
  });

  test('an isolated task runs in a fresh session without the conversation', async () => {
    const due = Date.now() + 1500;
    const task = h.pincer.control.scheduleTask(
      { kind: 'owner' },
      {
        prompt: 'isolated check',
        scheduleType: 'once',
        scheduleValue: new Date(due).toISOString(),
        contextMode: 'isolated',
        targetGroup: 'main',
      },
    );
    const last = (await h.messages('local:main')).at(-1)?.id ?? '0';
    await waitForReply(h, last, /isolated report done/);
    const run = h.pincer.store.taskRuns.forTask(task.id, 5)[0];
    assert.equal(run?.status, 'ok');
    assert.equal(run?.messageSeq, null);
    const req = requests.find((r) => lastUserText(r).includes('isolated check'));
    const turns = (req?.body.messages ?? []).filter((m) => m.role === 'user' || m.role === 'assistant');
    assert.equal(turns.length, 1, 'a fresh session: the prompt is the only conversation turn');
    assert.doesNotMatch(JSON.stringify(req?.body.messages), /sales pipeline/);
  });
});

describe('a failing scheduled run', { skip }, () => {
  test('tells the group what failed and is logged as an error', async (t) => {
    const h = await startHarness({
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        return lastUserText(req).includes('doomed run') ? { status: 400, error: 'the model refused this run' } : { text: 'ok' };
      },
    });
    t.after(() => h.stop());
    const task = h.pincer.control.scheduleTask(
      { kind: 'owner' },
      {
        prompt: 'doomed run',
        scheduleType: 'once',
        scheduleValue: new Date(Date.now() + 1000).toISOString(),
        contextMode: 'isolated',
        targetGroup: 'main',
      },
    );
    const reply = await waitForReply(h, '0', /Scheduled task #\d+ failed/);
    assert.match(reply.text, /the model refused this run/);
    const run = h.pincer.store.taskRuns.forTask(task.id, 5)[0];
    assert.equal(run?.status, 'error');
    assert.match(run?.error ?? '', /refused/);
  });
});

/** The next assistant message after `after` whose text matches. */
async function waitForReply(h: Harness, after: string, pattern: RegExp) {
  let cursor = after;
  for (;;) {
    const reply = await h.reply('local:main', cursor, 20_000);
    if (pattern.test(reply.text)) return reply;
    cursor = reply.id;
  }
}

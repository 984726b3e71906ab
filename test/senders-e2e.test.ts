// A sub-agent's send_message with `sender`, end to end: real pincer, real Claude Code in bubblewrap, the scripted
// model calling send_message (offered to it up front) the way a team member does, and the message arriving under
// the sub-agent's own name on a fake Slack (username, chat:write.customize) and from a renamed pool bot on a fake
// Telegram (TELEGRAM_POOL_TOKENS), while the final answer comes from pincer's own bot.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { answeredTool, contentText, isAgentTurn, type ModelReply, type ModelRequest, promptText, useTool } from './helpers/fake-model.js';
import { type FakeSlack, messageEvent, startFakeSlack } from './helpers/fake-slack.js';
import { type ExtraBot, type FakeTelegram, startFakeTelegram } from './helpers/fake-telegram.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();
const GROUP = -100_777;
const POOL_TOKEN = '5550009:POOL-e2e_secret-token-cccccccccccc';

/** The lead posts a team member's progress under its name, then answers itself. */
/**
 * What the agent can read in its sandbox that would give a pool token away: its environment (and PID 1's), and
 * every file it can reach under its folders. The pattern is split so that it does not find itself in the transcript.
 */
const SEARCH = `env; tr '\\0' '\\n' < /proc/1/environ; grep -rl "POOL-e2e_"'secret' /workspace /home /tmp 2>/dev/null; echo SEARCHED`;

function script(req: ModelRequest): ModelReply {
  if (!isAgentTurn(req)) return { text: 'side' };
  if (answeredTool(req) === 'mcp__pincer__send_message') return { text: 'The team is on it.' };
  if (answeredTool(req) === 'Bash') return { text: 'Looked.' };
  if (promptText(req).includes('look for tokens')) return useTool(req, 'Bash', { command: SEARCH });
  if (promptText(req).includes('ask the team')) {
    return useTool(req, 'mcp__pincer__send_message', { text: 'Reading up on **otters**', sender: 'Researcher' });
  }
  return { text: 'ok' };
}

describe('a sub-agent posts as itself through pincer', { skip }, () => {
  let slack: FakeSlack;
  let telegram: FakeTelegram;
  let pool: ExtraBot;
  let h: Harness;

  before(async () => {
    slack = await startFakeSlack();
    slack.users.set('UOWNER', { name: 'owner', realName: 'Olivia Owner' });
    telegram = await startFakeTelegram();
    pool = telegram.addBot(POOL_TOKEN, { id: 5550009, username: 'pincer_pool_e2e_bot', first_name: 'Spare' }, [GROUP]);
    h = await startHarness({
      env: {
        SLACK_BOT_TOKEN: slack.botToken,
        SLACK_APP_TOKEN: slack.appToken,
        SLACK_API_URL: slack.apiUrl,
        TELEGRAM_BOT_TOKEN: telegram.token,
        TELEGRAM_API_ROOT: telegram.url,
        TELEGRAM_POOL_TOKENS: POOL_TOKEN,
        PINCER_MAIN_CHAT: 'slack:DOWNER',
      },
      script,
    });
    await slack.waitFor(() => slack.isConnected(), 10_000, 'pincer to connect to Slack');
  });
  after(async () => {
    await h?.stop();
    await slack?.close();
    await telegram?.close();
  });

  test("on Slack: the sub-agent's message under its name and face, the answer under the app's", async () => {
    slack.sendEvent(messageEvent(slack, { channel: 'DOWNER', user: 'UOWNER', text: 'please ask the team' }));
    const answer = await slack.waitFor(
      () => slack.posted.find((p) => p.channel === 'DOWNER' && p.text === 'The team is on it.'),
      60_000,
      'the answer',
    );
    const progress = slack.posted.filter((p) => p.channel === 'DOWNER' && p.text.includes('otters'));
    assert.equal(progress.length, 1);
    assert.equal(progress[0]?.username, 'Researcher');
    assert.equal(progress[0]?.text, 'Reading up on *otters*', 'no prefix; formatted as mrkdwn');
    assert.ok(progress[0]?.iconEmoji);
    assert.equal(answer.username, undefined, "the final answer is pincer's own");
    const history = h.pincer.store.messages.latest('slack:DOWNER', 5).map((m) => m.text);
    assert.ok(history.includes('Researcher: Reading up on **otters**'), 'the history says who spoke');
  });

  test('on Telegram: the sub-agent speaks from a pool bot renamed to its role; the answer from the main bot', async () => {
    telegram.pushMessage({ chat: { id: GROUP, type: 'supergroup', title: 'Team' }, text: 'hello all' });
    const deadline = Date.now() + 10_000;
    while (!h.pincer.store.chats.get(`tg:${GROUP}`)) {
      if (Date.now() > deadline) assert.fail('the group was not seen');
      await new Promise((r) => setTimeout(r, 50));
    }
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: `tg:${GROUP}`, folder: 'tgteam' });
    telegram.pushMessage({ chat: { id: GROUP, type: 'supergroup', title: 'Team' }, text: '@Andy ask the team' });
    await telegram.waitFor(() => telegram.sent.find((m) => m.chatId === GROUP && m.text === 'The team is on it.'), 60_000, 'the answer');
    const fromGroup = telegram.sent.filter((m) => m.chatId === GROUP).map((m) => [m.from, m.text]);
    assert.deepEqual(fromGroup, [
      [pool.bot.username, 'Reading up on otters'],
      [telegram.bot.username, 'The team is on it.'],
    ]);
    assert.deepEqual(pool.renames, ['Researcher']);
    assert.equal(telegram.calls.filter((c) => c.by === pool.bot.username && c.method === 'getUpdates').length, 0);
  });

  test("a pool bot's token is nowhere the agent can look: not in its environment, nor in any file it can read", async () => {
    slack.sendEvent(messageEvent(slack, { channel: 'DOWNER', user: 'UOWNER', text: 'look for tokens' }));
    await slack.waitFor(() => slack.posted.find((p) => p.channel === 'DOWNER' && p.text === 'Looked.'), 60_000, 'the answer');
    const answered = h.fake.requests.find((r) => answeredTool(r) === 'Bash');
    const output = contentText(answered?.body.messages?.at(-1)?.content);
    assert.match(output, /SEARCHED/, 'the search ran');
    assert.match(output, /PATH=/, 'the environment was listed');
    assert.ok(!output.includes('secret-token'), `the token was found:\n${output}`);
  });
});

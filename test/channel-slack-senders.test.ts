// Sub-agents on Slack: send_message with `sender` through the real outbox and the Slack adapter (real Bolt and Web
// API client) into a fake Slack written from chat.postMessage's docs (authorship: `username`, `icon_emoji`,
// `icon_url` need the chat:write.customize scope; the token's scopes come back in `x-oauth-scopes`).
import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { SlackChannel } from '../src/channels/slack.js';
import { type FakeSlack, startFakeSlack } from './helpers/fake-slack.js';
import { capturedLog, quietSink, type SenderOutbox, senderOutbox, tempStore } from './helpers/sender-outbox.js';

const CHAT = 'slack:C1';
const FULL_SCOPES = ['chat:write', 'chat:write.customize', 'channels:history', 'users:read'];

describe('Slack: sub-agents post as themselves', () => {
  let fake: FakeSlack;
  let channel: SlackChannel;
  let outbox: SenderOutbox;
  let logs: string[];
  let removeStore: () => void;

  before(async () => {
    fake = await startFakeSlack();
  });
  after(async () => {
    await fake.close();
  });

  /** A fresh adapter (it reads the scopes once, at start) over the same fake Slack. */
  async function start(extra: { senderAvatarUrl?: string } = {}): Promise<void> {
    const captured = capturedLog();
    logs = captured.lines;
    channel = new SlackChannel({
      botToken: fake.botToken,
      appToken: fake.appToken,
      apiUrl: fake.apiUrl,
      assistantName: 'Andy',
      log: captured.log,
      ...extra,
    });
    await channel.start(quietSink);
    const temp = tempStore();
    removeStore = temp.remove;
    outbox = senderOutbox(temp.store, channel, captured.log);
  }

  /** Warnings and errors that name the scope. */
  const scopeWarnings = () =>
    logs.filter((l) => (JSON.parse(l) as { level: number }).level >= 40 && l.includes('chat:write.customize')).length;

  beforeEach(() => {
    fake.scopes = [...FULL_SCOPES];
    fake.sendsScopes = true;
    fake.withoutCustomize = 'ignored';
  });
  afterEach(async () => {
    await outbox.close();
    await channel.stop();
    removeStore();
  });

  test("with chat:write.customize the message shows the sub-agent's name and an emoji of its own, formatted as Slack's", async () => {
    await start();
    const before = fake.posted.length;
    const item = await outbox.deliver(CHAT, 'Otters **hold hands** while they sleep', 'Researcher');
    const again = await outbox.deliver(CHAT, 'and float on their backs', 'Researcher');
    const other = await outbox.deliver(CHAT, 'drafting now', 'Writer');
    const [first, second, third] = fake.posted.slice(before);
    assert.equal(item.status, 'sent');
    assert.equal(first?.username, 'Researcher');
    assert.equal(first?.text, 'Otters *hold hands* while they sleep', 'no prefix; Markdown as mrkdwn');
    assert.match(first?.iconEmoji ?? '', /^:[a-z_]+:$/);
    assert.equal(second?.iconEmoji, first?.iconEmoji, 'a role keeps its face');
    assert.equal(third?.username, 'Writer');
    assert.equal(item.platformId, first?.ts, 'the posted message ts is what the outbox recorded');
    assert.equal(again.platformId, second?.ts);
    assert.equal(other.status, 'sent');
    assert.equal(
      outbox.store.messages.latest(CHAT, 3)[0]?.text,
      'Researcher: Otters **hold hands** while they sleep',
      'history says who spoke',
    );
    assert.equal(scopeWarnings(), 0, 'nothing to warn about');
  });

  test('a configured picture address carries the name, URL-encoded', async () => {
    await start({ senderAvatarUrl: 'https://avatars.example/{name}.png' });
    const before = fake.posted.length;
    await outbox.deliver(CHAT, 'hello', 'Fact Checker');
    const [posted] = fake.posted.slice(before);
    assert.equal(posted?.iconUrl, 'https://avatars.example/Fact%20Checker.png');
    assert.equal(posted?.username, 'Fact Checker');
  });

  test('without the scope (Slack says so in x-oauth-scopes) the name goes in front, and the owner is told once', async () => {
    fake.scopes = ['chat:write', 'channels:history'];
    await start();
    const before = fake.posted.length;
    const calls = fake.calls.length;
    const item = await outbox.deliver(CHAT, 'reading up on *otters*', 'Researcher');
    await outbox.deliver(CHAT, 'still reading', 'Researcher');
    const posted = fake.posted.slice(before);
    assert.equal(item.status, 'sent');
    assert.deepEqual(
      posted.map((p) => [p.text, p.username]),
      [
        ['Researcher: reading up on _otters_', undefined],
        ['Researcher: still reading', undefined],
      ],
    );
    const tried = fake.calls.slice(calls).filter((c) => c.method === 'chat.postMessage');
    assert.ok(
      tried.every((c) => c.params.username === undefined),
      'never asked for a name it may not use',
    );
    assert.equal(scopeWarnings(), 1, 'one warning');
  });

  test('a missing_scope refusal is not lost: the same part goes out once with the name in front, and later ones directly', async () => {
    fake.scopes = ['chat:write'];
    fake.sendsScopes = false;
    fake.withoutCustomize = 'missing_scope';
    await start();
    const before = fake.posted.length;
    const calls = fake.calls.length;
    const first = await outbox.deliver(CHAT, 'first finding', 'Researcher');
    const second = await outbox.deliver(CHAT, 'second finding', 'Researcher');
    assert.equal(first.status, 'sent');
    assert.equal(first.attempts, 1, 'delivered on its first attempt');
    assert.equal(second.status, 'sent');
    assert.deepEqual(
      fake.posted.slice(before).map((p) => p.text),
      ['Researcher: first finding', 'Researcher: second finding'],
      'each posted once',
    );
    const tried = fake.calls.slice(calls).filter((c) => c.method === 'chat.postMessage');
    assert.deepEqual(
      tried.map((c) => c.params.username ?? null),
      ['Researcher', null, null],
      'asked for the name once; refused, never again',
    );
    assert.equal(scopeWarnings(), 1);
  });

  test('where Slack says nothing of scopes and ignores the name, the next messages carry it in front', async () => {
    fake.scopes = ['chat:write'];
    fake.sendsScopes = false;
    await start();
    const before = fake.posted.length;
    await outbox.deliver(CHAT, 'first finding', 'Researcher');
    await outbox.deliver(CHAT, 'second finding', 'Researcher');
    assert.deepEqual(
      fake.posted.slice(before).map((p) => [p.text, p.username]),
      [
        ['first finding', undefined],
        ['Researcher: second finding', undefined],
      ],
      'the first one shows as the app (Slack took it without the name); it is posted once all the same',
    );
    assert.equal(scopeWarnings(), 1);
  });

  test('a long sub-agent message in parts: each part within the limit with the name in front', async () => {
    fake.scopes = ['chat:write'];
    await start();
    const before = fake.posted.length;
    const paragraph = 'Otters are semi-aquatic mammals; some species hold hands while sleeping. ';
    const item = await outbox.deliver(CHAT, paragraph.repeat(150), 'Researcher');
    const parts = fake.posted.slice(before);
    assert.equal(item.status, 'sent');
    assert.ok(parts.length >= 3, `${parts.length} parts`);
    assert.ok(parts.every((p) => p.text.startsWith('Researcher: ') && p.text.length <= 4_000));
    assert.equal(item.platformId, parts.at(-1)?.ts);
  });
});

// Who may talk to the assistant: a group's sender allowlist decides who engages the agent; everyone else is
// kept as context. Chats nobody joined are never answered.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createLogger } from '../src/log.js';
import { createIngest } from '../src/service/ingest.js';
import { type Harness, startHarness } from './helpers/harness.js';

describe('sender allowlists and unjoined chats', () => {
  let h: Harness;
  before(async () => {
    h = await startHarness();
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'local:family', folder: 'family', respondToAll: true });
    h.pincer.control.updateGroup({ kind: 'owner' }, 'family', { senderAllowlist: ['alice'] });
  });
  after(async () => h?.stop());

  const post = (chat: string, text: string, sender: string) => h.request('POST', '/api/v1/messages', { chat, text, sender });

  test('a sender not on the allowlist is stored as context and never engages the agent', async () => {
    const res = await post('local:family', 'hi, do my homework', 'mallory');
    assert.equal(res.status, 202);
    assert.equal(res.body.engaged, false);
    const trace = h.pincer.store.events.trace(Number(res.body.id));
    assert.ok(trace.some((e) => e.stage === 'ignored' && /mallory is not on the group's sender allowlist/.test(e.detail ?? '')));
  });

  test('a sender on the allowlist engages it', async () => {
    const res = await post('local:family', 'what is for dinner?', 'alice');
    assert.equal(res.body.engaged, true);
  });

  test('removing the allowlist lets everyone engage again', async () => {
    h.pincer.control.updateGroup({ kind: 'owner' }, 'family', { senderAllowlist: null });
    const res = await post('local:family', 'and now?', 'mallory');
    assert.equal(res.body.engaged, true);
  });

  test('a chat nobody joined is stored but never answered', async () => {
    const woken: string[] = [];
    const ingest = createIngest({
      store: h.pincer.store,
      layout: h.pincer.layout,
      assistantName: 'Andy',
      maxMediaBytes: 1024,
      log: createLogger('silent'),
      onEngaged: (chatId) => woken.push(chatId),
    });
    const result = await ingest.ingest({
      chatId: 'tg:-1',
      channel: 'tg',
      platformId: '1',
      senderId: 'tg:42',
      senderName: 'Stranger',
      text: '@Andy hello?',
      sentAt: Date.now(),
      chatName: 'Strangers',
      isGroup: true,
    });
    assert.equal(result.engaged, false);
    assert.deepEqual(woken, []);
    assert.equal(h.pincer.store.groups.get('tg:-1'), undefined);
    const trace = h.pincer.store.events.trace(result.seq);
    assert.ok(trace.some((e) => e.stage === 'ignored' && /not a registered group/.test(e.detail ?? '')));
    assert.equal(h.pincer.store.chats.get('tg:-1')?.name, 'Strangers', 'seen, so the main group can list and join it');
  });
});

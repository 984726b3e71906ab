// Isolation through the whole app: the main group changes another group's egress policy and extra mounts
// with its tools; the other group's agent (real Claude Code in a real sandbox) lives under them, and
// cannot use the tools itself.
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { registerGroup } from '../src/service/groups.js';
import { isAgentTurn, isToolResult, lastUserText, offers } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const skip = await sandboxUnavailable();

describe('the main group governs where other groups may connect and what they may mount', { skip }, () => {
  let h: Harness;
  const outside = mkdtempSync(join(tmpdir(), 'pincer-mounts-'));
  const notes = join(outside, 'vault', 'notes');
  const sshDir = join(outside, 'vault', '.ssh');
  /** Whether the other group's request offered the admin tool its message asks for. */
  let offeredToTeam: boolean | undefined;

  before(async () => {
    mkdirSync(notes, { recursive: true });
    mkdirSync(sshDir, { recursive: true });
    writeFileSync(join(notes, 'hello.md'), 'NOTES-CONTENT\n');
    const allowlist = join(outside, 'mount-allowlist.json');
    writeFileSync(allowlist, JSON.stringify({ allowedRoots: [{ path: join(outside, 'vault'), allowReadWrite: true }] }));
    const tool = (name: string, input: unknown) => ({ toolUse: { name: `mcp__pincer__${name}`, input } });
    h = await startHarness({
      env: { PINCER_MOUNT_ALLOWLIST: allowlist },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side request' };
        const text = lastUserText(req);
        if (isToolResult(req)) return { text: `Tool said: ${text.slice(0, 2000)}` };
        if (text.includes('lock down team'))
          return tool('set_egress_policy', { folder: 'team', mode: 'allowlist', domains: ['example.org'] });
        if (text.includes('mount the notes')) return tool('set_extra_mounts', { folder: 'team', mounts: [{ hostPath: notes }] });
        if (text.includes('mount the keys')) return tool('set_extra_mounts', { folder: 'team', mounts: [{ hostPath: sshDir }] });
        if (text.includes('open yourself up')) {
          offeredToTeam = offers(req, 'mcp__pincer__set_egress_policy');
          // Not offered to this group: a model that names it anyway must reach nothing.
          return { toolUse: { name: 'mcp__pincer__set_egress_policy', input: { folder: 'team', mode: 'open' }, mistake: true } };
        }
        if (text.includes('go online')) {
          const command = [
            'curl -s --max-time 5 http://blocked.test/ || true',
            'curl -s --max-time 5 https://example.org/ >/dev/null; echo "https-exit=$?"',
            'cat /workspace/extra/notes/hello.md',
            'touch /workspace/extra/notes/new 2>/dev/null && echo EXTRA-WRITABLE || echo EXTRA-READONLY',
          ].join('; ');
          return { toolUse: { name: 'Bash', input: { command, description: 'try the network and the notes' } } };
        }
        return { text: 'ok' };
      },
    });
  });
  after(async () => h?.stop());

  before(() => {
    // The team's chat is joined before its first message, so that its first session starts under the new rules.
    const group = { chatId: 'local:team', folder: 'team', trigger: '@Andy', respondToAll: true, isMain: false };
    registerGroup(h.pincer.store, h.pincer.layout, group, Date.now());
  });

  test('the main group sets an allowlist policy for another group', async () => {
    const id = await h.send('local:main', 'lock down team');
    const reply = await h.reply('local:main', id);
    assert.match(reply.text, /allowlist: example\.org/);
    assert.deepEqual(h.pincer.store.groups.get('local:team')?.egressPolicy, { mode: 'allowlist', domains: ['example.org'] });
  });

  test('extra mounts are accepted only from the allowlist, and a credential folder is refused', async () => {
    const refused = await h.reply('local:main', await h.send('local:main', 'mount the keys'));
    assert.match(refused.text, /\.ssh/);
    assert.deepEqual(h.pincer.store.groups.get('local:team')?.extraMounts, []);
    if (process.getuid?.() === 0) {
      // The group's own unprivileged user could not even pass through the private temp folder: said, not mounted.
      const unreachable = await h.reply('local:main', await h.send('local:main', 'mount the notes'));
      assert.match(unreachable.text, /cannot pass through .*chmod o\+x/);
      assert.deepEqual(h.pincer.store.groups.get('local:team')?.extraMounts, []);
    }
    chmodSync(outside, 0o755);
    const accepted = await h.reply('local:main', await h.send('local:main', 'mount the notes'));
    assert.match(accepted.text, /read-only/, 'a non-main group gets the mount read-only');
    assert.equal(h.pincer.store.groups.get('local:team')?.extraMounts.length, 1);
  });

  test("the other group's agent lives under the policy and sees its notes read-only", async () => {
    const id = await h.send('local:team', 'go online');
    const reply = await h.reply('local:team', id);
    assert.match(reply.text, /pincer egress: refused blocked\.test/);
    assert.match(reply.text, /NOTES-CONTENT/);
    assert.match(reply.text, /EXTRA-READONLY/);
    const log = h.pincer.store.egress.recent('local:team', 10);
    const blocked = log.find((e) => e.host === 'blocked.test');
    assert.ok(blocked && !blocked.allowed && /allowlist/.test(blocked.reason ?? ''), JSON.stringify(log));
  });

  test('a group other than main does not have the admin tools', async () => {
    const id = await h.send('local:team', 'open yourself up');
    const reply = await h.reply('local:team', id);
    assert.equal(offeredToTeam, false, "the group's requests do not offer the admin tool");
    assert.match(reply.text, /No such tool available: mcp__pincer__set_egress_policy/, 'the call was made and had no tool to reach');
    assert.equal(h.pincer.store.groups.get('local:team')?.egressPolicy.mode, 'allowlist');
  });
});

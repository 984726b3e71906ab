// The agent's headless browser: a new group's folder gets the browser skill, Claude Code offers it, and the
// command it teaches loads a page in the host's Chromium inside the sandbox, through the egress proxy.
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BROWSER_SKILL, BROWSER_SKILL_PATH } from '../src/service/browser-skill.js';
import { isAgentTurn, isToolResult, lastUserText, type ModelRequest } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';
import { SITE_BODY, startTlsSite, type TlsSite } from './helpers/tls-site.js';

const CHROMIUM = '/usr/lib/chromium/chromium';
const skip = existsSync(CHROMIUM) ? await sandboxUnavailable() : `no Chromium at ${CHROMIUM} (apt-get install chromium)`;

/** The skill's own command block, with the page to load: the agent runs what the skill says. */
function skillCommand(url: string): string {
  const setup = /CHROMIUM="[^"]+"/s.exec(BROWSER_SKILL)?.[0];
  assert.ok(setup, 'the skill defines the Chromium command');
  // The test site's CA is not Chromium's; only for this test, its certificate is not checked.
  return `${setup.replace(`${CHROMIUM} `, `${CHROMIUM} --ignore-certificate-errors `).replace(/\\\n\s*/g, '')}\n$CHROMIUM --dump-dom ${url} 2>/dev/null`;
}

describe('the browser skill', { skip }, () => {
  let h: Harness;
  let site: TlsSite;
  const requests: ModelRequest[] = [];

  before(async () => {
    site = await startTlsSite();
    const url = `https://site.test:${site.port}/`;
    h = await startHarness({
      egressTestSeam: {
        resolve: async (host) => (host === 'site.test' ? ['127.0.0.1'] : []),
        allowAddress: (address) => address === '127.0.0.1',
      },
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side' };
        requests.push(req);
        if (isToolResult(req)) return { text: `DOM: ${lastUserText(req).slice(0, 2000)}` };
        return { toolUse: { name: 'Bash', input: { command: skillCommand(url), description: 'load the page in Chromium' } } };
      },
    });
  });
  after(async () => {
    await h?.stop();
    await site?.close();
  });

  test("a new group's folder has the skill, Claude Code offers it, and its command loads a page", async () => {
    const id = await h.send('local:main', 'open the page in a browser');
    const reply = await h.reply('local:main', id, 60_000);
    const skillFile = join(h.home, 'groups', 'main', BROWSER_SKILL_PATH);
    assert.equal(readFileSync(skillFile, 'utf8'), BROWSER_SKILL);
    assert.match(
      JSON.stringify(requests[0]?.body ?? {}),
      /Load a web page in a real headless Chromium/,
      'the skill is offered to the agent',
    );
    assert.match(reply.text, new RegExp(`DOM: .*<pre[^>]*>${SITE_BODY.trim()}`, 's'));
    assert.ok(
      h.pincer.store.egress.recent('local:main', 10).some((e) => e.host === 'site.test' && e.allowed),
      'through the egress proxy',
    );
  });
});

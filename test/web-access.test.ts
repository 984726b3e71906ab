// WebFetch from inside the sandbox goes through the host's egress proxy under the group's policy: a local
// HTTPS test site (its name resolved to loopback for this test only, its CA trusted through
// PINCER_EXTRA_CA_CERTS) is fetched under `open`, and refused under an allowlist that does not name it.
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { answeredTool, isAgentTurn, isToolResult, lastUserText, type ModelRequest, promptText, useTool } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';
import { SITE_BODY, startTlsSite, type TlsSite } from './helpers/tls-site.js';

const skip = await sandboxUnavailable();

/** Everything a request carries, to find the fetched page in WebFetch's own summarizing request. */
const allText = (req: ModelRequest) => JSON.stringify(req.body);

describe('WebFetch through the egress proxy', { skip }, () => {
  let h: Harness;
  let site: TlsSite;
  let caDir: string;
  let url: string;
  let again: string;

  before(async () => {
    site = await startTlsSite();
    url = `https://site.test:${site.port}/`;
    again = `https://again.site.test:${site.port}/`;
    // The sandbox's user must be able to read the CA file it is given.
    caDir = mkdtempSync(join(tmpdir(), 'pincer-ca-'));
    chmodSync(caDir, 0o755);
    const ca = join(caDir, 'ca.pem');
    copyFileSync(site.caPath, ca);
    chmodSync(ca, 0o644);
    h = await startHarness({
      env: { PINCER_EXTRA_CA_CERTS: ca },
      egressTestSeam: {
        resolve: async (host) => (host.endsWith('site.test') ? ['127.0.0.1'] : []),
        allowAddress: (address) => address === '127.0.0.1',
      },
      script: (req) => {
        // WebFetch hands the page to the model with its question: answer from what it was given.
        if (!isAgentTurn(req)) return { text: allText(req).includes(SITE_BODY.trim()) ? `PAGE SAYS: ${SITE_BODY.trim()}` : 'side' };
        if (isToolResult(req) && answeredTool(req) === 'WebFetch') return { text: `fetched: ${lastUserText(req).slice(0, 400)}` };
        // Another name for the second fetch: WebFetch keeps what it fetched for a while.
        const target = promptText(req).includes('read the site again')
          ? again
          : promptText(req).includes('read the site')
            ? url
            : undefined;
        if (target) return useTool(req, 'WebFetch', { url: target, prompt: 'What does the page say?' });
        return { text: 'ok' };
      },
    });
  });

  after(async () => {
    await h?.stop();
    await site?.close();
    rmSync(caDir, { recursive: true, force: true });
  });

  const egress = () => h.pincer.store.egress.recent('local:main', 20);

  test('under the open policy the agent fetches the page, and the connection is on record', async () => {
    const before = site.connections();
    const id = await h.send('local:main', 'please read the site');
    const reply = await h.reply('local:main', id, 60_000);
    assert.match(reply.text, /fetched: .*PAGE SAYS: hello from the pincer test site/s);
    assert.ok(site.connections() > before, 'the site was reached');
    const record = egress().find((e) => e.host === 'site.test');
    assert.equal(record?.allowed, true, `an allowed site.test connection in ${JSON.stringify(egress())}`);
  });

  test('under an allowlist without it the fetch is refused, on record, and the agent is told', async () => {
    h.pincer.control.setEgressPolicy({ kind: 'owner' }, 'main', { mode: 'allowlist', domains: ['example.org'] });
    const before = site.connections();
    const id = await h.send('local:main', 'read the site again');
    const reply = await h.reply('local:main', id, 60_000);
    assert.doesNotMatch(reply.text, /PAGE SAYS/);
    assert.match(reply.text, /fetched: .*(refused|403|error|fail)/is, 'the agent was told the fetch failed');
    assert.equal(site.connections(), before, 'the site was not reached');
    const refused = egress().find((e) => e.host === 'again.site.test' && !e.allowed);
    assert.match(refused?.reason ?? '', /allowlist/, `a refused again.site.test connection in ${JSON.stringify(egress())}`);
  });
});

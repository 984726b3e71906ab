// The web page in real headless Chromium, against a real pincer whose agent runs in real bubblewrap with the
// scripted fake model: log in, chat (typing and tool progress while it works, markdown rendered safely), pause
// a task, open a trace; a page on another origin cannot drive the assistant. Screenshots go to test-artifacts/.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, type BrowserContext, chromium, type Page } from 'playwright-core';
import { isAgentTurn, isToolResult, lastUserText } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const CHROMIUM = process.env.PINCER_CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = join(import.meta.dirname, '..', 'test-artifacts');
const TOKEN = 'test-token-0123456789';

const skip = existsSync(CHROMIUM)
  ? await sandboxUnavailable()
  : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set PINCER_CHROMIUM)`;

/** What the agent answers: markdown with hostile bits that must render as text. */
const REPLY = [
  '**Hello** from the sandbox, with `code` and a [safe link](https://example.com/docs).',
  '',
  '<img src=x onerror="document.title=\'pwned\'"> <script>document.title="pwned"</script>',
  '',
  '[bad link](javascript:document.title="pwned")',
  '',
  '- one',
  '- two',
].join('\n');

/** A long reply, written in pieces, with a note to itself the reader must never see (cut mid-tag by the pieces). */
const STREAMED_LINES = Array.from({ length: 60 }, (_, i) => `Line ${i + 1} of the long answer, written as it is thought.`);
const STREAMED_RAW = [
  ...STREAMED_LINES.slice(0, 20),
  '<internal>SECRET-PLAN: do not show this</internal>',
  ...STREAMED_LINES.slice(20),
].join('\n\n');

/** A reply with a fenced block (its language named) and inline code whose spaces matter. */
const CODE_BLOCK = 'const  greeting = "hi";\nconsole.log(greeting);';
const CODE_REPLY = ['Run `ls  -la` first, then:', '', '```ts title=x', CODE_BLOCK, '```', '', '```', 'plain block', '```'].join('\n');

describe('the web page in Chromium', { skip }, () => {
  let h: Harness;
  let browser: Browser;
  let context: BrowserContext;
  let page: Page;
  let foreign: Server;
  let foreignUrl: string;

  before(async () => {
    mkdirSync(ARTIFACTS, { recursive: true });
    h = await startHarness({
      script: (req) => {
        if (!isAgentTurn(req)) return { text: 'side' };
        const text = lastUserText(req);
        if (isToolResult(req)) return { text: REPLY, delayMs: 600 };
        if (text.includes('show me code')) return { text: CODE_REPLY };
        if (text.includes('write it out')) return { text: STREAMED_RAW, streamed: { pieceChars: 50, gapMs: 40 } };
        // A slow tool call first: the page must show the agent working and what it uses.
        if (text.includes('hello web'))
          return { toolUse: { name: 'Bash', input: { command: 'sleep 1.5; echo checking the sandbox' } }, delayMs: 500 };
        return { text: 'ok' };
      },
    });
    // Another origin on the same machine (same site: cookies for 127.0.0.1 go along), trying to use pincer.
    foreign = createServer((_req, res) => {
      res.setHeader('content-type', 'text/html');
      res.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    foreignUrl = `http://127.0.0.1:${(foreign.address() as AddressInfo).port}/`;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: [
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    page = await context.newPage();
    page.on('pageerror', (err) => {
      throw new Error(`page error: ${err.message}`);
    });
  });

  after(async () => {
    await browser?.close();
    await new Promise((resolve) => foreign?.close(resolve));
    await h?.stop();
  });

  test('log in with the token', async () => {
    await page.goto(h.base);
    assert.match(page.url(), /\/login$/);
    await page.fill('#token', 'wrong-token-wrong-token');
    await page.click('#login');
    await page.waitForSelector('#login-error:not(:empty)');
    assert.match((await page.textContent('#login-error')) ?? '', /wrong token/);
    await page.fill('#token', TOKEN);
    await page.click('#login');
    await page.waitForURL(`${h.base}/#/chat/**`);
    const cookies = await context.cookies(h.base);
    const session = cookies.find((c) => c.name === 'pincer_session');
    assert.ok(session, 'a session cookie');
    assert.equal(session.httpOnly, true);
    assert.equal(session.sameSite, 'Strict');
    // Script on the page cannot read it.
    assert.equal(await page.evaluate('document.cookie'), '');
    await page.waitForSelector('#live-state:text("live")');
  });

  test('send a message, see the agent working, then its reply rendered safely', async () => {
    await page.waitForSelector('a[data-chat="local:main"]');
    await page.fill('#text', 'hello web, what is **up**?');
    await page.click('#send');
    await page.waitForSelector('.msg[data-from="user"] >> text=hello web');
    assert.equal(await page.inputValue('#text'), '', 'the composer is cleared after sending');
    // While the agent works: the indicator, then the tool it is using.
    await page.waitForSelector('#typing:not([hidden])', { timeout: 20_000 });
    await page.waitForSelector('#typing >> text=/using Bash: sleep 1.5; echo checking the sandbox/', { timeout: 20_000 });
    const reply = page.locator('.msg[data-from="assistant"]').last();
    await reply.waitFor({ timeout: 60_000 });
    assert.equal(await reply.locator('.body strong').first().textContent(), 'Hello');
    assert.equal(await reply.locator('.body code').first().textContent(), 'code');
    assert.equal(await reply.locator('.body li').count(), 2);
    const safe = reply.locator('.body a[href="https://example.com/docs"]');
    assert.equal(await safe.getAttribute('rel'), 'noopener noreferrer');
    // The hostile parts are text: no element, no handler, no javascript: link.
    assert.equal(await reply.locator('.body img, .body script').count(), 0);
    assert.equal(await reply.locator('.body a[href^="javascript"]').count(), 0);
    assert.match((await reply.locator('.body').textContent()) ?? '', /<script>document\.title="pwned"<\/script>/);
    assert.notEqual(await page.title(), 'pwned');
    await page.waitForSelector('#typing[hidden]', { state: 'attached', timeout: 20_000 });
    await page.screenshot({ path: join(ARTIFACTS, 'web-chat.png'), fullPage: true });
  });

  test('open the trace of that message: every stage, with its reason', async () => {
    await page.locator('.msg[data-from="user"] a.trace-link').last().click();
    await page.waitForSelector('#trace li.stage[data-stage="delivered"]', { timeout: 20_000 });
    const stages = await page.locator('#trace li.stage').evaluateAll((items) => items.map((i) => i.getAttribute('data-stage')));
    for (const stage of ['received', 'engaged', 'queued', 'prompted', 'model_request', 'tool', 'replied', 'delivered'])
      assert.ok(stages.includes(stage), `stage ${stage} in ${stages.join(', ')}`);
    assert.match(
      (await page.locator('#trace li.stage[data-stage="tool"]').first().textContent()) ?? '',
      /Bash: sleep 1.5; echo checking the sandbox/,
    );
  });

  test('pause a task and see it paused; the change arrives live', async () => {
    const made = await h.request('POST', '/api/v1/tasks', {
      group: 'main',
      prompt: 'send me the <b>weather</b> every weekday',
      scheduleType: 'cron',
      scheduleValue: '0 9 * * 1-5',
    });
    assert.equal(made.status, 201);
    const id = (made.body.task as { id: number }).id;
    await page.click('a[data-nav="tasks"]');
    const row = page.locator(`tr[data-task-id="${id}"]`);
    await row.waitFor();
    assert.equal((await row.locator('td.status').textContent())?.trim(), 'active');
    assert.match((await row.textContent()) ?? '', /every weekday at 09:00/);
    await row.locator('button[data-action="pause"]').click();
    await page.waitForSelector(`tr[data-task-id="${id}"] td.status:text-is("paused")`);
    assert.equal(h.pincer.store.tasks.get(id)?.status, 'paused');
    // A change made elsewhere (the CLI, the agent) shows without a reload.
    const resumed = await h.request('POST', `/api/v1/tasks/${id}/resume`);
    assert.equal(resumed.status, 200);
    await page.waitForSelector(`tr[data-task-id="${id}"] td.status:text-is("active")`);
    await page.screenshot({ path: join(ARTIFACTS, 'web-tasks.png'), fullPage: true });
  });

  test('groups: join a seen chat, change its trigger; activity shows usage', async () => {
    h.pincer.store.chats.seen({ id: 'telegram:-500', channel: 'telegram', name: 'Book <i>Club</i>', isGroup: true }, Date.now());
    await page.click('a[data-nav="groups"]');
    const seen = page.locator('#seen-chats li.seen-chat[data-chat-id="telegram:-500"]');
    await seen.waitFor();
    assert.match((await seen.textContent()) ?? '', /Book <i>Club<\/i>/);
    await seen.locator('button.join').click();
    await seen.locator('form.join-form input[name="folder"]').fill('books');
    await seen.locator('form.join-form button[type="submit"]').click();
    const row = page.locator('#groups tr[data-folder="books"]');
    await row.waitFor();
    assert.equal(h.pincer.store.groups.get('telegram:-500')?.folder, 'books');
    await row.locator('button.edit').click();
    const form = page.locator('form.trigger-form');
    await form.locator('input[name="trigger"]').fill('@Librarian');
    await form.locator('button[type="submit"]').click();
    await page.waitForSelector('#groups tr[data-folder="books"] >> text=@Librarian');
    assert.equal(h.pincer.store.groups.get('telegram:-500')?.trigger, '@Librarian');

    // main's agent answered and waits for the next message: ready, not running; books has none.
    assert.equal(await page.locator('#groups tr[data-folder="main"] .session').textContent(), 'ready');

    await page.click('a[data-nav="activity"]');
    // The turn above cost something by the fake's usage; the table has a row for main and a total.
    await page.waitForSelector('#usage tr.total');
    assert.match((await page.locator('#usage').textContent()) ?? '', /main/);
    const agents = page.locator('.card', { hasText: 'Agents' });
    // books' agent may be starting ahead (it was just joined) or restarting with its new trigger: main's is ready.
    assert.match((await agents.textContent()) ?? '', /\d working, [12] ready, 0 waiting.*ready: (books, )?main/);
    assert.doesNotMatch((await agents.textContent()) ?? '', /running/);
  });

  test("groups: a group's model and effort set from its edit form; activity shows cost per model, an unknown price as unknown", async () => {
    await page.click('a[data-nav="groups"]');
    const row = page.locator('#groups tr[data-folder="books"]');
    await row.locator('button.edit').click();
    const form = page.locator('form.model-form');
    await form.locator('input[name="model"]').fill('vendor/unpriced-model');
    await form.locator('select[name="effort"]').selectOption('low');
    await form.locator('button[type="submit"]').click();
    await page.waitForSelector('#groups tr[data-folder="books"] >> text=vendor/unpriced-model');
    assert.match((await row.locator('.model').textContent()) ?? '', /vendor\/unpriced-model on anthropic · effort low/);
    assert.deepEqual(h.pincer.store.groups.get('telegram:-500')?.models, {
      provider: null,
      model: 'vendor/unpriced-model',
      effort: 'low',
      fallbackModel: null,
    });

    // A call the proxy metered for that model: its price is not known.
    h.pincer.store.modelUsage.record({
      chatId: 'telegram:-500',
      provider: 'anthropic',
      model: 'vendor/unpriced-model',
      inputTokens: 4321,
      outputTokens: 321,
      cacheWriteTokens: 0,
      cacheReadTokens: 0,
      webSearches: 0,
      costUsd: null,
      budgetUsd: 0.1,
      at: Date.now(),
    });
    await page.click('a[data-nav="activity"]');
    const books = page.locator('#usage tr', { hasText: 'books' });
    await books.waitFor();
    const text = (await books.textContent()) ?? '';
    assert.match(text, /\bunknown\b/, 'a group whose every call has no known price costs "unknown", not $0');
    assert.doesNotMatch(text, /\$0\.0000/);
    assert.match((await page.locator('#usage tr.total').textContent()) ?? '', /\$\d+\.\d+ \+ unknown/, 'the total says it leaves some out');
    assert.match(text, /vendor\/unpriced-model \(anthropic\): unknown, 4,321 in \/ 321 out/);
    assert.match((await page.locator('.card', { hasText: 'Today' }).textContent()) ?? '', /\+ 1 call of unknown cost/);
    await page.screenshot({ path: join(ARTIFACTS, 'web-usage-by-model.png'), fullPage: true });
  });

  test('a scheduled run its budget holds says so: waiting, not running, and its one-off task is not completed', async () => {
    h.pincer.store.modelUsage.record({
      chatId: 'telegram:-500',
      provider: 'anthropic',
      model: 'claude-haiku-4-5',
      inputTokens: 100,
      outputTokens: 50,
      cacheWriteTokens: 0,
      cacheReadTokens: 0,
      webSearches: 0,
      costUsd: 3,
      budgetUsd: 3,
      at: Date.now(),
    });
    assert.equal((await h.request('PUT', '/api/v1/budgets', { group: 'books', dailyUsd: 1 })).status, 200);
    const made = await h.request('POST', '/api/v1/tasks', {
      group: 'books',
      prompt: 'summarise the chapter',
      scheduleType: 'once',
      scheduleValue: new Date(Date.now() + 500).toISOString(),
      contextMode: 'group',
    });
    assert.equal(made.status, 201, JSON.stringify(made.body));
    const id = (made.body.task as { id: number }).id;
    await page.click('a[data-nav="tasks"]');
    const status = page.locator(`tr[data-task-id="${id}"] td.status`);
    await page.waitForSelector(`tr[data-task-id="${id}"] td.status:text-is("waiting: budget reached")`, { timeout: 20_000 });
    assert.equal(await status.getAttribute('data-status'), 'waiting');
    assert.match((await page.locator(`tr[data-task-id="${id}"]`).textContent()) ?? '', /waiting: budget reached/);
    await page.locator(`tr[data-task-id="${id}"] a.runs-link`).click();
    const run = page.locator('#runs tbody tr').first();
    await run.waitFor();
    assert.equal(await run.locator('.run-status').textContent(), 'waiting: budget reached');
    assert.equal((await run.locator('td[data-label="Duration"]').textContent())?.trim(), 'waiting…');
  });

  test('a page on another origin can neither open the live socket nor post, though the browser holds the cookie', async () => {
    const other = await context.newPage();
    await other.goto(foreignUrl);
    const liveBefore = h.pincer.local.liveClients;
    const outcome = await other.evaluate(
      (url) =>
        new Promise<string>((resolve) => {
          const ws = new WebSocket(url);
          ws.onopen = () => resolve('open');
          ws.onerror = () => resolve('refused');
          setTimeout(() => resolve('timeout'), 5000);
        }),
      `${h.base.replace('http', 'ws')}/api/v1/live`,
    );
    assert.equal(outcome, 'refused');
    assert.equal(h.pincer.local.liveClients, liveBefore);
    const before = h.pincer.store.messages.maxSeq('local:main');
    await other.evaluate(async (base) => {
      await fetch(`${base}/api/v1/messages`, {
        method: 'POST',
        mode: 'no-cors',
        credentials: 'include',
        headers: { 'content-type': 'text/plain' },
        body: JSON.stringify({ chat: 'local:main', text: 'forged' }),
      }).catch(() => undefined);
    }, h.base);
    assert.equal(h.pincer.store.messages.maxSeq('local:main'), before, 'nothing was stored');
    await other.close();
  });

  test('on a phone-sized screen the chat fits without sideways scrolling', async () => {
    const phone = await context.newPage();
    await phone.setViewportSize({ width: 375, height: 740 });
    await phone.goto(`${h.base}/#/chat/${encodeURIComponent('local:main')}`);
    await phone.waitForSelector('.msg[data-from="assistant"]');
    await phone.waitForSelector('#text');
    const overflow = Number(await phone.evaluate('document.documentElement.scrollWidth - document.documentElement.clientWidth'));
    assert.ok(overflow <= 1, `the page is ${overflow}px wider than the screen`);
    await phone.screenshot({ path: join(ARTIFACTS, 'web-chat-phone.png') });
    await phone.close();
  });

  test('a reply grows as the model writes it, hides its internal notes, and leaves the view at its start', async () => {
    await page.goto(`${h.base}/#/chat/${encodeURIComponent('local:main')}`);
    await page.waitForSelector('#text');
    const frames: Array<{ at: number; type: string; text: string }> = [];
    page.on('websocket', (ws) =>
      ws.on('framereceived', ({ payload }) => {
        const event = JSON.parse(String(payload)) as { type: string; text?: string; reply?: string };
        if (event.type.startsWith('draft')) frames.push({ at: Date.now(), type: event.type, text: event.text ?? event.reply ?? '' });
      }),
    );
    await page.reload();
    await page.waitForSelector('#live-state:text("live")');
    // What the reader sees of the draft, at every change.
    await page.evaluate(`(() => {
      const seen = [];
      window.seenDrafts = seen;
      new MutationObserver(() => {
        const draft = document.querySelector('.msg.draft .body');
        if (draft?.textContent && seen.at(-1) !== draft.textContent) seen.push(draft.textContent);
      }).observe(document.querySelector('#messages'), { subtree: true, childList: true, characterData: true });
    })()`);
    await page.fill('#text', 'please write it out');
    await page.click('#send');
    await page.waitForSelector('.msg.draft', { timeout: 30_000 });
    const final = page.locator('.msg[data-from="assistant"]:not(.draft)', { hasText: 'Line 60 of the long answer' });
    await final.waitFor({ timeout: 30_000 });
    assert.equal(await page.locator('.msg.draft').count(), 0, 'the delivered reply took the draft’s place');

    const seen = (await page.evaluate('window.seenDrafts')) as string[];
    assert.ok(seen.length >= 4, `the reply grew in steps (${seen.length} seen)`);
    for (let i = 1; i < seen.length; i++)
      assert.ok((seen[i]?.length ?? 0) >= (seen[i - 1]?.length ?? 0), 'each step shows more of the reply');
    for (const text of seen) assert.doesNotMatch(text, /SECRET|<int|internal>/, 'no internal note, not even half a tag');
    const shown = (await final.locator('.body').textContent()) ?? '';
    assert.match(shown, /Line 1 of the long answer/);
    assert.match(shown, /Line 60 of the long answer/);
    assert.doesNotMatch(shown, /SECRET/);

    // Bounded: at most 10 draft updates a second (and one more for the end).
    const drafts = frames.filter((f) => f.type === 'draft');
    assert.ok(drafts.length >= 3, `${drafts.length} draft frames`);
    const spanS = ((drafts.at(-1)?.at ?? 0) - (drafts[0]?.at ?? 0)) / 1000;
    assert.ok(drafts.length <= Math.ceil(spanS * 10) + 2, `${drafts.length} draft frames in ${spanS.toFixed(2)} s`);
    for (const f of frames) assert.doesNotMatch(f.text, /SECRET/, 'the internal note never left pincer');

    // The long reply is read from its start: its top is at the top of the message list, not scrolled past.
    const [box, listBox] = await Promise.all([final.boundingBox(), page.locator('#messages').boundingBox()]);
    const offset = (box?.y ?? Number.NaN) - (listBox?.y ?? Number.NaN);
    assert.ok(offset >= 0 && offset <= 24, `the reply starts ${offset}px below the list's top`);
    await page.screenshot({ path: join(ARTIFACTS, 'web-chat-streamed.png') });
  });

  test('a code block names its language and copies its code; inline code keeps its spaces', async () => {
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: h.base });
    await page.fill('#text', 'show me code');
    await page.click('#send');
    const reply = page.locator('.msg[data-from="assistant"]:not(.draft)', { hasText: 'plain block' });
    await reply.waitFor({ timeout: 30_000 });
    const blocks = reply.locator('.code-block');
    assert.equal(await blocks.count(), 2);
    assert.equal(await blocks.nth(0).locator('.code-lang').textContent(), 'ts');
    assert.equal(await blocks.nth(1).locator('.code-lang').textContent(), 'code');
    // biome-ignore lint/performance/useDomNodeTextContent: the text as rendered is checked (innerText folds what CSS folds)
    assert.equal(await reply.locator('p code').innerText(), 'ls  -la');
    await blocks.nth(0).locator('button.copy').click();
    await page.waitForSelector('.code-block button.copy:text("Copied")');
    assert.equal(await page.evaluate('navigator.clipboard.readText()'), CODE_BLOCK);
    // The notice goes back to the button's name.
    await page.waitForSelector('.code-block button.copy:text("Copied")', { state: 'detached', timeout: 5000 });
    await context.clearPermissions();
  });

  test('pincer out of reach: the error says so plainly, the message stays in the box and goes once it is back', async () => {
    await page.goto(`${h.base}/#/chat/${encodeURIComponent('local:main')}`);
    await page.waitForSelector('#live-state:text("live")');
    const before = h.pincer.store.messages.maxSeq('local:main');
    await context.setOffline(true);
    await page.fill('#text', 'sent while offline');
    await page.click('#send');
    await page.waitForSelector('#error-bar:not([hidden])');
    assert.equal(await page.textContent('#error-text'), 'pincer is not reachable; your message is kept and will be sent when it is back.');
    assert.equal(await page.inputValue('#text'), 'sent while offline', 'the draft stays in the box');
    await context.setOffline(false);
    await page.waitForSelector('.msg[data-from="user"] >> text=sent while offline', { timeout: 30_000 });
    await page.waitForSelector('#error-bar[hidden]', { state: 'attached' });
    assert.equal(await page.inputValue('#text'), '');
    const stored = (await h.messages('local:main', String(before))).filter((m) => m.text === 'sent while offline');
    assert.equal(stored.length, 1, 'stored once');
  });

  test('log out: the page and its API are closed again', async () => {
    await page.click('#logout');
    await page.waitForURL(`${h.base}/login`);
    const status = await page.evaluate(async () => (await fetch('/api/v1/groups')).status);
    assert.equal(status, 401);
  });
});

// Every view of the web page laid out in real Chromium, on a desktop (1280×800) and a phone (390×844), light
// and dark: nothing overflows sideways (the memory view's edit box and search hits included), the login card is
// centred, the usage table's texts do not overlap.
// The facts are measured in the page; the screenshots go to the test's own temporary folder.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { isAgentTurn } from './helpers/fake-model.js';
import { type Harness, sandboxUnavailable, startHarness } from './helpers/harness.js';

const CHROMIUM = process.env.PINCER_CHROMIUM ?? '/usr/bin/chromium';
const TOKEN = 'test-token-0123456789';

const skip = existsSync(CHROMIUM)
  ? await sandboxUnavailable()
  : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set PINCER_CHROMIUM)`;

const SCREENS = [
  { name: 'desktop', width: 1280, height: 800 },
  { name: 'phone', width: 390, height: 844 },
] as const;
const SCHEMES = ['light', 'dark'] as const;

/** The page's width beyond the viewport's, in px (0: nothing scrolls sideways). */
const SIDEWAYS = 'document.documentElement.scrollWidth - innerWidth';

/**
 * Every text box of the usage table (each cell's text, and on a phone each cell's column label drawn before it),
 * and each pair of them that overlaps.
 */
const USAGE_OVERLAPS = `(() => {
  const boxes = [];
  const outside = [];
  for (const td of document.querySelectorAll('#usage td')) {
    const cell = td.getBoundingClientRect();
    const range = document.createRange();
    range.selectNodeContents(td);
    for (const r of range.getClientRects()) if (r.width > 0 && r.height > 0) boxes.push({ what: 'text of ' + td.dataset.label, r });
    const label = getComputedStyle(td, '::before');
    if (label.content !== 'none' && label.display !== 'none') {
      const top = cell.top + parseFloat(getComputedStyle(td).borderTopWidth) + parseFloat(label.top);
      const left = cell.left + parseFloat(getComputedStyle(td).borderLeftWidth) + parseFloat(label.left);
      const width = parseFloat(label.width);
      const height = parseFloat(label.height);
      boxes.push({ what: 'label ' + td.dataset.label, r: { top, left, bottom: top + height, right: left + width } });
      const row = td.closest('tr').getBoundingClientRect();
      if (top + height > row.bottom + 0.5) outside.push('label ' + td.dataset.label + ' leaves its row');
    }
  }
  const overlaps = [];
  for (let i = 0; i < boxes.length; i++)
    for (let j = i + 1; j < boxes.length; j++) {
      const a = boxes[i].r;
      const b = boxes[j].r;
      const x = Math.min(a.right, b.right) - Math.max(a.left, b.left);
      const y = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
      if (x > 0.5 && y > 0.5) overlaps.push(boxes[i].what + ' / ' + boxes[j].what);
    }
  return { count: boxes.length, overlaps: [...overlaps, ...outside] };
})()`;

describe('the web page laid out, every view, on a desktop and a phone, light and dark', { skip }, () => {
  let h: Harness;
  let browser: Browser;
  let shots: string;
  let messageId: string;
  let taskId: number;

  before(async () => {
    shots = mkdtempSync(join(tmpdir(), 'pincer-web-layout-'));
    h = await startHarness({
      script: (req) =>
        isAgentTurn(req)
          ? { text: 'A reply with `inline  code` and a block:\n\n```sh\nls -la /workspace/group\n```\n\n- one\n- two' }
          : { text: 'side' },
    });
    messageId = await h.send('local:main', 'hello, a message to lay out next to its reply');
    await h.reply('local:main', messageId, 60_000);
    // Usage over more than one day and group: the table has rows and a total.
    for (const [chatId, daysAgo] of [
      ['local:main', 0],
      ['local:main', 1],
      ['local:notes', 2],
    ] as const) {
      h.pincer.store.modelUsage.record({
        chatId,
        provider: 'anthropic',
        model: 'claude-haiku-4-5',
        inputTokens: 123_456,
        outputTokens: 7_890,
        cacheWriteTokens: 0,
        cacheReadTokens: 0,
        webSearches: 0,
        costUsd: 1.2345,
        budgetUsd: 1.2345,
        at: Date.now() - daysAgo * 24 * 3600_000,
      });
    }
    const made = await h.request('POST', '/api/v1/tasks', {
      group: 'main',
      prompt: 'every weekday morning: the weather, the calendar, and anything urgent in the inbox',
      scheduleType: 'cron',
      scheduleValue: '0 9 * * 1-5',
    });
    taskId = (made.body.task as { id: number }).id;
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
  });

  after(async () => {
    await browser?.close();
    await h?.stop();
  });

  /**
   * Opens `path` in each screen and colour scheme (logged in unless `loggedOut`), waits for `ready`, checks the
   * layout facts every view shares, runs `check`, and saves a screenshot.
   */
  const eachLayout = async (
    view: string,
    path: string,
    ready: string,
    check: (page: Page, screen: (typeof SCREENS)[number]) => Promise<void> = async () => {},
    loggedOut = false,
  ) => {
    for (const screen of SCREENS)
      for (const colorScheme of SCHEMES) {
        const context = await browser.newContext({ viewport: { width: screen.width, height: screen.height }, colorScheme });
        try {
          if (!loggedOut) {
            const login = await context.request.post(`${h.base}/login`, { data: { token: TOKEN }, headers: { origin: h.base } });
            assert.equal(login.status(), 200);
          }
          const page = await context.newPage();
          const errors: string[] = [];
          page.on('pageerror', (err) => errors.push(err.message));
          await page.goto(`${h.base}${path}`);
          await page.waitForSelector(ready, { timeout: 20_000 });
          const where = `${view}, ${screen.name}, ${colorScheme}`;
          const sideways = Number(await page.evaluate(SIDEWAYS));
          assert.ok(sideways <= 0, `${where}: the page is ${sideways}px wider than the screen`);
          assert.equal(
            await page.evaluate('matchMedia("(prefers-color-scheme: dark)").matches'),
            colorScheme === 'dark',
            `${where}: the colour scheme`,
          );
          await check(page, screen);
          assert.deepEqual(errors, [], `${where}: no script error`);
          await page.screenshot({ path: join(shots, `${view}-${screen.name}-${colorScheme}.png`), fullPage: true });
        } finally {
          await context.close();
        }
      }
  };

  test('login: the card is centred', async () => {
    await eachLayout(
      'login',
      '/login',
      '#token',
      async (page, screen) => {
        const box = await page.locator('.login-box').boundingBox();
        assert.ok(box, 'the login card shows');
        const dx = box.x + box.width / 2 - screen.width / 2;
        const dy = box.y + box.height / 2 - screen.height / 2;
        assert.ok(Math.abs(dx) <= 3 && Math.abs(dy) <= 3, `${screen.name}: the card's centre is off by (${dx}, ${dy}) px`);
      },
      true,
    );
  });

  test('chat: messages, code and the composer fit', async () => {
    await eachLayout('chat', `/#/chat/${encodeURIComponent('local:main')}`, '.msg[data-from="assistant"] .code-block', async (page) => {
      const composer = await page.locator('#composer').boundingBox();
      const viewport = page.viewportSize();
      assert.ok(composer && viewport && composer.y + composer.height <= viewport.height, 'the composer is on screen');
    });
  });

  test('groups', async () => {
    await eachLayout('groups', '/#/groups', '#groups tr[data-folder="main"]');
  });

  test('tasks, and a task’s runs', async () => {
    await eachLayout('tasks', '/#/tasks', `tr[data-task-id="${taskId}"]`);
    await eachLayout('runs', `/#/tasks/${taskId}`, '.page h2');
  });

  test('activity: the usage table’s texts never overlap, its total included', async () => {
    await eachLayout('activity', '/#/activity', '#usage tr.total', async (page, screen) => {
      const { count, overlaps } = (await page.evaluate(USAGE_OVERLAPS)) as { count: number; overlaps: string[] };
      assert.ok(count >= 12, `${count} text boxes measured`);
      assert.deepEqual(overlaps, [], `${screen.name}: overlapping texts in the usage table`);
      // The view scrolls inside the page: the table gets a picture of its own.
      await page.locator('#usage').screenshot({ path: join(shots, `usage-${screen.name}-${Date.now()}.png`) });
    });
  });

  test('memory: the files, a rendered CLAUDE.md, search hits and the edit box fit', async () => {
    writeFileSync(
      join(h.home, 'groups', 'main', 'CLAUDE.md'),
      `# Memory of this chat\n\n- a long line: ${'unbroken'.repeat(30)}\n\n\`\`\`sh\nls -la /workspace/group/memory\n\`\`\`\n`,
    );
    mkdirSync(join(h.home, 'groups', 'main', 'conversations'), { recursive: true });
    writeFileSync(join(h.home, 'groups', 'main', 'conversations', `2026-12-01-${'a-rather-long-archive-name-'.repeat(3)}.md`), '# Talk\n');
    await eachLayout('memory', '/#/memory/main', '#memory-file .memory-text .code-block', async (page, screen) => {
      // The list of files comes first: beside the file on a desktop, above it on a phone.
      const list = await page.locator('.memory-files').boundingBox();
      const file = await page.locator('#memory-file').boundingBox();
      assert.ok(list && file, 'the file list and the file show');
      if (screen.name === 'desktop') assert.ok(list.x + list.width <= file.x, `${screen.name}: the list is left of the file`);
      else assert.ok(list.y + list.height <= file.y, `${screen.name}: the list is above the file`);
      await page.fill('#memory-query', 'hello');
      await page.press('#memory-query', 'Enter');
      await page.waitForSelector('#memory-hits li.hit');
      await page.click('#memory-edit');
      await page.waitForSelector('#memory-text');
      const sideways = Number(await page.evaluate(SIDEWAYS));
      assert.ok(sideways <= 0, `${screen.name}: with hits and the edit box, the page is ${sideways}px wider than the screen`);
      const box = await page.locator('#memory-text').boundingBox();
      assert.ok(box && box.x >= 0 && box.x + box.width <= screen.width, `${screen.name}: the edit box is within the screen`);
    });
  });

  test('trace', async () => {
    await eachLayout('trace', `/#/trace/${messageId}`, '#trace li.stage[data-stage="delivered"]');
  });
});

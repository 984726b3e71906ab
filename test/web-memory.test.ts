// The Memory view in real headless Chromium, against a real pincer: reached from the groups view, it shows a
// group's CLAUDE.md rendered as the chat renders Markdown, its notes and its archived conversations (newest
// first); an edit is saved to the file on disk; a save after the agent wrote the file meanwhile is refused in
// plain words with the person's text kept; the search finds a message (linked to its trace) and a file line.
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type Browser, chromium, type Page } from 'playwright-core';
import { HARNESS_TOKEN, type Harness, startHarness } from './helpers/harness.js';

const CHROMIUM = process.env.PINCER_CHROMIUM ?? '/usr/bin/chromium';
const skip = existsSync(CHROMIUM) ? undefined : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set PINCER_CHROMIUM)`;

const CLAUDE_MD = [
  '# Family',
  '',
  'We call Grandma **every Sunday**.',
  '',
  '- birthdays in `memory/people.md`',
  '',
  '<img src=x onerror="document.title=\'pwned\'">',
].join('\n');

describe('the Memory view in Chromium', { skip }, () => {
  let h: Harness;
  let browser: Browser;
  let page: Page;
  let family: string;
  let lisbonId: string;
  const errors: string[] = [];

  before(async () => {
    h = await startHarness({ env: { PINCER_PREWARM: '0' } });
    h.pincer.control.registerGroup({ kind: 'owner' }, { chatId: 'local:family', folder: 'family', respondToAll: true });
    const said = h.pincer.store.messages.insert({
      chatId: 'local:family',
      channel: 'local',
      platformId: 'lisbon',
      senderId: 'ada',
      senderName: 'Ada',
      text: 'We decided the March trip goes to Lisbon',
      sentAt: Date.parse('2025-03-01T10:00:00Z'),
      fromAssistant: false,
      engages: false,
    });
    lisbonId = String(said.seq);
    family = join(h.home, 'groups', 'family');
    writeFileSync(join(family, 'CLAUDE.md'), CLAUDE_MD);
    mkdirSync(join(family, 'memory'));
    writeFileSync(join(family, 'memory', 'people.md'), '# People\n\nGrandma likes the mountains.\n');
    mkdirSync(join(family, 'conversations'));
    writeFileSync(join(family, 'conversations', 'older-talk.md'), '# An older talk\n');
    writeFileSync(join(family, 'conversations', 'newer-talk.md'), '# A newer talk\n');
    utimesSync(join(family, 'conversations', 'older-talk.md'), new Date('2025-01-01'), new Date('2025-01-01'));
    utimesSync(join(family, 'conversations', 'newer-talk.md'), new Date('2025-06-01'), new Date('2025-06-01'));

    browser = await chromium.launch({
      executablePath: CHROMIUM,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--no-first-run'],
    });
    const context = await browser.newContext({ viewport: { width: 1200, height: 800 } });
    const login = await context.request.post(`${h.base}/login`, { data: { token: HARNESS_TOKEN }, headers: { origin: h.base } });
    assert.equal(login.status(), 200);
    page = await context.newPage();
    page.on('pageerror', (err) => errors.push(err.message));
  });

  after(async () => {
    await browser?.close();
    await h?.stop();
    assert.deepEqual(errors, [], 'no script error on the page');
  });

  test("from the groups view to a group's memory: CLAUDE.md rendered, notes, archives newest first", async () => {
    await page.goto(`${h.base}/#/groups`);
    await page.click('#groups tr[data-folder="family"] a.memory-link');
    await page.waitForURL(`${h.base}/#/memory/family`);
    await page.waitForSelector('#memory-file .memory-text strong');
    assert.equal(await page.textContent('#memory-file header h3'), 'CLAUDE.md');
    assert.equal(await page.textContent('#memory-file .memory-text strong'), 'every Sunday');
    assert.equal(await page.textContent('#memory-file .memory-text h1, #memory-file .memory-text .md-heading'), 'Family');
    // Raw HTML in a memory file is text, never an element.
    assert.equal(await page.locator('#memory-file img').count(), 0);
    assert.match((await page.textContent('#memory-file')) ?? '', /<img src=x onerror=/);
    assert.notEqual(await page.title(), 'pwned');
    assert.deepEqual(await page.locator('#memory-notes a').allTextContents(), ['CLAUDE.md', 'memory/people.md']);
    assert.deepEqual(await page.locator('#memory-archives a').allTextContents(), [
      'conversations/newer-talk.md',
      'conversations/older-talk.md',
    ]);
    await page.click('#memory-archives a[data-path="conversations/older-talk.md"]');
    await page.waitForSelector('#memory-file header code:text-is("conversations/older-talk.md")');
    assert.equal(await page.locator('#memory-edit').count(), 0, 'an archive has no Edit');
    assert.match((await page.textContent('#memory-file')) ?? '', /read only: the record of what was said/);
  });

  test('edit: Cancel changes nothing; Save changes the file on disk and the view shows it', async () => {
    await page.click('#memory-notes a[data-path="CLAUDE.md"]');
    await page.click('#memory-edit');
    assert.equal(await page.inputValue('#memory-text'), CLAUDE_MD);
    // Cancel leaves the file as it was.
    await page.fill('#memory-text', 'thrown away');
    await page.click('#memory-cancel');
    await page.waitForSelector('#memory-file .memory-text strong:text("every Sunday")');
    assert.equal(readFileSync(join(family, 'CLAUDE.md'), 'utf8'), CLAUDE_MD);
    await page.click('#memory-edit');
    assert.equal(await page.inputValue('#memory-text'), CLAUDE_MD);
    await page.fill('#memory-text', '# Family\n\nWe call Grandma on **Saturdays** now.\n');
    await page.click('#memory-save');
    await page.waitForSelector('#memory-file .memory-text strong:text("Saturdays")');
    assert.equal(readFileSync(join(family, 'CLAUDE.md'), 'utf8'), '# Family\n\nWe call Grandma on **Saturdays** now.\n');
  });

  test('a save after the agent wrote the file meanwhile is refused in plain words, the text kept', async () => {
    await page.click('#memory-edit');
    // The agent writes CLAUDE.md while the owner types.
    writeFileSync(join(family, 'CLAUDE.md'), '# Family\n\nThe agent noted: Grandma moved to Porto.\n');
    const mine = '# Family\n\nMy own edit, which must not be lost.\n';
    await page.fill('#memory-text', mine);
    await page.click('#memory-save');
    await page.waitForSelector('#memory-problem:not([hidden])');
    assert.match(
      (await page.textContent('#memory-problem')) ?? '',
      /Not saved: CLAUDE\.md changed since you opened it \(the agent may have written it meanwhile\)\. Your text is still here\./,
    );
    assert.equal(await page.inputValue('#memory-text'), mine, 'the person’s text is kept');
    assert.ok(await page.isHidden('#error-bar'), 'the refusal is said in the editor, not as a failure');
    assert.equal(readFileSync(join(family, 'CLAUDE.md'), 'utf8'), '# Family\n\nThe agent noted: Grandma moved to Porto.\n');
    await page.click('#memory-problem summary');
    assert.match((await page.textContent('#memory-problem .memory-now')) ?? '', /Grandma moved to Porto/);
    // Having seen it, saving again replaces it.
    await page.click('#memory-save');
    await page.waitForSelector('#memory-file .memory-text:has-text("My own edit")');
    assert.equal(readFileSync(join(family, 'CLAUDE.md'), 'utf8'), mine);
  });

  test('search finds a message (linked to its trace) and a file line (opened on a click)', async () => {
    await page.fill('#memory-query', 'Lisbon');
    await page.press('#memory-query', 'Enter');
    const message = page.locator(`#memory-hits li.hit[data-message="${lisbonId}"]`);
    await message.waitFor();
    assert.match((await message.textContent()) ?? '', /message \d+ · 2025-03-01 11:00 · Ada/);
    assert.equal(await message.locator('mark').textContent(), 'Lisbon');
    assert.equal(await message.locator('a').getAttribute('href'), `#/trace/${lisbonId}`);

    await page.fill('#memory-query', 'mountains');
    await page.press('#memory-query', 'Enter');
    const line = page.locator('#memory-hits li.hit[data-file="memory/people.md"]');
    await line.waitFor();
    assert.equal(await line.locator('a').textContent(), 'memory/people.md:3');
    assert.match((await line.textContent()) ?? '', /Grandma likes the mountains/);
    await line.locator('a').click();
    await page.waitForSelector('#memory-file header code:text-is("memory/people.md")');
    assert.match((await page.textContent('#memory-file .memory-text')) ?? '', /Grandma likes the mountains/);

    // What was just saved is found too: the index sees the new text.
    await page.fill('#memory-query', 'lost');
    await page.press('#memory-query', 'Enter');
    await page.locator('#memory-hits li.hit[data-file="CLAUDE.md"]').waitFor();

    await page.fill('#memory-query', 'Lisbon');
    await page.press('#memory-query', 'Enter');
    await page.click(`#memory-hits li.hit[data-message="${lisbonId}"] a`);
    await page.waitForSelector('#trace .trace-text');
    assert.match((await page.textContent('#trace .trace-text')) ?? '', /March trip goes to Lisbon/);
  });

  test('a new note is written and saved into memory/', async () => {
    await page.goto(`${h.base}/#/memory/family`);
    // The view has what it loads (the list grows as it arrives): a click lands where it was aimed.
    await page.waitForSelector('#memory-file .memory-text');
    await page.fill('.memory-new-name', 'trips');
    await page.click('.memory-new button');
    await page.fill('#memory-text', '# Trips\n\nLisbon in March.\n');
    await page.click('#memory-save');
    await page.waitForSelector('#memory-notes a[data-path="memory/trips.md"]');
    assert.equal(readFileSync(join(family, 'memory', 'trips.md'), 'utf8'), '# Trips\n\nLisbon in March.\n');
  });
});

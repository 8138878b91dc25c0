// Browser test of the page: Debian's chromium driven by playwright-core, against the real
// server (SQLite) serving web/dist. Two pages edit one document concurrently, converge and
// see each other's named cursor; stopping the server turns both indicators to
// "reconnecting" (edits meanwhile show "Saving…"); restarting returns them to "connected"
// with the text intact and "Saved". Screenshots go to $QUIRE_WEB_ARTIFACTS (default
// ../build/web-artifacts); QUIRE_WEB_SCREENSHOT=path also copies the editor screenshot there.
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { QuireProcess, api } from './server.js';

const here = dirname(fileURLToPath(import.meta.url));
const artifacts = resolve(process.env.QUIRE_WEB_ARTIFACTS ?? join(here, '../../build/web-artifacts'));
const started = Date.now();
const step = (s) => console.log(`browser: ${((Date.now() - started) / 1000).toFixed(1)} s ${s}`);

const tmp = mkdtempSync(join(tmpdir(), 'quire-browser-'));
const server = new QuireProcess({ databaseUrl: `sqlite:///${join(tmp, 'web.db')}`,
  webRoot: resolve(here, '../dist') });
let context = null;
const watchdog = setTimeout(() => { console.error('browser: timed out after 120 s'); process.exit(1); }, 120_000);

async function main() {
  mkdirSync(artifacts, { recursive: true });
  await server.start();
  step(`server on ${server.httpUrl}`);
  context = await chromium.launchPersistentContext(join(tmp, 'profile'), {
    executablePath: process.env.QUIRE_CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run',
      '--disable-default-apps', '--disable-dev-shm-usage'],
    viewport: { width: 1100, height: 640 },
  });
  step('chromium started');

  // The list page: create through the form, find it by search.
  const list = await context.newPage();
  list.on('pageerror', (e) => { throw e; });
  await list.goto(`${server.httpUrl}/?user=Alice#/`);
  await list.fill('#new-title', 'Meeting notes');
  await list.click('#create');
  await list.waitForURL(/#\/d\//);
  const id = decodeURIComponent(list.url().split('#/d/')[1]);
  step(`created ${id} from the list page`);

  // Pagination, search, rename, delete and restore through the list page.
  for (let i = 1; i <= 11; i++) {
    assert.equal((await api(server, 'POST', '/api/v1/documents', { title: `Draft ${i}` })).status, 201);
  }
  await list.goto(`${server.httpUrl}/?user=Alice#/`);
  await list.waitForSelector('#page-info:has-text("Page 1 of 2 · 12 documents")');
  await list.click('#next');
  await list.waitForSelector('#page-info:has-text("Page 2 of 2")');
  assert.equal(await list.locator('#docs tbody tr').count(), 2);
  await list.fill('#search', 'Draft 1');
  await list.waitForSelector('#page-info:has-text("Page 1 of 1 · 3 documents")'); // 1, 10, 11
  await list.fill('#search', 'Draft 7');
  await list.waitForSelector('#page-info:has-text("1 documents")');
  const row = list.locator('#docs tbody tr').first();
  list.once('dialog', (d) => d.accept('Draft seven'));
  await row.locator('button:has-text("Rename")').click();
  await list.fill('#search', 'seven');
  await list.waitForSelector('#docs a:has-text("Draft seven")');
  await row.locator('button:has-text("Delete")').click();
  await list.waitForSelector('#page-info:has-text("0 documents")');
  await list.check('#show-deleted');
  await list.waitForSelector('#docs tr.deleted:has-text("Draft seven")');
  await list.locator('#docs tr.deleted button:has-text("Restore")').click();
  await list.waitForSelector('#docs tr:not(.deleted) a:has-text("Draft seven")');
  step('list: pagination, search, rename, delete, restore');
  await list.close();

  const open = async (name) => {
    const page = await context.newPage();
    page.on('pageerror', (e) => console.error(`browser: page error (${name}): ${e.message}`));
    await page.goto(`${server.httpUrl}/?user=${name}#/d/${encodeURIComponent(id)}`);
    await page.waitForSelector('#connection[data-status="connected"]', { timeout: 10_000 });
    return page;
  };
  const alice = await open('Alice');
  const bob = await open('Bob');
  step('both pages connected');

  // Concurrent typing.
  await alice.click('.cm-content');
  await bob.click('.cm-content');
  await Promise.all([
    alice.keyboard.type('Alice writes the agenda. ', { delay: 10 }),
    bob.keyboard.type('Bob adds action items. ', { delay: 10 }),
  ]);
  const textOf = (page) => page.evaluate(() => window.quire.ytext.toString());
  const converge = async () => {
    for (let i = 0; i < 200; i++) {
      const [a, b] = await Promise.all([textOf(alice), textOf(bob)]);
      if (a === b && a.includes('Alice writes the agenda.') && a.includes('Bob adds action items.')) return a;
      await new Promise((r) => setTimeout(r, 50));
    }
    assert.fail(`no convergence: ${JSON.stringify(await textOf(alice))} vs ${JSON.stringify(await textOf(bob))}`);
  };
  const text = await converge();
  const shown = await alice.evaluate(() => window.quire.view.state.doc.toString());
  assert.equal(shown, text, 'the editor shows the shared text');
  const visible = await alice.evaluate(() => document.querySelector('.cm-content').innerText);
  assert.ok(visible.includes('Alice writes the agenda.'), 'the text is on screen');
  step(`converged: ${JSON.stringify(text)}`);

  // Each sees the other's named caret.
  await alice.waitForFunction(() => [...document.querySelectorAll('.cm-ySelectionInfo')].some((e) => e.textContent === 'Bob'), null, { timeout: 5000 });
  await bob.waitForFunction(() => [...document.querySelectorAll('.cm-ySelectionInfo')].some((e) => e.textContent === 'Alice'), null, { timeout: 5000 });
  // ...where the other one's caret really is.
  for (let i = 0; ; i++) {
    const [bobHead, bobSeenByAlice, aliceHead, aliceSeenByBob] = await Promise.all([
      bob.evaluate(() => window.quire.view.state.selection.main.head),
      alice.evaluate(() => window.quire.remoteCaret('Bob')),
      alice.evaluate(() => window.quire.view.state.selection.main.head),
      bob.evaluate(() => window.quire.remoteCaret('Alice')),
    ]);
    if (bobHead === bobSeenByAlice && aliceHead === aliceSeenByBob) break;
    assert.ok(i < 100, `carets: Bob ${bobHead} seen at ${bobSeenByAlice}, Alice ${aliceHead} seen at ${aliceSeenByBob}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  step('cursors visible where they are');
  await alice.waitForSelector('#save-state[data-state="saved"]', { timeout: 5000 });
  await alice.waitForFunction(() => /Saved \d+ s ago/.test(document.querySelector('#save-state').textContent), null, { timeout: 5000 });
  await alice.screenshot({ path: join(artifacts, 'editor.png') });
  if (process.env.QUIRE_WEB_SCREENSHOT) copyFileSync(join(artifacts, 'editor.png'), process.env.QUIRE_WEB_SCREENSHOT);

  // The title is editable and goes through the REST API.
  await alice.fill('#title', 'Weekly meeting notes');
  await alice.press('#title', 'Enter');
  for (let i = 0; (await api(server, 'GET', `/api/v1/documents/${id}`)).body.title !== 'Weekly meeting notes'; i++) {
    assert.ok(i < 100, 'title renamed');
    await new Promise((r) => setTimeout(r, 50));
  }
  step('title renamed');

  // A page that gives up after one attempt shows "offline" with a retry button.
  const dave = await context.newPage();
  await dave.goto(`${server.httpUrl}/?user=Dave&attempts=1#/d/${encodeURIComponent(id)}`);
  await dave.waitForSelector('#connection[data-status="connected"]', { timeout: 10_000 });

  // Server down: both indicators turn amber; an edit meanwhile is "Saving…".
  await server.stop();
  await dave.waitForSelector('#connection[data-status="offline"] #retry:visible', { timeout: 10_000 });
  await alice.waitForSelector('#connection[data-status="reconnecting"]', { timeout: 10_000 });
  await bob.waitForSelector('#connection[data-status="reconnecting"]', { timeout: 10_000 });
  await alice.click('.cm-content');
  await alice.keyboard.press('End');
  await alice.keyboard.type('Written offline.', { delay: 5 });
  await alice.waitForSelector('#save-state[data-state="saving"]', { timeout: 5000 });
  assert.equal((await alice.textContent('#save-state')).trim(), 'Saving…');
  await alice.screenshot({ path: join(artifacts, 'reconnecting.png') });
  step('server stopped: reconnecting, Saving…');

  await server.start();
  await alice.waitForSelector('#connection[data-status="connected"]', { timeout: 15_000 });
  await bob.waitForSelector('#connection[data-status="connected"]', { timeout: 15_000 });
  await alice.waitForFunction(() => /^Saved/.test(document.querySelector('#save-state').textContent), null, { timeout: 10_000 });
  assert.equal(await dave.getAttribute('#connection', 'data-status'), 'offline');
  await dave.click('#retry');
  await dave.waitForSelector('#connection[data-status="connected"]', { timeout: 10_000 });
  await dave.close();
  step('offline page reconnected by Retry');
  const after = await converge();
  assert.ok(after.startsWith(text.trimEnd()) || after.includes('Written offline.'), after);
  assert.ok(after.includes('Written offline.'));
  step(`server restarted: connected, Saved, text intact: ${JSON.stringify(after)}`);

  // A fresh page loads everything from the restarted server.
  const carol = await open('Carol');
  for (let i = 0; (await textOf(carol)) !== after; i++) {
    assert.ok(i < 100, 'fresh page has the text');
    await new Promise((r) => setTimeout(r, 50));
  }
  await alice.screenshot({ path: join(artifacts, 'after-restart.png') });
  step('fresh page has the text');
}

try {
  await main();
  console.log(`browser: ok in ${((Date.now() - started) / 1000).toFixed(1)} s; screenshots in ${artifacts}`);
} catch (e) {
  console.error('browser: FAILED', e);
  process.exitCode = 1;
} finally {
  clearTimeout(watchdog);
  if (context) await context.close().catch(() => {});
  await server.stop();
  rmSync(tmp, { recursive: true, force: true });
}

// The web UI's flows in real headless Chromium (playwright-core driving Debian's chromium):
// sign in, the overview with filters and search, live updates, an application's resources and
// diff, sync, rollback, a read-only token, an unknown application. Run by tests/ui.rs, which
// set up the control plane, the repository and the server; every check failing exits non-zero.
'use strict';

const assert = require('node:assert/strict');
const path = require('node:path');
const { BASE, TIMEOUT, newPage, run, signIn } = require('./browser.cjs');

const ADMIN = process.env.ADMIN_TOKEN;
const VIEWER = process.env.VIEWER_TOKEN;
const SHOTS = process.env.SCREENSHOT_DIR;
const SECRET = process.env.SECRET_VALUE;
const OLD = process.env.OLD_REVISION;
const NEW = process.env.NEW_REVISION;

function step(name) {
  console.log(`- ${name}`);
}

async function visibleRows(page) {
  return page.$$eval('#applications tbody tr', (rows) => rows.filter((row) => !row.hidden).map((row) => row.dataset.row));
}

async function text(page, selector) {
  return (await page.textContent(selector)).trim();
}

// Every API answer the page received, to prove no Secret value reached the browser.
function recordBodies(page, bodies) {
  page.on('response', async (response) => {
    if (response.url().endsWith('/api/v1/stream')) return;
    try { bodies.push(`${response.url()}\n${await response.text()}`); } catch { /* navigated away */ }
  });
}

run(async (browser) => {
  const errors = [];
  const bodies = [];
  const page = await newPage(browser);
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  page.on('console', (message) => { if (message.type() === 'error') errors.push(`console: ${message.text()}`); });
  recordBodies(page, bodies);

  step('a wrong token is refused with a message, and the sign-in form stays');
  await signIn(page, 'dlt_0000000000000000000000000000000000000000000000000000000000000000');
  await page.waitForSelector('#sign-in-error:not([hidden])');
  assert.match(await text(page, '#sign-in-error'), /sign in again|refused/i);
  // The 401 of the wrong token is expected; the console error it logs is not a bug.
  errors.length = 0;

  step('the admin token shows the overview with every application and its badges');
  await page.fill('#token', ADMIN);
  await page.click('button[type=submit]');
  await page.waitForSelector('#applications');
  assert.deepEqual((await visibleRows(page)).sort(), ['broken', 'other', 'web', 'workload']);
  await page.waitForFunction(() => {
    const badge = (name, kind) => document.querySelector(`tr[data-row="${name}"] [data-badge=${kind}]`)?.textContent;
    return badge('web', 'sync') === 'OutOfSync' && badge('other', 'sync') === 'Synced' && badge('other', 'health') === 'Healthy';
  });
  assert.match(await text(page, 'tr[data-row="broken"] td.message'), /bad\.yaml/);
  assert.match(await text(page, '#counts'), /^4 applications · 1 out of sync · 0 degraded · 4 shown$/);
  assert.ok(await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth), 'no sideways scrolling at a laptop width');
  await page.screenshot({ path: path.join(SHOTS, 'overview.png') });

  step('search and filters narrow the list; nothing matching says so');
  await page.fill('#search', 'OTH');
  assert.deepEqual(await visibleRows(page), ['other']);
  await page.fill('#search', 'no-such-app');
  assert.deepEqual(await visibleRows(page), []);
  await page.waitForSelector('#no-match:not([hidden])');
  await page.fill('#search', '');
  await page.selectOption('#filter-sync', 'OutOfSync');
  assert.deepEqual(await visibleRows(page), ['web']);
  await page.selectOption('#filter-sync', '');
  await page.selectOption('#filter-health', 'Healthy');
  assert.ok(!(await visibleRows(page)).includes('broken'));
  await page.selectOption('#filter-health', '');

  step('a change made elsewhere shows up live, without reloading');
  const suspended = await fetch(`${BASE}/api/v1/applications/other/suspend`, { method: 'POST', headers: { Authorization: `Bearer ${ADMIN}` } });
  assert.equal(suspended.status, 200);
  await page.waitForSelector('tr[data-row="other"] .badge.flag');
  assert.match(await text(page, 'tr[data-row="other"]'), /suspended/);

  step('the application page shows the resource tree and the diff of what changed in Git');
  await page.click('a[data-app="web"]');
  await page.waitForSelector('#resources');
  const resources = await text(page, '#resources');
  assert.match(resources, /ConfigMap\s*settings\s*OutOfSync/);
  assert.match(resources, /Secret\s*creds\s*Synced\s*Healthy/);
  const diff = await text(page, '#diffs');
  assert.match(diff, /-\s+colour: blue/);
  assert.match(diff, /\+\s+colour: green/);
  assert.match(diff, /note: .*<img src=x onerror=/, 'markup from the repository shows as text');
  assert.equal(await page.$('#diffs img'), null, 'and is not markup');
  assert.equal(await page.evaluate(() => window.pwned), undefined, 'nor runs');
  assert.equal(await text(page, '#deployed'), OLD.slice(0, 10));
  assert.doesNotMatch(await text(page, 'main'), /null|undefined|NaN/, 'no placeholder leaks into the page');
  await page.screenshot({ path: path.join(SHOTS, 'app-out-of-sync.png') });

  step('Sync applies the new commit; the page shows it synced with nothing left to diff');
  await page.click('#sync');
  await page.waitForSelector('#no-diff');
  await page.waitForFunction((revision) => document.querySelector('#deployed')?.textContent === revision.slice(0, 10), NEW);
  // The badge is the controller's, which reconciles right after the sync and pushes the change.
  await page.waitForFunction(() => document.querySelector('.actions [data-badge=sync]')?.textContent === 'Synced');
  assert.match(await text(page, '#banner'), /Sync done/);
  await page.screenshot({ path: path.join(SHOTS, 'app-synced.png') });

  step('Rollback in the history returns to the earlier commit and pins the application');
  page.once('dialog', (dialog) => dialog.accept());
  await page.click(`button[data-rollback="${OLD}"]`);
  await page.waitForSelector('#pinned');
  await page.waitForFunction((revision) => document.querySelector('#deployed')?.textContent === revision.slice(0, 10), OLD);
  await page.waitForSelector('#unpin');
  const history = await page.$$eval('#history tbody tr', (rows) => rows.map((row) => row.textContent));
  assert.ok(history.length >= 3, `three syncs in the history: ${history}`);
  assert.match(history[0], /succeeded/);
  await page.screenshot({ path: path.join(SHOTS, 'app-rolled-back.png') });

  step('Unpin, then Pin keeps the application at the commit it runs');
  await page.click('#unpin');
  await page.waitForSelector('#pin');
  assert.equal(await page.$('#pinned'), null);
  page.once('dialog', (dialog) => dialog.accept());
  await page.click('#pin');
  await page.waitForSelector('#pinned');
  await page.waitForSelector('#unpin');

  assert.deepEqual(errors, [], 'no script errors and no failed requests so far');

  step('a Deployment shows the ReplicaSet and Pods the cluster made from it');
  await page.goto(`${BASE}/ui/#/app/workload`);
  await page.waitForSelector('#resources');
  // The controller-manager makes them a moment after the sync: Refresh until they are there.
  for (let tries = 0; !(await page.$('tr[data-child^="Pod workload-"]')); tries += 1) {
    assert.ok(tries < 60, 'no Pods in the tree');
    await page.click('#refresh');
    await page.waitForTimeout(500);
    await page.waitForSelector('#resources');
  }
  const tree = await page.$$eval('#resources tbody tr', (rows) => rows.map((row) => row.dataset.object || row.dataset.child).filter(Boolean));
  const at = (prefix) => tree.findIndex((name) => name.startsWith(prefix));
  assert.ok(at('Deployment.apps workload') >= 0 && at('Deployment.apps workload') < at('ReplicaSet.apps workload-'), `${tree}`);
  assert.ok(at('ReplicaSet.apps workload-') < at('Pod workload-'), `the Pods below their ReplicaSet: ${tree}`);
  assert.equal(tree.filter((name) => name.startsWith('Pod workload-')).length, 2, `two replicas: ${tree}`);
  await page.screenshot({ path: path.join(SHOTS, 'app-tree.png') });

  step('an unknown application gets a clear error state');
  await page.goto(`${BASE}/ui/#/app/no-such-app`);
  await page.waitForSelector('#load-error');
  assert.match(await text(page, '#load-error'), /No application named “no-such-app”/);
  // Its one 404 is the point; Chromium logs it.
  for (let waited = 0; errors.length === 0 && waited < TIMEOUT; waited += 50) await page.waitForTimeout(50);
  assert.deepEqual(errors, ['console: Failed to load resource: the server responded with a status of 404 (Not Found)']);
  errors.length = 0;

  step('a viewer token sees the application read-only');
  const viewer = await newPage(browser);
  recordBodies(viewer, bodies);
  await signIn(viewer, VIEWER);
  await viewer.waitForSelector('#applications');
  await viewer.click('a[data-app="web"]');
  await viewer.waitForSelector('#read-only');
  assert.equal(await viewer.$('#sync'), null);
  assert.equal(await viewer.$('button[data-rollback]'), null);
  const forbidden = await viewer.evaluate(async (token) => (await fetch('/api/v1/applications/web/sync', {
    method: 'POST', headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' }, body: '{}',
  })).status, VIEWER);
  assert.equal(forbidden, 403);

  step('signing out forgets the token');
  await page.goto(`${BASE}/ui/`);
  await page.waitForSelector('#applications');
  await page.click('#sign-out');
  await page.waitForSelector('#token');
  assert.equal(await page.evaluate(() => sessionStorage.length), 0);

  step('no Secret value reached the browser');
  assert.ok(bodies.length > 10, `API answers recorded: ${bodies.length}`);
  for (const body of bodies) assert.ok(!body.includes(SECRET), `a Secret value in ${body.split('\n')[0]}`);
  assert.deepEqual(errors, []);
});

// The application page of a child an app-of-apps root declares as an Argo CD Application lists
// what of that Application behaves differently here (issue 21); the root's page lists nothing.
// Run by tests/ui.rs, which sets up the control plane, the repository and the server.
'use strict';

const assert = require('node:assert/strict');
const { BASE, newPage, run, signIn } = require('./browser.cjs');

const TOKEN = process.env.VIEWER_TOKEN;
const NOTE = process.env.CONVERSION_NOTE;

run(async (browser) => {
  const errors = [];
  const page = await newPage(browser);
  page.on('pageerror', (err) => errors.push(`page error: ${err.message}`));
  await signIn(page, TOKEN);
  await page.waitForSelector('#search');

  console.log('- the converted child\'s page lists the note, as text');
  await page.goto(`${BASE}/ui/#/app/with-history`);
  await page.waitForSelector('#conversion-notes li');
  const notes = await page.$$eval('#conversion-notes li', (items) => items.map((item) => item.textContent));
  assert.deepEqual(notes, [NOTE]);

  console.log('- the root\'s page has no such list');
  await page.goto(`${BASE}/ui/#/app/root`);
  await page.waitForFunction(() => document.querySelector('#app-name')?.textContent === 'root');
  assert.equal(await page.$('#conversion-notes'), null);
  assert.deepEqual(errors, []);
});

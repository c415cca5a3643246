// What the UI scripts share: headless Chromium (playwright-core driving Debian's chromium), a page
// whose every wait is bounded, signing in, and a failed check exiting non-zero for tests/ui.rs.
'use strict';

const { chromium } = require('playwright-core');

const BASE = process.env.DRIFTLESS_URL;
const TIMEOUT = 30000;

// A page in a browser context of its own (its own session storage, so its own token).
async function newPage(browser) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  context.setDefaultTimeout(TIMEOUT);
  return context.newPage();
}

async function signIn(page, token) {
  await page.goto(`${BASE}/`);
  await page.waitForSelector('#token');
  await page.fill('#token', token);
  await page.click('button[type=submit]');
}

// Runs `flow(browser)`, closing the browser whatever happens; any failure exits non-zero.
function run(flow) {
  (async () => {
    const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true, args: ['--no-sandbox'] });
    try {
      await flow(browser);
    } finally {
      await browser.close();
    }
  })().catch((err) => {
    console.error(err);
    process.exit(1);
  });
}

module.exports = { BASE, TIMEOUT, newPage, run, signIn };

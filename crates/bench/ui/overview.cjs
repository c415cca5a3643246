// `scripts/bench ui`: the web UI's overview at fleet scale in real headless Chromium
// (playwright-core driving Debian's chromium). Prints one JSON line of timings in milliseconds:
//   load:   navigation → every application's row in the table (median of LOADS page loads)
//   search: a query typed → the table filtered and painted (median of the QUERIES)
//   filter: the sync-state filter changed → filtered and painted (median)
//   live:   an application suspended through the API → its row shows it (median of LIVE)
'use strict';

const { chromium } = require('playwright-core');

const BASE = process.env.DRIFTLESS_URL;
const TOKEN = process.env.DRIFTLESS_TOKEN;
const EXPECTED = Number(process.env.APPLICATIONS);
const NAMES = JSON.parse(process.env.LIVE_APPLICATIONS);
const LOADS = 5;
const QUERIES = ['app-0', 'app-00', 'app-01', 'app-1', 'app-99', 'zzz', 'app-5', 'app-42', 'app-7', 'app-0001'];

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

// In the page: change an input, then wait for the frame after the change to be painted.
async function timed(page, selector, value) {
  return page.evaluate(async ([selector, value]) => {
    const input = document.querySelector(selector);
    const started = performance.now();
    input.value = value;
    input.dispatchEvent(new Event(input.tagName === 'SELECT' ? 'change' : 'input'));
    await new Promise((resolve) => requestAnimationFrame(() => setTimeout(resolve, 0)));
    return performance.now() - started;
  }, [selector, value]);
}

async function main() {
  const browser = await chromium.launch({ executablePath: process.env.CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    context.setDefaultTimeout(60000);
    await context.addInitScript((token) => sessionStorage.setItem('driftless.token', token), TOKEN);
    const page = await context.newPage();
    const loads = [];
    for (let i = 0; i < LOADS; i += 1) {
      const started = Date.now();
      await page.goto(`${BASE}/ui/`);
      await page.waitForFunction((n) => document.querySelectorAll('#applications tbody tr').length === n, EXPECTED);
      loads.push(Date.now() - started);
    }
    const search = [];
    for (const query of QUERIES) search.push(await timed(page, '#search', query));
    await timed(page, '#search', '');
    const filter = [];
    for (const state of ['Synced', 'OutOfSync', '', 'Unknown', '']) filter.push(await timed(page, '#filter-sync', state));
    const live = [];
    for (const name of NAMES) {
      const started = Date.now();
      const answer = await fetch(`${BASE}/api/v1/applications/${name}/suspend`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
      if (answer.status !== 200) throw new Error(`suspend ${name}: ${answer.status}`);
      await page.waitForSelector(`tr[data-row="${name}"] .badge.flag`);
      live.push(Date.now() - started);
      await fetch(`${BASE}/api/v1/applications/${name}/resume`, { method: 'POST', headers: { Authorization: `Bearer ${TOKEN}` } });
    }
    console.log(JSON.stringify({ load: median(loads), search: median(search), filter: median(filter), live: median(live) }));
  } finally {
    await browser.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});

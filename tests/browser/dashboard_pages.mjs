// Drives Debian's chromium (headless, through playwright-core; no browser is downloaded)
// over a running courier-metrics dashboard and checks each page as a person would see it.
// Started by dashboard_browser_test (ctest -L browser), which runs the cluster around it.
//
//   node tests/browser/dashboard_pages.mjs --url http://127.0.0.1:9464 --out build/dashboard-screenshots \
//        --service echo --dead-service flaky [--chromium /usr/bin/chromium]
//
// Exit status 0 when every check held; 1 with the failed check on stderr. Writes
// overview.png, service.png, errors.png, replay.png and jobs.png into --out.
import { mkdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const require = createRequire(import.meta.url);
const { chromium } = require('playwright-core');

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' },
    out: { type: 'string' },
    service: { type: 'string', default: 'echo' },
    'dead-service': { type: 'string', default: 'flaky' },
    chromium: { type: 'string', default: process.env.COURIER_CHROMIUM ?? '/usr/bin/chromium' },
  },
});
if (!args.url || !args.out) {
  console.error('usage: dashboard_pages.mjs --url URL --out DIR [--service S] [--dead-service S]');
  process.exit(2);
}
mkdirSync(args.out, { recursive: true });

const step = (text) => console.log(`browser: ${text}`);
const browser = await chromium.launch({
  executablePath: args.chromium,
  headless: true,
  // Root in CI needs --no-sandbox; the rest keeps chromium off the (closed) network.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
});
const failures = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  page.on('pageerror', (error) => failures.push(`script error on ${page.url()}: ${error.message}`));
  page.on('console', (message) => {
    if (message.type() === 'error') console.log(`browser console: ${message.text()}`);
  });

  // 1. Overview: the service is listed with a rate above zero, and it updates by itself.
  step('overview');
  await page.goto(args.url + '/');
  const row = page.locator('#services tbody tr', { has: page.locator(`a:text-is("${args.service}")`) });
  await row.waitFor({ timeout: 15000 });
  await page.waitForFunction((name) => {
    for (const tr of document.querySelectorAll('#services tbody tr')) {
      const cells = [...tr.querySelectorAll('td')].map((td) => td.textContent.trim());
      if (cells[0] === name && Number(cells[4]) > 0) return true;
    }
    return false;
  }, args.service, { timeout: 30000 });
  await page.waitForFunction(() => document.querySelector('#brokers tbody')?.textContent.includes('up'), null, { timeout: 15000 });
  await page.locator('#live:not([hidden])').waitFor({ timeout: 5000 });
  await page.screenshot({ path: join(args.out, 'overview.png'), fullPage: true });
  const cells = await row.locator('td').allTextContents();
  step(`overview row: ${cells.join(' | ')}`);

  // 2. Service page: the charts are drawn (a canvas, and data points behind it).
  step('service page');
  await row.locator('a').click();
  await page.waitForURL(/\/service\?name=/);
  await page.locator('#chart-mean canvas').waitFor({ timeout: 15000 });
  await page.waitForFunction(() => ['chart-mean', 'chart-p99', 'chart-rate', 'chart-errors']
    .every((id) => Number(document.getElementById(id)?.dataset.points ?? 0) > 0
      && document.querySelector(`#${id} canvas`)), null, { timeout: 20000 });
  const points = await page.evaluate(() => Number(document.getElementById('chart-rate').dataset.points));
  if (!(points > 0)) throw new Error('the throughput chart has no data points');
  // Ten seconds of history make lines rather than dots.
  await page.waitForFunction(() => Number(document.getElementById('chart-rate').dataset.points) >= 20, null, { timeout: 30000 });
  if ((await page.locator('#workers tbody tr:not(.empty)').count()) < 1) throw new Error('no worker row on the service page');
  // The stage table names the design's groups, as `courier metrics --by group` does.
  await page.waitForFunction(() => [...document.querySelectorAll('#stages tbody tr')]
    .some((tr) => tr.querySelector('td')?.textContent.trim() === 'request'), null, { timeout: 15000 });
  await page.screenshot({ path: join(args.out, 'service.png'), fullPage: true });

  // 3. Errors: the provoked failures are listed, grouped and one by one; the dead letter
  // (older than the stream of schema failures) through the service filter.
  step('errors page');
  await page.goto(args.url + '/errors');
  await page.locator('#reports tbody tr', { hasText: 'invalid_payload' }).first().waitFor({ timeout: 15000 });
  await page.locator('#groups tbody tr', { hasText: args['dead-service'] }).first().waitFor({ timeout: 5000 });
  await page.screenshot({ path: join(args.out, 'errors.png'), fullPage: true });
  await page.fill('input[name="service"]', args['dead-service']);
  await page.click('form.filters button[type="submit"]');
  await page.waitForURL(/service=/);
  const dead = page.locator('#reports tbody tr', { hasText: args['dead-service'] }).filter({ hasText: 'attempts_exhausted' });
  await dead.first().waitFor({ timeout: 15000 });

  // 4. Its detail, and a replay confirmed in the dialog.
  step('replay');
  await dead.first().locator('td a').first().click();
  await page.locator('#detail').waitFor();
  let asked = '';
  page.once('dialog', async (dialog) => {
    asked = dialog.message();
    await dialog.accept();
  });
  await page.locator('button[data-action="replay"]').click();
  await page.waitForFunction(() => /replied|accepted|failed|no_answer|replay failed/
    .test(document.getElementById('action-result')?.textContent ?? ''), null, { timeout: 30000 });
  const outcome = await page.locator('#action-result').textContent();
  step(`replay answered: ${outcome}`);
  if (!asked.startsWith('Replay')) throw new Error(`the replay was not confirmed first (dialog: "${asked}")`);
  if (!outcome.includes('replied')) throw new Error(`the replay did not reach a worker: ${outcome}`);
  await page.screenshot({ path: join(args.out, 'replay.png'), fullPage: true });

  // 5. Jobs: the stored jobs are listed.
  step('jobs page');
  await page.goto(args.url + '/jobs?list=1&state=');
  await page.locator('#jobs tbody tr:not(.empty)').first().waitFor({ timeout: 15000 });
  await page.screenshot({ path: join(args.out, 'jobs.png'), fullPage: true });
} catch (error) {
  failures.push(error.message);
} finally {
  await browser.close();
}
if (failures.length > 0) {
  console.error(`browser: FAILED\n${failures.join('\n')}`);
  process.exit(1);
}
step('every check held');

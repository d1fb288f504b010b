// The dashboard in a real browser: Debian's headless Chromium, driven by
// puppeteer-core, against a real gradientd (--in-memory, ports 0) fed by
// gradctl with the lesson's revenue data. It checks what a person sees:
// the series in the list; the plotted lines are the server's fit (read from
// the chart's own datasets, compared with `gradctl fit --json`); the chart
// follows new points; no console errors; with an auth file the page shows a
// refusal without a token and works with #token=... Screenshots go to
// ARTIFACTS (build/tests/browser-artifacts).
//   node dashboard_test.mjs GRADIENTD GRADCTL DEMO_DIR ARTIFACTS
import { spawn, execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync, chmodSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import puppeteer from 'puppeteer-core';

const [gradientd, gradctl, demoDir, artifacts] = process.argv.slice(2);
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const WAIT_MS = 60_000;  // generous: a slow, loaded machine
const work = mkdtempSync(join(tmpdir(), 'gradientd-browser-'));
const servers = [];
let passed = 0;
let failed = 0;

function check(condition, what) {
  if (condition) { passed++; console.log('ok: ' + what); return; }
  failed++;
  console.log('FAILED: ' + what);
}

function near(a, b, relative) {
  return Math.abs(a - b) <= relative * Math.max(1, Math.abs(a), Math.abs(b));
}

// Starts gradientd and resolves with its protocol and HTTP addresses, read
// from its two "listening on" lines.
function startServer(extraArgs) {
  const child = spawn(gradientd, ['--in-memory', '--listen', '127.0.0.1:0',
    '--http-listen', '127.0.0.1:0', ...extraArgs], { stdio: ['ignore', 'pipe', 'pipe'] });
  servers.push(child);
  let stderr = '';
  child.stderr.on('data', (data) => { stderr += data; });
  return new Promise((resolve, reject) => {
    let out = '';
    const timer = setTimeout(() => reject(new Error('gradientd did not start: ' + stderr)), WAIT_MS);
    child.on('exit', (code) => reject(new Error('gradientd exited ' + code + ': ' + stderr)));
    child.stdout.on('data', (data) => {
      out += data;
      const protocol = /^gradientd listening on (\S+)$/m.exec(out);
      const http = /^gradientd http listening on (\S+)$/m.exec(out);
      if (protocol && http) {
        clearTimeout(timer);
        resolve({ protocol: protocol[1], http: 'http://' + http[1] });
      }
    });
  });
}

function gradctlRun(server, args, token) {
  const env = { ...process.env, GRADIENTD_SERVER: server };
  if (token) env.GRADIENTD_TOKEN = token;
  return execFileSync(gradctl, args, { env, encoding: 'utf8', timeout: WAIT_MS });
}

// The server's fit, asked over the protocol: {n, m, b} of the least-squares
// line and of the descent line.
function serverFit(server, series, token) {
  const reply = JSON.parse(gradctlRun(server, ['fit', '--series', series, '--json'], token));
  const fit = reply.fit || reply;
  const leastSquares = fit.least_squares || fit.leastSquares;
  return { n: Number(fit.n), leastSquares, descent: fit.descent };
}

// The chart's lines as drawn: slope and intercept from each line's two ends.
async function plottedLines(page) {
  return page.evaluate(() => {
    const datasets = window.gradientdDashboard.scatter.data.datasets;
    const line = (data) => {
      if (data.length !== 2) return null;
      const m = (data[1].y - data[0].y) / (data[1].x - data[0].x);
      return { m, b: data[0].y - m * data[0].x };
    };
    return { points: datasets[0].data.length, leastSquares: line(datasets[1].data),
             descent: line(datasets[2].data) };
  });
}

function linesMatch(plotted, fit) {
  return plotted.leastSquares && near(plotted.leastSquares.m, fit.leastSquares.m, 1e-9) &&
    near(plotted.leastSquares.b, fit.leastSquares.b, 1e-9) &&
    near(plotted.descent.m, Number(fit.descent.m || 0), 1e-9) &&
    near(plotted.descent.b, Number(fit.descent.b || 0), 1e-9);
}

async function newPage(browser, consoleErrors) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1100, height: 850 });
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => consoleErrors.push(String(error)));
  return page;
}

async function openServer(browser) {
  const server = await startServer([]);
  // No steps with batches, so the descent line (0, 0) differs from the
  // least-squares line until a step moves it.
  gradctlRun(server.protocol, ['configure', '--series', 'revenue', '--learning-rate', '0.01',
    '--steps-per-batch', '0']);
  gradctlRun(server.protocol, ['produce', join(demoDir, 'revenue.csv'), '--series', 'revenue',
    '--x-column', 'month', '--y-column', 'revenue']);
  const consoleErrors = [];
  const page = await newPage(browser, consoleErrors);

  await page.goto(server.http + '/');
  await page.waitForSelector('tr[data-series="revenue"]', { timeout: WAIT_MS });
  const row = await page.$eval('tr[data-series="revenue"]', (tr) => tr.innerText);
  check(/revenue\s+12\s/.test(row), 'the list shows revenue with its 12 points: ' + row);
  await page.screenshot({ path: join(artifacts, 'list.png') });

  // Pages of the list: p0, p1 | p2, revenue with two a page; the filter.
  for (const name of ['p0', 'p1', 'p2']) {
    gradctlRun(server.protocol, ['produce', join(demoDir, 'revenue.csv'), '--series', name,
      '--x-column', 'month', '--y-column', 'revenue']);
  }
  await page.goto(server.http + '/?page_size=2');
  await page.waitForSelector('tr[data-series="p1"]', { timeout: WAIT_MS });
  let shown = await page.$$eval('#series-rows tr', (trs) => trs.map((tr) => tr.dataset.series));
  check(JSON.stringify(shown) === '["p0","p1"]', 'the first page holds p0, p1: ' + shown);
  check(await page.$eval('#previous', (b) => b.disabled), 'no previous page on the first');
  await page.waitForFunction(() => !document.getElementById('next').disabled, { timeout: WAIT_MS });
  await page.click('#next');
  await page.waitForSelector('tr[data-series="revenue"]', { timeout: WAIT_MS });
  shown = await page.$$eval('#series-rows tr', (trs) => trs.map((tr) => tr.dataset.series));
  check(JSON.stringify(shown) === '["p2","revenue"]', 'the second page holds p2, revenue: ' + shown);
  check(await page.$eval('#page-info', (e) => e.textContent) === 'series 3–4', 'it says series 3–4');
  check(await page.$eval('#next', (b) => b.disabled), 'no next page after the last');
  await page.click('#previous');
  await page.waitForSelector('tr[data-series="p0"]', { timeout: WAIT_MS });
  check(true, 'previous goes back to the first page');
  await page.type('#prefix', 'rev');
  await page.click('#prefix-form button');
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('#series-rows tr')].map((tr) => tr.dataset.series);
    return rows.length === 1 && rows[0] === 'revenue';
  }, { timeout: WAIT_MS });
  check(true, 'the prefix filter shows only revenue');
  await page.goto(server.http + '/');
  await page.waitForSelector('tr[data-series="revenue"]', { timeout: WAIT_MS });

  await page.click('tr[data-series="revenue"] a');
  await page.waitForFunction(() => document.getElementById('scatter').dataset.n === '12',
                             { timeout: WAIT_MS });
  let fit = serverFit(server.protocol, 'revenue');
  let plotted = await plottedLines(page);
  check(plotted.points === 12, 'all 12 points are plotted');
  check(linesMatch(plotted, fit), 'the plotted lines are the server\'s fit ' +
        JSON.stringify({ plotted, fit }));
  check(plotted.descent.m === 0 && plotted.descent.b === 0 && plotted.leastSquares.m > 10,
        'the descent line is (0, 0), the least-squares line is not');

  // One step of the lesson's descent moves the model: the page follows.
  gradctlRun(server.protocol, ['step', '--series', 'revenue', '--iterations', '1']);
  await page.waitForFunction(() => Number(document.getElementById('scatter').dataset.descentM) > 0,
                             { timeout: WAIT_MS });
  fit = serverFit(server.protocol, 'revenue');
  check(linesMatch(await plottedLines(page), fit), 'after a step the descent line is the server\'s');
  await page.screenshot({ path: join(artifacts, 'series.png') });

  // Twelve more months on the same trend: the page follows.
  const more = ['month,revenue'];
  for (let month = 13; month <= 24; month++) more.push(month + ',' + (40 + 11.5 * month));
  writeFileSync(join(work, 'more.csv'), more.join('\n') + '\n');
  gradctlRun(server.protocol, ['produce', join(work, 'more.csv'), '--series', 'revenue',
    '--x-column', 'month', '--y-column', 'revenue']);
  await page.waitForFunction(() => document.getElementById('scatter').dataset.n === '24',
                             { timeout: WAIT_MS });
  // One more poll, so the lines are drawn from the same reply as the points.
  await page.waitForFunction(() => window.gradientdDashboard.scatter.data.datasets[0].data.length === 24,
                             { timeout: WAIT_MS });
  fit = serverFit(server.protocol, 'revenue');
  plotted = await plottedLines(page);
  check(plotted.points === 24, 'the chart updated to 24 points');
  check(linesMatch(plotted, fit), 'after the update the lines are the server\'s new fit ' +
        JSON.stringify({ plotted, fit }));
  await page.waitForFunction(
    () => window.gradientdDashboard.history.data.datasets[0].data.length >= 2, { timeout: WAIT_MS });
  check(true, 'the loss history has entries');
  await page.screenshot({ path: join(artifacts, 'series-updated.png') });
  check(consoleErrors.length === 0, 'no console errors: ' + JSON.stringify(consoleErrors));
  await page.close();
}

async function authServer(browser) {
  const token = 'browser-test-token-' + process.pid;
  const authFile = join(work, 'auth');
  writeFileSync(authFile, 'viewer produce,query ' + token + '\n');
  chmodSync(authFile, 0o600);
  const server = await startServer(['--auth-file', authFile]);
  gradctlRun(server.protocol, ['produce', join(demoDir, 'revenue.csv'), '--series', 'revenue',
    '--x-column', 'month', '--y-column', 'revenue'], token);

  const page = await newPage(browser, []);
  await page.goto(server.http + '/');
  await page.waitForSelector('#auth:not([hidden])', { timeout: WAIT_MS });
  const refusal = await page.$eval('#auth-message', (p) => p.innerText);
  check(/needs a token/.test(refusal), 'without a token the page says it is refused: ' + refusal);
  check((await page.$$('tr[data-series]')).length === 0, 'and shows no series');
  await page.screenshot({ path: join(artifacts, 'refused.png') });
  await page.close();

  const consoleErrors = [];
  const tokenPage = await newPage(browser, consoleErrors);
  await tokenPage.goto(server.http + '/series/revenue#token=' + encodeURIComponent(token));
  await tokenPage.waitForFunction(() => document.getElementById('scatter').dataset.n === '12',
                                  { timeout: WAIT_MS });
  check(!tokenPage.url().includes('token'), 'the token leaves the address bar');
  const fit = serverFit(server.protocol, 'revenue', token);
  check(linesMatch(await plottedLines(tokenPage), fit), 'with #token= the page draws the fit');
  await tokenPage.goto(server.http + '/');  // same tab: sessionStorage keeps the token
  await tokenPage.waitForSelector('tr[data-series="revenue"]', { timeout: WAIT_MS });
  check(true, 'the list works with the stored token');
  check(consoleErrors.length === 0, 'no console errors with a token: ' + JSON.stringify(consoleErrors));
  await tokenPage.close();
}

async function main() {
  mkdirSync(artifacts, { recursive: true });
  const browser = await puppeteer.launch({
    executablePath: CHROMIUM, headless: true,
    // --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
    args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--no-default-browser-check'],
  });
  try {
    await openServer(browser);
    await authServer(browser);
  } finally {
    await browser.close();
  }
}

try {
  await main();
} catch (error) {
  failed++;
  console.log('FAILED: ' + (error.stack || error));
} finally {
  for (const child of servers) child.kill('SIGTERM');
  rmSync(work, { recursive: true, force: true });
}
console.log(passed + ' passed, ' + failed + ' failed');
process.exit(failed === 0 ? 0 : 1);

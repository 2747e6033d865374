/// <reference lib="dom" />
import { existsSync, mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { PoolConnection } from '@accountdb/pool';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { signIn, startTestApp, type TestApp } from './helpers.js';

// Debian's chromium package (installed by .ci/run), driven by playwright-core: no browser download.
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
/** Where the screenshot goes (git-ignored). */
export const OUTPUT_DIR = process.env.TEST_OUTPUT_DIR ?? join(import.meta.dirname, '..', 'test-output');
// Without the browser the test is skipped locally (say so), never in CI.
const haveBrowser = existsSync(CHROMIUM) || process.env.CI === 'true';
if (!haveBrowser) console.warn(`dashboard test skipped: no ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`);

let t: TestApp;
let base: string;
let context: BrowserContext;
let page: Page;
let profile: string;
let adminToken: string;
const consoleErrors: string[] = [];
const foreignRequests: string[] = [];

beforeAll(async () => {
  if (!haveBrowser) return;
  t = await startTestApp({ maxConnections: 6 });
  base = await t.app.listen({ port: 0, host: '127.0.0.1' });
  adminToken = (await signIn(t.app, 'admin@example.com')).token;
  profile = mkdtempSync(join(tmpdir(), 'accountdb-chromium-'));
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 1800 },
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
  // The page must work offline: anything not served by the app is refused and recorded.
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(base) || url.startsWith('data:')) return route.continue();
    foreignRequests.push(url);
    return route.abort();
  });
  page = context.pages()[0] ?? (await context.newPage());
  page.on('console', (message) => {
    if (message.type() === 'error') consoleErrors.push(message.text());
  });
  page.on('pageerror', (err) => consoleErrors.push(String(err)));
}, 120_000);

afterAll(async () => {
  await context?.close();
  if (profile) rmSync(profile, { recursive: true, force: true });
  await t?.close();
});

async function json(path: string) {
  const response = await t.app.inject({ url: path, headers: { authorization: `Bearer ${adminToken}` } });
  expect(response.statusCode, path).toBe(200);
  return response.json();
}
const value = (selector: string) => page.locator(selector).getAttribute('data-value');
const cellValues = (table: string, column: number) =>
  page
    .locator(`#${table} tbody tr td:nth-child(${column})`)
    .evaluateAll((cells) => cells.map((c) => (c as HTMLElement).dataset.value ?? c.textContent));

test.skipIf(!haveBrowser)(
  "the dashboard renders without console errors, shows the JSON routes' numbers and updates the pool gauges",
  async () => {
    await page.goto(`${base}/dashboard`);
    await page.fill('#password', 'accountdb-demo');
    await page.click('#sign-in button[type=submit]');
    await page.waitForSelector('body[data-loaded="true"]', { timeout: 30_000 });
    await page.waitForFunction(() => Number(document.getElementById('pool-updates')?.textContent) >= 1);

    // The same numbers as the JSON routes the page reads.
    const [stats, migrations, plan, poolStats] = await Promise.all([
      json('/admin/stats'),
      json('/admin/migrations'),
      json('/admin/maintenance/plan'),
      json('/admin/pool'),
    ]);
    expect(await page.textContent('#db-name')).toBe(stats.size.database);
    const shownSize = Number(await value('#db-size'));
    expect(Math.abs(shownSize - stats.size.sizeBytes) / stats.size.sizeBytes).toBeLessThan(0.05);
    expect(await cellValues('largest-tables', 1)).toEqual(
      stats.tableSizes.slice(0, 10).map((x: { schema: string; name: string }) => `${x.schema}.${x.name}`),
    );
    expect(await cellValues('index-usage', 1)).toEqual(stats.indexUsage.map((i: { name: string }) => i.name));
    expect(await cellValues('migrations', 1)).toEqual(migrations.entries.map((e: { file: string }) => e.file));
    expect(Number(await value('#migrations-summary'))).toBe(
      migrations.entries.filter((e: { state: string }) => e.state === 'applied').length,
    );
    expect(Number(await value('#plan-summary'))).toBe(plan.steps.length);
    expect(Number(await value('#pool-max'))).toBe(poolStats.max);
    expect(await page.locator('#pool-chart canvas').count()).toBeGreaterThan(0);
    expect(await page.locator('#tables-chart canvas').count()).toBeGreaterThan(0);

    // Lease connections of the login pool: the gauges follow within a few updates.
    const leases: PoolConnection[] = [await t.pool.acquire(), await t.pool.acquire(), await t.pool.acquire()];
    try {
      await page.waitForFunction(() => Number(document.getElementById('pool-active')?.dataset.value) >= 3, undefined, {
        timeout: 15_000,
      });
    } finally {
      for (const lease of leases) lease.release();
    }
    await page.waitForFunction(() => Number(document.getElementById('pool-active')?.dataset.value) === 0, undefined, {
      timeout: 15_000,
    });

    await page.click('#dry-run');
    await page.waitForFunction(() => (document.getElementById('dry-run-result')?.textContent ?? '') !== '');

    mkdirSync(OUTPUT_DIR, { recursive: true });
    const screenshot = join(OUTPUT_DIR, 'dashboard.png');
    await page.screenshot({ path: screenshot, fullPage: true });
    expect(existsSync(screenshot)).toBe(true);
    expect(consoleErrors).toEqual([]);
    expect(foreignRequests).toEqual([]);
  },
);

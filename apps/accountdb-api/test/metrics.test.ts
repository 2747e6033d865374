import { createPool, type Pool } from '@accountdb/pool';
import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { AccountDbApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { appOn } from './helpers.js';

let db: TestDatabase;
let pool: Pool;
let app: AccountDbApp;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = createPool({ ...db, sslmode: 'disable', maxConnections: 3, minConnections: 0 });
  app = await appOn(pool, { logger: createLogger({ level: 'silent' }) });
});
afterAll(async () => {
  await app.close();
  await pool.close();
  await db.drop();
});

/** Every sample of the exposition as `name{labels}` → value; fails on a line that is not valid. */
async function scrape(): Promise<{ type: string | undefined; samples: Map<string, number>; text: string }> {
  const response = await app.inject({ method: 'GET', url: '/metrics' });
  expect(response.statusCode).toBe(200);
  const samples = new Map<string, number>();
  for (const line of response.body.split('\n')) {
    if (line === '' || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
    const match = /^([a-z_]+(?:\{[a-z_]+="[^"]*"(?:,[a-z_]+="[^"]*")*\})?) (-?[0-9.e+-]+)$/.exec(line);
    expect(match, `not a Prometheus sample: ${line}`).not.toBeNull();
    samples.set(match?.[1] ?? '', Number(match?.[2]));
  }
  return { type: response.headers['content-type'] as string | undefined, samples, text: response.body };
}

test('GET /metrics exposes the pool collector in the Prometheus text format, and the numbers move with the pool', async () => {
  const before = await scrape();
  expect(before.type).toBe('text/plain; version=0.0.4; charset=utf-8');
  expect(before.text).toMatch(/^# HELP accountdb_pool_connections /m);
  expect(before.text).toMatch(/^# TYPE accountdb_pool_acquires_total counter$/m);
  expect(before.text).toMatch(/^# TYPE accountdb_pool_hold_seconds histogram$/m);
  expect(before.samples.get('accountdb_pool_max_connections')).toBe(3);

  for (let i = 0; i < 5; i++) await pool.query('select 1');
  const lease = await pool.acquire();
  const during = await scrape();
  expect(during.samples.get('accountdb_pool_connections{state="active"}')).toBe(1);
  lease.destroy();
  const after = await scrape();

  const delta = (name: string) => (after.samples.get(name) ?? Number.NaN) - (before.samples.get(name) ?? Number.NaN);
  expect(delta('accountdb_pool_acquires_total')).toBe(6);
  expect(delta('accountdb_pool_connections_destroyed_total{reason="released"}')).toBe(1);
  expect(after.samples.get('accountdb_pool_connections{state="active"}')).toBe(0);
  // Histograms: cumulative since the pool was created, so a scrape's deltas are exact.
  expect(delta('accountdb_pool_hold_seconds_count')).toBe(6);
  expect(delta('accountdb_pool_acquire_wait_seconds_bucket{le="+Inf"}')).toBe(6);
  expect(after.samples.get('accountdb_pool_hold_seconds_sum')).toBeGreaterThan(0);
  // Every counter and gauge is there, and nothing carries connection details.
  for (const name of [
    'accountdb_pool_waiting_acquires',
    'accountdb_pool_connections_created_total',
    'accountdb_pool_acquire_timeouts_total',
  ]) {
    expect(after.samples.has(name)).toBe(true);
  }
  expect(after.text).not.toContain(db.password);
  expect(after.text).not.toContain(String(db.port));
});

test('http_request_duration_seconds is a histogram labelled by route pattern, not by raw URL', async () => {
  await app.inject({ url: '/accounts/12345' }); // 401, no token: still observed, as its pattern
  const { samples, text } = await scrape();
  expect(text).toMatch(/^# TYPE http_request_duration_seconds histogram$/m);
  expect(
    samples.get('http_request_duration_seconds_count{method="GET",route="/metrics",status_code="200"}'),
  ).toBeGreaterThanOrEqual(1);
  expect(samples.get('http_request_duration_seconds_count{method="GET",route="/accounts/:id",status_code="401"}')).toBe(1);
  expect(text).not.toContain('12345');
});

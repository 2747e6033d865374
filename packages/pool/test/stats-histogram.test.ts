import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, expect, test, vi } from 'vitest';
import { createPool, LATENCY_BUCKETS_SECONDS, type LatencyHistogram, type Pool } from '../src/index.js';

let db: TestDatabase;
const pools: Pool[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  vi.restoreAllMocks();
  await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 2000 })));
});
afterAll(() => db.drop());

function makePool(): Pool {
  const pool = createPool({ ...db, sslmode: 'disable', minConnections: 0, maxConnections: 2 });
  pools.push(pool);
  return pool;
}

/** Samples above `seconds` (a bucket bound). */
function above(h: LatencyHistogram, seconds: number): number {
  const i = h.buckets.indexOf(seconds);
  expect(i).toBeGreaterThanOrEqual(0);
  return h.count - (h.counts[i] as number);
}

// Float64Array#sort is %TypedArray%.prototype.sort: what the percentile summaries use.
const typedArraySort = () => vi.spyOn(Object.getPrototypeOf(Float64Array.prototype) as { sort: () => unknown }, 'sort');

test('bucket bounds ascend, in seconds, and every histogram reports them', () => {
  expect(LATENCY_BUCKETS_SECONDS.length).toBeGreaterThan(10);
  for (let i = 1; i < LATENCY_BUCKETS_SECONDS.length; i++)
    expect(LATENCY_BUCKETS_SECONDS[i]).toBeGreaterThan(LATENCY_BUCKETS_SECONDS[i - 1] as number);
  const stats = makePool().stats();
  for (const h of [stats.acquireWaitSeconds, stats.holdSeconds])
    expect(h).toEqual({ buckets: LATENCY_BUCKETS_SECONDS, counts: LATENCY_BUCKETS_SECONDS.map(() => 0), sum: 0, count: 0 });
});

test('every acquire and release lands in its histogram: counts are cumulative, count and sum cover every sample', async () => {
  const pool = makePool();
  for (let i = 0; i < 20; i++) await pool.query('select 1');
  // One lease held across a 60 ms sleep: at least one hold sample above the 50 ms bound.
  await pool.withConnection((c) => c.query('select pg_sleep(0.06)'));
  const { acquireWaitSeconds: wait, holdSeconds: hold, acquires } = pool.stats();
  expect(wait.count).toBe(acquires);
  expect(hold.count).toBe(21);
  for (const h of [wait, hold]) {
    expect(h.counts.length).toBe(h.buckets.length);
    for (let i = 1; i < h.counts.length; i++) expect(h.counts[i]).toBeGreaterThanOrEqual(h.counts[i - 1] as number);
    expect(h.counts.at(-1)).toBeLessThanOrEqual(h.count);
    expect(h.sum).toBeGreaterThan(0);
  }
  expect(above(hold, 0.05)).toBeGreaterThanOrEqual(1);
  expect(hold.sum).toBeGreaterThanOrEqual(0.06);
  // The snapshot is a copy: later samples do not change it.
  await pool.query('select 1');
  expect(hold.count).toBe(21);
  expect(pool.stats().holdSeconds.count).toBe(22);
});

test('stats() sorts nothing; the percentiles are computed once, when first read, and still serialise', async () => {
  const pool = makePool();
  for (let i = 0; i < 10; i++) await pool.query('select 1');
  const sort = typedArraySort();
  const stats = pool.stats();
  expect(sort).not.toHaveBeenCalled();
  expect(stats.acquireWaitSeconds.count).toBe(10);
  expect(sort).not.toHaveBeenCalled();
  expect(stats.holdMs).toMatchObject({ count: 10 });
  expect(stats.holdMs.p99).toBeGreaterThan(0);
  expect(sort).toHaveBeenCalledTimes(1);
  expect(stats.holdMs.p50).toBeLessThanOrEqual(stats.holdMs.max);
  expect(sort).toHaveBeenCalledTimes(1);
  const json = JSON.parse(JSON.stringify(stats)) as { acquireWaitMs: { count: number }; holdSeconds: { count: number } };
  expect(json.acquireWaitMs.count).toBe(10);
  expect(json.holdSeconds.count).toBe(10);
});

import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { register as globalRegistry, Registry } from 'prom-client';
import { afterAll, afterEach, beforeAll, describe, expect, test, vi } from 'vitest';
import { ConfigError, createPool, LATENCY_BUCKETS_SECONDS, type Pool } from '../src/index.js';
import { createPoolCollector } from '../src/prometheus.js';

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

function makePool(maxConnections = 3): Pool {
  const pool = createPool({ ...db, sslmode: 'disable', minConnections: 0, maxConnections });
  pools.push(pool);
  return pool;
}

interface Scrape {
  text: string;
  types: Map<string, string>;
  samples: Map<string, number>;
}

/** The text exposition as `# TYPE` lines and `name{labels}` → value; fails on a line that is not a sample. */
async function scrape(registry: Registry): Promise<Scrape> {
  const text = await registry.metrics();
  const types = new Map<string, string>();
  const samples = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('# HELP ')) continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1] as string, type[2] as string);
      continue;
    }
    const sample = /^([a-z_]+(?:\{[a-z_]+="[^"]*"(?:,[a-z_]+="[^"]*")*\})?) (\S+)$/.exec(line);
    expect(sample, `not a Prometheus sample: ${line}`).not.toBeNull();
    samples.set(sample?.[1] as string, Number(sample?.[2]));
  }
  return { text, types, samples };
}

describe('createPoolCollector', () => {
  test('snake_case families with Prometheus types, read from pool.stats() at scrape time', async () => {
    const registry = new Registry();
    const pool = makePool();
    createPoolCollector(pool, { registry });
    for (let i = 0; i < 5; i++) await pool.query('select 1');
    const lease = await pool.acquire();
    const { types, samples, text } = await scrape(registry);
    expect(Object.fromEntries(types)).toEqual({
      accountdb_pool_connections: 'gauge',
      accountdb_pool_waiting_acquires: 'gauge',
      accountdb_pool_max_connections: 'gauge',
      accountdb_pool_min_connections: 'gauge',
      accountdb_pool_acquires_total: 'counter',
      accountdb_pool_acquire_timeouts_total: 'counter',
      accountdb_pool_connections_created_total: 'counter',
      accountdb_pool_connect_failures_total: 'counter',
      accountdb_pool_connections_destroyed_total: 'counter',
      accountdb_pool_retries_total: 'counter',
      accountdb_pool_leaks_detected_total: 'counter',
      accountdb_pool_acquire_wait_seconds: 'histogram',
      accountdb_pool_hold_seconds: 'histogram',
    });
    expect(samples.get('accountdb_pool_connections{state="active"}')).toBe(1);
    expect(samples.get('accountdb_pool_connections{state="idle"}')).toBe(0);
    expect(samples.get('accountdb_pool_connections{state="pending"}')).toBe(0);
    expect(samples.get('accountdb_pool_max_connections')).toBe(3);
    expect(samples.get('accountdb_pool_acquires_total')).toBe(6);
    expect(samples.get('accountdb_pool_connections_created_total')).toBe(1);
    expect(samples.get('accountdb_pool_connections_destroyed_total{reason="not_idle"}')).toBe(0);
    expect(samples.get('accountdb_pool_acquire_wait_seconds_count')).toBe(6);
    expect(samples.get('accountdb_pool_hold_seconds_count')).toBe(5);
    expect(text).not.toContain(db.password);
    lease.destroy();
    await expect
      .poll(async () => (await scrape(registry)).samples.get('accountdb_pool_connections_destroyed_total{reason="released"}'))
      .toBe(1);
  });

  test("histogram buckets, sum and count are the pool's own numbers", async () => {
    const registry = new Registry();
    const pool = makePool();
    createPoolCollector(pool, { registry });
    for (let i = 0; i < 12; i++) await pool.query('select 1');
    await pool.withConnection((c) => c.query('select pg_sleep(0.03)'));
    const { samples } = await scrape(registry);
    const stats = pool.stats();
    for (const [family, h] of [
      ['accountdb_pool_acquire_wait_seconds', stats.acquireWaitSeconds],
      ['accountdb_pool_hold_seconds', stats.holdSeconds],
    ] as const) {
      LATENCY_BUCKETS_SECONDS.forEach((le, i) => {
        expect(samples.get(`${family}_bucket{le="${le}"}`), `${family} le=${le}`).toBe(h.counts[i]);
      });
      expect(samples.get(`${family}_bucket{le="+Inf"}`)).toBe(h.count);
      expect(samples.get(`${family}_count`)).toBe(h.count);
      expect(samples.get(`${family}_sum`)).toBeCloseTo(h.sum, 9);
    }
    expect(samples.get('accountdb_pool_hold_seconds_sum')).toBeGreaterThanOrEqual(0.03);
  });

  test('two pools in one registry, told apart by their labels; remove() takes a pool out, the last one the metrics', async () => {
    const registry = new Registry();
    const primary = makePool(4);
    const replica = makePool(2);
    const a = createPoolCollector(primary, { registry, labels: { pool: 'primary' } });
    const b = createPoolCollector(replica, { registry, labels: { pool: 'replica' } });
    await primary.query('select 1');
    await primary.query('select 1');
    await replica.query('select 1');
    const { samples, types } = await scrape(registry);
    expect(types.get('accountdb_pool_hold_seconds')).toBe('histogram');
    expect(samples.get('accountdb_pool_max_connections{pool="primary"}')).toBe(4);
    expect(samples.get('accountdb_pool_max_connections{pool="replica"}')).toBe(2);
    expect(samples.get('accountdb_pool_acquires_total{pool="primary"}')).toBe(2);
    expect(samples.get('accountdb_pool_acquires_total{pool="replica"}')).toBe(1);
    expect(samples.get('accountdb_pool_connections{pool="replica",state="idle"}')).toBe(1);
    expect(samples.get('accountdb_pool_hold_seconds_bucket{pool="primary",le="+Inf"}')).toBe(2);
    a.remove();
    const after = await scrape(registry);
    expect(after.samples.has('accountdb_pool_acquires_total{pool="primary"}')).toBe(false);
    expect(after.samples.get('accountdb_pool_acquires_total{pool="replica"}')).toBe(1);
    b.remove();
    expect(await registry.metrics()).toBe('\n');
    expect(registry.getMetricsAsArray()).toEqual([]);
  });

  test('bad prefixes and labels are a ConfigError naming each problem; so are labels another pool already has', () => {
    const registry = new Registry();
    const pool = makePool();
    let error: unknown;
    try {
      createPoolCollector(pool, { registry, prefix: 'bad-prefix', labels: { '1x': 'a', le: 'b', __x: 'c' } });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems.map((p) => p.variable)).toEqual(['prefix', 'labels.1x', 'labels.le', 'labels.__x']);
    expect(registry.getMetricsAsArray()).toEqual([]);

    createPoolCollector(pool, { registry, labels: { pool: 'a' } });
    expect(() => createPoolCollector(makePool(), { registry, labels: { pool: 'a' } })).toThrow(ConfigError);
    expect(() => createPoolCollector(makePool(), { registry, labels: { name: 'b' } })).toThrow(/same label names/);
    // Another prefix is another set of families.
    createPoolCollector(pool, { registry, prefix: 'app_db_', labels: { pool: 'a' } });
    expect(registry.getSingleMetric('app_db_hold_seconds')).toBeDefined();
  });

  test("without a registry it registers with prom-client's global one", async () => {
    const pool = makePool();
    const collector = createPoolCollector(pool);
    try {
      expect(await globalRegistry.metrics()).toMatch(/^# TYPE accountdb_pool_hold_seconds histogram$/m);
    } finally {
      collector.remove();
    }
    expect(globalRegistry.getSingleMetric('accountdb_pool_hold_seconds')).toBeUndefined();
  });

  test('OpenMetrics output keeps counters valid (prom-client renames them to *_total itself)', async () => {
    const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
    registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
    const pool = makePool();
    createPoolCollector(pool, { registry });
    await pool.query('select 1');
    const text = await registry.metrics();
    expect(text).toMatch(/^# TYPE accountdb_pool_acquires counter$/m);
    expect(text).toMatch(/^accountdb_pool_acquires_total 1$/m);
    expect(text).toMatch(/^accountdb_pool_hold_seconds_count 1$/m);
    expect(text.endsWith('# EOF\n')).toBe(true);
  });
});

describe('scrape cost', () => {
  test('a scrape does the same work after 20 acquires as after 3,000: one stats() per pool, no sort, same output size', async () => {
    const registry = new Registry();
    const pool = makePool(2);
    createPoolCollector(pool, { registry });
    for (let i = 0; i < 20; i++) await pool.withConnection(() => undefined);

    const stats = vi.spyOn(pool, 'stats');
    // Float64Array#sort (%TypedArray%.prototype.sort) is what the recent-percentile summaries use.
    const sort = vi.spyOn(Object.getPrototypeOf(Float64Array.prototype) as { sort: () => unknown }, 'sort');
    const few = await scrape(registry);
    const work = () => ({ stats: stats.mock.calls.length, sorts: sort.mock.calls.length });
    const fewWork = work();
    expect(fewWork).toEqual({ stats: 1, sorts: 0 });

    for (let i = 0; i < 3_000; i++) await pool.withConnection(() => undefined);
    stats.mockClear();
    sort.mockClear();
    const many = await scrape(registry);
    expect(work()).toEqual(fewWork);
    expect(many.samples.size).toBe(few.samples.size);
    expect(many.samples.get('accountdb_pool_acquire_wait_seconds_count')).toBe(3_020);
  });
});

import { createTestDatabase, TcpProxy, type TestDatabase } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  AccountDbError,
  ConnectionLostError,
  createPool,
  isTransientConnectionError,
  loadConfig,
  type Pool,
  type PoolConfigInput,
  resolvePoolConfig,
} from '../src/index.js';

// A silent network: the proxy's black hole drops every byte both ways and keeps the sockets open,
// as a dead link or a dropped NAT entry does. Bounds below are the configured ones; the test margins
// (+2 s) are generous allowances for a loaded machine, not timing measurements.
const MARGIN_MS = 2000;

let db: TestDatabase;
const pools: Pool[] = [];
const proxies: TcpProxy[] = [];
let appSeq = 0;

beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(() => db.drop());

async function proxied(
  overrides: PoolConfigInput = {},
): Promise<{ pool: Pool; proxy: TcpProxy; app: string; peak: () => number }> {
  const proxy = await TcpProxy.start(db.host, db.port);
  proxies.push(proxy);
  const app = `partition-${process.pid}-${++appSeq}`;
  const pool = createPool({
    host: '127.0.0.1',
    port: proxy.port,
    database: db.database,
    user: db.user,
    password: db.password,
    sslmode: 'disable',
    applicationName: app,
    minConnections: 0,
    maxConnections: 4,
    connectionTimeoutMs: 1000,
    acquireTimeoutMs: 2000,
    queryTimeoutMs: 1000,
    ...overrides,
  });
  pools.push(pool);
  let peak = 0;
  const sample = () => {
    peak = Math.max(peak, pool.stats().total + pool.stats().pending);
  };
  pool.on('connect', sample);
  pool.on('acquire', sample);
  return { pool, proxy, app, peak: () => peak };
}

/** Backends on the server opened by the pool named `app` (through the proxy, so not the harness's). */
async function backendsOf(app: string): Promise<number> {
  const { rows } = await db.admin('select count(*)::int as n from pg_stat_activity where application_name = $1', [app]);
  return rows[0].n as number;
}

/** Settle `promise` into { error, ms } with its handler attached at once. */
function timed(promise: Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  return promise.then(
    () => ({ error: undefined, ms: performance.now() - started }),
    (error: unknown) => ({ error, ms: performance.now() - started }),
  );
}

describe('configuration', () => {
  test('DB_QUERY_TIMEOUT_MS, and a bound derived from the statement timeout when none is given', () => {
    expect(loadConfig({}).queryTimeoutMs).toBe(0);
    expect(loadConfig({ DB_QUERY_TIMEOUT_MS: '1500' }).queryTimeoutMs).toBe(1500);
    expect(loadConfig({ DB_STATEMENT_TIMEOUT_MS: '30000' }).queryTimeoutMs).toBe(40_000);
    expect(loadConfig({ DB_STATEMENT_TIMEOUT_MS: '30000', DB_CONNECTION_TIMEOUT: '2' }).queryTimeoutMs).toBe(32_000);
    expect(loadConfig({ DB_STATEMENT_TIMEOUT_MS: '30000', DB_QUERY_TIMEOUT_MS: '0' }).queryTimeoutMs).toBe(0);
    expect(resolvePoolConfig({ statementTimeoutMs: 500, connectionTimeoutMs: 1000 }).queryTimeoutMs).toBe(1500);
    expect(() => loadConfig({ DB_QUERY_TIMEOUT_MS: 'soon' })).toThrow(/DB_QUERY_TIMEOUT_MS/);
  });

  test('keepalive idle from DB_KEEPALIVE_IDLE, PGKEEPALIVESIDLE and the URL (seconds, as libpq)', () => {
    expect(loadConfig({}).keepAliveIdleMs).toBe(10_000);
    expect(loadConfig({ PGKEEPALIVESIDLE: '30' }).keepAliveIdleMs).toBe(30_000);
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h/d?keepalives_idle=45', PGKEEPALIVESIDLE: '30' }).keepAliveIdleMs).toBe(
      45_000,
    );
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h/d?keepalives_idle=45', DB_KEEPALIVE_IDLE: '5' }).keepAliveIdleMs).toBe(
      5000,
    );
    expect(loadConfig({ DATABASE_URL: 'postgres://u@h/d?keepalives=0' }).keepAlive).toBe(false);
    expect(() => loadConfig({ DB_KEEPALIVE_IDLE: '-1' })).toThrow(/DB_KEEPALIVE_IDLE/);
    expect(() => loadConfig({ DATABASE_URL: 'postgres://u@h/d?keepalives=maybe' })).toThrow(/keepalives/);
  });
});

describe('partition and heal', () => {
  test('a query in flight when the network goes silent ends with ConnectionLostError near its bound; the connection is not reused', async () => {
    const { pool, proxy } = await proxied();
    const lease = await pool.acquire();
    const pid = lease.processId;
    const running = timed(lease.query('select pg_sleep(3)'));
    await new Promise((r) => setTimeout(r, 100));
    proxy.mode = { kind: 'blackhole' };
    const { error, ms } = await running;
    expect(error).toBeInstanceOf(ConnectionLostError);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST', reason: 'timeout', timeoutMs: 1000 });
    expect(isTransientConnectionError(error)).toBe(true);
    expect((error as Error).message).not.toContain(db.password);
    expect(ms).toBeGreaterThanOrEqual(900);
    expect(ms).toBeLessThan(1000 + MARGIN_MS);
    lease.release();
    expect(pool.stats().destroyed.queryTimeout).toBe(1);
    proxy.mode = { kind: 'pass' };
    const next = await pool.withConnection(async (c) => c.processId);
    expect(next).not.toBe(pid);
  });

  test('pool.query on a connection opened before the partition: typed error within its bound, then served again after healing', async () => {
    // validateAfterIdleMs is long, so the idle connection goes out unchecked and the query itself meets the silence.
    const { pool, proxy, app, peak } = await proxied({ validateAfterIdleMs: 60_000 });
    await Promise.all([pool.query('select 1'), pool.query('select 2')]);
    expect(pool.stats().idle).toBeGreaterThan(0);
    proxy.mode = { kind: 'blackhole' };
    const outcomes = await Promise.all(Array.from({ length: 8 }, () => timed(pool.query('select 1'))));
    for (const { error, ms } of outcomes) {
      expect(AccountDbError.is(error)).toBe(true);
      expect(isTransientConnectionError(error) || (error as AccountDbError).code === 'POOL_TIMEOUT').toBe(true);
      // The longest bound a call can meet: the acquire timeout (2 s), or a query bound after an acquire.
      expect(ms).toBeLessThan(2000 + 1000 + MARGIN_MS);
    }
    expect(outcomes.some((o) => o.error instanceof ConnectionLostError)).toBe(true);
    proxy.mode = { kind: 'pass' };
    const healed = performance.now();
    await expect
      .poll(
        () =>
          pool.query('select 1 as ok').then(
            (r) => r.rows[0]?.ok,
            () => 0,
          ),
        { timeout: 5000, interval: 100 },
      )
      .toBe(1);
    const heal = performance.now() - healed;
    expect(heal).toBeLessThan(5000);
    expect(peak()).toBeLessThanOrEqual(4);
    // Every backend of ours on the server is one the pool knows about.
    await expect.poll(() => backendsOf(app), { timeout: 10_000 }).toBe(pool.stats().total);
    console.info(
      `[partition] ${JSON.stringify({ calls: outcomes.map((o) => [(o.error as AccountDbError).code, Math.round(o.ms)]), healMs: Math.round(heal) })}`,
    );
  });

  test('idle connections during a partition are caught by validation within the connect timeout', async () => {
    const { pool, proxy } = await proxied({ validateAfterIdleMs: 0, queryTimeoutMs: 0 });
    await pool.query('select 1');
    proxy.mode = { kind: 'blackhole' };
    const { error, ms } = await timed(pool.query('select 1'));
    // Validation fails at the connect timeout (1 s); the replacement connect then meets the black hole too.
    expect(AccountDbError.is(error)).toBe(true);
    expect(ms).toBeLessThan(2000 + MARGIN_MS);
    expect(pool.stats().destroyed.validation).toBe(1);
  });

  test('a partition during connect: the connect ends at the connect timeout with DatabaseUnavailableError', async () => {
    const { pool, proxy } = await proxied({ acquireTimeoutMs: 10_000 });
    proxy.mode = { kind: 'blackhole' };
    const { error, ms } = await timed(pool.query('select 1'));
    expect(error).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
    expect(ms).toBeLessThan(1000 + MARGIN_MS);
    expect(pool.stats().total).toBe(0);
  });

  test('a connect whose authentication reply arrives after the connect timeout is closed and leaves no backend behind', async () => {
    const { pool, proxy, app } = await proxied({ connectionTimeoutMs: 1000 });
    proxy.mode = { kind: 'latency', ms: 1500 };
    const { error } = await timed(pool.query('select 1'));
    expect(error).toMatchObject({ code: 'DATABASE_UNAVAILABLE' });
    // The late reply lands on a socket we already closed: nothing adopted, nothing counted.
    await new Promise((r) => setTimeout(r, 2000));
    expect(pool.stats()).toMatchObject({ total: 0, connects: 0 });
    await expect.poll(() => backendsOf(app), { timeout: 10_000 }).toBe(0);
  });

  test('silence that is ours is not a timeout: an idle lease, an open transaction, a SQL cursor between fetches', async () => {
    const { pool } = await proxied({ queryTimeoutMs: 300 });
    await pool.withConnection(async (c) => {
      await c.query('begin');
      await new Promise((r) => setTimeout(r, 800));
      await c.query('select 1');
      // Between fetches the server waits for us; its silence is by design.
      await c.query('declare cur cursor for select g from generate_series(1, 10) g');
      await c.query('fetch 2 from cur');
      await new Promise((r) => setTimeout(r, 800));
      expect((await c.query('fetch 2 from cur')).rows).toEqual([{ g: 3 }, { g: 4 }]);
      await c.query('commit');
    });
    // A statement that runs longer than the bound while the server is alive is bounded too (documented).
    const { error } = await timed(pool.query('select pg_sleep(1)'));
    expect(error).toBeInstanceOf(ConnectionLostError);
    expect(pool.stats().destroyed.queryTimeout).toBe(1);
  });
});

import { PostgresServer, TcpProxy, testPoolConfig } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  createPool,
  DatabaseUnavailableError,
  DEFAULTS,
  isTransientConnectionError,
  type Logger,
  type Pool,
  type PoolConfigInput,
  PoolTimeoutError,
} from '../src/index.js';

// A dedicated server this file may stop and start; nothing else uses it.
let server: PostgresServer;
const pools: Pool[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  server = await PostgresServer.create();
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
  await server.start();
});
afterAll(() => server.destroy());

function makePool(overrides: PoolConfigInput = {}, logger?: Logger): Pool {
  const settings = { maxConnections: DEFAULTS.maxConnections, connectionTimeoutMs: 5000, retryIntervalMs: 100, ...overrides };
  const pool = createPool(testPoolConfig(server.fields(), settings), logger ? { logger } : {});
  pools.push(pool);
  return pool;
}

function warnCounter(): { logger: Logger; warnings: string[] } {
  const warnings: string[] = [];
  const make = (): Logger => ({
    trace: () => {},
    debug: () => {},
    info: () => {},
    warn: (_o: unknown, msg?: unknown) => {
      warnings.push(String(msg));
    },
    error: () => {},
    child: () => make(),
  });
  return { logger: make(), warnings };
}

describe('server down', () => {
  test('stopped server → DatabaseUnavailableError (not PoolTimeoutError), naming host:port', async () => {
    const pool = makePool({ acquireTimeoutMs: 30_000 });
    await pool.query('select 1');
    await server.stop();
    const started = Date.now();
    const err = await pool.query('select 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(err).not.toBeInstanceOf(PoolTimeoutError);
    expect((err as Error).message).toContain(`${server.host}:${server.port}`);
    expect((err as Error).message).not.toContain(server.password);
    expect(isTransientConnectionError(err)).toBe(true);
    // Failed fast: well before the 30 s acquire timeout (a generous bound, not a timing measurement).
    expect(Date.now() - started).toBeLessThan(15_000);
    expect(pool.stats().connectFailures).toBeGreaterThan(0);
  });

  test('restarted server: withConnectionRetry backs off and succeeds', async () => {
    const { logger, warnings } = warnCounter();
    const pool = makePool({ maxRetries: 10, retryIntervalMs: 200, maxRetryIntervalMs: 1000 }, logger);
    await pool.query('select 1');
    await server.stop();
    const restart = new Promise<void>((resolve, reject) => {
      setTimeout(() => server.start().then(resolve, reject), 800);
    });
    const value = await pool.withConnectionRetry(async (c) => (await c.query<{ n: number }>('select 42 as n')).rows[0]?.n);
    await restart;
    expect(value).toBe(42);
    expect(pool.stats().retries).toBeGreaterThan(0);
    expect(warnings.filter((w) => w.includes('retrying')).length).toBe(pool.stats().retries);
  });

  test('retries give up after maxRetries with the last error', async () => {
    const pool = makePool({ maxRetries: 2, retryIntervalMs: 10 });
    await server.stop();
    await expect(pool.withConnectionRetry((c) => c.query('select 1'))).rejects.toBeInstanceOf(DatabaseUnavailableError);
    expect(pool.stats().retries).toBe(2);
  });

  test('authentication failures are never retried', async () => {
    const pool = makePool({ password: 'wrong-password', maxRetries: 5, retryIntervalMs: 10 });
    const err = await pool.withConnectionRetry((c) => c.query('select 1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error & { cause: { code: string } }).cause.code).toBe('28P01');
    expect(pool.stats().retries).toBe(0);
    expect((err as Error).message).not.toContain('wrong-password');
  });

  test('SQL errors are never retried', async () => {
    const pool = makePool({ maxRetries: 5, retryIntervalMs: 10 });
    let calls = 0;
    await expect(
      pool.withConnectionRetry(async (c) => {
        calls++;
        await c.query('select * from missing_table');
      }),
    ).rejects.toMatchObject({ code: 'UNDEFINED_TABLE', sqlstate: '42P01' });
    expect(calls).toBe(1);
  });

  test('min-idle warm-up backs off while the server is down, then fills up', async () => {
    await server.stop();
    const pool = makePool({ minConnections: 2, maxConnections: 4, retryIntervalMs: 50, maxRetryIntervalMs: 200 });
    await expect.poll(() => pool.stats().connectFailures, { timeout: 10_000 }).toBeGreaterThan(1);
    await server.start();
    await expect.poll(() => pool.stats().idle, { timeout: 10_000 }).toBe(2);
  });

  test('connections broken by a server restart are replaced transparently', async () => {
    const pool = makePool({ minConnections: 2, maxConnections: 2 });
    await expect.poll(() => pool.stats().idle, { timeout: 10_000 }).toBe(2);
    await server.stop();
    await server.start();
    const value = await pool.withConnectionRetry(async (c) => (await c.query<{ n: number }>('select 7 as n')).rows[0]?.n);
    expect(value).toBe(7);
  });
});

describe('network faults through a TCP proxy', () => {
  async function proxied(overrides: PoolConfigInput = {}): Promise<{ pool: Pool; proxy: TcpProxy }> {
    const proxy = await TcpProxy.start(server.host, server.port);
    proxies.push(proxy);
    return { pool: makePool({ host: '127.0.0.1', port: proxy.port, ...overrides }), proxy };
  }

  test('black-holed host → DatabaseUnavailableError within the connect timeout, distinct from exhaustion', async () => {
    const { pool, proxy } = await proxied({ connectionTimeoutMs: 500, acquireTimeoutMs: 20_000 });
    proxy.mode = { kind: 'blackhole' };
    const err = await pool.query('select 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect(String((err as Error).message)).toMatch(/timeout/i);
  });

  test('acquire timeout shorter than a hanging connect: PoolTimeoutError says connecting is what hangs', async () => {
    const { pool, proxy } = await proxied({ connectionTimeoutMs: 10_000, acquireTimeoutMs: 300 });
    proxy.mode = { kind: 'blackhole' };
    const err = await pool.query('select 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PoolTimeoutError);
    expect(err).toMatchObject({ active: 0, connecting: 1 });
    expect((err as Error).message).toMatch(/waiting for a new connection to open/);
    expect((err as Error).message).not.toMatch(/exhausted/);
  });

  test('connections reset by the network are detected and replaced', async () => {
    const { pool, proxy } = await proxied({ maxConnections: 2 });
    await pool.query('select 1');
    proxy.resetAll();
    await expect.poll(() => pool.stats().destroyed.broken).toBe(1);
    expect((await pool.query<{ n: number }>('select 1 as n')).rows[0]?.n).toBe(1);
  });

  test('resets on connect are retried with backoff until the network heals', async () => {
    const { pool, proxy } = await proxied({ maxRetries: 8, retryIntervalMs: 50, maxRetryIntervalMs: 200 });
    // The network heals after three reset connects (not after a fixed time: full-jitter sleeps can all
    // come out short, and eight retries would then run out before a timer fired).
    proxy.mode = { kind: 'reset', times: 3 };
    expect(await pool.withConnectionRetry(async (c) => (await c.query<{ n: number }>('select 3 as n')).rows[0]?.n)).toBe(3);
    expect(pool.stats().retries).toBe(3);
    expect(proxy.accepted).toBe(4);
  });

  test('latency slows queries but changes no result', async () => {
    const { pool, proxy } = await proxied();
    proxy.mode = { kind: 'latency', ms: 20 };
    const { rows } = await pool.query<{ s: string }>("select string_agg(g::text, ',') as s from generate_series(1,5) g");
    expect(rows[0]?.s).toBe('1,2,3,4,5');
  });
});

describe('multiple hosts', () => {
  let readOnly: PostgresServer;
  beforeAll(async () => {
    readOnly = await PostgresServer.create({ password: server.password, settings: { default_transaction_read_only: 'on' } });
  });
  afterAll(() => readOnly.destroy());

  const hostsOf = (...servers: PostgresServer[]) => servers.map((s) => ({ host: s.host, port: s.port }));
  test('fails over past a dead host to the next one', async () => {
    const pool = makePool({ hosts: [{ host: '127.0.0.1', port: 1 }, ...hostsOf(server)] });
    expect((await pool.query<{ n: number }>('select 1 as n')).rows[0]?.n).toBe(1);
  });

  test('target_session_attrs=read-write skips a read-only server', async () => {
    const pool = makePool({ hosts: hostsOf(readOnly, server), targetSessionAttrs: 'read-write' });
    const { rows } = await pool.query<{ port: number }>("select current_setting('port')::int as port");
    expect(rows[0]?.port).toBe(server.port);
  });

  test('target_session_attrs=read-only picks the read-only server', async () => {
    const pool = makePool({ hosts: hostsOf(server, readOnly), targetSessionAttrs: 'read-only' });
    const { rows } = await pool.query<{ port: number }>("select current_setting('port')::int as port");
    expect(rows[0]?.port).toBe(readOnly.port);
  });

  test('no acceptable host → DatabaseUnavailableError listing the hosts', async () => {
    const pool = makePool({ hosts: hostsOf(server), targetSessionAttrs: 'standby' });
    const err = await pool.query('select 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toMatch(/not standby/);
  });
});

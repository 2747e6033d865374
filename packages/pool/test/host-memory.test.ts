import { createTestDatabase, freePort, TcpProxy, type TestDatabase, testPoolConfig } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  ConfigError,
  createPool,
  loadConfig,
  type Pool,
  type PoolConfigInput,
  type PoolConnection,
  resolvePoolConfig,
} from '../src/index.js';

// Host memory: a host that could not be reached is skipped by later connects for hostRecheckMs, and a
// down host is probed by one connect at a time. The "down" host here is a loopback port nothing listens on.
let db: TestDatabase;
let deadPort: number;
const pools: Pool[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  deadPort = await freePort();
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ timeoutMs: 1000 })));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(() => db?.drop());

function makePool(firstHostPort: number, overrides: PoolConfigInput): Pool {
  const pool = createPool(
    testPoolConfig(db, {
      hosts: [
        { host: '127.0.0.1', port: firstHostPort },
        { host: db.host, port: db.port },
      ],
      connectionTimeoutMs: 5000,
      ...overrides,
    }),
  );
  pools.push(pool);
  return pool;
}

/** Lease `n` connections at once (each a new connect when the pool is empty), then release them all. */
async function leaseTogether(pool: Pool, n: number): Promise<void> {
  const leases: PoolConnection[] = await Promise.all(Array.from({ length: n }, () => pool.acquire()));
  for (const lease of leases) lease.release();
}

describe('host memory', () => {
  test('a host that refused a connect is skipped by later connects until hostRecheckMs has passed', async () => {
    const pool = makePool(deadPort, { hostRecheckMs: 600_000, maxConnections: 4 });
    await pool.query('select 1');
    expect(pool.stats().connectFailures).toBe(1);
    await leaseTogether(pool, 4); // three more connects; none tries the down host
    expect(pool.stats()).toMatchObject({ connects: 4, connectFailures: 1 });
  });

  test('with hostRecheckMs 0 every connect tries every host, as libpq does', async () => {
    const pool = makePool(deadPort, { hostRecheckMs: 0, maxConnections: 4 });
    await leaseTogether(pool, 4);
    expect(pool.stats()).toMatchObject({ connects: 4, connectFailures: 4 });
  });

  test('a down host whose recheck is due is probed by one connect at a time; the others skip it', async () => {
    // hostRecheckMs 1: the down host is due again at every connect, so only the probing rule holds others back.
    const pool = makePool(deadPort, { hostRecheckMs: 1, maxConnections: 5 });
    await pool.query('select 1'); // the first connect finds the host down
    expect(pool.stats().connectFailures).toBe(1);
    await new Promise((resolve) => setTimeout(resolve, 5)); // past its 1 ms recheck
    await leaseTogether(pool, 5); // four new connects start in the same tick
    expect(pool.stats()).toMatchObject({ connects: 5, connectFailures: 2 });
  });

  test('an idle connection to a host a connect found down is destroyed at hand-out (reason hostDown)', async () => {
    const proxy = await TcpProxy.start(db.host, db.port);
    proxies.push(proxy);
    const pool = makePool(proxy.port, { hostRecheckMs: 600_000, maxConnections: 2, connectionTimeoutMs: 500 });
    const viaProxy = await pool.acquire();
    const ports = async (lease: PoolConnection) =>
      (await lease.query<{ port: number }>('select inet_server_port() as port')).rows[0]?.port;
    proxy.mode = { kind: 'blackhole' };
    // A second connect: the proxy host times out (marked down), the pool lands on the direct host.
    const direct = await pool.acquire();
    expect(await ports(direct)).toBe(db.port);
    expect(pool.stats().connectFailures).toBe(1);
    direct.release();
    viaProxy.release(); // parked last, handed out first
    const lease = await pool.acquire();
    expect(lease.processId).not.toBe(viaProxy.processId);
    expect(await ports(lease)).toBe(db.port);
    lease.release();
    expect(pool.stats().destroyed.hostDown).toBe(1);
  });
});

describe('hostRecheckMs and maxReplicationLagMs options', () => {
  const problemsOf = (fn: () => unknown) => {
    try {
      fn();
    } catch (err) {
      expect(err).toBeInstanceOf(ConfigError);
      return (err as ConfigError).problems.map((p) => `${p.variable}: ${p.message}`);
    }
    throw new Error('no ConfigError');
  };

  test('defaults: a 10 s recheck, no lag limit', () => {
    const config = resolvePoolConfig({});
    expect(config.hostRecheckMs).toBe(10_000);
    expect('maxReplicationLagMs' in config).toBe(false);
  });

  test('from the environment, every bad value in one ConfigError beside the others', () => {
    expect(loadConfig({ DB_HOST_RECHECK_MS: '250', DB_MAX_REPLICATION_LAG_MS: '0' })).toMatchObject({
      hostRecheckMs: 250,
      maxReplicationLagMs: 0,
    });
    expect(
      problemsOf(() => loadConfig({ DB_HOST_RECHECK_MS: 'soon', DB_MAX_REPLICATION_LAG_MS: '-5', DB_MAX_CONNECTIONS: 'x' })),
    ).toEqual([
      'DB_HOST_RECHECK_MS: must be a non-negative integer, got text (4 characters)',
      'DB_MAX_REPLICATION_LAG_MS: must be a non-negative integer, got a negative number (text)',
      'DB_MAX_CONNECTIONS: must be a non-negative integer, got text (1 character)',
    ]);
  });

  test('in code: wrong values and a near-miss name', () => {
    expect(problemsOf(() => resolvePoolConfig({ hostRecheckMs: -1, maxReplicationLagMs: 1.5 }))).toEqual([
      'hostRecheckMs: must be an integer >= 0, got a smaller one',
      'maxReplicationLagMs: must be an integer >= 0, got a fractional number',
    ]);
    expect(problemsOf(() => resolvePoolConfig({ maxReplicationLag: 100 } as PoolConfigInput))).toEqual([
      'maxReplicationLag: is not an option; did you mean maxReplicationLagMs?',
    ]);
  });
});

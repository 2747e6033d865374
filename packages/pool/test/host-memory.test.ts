import { createTestDatabase, freePort, TcpProxy, type TestDatabase, testPoolConfig } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createPool, type Pool, type PoolConfigInput, type PoolConnection } from '../src/index.js';

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

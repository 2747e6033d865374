import { backendState, createTestDatabase, TcpProxy, type TestDatabase, waitFor } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { cancelRequestBytes } from '../src/cancel.js';
import { AccountDbError, createPool, DatabaseUnavailableError, type Pool, type PoolConfigInput } from '../src/index.js';

let db: TestDatabase;
const pools: Pool[] = [];
const proxies: TcpProxy[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(() => db.drop());

function makePool(overrides: PoolConfigInput = {}): Pool {
  const pool = createPool({ ...db, sslmode: 'disable', minConnections: 0, ...overrides });
  pools.push(pool);
  return pool;
}

const stateOf = (pid: number) => backendState(db.admin, pid);

describe('lease.cancel()', () => {
  test('the CancelRequest is the 16 bytes the protocol defines', () => {
    expect(cancelRequestBytes(0x01020304, -2).toString('hex')).toBe('0000001004d2162e01020304fffffffe');
  });

  test('on an idle lease it is harmless: the next statement runs and the connection is reused', async () => {
    const pool = makePool({ maxConnections: 1 });
    const lease = await pool.acquire();
    await lease.cancel();
    expect((await lease.query<{ n: number }>('select 1 as n')).rows[0]?.n).toBe(1);
    lease.release();
    expect((await pool.query<{ n: number }>('select 2 as n')).rows[0]?.n).toBe(2);
    expect(pool.stats().connects).toBe(1);
  });

  test('cancels a running statement (57014); the connection is idle and reusable afterwards', async () => {
    const pool = makePool({ maxConnections: 1 });
    const lease = await pool.acquire();
    const running = lease.query('select pg_sleep(60)').then(
      () => undefined,
      (e: unknown) => e,
    );
    await waitFor(async () => (await stateOf(lease.processId)) === 'active');
    await lease.cancel();
    const err = await running;
    expect(err).toMatchObject({ code: 'QUERY_CANCELED', sqlstate: '57014' });
    await waitFor(async () => (await stateOf(lease.processId)) === 'idle');
    expect((await lease.query<{ n: number }>('select 3 as n')).rows[0]?.n).toBe(3);
    expect(lease.client.getTransactionStatus()).toBe('I');
    lease.release();
    expect((await pool.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid).toBe(lease.processId);
  });

  test('is bounded by connectionTimeoutMs when new connections are black-holed', async () => {
    const proxy = await TcpProxy.start(db.host, db.port);
    proxies.push(proxy);
    const pool = makePool({ host: '127.0.0.1', port: proxy.port, connectionTimeoutMs: 1000, maxConnections: 1 });
    const lease = await pool.acquire();
    proxy.mode = { kind: 'blackhole' };
    const started = Date.now();
    const err = await lease.cancel().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(DatabaseUnavailableError);
    expect((err as Error).message).toContain(`127.0.0.1:${proxy.port}`);
    // Generous: the bound is 1 s; without it the request would wait for TCP to give up (minutes).
    expect(Date.now() - started).toBeLessThan(15_000);
    lease.destroy();
  });

  test('after release it refuses at once instead of cancelling the next borrower', async () => {
    const pool = makePool({ maxConnections: 1 });
    const lease = await pool.acquire();
    lease.release();
    const err = await lease.cancel().then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(AccountDbError.is(err)).toBe(true);
    expect((err as AccountDbError).code).toBe('LEASE_RELEASED');
  });
});

import { createPool, type Pool, type PoolConnection } from '@accountdb/pool';
import {
  backendState,
  createTestDatabase,
  PgBouncer,
  PostgresServer,
  type TestDatabase,
  testPoolConfig,
  waitFor,
} from '@accountdb/test-db';
import pg from 'pg';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { execute, QueryCanceledError, StatementTimeoutError } from '../src/index.js';
import { rejectionOf } from './helpers.js';

// Cancellation is the protocol's CancelRequest (pool `lease.cancel()`), not a second login running
// pg_cancel_backend: these tests show it where a login cannot work.

const pools: Pool[] = [];
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
});

/** The error of `promise`, or undefined: handled at once, so it may be awaited later. */
function settled(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    () => undefined,
    (e: unknown) => e,
  );
}

describe('with the server at max_connections', () => {
  const SLOTS = 5;
  let server: PostgresServer;
  beforeAll(async () => {
    server = await PostgresServer.create({
      settings: { max_connections: SLOTS, superuser_reserved_connections: 0 },
    });
  });
  afterAll(() => server?.destroy());

  async function fillAllSlots(): Promise<{ pool: Pool; leases: PoolConnection[] }> {
    const pool = createPool(testPoolConfig(server.fields(), { maxConnections: SLOTS }));
    pools.push(pool);
    const leases: PoolConnection[] = [];
    for (let i = 0; i < SLOTS; i++) leases.push(await pool.acquire());
    return { pool, leases };
  }

  /** What a second login (the old way to cancel) gets now. */
  async function loginError(): Promise<unknown> {
    const client = new pg.Client({ connectionString: server.url(), connectionTimeoutMillis: 10_000 });
    client.on('error', () => {});
    return rejectionOf(async () => {
      await client.connect();
      await client.end();
    });
  }

  const stateOf = (monitor: PoolConnection, pid: number) => backendState((text, values) => monitor.query(text, values), pid);

  test('an AbortSignal cancels the statement although no login is possible', async () => {
    const { leases } = await fillAllSlots();
    const [sleeper, monitor] = leases as [PoolConnection, PoolConnection];
    expect((await loginError()) as { code?: unknown }).toMatchObject({ code: '53300' });
    const controller = new AbortController();
    const running = settled(execute(sleeper, 'select pg_sleep(60)', [], { signal: controller.signal }));
    await waitFor(async () => (await stateOf(monitor, sleeper.processId)) === 'active');
    // At this moment a pg_cancel_backend session could not log in.
    expect((await loginError()) as { code?: unknown }).toMatchObject({ code: '53300' });
    controller.abort();
    const err = await running;
    expect(err).toBeInstanceOf(QueryCanceledError);
    await waitFor(async () => (await stateOf(monitor, sleeper.processId)) === 'idle');
    expect(await execute(sleeper, 'select 1 as n', [], { fetch: 'one' })).toEqual({ n: 1 });
    for (const lease of leases) lease.release();
  });

  test('timeoutMs cancels the statement although no login is possible', async () => {
    const { pool, leases } = await fillAllSlots();
    const [sleeper, monitor] = leases as [PoolConnection, PoolConnection];
    expect((await loginError()) as { code?: unknown }).toMatchObject({ code: '53300' });
    const err = await rejectionOf(execute(sleeper, 'select pg_sleep(60)', [], { timeoutMs: 200 }));
    expect(err).toBeInstanceOf(StatementTimeoutError);
    await waitFor(async () => (await stateOf(monitor, sleeper.processId)) === 'idle');
    for (const lease of leases) lease.release();
    // Nothing was destroyed: the canceled connection went back to the pool healthy.
    expect(pool.stats().destroyed.released).toBe(0);
    expect(await execute(pool, 'select 2 as n', [], { fetch: 'one' })).toEqual({ n: 2 });
  });
});

describe('through PgBouncer in transaction mode', () => {
  let db: TestDatabase;
  let bouncer: PgBouncer;
  let app: { user: string; password: string };
  beforeAll(async () => {
    db = await createTestDatabase();
    app = await db.createRestrictedRole();
    bouncer = await PgBouncer.start({ targetHost: db.host, targetPort: db.port, users: [app] });
  });
  afterAll(async () => {
    await bouncer?.stop();
    await db?.drop();
  });

  function bouncerPool(): Pool {
    const pool = createPool(testPoolConfig({ ...db, ...app, host: bouncer.host, port: bouncer.port }, { maxConnections: 2 }));
    pools.push(pool);
    return pool;
  }

  /** Server backends of our role running `query` (seen directly on PostgreSQL, not through the bouncer). */
  async function serverBackends(query: string): Promise<number> {
    const { rows } = await db.admin(
      "select count(*)::int as n from pg_stat_activity where usename = $1 and state = 'active' and query = $2",
      [app.user, query],
    );
    return rows[0]?.n as number;
  }

  test('cancels the right server backend and leaves another client’s statement running', async () => {
    const pool = bouncerPool();
    const other = bouncerPool();
    const lease = await pool.acquire();
    // PgBouncer hands out its own key: the pid a client sees is not a server backend, so
    // pg_cancel_backend(lease.processId) could not have worked.
    const serverPid = (await lease.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]?.pid;
    expect(serverPid).not.toBe(lease.processId);

    // The other client waits on an advisory lock we hold: active on the server until we let go.
    const holder = new pg.Client({ host: db.host, port: db.port, database: db.database, user: db.user, password: db.password });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock(4242)');
      const blocked = 'select pg_advisory_xact_lock(4242), 7 as n';
      const otherResult = other.query<{ n: number }>(blocked).then(
        (r) => ({ n: r.rows[0]?.n }),
        (e: unknown) => ({ error: e }),
      );
      const sleep = 'select pg_sleep(60)';
      const controller = new AbortController();
      const running = settled(execute(lease, sleep, [], { signal: controller.signal }));
      await waitFor(async () => (await serverBackends(sleep)) === 1 && (await serverBackends(blocked)) === 1);

      controller.abort();
      expect(await running).toBeInstanceOf(QueryCanceledError);
      await waitFor(async () => (await serverBackends(sleep)) === 0);
      // The other client's statement was not touched: still waiting, then it completes.
      expect(await serverBackends(blocked)).toBe(1);
      await holder.query('select pg_advisory_unlock(4242)');
      expect(await otherResult).toEqual({ n: 7 });
      // The canceled client's connection works on.
      expect(await execute(lease, 'select 3 as n', [], { fetch: 'one' })).toEqual({ n: 3 });
      lease.release();
    } finally {
      await holder.end();
    }
  });
});

import { createTestDatabase, TcpProxy, type TestDatabase, waitFor } from '@accountdb/test-db';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  execute,
  executeInTransaction,
  QueryArgumentError,
  QueryCanceledError,
  StatementTimeoutError,
  sql,
  transaction,
  UniqueViolationError,
} from '../src/index.js';
import { poolFor, rejectionOf } from './helpers.js';

let db: TestDatabase;
let pool: ReturnType<typeof poolFor>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin(
    'create table items (id int primary key, name text not null); insert into items select g, $$item $$ || g from generate_series(1, 500) g',
  );
  pool = poolFor(db);
});
afterAll(async () => {
  await pool.close();
  await db.drop();
});

async function activeSleeps(): Promise<number> {
  const { rows } = await db.admin(
    "select count(*)::int as n from pg_stat_activity where datname = current_database() and state = 'active' and query like 'select pg_sleep%'",
  );
  return rows[0]?.n;
}

describe('fetch modes', () => {
  test('all (default), one, many with count, none', async () => {
    const all = await execute<{ id: number }>(pool, 'select id from items where id <= $1 order by id', [3]);
    expect(all.map((r) => r.id)).toEqual([1, 2, 3]);
    const one = await execute<{ name: string }>(pool, 'select name from items where id = $1', [42], { fetch: 'one' });
    expect(one).toEqual({ name: 'item 42' });
    const none = await execute(pool, 'select name from items where id = $1', [-1], { fetch: 'one' });
    expect(none).toBeUndefined();
    const many = await execute<{ id: number }>(pool, 'select id from items order by id', [], { fetch: 'many', count: 7 });
    expect(many.map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7]);
    const manyDefault = await execute(pool, sql`select id from items order by id`, { fetch: 'many' });
    expect(manyDefault).toHaveLength(100);
    const affected = await execute(pool, 'update items set name = name where id <= $1', [10], { fetch: 'none' });
    expect(affected).toBe(10);
    expect(pool.stats().active).toBe(0);
  });

  test('works the same on a leased connection, which stays leased', async () => {
    const lease = await pool.acquire();
    try {
      const rows = await execute<{ pid: number }>(lease, 'select pg_backend_pid() as pid');
      expect(rows[0]?.pid).toBe(lease.processId);
      const many = await execute(lease, 'select id from items order by id', undefined, { fetch: 'many', count: 3 });
      expect(many).toHaveLength(3);
      expect(pool.stats().active).toBe(1);
      // Still usable: the portal behind fetch 'many' was closed.
      expect(await execute(lease, 'select 1 as x', [], { fetch: 'one' })).toEqual({ x: 1 });
      const { rows: cursors } = await lease.query('select count(*)::int as n from pg_cursors');
      expect(cursors[0]?.n).toBe(0);
    } finally {
      lease.release();
    }
  });

  test('executeInTransaction commits, and rolls back on error', async () => {
    const row = await executeInTransaction<{ id: number }>(pool, 'insert into items values ($1, $2) returning id', [1001, 'x'], {
      fetch: 'one',
      isolation: 'serializable',
    });
    expect(row?.id).toBe(1001);
    const err = await rejectionOf(executeInTransaction(pool, 'insert into items values ($1, $2), ($1, $2)', [1002, 'y']));
    expect(err).toBeInstanceOf(UniqueViolationError);
    expect(await execute(pool, 'select 1 from items where id = $1', [1002])).toEqual([]);
    expect(pool.stats().active).toBe(0);
  });
});

describe('bad arguments are typed errors before any SQL', () => {
  // A closed pool fails any attempt to run SQL with PoolClosedError, so QueryArgumentError proves none ran.
  const closed = () => {
    const p = poolFor(db);
    void p.close();
    return p;
  };

  test.each([
    ['unknown fetch mode', (p: ReturnType<typeof poolFor>) => execute(p, 'select 1', [], { fetch: 'some' as 'one' })],
    ['count without many', (p: ReturnType<typeof poolFor>) => execute(p, 'select 1', [], { count: 3 } as never)],
    ['zero count', (p: ReturnType<typeof poolFor>) => execute(p, 'select 1', [], { fetch: 'many', count: 0 })],
    ['fractional count', (p: ReturnType<typeof poolFor>) => execute(p, 'select 1', [], { fetch: 'many', count: 1.5 })],
    ['negative timeout', (p: ReturnType<typeof poolFor>) => execute(p, 'select 1', [], { timeoutMs: -1 })],
    ['NaN timeout', (p: ReturnType<typeof poolFor>) => execute(p, 'select 1', [], { timeoutMs: Number.NaN })],
    ['non-signal', (p: ReturnType<typeof poolFor>) => execute(p, 'select 1', [], { signal: {} as AbortSignal })],
    ['params not an array', (p: ReturnType<typeof poolFor>) => execute(p, 'select $1', 'x' as never)],
    ['options after a string query', (p: ReturnType<typeof poolFor>) => execute(p, 'select 1', { fetch: 'one' } as never)],
    ['query not text', (p: ReturnType<typeof poolFor>) => execute(p, 42 as never)],
    ['not a database', () => execute({} as never, 'select 1')],
    [
      'bad isolation',
      (p: ReturnType<typeof poolFor>) => executeInTransaction(p, 'select 1', [], { isolation: 'chaos' as never }),
    ],
  ])('%s', async (_name, call) => {
    const err = await rejectionOf(call(closed()));
    expect(err).toBeInstanceOf(QueryArgumentError);
    expect((err as QueryArgumentError).code).toBe('INVALID_ARGUMENT');
  });
});

describe('cancellation', () => {
  test('timeoutMs cancels pg_sleep on the server; the pool stays healthy', async () => {
    const before = pool.stats();
    const err = await rejectionOf(execute(pool, 'select pg_sleep(30)', [], { timeoutMs: 100 }));
    expect(err).toBeInstanceOf(StatementTimeoutError);
    expect((err as StatementTimeoutError).sqlstate).toBe('57014');
    expect((err as Error).message).toContain('100 ms');
    expect(await activeSleeps()).toBe(0);
    const after = pool.stats();
    expect(after.active).toBe(0);
    // The connection was reused, not destroyed.
    expect(after.total).toBeGreaterThanOrEqual(1);
    const destroyed = (s: typeof before) => Object.values(s.destroyed).reduce((a, b) => a + b, 0);
    expect(destroyed(after)).toBe(destroyed(before));
    expect(await execute(pool, 'select 2 as n', [], { fetch: 'one' })).toEqual({ n: 2 });
  });

  test('an AbortSignal cancels on the server and the lease is usable afterwards', async () => {
    const lease = await pool.acquire();
    try {
      const controller = new AbortController();
      const running = rejectionOf(execute(lease, 'select pg_sleep(30)', [], { signal: controller.signal }));
      await waitFor(async () => (await activeSleeps()) > 0);
      controller.abort();
      const err = await running;
      expect(err).toBeInstanceOf(QueryCanceledError);
      expect(await activeSleeps()).toBe(0);
      expect(lease.client.getTransactionStatus()).toBe('I');
      expect(await execute(lease, 'select 3 as n', [], { fetch: 'one' })).toEqual({ n: 3 });
    } finally {
      lease.release();
    }
  });

  test('an already-aborted signal throws QueryCanceledError without running anything', async () => {
    const controller = new AbortController();
    controller.abort();
    const err = await rejectionOf(execute(pool, 'select pg_sleep(30)', [], { signal: controller.signal }));
    expect(err).toBeInstanceOf(QueryCanceledError);
    expect(await activeSleeps()).toBe(0);
  });

  test('a timeout that does not fire leaves the result alone; fetch many honours it too', async () => {
    expect(await execute(pool, 'select 1 as n', [], { fetch: 'one', timeoutMs: 10_000 })).toEqual({ n: 1 });
    const err = await rejectionOf(
      execute(pool, 'select pg_sleep(30), g from generate_series(1, 3) g', [], { fetch: 'many', count: 2, timeoutMs: 100 }),
    );
    expect(err).toBeInstanceOf(StatementTimeoutError);
    // A portal read fails on ErrorResponse; the server's ReadyForQuery follows a round trip later (pg-cursor
    // sends Sync after the error), and the pool takes the connection back only then. Await that return.
    await expect.poll(() => pool.stats().active).toBe(0);
    expect(await execute(pool, 'select count(*)::int as n from items', [], { fetch: 'one' })).toEqual({ n: 501 });
  });

  test('a timeout inside a transaction aborts it; the transaction rolls back and the pool is healthy', async () => {
    const err = await rejectionOf(
      transaction(pool, async (tx) => {
        await execute(tx, 'insert into items values ($1, $2)', [2001, 'z']);
        await execute(tx, 'select pg_sleep(30)', [], { timeoutMs: 50 });
      }),
    );
    expect(err).toBeInstanceOf(StatementTimeoutError);
    expect(await execute(pool, 'select 1 from items where id = $1', [2001])).toEqual([]);
    expect(pool.stats().active).toBe(0);
  });

  test('when the cancel cannot reach the server, the connection is destroyed after the grace period', async () => {
    const proxy = await TcpProxy.start(db.host, db.port);
    const viaProxy = poolFor({ ...db, host: '127.0.0.1', port: proxy.port });
    try {
      const lease = await viaProxy.acquire();
      const controller = new AbortController();
      const running = rejectionOf(execute(lease, 'select pg_sleep(2)', [], { signal: controller.signal }));
      await waitFor(async () => (await activeSleeps()) > 0);
      // The network goes dark: neither the statement's result nor a cancel request gets through.
      proxy.mode = { kind: 'blackhole' };
      controller.abort();
      const err = await running;
      expect(err).toBeInstanceOf(QueryCanceledError);
      expect((err as Error).message).toContain('connection was destroyed');
      expect(viaProxy.stats().destroyed.released).toBe(1);
      expect(viaProxy.stats().active).toBe(0);
      lease.release(); // already gone: a no-op
      proxy.mode = { kind: 'pass' };
      expect(await execute(viaProxy, 'select 4 as n', [], { fetch: 'one' })).toEqual({ n: 4 });
    } finally {
      await viaProxy.close({ force: true });
      await proxy.close();
    }
  });
});

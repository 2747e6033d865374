import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { execute, QueryArgumentError, QueryCanceledError, SqlError, sql, stream, transaction } from '../src/index.js';
import { poolFor, rejectionOf } from './helpers.js';

let db: TestDatabase;
// One connection, so "the same session" is guaranteed when checking pg_cursors afterwards.
let pool: ReturnType<typeof poolFor>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin('create table big as select g as id, md5(g::text) as payload from generate_series(1, 100000) g');
  pool = poolFor(db, { maxConnections: 1 });
});
afterAll(async () => {
  await pool.close();
  await db.drop();
});

async function backendState(pid: number): Promise<string | undefined> {
  const { rows } = await db.admin('select state from pg_stat_activity where pid = $1', [pid]);
  return rows[0]?.state;
}

test('streams every row in order, in batches', async () => {
  let n = 0;
  let last = 0;
  for await (const row of stream<{ id: number }>(pool, 'select id from big where id > $1 order by id', [90000], {
    batchSize: 333,
  })) {
    n++;
    expect(row.id).toBe(last + (last === 0 ? 90001 : 1));
    last = row.id;
  }
  expect(n).toBe(10000);
  expect(pool.stats().active).toBe(0);
});

test('breaking out of 100,000 rows closes the cursor and releases the connection', async () => {
  const pidRow = await execute<{ pid: number }>(pool, 'select pg_backend_pid() as pid', [], { fetch: 'one' });
  const pid = pidRow?.pid as number;
  let seen = 0;
  let stateDuring: string | undefined;
  for await (const row of stream<{ id: number; payload: string }>(pool, sql`select id, payload from big order by id`, undefined, {
    batchSize: 500,
  })) {
    seen++;
    if (seen === 1) {
      // While iterating, the portal holds the session in an open (implicit) transaction.
      stateDuring = await backendState(pid);
      expect(pool.stats().active).toBe(1);
    }
    if (row.id === 1234) break;
  }
  expect(seen).toBe(1234);
  expect(stateDuring).not.toBe('idle');
  expect(pool.stats().active).toBe(0);
  expect(await backendState(pid)).toBe('idle');
  // pg_cursors is per session: ask on the same (only) connection.
  const lease = await pool.acquire();
  try {
    expect(lease.processId).toBe(pid);
    const { rows } = await lease.query('select count(*)::int as n from pg_cursors');
    expect(rows[0]?.n).toBe(0);
    // Positive control: the same check does see an open cursor.
    await lease.query('begin');
    await lease.query('declare probe cursor for select 1');
    const { rows: open } = await lease.query('select count(*)::int as n from pg_cursors');
    expect(open[0]?.n).toBe(1);
    await lease.query('rollback');
  } finally {
    lease.release();
  }
  expect(pool.stats().active).toBe(0);
});

test('inside a transaction: break closes the portal, the transaction carries on, the lease stays leased', async () => {
  const count = await transaction(pool, async (tx) => {
    for await (const row of stream<{ id: number }>(tx, 'select id from big order by id')) {
      if (row.id === 10) break;
    }
    const { rows } = await tx.query('select count(*)::int as n from pg_cursors');
    expect(tx.client.getTransactionStatus()).toBe('T');
    expect(pool.stats().active).toBe(1);
    return rows[0]?.n as number;
  });
  expect(count).toBe(0);
  expect(pool.stats().active).toBe(0);
});

test('an error mid-stream is typed, and the connection is released and healthy', async () => {
  let seen = 0;
  const err = await rejectionOf(async () => {
    for await (const _ of stream(pool, 'select 1 / (g - 2500) as x from generate_series(1, 5000) g', [], { batchSize: 100 }))
      seen++;
  });
  expect(err).toBeInstanceOf(SqlError);
  expect((err as SqlError).sqlstate).toBe('22012');
  expect(seen).toBe(2400);
  // The only connection comes back (acquire would time out otherwise), healthy and without a cursor.
  const lease = await pool.acquire();
  try {
    expect((await lease.query('select count(*)::int as n from pg_cursors')).rows[0]?.n).toBe(0);
    expect(lease.client.getTransactionStatus()).toBe('I');
  } finally {
    lease.release();
  }
  expect(pool.stats().active).toBe(0);
  expect(await execute(pool, 'select count(*)::int as n from big', [], { fetch: 'one' })).toEqual({ n: 100000 });
});

test('an exception thrown by the consumer also closes and releases', async () => {
  const err = await rejectionOf(async () => {
    for await (const row of stream<{ id: number }>(pool, 'select id from big')) {
      if (row.id > 0) throw new Error('consumer failed');
    }
  });
  expect((err as Error).message).toBe('consumer failed');
  expect(pool.stats().active).toBe(0);
  const lease = await pool.acquire();
  try {
    expect((await lease.query('select count(*)::int as n from pg_cursors')).rows[0]?.n).toBe(0);
  } finally {
    lease.release();
  }
});

test('bad arguments throw when stream() is called, before any SQL', () => {
  expect(() => stream(pool, 'select 1', [], { batchSize: 0 })).toThrow(QueryArgumentError);
  expect(() => stream(pool, sql`select ${1}`, [1])).toThrow(QueryArgumentError);
  expect(() => stream(null as never, 'select 1')).toThrow(QueryArgumentError);
  expect(() => stream(pool, 'select 1', [], { signal: 'stop' as never })).toThrow(QueryArgumentError);
  expect(pool.stats().active).toBe(0);
});

async function cursorsLeft(): Promise<number> {
  const lease = await pool.acquire();
  try {
    expect(lease.client.getTransactionStatus()).toBe('I');
    return (await lease.query<{ n: number }>('select count(*)::int as n from pg_cursors')).rows[0]?.n ?? -1;
  } finally {
    lease.release();
  }
}

test('signal: aborting during a fetch cancels it on the server; the connection comes back idle, without a portal', async () => {
  const controller = new AbortController();
  const rows: unknown[] = [];
  // Each batch of 10 rows takes the server ~5 s: the abort lands while the first fetch runs.
  const slow = 'select g, pg_sleep(0.5) from generate_series(1, 100) g';
  setTimeout(() => controller.abort(), 300);
  const err = await rejectionOf(async () => {
    for await (const row of stream(pool, slow, [], { batchSize: 10, signal: controller.signal })) rows.push(row);
  });
  expect(err).toBeInstanceOf(QueryCanceledError);
  expect(rows).toEqual([]);
  // The server's own cancel error (57014 from the backend), not the "before it was sent" one.
  expect(err).toMatchObject({ sqlstate: '57014' });
  expect((err as Error).message).not.toMatch(/before it was sent/);
  // The pool takes the connection back once the server's ReadyForQuery follows the error: leasing
  // the only connection again proves it came back (idle, checked inside).
  expect(await cursorsLeft()).toBe(0);
  expect(pool.stats().active).toBe(0);
});

test('signal: aborting while the consumer works between batches stops before the next fetch and closes the portal', async () => {
  const controller = new AbortController();
  let seen = 0;
  const err = await rejectionOf(async () => {
    for await (const _ of stream(pool, 'select id from big order by id', [], { batchSize: 100, signal: controller.signal })) {
      seen++;
      if (seen === 50) controller.abort(new Error('client went away'));
    }
  });
  expect(err).toBeInstanceOf(QueryCanceledError);
  expect(seen).toBe(100); // the batch in hand is delivered, the next one is never fetched
  expect(pool.stats().active).toBe(0);
  expect(await cursorsLeft()).toBe(0);
  // Positive control: without an abort the same loop sees every row.
  let all = 0;
  for await (const _ of stream(pool, 'select id from big', [], { batchSize: 1000, signal: new AbortController().signal })) all++;
  expect(all).toBe(100000);
});

test('signal: already aborted → QueryCanceledError at the first next(), without leasing a connection', async () => {
  const acquires = pool.stats().acquires;
  const err = await rejectionOf(async () => {
    for await (const _ of stream(pool, 'select 1', [], { signal: AbortSignal.abort() })) {
      /* never reached */
    }
  });
  expect(err).toBeInstanceOf(QueryCanceledError);
  expect(pool.stats().acquires).toBe(acquires);
});

test("a consumer slower than the pool's queryTimeoutMs is not a lost connection: a suspended portal waits on us", async () => {
  // The bound is on the server's silence while we wait; between fetches the server waits for us.
  const bounded = poolFor(db, { maxConnections: 1, queryTimeoutMs: 300 });
  try {
    const seen: number[] = [];
    for await (const row of stream<{ id: number }>(bounded, 'select id from big where id <= 25 order by id', [], {
      batchSize: 10,
    })) {
      seen.push(row.id);
      if (row.id === 10 || row.id === 20) await new Promise((r) => setTimeout(r, 800));
    }
    expect(seen).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    expect(bounded.stats().destroyed.queryTimeout).toBe(0);
  } finally {
    await bounded.close();
  }
});

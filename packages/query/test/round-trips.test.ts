import type { Pool } from '@accountdb/pool';
import { createTestDatabase, RoundTripCounter, StatementCounter, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { execute, executeInTransaction, sql, transaction, UniqueViolationError } from '../src/index.js';
import { poolFor } from './helpers.js';

// transaction() sends BEGIN with fn's first statement (issue 9 §2): counted on the wire, not trusted
// from the code. A relay counts each client→server burst on one already-open connection.

let db: TestDatabase;
let counter: RoundTripCounter;
let pool: Pool;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin('create table items (id int primary key, name text not null)');
  counter = await RoundTripCounter.start(db.host, db.port);
  pool = poolFor(db, { host: '127.0.0.1', port: counter.port, maxConnections: 1, validateAfterIdleMs: 3_600_000 });
  await pool.query('select 1');
});
afterAll(async () => {
  await pool?.close();
  counter?.close();
  await db?.drop();
});

test('a one-statement transaction is two round trips: BEGIN with the statement, then COMMIT', async () => {
  expect(await counter.count(() => transaction(pool, (tx) => execute(tx, 'insert into items values ($1, $2)', [1, 'a'])))).toBe(
    2,
  );
  expect(
    await counter.count(() => executeInTransaction(pool, sql`update items set name = ${'b'} where id = ${1}`, { fetch: 'none' })),
  ).toBe(2);
  expect((await execute<{ name: string }>(pool, 'select name from items where id = 1'))[0]?.name).toBe('b');
});

test('each further statement is one more; a transaction that sends nothing costs nothing', async () => {
  const three = () =>
    transaction(pool, async (tx) => {
      await execute(tx, 'insert into items values ($1, $2)', [2, 'c']);
      await execute(tx, 'update items set name = $1 where id = $2', ['d', 2]);
    });
  expect(await counter.count(three)).toBe(3);
  expect(await counter.count(() => transaction(pool, () => 'nothing'))).toBe(0);
});

test('a failing first statement: the flight and the ROLLBACK, and nothing committed', async () => {
  let error: unknown;
  const trips = await counter.count(() =>
    transaction(pool, (tx) => execute(tx, 'insert into items values ($1, $2)', [1, 'dup'])).catch((e: unknown) => {
      error = e;
    }),
  );
  expect(error).toBeInstanceOf(UniqueViolationError);
  expect(trips).toBe(2);
  expect(await pool.withConnection((c) => c.client.getTransactionStatus())).toBe('I');
});

test('a first statement without parameters (simple protocol, may hold several statements) keeps BEGIN on its own', async () => {
  expect(
    await counter.count(() =>
      transaction(pool, (tx) => execute(tx, "insert into items values (10, 'x'); insert into items values (11, 'y')")),
    ),
  ).toBe(3);
  expect(await execute(pool, 'select id from items where id >= 10 order by id')).toEqual([{ id: 10 }, { id: 11 }]);
});

test("transaction()'s first statement and execute's statements go through the pool's statement cache", async () => {
  const counted = await StatementCounter.start(db.host, db.port);
  const cached = poolFor(db, { host: '127.0.0.1', port: counted.port, maxConnections: 1, validateAfterIdleMs: 3_600_000 });
  try {
    const text = 'select name from items where id = $1';
    const run = () =>
      transaction(cached, async (tx) => {
        await execute(tx, text, [1]);
        await execute(tx, text, [2]);
      });
    const first = await counted.recordAll(run);
    expect(first.parses.filter((p) => p === text)).toHaveLength(1);
    const second = await counted.recordAll(run);
    expect(second.parses).not.toContain(text);
    expect(second.statements.filter((s) => s === text)).toHaveLength(2);
  } finally {
    await cached.close();
    counted.close();
  }
});

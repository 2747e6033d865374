import { CONSTRAINT_TABLES_SQL, createTestDatabase, TcpProxy, type TestDatabase } from '@accountdb/test-db';
import Cursor from 'pg-cursor';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  AccountDbError,
  ActiveTransactionError,
  CheckViolationError,
  ConnectionLostError,
  createPool,
  DataExceptionError,
  ExclusionViolationError,
  FeatureNotSupportedError,
  ForeignKeyViolationError,
  InFailedTransactionError,
  InsufficientPrivilegeError,
  InvalidQueryError,
  LockNotAvailableError,
  NotNullViolationError,
  type Pool,
  type PoolConfigInput,
  SqlError,
  SqlSyntaxError,
  StatementTimeoutError,
  UndefinedColumnError,
  UndefinedTableError,
  UniqueViolationError,
} from '../src/index.js';

// One SQLSTATE table, one mapper (issue 9 §1): every failure that comes out of pool.query, a lease
// or a batch is an AccountDbError whose `code` is ours and whose SQLSTATE is `sqlstate`.

let db: TestDatabase;
const pools: Pool[] = [];
const proxies: TcpProxy[] = [];
const SECRET = 'secret-value-7f3a@example.com';

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin(CONSTRAINT_TABLES_SQL);
  await db.admin(`
    create table locked (id int primary key);
    insert into people (id, email) values (1, '${SECRET}');
    insert into bookings values ('[1,10)');
    create role errors_nobody nologin;
  `);
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
  await Promise.all(proxies.splice(0).map((p) => p.close()));
});
afterAll(async () => {
  await db.admin('drop role if exists errors_nobody').catch(() => {});
  await db.drop();
});

function makePool(overrides: PoolConfigInput = {}): Pool {
  const pool = createPool({ ...db, sslmode: 'disable', minConnections: 0, ...overrides });
  pools.push(pool);
  return pool;
}

const rejection = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error('expected a rejection');
    },
    (e: unknown) => e,
  );

/** Typed, ours, the SQLSTATE beside it, and the value nowhere: message, JSON, stack. */
function expectTyped(err: unknown, kind: abstract new (...args: never[]) => SqlError, code: string, sqlstate: string): SqlError {
  expect(err).toBeInstanceOf(kind);
  expect(AccountDbError.is(err)).toBe(true);
  expect(err).toMatchObject({ code, sqlstate });
  const e = err as SqlError;
  for (const text of [e.message, JSON.stringify(e), String(e.stack)]) expect(text).not.toContain(SECRET);
  return e;
}

describe('pool.query and lease.query map server errors through the one table', () => {
  test.each([
    [`insert into people (id, email) values (2, $1)`, [SECRET], UniqueViolationError, 'UNIQUE_VIOLATION', '23505'],
    [
      `insert into people (id, email, parent_id) values (3, 'x', 99)`,
      [],
      ForeignKeyViolationError,
      'FOREIGN_KEY_VIOLATION',
      '23503',
    ],
    [`insert into people (id, email) values (4, null)`, [], NotNullViolationError, 'NOT_NULL_VIOLATION', '23502'],
    [`insert into people (id, email, age) values (5, 'y', -1)`, [], CheckViolationError, 'CHECK_VIOLATION', '23514'],
    [`insert into bookings values ('[5,6)')`, [], ExclusionViolationError, 'EXCLUSION_VIOLATION', '23P01'],
    ['select $1::int', [SECRET], DataExceptionError, 'DATA_EXCEPTION', '22P02'],
    ['select 1 / 0', [], DataExceptionError, 'DATA_EXCEPTION', '22012'],
    ['select * from no_such_table', [], UndefinedTableError, 'UNDEFINED_TABLE', '42P01'],
    ['select no_such_column from people', [], UndefinedColumnError, 'UNDEFINED_COLUMN', '42703'],
    ['selec 1', [], SqlSyntaxError, 'SYNTAX_ERROR', '42601'],
    ['select count(*) from people for update', [], FeatureNotSupportedError, 'FEATURE_NOT_SUPPORTED', '0A000'],
    [`do $$ begin raise exception using errcode = 'P0001', message = 'custom'; end $$`, [], SqlError, 'SQL_ERROR', 'P0001'],
  ] as const)('%s', async (text, values, kind, code, sqlstate) => {
    const pool = makePool({ maxConnections: 1 });
    expectTyped(await rejection(pool.query(text, [...values])), kind, code, sqlstate);
    const lease = await pool.acquire();
    expectTyped(await rejection(lease.query(text, [...values])), kind, code, sqlstate);
    lease.release();
    // A plain SQL error never costs the connection.
    expect(pool.stats().destroyed.error + pool.stats().destroyed.broken).toBe(0);
  });

  test('the DETAIL (row values) is kept but not enumerable; a class-22 message has its quoted input masked', async () => {
    const pool = makePool();
    const unique = expectTyped(
      await rejection(pool.query(`insert into people (id, email) values (2, $1)`, [SECRET])),
      UniqueViolationError,
      'UNIQUE_VIOLATION',
      '23505',
    );
    expect(unique.detail).toContain(SECRET);
    expect(unique).toMatchObject({ table: 'people', constraint: 'people_email_key' });
    const data = await rejection(pool.query('select $1::int', [SECRET]));
    expect((data as SqlError).message).toMatch(/invalid input syntax for type integer: "…"/);
  });

  test('privileges, locks, transaction states and timeouts', async () => {
    const pool = makePool({ maxConnections: 2 });
    await pool.withConnection(async (c) => {
      await c.query('set role errors_nobody');
      expectTyped(
        await rejection(c.query('select * from people')),
        InsufficientPrivilegeError,
        'INSUFFICIENT_PRIVILEGE',
        '42501',
      );
      await c.query('reset role');
      await c.query('begin');
      expectTyped(await rejection(c.query('vacuum people')), ActiveTransactionError, 'ACTIVE_TRANSACTION', '25001');
      expectTyped(await rejection(c.query('select 1')), InFailedTransactionError, 'IN_FAILED_TRANSACTION', '25P02');
      await c.query('rollback');
    });
    const holder = await pool.acquire();
    await holder.query('begin; lock table locked');
    await pool.withConnection(async (c) => {
      await c.query(`set lock_timeout = '20ms'`);
      expectTyped(await rejection(c.query('select * from locked')), LockNotAvailableError, 'LOCK_NOT_AVAILABLE', '55P03');
      await c.query(`reset lock_timeout; set statement_timeout = '20ms'`);
      expectTyped(await rejection(c.query('select pg_sleep(5)')), StatementTimeoutError, 'STATEMENT_TIMEOUT', '57014');
      await c.query('reset statement_timeout');
    });
    await holder.query('rollback');
    holder.release();
  });

  test('an error that is not a database failure comes through unchanged', async () => {
    const pool = makePool();
    const unserialisable = {
      toPostgres() {
        throw new TypeError('no');
      },
    };
    const err = await rejection(pool.query('select $1', [unserialisable]));
    expect(err).toBeInstanceOf(TypeError);
  });
});

describe('a connection lost under a statement is ConnectionLostError, saying whether a retry is safe', () => {
  test('backend terminated mid-query through pool.query (the raw 57P01 users used to get)', async () => {
    const pool = makePool({ maxConnections: 1 });
    const pid = await pool.withConnection((c) => c.processId);
    const running = rejection(pool.query('select pg_sleep(30)'));
    await expect
      .poll(async () => (await db.admin(`select state from pg_stat_activity where pid = $1`, [pid])).rows[0]?.state)
      .toBe('active');
    await db.admin('select pg_terminate_backend($1)', [pid]);
    const err = await running;
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect(err).toMatchObject({
      code: 'CONNECTION_LOST',
      reason: 'terminated',
      sqlstate: '57P01',
      retrySafe: true,
      port: db.port,
    });
    expect((err as Error).message).toContain('safe to retry');
    await expect.poll(() => pool.stats().total).toBe(0);
    expect((await pool.query<{ n: number }>('select 1 as n')).rows[0]?.n).toBe(1);
  });

  test('a socket reset mid-query: the outcome is unknown, so not safe to retry', async () => {
    const proxy = await TcpProxy.start(db.host, db.port);
    proxies.push(proxy);
    const pool = makePool({ hosts: [{ host: '127.0.0.1', port: proxy.port }], maxConnections: 1 });
    await pool.query('select 1');
    const running = rejection(pool.query('select pg_sleep(30)'));
    await expect.poll(() => proxy.connections).toBe(1);
    await new Promise((r) => setTimeout(r, 100));
    proxy.resetAll();
    const err = await running;
    expect(err).toBeInstanceOf(ConnectionLostError);
    expect(err).toMatchObject({ code: 'CONNECTION_LOST', reason: 'closed', retrySafe: false });
  });
});

describe('Submittables (cursors, streams)', () => {
  test('pool.query refuses one at once: it cannot hold a connection between reads', async () => {
    const pool = makePool();
    await expect(pool.query(new Cursor('select 1') as never)).rejects.toBeInstanceOf(InvalidQueryError);
    expect(pool.stats().connects).toBe(0);
  });

  test('lease.query runs one and returns it; closed, the connection is reused', async () => {
    const pool = makePool({ maxConnections: 1 });
    const lease = await pool.acquire();
    const cursor = lease.query(new Cursor<{ n: number }>('select n from generate_series(1, 5) n'));
    expect(lease.busy).toBe(true);
    expect((await cursor.read(2)).map((r) => r.n)).toEqual([1, 2]);
    await cursor.close();
    expect(lease.busy).toBe(false);
    lease.release();
    expect((await pool.query<{ n: number }>('select 7 as n')).rows[0]?.n).toBe(7);
    expect(pool.stats()).toMatchObject({ connects: 1 });
  });

  test('released with a cursor still open: destroyed at once (never waits on it, never hands on the portal)', async () => {
    const pool = makePool({ maxConnections: 1 });
    const lease = await pool.acquire();
    const cursor = lease.query(new Cursor('select n from generate_series(1, 1000) n'));
    await cursor.read(1);
    lease.release();
    expect(pool.stats().destroyed.notIdle).toBe(1);
    expect((await pool.query<{ n: number }>('select 8 as n')).rows[0]?.n).toBe(8);
  });
});

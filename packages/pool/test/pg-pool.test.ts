import { once } from 'node:events';
import { createTestDatabase, type TestDatabase, waitFor } from '@accountdb/test-db';
import pg from 'pg';
import Cursor from 'pg-cursor';
import QueryStream from 'pg-query-stream';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { createPool, InvalidQueryError, NestedTransactionError, type Pool, type TransactionScope } from '../src/index.js';
import { createPgPool, type PgPool, toPgError, transactionControl } from '../src/pg.js';

let db: TestDatabase;
const faces: PgPool[] = [];
const pools: Pool[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin('create table items (id int primary key, name text not null)');
  await db.admin("insert into items select g, 'item ' || g from generate_series(1, 100) g");
});
afterEach(async () => {
  await Promise.all(faces.splice(0).map((f) => (f.ending ? undefined : f.end())));
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
});
afterAll(() => db.drop());

const config = (max = 2) => ({ ...db, sslmode: 'disable' as const, minConnections: 0, maxConnections: max });

function face(max = 2): PgPool {
  const f = createPgPool(config(max));
  faces.push(f);
  return f;
}

const pidOf = async (client: pg.PoolClient) =>
  (await client.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0]!.pid;

describe('a pg.Pool, as pg users and libraries see it', () => {
  test('is an instance of pg.Pool and runs text, config objects and values', async () => {
    const pool = face();
    expect(pool).toBeInstanceOf(pg.Pool);
    expect(pool.options).not.toHaveProperty('password');
    expect((await pool.query<{ name: string }>('select name from items where id = $1', [3])).rows[0]?.name).toBe('item 3');
    const arrays = await pool.query({ text: 'select id, name from items where id = $1', values: [4], rowMode: 'array' });
    expect(arrays.rows).toEqual([[4, 'item 4']]);
    // pg's own errors: SQLSTATE in `code`.
    await expect(pool.query('select * from missing_table')).rejects.toMatchObject({ code: '42P01' });
    expect(() => pool.query(new Cursor('select 1'))).toThrow(InvalidQueryError);
  });

  test('connect() hands out the connection; release() reuses it, release(true) and release(err) destroy it', async () => {
    const pool = face(1);
    const first = await pool.connect();
    const pid = await pidOf(first);
    first.release();
    expect(() => first.release()).toThrow(/already been released/);
    const second = await pool.connect();
    expect(second).toBe(first); // one connection, one client object: libraries key per-connection state on it
    expect(await pidOf(second)).toBe(pid);
    second.release(true);
    const third = await pool.connect();
    const pid3 = await pidOf(third);
    expect(pid3).not.toBe(pid);
    third.release(new Error('the caller saw this connection misbehave'));
    const fourth = await pool.connect();
    expect(await pidOf(fourth)).not.toBe(pid3);
    fourth.release();
  });

  test('a plain SQL error through pool.query does not destroy the connection (pg.Pool would)', async () => {
    const pool = face(1);
    const client = await pool.connect();
    const pid = await pidOf(client);
    client.release();
    await expect(pool.query('select 1/0')).rejects.toMatchObject({ code: '22012' });
    const again = await pool.connect();
    expect(await pidOf(again)).toBe(pid);
    again.release();
  });

  test('a connection released inside a transaction is destroyed, not handed on dirty', async () => {
    const pool = face(1);
    const client = await pool.connect();
    const pid = await pidOf(client);
    await client.query('begin');
    await client.query("insert into items values (1000, 'uncommitted')");
    const removed = once(pool, 'remove');
    client.release();
    await removed;
    const next = await pool.connect();
    expect(await pidOf(next)).not.toBe(pid);
    expect(next.getTransactionStatus?.() ?? 'I').toBe('I');
    expect((await next.query('select 1 from items where id = 1000')).rowCount).toBe(0);
    next.release();
  });

  test('Submittables: pg-cursor and pg-query-stream on a client; released with a cursor open, the connection is destroyed', async () => {
    const pool = face(1);
    const client = await pool.connect();
    const pid = await pidOf(client);
    const cursor = client.query(new Cursor('select id from items order by id'));
    expect((await cursor.read(10)).map((r) => r.id)).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    await cursor.close();
    const ids: number[] = [];
    for await (const row of client.query(new QueryStream('select id from items where id <= $1 order by id', [5])))
      ids.push((row as { id: number }).id);
    expect(ids).toEqual([1, 2, 3, 4, 5]);
    expect(await pidOf(client)).toBe(pid);
    const open = client.query(new Cursor('select id from items order by id'));
    expect(await open.read(1)).toHaveLength(1);
    client.release();
    const next = await pool.connect();
    expect(await pidOf(next)).not.toBe(pid);
    next.release();
  });

  test('counts, events and end()', async () => {
    const pool = face(2);
    const seen: string[] = [];
    pool.on('connect', () => seen.push('connect'));
    pool.on('acquire', () => seen.push('acquire'));
    pool.on('release', () => seen.push('release'));
    expect([pool.totalCount, pool.idleCount, pool.waitingCount]).toEqual([0, 0, 0]);
    const a = await pool.connect();
    const b = await pool.connect();
    expect([pool.totalCount, pool.idleCount]).toEqual([2, 0]);
    const waiting = pool.connect();
    await waitFor(async () => pool.waitingCount === 1);
    a.release();
    const c = await waiting;
    expect(pool.waitingCount).toBe(0);
    b.release();
    c.release();
    expect([pool.totalCount, pool.idleCount]).toEqual([2, 2]);
    expect(seen.filter((e) => e === 'connect')).toHaveLength(2);
    expect(seen.filter((e) => e === 'acquire')).toHaveLength(3);
    expect(seen.filter((e) => e === 'release')).toHaveLength(3);
    expect(pool.ending).toBe(false);
    await pool.end();
    expect([pool.ending, pool.ended, pool.pool?.closed]).toEqual([true, true, true]);
    await expect(pool.connect()).rejects.toThrow(/after calling end/);
    await expect(pool.end()).rejects.toThrow(/more than once/);
  });

  test("'error' when an idle connection fails, with the client; no listener, no crash", async () => {
    const pool = face(1);
    const client = await pool.connect();
    const pid = await pidOf(client);
    client.release();
    const failed = once(pool, 'error');
    await db.admin('select pg_terminate_backend($1)', [pid]);
    const [err, which] = (await failed) as [Error & { code?: string }, pg.PoolClient];
    expect(err.code).toBe('57P01');
    expect(which).toBe(client);
    await waitFor(async () => pool.totalCount === 0);
    // The pool replaced nothing by itself and goes on: the next connect opens a new connection.
    const next = await pool.connect();
    expect(await pidOf(next)).not.toBe(pid);
    next.release();
  });

  test('callbacks: connect(cb), query(text, cb), query(text, values, cb), end(cb)', async () => {
    const pool = face(1);
    const viaConnect = await new Promise<number>((resolve, reject) =>
      pool.connect((err, client, done) => {
        if (err || !client) return reject(err);
        client.query('select 41 + 1 as n', (qerr: Error | undefined, res: pg.QueryResult) => {
          done();
          if (qerr) reject(qerr);
          else resolve(res.rows[0].n);
        });
      }),
    );
    expect(viaConnect).toBe(42);
    const viaQuery = await new Promise<string>((resolve, reject) =>
      pool.query('select name from items where id = $1', [9], (err: Error | undefined, res: pg.QueryResult) =>
        err ? reject(err) : resolve(res.rows[0].name),
      ),
    );
    expect(viaQuery).toBe('item 9');
    const failed = await new Promise<Error>((resolve) => pool.query('select 1/0', (err: Error) => resolve(err)));
    expect(failed).toMatchObject({ code: '22012' });
    await new Promise<void>((resolve) => pool.end(resolve));
    expect(pool.ended).toBe(true);
  });

  test('a face over a pool you keep: end() leaves that pool open', async () => {
    const pool = createPool(config(2));
    pools.push(pool);
    const f = createPgPool(pool);
    expect((await f.query('select 1 as one')).rows[0]).toEqual({ one: 1 });
    await f.end();
    expect(pool.closed).toBe(false);
    expect((await pool.query('select 1 as one')).rows[0]).toEqual({ one: 1 });
  });
});

describe('a face over a transaction scope', () => {
  /** A minimal TransactionScope: one lease inside BEGIN, as an RLS scope's tx is. */
  async function withScope<T>(fn: (scope: TransactionScope) => Promise<T>): Promise<T> {
    const pool = createPool(config(1));
    pools.push(pool);
    const lease = await pool.acquire();
    await lease.query('begin');
    const scope: TransactionScope = {
      query: (text, values) => lease.query(text, values),
      withConnection: async (fn) => fn(lease),
    };
    try {
      return await fn(scope);
    } finally {
      await lease.query('rollback');
      lease.release();
    }
  }

  test('runs statements and cursors in the scope; refuses transaction control; errors are pg-shaped', async () => {
    await withScope(async (scope) => {
      const f = createPgPool(scope);
      const client = await f.connect();
      expect(await f.connect()).toBe(client);
      await client.query("insert into items values (2000, 'in scope')");
      expect((await f.query('select name from items where id = $1', [2000])).rows).toEqual([{ name: 'in scope' }]);
      for (const sql of ['BEGIN', ' /* c */ start transaction isolation level serializable', 'commit', 'ROLLBACK', 'end']) {
        await expect(client.query(sql)).rejects.toBeInstanceOf(NestedTransactionError);
      }
      await client.query('savepoint s1');
      await expect(client.query('select 1/0')).rejects.toMatchObject({ code: '22012', severity: 'ERROR' });
      await client.query('rollback to savepoint s1');
      const cursor = client.query(new Cursor('select id from items where id >= $1 order by id', [99]));
      expect((await cursor.read(5)).map((r) => r.id)).toEqual([99, 100, 2000]);
      await cursor.close();
      client.release(true); // the scope owns the connection: nothing to give back or destroy
      expect((await client.query('select count(*)::int as n from items where id = 2000')).rows[0].n).toBe(1);
    });
  });

  test('transactionControl and toPgError', async () => {
    expect(transactionControl('-- note\n  Begin;')).toBe('BEGIN');
    expect(transactionControl('rollback to savepoint a')).toBeUndefined();
    expect(transactionControl('ROLLBACK WORK TO a')).toBeUndefined();
    expect(transactionControl('commit prepared $1')).toBe('COMMIT PREPARED');
    expect(transactionControl('select 1; commit')).toBeUndefined();
    expect(transactionControl('ending')).toBeUndefined();
    const pool = createPool(config(1));
    pools.push(pool);
    const typed = await pool.query("insert into items values (1, 'dup')").catch((e: unknown) => e);
    const shaped = toPgError(typed) as pg.DatabaseError;
    expect(shaped).toBeInstanceOf(pg.DatabaseError);
    expect(shaped).toMatchObject({ code: '23505', constraint: 'items_pkey', table: 'items' });
    expect(shaped.cause).toBe(typed);
    expect(Object.keys(shaped)).not.toContain('detail');
  });
});

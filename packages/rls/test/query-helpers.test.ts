import type { Pool } from '@accountdb/pool';
import { execute, executeInTransaction, QueryArgumentError, StatementTimeoutError, stream, transaction } from '@accountdb/query';
import { afterAll, beforeAll, describe, expect, expectTypeOf, test } from 'vitest';
import { createRls, getUserConnectionInfo, RlsScopeError, type RlsTransaction } from '../src/index.js';
import { createFixture, type Fixture, rowsOf } from './fixture.js';

// @accountdb/query's helpers given an RLS scope's `tx` (a TransactionScope of @accountdb/pool). The
// pool has ONE connection, held by the scope: a helper that leased its own instead of using the
// scope's would wait for the pool and never see the context.
let fx: Fixture;
let pool: Pool;
const rls = createRls({ roles: ['user'], databaseRoles: {} });

beforeAll(async () => {
  fx = await createFixture();
  pool = fx.pool(1);
});
afterAll(() => fx?.close());

type Note = { id: number; user_id: number; body: string };

/** The next plain borrower: no context, the login role, idle, and (fail-closed policy) no rows. */
async function expectNextBorrowerClean() {
  const seen = await pool.withConnection(async (conn) => {
    const info = await getUserConnectionInfo(conn);
    const { rows } = await conn.query<{ n: number }>('select count(*)::int as n from notes');
    return { ...info, visibleNotes: rows[0]?.n };
  });
  expect(seen).toMatchObject({ userId: null, role: null, currentUser: fx.app.user, transactionStatus: 'I', visibleNotes: 0 });
}

const onlyUser = (rows: { user_id: number }[], user: number) => {
  expect(rows).toHaveLength(rowsOf(user));
  expect(new Set(rows.map((r) => r.user_id))).toEqual(new Set([user]));
};

describe('execute inside withUserContext', () => {
  test('every fetch mode sees only the user’s rows', async () => {
    const user = 6; // 7 notes
    const seen = await rls.withUserContext(pool, { userId: user, role: 'user' }, async (tx) => {
      // First statement of the scope, and a cursor: the scope opens (BEGIN + context) before the portal.
      const many = await execute<Note>(tx, 'select * from notes order by id', [], { fetch: 'many', count: 3 });
      const all = await execute<Note>(tx, 'select * from notes order by id');
      const one = await execute<Note>(tx, 'select * from notes where user_id <> $1 order by id', [user], { fetch: 'one' });
      const first = await execute<Note>(tx, 'select * from notes order by id', [], { fetch: 'one' });
      const touched = await execute(tx, 'update notes set body = body', [], { fetch: 'none' });
      // With cancellation armed (not fired): runs on the scope's connection through withConnection.
      const timed = await execute<Note>(tx, 'select * from notes', [], {
        timeoutMs: 10_000,
        signal: new AbortController().signal,
      });
      return { many, all, one, first, touched, timed };
    });
    expect(seen.many).toHaveLength(3);
    expect(seen.many.every((r) => r.user_id === user)).toBe(true);
    onlyUser(seen.all, user);
    expect(seen.one).toBeUndefined(); // other users' rows are invisible
    expect(seen.first?.user_id).toBe(user);
    expect(seen.touched).toBe(rowsOf(user));
    onlyUser(seen.timed, user);
    await expectNextBorrowerClean();
  });

  test('a scope whose only statement is a cursor read still opens with the context', async () => {
    const rows = await rls.withUserContext(pool, { userId: 9, role: 'user' }, (tx) =>
      execute<Note>(tx, 'select * from notes', [], { fetch: 'many', count: 100 }),
    );
    onlyUser(rows, 9);
    await expectNextBorrowerClean();
  });

  // Behind PgBouncer too: the cancel is the protocol's CancelRequest, which PgBouncer forwards to the server process.
  test('timeoutMs cancels only that statement; the scope then fails as a failed transaction does', async () => {
    let timedOut: unknown;
    const outcome = rls.withUserContext(pool, { userId: 10, role: 'user' }, async (tx) => {
      await tx.query(`insert into notes (user_id, body) values (10, 'lost with the scope')`);
      timedOut = await execute(tx, 'select pg_sleep(30)', [], { timeoutMs: 50 }).catch((err: unknown) => err);
      return 'done';
    });
    await expect(outcome).rejects.toBeInstanceOf(RlsScopeError);
    expect(timedOut).toBeInstanceOf(StatementTimeoutError);
    const { rows } = await fx.db.admin(`select count(*)::int as n from notes where body = 'lost with the scope'`);
    expect(rows[0]?.n).toBe(0);
    await expectNextBorrowerClean();
  });

  test('a timed-out statement inside a savepoint rolls back alone; the scope commits', async () => {
    const rows = await rls.withUserContext(pool, { userId: 11, role: 'user' }, async (tx) => {
      const err = await transaction(tx, (sp) => execute(sp, 'select pg_sleep(30)', [], { timeoutMs: 50 })).catch(
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(StatementTimeoutError);
      return execute<Note>(tx, 'select * from notes');
    });
    onlyUser(rows, 11);
    await expectNextBorrowerClean();
  });
});

describe('executeInTransaction inside withUserContext', () => {
  test('runs as a savepoint and sees only the user’s rows', async () => {
    const user = 12;
    const seen = await rls.withUserContext(pool, { userId: user, role: 'user' }, async (tx) => {
      const all = await executeInTransaction<Note>(tx, 'select * from notes');
      const many = await executeInTransaction<Note>(tx, 'select * from notes', [], { fetch: 'many', count: 2 });
      const failed = await executeInTransaction(tx, 'select 1/0').catch((err: unknown) => err);
      // The failure rolled back its savepoint only: the scope is still usable and the context intact.
      const after = await executeInTransaction<{ n: number }>(tx, 'select count(*)::int as n from notes', [], { fetch: 'one' });
      return { all, many, failed, after, status: tx.transactionStatus() };
    });
    onlyUser(seen.all, user);
    expect(seen.many).toHaveLength(2);
    expect(seen.failed).toMatchObject({ sqlstate: '22012' });
    expect(seen.after?.n).toBe(rowsOf(user));
    expect(seen.status).toBe('T');
    await expectNextBorrowerClean();
  });

  test('isolation or read-only options are refused before any SQL; the scope goes on', async () => {
    const rows = await rls.withUserContext(pool, { userId: 13, role: 'user' }, async (tx) => {
      await expect(executeInTransaction(tx, 'select 1', [], { isolation: 'serializable' })).rejects.toBeInstanceOf(
        QueryArgumentError,
      );
      await expect(transaction(tx, () => 1, { readOnly: true })).rejects.toBeInstanceOf(QueryArgumentError);
      // Nothing was sent: the scope has not started (a status needs a statement to have run).
      expect(tx.transactionStatus()).toBe('I');
      return execute<Note>(tx, 'select * from notes');
    });
    onlyUser(rows, 13);
    await expectNextBorrowerClean();
  });
});

describe('stream inside withUserContext', () => {
  test('several fetches on the scope’s connection, only the user’s rows', async () => {
    const user = 20; // 7 notes, batchSize 2: four fetches
    const { rows, fetches } = await rls.withUserContext(pool, { userId: user, role: 'user' }, async (tx) => {
      const fetches = await countFetches(tx, async () => {
        const rows: Note[] = [];
        for await (const row of stream<Note>(tx, 'select * from notes order by id', [], { batchSize: 2 })) rows.push(row);
        return rows;
      });
      return fetches;
    });
    onlyUser(rows, user);
    expect(fetches).toBeGreaterThanOrEqual(4);
    await expectNextBorrowerClean();
  });

  test('breaking out closes the portal; the scope goes on and commits', async () => {
    const user = 27;
    const after = await rls.withUserContext(pool, { userId: user, role: 'user' }, async (tx) => {
      for await (const row of stream<Note>(tx, 'select * from notes order by id', [], { batchSize: 2 })) {
        expect(row.user_id).toBe(user);
        break;
      }
      await tx.query(`insert into notes (user_id, body) values ($1, 'after the stream')`, [user]);
      return (await tx.query<{ n: number }>('select count(*)::int as n from notes')).rows[0]?.n;
    });
    expect(after).toBe(rowsOf(user) + 1);
    await fx.db.admin(`delete from notes where body = 'after the stream'`);
    await expectNextBorrowerClean();
  });

  test('a stream used after its scope is over is refused', async () => {
    const later = await rls.withUserContext(pool, { userId: 1, role: 'user' }, (tx) => stream<Note>(tx, 'select * from notes'));
    const iterator = later[Symbol.asyncIterator]();
    await expect(iterator.next()).rejects.toMatchObject({ code: 'RLS_SCOPE_CLOSED' });
    await expectNextBorrowerClean();
  });
});

describe('transaction inside withUserContext is a savepoint', () => {
  test('a failing inner transaction rolls back only its savepoint; the scope continues and commits', async () => {
    const user = 33;
    const boom = new Error('inner fails');
    const result = await rls.withUserContext(pool, { userId: user, role: 'user' }, async (tx) => {
      await execute(tx, `insert into notes (user_id, body) values ($1, 'sp: before')`, [user], { fetch: 'none' });
      const inner = await transaction(tx, async (sp) => {
        expect(sp).toBe(tx); // the scope itself: statements on tx or sp both run inside the savepoint
        await execute(sp, `insert into notes (user_id, body) values ($1, 'sp: rolled back')`, [user], { fetch: 'none' });
        // Nested once more: its own savepoint, committed into the outer one, then discarded with it.
        await transaction(sp, (deeper) =>
          execute(deeper, `insert into notes (user_id, body) values ($1, 'sp: nested')`, [user], { fetch: 'none' }),
        );
        throw boom;
      }).catch((err: unknown) => err);
      const sqlFailure = await transaction(tx, () => tx.query('select 1/0')).catch((err: unknown) => err);
      const kept = await transaction(tx, (sp) =>
        execute(sp, `insert into notes (user_id, body) values ($1, 'sp: kept')`, [user], { fetch: 'none' }),
      );
      const visible = await execute<Note>(tx, 'select * from notes order by id');
      return { inner, sqlFailure, kept, visible };
    });
    expect(result.inner).toBe(boom);
    expect(result.sqlFailure).toMatchObject({ sqlstate: '22012' });
    expect(result.kept).toBe(1);
    expect(result.visible.every((r) => r.user_id === user)).toBe(true);
    const { rows } = await fx.db.admin(`select body from notes where body like 'sp: %' order by id`);
    expect(rows.map((r) => r.body)).toEqual(['sp: before', 'sp: kept']);
    await fx.db.admin(`delete from notes where body like 'sp: %'`);
    await expectNextBorrowerClean();
  });

  test('the savepoint callback gets the scope with its own type', () => {
    expectTypeOf(transaction<string, RlsTransaction>)
      .parameter(1)
      .parameter(0)
      .toEqualTypeOf<RlsTransaction>();
  });
});

/** Count the extended-protocol Execute messages the scope's connection sends while `fn` runs (one per cursor fetch). */
async function countFetches<T>(tx: RlsTransaction, fn: () => Promise<T>): Promise<{ rows: T; fetches: number }> {
  const connection = await tx.withConnection((lease) => (lease.client as unknown as { connection: PgConnection }).connection);
  let fetches = 0;
  const original = connection.execute;
  connection.execute = function (this: PgConnection, ...args: unknown[]) {
    fetches++;
    return original.apply(this, args);
  };
  try {
    return { rows: await fn(), fetches };
  } finally {
    connection.execute = original;
  }
}

interface PgConnection {
  execute(...args: unknown[]): unknown;
}

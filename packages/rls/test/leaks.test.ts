import type { Pool } from '@accountdb/pool';
import Cursor from 'pg-cursor';
import QueryStream from 'pg-query-stream';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRls, getUserConnectionInfo, RlsScopeError } from '../src/index.js';
import { createFixture, type Fixture, rowsOf, viaPgBouncer } from './fixture.js';

// Issue 9 §6: nothing run through rls.query or inside withUserContext leaves user context behind, and
// a cursor or stream handed to a scope's tx either works or fails the scope at once: it never hangs.

let fx: Fixture;
const rls = createRls({ roles: ['user', 'reader'], databaseRoles: {} });

beforeAll(async () => {
  fx = await createFixture();
  console.info(`[rls] leak tests ${viaPgBouncer ? 'through PgBouncer (transaction pooling)' : 'direct to PostgreSQL'}`);
});
afterAll(() => fx?.close());

/** What a plain borrower (no scope) sees on `pool`'s connections. */
async function plainBorrower(pool: Pool) {
  return pool.withConnection(async (conn) => {
    const info = await getUserConnectionInfo(conn);
    const { rows } = await conn.query<{ n: number }>('select count(*)::int as n from notes');
    return { userId: info.userId, role: info.role, currentUser: info.currentUser, visibleNotes: rows[0]?.n };
  });
}

describe('rls.query: a statement writing the context at session level leaves nothing behind', () => {
  test('set_config(…, false) for another user, then 60 plain borrowers', async () => {
    const pool = fx.pool(2);
    const statement = `select set_config('app.current_user_id', '2', false) as a, set_config('app.current_user_role', 'user', false) as b`;
    for (let i = 0; i < 10; i++) await rls.query(pool, { userId: 1, role: 'user' }, statement);
    const seen = await Promise.all(Array.from({ length: 60 }, () => plainBorrower(pool)));
    const leaked = seen.filter((s) => s.userId !== null || s.role !== null || s.visibleNotes !== 0);
    expect(leaked).toEqual([]);
  });

  test('a session-level role switch through rls.query is undone too', async () => {
    const pool = fx.pool(1);
    await rls.query(pool, { userId: 1, role: 'user' }, `select set_config('role', $1, false)`, [fx.readerRole]);
    expect(await plainBorrower(pool)).toMatchObject({ currentUser: fx.app.user, userId: null, visibleNotes: 0 });
  });

  test('the explicit transaction (isolation) and withUserContext refuse it: rolled back, connection destroyed', async () => {
    const pool = fx.pool(1);
    const viaQuery = await rls
      .query(pool, { userId: 1, role: 'user' }, `select set_config('app.current_user_id', '2', false)`, undefined, {
        isolation: 'repeatable read',
      })
      .catch((e: unknown) => e);
    expect(viaQuery).toMatchObject({ code: 'RLS_SCOPE_FAILED', reason: 'transactionEndedByCallback' });
    expect(await plainBorrower(pool)).toMatchObject({ userId: null, visibleNotes: 0 });
    const inScope = await rls
      .withUserContext(pool, { userId: 1, role: 'user' }, (tx) =>
        tx.query(`select set_config('app.current_user_role', 'admin', false)`),
      )
      .catch((e: unknown) => e);
    expect(inScope).toMatchObject({ code: 'RLS_SCOPE_FAILED', reason: 'transactionEndedByCallback' });
    expect(await plainBorrower(pool)).toMatchObject({ userId: null, role: null, visibleNotes: 0 });
  });
});

describe('cursors and streams given to tx.query', () => {
  test('pg-cursor inside a scope: rows of that user only, in batches; closed, the scope commits and the connection is reused', async () => {
    const pool = fx.pool(1);
    const users = await rls.withUserContext(pool, { userId: 12, role: 'user' }, async (tx) => {
      const cursor = tx.query(new Cursor<{ user_id: number }>('select user_id from notes order by id'));
      const seen: number[] = [];
      for (let batch = await cursor.read(2); batch.length > 0; batch = await cursor.read(2))
        seen.push(...batch.map((r) => r.user_id));
      await cursor.close();
      return seen;
    });
    expect(users).toHaveLength(rowsOf(12));
    expect(new Set(users)).toEqual(new Set([12]));
    expect(pool.stats().destroyed.notIdle).toBe(0);
    expect(await plainBorrower(pool)).toMatchObject({ userId: null, visibleNotes: 0 });
  });

  test('pg-query-stream as the first statement of a scope (the scope opens first, then streams)', async () => {
    const pool = fx.pool(1);
    const users = await rls.withUserContext(pool, { userId: 20, role: 'user' }, async (tx) => {
      const stream = tx.query(new QueryStream('select user_id from notes order by id', [], { batchSize: 2 }));
      const seen: number[] = [];
      for await (const row of stream) seen.push((row as { user_id: number }).user_id);
      return seen;
    });
    expect(users).toHaveLength(rowsOf(20));
    expect(new Set(users)).toEqual(new Set([20]));
    expect(await plainBorrower(pool)).toMatchObject({ userId: null, visibleNotes: 0 });
  });

  test('a cursor left open: the scope settles at once with RlsScopeError, the connection is destroyed, nothing leaks', async () => {
    const pool = fx.pool(1);
    const err = await rls
      .withUserContext(pool, { userId: 5, role: 'user' }, async (tx) => {
        await tx.query(`insert into notes (user_id, body) values (5, 'left open')`);
        const cursor = tx.query(new Cursor('select user_id from notes'));
        await cursor.read(1);
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RlsScopeError);
    expect((err as RlsScopeError).reason).toBe('notIdle');
    await expect.poll(() => pool.stats().destroyed.notIdle).toBe(1);
    expect(await plainBorrower(pool)).toMatchObject({ userId: null, visibleNotes: 0 });
    const { rows } = await fx.db.admin(`select count(*)::int as n from notes where body = 'left open'`);
    expect(rows[0].n).toBe(0);
  });

  test('a cursor left open when fn throws: fn’s error, the connection destroyed, no hang', async () => {
    const pool = fx.pool(1);
    const boom = new Error('boom');
    await expect(
      rls.withUserContext(pool, { userId: 5, role: 'user' }, async (tx) => {
        const cursor = tx.query(new Cursor('select user_id from notes'));
        await cursor.read(1);
        throw boom;
      }),
    ).rejects.toBe(boom);
    expect(await plainBorrower(pool)).toMatchObject({ userId: null, visibleNotes: 0 });
  });

  test('a cursor after the scope ended is refused at once', async () => {
    const pool = fx.pool(1);
    let saved: { query: (c: Cursor) => Cursor } | undefined;
    await rls.withUserContext(pool, { userId: 5, role: 'user' }, (tx) => {
      saved = tx as never;
    });
    expect(() => saved?.query(new Cursor('select 1'))).toThrow(expect.objectContaining({ code: 'RLS_SCOPE_CLOSED' }));
  });
});

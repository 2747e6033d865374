import { NestedTransactionError, type Pool } from '@accountdb/pool';
import { createPgPool } from '@accountdb/pool/pg';
import { rlsKyselyDialect } from '@accountdb/rls';
import { RoundTripCounter } from '@accountdb/test-db';
import { type Generated, Kysely, PostgresDialect, sql } from 'kysely';
import Cursor from 'pg-cursor';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createFixture, type Fixture, notesOf, rls } from './fixture.js';

interface DB {
  items: { id: Generated<number>; name: string; qty: number };
  notes: { id: Generated<number>; user_id: number; body: string };
}

let fx: Fixture;
let pool: Pool;
let db: Kysely<DB>;
let connectionsCreated = 0;

beforeAll(async () => {
  fx = await createFixture();
  pool = fx.pool(4);
  db = new Kysely<DB>({
    dialect: new PostgresDialect({
      pool: createPgPool(pool),
      cursor: Cursor,
      onCreateConnection: async () => {
        connectionsCreated++;
      },
    }),
  });
});
afterAll(async () => {
  await db?.destroy(); // ends the face only: the pool is the fixture's
  await fx?.close();
});

describe('Kysely on the pool (PostgresDialect over createPgPool)', () => {
  test('CRUD', async () => {
    const inserted = await db
      .insertInto('items')
      .values({ name: 'kysely', qty: 1 })
      .returning(['id', 'name'])
      .executeTakeFirstOrThrow();
    expect(inserted.name).toBe('kysely');
    const updated = await db.updateTable('items').set({ qty: 2 }).where('id', '=', inserted.id).executeTakeFirstOrThrow();
    expect(updated.numUpdatedRows).toBe(1n);
    expect(await db.selectFrom('items').select('qty').where('id', '=', inserted.id).executeTakeFirst()).toEqual({ qty: 2 });
    const deleted = await db.deleteFrom('items').where('id', '=', inserted.id).executeTakeFirstOrThrow();
    expect(deleted.numDeletedRows).toBe(1n);
  });

  test('a transaction that throws rolls back; one that returns commits', async () => {
    const boom = new Error('boom');
    await expect(
      db.transaction().execute(async (trx) => {
        await trx.insertInto('items').values({ name: 'rolled back', qty: 0 }).execute();
        throw boom;
      }),
    ).rejects.toBe(boom);
    await db.transaction().execute((trx) => trx.insertInto('items').values({ name: 'committed', qty: 0 }).execute());
    const { rows } = await fx.db.admin(`select name from items where name in ('rolled back', 'committed')`);
    expect(rows).toEqual([{ name: 'committed' }]);
  });

  test('savepoints: rolled back to, released', async () => {
    const trx = await db.startTransaction().execute();
    await trx.insertInto('items').values({ name: 'sp kept', qty: 0 }).execute();
    const sp = await trx.savepoint('sp1').execute();
    await sp.insertInto('items').values({ name: 'sp undone', qty: 0 }).execute();
    const back = await sp.rollbackToSavepoint('sp1').execute();
    const sp2 = await back.savepoint('sp2').execute();
    await sp2.insertInto('items').values({ name: 'sp released', qty: 0 }).execute();
    await (await sp2.releaseSavepoint('sp2').execute()).commit().execute();
    const { rows } = await fx.db.admin(`select name from items where name like 'sp %' order by name`);
    expect(rows.map((r) => r.name)).toEqual(['sp kept', 'sp released']);
  });

  test('.stream() reads through a cursor; stopping early closes it and the connection is reused', async () => {
    const ids: number[] = [];
    for await (const row of db.selectFrom('items').select('id').where('id', '<=', 25).orderBy('id').stream(10)) ids.push(row.id);
    expect(ids).toEqual(Array.from({ length: 25 }, (_, i) => i + 1));
    let seen = 0;
    for await (const _ of db.selectFrom('items').select('id').stream(5)) if (++seen === 7) break;
    expect(seen).toBe(7);
    expect(Object.values(pool.stats().destroyed).reduce((a, b) => a + b, 0)).toBe(0);
  });

  test('50 concurrent queries on a pool of 4; onCreateConnection once per connection, not per acquire', async () => {
    const acquiresBefore = pool.stats().acquires;
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        db
          .selectFrom('items')
          .select([sql<number>`${i}::int`.as('i'), sql<number>`pg_backend_pid()`.as('pid')])
          .where('id', '=', 1)
          .executeTakeFirstOrThrow(),
      ),
    );
    expect(results.map((r) => r.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(new Set(results.map((r) => r.pid)).size).toBeLessThanOrEqual(4);
    expect(pool.totalCount).toBeLessThanOrEqual(4);
    // At least 50 acquires, yet Kysely was told of at most one new connection per real one. Not `toBe(connects)`:
    // the pool may finish opening a connection in the background after the last query, which Kysely never saw.
    expect(pool.stats().acquires - acquiresBefore).toBeGreaterThanOrEqual(50);
    expect(connectionsCreated).toBeGreaterThan(0);
    expect(connectionsCreated).toBeLessThanOrEqual(pool.stats().connects);
  });
});

describe('Kysely inside rls.withUserContext (a Kysely on createPgPool(tx))', () => {
  const scoped = (tx: Parameters<typeof createPgPool>[0]) =>
    new Kysely<DB>({ dialect: new PostgresDialect({ pool: createPgPool(tx), cursor: Cursor }) });

  test('a user sees and writes only their rows; stream and 50 concurrent queries run in the scope', async () => {
    const aborted = rls.withUserContext(pool, { userId: 3, role: 'user' }, async (tx) => {
      const kdb = scoped(tx);
      const mine = await kdb.selectFrom('notes').selectAll().execute();
      expect(mine).toHaveLength(notesOf(3));
      expect(mine.every((n) => n.user_id === 3)).toBe(true);
      await kdb.insertInto('notes').values({ user_id: 3, body: 'kysely in scope' }).execute();
      // pg-shaped errors inside a scope too: SQLSTATE in `code` (new row violates row-level security policy).
      await expect(kdb.insertInto('notes').values({ user_id: 4, body: 'not mine' }).execute()).rejects.toMatchObject({
        code: '42501',
      });
    });
    // The failed insert aborted the scope's transaction: the scope says so and nothing of it was committed.
    await expect(aborted).rejects.toMatchObject({ code: 'RLS_SCOPE_FAILED' });
    const { rows } = await fx.db.admin(`select count(*)::int as n from notes where body = 'kysely in scope'`);
    expect(rows[0]?.n).toBe(0);

    await rls.withUserContext(pool, { userId: 2, role: 'user' }, async (tx) => {
      const kdb = scoped(tx);
      await kdb.insertInto('notes').values({ user_id: 2, body: 'kysely in scope' }).execute();
      const streamed: number[] = [];
      for await (const n of kdb.selectFrom('notes').select('user_id').stream(2)) streamed.push(n.user_id);
      expect(streamed).toEqual(Array(notesOf(2) + 1).fill(2));
      const counts = await Promise.all(
        Array.from({ length: 50 }, () =>
          kdb
            .selectFrom('notes')
            .select((eb) => eb.fn.countAll<number>().as('n'))
            .executeTakeFirstOrThrow(),
        ),
      );
      expect(new Set(counts.map((c) => Number(c.n)))).toEqual(new Set([notesOf(2) + 1]));
    });
    const after = await fx.db.admin(`select user_id from notes where body = 'kysely in scope'`);
    expect(after.rows).toEqual([{ user_id: 2 }]);
  });

  test("Kysely's own transaction inside a scope is refused clearly; the scope goes on and commits", async () => {
    await rls.withUserContext(pool, { userId: 1, role: 'user' }, async (tx) => {
      const kdb = scoped(tx);
      const refused = await kdb
        .transaction()
        .execute((trx) => trx.insertInto('notes').values({ user_id: 1, body: 'never' }).execute())
        .catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(NestedTransactionError);
      expect((refused as Error).message).toMatch(/^BEGIN refused/);
      await kdb.insertInto('notes').values({ user_id: 1, body: 'after refusal' }).execute();
    });
    const { rows } = await fx.db.admin(`select body from notes where body in ('never', 'after refusal')`);
    expect(rows).toEqual([{ body: 'after refusal' }]);
  });
});

describe('rlsKyselyDialect: each Kysely query is one rls.query, one round trip', () => {
  let counter: RoundTripCounter;
  let counted: Pool;
  beforeAll(async () => {
    counter = await RoundTripCounter.start(fx.app.host, fx.app.port);
    counted = fx.pool(1, { host: '127.0.0.1', port: counter.port, validateAfterIdleMs: 3_600_000 });
    await counted.query('select 1');
  });
  afterAll(() => counter?.close());

  test('as the user, in one round trip; a context function is read per statement', async () => {
    let user = 4;
    const kdb = new Kysely<DB>({
      dialect: rlsKyselyDialect(new PostgresDialect({ pool: createPgPool(counted) }), {
        rls,
        pool: counted,
        context: () => ({ userId: user, role: 'user' }),
      }),
    });
    const before = counter.bursts;
    const rows = await kdb.selectFrom('notes').select(['user_id', 'body']).execute();
    expect(counter.bursts - before).toBe(1);
    expect(rows).toHaveLength(notesOf(4));
    expect(rows.every((r) => r.user_id === 4)).toBe(true);
    user = 5;
    const inserted = await kdb.insertInto('notes').values({ user_id: 5, body: 'via dialect' }).executeTakeFirstOrThrow();
    expect(inserted.numInsertedOrUpdatedRows).toBe(1n);
    expect(await kdb.selectFrom('notes').select('id').execute()).toHaveLength(notesOf(5) + 1);
    await expect(kdb.transaction().execute(async () => {})).rejects.toBeInstanceOf(NestedTransactionError);
    await kdb.destroy();
  });
});

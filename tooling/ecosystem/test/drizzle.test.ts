import { NestedTransactionError, type Pool } from '@accountdb/pool';
import { createPgPool, type PgPoolSource } from '@accountdb/pool/pg';
import { count, eq, like, sql } from 'drizzle-orm';
import { drizzle } from 'drizzle-orm/node-postgres';
import { integer, pgTable, serial, text } from 'drizzle-orm/pg-core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createFixture, type Fixture, notesOf, rls } from './fixture.js';

const items = pgTable('items', { id: serial('id').primaryKey(), name: text('name').notNull(), qty: integer('qty').notNull() });
const notes = pgTable('notes', {
  id: serial('id').primaryKey(),
  userId: integer('user_id').notNull(),
  body: text('body').notNull(),
});

let fx: Fixture;
let pool: Pool;
const on = (source: PgPoolSource) => drizzle({ client: createPgPool(source) });
let db: ReturnType<typeof on>;

beforeAll(async () => {
  fx = await createFixture();
  pool = fx.pool(4);
  db = on(pool);
});
afterAll(() => fx?.close());

const names = async (pattern: string) =>
  (await fx.db.admin('select name from items where name like $1 order by name', [pattern])).rows.map((r) => r.name);

describe('Drizzle on the pool (drizzle({ client: createPgPool(pool) }))', () => {
  test('CRUD', async () => {
    const [row] = await db.insert(items).values({ name: 'drizzle', qty: 1 }).returning();
    expect(row?.name).toBe('drizzle');
    await db.update(items).set({ qty: 2 }).where(eq(items.id, row!.id));
    expect(await db.select({ qty: items.qty }).from(items).where(eq(items.id, row!.id))).toEqual([{ qty: 2 }]);
    const deleted = await db.delete(items).where(eq(items.id, row!.id));
    expect(deleted.rowCount).toBe(1);
  });

  test('db.transaction holds one connection: a rollback really rolls back (a query-only wrapper committed it)', async () => {
    await expect(
      db.transaction(async (tx) => {
        await tx.insert(items).values({ name: 'dz rolled back', qty: 0 });
        tx.rollback();
      }),
    ).rejects.toThrow(/Rollback/);
    const boom = new Error('boom');
    await expect(
      db.transaction(async (tx) => {
        await tx.insert(items).values({ name: 'dz thrown', qty: 0 });
        throw boom;
      }),
    ).rejects.toBe(boom);
    await db.transaction(async (tx) => {
      await tx.insert(items).values({ name: 'dz committed', qty: 0 });
    });
    expect(await names('dz %')).toEqual(['dz committed']);
  });

  test('the trap the face avoids: to Drizzle a query-only wrapper is no pool, and its "rolled back" row is committed', async () => {
    const wrapper = { query: (text: string, values?: unknown[]) => pool.query(text, values) };
    const naive = drizzle({ client: wrapper as never }); // what an untyped adapter amounts to
    await naive
      .transaction(async (tx) => {
        await tx.insert(items).values({ name: 'dz trap', qty: 0 });
        tx.rollback();
      })
      .catch(() => {});
    // BEGIN, the insert and ROLLBACK each went to whichever connection was free: the insert autocommitted.
    expect(await names('dz trap')).toEqual(['dz trap']);
  });

  test('nested transactions are savepoints', async () => {
    await db.transaction(async (tx) => {
      await tx.insert(items).values({ name: 'dzsp outer', qty: 0 });
      await expect(
        tx.transaction(async (inner) => {
          await inner.insert(items).values({ name: 'dzsp inner undone', qty: 0 });
          inner.rollback();
        }),
      ).rejects.toThrow(/Rollback/);
      await tx.transaction(async (inner) => {
        await inner.insert(items).values({ name: 'dzsp inner kept', qty: 0 });
      });
    });
    expect(await names('dzsp %')).toEqual(['dzsp inner kept', 'dzsp outer']);
  });

  test('50 concurrent queries on a pool of 4', async () => {
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        db
          .select({ i: sql<number>`${i}::int`, pid: sql<number>`pg_backend_pid()` })
          .from(items)
          .where(eq(items.id, 1)),
      ),
    );
    expect(results.map((r) => r[0]?.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(new Set(results.map((r) => r[0]?.pid)).size).toBeLessThanOrEqual(4);
    expect(pool.totalCount).toBeLessThanOrEqual(4);
  });
});

describe('Drizzle inside rls.withUserContext (drizzle({ client: createPgPool(tx) }))', () => {
  test('a user sees and writes only their rows; 50 concurrent queries run in the scope', async () => {
    await rls.withUserContext(pool, { userId: 2, role: 'user' }, async (tx) => {
      const sdb = on(tx);
      const mine = await sdb.select().from(notes);
      expect(mine).toHaveLength(notesOf(2));
      expect(mine.every((n) => n.userId === 2)).toBe(true);
      await sdb.insert(notes).values({ userId: 2, body: 'drizzle in scope' });
      const counts = await Promise.all(Array.from({ length: 50 }, () => sdb.select({ n: count() }).from(notes)));
      expect(new Set(counts.map((c) => c[0]?.n))).toEqual(new Set([notesOf(2) + 1]));
    });
    const { rows } = await fx.db.admin(`select user_id from notes where body = 'drizzle in scope'`);
    expect(rows).toEqual([{ user_id: 2 }]);
    // No context outside the scope: the fail-closed policy shows nothing.
    expect(await db.select().from(notes).where(like(notes.body, '%'))).toEqual([]);
  });

  test("Drizzle's own transaction inside a scope is refused clearly; the scope goes on and commits", async () => {
    await rls.withUserContext(pool, { userId: 1, role: 'user' }, async (tx) => {
      const sdb = on(tx);
      const refused = await sdb
        .transaction((t) => t.insert(notes).values({ userId: 1, body: 'dz never' }))
        .catch((e: unknown) => e);
      // Drizzle wraps driver errors in DrizzleQueryError (0.45); ours is the cause.
      const cause = refused instanceof NestedTransactionError ? refused : (refused as Error).cause;
      expect(cause).toBeInstanceOf(NestedTransactionError);
      expect((cause as Error).message).toMatch(/^BEGIN refused/);
      await sdb.insert(notes).values({ userId: 1, body: 'dz after refusal' });
    });
    const { rows } = await fx.db.admin(`select body from notes where body like 'dz %'`);
    expect(rows).toEqual([{ body: 'dz after refusal' }]);
  });
});

import { NestedTransactionError, type Pool } from '@accountdb/pool';
import { createPgPool, type PgPoolSource } from '@accountdb/pool/pg';
import { PrismaPg } from '@prisma/adapter-pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { PrismaClient } from '../generated/prisma/client.js';
import { createFixture, type Fixture, notesOf, rls } from './fixture.js';

let fx: Fixture;
let pool: Pool;
const clients: PrismaClient[] = [];
/** A PrismaClient on our pool (or scope): PrismaPg takes the face as its pool because it is a pg.Pool. */
const on = (source: PgPoolSource) => {
  const client = new PrismaClient({ adapter: new PrismaPg(createPgPool(source)) });
  clients.push(client);
  return client;
};
let prisma: PrismaClient;

beforeAll(async () => {
  // With PG* variables pointing nowhere, a PrismaPg that quietly built its own pg.Pool would fail loudly.
  process.env.PGHOST = '192.0.2.1';
  process.env.PGPORT = '1';
  fx = await createFixture();
  pool = fx.pool(4);
  prisma = on(pool);
});
afterAll(async () => {
  await Promise.all(clients.map((c) => c.$disconnect()));
  await fx?.close();
});

describe('Prisma on the pool (new PrismaPg(createPgPool(pool)))', () => {
  test('runs on our pool, not a pg.Pool of its own', async () => {
    const before = pool.stats().acquires;
    expect(await prisma.note.count()).toBe(0); // as the restricted role with no context: fail-closed RLS
    expect(pool.stats().acquires).toBeGreaterThan(before);
  });

  test("CRUD; database errors reach Prisma in pg's shape and come out as its known errors", async () => {
    const created = await prisma.item.create({ data: { name: 'prisma', qty: 1 } });
    expect(created).toMatchObject({ name: 'prisma', qty: 1 });
    expect(await prisma.item.update({ where: { id: created.id }, data: { qty: 2 } })).toMatchObject({ qty: 2 });
    expect(await prisma.item.findUnique({ where: { id: created.id }, select: { qty: true } })).toEqual({ qty: 2 });
    await prisma.item.delete({ where: { id: created.id } });
    expect(await prisma.item.findUnique({ where: { id: created.id } })).toBeNull();
    // Duplicate primary key: SQLSTATE 23505 reached Prisma as pg reports it, hence its P2002.
    await expect(prisma.item.create({ data: { id: 1, name: 'duplicate' } })).rejects.toMatchObject({ code: 'P2002' });
    // RLS refuses a note without a user context (fail-closed policy).
    await expect(prisma.note.create({ data: { userId: 1, body: 'no context' } })).rejects.toMatchObject({
      name: 'PrismaClientKnownRequestError',
    });
  });

  test('interactive transactions roll back on throw; batch transactions commit together; savepoints inside', async () => {
    const boom = new Error('boom');
    await expect(
      prisma.$transaction(async (tx) => {
        await tx.$executeRaw`insert into items (name, qty) values ('pz rolled back', 0)`;
        throw boom;
      }),
    ).rejects.toBe(boom);
    await prisma.$transaction([
      prisma.$executeRaw`insert into items (name, qty) values ('pz batch a', 0)`,
      prisma.$executeRaw`insert into items (name, qty) values ('pz batch b', 0)`,
    ]);
    await prisma.$transaction(async (tx) => {
      await tx.$executeRaw`insert into items (name, qty) values ('pz outer', 0)`;
      await tx.$executeRaw`savepoint sp1`;
      await tx.$executeRaw`insert into items (name, qty) values ('pz undone', 0)`;
      await tx.$executeRaw`rollback to savepoint sp1`;
    });
    const { rows } = await fx.db.admin(`select name from items where name like 'pz %' order by name`);
    expect(rows.map((r) => r.name)).toEqual(['pz batch a', 'pz batch b', 'pz outer']);
  });

  test('50 concurrent queries on a pool of 4', async () => {
    const results = await Promise.all(
      Array.from(
        { length: 50 },
        (_, i) => prisma.$queryRaw<{ i: number; pid: number }[]>`select ${i}::int as i, pg_backend_pid() as pid`,
      ),
    );
    expect(results.map((r) => r[0]?.i)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(new Set(results.map((r) => r[0]?.pid)).size).toBeLessThanOrEqual(4);
    expect(pool.totalCount).toBeLessThanOrEqual(4);
  });
});

describe('Prisma inside rls.withUserContext (new PrismaPg(createPgPool(tx)))', () => {
  test('a user sees and writes only their rows; 50 concurrent queries run in the scope', async () => {
    await rls.withUserContext(pool, { userId: 3, role: 'user' }, async (tx) => {
      const sp = on(tx);
      const mine = await sp.note.findMany();
      expect(mine).toHaveLength(notesOf(3));
      expect(mine.every((n) => n.userId === 3)).toBe(true);
      await sp.note.create({ data: { userId: 3, body: 'prisma in scope' } });
      const counts = await Promise.all(Array.from({ length: 50 }, () => sp.note.count()));
      expect(new Set(counts)).toEqual(new Set([notesOf(3) + 1]));
    });
    const { rows } = await fx.db.admin(`select user_id from notes where body = 'prisma in scope'`);
    expect(rows).toEqual([{ user_id: 3 }]);
  });

  test("Prisma's own transaction inside a scope is refused clearly; the scope goes on and commits", async () => {
    await rls.withUserContext(pool, { userId: 1, role: 'user' }, async (tx) => {
      const sp = on(tx);
      const refused = await sp
        .$transaction(async (t) => t.note.create({ data: { userId: 1, body: 'pz never' } }))
        .catch((e: unknown) => e);
      // Prisma hands our error through as it is.
      expect(refused).toBeInstanceOf(NestedTransactionError);
      expect((refused as Error).message).toMatch(/^BEGIN refused/);
      await sp.note.create({ data: { userId: 1, body: 'pz after refusal' } });
    });
    const { rows } = await fx.db.admin(`select body from notes where body like 'pz %'`);
    expect(rows).toEqual([{ body: 'pz after refusal' }]);
  });
});

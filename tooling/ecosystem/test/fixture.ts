import { createPool, type Pool, type PoolConfigInput } from '@accountdb/pool';
import { accessorFunctionsSql, createRls, userOwnedPolicySql } from '@accountdb/rls';
import { type ConnectionFields, createTestDatabase, type TestDatabase, testPoolConfig } from '@accountdb/test-db';

/** User u owns u + 1 notes: counts differ per user, so a wrong context cannot match by accident. */
export const USERS = 5;
export const notesOf = (user: number) => user + 1;

export interface Fixture {
  db: TestDatabase;
  /** The NOSUPERUSER NOBYPASSRLS login role every pool here uses (RLS tests under a superuser pass falsely). */
  app: ConnectionFields;
  /** A pool as the restricted role. */
  pool(max: number, extra?: Partial<PoolConfigInput>): Pool;
  close(): Promise<void>;
}

export const rls = createRls({ roles: ['user'] });

/**
 * A database with `items` (no RLS: plain CRUD) and `notes` (RLS enabled and forced, fail-closed,
 * one policy per user), seeded, and a restricted login role with rights on both.
 */
export async function createFixture(): Promise<Fixture> {
  const db = await createTestDatabase();
  const app = await db.createRestrictedRole();
  await db.admin(accessorFunctionsSql());
  await db.admin('create table items (id serial primary key, name text not null, qty int not null default 0)');
  await db.admin(`insert into items (name, qty) select 'item ' || g, g from generate_series(1, 100) g`);
  await db.admin('create table notes (id serial primary key, user_id int not null, body text not null)');
  await db.admin(userOwnedPolicySql({ table: 'notes' }));
  await db.admin(
    `insert into notes (user_id, body) select u, 'note ' || u || '/' || k from generate_series(1, $1::int) u, generate_series(1, u + 1) k`,
    [USERS],
  );
  for (const table of ['items', 'notes']) {
    await db.admin(`grant select, insert, update, delete on ${table} to "${app.user}"`);
    await db.admin(`grant usage on sequence ${table}_id_seq to "${app.user}"`);
  }
  const pools: Pool[] = [];
  return {
    db,
    app,
    pool(max, extra = {}) {
      const pool = createPool({ ...testPoolConfig(app, { maxConnections: max }), acquireTimeoutMs: 30_000, ...extra });
      pools.push(pool);
      return pool;
    },
    async close() {
      await Promise.all(pools.map((p) => p.close({ force: true })));
      await db.drop();
    },
  };
}

import { createPool, type Pool, type PoolConfigInput, type PoolHooks } from '@accountdb/pool';
import { type ConnectionFields, createTestDatabase, PgBouncer, sharedAdminServer, type TestDatabase } from '@accountdb/test-db';
import pg from 'pg';
import { accessorFunctionsSql, userOwnedPolicySql } from '../src/index.js';

/** `ACCOUNTDB_TEST_PGBOUNCER=1` runs every rls test through PgBouncer in transaction pooling mode. */
export const viaPgBouncer = process.env.ACCOUNTDB_TEST_PGBOUNCER === '1';
/**
 * Pool options for connections that may go through PgBouncer: the one here (1.18, before 1.21) does not
 * keep prepared statements in transaction mode, so the pool's statement cache is off behind it.
 */
export const throughPgBouncer: { statementCacheSize?: number } = viaPgBouncer ? { statementCacheSize: 0 } : {};

export const USERS = 50;
/** User u owns `rowsOf(u)` notes: counts differ per user so a wrong context cannot match by accident. */
export const rowsOf = (user: number) => (user % 7) + 1;

export interface Fixture {
  db: TestDatabase;
  /** The NOSUPERUSER NOBYPASSRLS login role the code under test uses. */
  app: ConnectionFields & { url: string };
  /** Database role the `reader` application role maps to (`SET LOCAL ROLE`). */
  readerRole: string;
  /** Where pools connect: the server itself, or PgBouncer in front of it. */
  target: { host: string; port: number };
  bouncer: PgBouncer | undefined;
  pool(max: number, hooks?: PoolHooks, extra?: Partial<PoolConfigInput>): Pool;
  /** A pool straight to PostgreSQL even when the run goes through PgBouncer. */
  directPool(max: number): Pool;
  close(): Promise<void>;
}

/**
 * A database with `notes` (RLS enabled and forced, owned by the superuser), the accessor functions,
 * 50 users' rows, a restricted login role, and optionally a PgBouncer in front.
 */
export async function createFixture(): Promise<Fixture> {
  const db = await createTestDatabase();
  const app = await db.createRestrictedRole();
  const readerRole = `${db.database}_reader`;
  await db.admin(accessorFunctionsSql());
  await db.admin(`create table notes (id serial primary key, user_id int not null, body text not null)`);
  await db.admin(userOwnedPolicySql({ table: 'notes' }));
  await db.admin(`grant select, insert, update, delete on notes to "${app.user}"`);
  await db.admin(`grant usage on sequence notes_id_seq to "${app.user}"`);
  await db.admin(
    `insert into notes (user_id, body) select u, 'note ' || u || '/' || k from generate_series(1, $1) u, generate_series(1, (u % 7) + 1) k`,
    [USERS],
  );
  await db.admin(`create role "${readerRole}" nologin nosuperuser nobypassrls`);
  await db.admin(`grant "${readerRole}" to "${app.user}"`);
  await db.admin(`grant select on notes to "${readerRole}"`);
  await db.admin(`grant usage on schema public to "${readerRole}"`);

  let bouncer: PgBouncer | undefined;
  if (viaPgBouncer) {
    // No fallback: with the variable set, a missing pgbouncer must fail the run, not quietly test direct.
    bouncer = await PgBouncer.start({ targetHost: db.host, targetPort: db.port, users: [app] });
  }
  const target = bouncer ? { host: bouncer.host, port: bouncer.port } : { host: db.host, port: db.port };
  const pools: Pool[] = [];
  return {
    db,
    app,
    readerRole,
    target,
    bouncer,
    pool(max, hooks, extra = {}) {
      const pool = createPool(
        {
          ...app,
          ...target,
          sslmode: 'disable',
          minConnections: 0,
          maxConnections: max,
          acquireTimeoutMs: 30_000,
          ...throughPgBouncer,
          ...extra,
        },
        hooks ? { hooks } : {},
      );
      pools.push(pool);
      return pool;
    },
    directPool(max) {
      const pool = createPool({ ...app, sslmode: 'disable', minConnections: 0, maxConnections: max });
      pools.push(pool);
      return pool;
    },
    async close() {
      await Promise.all(pools.map((p) => p.close({ force: true })));
      await bouncer?.stop();
      await db.drop();
      // The reader role is cluster-wide; the harness only drops the roles it created.
      const c = new pg.Client({ connectionString: (await sharedAdminServer()).adminUrl });
      await c.connect();
      await c.query(`drop role if exists "${readerRole}"`);
      await c.end();
    },
  };
}

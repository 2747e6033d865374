import {
  type CreatePoolOptions,
  createPool,
  type Pool,
  type PoolConnection,
  type Queryable,
  type QueryConfig,
} from '@accountdb/pool';
import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import pg from 'pg';

export interface Fixture {
  db: TestDatabase;
  pool: Pool;
  serverVersion: number;
  close(): Promise<void>;
}

export async function createFixture(poolOptions: CreatePoolOptions = {}): Promise<Fixture> {
  const db = await createTestDatabase();
  const pool = createPool({ ...db, minConnections: 0, maxConnections: 4 }, poolOptions);
  const { rows } = await db.admin(`select current_setting('server_version_num')::int as v`);
  return {
    db,
    pool,
    serverVersion: rows[0].v,
    async close() {
      await pool.close({ force: true });
      await db.drop();
    },
  };
}

/**
 * A pool stand-in that records the text of every statement the code under test sends, on the pool
 * itself and on every lease it hands out (the real lease does the work).
 */
export function recordingPool(pool: Pool): { db: Queryable & { acquire(): Promise<PoolConnection> }; sent: string[] } {
  const sent: string[] = [];
  const textOf = (q: string | QueryConfig) => (typeof q === 'string' ? q : q.text);
  const wrapLease = (lease: PoolConnection): PoolConnection =>
    new Proxy(lease, {
      get(target, prop) {
        if (prop === 'query')
          return (text: string | QueryConfig, values?: unknown[]) => {
            sent.push(textOf(text));
            return target.query(text, values);
          };
        const value = Reflect.get(target, prop, target);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  const db = {
    config: pool.config,
    query: (text: string | QueryConfig, values?: unknown[]) => {
      sent.push(textOf(text));
      return pool.query(text, values);
    },
    acquire: async () => wrapLease(await pool.acquire()),
  } as Queryable & { acquire(): Promise<PoolConnection> };
  return { db, sent };
}

/** Statements other than catalog lookups and session settings (our own SELECTs). */
export function maintenanceStatements(sent: readonly string[]): string[] {
  return sent.filter((t) => !/^\s*(select|with)\b/i.test(t));
}

/** Poll until `check` returns a value that is not undefined/false (stats arrive asynchronously). */
export async function eventually<T>(check: () => Promise<T | undefined | false>, what: string, timeoutMs = 30_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Run DML on a connection of its own and close it: a backend flushes its table statistics on exit. */
export async function runAndFlush(db: TestDatabase, sql: string): Promise<void> {
  const c = new pg.Client({ connectionString: db.url });
  await c.connect();
  try {
    await c.query(sql);
  } finally {
    await c.end();
  }
}

/** A session that holds a lock (or a snapshot) until released; every promise is handled. */
export async function holdInTransaction(db: TestDatabase, statements: string[]): Promise<{ release(): Promise<void> }> {
  const c = new pg.Client({ connectionString: db.url });
  c.on('error', () => {});
  await c.connect();
  await c.query('begin');
  for (const s of statements) await c.query(s);
  return {
    async release() {
      await c.query('rollback').catch(() => {});
      await c.end();
    },
  };
}

export async function stat(db: TestDatabase, table: string): Promise<Record<string, unknown>> {
  const { rows } = await db.admin(
    `select n_dead_tup::int as dead, n_live_tup::int as live, last_vacuum, last_analyze, vacuum_count::int as vacuums, analyze_count::int as analyzes
       from pg_stat_user_tables where relid = $1::regclass`,
    [table],
  );
  return rows[0];
}

export async function relfilenode(db: TestDatabase, relation: string): Promise<number> {
  const { rows } = await db.admin('select pg_relation_filenode($1::regclass)::int as f', [relation]);
  return rows[0].f;
}

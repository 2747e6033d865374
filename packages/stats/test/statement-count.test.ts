import type { Pool } from '@accountdb/pool';
import { createTestDatabase, StatementCounter, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { getDatabaseStats } from '../src/index.js';
import { poolFor } from './helpers.js';

let db: TestDatabase;
let counter: StatementCounter;
let pool: Pool;

async function createTables(from: number, to: number): Promise<void> {
  await db.admin(`do $$ begin
    for i in ${from}..${to} loop
      execute format('create table t_%s (id int primary key, name text, created_at timestamptz default now())', i);
      execute format('create index t_%s_name_idx on t_%s (name)', i, i);
      execute format('insert into t_%s (id, name) select g, md5(g::text) from generate_series(1, 20) g', i);
    end loop; end $$`);
  await db.admin('analyze');
}

beforeAll(async () => {
  db = await createTestDatabase();
  counter = await StatementCounter.start(db.host, db.port);
  // One connection, never re-validated, so only the statements under test cross the wire.
  pool = poolFor(db, { host: '127.0.0.1', port: counter.port, maxConnections: 1, validateAfterIdleMs: 3_600_000 });
  await pool.query('select 1');
});
afterAll(async () => {
  await pool?.close({ force: true });
  counter?.close();
  await db?.drop();
});

test('getDatabaseStats sends the same statements for 10 tables as for 300, in one read-only transaction', async () => {
  await createTables(1, 10);
  const small = await counter.record(async () => {
    const stats = await getDatabaseStats(pool);
    expect(stats.tableSizes).toHaveLength(10);
    expect(stats.indexUsage).toHaveLength(20);
  });
  await createTables(11, 300);
  const large = await counter.record(async () => {
    const stats = await getDatabaseStats(pool);
    expect(stats.tableSizes).toHaveLength(300);
    expect(stats.indexUsage).toHaveLength(600);
  });
  console.info(`[stats] getDatabaseStats statements on the wire: ${small.length} for 10 tables, ${large.length} for 300 tables`);
  expect(large.length).toBe(small.length);
  expect(small.length).toBeLessThanOrEqual(15);
  expect(small[0]).toMatch(/^begin .*read only/);
  expect(small.at(-1)).toBe('commit');
});

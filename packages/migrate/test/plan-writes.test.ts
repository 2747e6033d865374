import type { Pool } from '@accountdb/pool';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { planMigrations, runMigrations } from '../src/index.js';
import { createFixture, type Fixture } from './fixture.js';

// Its own database: nothing else commits in it while this file measures.
let fx: Fixture;
let observer: pg.Client;
beforeAll(async () => {
  fx = await createFixture();
  observer = new pg.Client({ ...fx.db });
  await observer.connect();
  // The observer reads inside one transaction it never commits, so it adds nothing to xact_commit itself.
  await observer.query('BEGIN');
});
afterAll(async () => {
  await observer?.end();
  await fx?.close();
});

/**
 * Counters of the database after `pool`'s session has flushed its statistics. The flush is forced in a rolled-back
 * transaction (so it adds no commit); a backend flushes before it reports ReadyForQuery, so the numbers are final.
 */
async function counters(pool: Pool): Promise<{ commits: number; rows: number }> {
  await pool.withConnection(async (c) => {
    await c.query('BEGIN');
    await c.query('SELECT pg_stat_force_next_flush()');
    await c.query('ROLLBACK');
  });
  await observer.query('SELECT pg_stat_clear_snapshot()');
  const { rows } = await observer.query(
    'SELECT xact_commit::int AS commits, (tup_inserted + tup_updated + tup_deleted)::int AS rows FROM pg_stat_database WHERE datname = current_database()',
  );
  return rows[0];
}

test('plan writes nothing: no commit and no row change in pg_stat_database, while up (the control) shows both', async () => {
  const dir = await fx.dir({
    '0001_a.sql': 'CREATE TABLE plan_t (id int, a int);',
    '0002_b.sql': 'CREATE INDEX plan_t_a ON plan_t (a);',
  });
  // One connection: plan and the forced flushes share a backend.
  const pool = fx.pool({ max: 1 });
  await runMigrations(pool, { dir, to: 1 });
  const before = await counters(pool);
  const plan = await planMigrations(pool, { dir });
  expect(plan.migrations.map((m) => m.file)).toEqual(['0002_b.sql']);
  expect(plan.findings.map((f) => f.rule)).toEqual(['index-not-concurrent']);
  const afterPlan = await counters(pool);
  expect(afterPlan).toEqual(before);
  const { rows } = await observer.query('SELECT script FROM schema_migrations ORDER BY installed_rank');
  expect(rows).toEqual([{ script: '0001_a.sql' }]);
  // Control: the same measurement sees what `up` commits.
  await runMigrations(pool, { dir });
  const afterUp = await counters(pool);
  expect(afterUp.commits).toBeGreaterThan(afterPlan.commits);
  expect(afterUp.rows).toBeGreaterThan(afterPlan.rows);
});

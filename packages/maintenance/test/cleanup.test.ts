import { createPool, InFailedTransactionError } from '@accountdb/pool';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  type CleanupEvent,
  type CleanupPlan,
  cleanupDatabase,
  getTableNames,
  InsufficientPrivilegeError,
  MaintenanceInputError,
  planCleanup,
} from '../src/index.js';
import {
  createFixture,
  eventually,
  type Fixture,
  holdInTransaction,
  maintenanceStatements,
  recordingPool,
  runAndFlush,
  stat,
} from './fixture.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await createFixture();
  await fx.db.admin(`
    create schema app;
    create table app.churn (id int primary key, v text) with (autovacuum_enabled = false);
    create table app.quiet (id int primary key) with (autovacuum_enabled = false);
    create table app.fresh (id int) with (autovacuum_enabled = false);
    create table app.bloat (id int primary key) with (autovacuum_enabled = false);
    create table victim (id int);`);
  // Rows written on connections that close (and so report their statistics) before the VACUUM: a
  // long-lived session's counts could arrive later and make app.quiet look modified.
  await runAndFlush(
    fx.db,
    `insert into app.churn select g, 'row ' || g from generate_series(1, 5000) g;
     insert into app.quiet select generate_series(1, 100);
     insert into app.bloat select generate_series(1, 50000);
     insert into victim values (1);`,
  );
  await fx.db.admin('vacuum analyze app.churn, app.quiet, app.bloat');
  await runAndFlush(
    fx.db,
    `delete from app.churn where id % 5 <> 0; delete from app.bloat where id % 10 <> 0; insert into app.fresh select generate_series(1, 10)`,
  );
  await eventually(async () => ((await stat(fx.db, 'app.churn')).dead as number) >= 4000, 'dead tuples in statistics');
  // The bloated index: its table shrank by 90%, the btree did not.
  await fx.db.admin('vacuum analyze app.bloat');
});
afterAll(() => fx?.close());

const app = { schemas: ['app'] };

test('getTableNames lists tables with catalog-quoted names, filtered by bound LIKE patterns', async () => {
  expect((await getTableNames(fx.pool, app)).map((t) => t.qualified)).toEqual([
    'app.bloat',
    'app.churn',
    'app.fresh',
    'app.quiet',
  ]);
  expect((await getTableNames(fx.pool, { ...app, include: ['%u%'], exclude: ['quiet'] })).map((t) => t.name)).toEqual(['churn']);
  expect((await getTableNames(fx.pool)).map((t) => t.qualified)).toContain('public.victim');
  expect(await getTableNames(fx.pool, { include: ["'; drop table victim; --"] })).toEqual([]);
  await expect(getTableNames(fx.pool, { schemas: 'app' as never })).rejects.toBeInstanceOf(MaintenanceInputError);
});

test('the plan selects tables by autovacuum’s own formulas, with reasons and numbers, in priority order', async () => {
  const plan = await planCleanup(fx.pool, { ...app, minIndexPages: 10 });
  const byRelation = new Map(plan.steps.map((s) => [s.relation, s]));
  const churn = byRelation.get('app.churn');
  expect(churn?.action).toBe('vacuum');
  expect(churn?.reason).toMatch(/^\d+ dead tuples > autovacuum threshold \d+/);
  expect(churn?.numbers.deadTuples).toBeGreaterThanOrEqual(4000);
  expect(churn?.numbers.deadTuples).toBeGreaterThan(churn?.numbers.vacuumThreshold as number);
  expect(churn?.sql).toBe('VACUUM (ANALYZE TRUE, SKIP_LOCKED TRUE) app.churn');
  expect(byRelation.get('app.fresh')).toMatchObject({ action: 'analyze', reason: 'never analyzed' });
  expect(byRelation.has('app.quiet')).toBe(false);
  const bloat = byRelation.get('app.bloat_pkey');
  expect(bloat).toMatchObject({ action: 'reindex', sql: 'REINDEX INDEX CONCURRENTLY app.bloat_pkey' });
  expect(bloat?.reason).toMatch(/^btree bloat estimated at \d+%/);
  expect(bloat?.numbers.bloatRatio).toBeGreaterThan(0.5);
  expect(plan.steps.map((s) => s.action)).toEqual(
    [...plan.steps.map((s) => s.action)].sort(
      (a, b) =>
        ['vacuum-freeze', 'vacuum', 'analyze', 'reindex'].indexOf(a) -
        ['vacuum-freeze', 'vacuum', 'analyze', 'reindex'].indexOf(b),
    ),
  );
  // Near wraparound (threshold lowered so every table qualifies): VACUUM FREEZE first.
  const freeze = await planCleanup(fx.pool, { ...app, freezeAge: 0 });
  expect(freeze.steps[0]?.action).toBe('vacuum-freeze');
  expect(freeze.steps[0]?.reason).toMatch(/^transaction ID age \d+ > 0/);
  await expect(planCleanup(fx.pool, { bloatRatio: 2 })).rejects.toMatchObject({ field: 'bloatRatio' });
  // A server error during planning or listing comes out as pool's class, with its SQLSTATE.
  const lease = await fx.pool.acquire();
  try {
    await lease.query('begin');
    await lease.query('select 1/0').catch(() => {});
    for (const call of [() => planCleanup(lease, app), () => getTableNames(lease, app)])
      await expect(call()).rejects.toSatisfy(
        (e) => e instanceof InFailedTransactionError && e.code === 'IN_FAILED_TRANSACTION' && e.sqlstate === '25P02',
      );
    await lease.query('rollback');
  } finally {
    lease.release();
  }
});

test('a dry run sends only catalog reads and returns the exact SQL of each step', async () => {
  const { db, sent } = recordingPool(fx.pool);
  // Only what maintenance changes: tuple counts can move as other sessions' pending statistics arrive.
  const maintained = async () => {
    const { last_vacuum, last_analyze, vacuums, analyzes } = await stat(fx.db, 'app.churn');
    return { last_vacuum, last_analyze, vacuums, analyzes };
  };
  const before = await maintained();
  const report = await cleanupDatabase(db, { dryRun: true, planOptions: { ...app, minIndexPages: 10 } });
  expect(report.dryRun).toBe(true);
  expect(report.results.length).toBeGreaterThan(0);
  for (const r of report.results) expect(r).toMatchObject({ status: 'planned', sql: r.step.sql });
  expect(maintenanceStatements(sent)).toEqual([]);
  expect(await maintained()).toEqual(before);
});

test('bloat: exact takes dead tuples from pgstattuple and index bloat from pgstatindex; the estimate without the extension or its grant', async () => {
  const options = { ...app, minIndexPages: 10, bloat: 'exact' as const };
  expect((await planCleanup(fx.pool, options)).bloatSource).toBe('estimate'); // not installed yet
  await fx.db.admin('create extension pgstattuple');
  const plan = await planCleanup(fx.pool, options);
  expect(plan.bloatSource).toBe('pgstattuple');
  const churn = plan.steps.find((s) => s.relation === 'app.churn');
  const t = (await fx.db.admin(`select * from pgstattuple('app.churn')`)).rows[0];
  // 4,000 of 5,000 rows were deleted: pgstattuple counts exactly that.
  expect(churn?.numbers).toMatchObject({
    deadTuples: 4000,
    tableBytes: Number(t.table_len),
    deadTupleBytes: Number(t.dead_tuple_len),
    freeBytes: Number(t.free_space),
  });
  expect(Number(t.dead_tuple_count)).toBe(4000);
  expect(churn?.reason).toMatch(/^4000 dead tuples \(counted by pgstattuple: \d+ of \d+ bytes\) > autovacuum threshold/);
  const i = (await fx.db.admin(`select * from pgstatindex('app.bloat_pkey')`)).rows[0];
  const bloat = plan.steps.find((s) => s.relation === 'app.bloat_pkey');
  expect(bloat?.numbers).toMatchObject({
    pages: Number(i.index_size) / 8192,
    avgLeafDensity: i.avg_leaf_density,
    leafFragmentation: i.leaf_fragmentation,
  });
  expect(bloat?.reason).toMatch(/^btree bloat measured by pgstatindex \(average leaf density [\d.]+%\) at \d+%/);
  // The pages it says would do are about what a fresh btree over the surviving keys takes.
  await fx.db.admin('create table fresh_copy as select id from app.bloat; create index fresh_copy_id on fresh_copy (id)');
  const fresh = (await fx.db.admin(`select pg_relation_size('fresh_copy_id') / 8192 as p`)).rows[0].p;
  expect(Math.abs((bloat?.numbers.expectedPages as number) - Number(fresh)) / Number(fresh)).toBeLessThan(0.25);
  // A role that may not execute pgstattuple gets the estimate.
  const role = await fx.db.createRestrictedRole();
  const pool = createPool({ ...role, minConnections: 0, maxConnections: 1 });
  try {
    expect((await planCleanup(pool, options)).bloatSource).toBe('estimate');
  } finally {
    await pool.close({ force: true });
  }
});

test('cleanupDatabase runs the plan: dead tuples fall, the bloated index shrinks, events arrive in order', async () => {
  const plan = await planCleanup(fx.pool, { ...app, minIndexPages: 10 });
  const deadBefore = (await stat(fx.db, 'app.churn')).dead as number;
  const indexBefore = (await fx.db.admin(`select pg_relation_size('app.bloat_pkey')::int8 as b`)).rows[0].b;
  const events: CleanupEvent[] = [];
  const report = await cleanupDatabase(fx.pool, { plan, onProgress: (e) => events.push(e) });
  expect(report).toMatchObject({ done: plan.steps.length, skipped: 0, failed: 0 });
  expect((await stat(fx.db, 'app.churn')).dead).toBeLessThan(deadBefore);
  expect((await stat(fx.db, 'app.fresh')).last_analyze).not.toBeNull();
  expect(Number((await fx.db.admin(`select pg_relation_size('app.bloat_pkey')::int8 as b`)).rows[0].b)).toBeLessThan(
    Number(indexBefore),
  );
  const kinds = events.filter((e) => e.type !== 'progress').map((e) => `${e.type}:${e.index}`);
  expect(kinds).toEqual(plan.steps.flatMap((_, i) => [`step-start:${i}`, `step-end:${i}`]));
});

test('a locked table is skipped, a failing step does not stop the others, and a plan’s own SQL and names are never sent', async () => {
  const role = await fx.db.createRestrictedRole();
  await fx.db.admin(
    `grant usage on schema app to ${role.user}; alter table app.quiet owner to ${role.user}; alter table app.fresh owner to ${role.user}`,
  );
  const oid = async (t: string) => Number((await fx.db.admin('select $1::regclass::oid::int8 as o', [t])).rows[0].o);
  const step = async (relation: string, action: 'vacuum' | 'analyze') => ({
    action,
    relation,
    relationId: await oid(relation),
    reason: 'test',
    numbers: {},
    sql: 'drop table victim', // forged: must be ignored
  });
  await fx.db.admin('create table app.doomed (id int)');
  const doomed = await step('app.doomed', 'vacuum');
  await fx.db.admin('drop table app.doomed');
  const plan: CleanupPlan = {
    serverVersion: fx.serverVersion,
    bloatSource: 'estimate',
    steps: [await step('app.churn', 'vacuum'), await step('app.quiet', 'vacuum'), doomed, await step('app.fresh', 'analyze')],
  };
  const pool = createPool({ ...role, minConnections: 0, maxConnections: 2 });
  const holder = await holdInTransaction(fx.db, ['lock table app.quiet in access exclusive mode']);
  try {
    const report = await cleanupDatabase(pool, { plan });
    expect(report.results.map((r) => [r.status, r.skipReason])).toEqual([
      ['failed', undefined], // not the owner of app.churn
      ['skipped', 'locked'],
      ['skipped', 'gone'],
      ['done', undefined],
    ]);
    expect(report.results[0]?.error).toBeInstanceOf(InsufficientPrivilegeError);
    expect(report.results[0]?.error).toMatchObject({ code: 'INSUFFICIENT_PRIVILEGE', sqlstate: '42501' });
    expect(report.results[3]?.sql).toBe('ANALYZE (SKIP_LOCKED TRUE) app.fresh');
    expect(report).toMatchObject({ done: 1, skipped: 2, failed: 1 });
  } finally {
    await holder.release();
    await pool.close({ force: true });
  }
  expect((await fx.db.admin('select count(*)::int as n from victim')).rows[0].n).toBe(1);
  await expect(
    cleanupDatabase(fx.pool, { plan: { steps: [{ action: 'drop', relationId: 1 }] } as never }),
  ).rejects.toBeInstanceOf(MaintenanceInputError);
  // jobs: an integer, on a pool with a connection per job (and one for progress reads).
  const lease = await fx.pool.acquire();
  try {
    for (const [target, jobs, onProgress] of [
      [fx.pool, 0, undefined],
      [fx.pool, 1.5, undefined],
      [fx.pool, 5, undefined],
      [fx.pool, 4, () => {}],
      [lease, 2, undefined],
    ] as const)
      await expect(cleanupDatabase(target, { plan, jobs, ...(onProgress && { onProgress }) })).rejects.toMatchObject({
        field: 'jobs',
      });
  } finally {
    lease.release();
  }
});

import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  type CleanupAction,
  type CleanupPlan,
  cleanupDatabase,
  type ProgressSample,
  planCleanup,
  QueryCanceledError,
  StatementTimeoutError,
  vacuumTable,
} from '../src/index.js';
import { createFixture, eventually, type Fixture, stat } from './fixture.js';

// Cost-based delay makes VACUUM sleep after every page: a small table takes long enough to watch and
// cancel, however fast the machine. Nothing here asserts on time.
let fx: Fixture;
beforeAll(async () => {
  fx = await createFixture({
    hooks: { onConnect: (c) => c.query('set vacuum_cost_delay = 5; set vacuum_cost_limit = 1').then(() => {}) },
  });
  await fx.db.admin(`
    create table slow (id int, pad text) with (autovacuum_enabled = false);
    insert into slow select g, repeat('p', 200) from generate_series(1, 3000) g;
    create table slower (id int, pad text) with (autovacuum_enabled = false);
    insert into slower select g, repeat('p', 200) from generate_series(1, 60000) g;
    create table slower2 (like slower) with (autovacuum_enabled = false);
    insert into slower2 select * from slower;
    create index slow_id on slow (id);
    create table tiny (id int);`);
});
afterAll(() => fx?.close());

test('progress from pg_stat_progress_vacuum arrives with rising percentages', async () => {
  const samples: ProgressSample[] = [];
  const result = await vacuumTable(fx.pool, 'slow', {
    disablePageSkipping: true,
    progressIntervalMs: 20,
    onProgress: (s) => samples.push(s),
  });
  expect(result.status).toBe('done');
  const percents = samples.filter((s) => s.command === 'vacuum' && s.percent !== null).map((s) => s.percent as number);
  expect(percents.length).toBeGreaterThanOrEqual(2);
  for (let i = 1; i < percents.length; i++) expect(percents[i]).toBeGreaterThanOrEqual(percents[i - 1] as number);
  expect(percents.at(-1)).toBeGreaterThan(percents[0] as number);
  expect(samples.some((s) => s.phase === 'scanning heap')).toBe(true);
});

test('an AbortSignal cancels a running VACUUM on the server; the connection stays usable', async () => {
  const controller = new AbortController();
  const error = await vacuumTable(fx.pool, 'slower', {
    disablePageSkipping: true,
    progressIntervalMs: 20,
    signal: controller.signal,
    onProgress: (s) => {
      if ((s.percent ?? 0) > 0) controller.abort();
    },
  }).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(QueryCanceledError);
  expect(error).toMatchObject({ code: 'QUERY_CANCELED', sqlstate: '57014', message: 'Statement canceled by AbortSignal' });
  // Canceled mid-run: the VACUUM never completed.
  expect((await stat(fx.db, 'slower')).vacuums).toBe(0);
  await eventually(
    async () =>
      (
        await fx.db.admin(
          `select count(*)::int as n from pg_stat_activity where query ilike 'vacuum%slower%' and state = 'active'`,
        )
      ).rows[0].n === 0,
    'the vacuum to stop',
  );
  expect((await fx.pool.query('select 1 as one')).rows[0]?.one).toBe(1);
});

test('statementTimeoutMs ends a VACUUM that runs past it: StatementTimeoutError, the session settings restored', async () => {
  // At 5 ms of cost delay per page, this VACUUM takes seconds; the bound is a tenth of a second.
  const error = await vacuumTable(fx.pool, 'slower', { disablePageSkipping: true, statementTimeoutMs: 100 }).catch(
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StatementTimeoutError);
  expect(error).toMatchObject({ code: 'STATEMENT_TIMEOUT', sqlstate: '57014' });
  expect((await stat(fx.db, 'slower')).vacuums).toBe(0);
  const { rows } = await fx.pool.query(`select current_setting('statement_timeout') as s, current_setting('lock_timeout') as l`);
  expect(rows[0]).toEqual({ s: '0', l: '0' });
});

test('canceling cleanupDatabase fails the running step and skips the rest', async () => {
  const plan = await planCleanup(fx.pool, { freezeAge: 0, include: ['slow', 'slower'] });
  expect(plan.steps.map((s) => s.relation).sort()).toEqual(['public.slow', 'public.slower']);
  const controller = new AbortController();
  const report = await cleanupDatabase(fx.pool, {
    plan,
    signal: controller.signal,
    progressIntervalMs: 20,
    onProgress: (e) => {
      if (e.type === 'progress' && (e.percent ?? 0) > 0) controller.abort();
    },
  });
  expect(report.results.map((r) => r.status)).toEqual(['failed', 'skipped']);
  expect(report.results[0]?.error).toBeInstanceOf(QueryCanceledError);
  expect(report.results[1]?.skipReason).toBe('canceled');
});

async function planOf(steps: [CleanupAction, string][]): Promise<CleanupPlan> {
  const oids = await fx.db.admin('select r::regclass::oid::int8 as oid from unnest($1::text[]) r', [steps.map(([, r]) => r)]);
  return {
    serverVersion: fx.serverVersion,
    bloatSource: 'estimate',
    steps: steps.map(([action, relation], i) => ({
      action,
      relation,
      relationId: Number(oids.rows[i].oid),
      reason: '',
      numbers: {},
      sql: '',
    })),
  };
}

test('jobs: 2 runs two VACUUMs at once on their own connections, skips over a step on a busy table, and a signal cancels both', async () => {
  const plan = await planOf([
    ['vacuum', 'slower'],
    ['analyze', 'slower'], // same table as the running step: must wait for it
    ['vacuum', 'slower2'],
  ]);
  const controller = new AbortController();
  const events: string[] = [];
  const running = cleanupDatabase(fx.pool, {
    plan,
    jobs: 2,
    signal: controller.signal,
    onProgress: (e) => e.type !== 'progress' && events.push(`${e.type}:${e.index}`),
  }).then(
    (report) => ({ report }),
    (error: unknown) => ({ error }),
  );
  const vacuuming = async () =>
    (
      await fx.db.admin(
        `select coalesce(array_agg(relid::regclass::text order by relid::regclass::text), '{}') as r, count(distinct pid)::int as pids
           from pg_stat_progress_vacuum where datid = (select oid from pg_database where datname = current_database())`,
      )
    ).rows[0] as { r: string[]; pids: number };
  expect(await eventually(async () => (await vacuuming()).pids === 2 && vacuuming(), 'two VACUUMs at once')).toEqual({
    r: ['slower', 'slower2'],
    pids: 2,
  });
  controller.abort();
  const { report, error } = (await running) as { report?: Awaited<ReturnType<typeof cleanupDatabase>>; error?: unknown };
  expect(error).toBeUndefined();
  expect(report?.results.map((r) => [r.status, r.skipReason])).toEqual([
    ['failed', undefined],
    ['skipped', 'canceled'],
    ['failed', undefined],
  ]);
  for (const i of [0, 2]) expect(report?.results[i]?.error).toBeInstanceOf(QueryCanceledError);
  expect(events).not.toContain('step-start:1');
  expect((await vacuuming()).pids).toBe(0);
  for (const t of ['slower', 'slower2']) expect((await stat(fx.db, t)).vacuums).toBe(0);
});

test('jobs: steps on one table (or its index) never overlap; every step runs', async () => {
  const plan = await planOf([
    ['vacuum', 'slow'],
    ['reindex', 'slow_id'],
    ['analyze', 'slow'],
    ['analyze', 'tiny'],
  ]);
  const events: string[] = [];
  const report = await cleanupDatabase(fx.pool, {
    plan,
    jobs: 3,
    onProgress: (e) => e.type !== 'progress' && events.push(`${e.type}:${e.index}`),
  });
  expect(report).toMatchObject({ done: 4, skipped: 0, failed: 0 });
  const at = (e: string) => events.indexOf(e);
  expect(at('step-start:1')).toBeGreaterThan(at('step-end:0'));
  expect(at('step-start:2')).toBeGreaterThan(Math.max(at('step-end:0'), at('step-end:1')));
  expect(events).toHaveLength(8);
});

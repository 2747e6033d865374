import { afterAll, beforeAll, expect, test } from 'vitest';
import { cleanupDatabase, MaintenanceCanceledError, type ProgressSample, planCleanup, vacuumTable } from '../src/index.js';
import { createFixture, eventually, type Fixture } from './fixture.js';

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
    insert into slower select g, repeat('p', 200) from generate_series(1, 60000) g;`);
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
  expect(error).toBeInstanceOf(MaintenanceCanceledError);
  expect(error).toMatchObject({ code: 'MAINTENANCE_CANCELED', sqlstate: '57014' });
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

test('canceling cleanupDatabase fails the running step and skips the rest', async () => {
  const plan = await planCleanup(fx.pool, { freezeAge: 0, include: ['slow%'] });
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
  expect(report.results[0]?.error).toBeInstanceOf(MaintenanceCanceledError);
  expect(report.results[1]?.skipReason).toBe('canceled');
});

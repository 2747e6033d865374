import { afterAll, beforeAll, expect, test } from 'vitest';
import { main } from '../src/cli.js';
import { createFixture, eventually, type Fixture, runAndFlush, stat } from './fixture.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await createFixture();
  await fx.db.admin('create schema app; create table app.t (id int primary key) with (autovacuum_enabled = false)');
  await runAndFlush(fx.db, 'insert into app.t select generate_series(1, 100)');
  await eventually(async () => ((await stat(fx.db, 'app.t')).live as number) > 0, 'insert statistics');
});
afterAll(() => fx?.close());

async function run(...argv: string[]): Promise<{ code: number; out: string; err: string }> {
  return runWith({}, ...argv);
}

async function runWith(
  { isTTY = false, url = fx.db.url }: { isTTY?: boolean; url?: string },
  ...argv: string[]
): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, {
    env: { DATABASE_URL: url },
    stdout: { write: (s: string) => (out += s), isTTY },
    stderr: { write: (s: string) => (err += s) },
  });
  return { code, out, err };
}

test('accountdb-maintenance plan | run --dry-run | run, as text and JSON, with exit codes', async () => {
  const plan = await run('plan', '--schema', 'app');
  expect(plan).toMatchObject({ code: 0, err: '' });
  expect(plan.out).toMatch(/^analyze +app\.t: never analyzed/m);
  const json = JSON.parse((await run('plan', '--json', '--schema', 'app')).out);
  expect(json.steps[0]).toMatchObject({ action: 'analyze', relation: 'app.t' });
  const dry = await run('run', '--dry-run', '--schema', 'app');
  expect(dry.out).toContain('ANALYZE (SKIP_LOCKED TRUE) app.t;');
  expect((await stat(fx.db, 'app.t')).last_analyze).toBeNull();
  const real = await run('run', '--schema', 'app', '--lock-timeout-ms', '1000');
  expect(real.code).toBe(0);
  expect(real.out).toMatch(/1\/1 done +ANALYZE \(SKIP_LOCKED TRUE\) app\.t/);
  expect((await stat(fx.db, 'app.t')).last_analyze).not.toBeNull();
  expect(await run('vacuum')).toMatchObject({ code: 2 });
  expect(await run('run', '--lock-timeout-ms', 'soon')).toMatchObject({ code: 2 });
});

test('a step the role may not run: exit 1, the error with its code and SQLSTATE in text and in JSON', async () => {
  const role = await fx.db.createRestrictedRole();
  await fx.db.admin('create schema theirs; create table theirs.t (id int) with (autovacuum_enabled = false)');
  await runAndFlush(fx.db, 'insert into theirs.t select generate_series(1, 10)');
  await eventually(async () => ((await stat(fx.db, 'theirs.t')).live as number) > 0, 'insert statistics');
  const text = await runWith({ url: role.url }, 'run', '--schema', 'theirs');
  expect(text.code).toBe(1);
  expect(text.out).toMatch(
    /^1\/1 failed +ANALYZE \(SKIP_LOCKED TRUE\) theirs\.t — INSUFFICIENT_PRIVILEGE \(SQLSTATE 42501\): The current role may not maintain theirs\.t/m,
  );
  const json = await runWith({ url: role.url }, 'run', '--json', '--schema', 'theirs');
  expect(json.code).toBe(1);
  expect(JSON.parse(json.out).results[0]).toMatchObject({
    status: 'failed',
    error: { name: 'InsufficientPrivilegeError', code: 'INSUFFICIENT_PRIVILEGE', sqlstate: '42501' },
  });
  // A failure before any step: the message on stderr, the error as JSON on stdout; bad input exits 2.
  const refused = await run('run', '--json', '--jobs', '0', '--schema', 'theirs');
  expect(refused).toMatchObject({ code: 2, err: 'MAINTENANCE_INVALID_INPUT: jobs must be an integer from 1 to 1024\n' });
  expect(JSON.parse(refused.out).error).toMatchObject({ code: 'MAINTENANCE_INVALID_INPUT', field: 'jobs' });
});

test('run --jobs 2 on a TTY: a progress bar from pg_stat_progress_vacuum, both tables vacuumed', async () => {
  // Cost-based delay so each VACUUM lasts long enough to be sampled (no assertion on time).
  await fx.db.admin(`alter database "${fx.db.database.replaceAll('"', '""')}" set vacuum_cost_delay = 5`);
  await fx.db.admin(`alter database "${fx.db.database.replaceAll('"', '""')}" set vacuum_cost_limit = 1`);
  await fx.db.admin(`create schema big;
    create table big.a (id int, pad text) with (autovacuum_enabled = false);
    create table big.b (id int, pad text) with (autovacuum_enabled = false);
    insert into big.a select g, repeat('p', 200) from generate_series(1, 6000) g;
    insert into big.b select * from big.a;
    analyze big.a, big.b`);
  await runAndFlush(fx.db, 'delete from big.a where id % 2 = 0; delete from big.b where id % 2 = 0');
  await eventually(async () => ((await stat(fx.db, 'big.b')).dead as number) > 0, 'dead tuples in statistics');
  const result = await runWith({ isTTY: true }, 'run', '--schema', 'big', '--jobs', '2');
  expect(result).toMatchObject({ code: 0, err: '' });
  // A bar line: carriage return, [###...] NN% i/2 relation phase, then ESC [K (erase to end of line).
  expect(result.out).toMatch(new RegExp(String.raw`\r\[#*\.*\] +\d+% \d/2 big\.[ab] [a-z ]+${'\u001b'}\[K`));
  expect(result.out).toMatch(/2 done, 0 skipped, 0 failed\n$/);
  for (const t of ['big.a', 'big.b']) expect((await stat(fx.db, t)).vacuums).toBe(1);
  expect(await run('run', '--jobs', 'many')).toMatchObject({ code: 2 });
});

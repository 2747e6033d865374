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
  let out = '';
  let err = '';
  const code = await main(argv, {
    env: { DATABASE_URL: fx.db.url },
    stdout: { write: (s: string) => (out += s), isTTY: false },
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

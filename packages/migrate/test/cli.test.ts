import { spawn, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { historyTable } from '../src/history.js';
import { lockKey } from '../src/lock.js';
import { createFixture, type Fixture, uniqueName } from './fixture.js';

const CLI = fileURLToPath(new URL('../dist/cli.js', import.meta.url));

let fx: Fixture;
beforeAll(async () => {
  // The test spawns the built CLI, as a user runs it.
  if (!existsSync(CLI))
    spawnSync('pnpm', ['exec', 'tsup'], { cwd: fileURLToPath(new URL('..', import.meta.url)), stdio: 'inherit' });
  fx = await createFixture();
});
afterAll(async () => {
  await fx?.close();
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** The environment without the developer's own database settings, plus `extra`. */
function env(extra: Record<string, string>): NodeJS.ProcessEnv {
  const clean = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !/^(DB_|PG|DATABASE_URL$|MIGRATIONS_DIR$)/.test(k)),
  );
  return { ...clean, DATABASE_URL: `${fx.db.url}?sslmode=disable`, ...extra };
}

function cli(args: string[], extra: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI, ...args], { env: env(extra) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

test('8 runners in separate processes: every one exits 0, each migration applied exactly once', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const files: Record<string, string> = { '0001_create.sql': `CREATE TABLE ${n} (file int);` };
  for (let i = 2; i <= 10; i++) files[`${String(i).padStart(4, '0')}_row.sql`] = `INSERT INTO ${n} VALUES (${i});`;
  const dir = await fx.dir(files);
  const runs = await Promise.all(Array.from({ length: 8 }, () => cli(['up', '--dir', dir, '--table', t])));
  expect(runs.map((r) => r.code)).toEqual(Array(8).fill(0));
  const { rows } = await fx.db.admin(`SELECT count(*)::int AS n, count(DISTINCT file)::int AS d FROM ${n}`);
  expect(rows[0]).toEqual({ n: 9, d: 9 });
  expect((await fx.db.admin(`SELECT count(*)::int AS n FROM "${t}"`)).rows[0].n).toBe(10);
  // Exactly one runner printed per-migration progress lines with durations.
  expect(runs.filter((r) => /\[10\/10\] 0010_row\.sql \d+ ms/.test(r.stderr))).toHaveLength(1);
});

test('status exit codes: 4 pending, 0 up to date, 2 drift; up refuses drift with 2; --json for scripts', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({ '0001_create.sql': `CREATE TABLE ${n} (id int);` });
  const pending = await cli(['status', '--dir', dir, '--table', t, '--json']);
  expect(pending.code).toBe(4);
  expect(JSON.parse(pending.stdout).pending).toEqual(['0001_create.sql']);
  const plan = await cli(['plan', '--dir', dir, '--table', t, '--json']);
  expect(plan.code).toBe(0);
  expect(JSON.parse(plan.stdout).migrations).toEqual([
    { file: '0001_create.sql', kind: 'versioned', transaction: true, statements: 1 },
  ]);
  expect((await cli(['up', '--dir', dir, '--table', t])).code).toBe(0);
  expect((await cli(['status', '--dir', dir, '--table', t])).code).toBe(0);
  expect((await cli(['validate', '--dir', dir, '--table', t])).code).toBe(0);
  await fx.write(dir, '0001_create.sql', `CREATE TABLE ${n} (id bigint);`);
  const drift = await cli(['status', '--dir', dir, '--table', t]);
  expect(drift.code).toBe(2);
  expect(drift.stderr).toMatch(/drifted\s+0001_create\.sql/);
  const up = await cli(['up', '--dir', dir, '--table', t, '--json']);
  expect(up.code).toBe(2);
  expect(JSON.parse(up.stdout).error.code).toBe('MIGRATION_DRIFT');
});

test('a failed migration exits 1; a held migration lock exits 3 naming the holder', async () => {
  const t = uniqueName('hist');
  const dir = await fx.dir({ '0001_bad.sql': 'SELECT 1/0;' });
  const failed = await cli(['up', '--dir', dir, '--table', t]);
  expect(failed.code).toBe(1);
  expect(failed.stderr).toContain('Migration 0001_bad.sql failed');
  const holder = new pg.Client({ ...fx.db });
  await holder.connect();
  try {
    await holder.query("SET application_name = 'other-deploy'");
    await holder.query('SELECT pg_advisory_lock($1::bigint)', [lockKey(historyTable('public', t)).toString()]);
    const locked = await cli(['up', '--dir', dir, '--table', t, '--wait', '300']);
    expect(locked.code).toBe(3);
    expect(locked.stderr).toContain(`pid ${(holder as unknown as { processID: number }).processID} (other-deploy)`);
  } finally {
    await holder.end();
  }
});

test('lint: plan and up print findings (file:line, rule, fix); --strict and parse errors exit 5 applying nothing', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  await fx.db.admin(`CREATE TABLE ${n} (id int, a int)`);
  const dir = await fx.dir({ '0001_a.sql': `SELECT 1;\nALTER TABLE ${n} ALTER COLUMN a TYPE bigint;` });
  const plan = await cli(['plan', '--dir', dir, '--table', t, '--json']);
  expect(plan.code).toBe(0);
  expect(plan.stderr).toContain('0001_a.sql:2: warning [alter-column-type]');
  expect(JSON.parse(plan.stdout).findings).toMatchObject([{ file: '0001_a.sql', line: 2, rule: 'alter-column-type' }]);
  expect((await cli(['plan', '--dir', dir, '--table', t, '--strict'])).code).toBe(5);
  const strict = await cli(['up', '--dir', dir, '--table', t, '--strict', '--json']);
  expect(strict.code).toBe(5);
  expect(JSON.parse(strict.stdout).error).toMatchObject({ code: 'MIGRATION_LINT', findings: [{ severity: 'error' }] });
  expect((await fx.db.admin(`SELECT count(*)::int AS n FROM "${t}"`)).rows[0].n).toBe(0);
  const up = await cli(['up', '--dir', dir, '--table', t, '--json']);
  expect(up.code).toBe(0);
  expect(up.stderr).toMatch(/0001_a\.sql:2: warning \[alter-column-type\] .*; fix: /);
  expect(JSON.parse(up.stdout).findings).toHaveLength(1);
  await fx.write(dir, '0002_b.sql', 'SELECT 1;\n\nSELEC 2;');
  const broken = await cli(['plan', '--dir', dir, '--table', t]);
  expect(broken.code).toBe(5);
  expect(broken.stderr).toContain('0002_b.sql:3: error [parse-error]');
  expect((await cli(['up', '--dir', dir, '--table', t])).code).toBe(5);
});

test('usage errors and bad configuration exit 64 without echoing the password', async () => {
  expect((await cli([])).code).toBe(64);
  expect((await cli(['frobnicate'])).code).toBe(64);
  expect((await cli(['up', '--lock-timeout', 'soon'])).code).toBe(64);
  const bad = await cli(['status', '--dir', '/tmp'], {
    DATABASE_URL: 'postgres://u:s3cret-pw@127.0.0.1:1/db',
    DB_MAX_CONNECTIONS: 'ten',
  });
  expect(bad.code).toBe(64);
  expect(bad.stderr).toContain('DB_MAX_CONNECTIONS');
  expect(bad.stderr).not.toContain('s3cret-pw');
  expect((await cli(['--help'])).code).toBe(0);
});

test('create writes the next numbered file (and a down file), never overwriting', async () => {
  const dir = await fx.dir({ '0007_old.sql': 'SELECT 1;' });
  const created = await cli(['create', 'Add "users" table!', '--down', '--dir', dir, '--json']);
  expect(created.code).toBe(0);
  expect(JSON.parse(created.stdout).file).toBe('0008_add_users_table.sql');
  expect((await readdir(dir)).sort()).toEqual(['0007_old.sql', '0008_add_users_table.down.sql', '0008_add_users_table.sql']);
  expect((await cli(['create', 'views', '--repeatable', '--dir', dir])).code).toBe(0);
  expect((await cli(['create', 'views', '--repeatable', '--dir', dir])).code).toBe(1);
});

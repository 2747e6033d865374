import { ConfigError, createPool } from '@accountdb/pool';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  baselineMigrations,
  downMigrations,
  MigrationBlockedError,
  MigrationDriftError,
  MigrationFailedError,
  MigrationLockTimeoutError,
  MigrationNoDownError,
  MigrationOutOfOrderError,
  type MigrationProgress,
  migrationStatus,
  planMigrations,
  repairMigrations,
  runMigrations,
  validateMigrations,
} from '../src/index.js';
import { createFixture, type Fixture, uniqueName } from './fixture.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await createFixture();
});
afterAll(async () => {
  await fx?.close();
});

async function history(table: string) {
  const { rows } = await fx.db.admin(
    `SELECT version, script, kind, success, checksum, applied_by, duration_ms FROM "${table}" ORDER BY installed_rank`,
  );
  return rows;
}

async function tableExists(name: string): Promise<boolean> {
  const { rows } = await fx.db.admin('SELECT to_regclass($1) IS NOT NULL AS ok', [`"${name}"`]);
  return rows[0].ok;
}

/** A client outside the pools, for holding locks. */
async function client(): Promise<pg.Client> {
  const c = new pg.Client({ ...fx.db });
  await c.connect();
  return c;
}

test('up applies pending files in order with their history rows; a second run applies nothing', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({
    '0001_create.sql': `CREATE TABLE ${n} (id int);`,
    '0002_insert.sql': `INSERT INTO ${n} VALUES (1), (2);`,
    'R__view.sql': `CREATE OR REPLACE VIEW ${n}_v AS SELECT count(*) FROM ${n};`,
  });
  const pool = fx.pool();
  const events: MigrationProgress[] = [];
  const applied = await runMigrations(pool, { dir, table: t, onProgress: (p) => events.push(p) });
  expect(applied.map((a) => a.file)).toEqual(['0001_create.sql', '0002_insert.sql', 'R__view.sql']);
  expect(events.filter((e) => e.event === 'done')).toHaveLength(3);
  const rows = await history(t);
  expect(rows.map((r) => [r.version, r.kind, r.success])).toEqual([
    ['1', 'versioned', true],
    ['2', 'versioned', true],
    [null, 'repeatable', true],
  ]);
  expect(rows[0].checksum).toMatch(/^[0-9a-f]{64}$/);
  expect(rows[0].applied_by).toBe(fx.db.user);
  expect(await runMigrations(pool, { dir, table: t })).toEqual([]);
  const status = await migrationStatus(pool, { dir, table: t });
  expect(status.entries.map((e) => e.state)).toEqual(['applied', 'applied', 'applied']);
});

test('two concurrent runs: each migration applied exactly once', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const files: Record<string, string> = { '0001_create.sql': `CREATE TABLE ${n} (file int);` };
  for (let i = 2; i <= 6; i++) files[`000${i}_row.sql`] = `INSERT INTO ${n} VALUES (${i});`;
  const dir = await fx.dir(files);
  const [a, b] = [fx.pool(), fx.pool()];
  // Both promises get their handlers now, before anything is awaited.
  const results = await Promise.allSettled([runMigrations(a, { dir, table: t }), runMigrations(b, { dir, table: t })]);
  expect(results.map((r) => r.status)).toEqual(['fulfilled', 'fulfilled']);
  const counts = results.map((r) => (r.status === 'fulfilled' ? r.value.length : -1));
  expect(counts.sort()).toEqual([0, 6]);
  const { rows } = await fx.db.admin(`SELECT file, count(*)::int AS n FROM ${n} GROUP BY file ORDER BY file`);
  expect(rows).toEqual([2, 3, 4, 5, 6].map((file) => ({ file, n: 1 })));
  expect(await history(t)).toHaveLength(6);
});

test('the lock holder runs CREATE INDEX CONCURRENTLY while another runner waits: no deadlock', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({
    '0001_create.sql': `CREATE TABLE ${n} (id int); INSERT INTO ${n} SELECT generate_series(1, 1000);`,
    // The first statement parks the holder on a lock the test controls, so the waiter is surely polling when CIC runs.
    '0002_index.sql': `-- migrate:no-transaction\nSELECT pg_advisory_lock(4242);\nSELECT pg_advisory_unlock(4242);\nCREATE INDEX CONCURRENTLY ${n}_id ON ${n} (id);`,
  });
  const gate = await client();
  try {
    await gate.query('SELECT pg_advisory_lock(4242)');
    let holderStarted!: () => void;
    const started = new Promise<void>((r) => {
      holderStarted = r;
    });
    let waiterWaiting!: () => void;
    const waiting = new Promise<void>((r) => {
      waiterWaiting = r;
    });
    const holder = runMigrations(fx.pool(), {
      dir,
      table: t,
      onProgress: (p) => p.event === 'start' && p.file === '0002_index.sql' && holderStarted(),
    });
    holder.catch(() => {});
    await started;
    const waiter = runMigrations(fx.pool(), { dir, table: t, onProgress: (p) => p.event === 'lock-wait' && waiterWaiting() });
    waiter.catch(() => {});
    await waiting;
    await gate.query('SELECT pg_advisory_unlock(4242)');
    expect((await holder).map((a) => a.file)).toEqual(['0001_create.sql', '0002_index.sql']);
    expect(await waiter).toEqual([]);
    const { rows } = await fx.db.admin('SELECT indisvalid FROM pg_index WHERE indexrelid = to_regclass($1)', [`${n}_id`]);
    expect(rows).toEqual([{ indisvalid: true }]);
  } finally {
    await gate.end();
  }
});

test('a failure in the middle of a transactional migration leaves schema and history unchanged', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({
    '0001_ok.sql': `CREATE TABLE ${n} (id int);`,
    '0002_bad.sql': `CREATE TABLE ${n}_new (id int);\nINSERT INTO ${n} VALUES (1);\nSELECT 1/0;\nINSERT INTO ${n} VALUES (2);`,
  });
  const pool = fx.pool();
  const err = await runMigrations(pool, { dir, table: t }).catch((e) => e);
  expect(err).toBeInstanceOf(MigrationFailedError);
  expect(err).toMatchObject({ code: 'MIGRATION_FAILED', file: '0002_bad.sql', recorded: false });
  expect(err.message).toMatch(/division by zero/);
  expect(await tableExists(`${n}_new`)).toBe(false);
  expect((await fx.db.admin(`SELECT count(*)::int AS n FROM ${n}`)).rows[0].n).toBe(0);
  expect((await history(t)).map((r) => r.script)).toEqual(['0001_ok.sql']);
  // The next run tries it again (nothing recorded), and fails the same way.
  await expect(runMigrations(pool, { dir, table: t })).rejects.toBeInstanceOf(MigrationFailedError);
});

test('a failed non-transactional migration is recorded, blocks the next run, and repair unblocks it', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({
    '0001_create.sql': `CREATE TABLE ${n} (id int);`,
    '0002_split.sql': [
      '-- migrate:no-transaction',
      `CREATE INDEX CONCURRENTLY ${n}_a ON ${n} (id);`,
      "DO $$ BEGIN RAISE NOTICE 'semi;colon'; END $$;",
      `CREATE FUNCTION ${n}_f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT 2; END;`,
      `SELECT * FROM ${n}_missing;`,
    ].join('\n'),
  });
  const pool = fx.pool();
  const err = await runMigrations(pool, { dir, table: t }).catch((e) => e);
  expect(err).toBeInstanceOf(MigrationFailedError);
  expect(err).toMatchObject({ recorded: true, file: '0002_split.sql:5' });
  // Statements before the failure ran, one by one, outside a transaction.
  expect(await tableExists(`${n}_a`)).toBe(true);
  expect((await history(t)).map((r) => [r.script, r.success])).toEqual([
    ['0001_create.sql', true],
    ['0002_split.sql', false],
  ]);
  await expect(runMigrations(pool, { dir, table: t })).rejects.toBeInstanceOf(MigrationBlockedError);
  await expect(validateMigrations(pool, { dir, table: t })).rejects.toBeInstanceOf(MigrationBlockedError);
  // The operator fixes the file (and the database) by hand, then repairs.
  await fx.db.admin(`DROP INDEX ${n}_a; DROP FUNCTION ${n}_f()`);
  await fx.write(dir, '0002_split.sql', `-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY ${n}_a ON ${n} (id);\n`);
  expect(await repairMigrations(pool, { dir, table: t })).toEqual({ removedFailed: ['0002_split.sql'], realigned: [] });
  expect((await runMigrations(pool, { dir, table: t })).map((a) => a.file)).toEqual(['0002_split.sql']);
  expect((await history(t)).map((r) => r.success)).toEqual([true, true]);
});

test('drift: editing an applied file is an error naming it; a CRLF-only change is not; repair realigns', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({ '0001_create.sql': `CREATE TABLE ${n} (id int);\nSELECT 1;\n` });
  const pool = fx.pool();
  await runMigrations(pool, { dir, table: t });
  await fx.write(dir, '0001_create.sql', `\uFEFFCREATE TABLE ${n} (id int);\r\nSELECT 1;\r\n`);
  await validateMigrations(pool, { dir, table: t });
  await fx.write(dir, '0001_create.sql', `CREATE TABLE ${n} (id bigint);\nSELECT 1;\n`);
  const err = await runMigrations(pool, { dir, table: t }).catch((e) => e);
  expect(err).toBeInstanceOf(MigrationDriftError);
  expect(err.message).toContain('0001_create.sql: checksum changed');
  expect((await migrationStatus(pool, { dir, table: t })).entries[0]!.state).toBe('drifted');
  expect((await repairMigrations(pool, { dir, table: t })).realigned).toEqual(['0001_create.sql']);
  await validateMigrations(pool, { dir, table: t });
});

test('out-of-order: a pending file older than the newest applied is an error unless allowed', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({ '0001_a.sql': `CREATE TABLE ${n} (id int);`, '0003_c.sql': `INSERT INTO ${n} VALUES (3);` });
  const pool = fx.pool();
  await runMigrations(pool, { dir, table: t });
  await fx.write(dir, '0002_b.sql', `INSERT INTO ${n} VALUES (2);`);
  const err = await runMigrations(pool, { dir, table: t }).catch((e) => e);
  expect(err).toBeInstanceOf(MigrationOutOfOrderError);
  expect(err.message).toContain('0002_b.sql');
  expect((await runMigrations(pool, { dir, table: t, outOfOrder: true })).map((a) => a.file)).toEqual(['0002_b.sql']);
});

test('a repeatable migration is re-applied only when its checksum changes, after the versioned ones', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({
    '0001_a.sql': `CREATE TABLE ${n} (id int);`,
    'R__v.sql': `CREATE OR REPLACE VIEW ${n}_v AS SELECT 1 AS one;`,
  });
  const pool = fx.pool();
  await runMigrations(pool, { dir, table: t });
  expect(await runMigrations(pool, { dir, table: t })).toEqual([]);
  await fx.write(dir, 'R__v.sql', `CREATE OR REPLACE VIEW ${n}_v AS SELECT 1 AS one, 2 AS two;`);
  await fx.write(dir, '0002_b.sql', `ALTER TABLE ${n} ADD COLUMN b int;`);
  expect((await runMigrations(pool, { dir, table: t })).map((a) => a.file)).toEqual(['0002_b.sql', 'R__v.sql']);
  expect((await history(t)).map((r) => r.kind)).toEqual(['versioned', 'repeatable', 'versioned', 'repeatable']);
});

test('a lock_timeout is retried, then reported naming the blocking pid', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  await fx.db.admin(`CREATE TABLE ${n} (id int)`);
  const dir = await fx.dir({ '0001_alter.sql': `ALTER TABLE ${n} ADD COLUMN b int;` });
  const blocker = await client();
  try {
    await blocker.query(`BEGIN; LOCK TABLE ${n} IN ACCESS SHARE MODE`);
    const pid = (blocker as unknown as { processID: number }).processID;
    const retries: MigrationProgress[] = [];
    const err = await runMigrations(fx.pool(), {
      dir,
      table: t,
      lockTimeoutMs: 1500,
      lockRetries: 1,
      onProgress: (p) => p.event === 'retry' && retries.push(p),
    }).catch((e) => e);
    expect(err).toBeInstanceOf(MigrationLockTimeoutError);
    expect(err).toMatchObject({ code: 'MIGRATION_LOCK_TIMEOUT', lock: 'table', file: '0001_alter.sql' });
    expect(err.holder?.pid).toBe(pid);
    expect(err.message).toContain(`pid ${pid}`);
    expect(retries).toHaveLength(1);
    expect(await history(t)).toEqual([]);
  } finally {
    await blocker.end();
  }
});

test('timeouts: the run values on every migration, a header on its file only, session defaults afterwards', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const seen = `INSERT INTO ${n} SELECT current_setting('lock_timeout'), current_setting('statement_timeout');`;
  const dir = await fx.dir({
    '0001_create.sql': `CREATE TABLE ${n} (l text, s text);\n${seen}`,
    '0002_header.sql': `-- migrate:lock-timeout=1234ms\n-- migrate:statement-timeout=2s\n${seen}`,
    '0003_plain.sql': seen,
    '0004_outside.sql': `-- migrate:no-transaction\n-- migrate:lock-timeout=3s\n${seen}`,
    '0005_plain.sql': seen,
  });
  const pool = fx.pool({ max: 1 });
  await runMigrations(pool, { dir, table: t, lockTimeoutMs: 700, statementTimeoutMs: 60_000 });
  const { rows } = await fx.db.admin(`SELECT l, s FROM ${n}`);
  expect(rows.map((r) => `${r.l} ${r.s}`)).toEqual(['700ms 1min', '1234ms 2s', '700ms 1min', '3s 1min', '700ms 1min']);
  const after = await pool.query<{ l: string; s: string }>(
    "SELECT current_setting('lock_timeout') AS l, current_setting('statement_timeout') AS s",
  );
  expect(after.rows).toEqual([{ l: '0', s: '0' }]);
});

test('plan is a read-only dry run: it works on a read-only session and creates nothing', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({
    '0001_a.sql': `CREATE TABLE ${n} (id int);`,
    '0002_b.sql': `-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY ${n}_i ON ${n} (id);\nVACUUM ${n};`,
  });
  const readOnly = fx.pool({ hooks: { onConnect: (c) => c.query('SET default_transaction_read_only = on').then(() => {}) } });
  const plan = await planMigrations(readOnly, { dir, table: t });
  expect(plan.migrations).toEqual([
    { file: '0001_a.sql', kind: 'versioned', transaction: true, statements: 1 },
    { file: '0002_b.sql', kind: 'versioned', transaction: false, statements: 2 },
  ]);
  expect(plan.problems).toEqual([]);
  expect(await tableExists(t)).toBe(false);
  // Control: the same session refuses a real run, so the dry run really wrote nothing.
  await expect(runMigrations(readOnly, { dir, table: t, maxRetries: 0 })).rejects.toThrow(/read-only transaction/);
  // With history present, plan reports what blocks `up`.
  await runMigrations(fx.pool(), { dir, table: t });
  await fx.write(dir, '0001_a.sql', `CREATE TABLE ${n} (id bigint);`);
  const drifted = await planMigrations(readOnly, { dir, table: t });
  expect(drifted.problems.join('\n')).toContain('0001_a.sql: checksum changed');
});

test('down reverts the newest migrations with their down files, and refuses where none exists', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  const dir = await fx.dir({
    '0001_a.sql': `CREATE TABLE ${n} (id int);`,
    '0002_b.sql': `ALTER TABLE ${n} ADD COLUMN b int;`,
    '0002_b.down.sql': `ALTER TABLE ${n} DROP COLUMN b;`,
  });
  const pool = fx.pool();
  await runMigrations(pool, { dir, table: t });
  expect((await downMigrations(pool, { dir, table: t })).map((a) => a.file)).toEqual(['0002_b.down.sql']);
  expect((await history(t)).map((r) => r.script)).toEqual(['0001_a.sql']);
  const { rows } = await fx.db.admin(
    "SELECT count(*)::int AS n FROM information_schema.columns WHERE table_name = $1 AND column_name = 'b'",
    [n],
  );
  expect(rows[0].n).toBe(0);
  await expect(downMigrations(pool, { dir, table: t })).rejects.toBeInstanceOf(MigrationNoDownError);
  expect((await runMigrations(pool, { dir, table: t })).map((a) => a.file)).toEqual(['0002_b.sql']);
});

test('baseline: files up to the version are never run', async () => {
  const t = uniqueName('hist');
  const n = uniqueName('tbl');
  await fx.db.admin(`CREATE TABLE ${n} (id int)`);
  const dir = await fx.dir({ '0001_a.sql': `CREATE TABLE ${n} (id int);`, '0002_b.sql': `ALTER TABLE ${n} ADD COLUMN b int;` });
  const pool = fx.pool();
  await baselineMigrations(pool, { dir, table: t, version: 1 });
  expect((await runMigrations(pool, { dir, table: t })).map((a) => a.file)).toEqual(['0002_b.sql']);
  await expect(baselineMigrations(pool, { dir, table: t, version: 2 })).rejects.toMatchObject({
    code: 'MIGRATION_BASELINE_REFUSED',
  });
});

describe('options', () => {
  test('bad options are one ConfigError listing each, before any SQL', async () => {
    // Port 1: any SQL would fail with DatabaseUnavailableError instead.
    const unreachable = createPool({ host: '127.0.0.1', port: 1, minConnections: 0, maxRetries: 0 });
    try {
      const err = await runMigrations(unreachable, {
        dir: '',
        table: '',
        lockTimeoutMs: -1,
        to: 'latest',
        tabel: 'x',
      } as never).catch((e) => e);
      expect(err).toBeInstanceOf(ConfigError);
      expect(err.problems.map((p: { variable: string }) => p.variable).sort()).toEqual([
        'dir',
        'lockTimeoutMs',
        'tabel',
        'table',
        'to',
      ]);
    } finally {
      await unreachable.close({ force: true });
    }
  });

  test('hostile file names (quotes, unicode, 200 characters) are applied and recorded verbatim', async () => {
    const t = uniqueName('hist');
    const hostile = `it's "quoted" ünïcødé 🚀; DROP TABLE x; --`;
    const long = 'x'.repeat(200);
    const dir = await fx.dir({
      [`1_${hostile}.sql`]: 'SELECT 1;',
      [`2_${long}.sql`]: 'SELECT 2;',
      [`R__${hostile}.sql`]: 'SELECT 3;',
    });
    const pool = fx.pool();
    expect(await runMigrations(pool, { dir, table: t })).toHaveLength(3);
    const { rows } = await fx.db.admin(`SELECT script, description FROM "${t}" ORDER BY installed_rank`);
    expect(rows).toEqual([
      { script: `1_${hostile}.sql`, description: hostile },
      { script: `2_${long}.sql`, description: long },
      { script: `R__${hostile}.sql`, description: hostile },
    ]);
    expect((await migrationStatus(pool, { dir, table: t })).entries.map((e) => e.state)).toEqual([
      'applied',
      'applied',
      'applied',
    ]);
    await fx.write(dir, `3_${long}x.sql`, 'SELECT 4;');
    await expect(runMigrations(pool, { dir, table: t })).rejects.toThrow(/longer than 200/);
  });

  test('a hostile history table name is quoted, not interpolated', async () => {
    const t = `we"ird; DROP TABLE x; -- ${uniqueName('h')}`;
    const dir = await fx.dir({ '0001_a.sql': 'SELECT 1;' });
    await runMigrations(fx.pool(), { dir, table: t, schema: 'mig "schema"' });
    const { rows } = await fx.db.admin('SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = $2', [
      'mig "schema"',
      t,
    ]);
    expect(rows[0].n).toBe(1);
  });
});

import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  type LintFinding,
  MigrationLintError,
  type MigrationProgress,
  planMigrations,
  runMigrations,
  type UpOptions,
  validateMigrations,
} from '../src/index.js';
import { createFixture, type Fixture, uniqueName } from './fixture.js';

let fx: Fixture;
let existing: string;
beforeAll(async () => {
  fx = await createFixture();
  existing = uniqueName('live');
  await fx.db.admin(
    `CREATE TABLE ${existing} (id int PRIMARY KEY, a int, b text); CREATE TABLE ${existing}_p (id int PRIMARY KEY)`,
  );
});
afterAll(async () => {
  await fx?.close();
});

/** Plan a directory of `files` (with `$T` standing for a table that exists in the database): [file, line, rule] per finding. */
async function lint(files: Record<string, string>, options: Partial<UpOptions> = {}): Promise<[string, number, string][]> {
  const dir = await fx.dir(Object.fromEntries(Object.entries(files).map(([k, v]) => [k, v.replaceAll('$T', existing)])));
  const plan = await planMigrations(fx.pool(), { dir, table: uniqueName('hist'), ...options });
  return plan.findings.map((f) => [f.file, f.line, f.rule]);
}

describe('each rule, positive and negative, on real files', () => {
  test('index-not-concurrent: on a table in the database or from an earlier migration; not on one the same file creates', async () => {
    expect(
      await lint({
        '0001_a.sql': `CREATE TABLE fresh_a (id int);\nCREATE INDEX ON fresh_a (id);\n\nCREATE INDEX $T_a ON $T (a);`,
        '0002_b.sql': 'SELECT 1;\nCREATE UNIQUE INDEX fresh_a_u ON public.fresh_a (id);',
        '0003_c.sql': '-- migrate:no-transaction\nCREATE INDEX CONCURRENTLY $T_b ON $T (b);',
        '0004_d.sql': 'CREATE INDEX nowhere_i ON nowhere (id);',
      }),
    ).toEqual([
      ['0001_a.sql', 4, 'index-not-concurrent'],
      ['0002_b.sql', 2, 'index-not-concurrent'],
    ]);
  });

  test('add-column-not-null: without a default; not with DEFAULT, identity, or nullable', async () => {
    expect(
      await lint({
        '0001_a.sql': [
          'ALTER TABLE $T',
          '  ADD COLUMN c1 int DEFAULT 0 NOT NULL,',
          '  ADD COLUMN c2 bigint NOT NULL GENERATED ALWAYS AS IDENTITY,',
          '  ADD COLUMN c3 int,',
          '  ADD COLUMN c4 int NOT NULL;',
        ].join('\n'),
        '0002_b.sql': 'CREATE TABLE fresh_b (id int);\nALTER TABLE fresh_b ADD COLUMN c int NOT NULL;',
      }),
    ).toEqual([['0001_a.sql', 5, 'add-column-not-null']]);
  });

  test('alter-column-type: on an existing table; not on one created in the same file', async () => {
    expect(
      await lint({
        '0001_a.sql': 'ALTER TABLE $T ALTER COLUMN a TYPE bigint;',
        '0002_b.sql': 'CREATE TABLE fresh_c (a int);\nALTER TABLE fresh_c ALTER COLUMN a TYPE bigint;',
      }),
    ).toEqual([['0001_a.sql', 1, 'alter-column-type']]);
  });

  test('constraint-not-valid: CHECK and FOREIGN KEY without NOT VALID; not with NOT VALID, not VALIDATE', async () => {
    expect(
      await lint({
        '0001_a.sql': `ALTER TABLE $T ADD CONSTRAINT c_pos CHECK (a > 0);\nALTER TABLE $T ADD FOREIGN KEY (a) REFERENCES $T_p (id);`,
        '0002_b.sql': [
          'ALTER TABLE $T ADD CONSTRAINT c_pos2 CHECK (a > 0) NOT VALID;',
          'ALTER TABLE $T ADD CONSTRAINT fk2 FOREIGN KEY (a) REFERENCES $T_p (id) NOT VALID;',
          'ALTER TABLE $T VALIDATE CONSTRAINT fk2;',
        ].join('\n'),
      }),
    ).toEqual([
      ['0001_a.sql', 1, 'constraint-not-valid'],
      ['0001_a.sql', 2, 'constraint-not-valid'],
    ]);
  });

  test('drop-column and drop-table; not DROP VIEW or DROP INDEX', async () => {
    expect(
      await lint({
        '0001_a.sql':
          'ALTER TABLE $T DROP COLUMN b;\nDROP TABLE IF EXISTS gone_t;\nDROP VIEW IF EXISTS gone_v;\nDROP INDEX IF EXISTS gone_i;',
      }),
    ).toEqual([
      ['0001_a.sql', 1, 'drop-column'],
      ['0001_a.sql', 2, 'drop-table'],
    ]);
  });

  test('concurrently-in-transaction: CREATE/DROP INDEX and REINDEX CONCURRENTLY in a transactional file only', async () => {
    const body = 'CREATE INDEX CONCURRENTLY $T_c ON $T (a);\nDROP INDEX CONCURRENTLY $T_c;\nREINDEX TABLE CONCURRENTLY $T;';
    expect(await lint({ '0001_a.sql': body, '0002_b.sql': `-- migrate:no-transaction\n${body}` })).toEqual([
      ['0001_a.sql', 1, 'concurrently-in-transaction'],
      ['0001_a.sql', 2, 'concurrently-in-transaction'],
      ['0001_a.sql', 3, 'concurrently-in-transaction'],
    ]);
  });

  test('lock-timeout: ACCESS EXCLUSIVE with no lock_timeout (header 0, option 0, SET 0); not with one in force', async () => {
    const alter = 'ALTER TABLE $T ALTER COLUMN b SET DEFAULT $$x$$;';
    expect(
      await lint({
        '0001_header_zero.sql': `-- migrate:lock-timeout=0\n${alter}`,
        '0002_default.sql': alter,
        '0003_set_zero.sql': `SET lock_timeout = 0;\nSELECT 1;\n${alter}`,
        '0004_weaker.sql': `-- migrate:lock-timeout=0\nALTER TABLE $T VALIDATE CONSTRAINT nope;`,
        '0005_fresh.sql': '-- migrate:lock-timeout=0\nCREATE TABLE fresh_d (a int);\nALTER TABLE fresh_d ADD COLUMN b int;',
      }),
    ).toEqual([
      ['0001_header_zero.sql', 2, 'lock-timeout'],
      ['0003_set_zero.sql', 3, 'lock-timeout'],
    ]);
    // lockTimeoutMs 0 for the run: flagged unless the file sets one (SET or set_config) or its header does.
    expect(
      await lint(
        {
          '0001_a.sql': `TRUNCATE $T;`,
          '0002_b.sql': `SET lock_timeout = '2s';\n${alter}`,
          '0003_c.sql': `SELECT set_config('lock_timeout', '1s', true);\n${alter}`,
          '0004_d.sql': `-- migrate:lock-timeout=3s\nLOCK TABLE $T;`,
          'R__policy.sql': `CREATE POLICY p ON $T USING (true);`,
        },
        { lockTimeoutMs: 0 },
      ),
    ).toEqual([
      ['0001_a.sql', 1, 'lock-timeout'],
      ['R__policy.sql', 1, 'lock-timeout'],
    ]);
  });

  test('lines count bytes right after multibyte UTF-8, and a parse error names its line', async () => {
    const findings = await lint({
      '0001_a.sql': `-- ünïcødé 🚀 comment\nSELECT 'é🚀é';\n\nALTER TABLE $T DROP COLUMN b;`,
      '0002_b.sql': `SELECT '🚀🚀🚀 ééé';\nSELECT 2;\nSELEC 3;\nSELECT 4;`,
    });
    expect(findings).toEqual([
      ['0001_a.sql', 4, 'drop-column'],
      ['0002_b.sql', 3, 'parse-error'],
    ]);
  });
});

describe('severity, plan, up and validate', () => {
  test('findings carry a message and a fix; strict makes them errors', async () => {
    const dir = await fx.dir({ '0001_a.sql': `ALTER TABLE ${existing} ALTER COLUMN a TYPE bigint;` });
    const [warning] = (await planMigrations(fx.pool(), { dir, table: uniqueName('hist') })).findings;
    expect(warning).toMatchObject<Partial<LintFinding>>({ file: '0001_a.sql', line: 1, severity: 'warning' });
    expect(warning!.message).toContain(`ALTER COLUMN a TYPE rewrites ${existing}`);
    expect(warning!.fix).toMatch(/new column/);
    const [error] = (await planMigrations(fx.pool(), { dir, table: uniqueName('hist'), strict: true })).findings;
    expect(error!.severity).toBe('error');
  });

  test('up warns and applies; with strict it throws MigrationLintError and applies nothing', async () => {
    const n = uniqueName('tbl');
    await fx.db.admin(`CREATE TABLE ${n} (id int, a int)`);
    const dir = await fx.dir({ '0001_a.sql': 'SELECT 1;', '0002_b.sql': `ALTER TABLE ${n} DROP COLUMN a;` });
    const strictTable = uniqueName('hist');
    const err = await runMigrations(fx.pool(), { dir, table: strictTable, strict: true }).catch((e) => e);
    expect(err).toBeInstanceOf(MigrationLintError);
    expect(err.code).toBe('MIGRATION_LINT');
    expect(err.message).toContain('0002_b.sql:1 [drop-column]');
    expect((await fx.db.admin(`SELECT count(*)::int AS n FROM "${strictTable}"`)).rows[0].n).toBe(0);
    await expect(validateMigrations(fx.pool(), { dir, table: strictTable, strict: true })).rejects.toBeInstanceOf(
      MigrationLintError,
    );
    const events: MigrationProgress[] = [];
    const applied = await runMigrations(fx.pool(), { dir, table: uniqueName('hist'), onProgress: (p) => events.push(p) });
    expect(applied.map((a) => a.file)).toEqual(['0001_a.sql', '0002_b.sql']);
    expect(events.filter((e) => e.event === 'lint').map((e) => e.event === 'lint' && e.finding.rule)).toEqual(['drop-column']);
  });

  test('a file PostgreSQL cannot parse stops up before anything is applied, even without strict', async () => {
    const t = uniqueName('hist');
    const dir = await fx.dir({
      '0001_a.sql': `CREATE TABLE ${uniqueName('tbl')} (id int);`,
      '0002_b.sql': 'SELECT 1;\nCREATE TABL x (id int);',
    });
    const err = await runMigrations(fx.pool(), { dir, table: t }).catch((e) => e);
    expect(err).toBeInstanceOf(MigrationLintError);
    expect(err.findings).toMatchObject([{ file: '0002_b.sql', line: 2, rule: 'parse-error', severity: 'error' }]);
    expect((await fx.db.admin(`SELECT count(*)::int AS n FROM "${t}"`)).rows[0].n).toBe(0);
  });
});

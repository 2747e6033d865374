import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, test } from 'vitest';
import { checksumOf, MigrationFileError, normalizeSql, readMigrations, splitStatements } from '../src/index.js';

async function withDir(files: Record<string, string>, fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'migrate-files-'));
  try {
    for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

describe('splitStatements (PostgreSQL grammar)', () => {
  test('keeps dollar quotes, comments, DO blocks and BEGIN ATOMIC bodies whole, with their lines', async () => {
    const sql = [
      '-- a comment; with a semicolon',
      'CREATE TABLE "é;x" (a text DEFAULT \';\');',
      '/* block ; comment */',
      "DO $$ BEGIN RAISE NOTICE 'x;y'; END $$;",
      'CREATE FUNCTION f() RETURNS int LANGUAGE sql',
      'BEGIN ATOMIC',
      '  SELECT 1;',
      '  SELECT 2;',
      'END;',
      'CREATE FUNCTION g() RETURNS text LANGUAGE plpgsql AS $body$ BEGIN RETURN $q$;$q$; END $body$;',
      'CREATE INDEX CONCURRENTLY i ON "é;x" (a)',
    ].join('\n');
    const statements = await splitStatements('x.sql', sql);
    expect(statements.map((s) => s.line)).toEqual([2, 4, 5, 10, 11]);
    expect(statements[0]!.sql).toBe('CREATE TABLE "é;x" (a text DEFAULT \';\')');
    expect(statements[1]!.sql).toBe("DO $$ BEGIN RAISE NOTICE 'x;y'; END $$");
    expect(statements[2]!.sql).toContain('SELECT 2;\nEND');
    expect(statements[3]!.sql).toContain('$q$;$q$');
    expect(statements[4]!.sql).toBe('CREATE INDEX CONCURRENTLY i ON "é;x" (a)');
  });

  test('a file the grammar rejects is a MigrationFileError with the line', async () => {
    const err = await splitStatements('bad.sql', 'SELECT 1;\n\nCREATE TABL x (a int);').catch((e) => e);
    expect(err).toBeInstanceOf(MigrationFileError);
    expect(err.code).toBe('MIGRATION_FILE_INVALID');
    expect(err.line).toBe(3);
    expect(err.message).toMatch(/^bad\.sql:3: /);
  });
});

describe('checksums', () => {
  test('BOM and CRLF do not change the checksum; an edit does', () => {
    const lf = 'CREATE TABLE a (id int);\nSELECT 1;\n';
    expect(checksumOf(normalizeSql(`\uFEFF${lf.replace(/\n/g, '\r\n')}`))).toBe(checksumOf(normalizeSql(lf)));
    expect(checksumOf(normalizeSql(`${lf} `))).not.toBe(checksumOf(normalizeSql(lf)));
    expect(checksumOf('')).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('readMigrations', () => {
  test('orders versions numerically, pairs down files, puts repeatables last, reads headers', async () => {
    await withDir(
      {
        '10_ten.sql': 'SELECT 10;',
        '0002_two.sql': '-- migrate:no-transaction\n-- migrate:lock-timeout=2s\n-- migrate:statement-timeout=1min\nSELECT 2;',
        '0002_two.down.sql': 'SELECT -2;',
        'R__views.sql': 'SELECT 0;',
        'README.md': 'ignored',
      },
      async (dir) => {
        const files = await readMigrations(dir);
        expect(files.map((f) => f.file)).toEqual(['0002_two.sql', '10_ten.sql', 'R__views.sql']);
        expect(files[0]).toMatchObject({
          version: '2',
          kind: 'versioned',
          header: { transaction: false, lockTimeoutMs: 2000, statementTimeoutMs: 60_000 },
          down: { file: '0002_two.down.sql' },
        });
        expect(files[2]).toMatchObject({ version: null, kind: 'repeatable', description: 'views' });
      },
    );
  });

  test('hostile names: quotes, unicode and 200 characters are accepted; the rest is refused cleanly', async () => {
    const long = 'x'.repeat(200);
    const hostile = `1_it's "quoted" ünïcødé; DROP TABLE x.sql`;
    await withDir({ [hostile]: 'SELECT 1;', [`2_${long}.sql`]: 'SELECT 2;' }, async (dir) => {
      const files = await readMigrations(dir);
      expect(files.map((f) => f.description)).toEqual([`it's "quoted" ünïcødé; DROP TABLE x`, long]);
    });
    const refused: Record<string, RegExp> = {
      [`3_${long}x.sql`]: /longer than 200/,
      '3-dash.sql': /not a migration name/,
      '3_bad\u0001.sql': /control characters/,
      'x.down.sql': /not a migration name/,
    };
    for (const [name, reason] of Object.entries(refused)) {
      await withDir({ [name]: 'SELECT 1;' }, async (dir) => {
        const err = await readMigrations(dir).catch((e) => e);
        expect(err, name).toBeInstanceOf(MigrationFileError);
        expect(err.message).toMatch(reason);
      });
    }
  });

  test('duplicate versions, orphan down files and unknown headers are refused', async () => {
    const cases: [Record<string, string>, RegExp][] = [
      [{ '1_a.sql': '', '0001_b.sql': '' }, /version 1 is also used/],
      [{ '1_a.down.sql': '' }, /down file without an up migration/],
      [{ '1_a.sql': '-- migrate:no-transation\nSELECT 1;' }, /unknown header/],
      [{ '1_a.sql': '-- migrate:lock-timeout=soon\nSELECT 1;' }, /needs a duration/],
    ];
    for (const [files, reason] of cases) {
      await withDir(files, async (dir) => {
        await expect(readMigrations(dir)).rejects.toThrow(reason);
      });
    }
    await expect(readMigrations('/nonexistent/migrations')).rejects.toBeInstanceOf(MigrationFileError);
  });
});

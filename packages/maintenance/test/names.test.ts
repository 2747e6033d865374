import { AccountDbError } from '@accountdb/pool';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  analyzeTable,
  MaintenanceInputError,
  parseRelationName,
  RelationNotFoundError,
  reindexIndex,
  reindexTable,
  truncateTable,
  vacuumTable,
} from '../src/index.js';
import { createFixture, type Fixture, maintenanceStatements, recordingPool, stat } from './fixture.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await createFixture();
  await fx.db.admin(`
    create table victim (id int primary key);
    insert into victim values (1), (2), (3);
    create table x (id int);
    create table "MixedCase" (id int primary key);
    create table "Weird; DROP TABLE victim; --" (id int);
    create schema "odd schema";
    create table "odd schema"."a""b" (id int primary key);
    create table "odd schema".victim (id int);`);
});
afterAll(() => fx?.close());

const PAYLOADS = [
  'users; drop table x',
  'victim; drop table victim',
  '"; DROP TABLE victim; --',
  "x'; drop table victim; --",
  '"weird"."names"',
  'victim--',
  '/* c */victim',
  'victim\n',
  ' victim',
  "' or 1=1 --",
  '$1',
  '%I',
  'a.b.c',
  'pg_catalog.pg_class;',
  '"victim"; drop table x',
  'ab\0cd',
  '\0',
  'x'.repeat(64),
  'é'.repeat(32),
  '𝕏; drop table victim',
  'ДРОП',
  'victim\u200b',
  'vic"tim',
  '"',
  '.',
];

/** Each payload as a SQL-style string, double-quoted, as `{ name }` and as `{ schema }`: over 100 names. */
const HOSTILE: (string | { schema?: string; name: string })[] = PAYLOADS.flatMap((p) => [
  p,
  `"${p.replaceAll('"', '""')}"`,
  { name: p },
  { schema: p, name: 'victim' },
  `public."${p.replaceAll('"', '""')}"`,
]);

test(`${HOSTILE.length} hostile names: typed errors, nothing but catalog lookups sent, the victim table intact`, async () => {
  expect(HOSTILE.length).toBeGreaterThanOrEqual(100);
  const { db, sent } = recordingPool(fx.pool);
  const operations = [
    (n: (typeof HOSTILE)[number]) => vacuumTable(db, n, { full: true }),
    (n: (typeof HOSTILE)[number]) => analyzeTable(db, n),
    (n: (typeof HOSTILE)[number]) => reindexTable(db, n, { concurrently: false }),
    (n: (typeof HOSTILE)[number]) => reindexIndex(db, n),
    (n: (typeof HOSTILE)[number]) => truncateTable(db, n, { cascade: true }),
  ];
  let lookups = 0;
  for (const name of HOSTILE) {
    for (const run of operations) {
      const before = sent.length;
      const error = await run(name).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(AccountDbError.is(error), `${JSON.stringify(name)} must fail with a typed error`).toBe(true);
      expect(error instanceof MaintenanceInputError || error instanceof RelationNotFoundError).toBe(true);
      const mine = sent.slice(before);
      // At most the one catalog lookup, with the name as a bound parameter.
      expect(mine.length).toBeLessThanOrEqual(1);
      lookups += mine.length;
      // The message never echoes the name.
      if (typeof name === 'string' && name.length > 3) expect((error as Error).message).not.toContain(name);
    }
  }
  expect(maintenanceStatements(sent)).toEqual([]);
  expect(lookups).toBeGreaterThan(0);
  expect((await fx.db.admin('select count(*)::int as n from victim')).rows[0].n).toBe(3);
  expect((await fx.db.admin(`select count(*)::int as n from pg_class where relname in ('x', 'victim')`)).rows[0].n).toBe(3);
});

test(`${PAYLOADS.length} hostile tablespace names: typed errors, only catalog lookups sent`, async () => {
  const { db, sent } = recordingPool(fx.pool);
  for (const tablespace of PAYLOADS) {
    const error = await reindexIndex(db, 'victim_pkey', { tablespace }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MaintenanceInputError);
    expect((error as Error).message).not.toContain(tablespace);
  }
  expect(maintenanceStatements(sent)).toEqual([]);
});

test('quoted, mixed-case and punctuated names resolve to the right table and are quoted by the server', async () => {
  const r1 = await vacuumTable(fx.pool, '"MixedCase"');
  expect(r1.sql).toBe('VACUUM public."MixedCase"');
  const r2 = await vacuumTable(fx.pool, { name: 'Weird; DROP TABLE victim; --' });
  expect(r2.sql).toBe('VACUUM public."Weird; DROP TABLE victim; --"');
  const r3 = await analyzeTable(fx.pool, '"odd schema"."a""b"');
  expect(r3.relation).toBe('"odd schema"."a""b"');
  for (const t of ['"MixedCase"', '"Weird; DROP TABLE victim; --"']) expect((await stat(fx.db, t)).last_vacuum).not.toBeNull();
  expect((await stat(fx.db, '"odd schema"."a""b"')).last_analyze).not.toBeNull();
  expect((await fx.db.admin('select count(*)::int as n from victim')).rows[0].n).toBe(3);
});

test('unquoted names fold to lower case; unqualified names follow search_path; a schema picks its own table', async () => {
  await expect(vacuumTable(fx.pool, 'MixedCase')).rejects.toBeInstanceOf(RelationNotFoundError);
  expect((await vacuumTable(fx.pool, 'VICTIM')).relation).toBe('public.victim');
  expect((await vacuumTable(fx.pool, '"odd schema".VICTIM')).relation).toBe('"odd schema".victim');
  expect((await vacuumTable(fx.pool, { schema: 'odd schema', name: 'victim' })).relation).toBe('"odd schema".victim');
  // An index is not a table, and a table is not an index.
  await expect(vacuumTable(fx.pool, 'victim_pkey')).rejects.toBeInstanceOf(RelationNotFoundError);
  await expect(reindexIndex(fx.pool, 'victim')).rejects.toBeInstanceOf(RelationNotFoundError);
});

test('parseRelationName follows SQL quoting rules', () => {
  expect(parseRelationName('App.Users')).toEqual({ schema: 'app', name: 'users' });
  expect(parseRelationName('"my schema"."my ""table"""')).toEqual({ schema: 'my schema', name: 'my "table"' });
  expect(parseRelationName('"a.b"')).toEqual({ schema: null, name: 'a.b' });
  expect(() => parseRelationName('a;b')).toThrow(MaintenanceInputError);
  expect(() => parseRelationName('"a"b')).toThrow(MaintenanceInputError);
  expect(() => parseRelationName('x'.repeat(64))).toThrow(/63 bytes/);
});

import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { execute, InvalidIdentifierError, QueryArgumentError, quoteIdentifier, SqlFragment, sql } from '../src/index.js';
import { poolFor, rejectionOf } from './helpers.js';

describe('sql tag (pure)', () => {
  test('binds values as numbered parameters', () => {
    const q = sql`select * from t where a = ${1} and b = ${'x'}`;
    expect(q.text).toBe('select * from t where a = $1 and b = $2');
    expect(q.values).toEqual([1, 'x']);
  });

  test('nested fragments are spliced in and renumbered', () => {
    const where = sql`b = ${'x'} and c = ${true}`;
    const q = sql`select ${sql.identifier('a')} from t where a = ${1} and ${where} limit ${10}`;
    expect(q.text).toBe('select "a" from t where a = $1 and b = $2 and c = $3 limit $4');
    expect(q.values).toEqual([1, 'x', true, 10]);
    // The inner fragment is unchanged and reusable.
    expect(where.text).toBe('b = $1 and c = $2');
  });

  test('identifiers are quoted and escaped, never parsed', () => {
    expect(sql.identifier('app', 'users').text).toBe('"app"."users"');
    expect(sql.identifier('we"ird').text).toBe('"we""ird"');
    expect(sql.identifier('a.b').text).toBe('"a.b"');
    expect(sql.identifier('"; drop table x; --').text).toBe('"""; drop table x; --"');
    expect(quoteIdentifier('Ünï')).toBe('"Ünï"');
  });

  test('bad identifiers are typed errors', () => {
    expect(() => sql.identifier('')).toThrow(InvalidIdentifierError);
    expect(() => sql.identifier()).toThrow(InvalidIdentifierError);
    expect(() => sql.identifier('a\0b')).toThrow(InvalidIdentifierError);
    expect(() => sql.identifier('x'.repeat(64))).toThrow(/64 bytes/);
    expect(() => sql.identifier('é'.repeat(32))).toThrow(InvalidIdentifierError); // 64 bytes in UTF-8
    expect(sql.identifier('x'.repeat(63)).text).toHaveLength(65);
    expect(() => sql.identifier(42 as unknown as string)).toThrow(InvalidIdentifierError);
  });

  test('join: values bound, fragments spliced, custom separator', () => {
    expect(sql`in (${sql.join([1, 2, 3])})`.text).toBe('in ($1, $2, $3)');
    const cols = sql.join([sql.identifier('a'), sql.identifier('b')]);
    expect(sql`select ${cols} from t`.text).toBe('select "a", "b" from t');
    const conds = sql.join([sql`a = ${1}`, sql`b = ${2}`], sql` and `);
    expect(sql`where ${conds}`.text).toBe('where a = $1 and b = $2');
    expect(sql.join([]).text).toBe('');
    expect(() => sql.join([1], ', ' as unknown as SqlFragment)).toThrow(QueryArgumentError);
  });

  test('fragments cannot be built from raw text', () => {
    const Fragment = SqlFragment as unknown as new (token: symbol, strings: string[], values: unknown[]) => SqlFragment;
    expect(() => new Fragment(Symbol('SqlFragment'), ['drop table users'], [])).toThrow(QueryArgumentError);
  });

  test('undefined values are rejected; secrets do not show in toString/JSON', () => {
    expect(() => sql`a = ${undefined}`).toThrow(QueryArgumentError);
    const q = sql`select ${'hunter2'}`;
    expect(String(q)).not.toContain('hunter2');
    expect(JSON.stringify(q)).not.toContain('hunter2');
  });
});

describe('sql tag on PostgreSQL', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase();
    await db.admin('create table "odd ""name"" ; x" (id int primary key, "Label" text)');
  });
  afterAll(() => db.drop());

  test('composed query runs; hostile values stay data', async () => {
    const pool = poolFor(db);
    try {
      const table = sql.identifier('public', 'odd "name" ; x');
      const evil = "x'); drop table pg_class; --";
      await execute(
        pool,
        sql`insert into ${table} (id, ${sql.identifier('Label')}) values ${sql.join([sql`(${1}, ${evil})`, sql`(${2}, ${'b'})`])}`,
      );
      const rows = await execute<{ Label: string }>(
        pool,
        sql`select ${sql.identifier('Label')} from ${table} where id in (${sql.join([1, 2])}) order by id`,
      );
      expect(rows.map((r) => r.Label)).toEqual([evil, 'b']);
      const one = await execute<{ n: number }>(pool, sql`select count(*)::int as n from ${table}`, { fetch: 'one' });
      expect(one?.n).toBe(2);
      // Values inside a fragment plus params is ambiguous: refused before SQL.
      expect(await rejectionOf(execute(pool, sql`select ${1}`, [2]))).toBeInstanceOf(QueryArgumentError);
    } finally {
      await pool.close();
    }
  });
});

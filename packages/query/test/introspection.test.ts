import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  columnExists,
  getTableInfo,
  InvalidIdentifierError,
  type TableName,
  tableExists,
  UndefinedTableError,
} from '../src/index.js';
import { poolFor, rejectionOf } from './helpers.js';

let db: TestDatabase;
let pool: ReturnType<typeof poolFor>;
const LONG63 = 'x'.repeat(63);

beforeAll(async () => {
  db = await createTestDatabase();
  const odd = [
    'we"ird',
    'a.b',
    'semi;colon',
    'Ünïcödé',
    '表',
    '🙂',
    'with space',
    'MixedCase',
    "'; drop table plain; --",
    '$dollar',
    'back\\slash',
    'new\nline',
    LONG63,
  ];
  const quote = (s: string) => `"${s.replace(/"/g, '""')}"`;
  await db.admin(
    [
      'create table plain (id int)',
      'create table Upper (id int)',
      ...odd.map((name) => `create table ${quote(name)} (id int, "Col ""1""" int, "semi;col" int)`),
      'create schema "odd schema"',
      'create table "odd schema"."odd.table" (id int)',
      'create view "v_odd ""view""" as select 1 as one',
    ].join(';\n'),
  );
  pool = poolFor(db);
});
afterAll(async () => {
  await pool.close();
  await db.drop();
});

type Expect = boolean | 'invalid';
const INVALID = 'invalid' as const;

/** Hostile and odd names: each gets the right answer or InvalidIdentifierError, and nothing in one runs. */
const NAMES: [string, TableName, Expect][] = [
  ['plain', 'plain', true],
  ['folded to lower case', 'PLAIN', true],
  ['quoted upper case is literal', '"PLAIN"', false],
  ['schema-qualified', 'public.plain', true],
  ['both parts quoted', '"public"."plain"', true],
  ['object form', { schema: 'public', name: 'plain' }, true],
  ['object form is exact (no folding)', { name: 'PLAIN' }, false],
  ['created unquoted as Upper', 'Upper', true],
  ['quoted "Upper" does not exist', '"Upper"', false],
  ['doubled quote inside quotes', '"we""ird"', true],
  ['object form with a quote', { name: 'we"ird' }, true],
  ['bare quote in unquoted name', 'we"ird', INVALID],
  ['quoted dot is part of the name', '"a.b"', true],
  ['unquoted dot is a schema separator', 'a.b', false],
  ['object form with a dot', { name: 'a.b' }, true],
  ['quoted semicolon', '"semi;colon"', true],
  ['unquoted semicolon', 'semi;colon', INVALID],
  ['quoted unicode', '"Ünïcödé"', true],
  ['unquoted unicode is not folded', 'Ünïcödé', true],
  ['CJK', '表', true],
  ['emoji', '"🙂"', true],
  ['quoted space', '"with space"', true],
  ['unquoted space', 'with space', INVALID],
  ['quoted mixed case', '"MixedCase"', true],
  ['unquoted mixed case folds and misses', 'MixedCase', false],
  ['injection inside quotes is just a name', `"'; drop table plain; --"`, true],
  ['injection, object form', { name: "'; drop table plain; --" }, true],
  ['"; DROP TABLE ...; -- (unterminated quote)', '"; DROP TABLE plain; --', INVALID],
  ['statement after a name', 'plain; DROP TABLE plain; --', INVALID],
  ['classic OR 1=1', "plain' OR '1'='1", INVALID],
  ['63 bytes', LONG63, true],
  ['64 bytes', 'x'.repeat(64), INVALID],
  ['64 bytes of two-byte characters', 'é'.repeat(32), INVALID],
  ['1000 bytes', `"${'y'.repeat(1000)}"`, INVALID],
  ['empty', '', INVALID],
  ['empty, object form', { name: '' }, INVALID],
  ['empty schema, object form', { schema: '', name: 'plain' }, INVALID],
  ['empty quoted', '""', INVALID],
  ['lone dot', '.', INVALID],
  ['trailing dot', 'plain.', INVALID],
  ['leading dot', '.plain', INVALID],
  ['double dot', 'public..plain', INVALID],
  ['three parts', 'db.public.plain', INVALID],
  ['odd schema and table', '"odd schema"."odd.table"', true],
  ['odd schema, object form', { schema: 'odd schema', name: 'odd.table' }, true],
  ['odd schema unquoted', 'odd schema.odd.table', INVALID],
  ['quoted dollar', '"$dollar"', true],
  ['leading dollar unquoted', '$dollar', INVALID],
  ['backslash', '"back\\slash"', true],
  ['newline inside quotes', '"new\nline"', true],
  ['NUL', 'nul\0name', INVALID],
  ['NUL, object form', { name: 'a\0' }, INVALID],
  ['text after closing quote', '"plain"x', INVALID],
  ['leading whitespace', ' plain', INVALID],
  ['LIKE wildcard %', '"%"', false],
  ['LIKE wildcard _', '"pl_in"', false],
  ['regex-ish', '"pl.*"', false],
  ['zero-width space', '"\u200b"', false],
  ['system catalog via search_path', 'pg_class', true],
  ['system catalog qualified', 'pg_catalog.pg_class', true],
  ['information_schema view', 'information_schema.tables', true],
  ['a view with odd name', 'public."v_odd ""view"""', true],
  ['missing table', 'no_such_table', false],
  ['missing schema', '"no_such_schema".plain', false],
  ['number', 42 as unknown as string, INVALID],
  ['null', null as unknown as string, INVALID],
  ['object without name', {} as TableName, INVALID],
];

describe('tableExists with hostile names', () => {
  test('the table has at least 40 cases', () => {
    expect(NAMES.length).toBeGreaterThanOrEqual(40);
  });

  test.each(NAMES)('%s', async (_label, name, expected) => {
    if (expected === INVALID) {
      expect(await rejectionOf(tableExists(pool, name))).toBeInstanceOf(InvalidIdentifierError);
      expect(await rejectionOf(columnExists(pool, name, 'id'))).toBeInstanceOf(InvalidIdentifierError);
      expect(await rejectionOf(getTableInfo(pool, name))).toBeInstanceOf(InvalidIdentifierError);
    } else {
      expect(await tableExists(pool, name)).toBe(expected);
      if (!expected) expect(await rejectionOf(getTableInfo(pool, name))).toBeInstanceOf(UndefinedTableError);
    }
  });

  test('nothing in any name was executed', async () => {
    const { rows } = await db.admin(
      "select count(*)::int as n from pg_class where relname in ('plain', 'upper') and relkind = 'r'",
    );
    expect(rows[0]?.n).toBe(2);
  });

  test('odd real tables are found by getTableInfo and columnExists', async () => {
    const info = await getTableInfo(pool, '"we""ird"');
    expect(info.name).toBe('we"ird');
    expect(info.columns.map((c) => c.name)).toEqual(['id', 'Col "1"', 'semi;col']);
    expect((await getTableInfo(pool, { name: LONG63 })).name).toBe(LONG63);
    expect(await columnExists(pool, '"a.b"', '"Col ""1"""')).toBe(true);
    expect(await columnExists(pool, '"a.b"', '"semi;col"')).toBe(true);
    expect(await columnExists(pool, '"a.b"', 'ID')).toBe(true);
    expect(await columnExists(pool, '"a.b"', '"ID"')).toBe(false);
    expect(await columnExists(pool, '"a.b"', '"col ""1"""')).toBe(false);
    expect(await columnExists(pool, 'no_such_table', 'id')).toBe(false);
    for (const bad of ['', 'semi;col', 'col "1"', 'a.b', '"x', 'x'.repeat(64), '""']) {
      expect(await rejectionOf(columnExists(pool, 'plain', bad))).toBeInstanceOf(InvalidIdentifierError);
    }
  });
});

describe('getTableInfo', () => {
  beforeAll(async () => {
    await db.admin(`
      create schema app;
      create table app.owners (id bigint primary key);
      create table app.accounts (
        id bigint generated always as identity,
        tenant int not null,
        doomed int,
        email varchar(255) not null,
        owner_id bigint references app.owners(id) on delete cascade on update restrict,
        created_at timestamptz not null default now(),
        note text,
        primary key (tenant, id),
        constraint accounts_email_key unique (email)
      );
      alter table app.accounts drop column doomed;
      create index accounts_lower_email on app.accounts (lower(email));
      create index accounts_created_at on app.accounts (created_at) include (note);
      alter table app.accounts enable row level security;
      alter table app.accounts force row level security;
    `);
  });

  test('columns, keys, indexes, foreign keys, RLS, size and estimate', async () => {
    const before = await getTableInfo(pool, 'app.accounts');
    expect(before.estimatedRows).toBeNull();
    await db.admin('insert into app.owners select g from generate_series(1, 10) g');
    await db.admin(
      "insert into app.accounts (tenant, email, owner_id) select g % 3, 'u' || g || '@x', g % 10 + 1 from generate_series(1, 2000) g",
    );
    await db.admin('analyze app.accounts');
    const info = await getTableInfo(pool, { schema: 'app', name: 'accounts' });
    expect(info).toMatchObject({ schema: 'app', name: 'accounts', kind: 'table', rlsEnabled: true, rlsForced: true });
    expect(info.columns).toEqual([
      { name: 'id', type: 'bigint', nullable: false, default: null, position: 1 },
      { name: 'tenant', type: 'integer', nullable: false, default: null, position: 2 },
      { name: 'email', type: 'character varying(255)', nullable: false, default: null, position: 4 },
      { name: 'owner_id', type: 'bigint', nullable: true, default: null, position: 5 },
      { name: 'created_at', type: 'timestamp with time zone', nullable: false, default: 'now()', position: 6 },
      { name: 'note', type: 'text', nullable: true, default: null, position: 7 },
    ]);
    expect(info.primaryKey).toEqual(['tenant', 'id']);
    expect(info.indexes.map((i) => [i.name, i.columns, i.unique, i.primary, i.valid])).toEqual([
      ['accounts_created_at', ['created_at'], false, false, true],
      ['accounts_email_key', ['email'], true, false, true],
      ['accounts_lower_email', [null], false, false, true],
      ['accounts_pkey', ['tenant', 'id'], true, true, true],
    ]);
    expect(info.indexes[0]?.definition).toMatch(
      /^CREATE INDEX accounts_created_at ON app\.accounts USING btree \(created_at\) INCLUDE \(note\)$/,
    );
    expect(info.foreignKeys).toEqual([
      {
        name: 'accounts_owner_id_fkey',
        columns: ['owner_id'],
        referencedSchema: 'app',
        referencedTable: 'owners',
        referencedColumns: ['id'],
        onUpdate: 'restrict',
        onDelete: 'cascade',
        definition: 'FOREIGN KEY (owner_id) REFERENCES app.owners(id) ON UPDATE RESTRICT ON DELETE CASCADE',
      },
    ]);
    expect(info.estimatedRows).toBe(2000);
    expect(info.totalBytes).toBeGreaterThan(8192 * 3);
  });

  test('a table without RLS, a view, and not found', async () => {
    const plain = await getTableInfo(pool, 'plain');
    expect(plain).toMatchObject({ rlsEnabled: false, rlsForced: false, primaryKey: null, indexes: [], foreignKeys: [] });
    const view = await getTableInfo(pool, '"v_odd ""view"""');
    expect(view.kind).toBe('view');
    expect(view.columns.map((c) => c.name)).toEqual(['one']);
    const err = await rejectionOf(getTableInfo(pool, 'app.nothing'));
    expect(err).toBeInstanceOf(UndefinedTableError);
    expect((err as UndefinedTableError).sqlstate).toBe('42P01');
    expect(await tableExists(pool, 'accounts')).toBe(false); // app is not on search_path
  });

  test('works on a leased connection and honours its search_path', async () => {
    const lease = await pool.acquire();
    try {
      await lease.query('set search_path = app, public');
      expect(await tableExists(lease, 'accounts')).toBe(true);
      expect((await getTableInfo(lease, 'accounts')).schema).toBe('app');
      expect(await columnExists(lease, 'accounts', 'email')).toBe(true);
      await lease.query('reset search_path');
    } finally {
      lease.release();
    }
  });
});

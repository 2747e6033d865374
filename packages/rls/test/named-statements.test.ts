import type { Pool } from '@accountdb/pool';
import { MAX_PREPARED_PER_CONNECTION } from '@accountdb/pool';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { createRls, RlsContextError } from '../src/index.js';
import { createFixture, type Fixture, rowsOf, viaPgBouncer } from './fixture.js';

// `rls.query(pool, ctx, { name, text, values })`: the caller's statement is prepared once per
// connection (behind PgBouncer < 1.21 everything falls back to unnamed statements, and these tests
// check the results only).
let fx: Fixture;
let pool: Pool;
const rls = createRls({ roles: ['user'] });

beforeAll(async () => {
  fx = await createFixture();
  pool = fx.pool(1);
  await fx.db.admin('create table shape (a int)');
  await fx.db.admin('insert into shape values (1)');
  await fx.db.admin(`grant select on shape to "${fx.app.user}"`);
});
afterAll(() => fx?.close());

async function callerStatements(): Promise<{ name: string; uses: number }[]> {
  const { rows } = await pool.query<{ name: string; uses: number }>(
    "select name, (generic_plans + custom_plans)::int as uses from pg_prepared_statements where name like 'accountdb_rls_q_%' order by name",
  );
  return rows;
}

test('a named statement runs as the user (RLS applies) and is parsed once per connection, then reused', async () => {
  for (const userId of [3, 4, 3, 5, 3]) {
    const { rows } = await rls.query<{ user_id: number }>(
      pool,
      { userId, role: 'user' },
      { name: 'my-notes', text: 'select user_id from notes' },
    );
    expect(rows).toHaveLength(rowsOf(userId));
    expect(rows.every((r) => r.user_id === userId)).toBe(true);
  }
  if (!viaPgBouncer)
    expect(await callerStatements()).toEqual([{ name: expect.stringMatching(/^accountdb_rls_q_[0-9a-f]{32}$/), uses: 5 }]);
  // The next plain borrower sees no context, as after any rls.query.
  const { rows } = await pool.query("select nullif(current_setting('app.current_user_id', true), '') as uid");
  expect(rows[0]?.uid).toBeNull();
});

test('the same name with another text is another statement (the server-side name follows the text)', async () => {
  const count = (text: string) =>
    rls.query<{ n: number }>(pool, { userId: 6, role: 'user' }, { name: 'count', text, values: [] }).then((r) => r.rows[0]?.n);
  expect(await count('select count(*)::int as n from notes')).toBe(rowsOf(6));
  expect(await count('select (count(*) * 10)::int as n from notes')).toBe(rowsOf(6) * 10);
  expect(await count('select count(*)::int as n from notes')).toBe(rowsOf(6));
});

test('a name that is not a non-empty string is an RlsContextError before a connection is leased', async () => {
  const acquires = pool.stats().acquires;
  for (const name of [42, '', null]) {
    await expect(rls.query(pool, { userId: 1, role: 'user' }, { name, text: 'select 1' } as never)).rejects.toBeInstanceOf(
      RlsContextError,
    );
  }
  expect(pool.stats().acquires).toBe(acquires);
});

test('a table changing shape under a named statement: the stale statement is dropped and the call runs again, parsed afresh', async () => {
  const select = { name: 'shape', text: 'select * from shape' };
  expect((await rls.query(pool, { userId: 1, role: 'user' }, select)).rows).toEqual([{ a: 1 }]);
  await fx.db.admin('alter table shape add column b int default 2');
  // PostgreSQL refuses to change a prepared statement's result columns (0A000, "cached plan must not
  // change result type"); the caller sees the new shape instead of that error, on the same connection.
  const connects = pool.stats().connects;
  expect((await rls.query(pool, { userId: 1, role: 'user' }, select)).rows).toEqual([{ a: 1, b: 2 }]);
  expect((await rls.query(pool, { userId: 1, role: 'user' }, select)).rows).toEqual([{ a: 1, b: 2 }]);
  expect(pool.stats().connects).toBe(connects);
  if (!viaPgBouncer) expect((await callerStatements()).filter((s) => s.uses > 0).length).toBeGreaterThan(0);
});

test.runIf(!viaPgBouncer)(
  "an unnamed statement with values is prepared once per connection by the pool's statement cache",
  async () => {
    const text = 'select user_id from notes where id > $1';
    for (const userId of [3, 4, 3]) {
      const { rows } = await rls.query<{ user_id: number }>(pool, { userId, role: 'user' }, text, [0]);
      expect(rows).toHaveLength(rowsOf(userId));
    }
    const { rows } = await pool.query<{ uses: number }>(
      "select (generic_plans + custom_plans)::int as uses from pg_prepared_statements where name like 'adb\\_%' and statement = $1",
      [text],
    );
    expect(rows).toEqual([{ uses: 3 }]);
  },
);

test("a table changing shape under a statement the pool's statement cache prepared: rls.query re-prepares and runs it once more", async () => {
  await fx.db.admin('create table shape2 (a int)');
  await fx.db.admin('insert into shape2 values (1)');
  await fx.db.admin(`grant select on shape2 to "${fx.app.user}"`);
  const text = 'select * from shape2 where a = $1';
  const ctx = { userId: 1, role: 'user' };
  expect((await rls.query(pool, ctx, text, [1])).rows).toEqual([{ a: 1 }]);
  expect((await rls.query(pool, ctx, text, [1])).rows).toEqual([{ a: 1 }]);
  await fx.db.admin('alter table shape2 add column b int default 2');
  const connects = pool.stats().connects;
  expect((await rls.query(pool, ctx, text, [1])).rows).toEqual([{ a: 1, b: 2 }]);
  expect((await rls.query(pool, ctx, text, [1], { readOnly: true })).rows).toEqual([{ a: 1, b: 2 }]);
  expect(pool.stats().connects).toBe(connects);
});

test.runIf(!viaPgBouncer)(
  `at most ${MAX_PREPARED_PER_CONNECTION} statements are prepared per connection; more still run, unnamed`,
  async () => {
    const extra = 10;
    for (let i = 0; i < MAX_PREPARED_PER_CONNECTION + extra; i++) {
      const { rows } = await rls.query<{ i: number }>(
        pool,
        { userId: 2, role: 'user' },
        { name: `q${i}`, text: `select ${i}::int as i` },
      );
      expect(rows).toEqual([{ i }]);
    }
    // The pool's statement cache (names adb_…) has its own bound (statementCacheSize): not counted here.
    const { rows } = await pool.query<{ n: number }>(
      "select count(*)::int as n from pg_prepared_statements where name not like 'adb\\_%'",
    );
    expect(rows[0]?.n).toBeLessThanOrEqual(MAX_PREPARED_PER_CONNECTION);
    expect(rows[0]?.n).toBeGreaterThan(MAX_PREPARED_PER_CONNECTION - extra);
  },
);

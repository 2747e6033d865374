import { randomBytes } from 'node:crypto';
import { createPool } from '@accountdb/pool';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  accessorFunctionsSql,
  assertSafeLoginRole,
  checkRlsEnabled,
  createRls,
  RlsContextError,
  UnsafeLoginRoleError,
  userOwnedPolicySql,
} from '../src/index.js';
import { createFixture, type Fixture, throughPgBouncer, USERS } from './fixture.js';

let fx: Fixture;
beforeAll(async () => {
  fx = await createFixture();
  await fx.db.admin('create table plain (id int)');
  await fx.db.admin('create table enabled_only (id int)');
  await fx.db.admin('alter table enabled_only enable row level security');
});
afterAll(() => fx?.close());

test('checkRlsEnabled reports exists / enabled / forced per table, in order', async () => {
  const pool = fx.pool(1);
  const report = await checkRlsEnabled(pool, ['notes', 'public.plain', 'enabled_only', 'missing', '"Notes"']);
  expect(report).toEqual([
    { table: 'notes', exists: true, rlsEnabled: true, rlsForced: true },
    { table: 'public.plain', exists: true, rlsEnabled: false, rlsForced: false },
    { table: 'enabled_only', exists: true, rlsEnabled: true, rlsForced: false },
    { table: 'missing', exists: false, rlsEnabled: false, rlsForced: false },
    { table: '"Notes"', exists: false, rlsEnabled: false, rlsForced: false },
  ]);
  await expect(checkRlsEnabled(pool, [])).rejects.toBeInstanceOf(RlsContextError);
  await expect(checkRlsEnabled(pool, ['a\u0000b'])).rejects.toBeInstanceOf(RlsContextError);
});

test('assertSafeLoginRole passes for the restricted role', async () => {
  await expect(assertSafeLoginRole(fx.pool(1))).resolves.toBeUndefined();
});

test('negative control: the guard fires for a superuser', async () => {
  const pool = createPool({ ...fx.db, sslmode: 'disable', minConnections: 0 });
  try {
    const err = await assertSafeLoginRole(pool).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeLoginRoleError);
    expect((err as UnsafeLoginRoleError).problems.some((p) => p.includes('superuser'))).toBe(true);
  } finally {
    await pool.close();
  }
});

test('negative control: the guard fires for BYPASSRLS, and such a role really sees every row', async () => {
  const role = `bypass_${randomBytes(4).toString('hex')}`;
  const password = randomBytes(8).toString('hex');
  await fx.db.admin(`create role "${role}" login nosuperuser bypassrls password '${password}'`);
  await fx.db.admin(`grant connect on database "${fx.db.database}" to "${role}"`);
  await fx.db.admin(`grant usage on schema public to "${role}"`);
  await fx.db.admin(`grant select on notes to "${role}"`);
  const pool = createPool({ ...fx.db, user: role, password, sslmode: 'disable', minConnections: 0 });
  try {
    const err = await assertSafeLoginRole(pool).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeLoginRoleError);
    expect((err as UnsafeLoginRoleError).problems.join('\n')).toContain('BYPASSRLS');
    const rls = createRls({ roles: ['user'] });
    const { rows } = await rls.query<{ n: number }>(
      pool,
      { userId: 1, role: 'user' },
      'select count(distinct user_id)::int as n from notes',
    );
    expect(rows[0]?.n).toBe(USERS);
  } finally {
    await pool.close();
    await fx.db.admin(`drop owned by "${role}"`);
    await fx.db.admin(`drop role "${role}"`);
  }
});

test('negative control: an owner without FORCE sees all rows, and the guard names the table', async () => {
  const app = await fx.db.createRestrictedRole();
  await fx.db.admin(`grant create on schema public to "${app.user}"`);
  const pool = createPool({ ...app, ...fx.target, sslmode: 'disable', minConnections: 0, ...throughPgBouncer });
  await fx.bouncer?.addUser(app.user, app.password);
  try {
    await pool.query('create table owned (id int, user_id int)');
    await pool.query('insert into owned select g, g % 5 + 1 from generate_series(1, 20) g');
    await pool.query(
      "create policy own on owned using (user_id = nullif(current_setting('app.current_user_id', true), '')::int)",
    );
    await pool.query('alter table owned enable row level security');
    const rls = createRls({ roles: ['user'] });
    const count = async () =>
      (await rls.query<{ n: number }>(pool, { userId: 1, role: 'user' }, 'select count(*)::int as n from owned')).rows[0]?.n;
    expect(await count()).toBe(20);
    const err = await assertSafeLoginRole(pool).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(UnsafeLoginRoleError);
    expect((err as UnsafeLoginRoleError).problems.join('\n')).toContain('public.owned');
    expect(await checkRlsEnabled(pool, ['owned'])).toEqual([
      { table: 'owned', exists: true, rlsEnabled: true, rlsForced: false },
    ]);
    await pool.query('alter table owned force row level security');
    expect(await count()).toBe(4);
    await expect(assertSafeLoginRole(pool)).resolves.toBeUndefined();
  } finally {
    await pool.close();
    await fx.db.admin('drop table if exists owned');
  }
});

test('accessor functions are STABLE, pin search_path and return NULL when unset', async () => {
  const { rows } = await fx.db.admin(
    `select p.proname, p.provolatile, p.proconfig, pg_get_function_result(p.oid) as result
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname = 'app' order by 1`,
  );
  expect(rows).toEqual([
    { proname: 'current_user_id', provolatile: 's', proconfig: ['search_path=pg_catalog'], result: 'integer' },
    { proname: 'current_user_role', provolatile: 's', proconfig: ['search_path=pg_catalog'], result: 'text' },
  ]);
  const pool = fx.pool(1);
  const plain = await pool.query('select app.current_user_id() as id, app.current_user_role() as role');
  expect(plain.rows[0]).toEqual({ id: null, role: null });
  const rls = createRls({ roles: ['admin'] });
  const scoped = await rls.query(
    pool,
    { userId: '42', role: 'admin' },
    'select app.current_user_id() as id, app.current_user_role() as role',
  );
  expect(scoped.rows[0]).toEqual({ id: 42, role: 'admin' });
});

test('SQL helpers quote identifiers and reject anything that is not one', () => {
  expect(userOwnedPolicySql({ table: 'cards', column: 'owner_id' })).toBe(
    [
      'ALTER TABLE "public"."cards" ENABLE ROW LEVEL SECURITY;',
      'ALTER TABLE "public"."cards" FORCE ROW LEVEL SECURITY;',
      'CREATE POLICY "cards_owner" ON "public"."cards" USING ("owner_id" = (SELECT "app"."current_user_id"())) WITH CHECK ("owner_id" = (SELECT "app"."current_user_id"()));',
    ].join('\n'),
  );
  expect(() => userOwnedPolicySql({ table: 'cards; drop table x' })).toThrow(RlsContextError);
  expect(() => accessorFunctionsSql({ userIdSetting: "app.x'" })).toThrow(RlsContextError);
  expect(accessorFunctionsSql({ userIdType: 'uuid', userIdSetting: 'tenant.user_id' })).toContain(
    `CREATE OR REPLACE FUNCTION "tenant"."user_id"() RETURNS uuid`,
  );
});

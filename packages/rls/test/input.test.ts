import { ConfigError, type Pool } from '@accountdb/pool';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRls, RlsContextError } from '../src/index.js';
import { createFixture, type Fixture, rowsOf } from './fixture.js';

let fx: Fixture;
let pool: Pool;
let connects = 0;
beforeAll(async () => {
  fx = await createFixture();
  pool = fx.pool(2, {
    onConnect: () => {
      connects++;
    },
  });
});
afterAll(() => fx?.close());

const rls = createRls({ roles: ['user', 'admin'] });

const badContexts: [string, unknown, unknown][] = [
  ['empty user id', '', 'user'],
  ['NUL byte in user id', '1\u00002', 'user'],
  ['10 kB user id', '1'.repeat(10_240), 'user'],
  ['non-numeric user id', 'abc', 'user'],
  ['SQL in user id', '1; drop table notes', 'user'],
  ['fractional user id', 1.5, 'user'],
  ['user id beyond int4', 2 ** 31, 'user'],
  ['user id as digit string beyond int4', '2147483648', 'user'],
  ['null user id', null, 'user'],
  ['user id as object', { id: 1 }, 'user'],
  ['empty role', 1, ''],
  ['NUL byte in role', 1, 'us\u0000er'],
  ['10 kB role', 1, 'r'.repeat(10_240)],
  ['role not allowed', 1, 'superadmin'],
  ['role differing in case', 1, 'Admin'],
  ['SQL in the role', 1, "admin'; reset role; --"],
  ['missing role', 1, undefined],
];

describe('invalid input is an RlsContextError and no statement reaches the server', () => {
  test.each(badContexts)('%s', async (_name, userId, role) => {
    const before = { acquires: pool.stats().acquires, connects };
    let called = false;
    const scope = rls.withUserContext(pool, { userId, role }, () => {
      called = true;
    });
    await expect(scope).rejects.toBeInstanceOf(RlsContextError);
    await expect(rls.query(pool, { userId, role }, 'select 1')).rejects.toBeInstanceOf(RlsContextError);
    expect(called).toBe(false);
    expect(pool.stats().acquires).toBe(before.acquires);
    expect(connects).toBe(before.connects);
  });

  test('messages describe the value, never echo it', async () => {
    const err = await rls.query(pool, { userId: 'secret-token-123', role: 'user' }, 'select 1').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RlsContextError);
    expect((err as Error).message).not.toContain('secret-token-123');
    expect((err as RlsContextError).field).toBe('userId');
  });

  test('bad scope options and a missing callback are rejected before SQL too', async () => {
    const before = pool.stats().acquires;
    const ctx = { userId: 1, role: 'user' };
    await expect(rls.withUserContext(pool, ctx, () => 1, { isolation: 'chaos' as never })).rejects.toBeInstanceOf(
      RlsContextError,
    );
    await expect(rls.withUserContext(pool, ctx, () => 1, { readOnly: 'yes' as never })).rejects.toBeInstanceOf(RlsContextError);
    await expect(rls.withUserContext(pool, ctx, undefined as never)).rejects.toBeInstanceOf(RlsContextError);
    await expect(rls.query(pool, ctx, '')).rejects.toBeInstanceOf(RlsContextError);
    await expect(rls.query(pool, ctx, 'select $1', 'x' as never)).rejects.toBeInstanceOf(RlsContextError);
    await expect(rls.query(pool, ctx, 'select 1\u0000; select 2')).rejects.toMatchObject({
      code: 'RLS_CONTEXT_INVALID',
      field: 'text',
    });
    expect(pool.stats().acquires).toBe(before);
  });

  test('a NUL byte in a scope statement fails that statement before anything is written; the connection stays usable', async () => {
    const single = fx.pool(1);
    try {
      const scope = rls.withUserContext(single, { userId: 1, role: 'user' }, (tx) => tx.query('select 1\u0000'));
      await expect(scope).rejects.toThrow(/NUL byte/);
      const { rows } = await single.query<{ uid: string | null }>(
        "select nullif(current_setting('app.current_user_id', true), '') as uid",
      );
      expect(rows[0]?.uid).toBeNull();
      expect(Object.values(single.stats().destroyed).reduce((a, b) => a + b, 0)).toBe(0);
    } finally {
      await single.close();
    }
  });
});

describe('valid ids', () => {
  test("the seed's string ids convertible to integers still work", async () => {
    for (const userId of ['11', 11, '011', 11n]) {
      const { rows } = await rls.query<{ n: number }>(pool, { userId, role: 'user' }, 'select count(*)::int as n from notes');
      expect(rows[0]?.n).toBe(rowsOf(11));
    }
  });

  test('bigint, uuid and custom validators', () => {
    const big = createRls({ roles: ['user'], userId: 'bigint' });
    expect(big.checkContext({ userId: '9223372036854775807', role: 'user' }).userId).toBe('9223372036854775807');
    expect(() => big.checkContext({ userId: '9223372036854775808', role: 'user' })).toThrow(RlsContextError);
    const uuid = createRls({ roles: ['user'], userId: 'uuid' });
    expect(uuid.checkContext({ userId: 'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11', role: 'user' }).userId).toBe(
      'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11',
    );
    expect(() => uuid.checkContext({ userId: 'a0eebc99-9c0b-4ef8-bb6d', role: 'user' })).toThrow(RlsContextError);
    const custom = createRls({
      roles: ['user'],
      userId: (v) => {
        if (typeof v !== 'string' || !/^usr_[a-z0-9]{4,32}$/.test(v)) throw new Error('not a user key');
        return v;
      },
    });
    expect(custom.checkContext({ userId: 'usr_abcd', role: 'user' }).userId).toBe('usr_abcd');
    expect(() => custom.checkContext({ userId: 'usr_', role: 'user' })).toThrow(RlsContextError);
    const sloppy = createRls({ roles: ['user'], userId: () => '' });
    expect(() => sloppy.checkContext({ userId: 1, role: 'user' })).toThrow(RlsContextError);
  });
});

test('invalid createRls options are one ConfigError listing each problem', () => {
  const err = (() => {
    try {
      createRls({
        roles: [],
        userIdSetting: 'no_dot',
        roleSetting: "app.x'; drop",
        userId: 'float' as never,
        databaseRoles: { ghost: 'r' },
      });
    } catch (e) {
      return e;
    }
  })();
  expect(err).toBeInstanceOf(ConfigError);
  const variables = (err as ConfigError).problems.map((p) => p.variable).sort();
  expect(variables).toEqual(['databaseRoles', 'roleSetting', 'roles', 'userId', 'userIdSetting']);
});

import { AccountDbError, type Pool, type QueryConfig } from '@accountdb/pool';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createRls, getUserConnectionInfo, RlsScopeError, type RlsTransaction } from '../src/index.js';
import { createFixture, type Fixture, rowsOf, viaPgBouncer } from './fixture.js';

let fx: Fixture;
let pool: Pool;
const rls = createRls({ roles: ['user', 'admin', 'reader'], databaseRoles: {} });

beforeAll(async () => {
  fx = await createFixture();
  pool = fx.pool(1);
  console.info(`[rls] context tests ${viaPgBouncer ? 'through PgBouncer (transaction pooling)' : 'direct to PostgreSQL'}`);
});
afterAll(() => fx?.close());

/** What the next plain borrower of the one-connection pool sees. */
async function nextBorrower() {
  return pool.withConnection(async (conn) => {
    const info = await getUserConnectionInfo(conn);
    const { rows } = await conn.query<{ n: number }>('select count(*)::int as n from notes');
    return { ...info, visibleNotes: rows[0]?.n };
  });
}

async function expectClean() {
  const seen = await nextBorrower();
  expect(seen.userId).toBeNull();
  expect(seen.role).toBeNull();
  expect(seen.currentUser).toBe(fx.app.user);
  expect(seen.sessionUser).toBe(fx.app.user);
  expect(seen.transactionStatus).toBe('I');
  // Fail-closed policy: no context, no rows.
  expect(seen.visibleNotes).toBe(0);
}

const ownNotes = (tx: RlsTransaction) => tx.query<{ user_id: number }>('select user_id from notes order by id');

describe('the next borrower sees no context and the login role after', () => {
  test('success', async () => {
    const rows = await rls.withUserContext(pool, { userId: 3, role: 'user' }, async (tx) => {
      const info = await getUserConnectionInfo(tx, rls);
      expect(info).toMatchObject({ userId: '3', role: 'user', currentUser: fx.app.user, transactionStatus: 'T' });
      return (await ownNotes(tx)).rows;
    });
    expect(rows).toHaveLength(rowsOf(3));
    expect(rows.every((r) => r.user_id === 3)).toBe(true);
    await expectClean();
  });

  test('fn throws', async () => {
    const boom = new Error('boom');
    await expect(
      rls.withUserContext(pool, { userId: 4, role: 'user' }, async (tx) => {
        await tx.query(`insert into notes (user_id, body) values (4, 'rolled back')`);
        throw boom;
      }),
    ).rejects.toBe(boom);
    await expectClean();
    const { rows } = await fx.db.admin(`select count(*)::int as n from notes where body = 'rolled back'`);
    expect(rows[0].n).toBe(0);
  });

  test('fn throws before its first statement completes', async () => {
    await expect(
      rls.withUserContext(pool, { userId: 4, role: 'user' }, (tx) => {
        void tx.query('select pg_sleep(0.05)');
        throw new Error('sync throw');
      }),
    ).rejects.toThrow('sync throw');
    await expectClean();
  });

  test('SQL error leaving the transaction aborted', async () => {
    await expect(
      rls.withUserContext(pool, { userId: 5, role: 'user' }, async (tx) => {
        await tx.query('select 1 / 0');
      }),
    ).rejects.toMatchObject({ code: 'DATA_EXCEPTION', sqlstate: '22012' });
    await expectClean();
  });

  test('SQL error swallowed by fn: nothing is committed and the scope fails', async () => {
    const err = await rls
      .withUserContext(pool, { userId: 5, role: 'user' }, async (tx) => {
        await tx.query(`insert into notes (user_id, body) values (5, 'swallowed')`);
        await tx.query('select 1 / 0').catch(() => {});
        return 'ok';
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RlsScopeError);
    expect((err as RlsScopeError).reason).toBe('commitFailed');
    await expectClean();
    const { rows } = await fx.db.admin(`select count(*)::int as n from notes where body = 'swallowed'`);
    expect(rows[0].n).toBe(0);
  });

  test('fn issuing COMMIT itself', async () => {
    const destroyedBefore = pool.stats().destroyed.released;
    const err = await rls
      .withUserContext(pool, { userId: 6, role: 'user' }, async (tx) => {
        await tx.query('commit');
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RlsScopeError);
    expect((err as RlsScopeError).reason).toBe('transactionEndedByCallback');
    expect(pool.stats().destroyed.released).toBe(destroyedBefore + 1);
    await expectClean();
  });

  test('fn issuing COMMIT; BEGIN in one string', async () => {
    const err = await rls
      .withUserContext(pool, { userId: 6, role: 'user' }, async (tx) => {
        await tx.query('select 1');
        // Only a later statement can do this: the first travels in the extended protocol, one command only.
        await tx.query('commit; begin');
      })
      .catch((e: unknown) => e);
    expect((err as RlsScopeError).reason).toBe('transactionEndedByCallback');
    await expectClean();
  });

  test('fn setting the context at session level (the seed habit)', async () => {
    await rls.withUserContext(pool, { userId: 7, role: 'user' }, async (tx) => {
      await tx.query(`select set_config('app.current_user_id', '7', false), set_config('app.current_user_role', 'user', false)`);
    });
    await expectClean();
  });

  test('fn overwriting the context inside the scope: rolled back, connection destroyed', async () => {
    const err = await rls
      .withUserContext(pool, { userId: 7, role: 'user' }, async (tx) => {
        await tx.query(`insert into notes (user_id, body) values (7, 'impersonation')`);
        await tx.query(`select set_config('app.current_user_id', '8', false)`);
      })
      .catch((e: unknown) => e);
    expect((err as RlsScopeError).reason).toBe('transactionEndedByCallback');
    await expectClean();
    const { rows } = await fx.db.admin(`select count(*)::int as n from notes where body = 'impersonation'`);
    expect(rows[0].n).toBe(0);
  });

  test('fn switching role at session level', async () => {
    const err = await rls
      .withUserContext(pool, { userId: 7, role: 'user' }, async (tx) => {
        await tx.query(`set role "${fx.readerRole}"`);
      })
      .catch((e: unknown) => e);
    expect((err as RlsScopeError).reason).toBe('roleChanged');
    await expectClean();
  });

  test('backend killed mid-scope', async () => {
    const err = await rls
      .withUserContext(pool, { userId: 8, role: 'user' }, async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('select pg_backend_pid() as pid');
        await fx.db.admin('select pg_terminate_backend($1)', [rows[0]?.pid]);
        await tx.query('select 1');
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await expectClean();
  });

  test('backend killed before COMMIT', async () => {
    const err = await rls
      .withUserContext(pool, { userId: 8, role: 'user' }, async (tx) => {
        const { rows } = await tx.query<{ pid: number }>('select pg_backend_pid() as pid');
        await fx.db.admin('select pg_terminate_backend($1)', [rows[0]?.pid]);
        await new Promise((r) => setTimeout(r, 100));
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await expectClean();
  });

  test('rls.query success, SQL error, and COMMIT inside the text', async () => {
    const { rows } = await rls.query<{ user_id: number }>(
      pool,
      { userId: '9', role: 'user' },
      'select user_id from notes where user_id = any($1)',
      [[9, 10, 11]],
    );
    expect(rows).toHaveLength(rowsOf(9));
    expect(rows.every((r) => r.user_id === 9)).toBe(true);
    await expectClean();
    await expect(rls.query(pool, { userId: 9, role: 'user' }, 'select 1 / 0')).rejects.toMatchObject({
      code: 'DATA_EXCEPTION',
      sqlstate: '22012',
    });
    await expectClean();
    // COMMIT as the one statement ends the implicit transaction early: nothing runs after it, and the
    // local context is gone with it.
    await rls.query(pool, { userId: 9, role: 'user' }, 'commit');
    await expectClean();
  });

  test('a role mapped to a database role runs as that role, then the login role again', async () => {
    const mapped = createRls({ roles: ['reader'], databaseRoles: { reader: fx.readerRole } });
    const info = await mapped.withUserContext(pool, { userId: 2, role: 'reader' }, (tx) => getUserConnectionInfo(tx, mapped));
    expect(info.currentUser).toBe(fx.readerRole);
    expect(info.sessionUser).toBe(fx.app.user);
    const { rows } = await mapped.query<{ n: number }>(
      pool,
      { userId: 2, role: 'reader' },
      'select count(*)::int as n from notes',
    );
    expect(rows[0]?.n).toBe(rowsOf(2));
    await expectClean();
  });

  test('a database role the login role cannot use fails closed', async () => {
    const bad = createRls({ roles: ['x'], databaseRoles: { x: 'pg_read_server_files' } });
    const err = await bad.withUserContext(pool, { userId: 2, role: 'x' }, (tx) => ownNotes(tx)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(Error);
    await expectClean();
  });
});

describe('prepared context statements (default) straight to PostgreSQL', () => {
  test('stay correct through failures, and fall back to unnamed statements when the server drops them', async () => {
    const direct = fx.directPool(1);
    const logged: string[] = [];
    const log = {
      trace() {},
      debug() {},
      info() {},
      error() {},
      warn: (_o: object, msg?: string) => logged.push(msg ?? ''),
      child: () => log,
    };
    const prepared = createRls({ roles: ['user', 'reader'], databaseRoles: { reader: fx.readerRole }, logger: log as never });
    const count = async (userId: number, role = 'user') =>
      (await prepared.query<{ n: number }>(direct, { userId, role }, 'select count(*)::int as n from notes')).rows[0]?.n;
    for (let i = 1; i <= 3; i++) expect(await count(i)).toBe(rowsOf(i));
    const names = async () =>
      (await direct.query<{ name: string }>('select name from pg_prepared_statements order by 1')).rows.map((r) => r.name);
    expect(await names()).toEqual(['accountdb_rls_clear', 'accountdb_rls_end', 'accountdb_rls_set_v2']);
    await expect(prepared.query(direct, { userId: 1, role: 'user' }, 'select 1 / 0')).rejects.toMatchObject({
      code: 'DATA_EXCEPTION',
      sqlstate: '22012',
    });
    expect(await count(4)).toBe(rowsOf(4));
    expect(await count(5, 'reader')).toBe(rowsOf(5));
    await expect(
      prepared.withUserContext(direct, { userId: 6, role: 'user' }, (tx) => tx.query('commit')),
    ).rejects.toBeInstanceOf(RlsScopeError);
    expect(await count(6)).toBe(rowsOf(6));
    // DISCARD ALL drops them server-side: caught before the statement ran, resent unnamed, unnamed from then on.
    await direct.query('discard all');
    expect(await count(7)).toBe(rowsOf(7));
    expect(logged.filter((m) => m.includes('unnamed statements from now on'))).toHaveLength(1);
    expect(
      await prepared.withUserContext(direct, { userId: 8, role: 'user' }, async (tx) => (await ownNotes(tx)).rows.length),
    ).toBe(rowsOf(8));
    expect(await names()).toEqual([]);
    const seen = await direct.withConnection((c) => getUserConnectionInfo(c));
    expect(seen).toMatchObject({ userId: null, role: null, currentUser: fx.app.user, transactionStatus: 'I' });
  });

  test('preparedStatements: false never creates server-side statements', async () => {
    const direct = fx.directPool(1);
    const unnamed = createRls({ roles: ['user'], preparedStatements: false });
    await unnamed.query(direct, { userId: 2, role: 'user' }, 'select 1');
    await unnamed.withUserContext(direct, { userId: 2, role: 'user' }, (tx) => tx.query('select 1'));
    const { rows } = await direct.query('select name from pg_prepared_statements');
    expect(rows).toEqual([]);
  });
});

describe('the transaction facade', () => {
  test('cannot release or end the connection, and refuses queries after the scope', async () => {
    let kept: RlsTransaction | undefined;
    await rls.withUserContext(pool, { userId: 1, role: 'user' }, (tx) => {
      kept = tx;
      expect('release' in tx).toBe(false);
      expect('client' in tx).toBe(false);
      expect('end' in tx).toBe(false);
    });
    await expect(kept?.query('select 1')).rejects.toBeInstanceOf(AccountDbError);
    await expectClean();
  });

  test('read-only and isolation options reach BEGIN', async () => {
    const out = await rls.withUserContext(
      pool,
      { userId: 1, role: 'user' },
      async (tx) =>
        (
          await tx.query<{ ro: string; iso: string }>(
            `select current_setting('transaction_read_only') as ro, current_setting('transaction_isolation') as iso`,
          )
        ).rows[0],
      { readOnly: true, isolation: 'serializable' },
    );
    expect(out).toEqual({ ro: 'on', iso: 'serializable' });
    await expect(
      rls.withUserContext(
        pool,
        { userId: 1, role: 'user' },
        (tx) => tx.query(`insert into notes (user_id, body) values (1, 'x')`),
        {
          readOnly: true,
        },
      ),
    ).rejects.toMatchObject({ code: 'SQL_ERROR', sqlstate: '25006' });
    await expectClean();
  });

  test('query configs: rowMode and types travel in the first flight; a named statement falls back to its own trip', async () => {
    const first = await rls.withUserContext(pool, { userId: 13, role: 'user' }, async (tx) => {
      const arrays = await tx.query({
        text: 'select user_id, $1::int as k from notes',
        values: [5],
        rowMode: 'array',
      } as QueryConfig);
      const named = await tx.query({ name: 'rls_named_test', text: 'select count(*)::int as n from notes' });
      return { arrays: arrays.rows, named: named.rows[0] };
    });
    expect(first.arrays).toHaveLength(rowsOf(13));
    expect(first.arrays[0]).toEqual([13, 5]);
    expect(first.named).toEqual({ n: rowsOf(13) });
    // As the first statement, a named one gets its own trip after BEGIN and the context.
    const named = await rls.withUserContext(pool, { userId: 14, role: 'user' }, async (tx) =>
      tx.query({ name: 'rls_named_first', text: 'select count(*)::int as n from notes' }),
    );
    expect(named.rows[0]).toEqual({ n: rowsOf(14) });
    await expectClean();
  });

  test('a type parser that throws on a row surfaces its error and leaves the connection clean', async () => {
    const types = {
      getTypeParser: () => () => {
        throw new Error('parser boom');
      },
    };
    await expect(
      rls.query(pool, { userId: 3, role: 'user' }, { text: 'select user_id from notes', types } as never),
    ).rejects.toThrow('parser boom');
    await expectClean();
    await expect(
      rls.withUserContext(pool, { userId: 3, role: 'user' }, (tx) =>
        tx.query({ text: 'select user_id from notes', types } as QueryConfig),
      ),
    ).rejects.toThrow('parser boom');
    await expectClean();
  });

  test('a value pg cannot serialise fails the statement before anything is sent', async () => {
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(rls.query(pool, { userId: 3, role: 'user' }, 'select $1::jsonb', [cyclic])).rejects.toThrow(/circular/i);
    await expectClean();
    await expect(
      rls.withUserContext(pool, { userId: 3, role: 'user' }, (tx) => tx.query('select $1::jsonb', [cyclic])),
    ).rejects.toThrow(/circular/i);
    await expectClean();
  });

  test('concurrent statements inside one scope', async () => {
    const counts = await rls.withUserContext(pool, { userId: 12, role: 'user' }, (tx) =>
      Promise.all([1, 2, 3].map(async () => (await ownNotes(tx)).rows.length)),
    );
    expect(counts).toEqual([rowsOf(12), rowsOf(12), rowsOf(12)]);
    await expectClean();
  });
});

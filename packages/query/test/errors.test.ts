import { AccountDbError, ConnectionLostError, DataExceptionError, toDatabaseError } from '@accountdb/pool';
import { CONSTRAINT_TABLES_SQL, createTestDatabase, type TestDatabase, waitFor } from '@accountdb/test-db';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  CheckViolationError,
  DeadlockDetectedError,
  ExclusionViolationError,
  execute,
  ForeignKeyViolationError,
  InsufficientPrivilegeError,
  LockNotAvailableError,
  NotNullViolationError,
  QueryCanceledError,
  SerializationFailureError,
  type SqlError,
  SqlSyntaxError,
  StatementTimeoutError,
  transaction,
  UndefinedColumnError,
  UndefinedTableError,
  UniqueViolationError,
} from '../src/index.js';
import { poolFor, rejectionOf } from './helpers.js';

let db: TestDatabase;
let pool: ReturnType<typeof poolFor>;
const SECRET = 'secret-value-7f3a@example.com';

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin(CONSTRAINT_TABLES_SQL);
  await db.admin(`
    create table counters (id int primary key, n int not null);
    insert into counters values (1, 0), (2, 0);
  `);
  pool = poolFor(db, { maxConnections: 6 });
});
afterAll(async () => {
  await pool.close();
  await db.drop();
});

/** Every mapped error: typed, AccountDbError, fields from the server, the parameter value nowhere visible. */
function expectClean(err: unknown, cls: new (...args: never[]) => SqlError, sqlstate: string) {
  expect(err).toBeInstanceOf(cls);
  expect(AccountDbError.is(err)).toBe(true);
  const e = err as SqlError;
  expect(e.sqlstate).toBe(sqlstate);
  expect(e.message).not.toContain(SECRET);
  expect(JSON.stringify(e)).not.toContain(SECRET);
  expect(String(e.stack)).not.toContain(SECRET);
  expect(e.cause).toBeUndefined();
  return e;
}

test('23505 unique violation: constraint and table; detail kept out of message and enumeration', async () => {
  await execute(pool, 'insert into people (id, email) values ($1, $2)', [1, SECRET]);
  const err = await rejectionOf(execute(pool, 'insert into people (id, email) values ($1, $2)', [2, SECRET]));
  const e = expectClean(err, UniqueViolationError, '23505');
  expect(e.code).toBe('UNIQUE_VIOLATION');
  expect(e.constraint).toBe('people_email_key');
  expect(e.table).toBe('people');
  expect(e.schema).toBe('public');
  // PostgreSQL's DETAIL names the conflicting value: available on request, never enumerated.
  expect(e.detail).toContain(SECRET);
  expect(Object.keys(e)).not.toContain('detail');
});

test('23503 foreign key, 23502 not null, 23514 check, 23P01 exclusion', async () => {
  const fk = expectClean(
    await rejectionOf(execute(pool, 'insert into people (id, email, parent_id) values ($1, $2, $3)', [3, `fk-${SECRET}`, 99])),
    ForeignKeyViolationError,
    '23503',
  );
  expect(fk.constraint).toBe('people_parent_fkey');
  expect(fk.table).toBe('people');

  const nn = expectClean(
    await rejectionOf(execute(pool, 'insert into people (id, email) values ($1, $2)', [4, null])),
    NotNullViolationError,
    '23502',
  );
  expect(nn.column).toBe('email');
  expect(nn.table).toBe('people');

  const check = expectClean(
    await rejectionOf(execute(pool, 'insert into people (id, email, age) values ($1, $2, $3)', [5, `check-${SECRET}`, -1])),
    CheckViolationError,
    '23514',
  );
  expect(check.constraint).toBe('people_age_check');

  await execute(pool, 'insert into bookings values ($1)', ['[1,5)']);
  const ex = expectClean(
    await rejectionOf(execute(pool, 'insert into bookings values ($1)', ['[3,8)'])),
    ExclusionViolationError,
    '23P01',
  );
  expect(ex.constraint).toBe('bookings_no_overlap');
});

test('42P01 undefined table, 42703 undefined column, 42601 syntax, 42501 insufficient privilege', async () => {
  const t = expectClean(await rejectionOf(execute(pool, 'select * from no_such_table')), UndefinedTableError, '42P01');
  expect(t.code).toBe('UNDEFINED_TABLE');
  expectClean(await rejectionOf(execute(pool, 'select no_such_column from people')), UndefinedColumnError, '42703');
  expectClean(await rejectionOf(execute(pool, 'selec 1')), SqlSyntaxError, '42601');

  const role = await db.createRestrictedRole();
  const restricted = poolFor(role);
  try {
    const err = await rejectionOf(execute(restricted, 'select * from people where email = $1', [SECRET]));
    expectClean(err, InsufficientPrivilegeError, '42501');
  } finally {
    await restricted.close();
  }
});

test('55P03 lock not available (NOWAIT while another transaction holds the row)', async () => {
  const holder = await pool.acquire();
  try {
    await holder.query('begin');
    await holder.query('select * from counters where id = 1 for update');
    const err = await rejectionOf(execute(pool, 'select * from counters where id = $1 for update nowait', [1]));
    expectClean(err, LockNotAvailableError, '55P03');
  } finally {
    await holder.query('rollback');
    holder.release();
  }
});

test('40001 serialization failure and 40P01 deadlock surface typed when retries are off', async () => {
  // Write skew under SERIALIZABLE: each reads what the other writes.
  const a = await pool.acquire();
  const b = await pool.acquire();
  try {
    for (const c of [a, b]) await c.query('begin isolation level serializable');
    await a.query('select sum(n) from counters');
    await b.query('select sum(n) from counters');
    await a.query('update counters set n = n + 1 where id = 1');
    await b.query('update counters set n = n + 1 where id = 2');
    await a.query('commit');
    const err = await rejectionOf(b.query('commit'));
    expectClean(err, SerializationFailureError, '40001');
  } finally {
    for (const c of [a, b]) {
      await c.query('rollback').catch(() => {});
      c.release();
    }
  }

  // Deadlock: opposite lock order, rendezvous after the first lock each.
  let arrived = 0;
  let release!: () => void;
  const bothLocked = new Promise<void>((r) => {
    release = r;
  });
  const rendezvous = async () => {
    arrived++;
    if (arrived === 2) release();
    await bothLocked;
  };
  const results = await Promise.allSettled(
    [
      [1, 2],
      [2, 1],
    ].map(([first, second]) =>
      transaction(
        pool,
        async (tx) => {
          await execute(tx, 'update counters set n = n + 1 where id = $1', [first]);
          await rendezvous();
          await execute(tx, 'update counters set n = n + 1 where id = $1', [second]);
        },
        { maxRetries: 0 },
      ),
    ),
  );
  const failures = results.filter((r) => r.status === 'rejected').map((r) => (r as PromiseRejectedResult).reason);
  expect(failures).toHaveLength(1);
  expectClean(failures[0], DeadlockDetectedError, '40P01');
});

test('57014: server statement_timeout -> StatementTimeoutError, pg_cancel_backend -> QueryCanceledError', async () => {
  const lease = await pool.acquire();
  try {
    await lease.query("set statement_timeout = '50ms'");
    expectClean(await rejectionOf(execute(lease, 'select pg_sleep(5)')), StatementTimeoutError, '57014');
    await lease.query('reset statement_timeout');
    const running = rejectionOf(execute(lease, 'select pg_sleep(5)'));
    // Wait until the sleep is running, then cancel it from outside (as an operator would).
    await waitFor(async () => {
      const { rows } = await db.admin("select state from pg_stat_activity where pid = $1 and query like 'select pg_sleep%'", [
        lease.processId,
      ]);
      return rows[0]?.state === 'active';
    });
    await db.admin('select pg_cancel_backend($1)', [lease.processId]);
    expectClean(await running, QueryCanceledError, '57014');
  } finally {
    lease.release();
  }
});

test('data exceptions: the offending input is masked in the message', async () => {
  const err = await rejectionOf(execute(pool, 'select $1::int', [SECRET]));
  const e = expectClean(err, DataExceptionError, '22P02');
  expect(e.code).toBe('DATA_EXCEPTION');
  expect(e.message).toMatch(/invalid input syntax for type integer/);
  const range = await rejectionOf(execute(pool, 'select $1::int', ['98765432101234']));
  expect((range as SqlError).message).not.toContain('98765432101234');
});

test("pool's toDatabaseError: non-database errors unchanged, a session ended by the server is a lost connection", () => {
  const plain = new Error('boom');
  expect(toDatabaseError(plain)).toBe(plain);
  const shutdown = Object.assign(new Error('terminating connection due to administrator command'), {
    code: '57P01',
    severity: 'FATAL',
  });
  expect(toDatabaseError(shutdown)).toMatchObject({
    code: 'CONNECTION_LOST',
    reason: 'terminated',
    sqlstate: '57P01',
    retrySafe: true,
  });
  expect(toDatabaseError(shutdown, { committing: true })).toMatchObject({ retrySafe: false });
  expect(toDatabaseError(shutdown)).toBeInstanceOf(ConnectionLostError);
  const net = Object.assign(new Error('connect ECONNREFUSED'), { code: 'ECONNREFUSED' });
  expect(toDatabaseError(net)).toBe(net);
  expect(toDatabaseError('not an error')).toBe('not an error');
  const errno = Object.assign(new Error('operation not permitted'), { code: 'EPERM' });
  expect(toDatabaseError(errno)).toBe(errno);
  const mapped = toDatabaseError(Object.assign(new Error('x'), { code: '23505', severity: 'ERROR', constraint: 'c' }));
  expect(mapped).toBeInstanceOf(UniqueViolationError);
  expect(toDatabaseError(mapped)).toBe(mapped);
});

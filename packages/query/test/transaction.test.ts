import type { PoolConnection } from '@accountdb/pool';
import { createTestDatabase, type TestDatabase, waitFor } from '@accountdb/test-db';
import { afterAll, beforeAll, beforeEach, expect, test } from 'vitest';
import { execute, QueryArgumentError, QueryCanceledError, SqlError, transaction, UniqueViolationError } from '../src/index.js';
import { poolFor, rejectionOf } from './helpers.js';

let db: TestDatabase;
let pool: ReturnType<typeof poolFor>;

beforeAll(async () => {
  db = await createTestDatabase();
  await db.admin('create table accounts (id int primary key, balance int not null); create table log (msg text not null unique)');
  pool = poolFor(db, { maxConnections: 6 });
});
beforeEach(async () => {
  await db.admin('truncate accounts, log; insert into accounts values (1, 100), (2, 100)');
});
afterAll(async () => {
  await pool.close();
  await db.drop();
});

const messages = async () => (await execute<{ msg: string }>(pool, 'select msg from log order by msg')).map((r) => r.msg);

/** Resolves once `n` callers have arrived: forces a schedule where both transactions overlap. */
function barrier(n: number) {
  let arrived = 0;
  let open!: () => void;
  const opened = new Promise<void>((r) => {
    open = r;
  });
  return async () => {
    arrived++;
    if (arrived === n) open();
    await opened;
  };
}

test('commits the work and returns fn’s value; any error rolls back', async () => {
  const value = await transaction(pool, async (tx) => {
    await execute(tx, 'insert into log values ($1)', ['a']);
    return 'done';
  });
  expect(value).toBe('done');
  const err = await rejectionOf(
    transaction(pool, async (tx) => {
      await execute(tx, 'insert into log values ($1)', ['b']);
      throw new Error('application failure');
    }),
  );
  expect((err as Error).message).toBe('application failure');
  const dup = await rejectionOf(
    transaction(pool, async (tx) => {
      await execute(tx, 'insert into log values ($1)', ['c']);
      await tx.query("insert into log values ('a')"); // raw driver call: its error is mapped too
    }),
  );
  expect(dup).toBeInstanceOf(UniqueViolationError);
  expect(await messages()).toEqual(['a']);
  expect(pool.stats().active).toBe(0);
});

test('isolation, readOnly and deferrable reach the server', async () => {
  const settings = await transaction(
    pool,
    async (tx) =>
      execute<{ iso: string; ro: string; def: string }>(
        tx,
        "select current_setting('transaction_isolation') as iso, current_setting('transaction_read_only') as ro, current_setting('transaction_deferrable') as def",
        [],
        { fetch: 'one' },
      ),
    { isolation: 'serializable', readOnly: true, deferrable: true },
  );
  expect(settings).toEqual({ iso: 'serializable', ro: 'on', def: 'on' });
  const err = await rejectionOf(transaction(pool, (tx) => execute(tx, "insert into log values ('x')"), { readOnly: true }));
  expect(err).toBeInstanceOf(SqlError);
  expect((err as SqlError).sqlstate).toBe('25006');
  const rr = await transaction(
    pool,
    (tx) => execute(tx, "select current_setting('transaction_isolation') as iso", [], { fetch: 'one' }),
    {
      isolation: 'repeatable read',
    },
  );
  expect(rr).toEqual({ iso: 'repeatable read' });
});

test('two concurrent serializable transactions that conflict both commit thanks to the retry', async () => {
  const meet = barrier(2);
  const attempts: [number, number] = [0, 0];
  // Write skew: each moves money out only if the total stays >= 150. Serially the second sees the
  // first's withdrawal and withdraws less; run concurrently one of them fails with 40001 and reruns.
  const withdraw = (id: number, who: 0 | 1) =>
    transaction(
      pool,
      async (tx) => {
        attempts[who]++;
        const total = await execute<{ t: number }>(tx, 'select sum(balance)::int as t from accounts', [], { fetch: 'one' });
        if (attempts[who] === 1) await meet();
        const amount = Math.min(40, (total?.t ?? 0) - 150);
        await execute(tx, 'update accounts set balance = balance - $1 where id = $2', [amount, id]);
        return amount;
      },
      { isolation: 'serializable' },
    );
  const amounts = await Promise.all([withdraw(1, 0), withdraw(2, 1)]);
  expect(attempts[0] + attempts[1]).toBeGreaterThanOrEqual(3);
  // Both committed and the invariant held: 40 then 10 (in some order).
  expect([...amounts].sort((a, b) => a - b)).toEqual([10, 40]);
  const total = await execute<{ t: number }>(pool, 'select sum(balance)::int as t from accounts', [], { fetch: 'one' });
  expect(total?.t).toBe(150);
});

test('a deadlock is retried and both transactions commit', async () => {
  const meet = barrier(2);
  const attempts: [number, number] = [0, 0];
  const move = (from: number, to: number, who: 0 | 1) =>
    transaction(pool, async (tx) => {
      attempts[who]++;
      await execute(tx, 'update accounts set balance = balance - 1 where id = $1', [from]);
      if (attempts[who] === 1) await meet();
      await execute(tx, 'update accounts set balance = balance + 1 where id = $1', [to]);
    });
  await Promise.all([move(1, 2, 0), move(2, 1, 1)]);
  expect(attempts[0] + attempts[1]).toBe(3);
  const rows = await execute<{ balance: number }>(pool, 'select balance from accounts order by id');
  expect(rows.map((r) => r.balance)).toEqual([100, 100]);
});

test('a nested transaction uses a savepoint: its rollback keeps the outer work', async () => {
  await transaction(pool, async (tx) => {
    await execute(tx, 'insert into log values ($1)', ['outer-before']);
    const err = await rejectionOf(
      transaction(tx, async (inner) => {
        await execute(inner, 'insert into log values ($1)', ['inner-lost']);
        await execute(inner, 'insert into log values ($1)', ['outer-before']); // unique violation
      }),
    );
    expect(err).toBeInstanceOf(UniqueViolationError);
    // Two levels deep, committed with the outer transaction.
    await transaction(tx, async (inner) => {
      await execute(inner, 'insert into log values ($1)', ['inner-kept']);
      await transaction(inner, (innermost) => execute(innermost, 'insert into log values ($1)', ['innermost-kept']));
      const deeper = await rejectionOf(transaction(inner, () => Promise.reject(new Error('nope'))));
      expect((deeper as Error).message).toBe('nope');
    });
    await execute(tx, 'insert into log values ($1)', ['outer-after']);
  });
  expect(await messages()).toEqual(['inner-kept', 'innermost-kept', 'outer-after', 'outer-before']);
});

test('nested options are refused before SQL; a lease not in a transaction gets a real one', async () => {
  await transaction(pool, async (tx) => {
    expect(await rejectionOf(transaction(tx, async () => {}, { isolation: 'serializable' }))).toBeInstanceOf(QueryArgumentError);
  });
  const lease = await pool.acquire();
  try {
    await transaction(lease, (tx) => execute(tx, 'insert into log values ($1)', ['on-lease']), { isolation: 'repeatable read' });
    expect(lease.client.getTransactionStatus()).toBe('I');
    expect(pool.stats().active).toBe(1);
  } finally {
    lease.release();
  }
  expect(await messages()).toEqual(['on-lease']);
});

test('a swallowed error makes COMMIT a ROLLBACK: reported, not silently lost', async () => {
  const err = await rejectionOf(
    transaction(pool, async (tx) => {
      await execute(tx, 'insert into log values ($1)', ['swallowed']);
      await execute(tx, 'select * from no_such_table').catch(() => {});
    }),
  );
  expect(err).toBeInstanceOf(SqlError);
  expect((err as SqlError).code).toBe('TRANSACTION_ROLLED_BACK');
  expect(await messages()).toEqual([]);
});

test('when ROLLBACK itself fails the connection is destroyed, and the pool carries on', async () => {
  const before = pool.stats().destroyed.released;
  let pid = 0;
  const err = await rejectionOf(
    transaction(pool, async (tx: PoolConnection) => {
      pid = tx.processId;
      await execute(tx, 'insert into log values ($1)', ['doomed']);
      await db.admin('select pg_terminate_backend($1)', [pid]);
      throw new Error('after the backend died');
    }),
  );
  expect((err as Error).message).toBe('after the backend died');
  expect(pool.stats().destroyed.released).toBe(before + 1);
  expect(pool.stats().active).toBe(0);
  expect(await messages()).toEqual([]);
  const { rows } = await db.admin('select count(*)::int as n from pg_stat_activity where pid = $1', [pid]);
  expect(rows[0]?.n).toBe(0);
});

test('retries are bounded by maxRetries', async () => {
  let attempts = 0;
  const err = await rejectionOf(
    transaction(
      pool,
      async (tx) => {
        attempts++;
        await execute(tx, 'select 1/0 from pg_catalog.pg_class where false union all select 1 where raise_serialization()');
      },
      { maxRetries: 2 },
    ).catch(async (e) => {
      // No such function: a plain error, not retried.
      expect(attempts).toBe(1);
      throw e;
    }),
  );
  expect(err).toBeInstanceOf(SqlError);
  await db.admin(`create or replace function raise_serialization() returns boolean language plpgsql as $$
    begin raise exception 'forced' using errcode = '40001'; end $$`);
  attempts = 0;
  const failed = await rejectionOf(
    transaction(
      pool,
      async (tx) => {
        attempts++;
        await execute(tx, 'select raise_serialization()');
      },
      { maxRetries: 2 },
    ),
  );
  expect((failed as SqlError).code).toBe('SERIALIZATION_FAILURE');
  expect(attempts).toBe(3);
});

test('signal: aborting while a statement runs cancels it on the server and rolls the transaction back', async () => {
  const controller = new AbortController();
  let pid = 0;
  const err = await rejectionOf(
    transaction(
      pool,
      async (tx) => {
        pid = tx.processId;
        await execute(tx, "insert into log values ('before the abort')");
        setTimeout(() => controller.abort(), 200);
        // No signal passed to the statement itself: the transaction's signal cancels it.
        await execute(tx, 'select pg_sleep(30)');
      },
      { signal: controller.signal },
    ),
  );
  expect(err).toBeInstanceOf(QueryCanceledError);
  expect(await messages()).toEqual([]); // rolled back
  await waitFor(async () => pool.stats().active === 0);
  const { rows } = await db.admin('select state from pg_stat_activity where pid = $1', [pid]);
  expect(rows[0]?.state).toBe('idle'); // the backend is not still sleeping
});

test('signal: aborting while fn works in JS (no statement running) rolls back instead of committing', async () => {
  const controller = new AbortController();
  const err = await rejectionOf(
    transaction(
      pool,
      async (tx) => {
        await execute(tx, "insert into log values ('never committed')");
        controller.abort(new Error('client went away'));
        return 'done';
      },
      { signal: controller.signal },
    ),
  );
  expect(err).toBeInstanceOf(QueryCanceledError);
  expect((err as Error).message).toMatch(/rolled back/);
  expect(await messages()).toEqual([]);
  // Positive control: the same transaction with a signal that never aborts commits.
  await transaction(pool, (tx) => execute(tx, "insert into log values ('committed')"), { signal: new AbortController().signal });
  expect(await messages()).toEqual(['committed']);
});

test('signal: an abort ends the retries (no further attempt after a serialization failure)', async () => {
  const controller = new AbortController();
  let attempts = 0;
  const err = await rejectionOf(
    transaction(
      pool,
      async (tx) => {
        attempts++;
        controller.abort();
        await execute(tx, "do $$ begin raise exception 'conflict' using errcode = '40001'; end $$");
      },
      { signal: controller.signal, maxRetries: 5 },
    ),
  );
  expect(err).toBeInstanceOf(QueryCanceledError);
  expect(attempts).toBe(1);
});

test('signal: already aborted → QueryCanceledError without leasing a connection; not a signal → QueryArgumentError', async () => {
  const acquires = pool.stats().acquires;
  await expect(transaction(pool, () => 1, { signal: AbortSignal.abort() })).rejects.toBeInstanceOf(QueryCanceledError);
  expect(pool.stats().acquires).toBe(acquires);
  await expect(transaction(pool, () => 1, { signal: {} as never })).rejects.toBeInstanceOf(QueryArgumentError);
});

import { createTestDatabase, RoundTripCounter, type TestDatabase } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  ConnectionLostError,
  createPool,
  DataExceptionError,
  MAX_PREPARED_PER_CONNECTION,
  type Pool,
  type PoolConfigInput,
  type PoolConnection,
} from '../src/index.js';

// Batches are a lease capability (issue 9 §2): the pool encodes and sends them, so its in-flight and
// fatal-error bookkeeping sees them, and a failure is reported by the role the caller gave.

let db: TestDatabase;
let counter: RoundTripCounter;
const pools: Pool[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  counter = await RoundTripCounter.start(db.host, db.port);
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
});
afterAll(async () => {
  counter?.close();
  await db?.drop();
});

function makePool(overrides: PoolConfigInput = {}): Pool {
  const pool = createPool({ ...db, sslmode: 'disable', minConnections: 0, maxConnections: 1, ...overrides });
  pools.push(pool);
  return pool;
}

async function preparedOn(lease: PoolConnection): Promise<string[]> {
  const { rows } = await lease.query<{ name: string }>('select name from pg_prepared_statements order by name');
  return rows.map((r) => r.name);
}

describe('lease.batch', () => {
  test('three statements in one transaction, one round trip, results per statement', async () => {
    const pool = makePool({ hosts: [{ host: '127.0.0.1', port: counter.port }], validateAfterIdleMs: 3_600_000 });
    const lease = await pool.acquire();
    let outcome: Awaited<ReturnType<PoolConnection['batch']>> | undefined;
    const trips = await counter.count(async () => {
      outcome = await lease.batch([
        { text: 'begin', role: 'begin' },
        { text: "select set_config('app.x', $1, true) as v", values: ['7'], discardRows: true, role: 'set' },
        { text: "select current_setting('app.x') as v, $1::int as n", values: [5], role: 'read' },
        { text: 'commit', role: 'commit' },
      ]);
    });
    expect(trips).toBe(1);
    expect(outcome?.ok).toBe(true);
    if (outcome?.ok) {
      expect(outcome.results[1]).toBeUndefined();
      expect(outcome.results[2]?.rows).toEqual([{ v: '7', n: 5 }]);
      expect(outcome.results[3]?.command).toBe('COMMIT');
    }
    lease.release();
    expect(pool.stats().destroyed.notIdle).toBe(0);
  });

  test('a failure names the statement by its role, typed; the rest is skipped and the connection stays usable', async () => {
    const pool = makePool();
    await pool.query('create table if not exists batch_t (n int)');
    const lease = await pool.acquire();
    const outcome = await lease.batch([
      { text: 'insert into batch_t values ($1)', values: [1], role: 'first' },
      { text: 'select 1 / $1::int', values: [0], role: 'divide' },
      { text: 'insert into batch_t values ($1)', values: [2], role: 'never' },
    ]);
    expect(outcome).toMatchObject({ ok: false, failed: 'statement', index: 1, role: 'divide' });
    if (!outcome.ok) expect(outcome.error).toBeInstanceOf(DataExceptionError);
    // One implicit transaction: the first insert rolled back with it.
    expect((await lease.query('select count(*)::int as n from batch_t')).rows[0]).toEqual({ n: 0 });
    lease.release();
    expect(pool.stats().destroyed).toMatchObject({ broken: 0, notIdle: 0, error: 0 });
  });

  test('a value that cannot be serialised fails the batch before a byte is written', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    const outcome = await lease.batch([
      { text: 'select 1', role: 'one' },
      { text: 'select $1::jsonb', values: [cyclic], role: 'cyclic' },
    ]);
    expect(outcome).toMatchObject({ ok: false, failed: 'unsent' });
    expect((await lease.query<{ n: number }>('select 3 as n')).rows[0]?.n).toBe(3);
    lease.release();
  });

  test("a type parser throwing on a row reports that statement's role as failed: 'rows'", async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    const types = {
      getTypeParser: () => () => {
        throw new Error('parser');
      },
    };
    const outcome = await lease.batch([
      { text: 'select 1 as n', role: 'plain' },
      { text: 'select 2 as n', types: types as never, role: 'parsed' },
    ]);
    expect(outcome).toMatchObject({ ok: false, failed: 'rows', index: 1, role: 'parsed' });
    expect(lease.client.getTransactionStatus()).toBe('I');
    lease.release();
  });

  test('named statements are parsed once per connection, then only bound; DISCARD ALL is noticed and forgotten', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    const prepare = [{ name: 'batch_ping', text: 'select $1::int + 1 as n' }];
    for (let i = 0; i < 3; i++) {
      const outcome = await lease.batch([{ text: prepare[0]?.text ?? '', values: [i], name: 'batch_ping' }], { prepare });
      expect(outcome.ok && outcome.results[0]?.rows).toEqual([{ n: i + 1 }]);
    }
    expect(await preparedOn(lease)).toEqual(['batch_ping']);
    await lease.query('discard all');
    const lost = await lease.batch([{ text: prepare[0]?.text ?? '', values: [1], name: 'batch_ping', role: 'ping' }]);
    expect(lost).toMatchObject({ ok: false, role: 'ping' });
    if (!lost.ok) expect(lost.error).toMatchObject({ sqlstate: '26000' });
    // Forgotten: the next batch parses it again.
    const again = await lease.batch([{ text: prepare[0]?.text ?? '', values: [4], name: 'batch_ping' }], { prepare });
    expect(again.ok && again.results[0]?.rows).toEqual([{ n: 5 }]);
    lease.release();
  });

  test(`beyond ${MAX_PREPARED_PER_CONNECTION} prepared statements a connection runs named ones unnamed`, async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    for (let i = 0; i < MAX_PREPARED_PER_CONNECTION + 5; i++) {
      const statement = { name: `batch_cap_${i}`, text: `select ${i} + $1::int as n` };
      const outcome = await lease.batch([{ ...statement, values: [1] }], { prepare: [statement] });
      expect(outcome.ok && outcome.results[0]?.rows).toEqual([{ n: i + 1 }]);
    }
    expect((await preparedOn(lease)).length).toBe(MAX_PREPARED_PER_CONNECTION);
    lease.release();
  });

  test('a backend terminated under a batch: ConnectionLostError, the connection destroyed', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    const outcome = lease.batch([
      { text: 'select pg_terminate_backend(pg_backend_pid())', role: 'suicide' },
      { text: 'select 1', role: 'after' },
    ]);
    const settled = await outcome;
    expect(settled).toMatchObject({ ok: false, role: 'suicide' });
    if (!settled.ok) expect(settled.error).toBeInstanceOf(ConnectionLostError);
    lease.release();
    await expect.poll(() => pool.stats().total).toBe(0);
    expect((await pool.query<{ n: number }>('select 1 as n')).rows[0]?.n).toBe(1);
  });
});

import { createTestDatabase, RoundTripCounter, type TestDatabase } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  ConfigError,
  ConnectionLostError,
  createPool,
  loadConfig,
  type Pool,
  PoolClosedError,
  type PoolConfigInput,
  SqlError,
  UniqueViolationError,
} from '../src/index.js';

// Opt-in pipelining (issue 16 §2): pool.query from different callers shares connections, written
// without waiting for earlier answers, each query with its own Sync. Proven on the wire (a relay that
// counts client bursts between server replies) and by backend pids; no timing assertions.

let db: TestDatabase;
let relay: RoundTripCounter;
const pools: Pool[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  relay = await RoundTripCounter.start(db.host, db.port);
  await db.admin('create table items (id int primary key, name text not null)');
  await db.admin("insert into items select g, 'item ' || g from generate_series(1, 10) g");
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
});
afterAll(async () => {
  relay?.close();
  await db?.drop();
});

function makePool(overrides: PoolConfigInput = {}): Pool {
  const pool = createPool({
    ...db,
    sslmode: 'disable',
    minConnections: 0,
    maxConnections: 2,
    validateAfterIdleMs: 3_600_000,
    pipelining: true,
    ...overrides,
  });
  pools.push(pool);
  return pool;
}

/** A pool of one connection through the burst-counting relay. */
function relayed(overrides: PoolConfigInput = {}): Pool {
  return makePool({ hosts: [{ host: '127.0.0.1', port: relay.port }], maxConnections: 1, ...overrides });
}

const numbers = (n: number) => Array.from({ length: n }, (_, i) => i + 1);

describe('pipelining', () => {
  test('concurrent callers share connections: fewer backends than callers, every row right', async () => {
    const pool = makePool();
    const results = await Promise.all(
      numbers(64).map((n) => pool.query<{ n: number; pid: number }>('select $1::int as n, pg_backend_pid() as pid', [n])),
    );
    expect(results.map((r) => r.rows[0]?.n)).toEqual(numbers(64));
    expect(new Set(results.map((r) => r.rows[0]?.pid)).size).toBeLessThanOrEqual(2);
  });

  test('queries are written without waiting for earlier answers (one burst on the wire, not one per query)', async () => {
    const pool = relayed();
    await pool.query('select 1'); // the pipeline holds its connection from here on
    const piped = await relay.count(() => Promise.all(numbers(20).map((n) => pool.query('select $1::int as n', [n]))));
    expect(piped).toBeLessThanOrEqual(2);

    const plain = relayed({ pipelining: false });
    await plain.query('select 1');
    const sequential = await relay.count(() => Promise.all(numbers(20).map((n) => plain.query('select $1::int as n', [n]))));
    expect(sequential).toBe(20);
  });

  test('one failing query fails alone; the others succeed in order with their own rows', async () => {
    const pool = makePool({ maxConnections: 1 });
    const calls = numbers(30).map((n) => {
      if (n % 10 === 3) return pool.query('select 1 / ($1::int - $1::int) as boom', [n]);
      if (n % 10 === 7) return pool.query('insert into items (id, name) values ($1, $2)', [1, 'dup']);
      return pool.query<{ n: number }>('select $1::int as n', [n]);
    });
    const settled = await Promise.allSettled(calls);
    settled.forEach((outcome, i) => {
      const n = i + 1;
      if (n % 10 === 3) {
        expect(outcome.status).toBe('rejected');
        const error = (outcome as PromiseRejectedResult).reason;
        expect(error).toBeInstanceOf(SqlError);
        expect((error as SqlError).sqlstate).toBe('22012');
      } else if (n % 10 === 7) {
        expect(outcome.status).toBe('rejected');
        expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(UniqueViolationError);
      } else {
        expect(outcome.status).toBe('fulfilled');
        expect((outcome as PromiseFulfilledResult<{ rows: { n: number }[] }>).value.rows).toEqual([{ n }]);
      }
    });
    expect((await pool.query<{ n: number }>('select $1::int as n', [99])).rows).toEqual([{ n: 99 }]);
  });

  test('a Parse that fails while the same statement is pipelined behind it: each caller gets the real error; the cache stays usable', async () => {
    const pool = makePool({ maxConnections: 1 });
    const bad = 'select no_such_column from items where id = $1';
    const settled = await Promise.allSettled(numbers(5).map((n) => pool.query(bad, [n])));
    for (const outcome of settled) {
      expect(outcome.status).toBe('rejected');
      expect(((outcome as PromiseRejectedResult).reason as SqlError).sqlstate).toBe('42703');
    }
    const good = await Promise.all(numbers(5).map((n) => pool.query<{ id: number }>('select id from items where id = $1', [n])));
    expect(good.map((r) => r.rows[0]?.id)).toEqual(numbers(5));
  });

  test('a lease and a transaction still get an exclusive connection while pipelining is on', async () => {
    const pool = makePool({ maxConnections: 2 });
    await pool.query('select 1');
    const lease = await pool.acquire();
    try {
      await lease.query('begin');
      await lease.query("insert into items (id, name) values (100, 'tx')");
      const results = await Promise.all(
        numbers(20).map(() =>
          pool.query<{ pid: number; seen: string }>(
            'select pg_backend_pid() as pid, (select count(*) from items where id = 100)::text as seen',
          ),
        ),
      );
      for (const r of results) {
        expect(r.rows[0]?.pid).not.toBe(lease.processId);
        expect(r.rows[0]?.seen).toBe('0');
      }
      await lease.query('rollback');
    } finally {
      lease.release();
    }
  });

  test('with one connection, an acquire takes it from the pipeline; pipelined queries wait and then run', async () => {
    const pool = makePool({ maxConnections: 1 });
    await pool.query('select 1');
    const lease = await pool.acquire({ timeoutMs: 5_000 });
    const waiting = pool.query<{ n: number }>('select $1::int as n', [7]);
    const outcome = waiting.then(
      (r) => r.rows,
      (e: unknown) => e,
    );
    await lease.query('select 1');
    lease.release();
    expect(await outcome).toEqual([{ n: 7 }]);
  });

  test('pipelined queries behind exclusive waiters on a full pool run once the connection comes back', async () => {
    const pool = makePool({ maxConnections: 1 });
    const first = await pool.acquire();
    const second = pool.acquire();
    const secondLease = second.then(
      (lease) => lease,
      (e: unknown) => e,
    );
    const queued = pool.query<{ n: number }>('select $1::int as n', [5]);
    const queuedRows = queued.then(
      (r) => r.rows,
      (e: unknown) => e,
    );
    first.release();
    const lease = await secondLease;
    expect(lease).toHaveProperty('processId');
    (lease as { release(): void }).release();
    expect(await queuedRows).toEqual([{ n: 5 }]);
  });

  test('backpressure: at most pipelineDepth in flight per connection; nothing lost, order kept', async () => {
    const pool = relayed({ pipelineDepth: 2 });
    await pool.query('select 1');
    let results: { rows: { n: number }[] }[] = [];
    const bursts = await relay.count(async () => {
      results = await Promise.all(numbers(10).map((n) => pool.query<{ n: number }>('select $1::int as n', [n])));
    });
    // Two in flight at a time: each later pair waits for an answer, so at least five writes.
    expect(bursts).toBeGreaterThanOrEqual(5);
    expect(results.map((r) => r.rows[0]?.n)).toEqual(numbers(10));
  });

  test('queued callers time out with PoolTimeoutError when no room frees in acquireTimeoutMs', async () => {
    const pool = makePool({ maxConnections: 1, pipelineDepth: 1, acquireTimeoutMs: 200 });
    await pool.query('select 1');
    const slow = pool.query('select pg_sleep(1)');
    const queued = pool.query('select 1');
    const [a, b] = await Promise.allSettled([slow, queued]);
    expect(a.status).toBe('fulfilled');
    expect(b.status).toBe('rejected');
    expect(((b as PromiseRejectedResult).reason as Error).name).toBe('PoolTimeoutError');
  });

  test('backend terminated mid-pipeline: in-flight queries fail typed, nothing unhandled, later queries succeed', async () => {
    const pool = makePool({ maxConnections: 1 });
    const { rows } = await pool.query<{ pid: number }>('select pg_backend_pid() as pid');
    const first = rows[0]?.pid;
    const calls = [
      pool.query<{ n: number }>('select $1::int as n', [1]),
      pool.query('select pg_terminate_backend(pg_backend_pid())'),
      pool.query<{ n: number }>('select $1::int as n', [3]),
      pool.query<{ n: number }>('select $1::int as n', [4]),
    ];
    const settled = await Promise.allSettled(calls);
    // The first ran before the kill, but its answer may be lost with the socket (a reset discards what
    // the client had not read yet): either its rows, or a ConnectionLostError that says it may have run.
    const head = settled[0] as PromiseSettledResult<{ rows: unknown[] }>;
    if (head.status === 'fulfilled') expect(head.value.rows).toEqual([{ n: 1 }]);
    else {
      expect(head.reason).toBeInstanceOf(ConnectionLostError);
      expect((head.reason as ConnectionLostError).retrySafe).toBe(false);
    }
    for (const outcome of settled.slice(1)) {
      expect(outcome.status).toBe('rejected');
      expect((outcome as PromiseRejectedResult).reason).toBeInstanceOf(ConnectionLostError);
    }
    const later = await Promise.all(numbers(5).map(() => pool.query<{ pid: number }>('select pg_backend_pid() as pid')));
    for (const r of later) expect(r.rows[0]?.pid).not.toBe(first);
  });

  test('close() with queries in flight: they complete, later queries get PoolClosedError', async () => {
    const pool = makePool({ maxConnections: 1 });
    await pool.query('select 1');
    const inflight = numbers(10).map((n) => pool.query<{ n: number }>('select pg_sleep(0.01), $1::int as n', [n]));
    const settled = Promise.allSettled(inflight);
    await pool.close();
    const outcomes = await settled;
    expect(outcomes.map((o) => (o.status === 'fulfilled' ? o.value.rows[0]?.n : 'failed'))).toEqual(numbers(10));
    await expect(pool.query('select 1')).rejects.toBeInstanceOf(PoolClosedError);
    expect(pool.stats().total).toBe(0);
  });
});

describe('pipelining config', () => {
  test('default off; DB_PIPELINING and DB_PIPELINE_DEPTH are read', () => {
    const off = loadConfig({});
    expect(off.pipelining).toBe(false);
    expect(off.pipelineDepth).toBe(16);
    const on = loadConfig({ DB_PIPELINING: 'true', DB_PIPELINE_DEPTH: '4' });
    expect(on.pipelining).toBe(true);
    expect(on.pipelineDepth).toBe(4);
  });

  test('bad values are a ConfigError naming each variable', () => {
    let error: unknown;
    try {
      loadConfig({ DB_PIPELINING: 'sometimes', DB_PIPELINE_DEPTH: '0' });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const variables = (error as ConfigError).problems.map((p) => p.variable);
    expect(variables).toEqual(expect.arrayContaining(['DB_PIPELINING', 'DB_PIPELINE_DEPTH']));
    expect(() => createPool({ pipelining: 'yes' as unknown as boolean, pipelineDepth: -1 })).toThrow(ConfigError);
  });
});

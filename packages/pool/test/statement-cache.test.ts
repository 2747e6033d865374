import { createTestDatabase, StatementCounter, type TestDatabase } from '@accountdb/test-db';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  createPool,
  DataExceptionError,
  loadConfig,
  type Pool,
  type PoolConfigInput,
  type PoolConnection,
  type QueryConfig,
  SqlError,
  UniqueViolationError,
} from '../src/index.js';
import { StatementCache } from '../src/statement-cache.js';

// The automatic statement cache (issue 16 §1), checked by what crosses the wire: every statement run
// (Bind or simple Query), every Parse and every Close, counted by a relay in front of the server.

let db: TestDatabase;
let counter: StatementCounter;
const pools: Pool[] = [];

beforeAll(async () => {
  db = await createTestDatabase();
  counter = await StatementCounter.start(db.host, db.port);
  await db.admin('create table items (id int primary key, name text not null)');
  await db.admin("insert into items select g, 'item ' || g from generate_series(1, 10) g");
});
afterEach(async () => {
  await Promise.all(pools.splice(0).map((p) => p.close({ force: true })));
});
afterAll(async () => {
  counter?.close();
  await db?.drop();
});

/** One connection through the counter, never re-validated, so only the statements under test cross the wire. */
function makePool(overrides: PoolConfigInput = {}): Pool {
  const pool = createPool({
    ...db,
    hosts: [{ host: '127.0.0.1', port: counter.port }],
    sslmode: 'disable',
    minConnections: 0,
    maxConnections: 1,
    validateAfterIdleMs: 3_600_000,
    ...overrides,
  });
  pools.push(pool);
  return pool;
}

/** Prepared statements on the lease's session (a simple query: it is not cached itself). */
async function preparedOn(lease: PoolConnection): Promise<string[]> {
  const { rows } = await lease.query<{ statement: string }>('select statement from pg_prepared_statements order by prepare_time');
  return rows.map((r) => r.statement);
}

const byId = 'select id, name from items where id = $1';

describe('statement cache', () => {
  test('the second run of the same SQL sends no Parse: pool.query and lease.query share the connection cache', async () => {
    const pool = makePool();
    await pool.query('select 1');
    const first = await counter.recordAll(async () => {
      expect((await pool.query(byId, [1])).rows).toEqual([{ id: 1, name: 'item 1' }]);
    });
    expect(first).toEqual({ statements: [byId], parses: [byId], closes: [] });
    const second = await counter.recordAll(async () => {
      expect((await pool.query(byId, [2])).rows).toEqual([{ id: 2, name: 'item 2' }]);
      await pool.withConnection(async (lease) => {
        expect((await lease.query({ text: byId, values: [3] })).rows).toEqual([{ id: 3, name: 'item 3' }]);
      });
    });
    expect(second).toEqual({ statements: [byId, byId], parses: [], closes: [] });
    await pool.withConnection(async (lease) => expect(await preparedOn(lease)).toEqual([byId]));
  });

  test('statements queued without awaiting are prepared once; results keep rowMode, types and command fields', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    // pg's types give rowMode to QueryArrayConfig only; the pool passes it through either way.
    const asArrays = { text: byId, values: [6], rowMode: 'array' } as QueryConfig;
    try {
      const sent = await counter.recordAll(() =>
        Promise.all([lease.query(byId, [4]), lease.query(byId, [5]), lease.query(asArrays)]),
      );
      expect(sent.parses).toEqual([byId]);
      expect(sent.statements).toHaveLength(3);
      const arrays = await lease.query(asArrays);
      expect(arrays.rows).toEqual([[6, 'item 6']]);
      expect(arrays.fields.map((f) => f.name)).toEqual(['id', 'name']);
      const typed = await lease.query({
        text: 'select $1::int as n',
        values: [7],
        types: { getTypeParser: () => (v: string) => `typed ${v}` },
      });
      expect(typed.rows).toEqual([{ n: 'typed 7' }]);
      const update = await lease.query('update items set name = name where id <= $1', [3]);
      expect(update.command).toBe('UPDATE');
      expect(update.rowCount).toBe(3);
    } finally {
      lease.release();
    }
  });

  test('the least recently used statement is Closed in the flight that evicts it', async () => {
    const pool = makePool({ statementCacheSize: 2 });
    const lease = await pool.acquire();
    try {
      const a = 'select $1::int as a';
      const b = 'select $1::int as b';
      const c = 'select $1::int as c';
      await lease.query(a, [1]);
      await lease.query(b, [1]);
      await lease.query(a, [1]); // a is now the most recently used: b goes first
      const evicting = await counter.recordAll(() => lease.query(c, [1]));
      expect(evicting.parses).toEqual([c]);
      expect(evicting.closes).toHaveLength(1);
      expect(await preparedOn(lease)).toEqual([a, c]);
      // b comes back with a Parse of its own and pushes a out.
      const again = await counter.recordAll(() => lease.query(b, [2]));
      expect(again.parses).toEqual([b]);
      expect(again.closes).toHaveLength(1);
      expect(await preparedOn(lease)).toEqual([c, b]);
    } finally {
      lease.release();
    }
  });

  test('a plan gone stale (ALTER TABLE under select *) is re-prepared once and the statement succeeds', async () => {
    await db.admin('create table stale (id int primary key, a int)');
    await db.admin('insert into stale values (1, 10)');
    const pool = makePool();
    const text = 'select * from stale where id = $1';
    expect((await pool.query(text, [1])).rows).toEqual([{ id: 1, a: 10 }]);
    await db.admin('alter table stale add column b int default 20');
    const sent = await counter.recordAll(async () => {
      expect((await pool.query(text, [1])).rows).toEqual([{ id: 1, a: 10, b: 20 }]);
    });
    // The failed Bind, then the new Parse with its Bind; the stale statement is Closed on the way.
    expect(sent.parses).toEqual([text]);
    expect(sent.statements).toEqual([text, text]);
    expect(sent.closes).toHaveLength(1);
    const after = await counter.recordAll(() => pool.query(text, [1]));
    expect(after).toEqual({ statements: [text], parses: [], closes: [] });

    // Inside a transaction block the error stands (the block is aborted); after ROLLBACK it works.
    await db.admin('alter table stale add column c int default 30');
    const lease = await pool.acquire();
    try {
      await lease.query('begin');
      await expect(lease.query(text, [1])).rejects.toBeInstanceOf(SqlError);
      await lease.query('rollback');
      expect((await lease.query(text, [1])).rows).toEqual([{ id: 1, a: 10, b: 20, c: 30 }]);
    } finally {
      lease.release();
    }
  });

  test('statementCacheSize 0 runs every statement unnamed: a Parse each time, nothing prepared', async () => {
    const pool = makePool({ statementCacheSize: 0 });
    const lease = await pool.acquire();
    try {
      const sent = await counter.recordAll(async () => {
        await lease.query(byId, [1]);
        await lease.query(byId, [2]);
      });
      expect(sent).toEqual({ statements: [byId, byId], parses: [byId, byId], closes: [] });
      expect(await preparedOn(lease)).toEqual([]);
    } finally {
      lease.release();
    }
  });

  test('statement errors keep the connection and the cache consistent with the server', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    const pid = lease.processId;
    try {
      // Parsed, then failed while planning with its value (10 / 0 is folded at Bind): it stays prepared and cached.
      const divide = 'select 10 / $1::int as q';
      await expect(lease.query(divide, [0])).rejects.toBeInstanceOf(DataExceptionError);
      const reuse = await counter.recordAll(() => lease.query(divide, [2]));
      expect(reuse.parses).toEqual([]);
      // A Parse that fails leaves nothing cached: the next run parses (and fails) again, with the same error.
      const broken = 'select nosuchcolumn from items where id = $1';
      await expect(lease.query(broken, [1])).rejects.toMatchObject({ sqlstate: '42703' });
      const again = await counter.recordAll(() => expect(lease.query(broken, [1])).rejects.toMatchObject({ sqlstate: '42703' }));
      expect(again.parses).toEqual([broken]);
      expect(again.closes).toHaveLength(1); // the name of the first failed Parse, in case the server had it
      // A write that fails while executing: still prepared, bound again next time.
      const insert = 'insert into items (id, name) values ($1, $2)';
      await expect(lease.query(insert, [1, 'duplicate'])).rejects.toBeInstanceOf(UniqueViolationError);
      const retried = await counter.recordAll(() => lease.query(insert, [100, 'new']));
      expect(retried).toEqual({ statements: [insert], parses: [], closes: [] });
      // The same inside a failed transaction block: the Bind fails (25P02), the cache keeps the statement.
      await lease.query('begin');
      await expect(lease.query(insert, [1, 'duplicate'])).rejects.toBeInstanceOf(UniqueViolationError);
      await expect(lease.query(divide, [5])).rejects.toMatchObject({ sqlstate: '25P02' });
      await lease.query('rollback');
      // What the server has prepared is exactly what is cached, and the connection is the same one.
      expect(new Set(await preparedOn(lease))).toEqual(new Set([divide, insert]));
      expect(lease.processId).toBe(pid);
    } finally {
      lease.release();
    }
    expect((await pool.query(byId, [1])).rows).toHaveLength(1);
    expect(pool.stats().total).toBe(1);
  });

  test('statements the server lost (DEALLOCATE ALL) are prepared again and the statement succeeds', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    try {
      await lease.query(byId, [1]);
      await lease.query('deallocate all');
      const sent = await counter.recordAll(async () => {
        expect((await lease.query(byId, [2])).rows).toEqual([{ id: 2, name: 'item 2' }]);
      });
      expect(sent.parses).toEqual([byId]);
      expect(await preparedOn(lease)).toEqual([byId]);
    } finally {
      lease.release();
    }
  });

  test('a connection whose server keeps losing our statements goes unnamed (a pooler before PgBouncer 1.21)', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    try {
      for (let loss = 0; loss < 2; loss++) {
        await lease.query(byId, [1]);
        await lease.query('deallocate all');
        expect((await lease.query(byId, [2])).rows).toEqual([{ id: 2, name: 'item 2' }]);
        await lease.query('deallocate all');
      }
      const sent = await counter.recordAll(async () => {
        await lease.query(byId, [3]);
        await lease.query(byId, [4]);
      });
      expect(sent).toEqual({ statements: [byId, byId], parses: [byId, byId], closes: [] });
      expect(await preparedOn(lease)).toEqual([]);
    } finally {
      lease.release();
    }
  });

  test("a destroyed connection's cache goes with it: the next connection prepares anew", async () => {
    const pool = makePool();
    const first = await pool.acquire();
    await first.query(byId, [1]);
    const firstPid = first.processId;
    first.destroy();
    const sent = await counter.recordAll(async () => {
      await pool.withConnection(async (lease) => {
        expect(lease.processId).not.toBe(firstPid);
        expect((await lease.query(byId, [1])).rows).toHaveLength(1);
      });
    });
    expect(sent.parses).toEqual([byId]);
    expect(sent.closes).toEqual([]);
  });

  test('batch statements marked cache go through the same cache; a failed batch leaves it true to the server', async () => {
    const pool = makePool();
    const lease = await pool.acquire();
    try {
      await lease.query(byId, [1]);
      const batch = () =>
        lease.batch([
          { text: 'begin', role: 'begin' },
          { text: byId, values: [2], role: 'read', cache: true },
          { text: 'select $1::int as n', values: [3], role: 'other', cache: true },
          { text: 'select $1::int as unmarked', values: [4], role: 'unmarked' },
          { text: 'commit', role: 'commit' },
        ]);
      const first = await counter.recordAll(async () => {
        const outcome = await batch();
        expect(outcome.ok && outcome.results[1]?.rows).toEqual([{ id: 2, name: 'item 2' }]);
        expect(outcome.ok && outcome.results[2]?.rows).toEqual([{ n: 3 }]);
      });
      expect(first.parses).toEqual(['begin', 'select $1::int as n', 'select $1::int as unmarked', 'commit']);
      const second = await counter.recordAll(() => batch());
      expect(second.parses).toEqual(['begin', 'select $1::int as unmarked', 'commit']);
      // Fails at its second statement (10 / 0 folded at Bind): the third is skipped, never prepared.
      const failed = await lease.batch([
        { text: byId, values: [1], role: 'read', cache: true },
        { text: 'select 10 / $1::int as q', values: [0], role: 'divide', cache: true },
        { text: 'select $1::text as t', values: ['x'], role: 'skipped', cache: true },
      ]);
      expect(!failed.ok && failed.role).toBe('divide');
      // The next flight carries the Closes of what may exist; the server has exactly what is cached.
      await lease.query(byId, [1]);
      expect(new Set(await preparedOn(lease))).toEqual(new Set([byId, 'select $1::int as n']));
      const again = await counter.recordAll(() => lease.batch([{ text: 'select $1::text as t', values: ['y'], cache: true }]));
      expect(again.parses).toEqual(['select $1::text as t']);
    } finally {
      lease.release();
    }
  });

  test('a value that cannot be serialised sends nothing and leaves the cache usable', async () => {
    const pool = makePool();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(pool.query('select $1::jsonb as j', [cyclic])).rejects.toThrow();
    const sent = await counter.recordAll(async () => {
      expect((await pool.query('select $1::jsonb as j', [{ a: 1 }])).rows).toEqual([{ j: { a: 1 } }]);
    });
    expect(sent.parses).toEqual(['select $1::jsonb as j']);
  });
});

describe('StatementCache bookkeeping', () => {
  test('least recently used goes first; dropped, evicted and cleared names are handed out for Close once', () => {
    const cache = new StatementCache(2);
    const a = cache.add('a');
    const b = cache.add('b');
    expect(a).not.toBe(b);
    expect(cache.get('a')).toBe(a); // b is now the least recently used
    expect(cache.get('a')).toBe(a);
    const c = cache.add('c');
    expect(cache.get('b')).toBeUndefined();
    expect(cache.takeClosing()).toEqual([b]);
    expect(cache.takeClosing()).toEqual([]);
    cache.drop('a', a);
    expect(cache.get('a')).toBeUndefined();
    cache.forget('c', c);
    expect(cache.size).toBe(0);
    expect(cache.takeClosing()).toEqual([a]);
    const d = cache.add('d');
    cache.requeue(['x']);
    cache.clear();
    expect(cache.takeClosing()).toEqual(['x', d]);
    expect(cache.active).toBe(true);
    cache.clear();
    expect(cache.active).toBe(false);
    // Names are unique per cache (a pooler may share a server session between two of them).
    expect(new StatementCache(1).add('a')).not.toBe(new StatementCache(1).add('a'));
  });
});

describe('statementCacheSize configuration', () => {
  test('DB_STATEMENT_CACHE_SIZE is read; default 256; bad values are reported with the rest', () => {
    expect(loadConfig({}).statementCacheSize).toBe(256);
    expect(loadConfig({ DB_STATEMENT_CACHE_SIZE: '0' }).statementCacheSize).toBe(0);
    expect(loadConfig({ DB_STATEMENT_CACHE_SIZE: '32' }).statementCacheSize).toBe(32);
    let problems: string[] = [];
    try {
      loadConfig({ DB_STATEMENT_CACHE_SIZE: 'lots', DB_MAX_CONNECTIONS: 'x' });
    } catch (err) {
      problems = (err as { problems: { variable: string }[] }).problems.map((p) => p.variable);
    }
    expect(problems).toEqual(expect.arrayContaining(['DB_STATEMENT_CACHE_SIZE', 'DB_MAX_CONNECTIONS']));
    expect(() => createPool({ statementCacheSize: -1 })).toThrow(/statementCacheSize/);
    expect(() => createPool({ prepare: false } as never)).toThrow(/statementCacheSize/);
  });
});

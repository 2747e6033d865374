import { ConfigError, type Pool } from '@accountdb/pool';
import { createTestDatabase, type TestDatabase } from '@accountdb/test-db';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  getBlockedQueries,
  getCacheHitRatios,
  getConnections,
  getDatabaseSize,
  getDatabaseStats,
  getDuplicateIndexes,
  getIndexBloat,
  getIndexUsage,
  getInvalidIndexes,
  getLongRunningQueries,
  getQueryStats,
  getReplication,
  getSequenceUsage,
  getTableBloat,
  getTableRowCounts,
  getTableSizes,
  getUnusedIndexes,
  getVacuumStats,
  getWraparound,
  StatementTimeoutError,
} from '../src/index.js';
import { poolFor, waitFor } from './helpers.js';

let db: TestDatabase;
let pool: Pool;
let pgstattuple = true;
const INT4_MAX = 2147483647;

beforeAll(async () => {
  db = await createTestDatabase();
  pool = poolFor(db, { maxConnections: 6 });
  try {
    await db.admin('create extension pgstattuple');
  } catch (err) {
    pgstattuple = false;
    console.warn(`[stats] pgstattuple is not available on this server, exact-mode tests skip: ${(err as Error).message}`);
  }
  await db.admin(`
    create table accounts (id int primary key, email text not null, name text, created_at timestamptz not null default now());
    insert into accounts (id, email, name) select g, 'user' || g || '@example.com', md5(g::text) from generate_series(1, 5000) g;
    create index accounts_email_idx on accounts (email);
    create index accounts_email_name_idx on accounts (email, name);
    create index accounts_email_copy_idx on accounts (email);
    create table dupes (v int);
    insert into dupes values (1), (1);
    create sequence orders_id_seq as bigint;
    create table orders (id int primary key default nextval('orders_id_seq'), note text);
    create index orders_note_idx on orders (note);
    create index orders_note_again_idx on orders (note);
    create table churn (id int, payload text) with (autovacuum_enabled = off);
    insert into churn select g, md5(g::text) from generate_series(1, 20000) g;
    delete from churn where id % 2 = 0;
    create table fresh (id int, payload text) with (autovacuum_enabled = off);
    insert into fresh select g, md5(g::text) from generate_series(1, 20000) g;
    create table never_analyzed (id int) with (autovacuum_enabled = off);
    insert into never_analyzed select generate_series(1, 100);
    create schema other;
    create table other.thing (id int primary key);
    create table locked (id int primary key);
    insert into locked values (1);
    create table sparse (id int primary key);
    insert into sparse select generate_series(1, 50000);
    delete from sparse where id % 20 <> 0;
    analyze accounts; analyze churn; analyze fresh; analyze dupes; analyze orders; analyze other.thing; analyze locked;`);
  // A failed CREATE INDEX CONCURRENTLY leaves an invalid index behind.
  await expect(db.admin('create unique index concurrently dupes_v_key on dupes (v)')).rejects.toThrow(
    /could not create unique index/,
  );
  await db.admin('vacuum sparse'); // empties and deletes leaf pages of its primary key
  await db.admin(`select setval('orders_id_seq', ${Math.ceil(INT4_MAX * 0.9)})`);
  await db.admin('select * from accounts where id = 1'); // the primary key is used, the email indexes are not
});
afterAll(async () => {
  await pool?.close({ force: true });
  await db?.drop();
});

describe('options', () => {
  test('bad options are a ConfigError listing every problem, before any SQL', async () => {
    let queries = 0;
    const spy = {
      query: (async () => {
        queries++;
        return { rows: [] };
      }) as never,
    };
    const err = await getTableSizes(spy, {
      includeSchemas: [],
      excludeSchemas: ['ok', 42 as never],
      bloat: 'precise' as never,
      limit: 0,
      schema: 'public',
    } as never).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.map((p) => p.variable).sort()).toEqual([
      'bloat',
      'excludeSchemas',
      'includeSchemas',
      'limit',
      'schema',
    ]);
    expect(queries).toBe(0);
  });
});

describe('sizes and rows', () => {
  test('getDatabaseSize and getTableSizes return raw bytes, largest first, system schemas excluded', async () => {
    const size = await getDatabaseSize(pool);
    expect(size.database).toBe(db.database);
    expect(size.sizeBytes).toBeGreaterThan(1_000_000);
    const sizes = await getTableSizes(pool);
    expect(sizes.map((t) => t.schema).every((s) => s === 'public' || s === 'other')).toBe(true);
    const accounts = sizes.find((t) => t.name === 'accounts')!;
    expect(accounts.totalBytes).toBe(accounts.tableBytes + accounts.indexBytes);
    const { rows } = await db.admin(`select pg_total_relation_size('accounts') as t`);
    expect(accounts.totalBytes).toBe(Number(rows[0].t));
    expect(accounts.indexBytes).toBeGreaterThan(0);
    for (let i = 1; i < sizes.length; i++) expect(sizes[i - 1]!.totalBytes).toBeGreaterThanOrEqual(sizes[i]!.totalBytes);
  });

  test("sizes: 'estimate' reads page counts from the catalog and says so", async () => {
    const exact = (await getTableSizes(pool)).find((t) => t.name === 'accounts')!;
    const estimate = (await getTableSizes(pool, { sizes: 'estimate' })).find((t) => t.name === 'accounts')!;
    expect(exact.estimated).toBe(false);
    expect(estimate.estimated).toBe(true);
    // Analyzed after loading and indexed since: heap and index page counts are current; no FSM or VM yet.
    expect(estimate.tableBytes).toBeGreaterThan(0.9 * exact.tableBytes);
    expect(estimate.tableBytes).toBeLessThanOrEqual(exact.tableBytes);
    expect(estimate.indexBytes).toBe(exact.indexBytes);
    const size = await getDatabaseSize(pool, { sizes: 'estimate' });
    expect(size.sizeBytes).toBeGreaterThan(0.5 * (await getDatabaseSize(pool)).sizeBytes);
  });

  test('include and exclude schemas; system schemas only when asked', async () => {
    expect((await getTableSizes(pool, { includeSchemas: ['other'] })).map((t) => t.name)).toEqual(['thing']);
    expect((await getTableSizes(pool, { excludeSchemas: ['public'] })).map((t) => t.name)).toEqual(['thing']);
    expect((await getTableSizes(pool, { includeSchemas: ["x'; drop table accounts; --"] })).length).toBe(0);
    const all = await getTableSizes(pool, { includeSystemSchemas: true });
    expect(all.some((t) => t.schema === 'pg_catalog' && t.name === 'pg_class')).toBe(true);
  });

  test('row counts are flagged estimated; a never-analyzed table says so; exact counts on request', async () => {
    const rows = await getTableRowCounts(pool);
    const churn = rows.find((t) => t.name === 'churn')!;
    expect(churn.estimated).toBe(true);
    expect(churn.neverAnalyzed).toBe(false);
    expect(churn.rows).toBeGreaterThan(9000);
    expect(churn.rows).toBeLessThan(11000);
    const never = rows.find((t) => t.name === 'never_analyzed')!;
    expect(never.neverAnalyzed).toBe(true);
    expect(never.note).toMatch(/never analyzed|not analyzed/);
    const exact = await getTableRowCounts(pool, { exactRowCounts: true });
    expect(exact.find((t) => t.name === 'churn')).toMatchObject({ rows: 10000, estimated: false });
    expect(exact.find((t) => t.name === 'never_analyzed')).toMatchObject({ rows: 100, estimated: false });
  });

  test('exact counts past their timeout are a StatementTimeoutError, and a lease in a transaction keeps its own timeout', async () => {
    // A table locked by another session cannot be counted: the server-side timeout ends the wait.
    const holder = await pool.acquire();
    try {
      await holder.query('begin');
      await holder.query('lock table locked in access exclusive mode');
      const err = await getTableRowCounts(pool, { exactRowCounts: true, exactRowCountTimeoutMs: 200 }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(StatementTimeoutError);
      expect(err).toMatchObject({ code: 'STATEMENT_TIMEOUT', sqlstate: '57014' });
    } finally {
      await holder.query('rollback');
      holder.release();
    }
    const lease = await pool.acquire();
    try {
      await lease.query('begin');
      await lease.query("set local statement_timeout = '123s'");
      await expect(getTableRowCounts(lease, { exactRowCounts: true, includeSchemas: ['other'] })).resolves.toEqual([
        expect.objectContaining({ name: 'thing', rows: 0, estimated: false }),
      ]);
      expect((await lease.query('show statement_timeout')).rows[0]!.statement_timeout).toBe('123s');
      await lease.query('commit');
    } finally {
      lease.release();
    }
  });
});

describe('indexes', () => {
  test('unused, duplicate and invalid indexes', async () => {
    const unusedRows = await getUnusedIndexes(pool);
    const unused = unusedRows.map((i) => i.name);
    expect(unused).toEqual(expect.arrayContaining(['accounts_email_idx', 'accounts_email_name_idx', 'accounts_email_copy_idx']));
    expect(unused).not.toContain('accounts_pkey');
    // Backends report their counters a little later: wait until the primary key's scan arrives.
    let usage = await getIndexUsage(pool);
    await waitFor(async () => {
      usage = await getIndexUsage(pool);
      return usage.find((i) => i.name === 'accounts_pkey')!.scans > 0;
    });
    expect(usage[0]!.statsReset === null || usage[0]!.statsReset instanceof Date).toBe(true);

    const dupes = await getDuplicateIndexes(pool);
    const byName = Object.fromEntries(dupes.map((d) => [d.name, d]));
    // Two identical indexes, both a prefix of (email, name): each is reported, covered by the wider one.
    expect(dupes.filter((d) => d.table === 'accounts')).toHaveLength(2);
    expect(byName.accounts_email_copy_idx).toMatchObject({ coveredBy: 'accounts_email_name_idx', relation: 'prefix' });
    expect(byName.accounts_email_idx).toMatchObject({ coveredBy: 'accounts_email_name_idx', relation: 'prefix' });
    expect(byName.accounts_pkey).toBeUndefined();
    // Two identical indexes and nothing wider: exactly one of the pair is reported.
    const orders = dupes.filter((d) => d.table === 'orders');
    expect(orders).toHaveLength(1);
    expect(orders[0]).toMatchObject({ relation: 'same columns' });
    expect([orders[0]!.name, orders[0]!.coveredBy].sort()).toEqual(['orders_note_again_idx', 'orders_note_idx']);

    const invalid = await getInvalidIndexes(pool);
    expect(invalid).toEqual([expect.objectContaining({ table: 'dupes', name: 'dupes_v_key', building: false })]);
    expect(invalid[0]!.definition).toMatch(/CREATE UNIQUE INDEX dupes_v_key ON public.dupes USING btree \(v\)/);
    expect(byName.accounts_email_idx!.definition).toMatch(/^CREATE INDEX accounts_email_idx/);
    expect(byName.accounts_email_idx!.coveredByDefinition).toMatch(/\(email, name\)/);
  });

  test('cache hit ratios of tables and indexes, with stats_reset', async () => {
    const ratios = await getCacheHitRatios(pool);
    expect(ratios.tableBlocksHit + ratios.tableBlocksRead).toBeGreaterThan(0);
    expect(ratios.tables).toBeGreaterThanOrEqual(0);
    expect(ratios.tables).toBeLessThanOrEqual(1);
    expect(ratios).toHaveProperty('statsReset');
  });
});

describe('bloat', () => {
  async function pgstattupleFraction(table: string): Promise<number> {
    const { rows } = await db.admin(
      `select (dead_tuple_len + free_space)::float8 / table_len as f, table_len, dead_tuple_len, free_space from pgstattuple($1::regclass)`,
      [table],
    );
    return rows[0].f;
  }

  test('the estimate lies within 15 points of pgstattuple on a half-deleted and a freshly loaded table', async (t) => {
    if (!pgstattuple) t.skip('pgstattuple is not available on this server');
    const bloat = await getTableBloat(pool);
    for (const table of ['churn', 'fresh']) {
      const row = bloat.find((b) => b.table === table)!;
      expect(row.method).toBe('estimate');
      const truth = await pgstattupleFraction(table);
      console.info(`[stats] bloat of ${table}: estimate ${row.wastedFraction!.toFixed(3)}, pgstattuple ${truth.toFixed(3)}`);
      expect(Math.abs(row.wastedFraction! - truth)).toBeLessThanOrEqual(0.15);
    }
    expect(bloat.find((b) => b.table === 'churn')!.wastedFraction).toBeGreaterThan(0.35);
    expect(bloat.find((b) => b.table === 'never_analyzed')).toMatchObject({
      wastedBytes: null,
      note: expect.stringMatching(/never analyzed/),
    });
  });

  test('exact mode matches pgstattuple', async (t) => {
    if (!pgstattuple) t.skip('pgstattuple is not available on this server');
    const exact = await getTableBloat(pool, { bloat: 'exact' });
    for (const table of ['churn', 'fresh']) {
      const row = exact.find((b) => b.table === table)!;
      expect(row.method).toBe('pgstattuple');
      expect(row.wastedFraction).toBeCloseTo(await pgstattupleFraction(table), 10);
    }
  });

  test('exact mode without pgstattuple falls back to the estimate and says why', async () => {
    const other = await createTestDatabase();
    const p = poolFor(other);
    try {
      await other.admin('create table t (id int); insert into t select generate_series(1, 1000); analyze t');
      const [row] = await getTableBloat(p, { bloat: 'exact' });
      expect(row).toMatchObject({
        table: 't',
        method: 'estimate',
        note: expect.stringMatching(/pgstattuple extension is not installed/),
      });
    } finally {
      await p.close({ force: true });
      await other.drop();
    }
  });

  test('exact index bloat matches pgstatindex: free leaf space beyond the fillfactor, plus empty and deleted pages', async (t) => {
    if (!pgstattuple) t.skip('pgstattuple is not available on this server');
    const exact = await getIndexBloat(pool, { bloat: 'exact' });
    const row = exact.find((b) => b.index === 'sparse_pkey')!;
    const { rows } = await db.admin(
      `select index_size, leaf_pages, empty_pages, deleted_pages, avg_leaf_density, current_setting('block_size')::int as bs
       from pgstatindex('sparse_pkey')`,
    );
    const p = rows[0];
    const leafFree = Math.max((Number(p.leaf_pages) * p.bs * (90 - p.avg_leaf_density)) / 100, 0);
    expect(row).toMatchObject({ table: 'sparse', method: 'pgstattuple', sizeBytes: Number(p.index_size), note: null });
    expect(row.wastedBytes).toBeCloseTo((Number(p.empty_pages) + Number(p.deleted_pages)) * p.bs + leafFree, 3);
    console.info(`[stats] sparse_pkey: exact ${row.wastedFraction!.toFixed(3)}, leaf density ${p.avg_leaf_density}%`);
    expect(row.wastedFraction).toBeGreaterThan(0.5);
    // An invalid index is left out: pgstatindex cannot read it.
    expect(exact.some((b) => b.index === 'dupes_v_key')).toBe(false);
    expect(exact.find((b) => b.index === 'accounts_pkey')!.method).toBe('pgstattuple');
  });

  test('btree index bloat estimates', async () => {
    const bloat = await getIndexBloat(pool);
    const pkey = bloat.find((b) => b.index === 'accounts_pkey')!;
    expect(pkey).toMatchObject({ table: 'accounts', method: 'estimate' });
    expect(pkey.sizeBytes).toBeGreaterThan(0);
    expect(pkey.wastedFraction).toBeGreaterThanOrEqual(0);
    expect(pkey.wastedFraction).toBeLessThan(1);
  });
});

describe('vacuum, wraparound, sequences', () => {
  test('vacuum stats: dead tuples, autovacuum off for the table, due by its own formula', async () => {
    const vacuum = await getVacuumStats(pool);
    const churn = vacuum.find((v) => v.name === 'churn')!;
    expect(churn.deadTuples).toBe(10000);
    expect(churn.autovacuumEnabled).toBe(false);
    expect(churn.vacuumDue).toBe(true);
    expect(churn.lastVacuum).toBeNull();
    expect(churn.lastAnalyze).toBeInstanceOf(Date);
    expect(vacuum.find((v) => v.name === 'accounts')!.autovacuumEnabled).toBe(true);
  });

  test('wraparound: ages per database and the oldest tables', async () => {
    const w = await getWraparound(pool, { limit: 3 });
    expect(w.databases.map((d) => d.database)).toContain(db.database);
    expect(w.databases[0]!.xidAge).toBeGreaterThan(0);
    expect(w.oldestTables).toHaveLength(3);
    expect(w.freezeMaxAge).toBe(200_000_000);
  });

  test('a bigint sequence feeding an int4 column at 90% counts against int4', async () => {
    const seqs = await getSequenceUsage(pool);
    const orders = seqs.find((s) => s.name === 'orders_id_seq')!;
    expect(orders).toMatchObject({
      sequenceType: 'bigint',
      column: { schema: 'public', table: 'orders', name: 'id', type: 'integer' },
      maxValue: INT4_MAX,
    });
    expect(orders.usedFraction).toBeCloseTo(0.9, 3);
    expect(seqs[0]!.name).toBe('orders_id_seq');
  });
});

describe('activity', () => {
  test('a blocked session appears under the session holding the lock; a long transaction is listed', async () => {
    const holder = await pool.acquire();
    const waiter = await pool.acquire();
    try {
      await holder.query('begin');
      await holder.query('update locked set id = 1 where id = 1');
      await waiter.query('begin');
      // Handled at once: it settles only after the holder rolls back.
      const blocked = waiter.query('update locked set id = 1 where id = 1').then(
        () => 'done',
        (e: Error) => e.message,
      );
      await waitFor(async () => {
        const { rows } = await db.admin(`select wait_event_type from pg_stat_activity where pid = $1`, [waiter.processId]);
        return rows[0]?.wait_event_type === 'Lock';
      });
      const tree = await getBlockedQueries(pool);
      const root = tree.find((n) => n.pid === holder.processId)!;
      expect(root.session).toMatchObject({ state: 'idle in transaction', blockedBy: [] });
      expect(root.blocking.map((n) => n.pid)).toEqual([waiter.processId]);
      expect(root.blocking[0]!.session).toMatchObject({ state: 'active', blockedBy: [holder.processId] });

      const long = await getLongRunningQueries(pool, { longRunningMs: 0 });
      expect(long.map((s) => s.pid)).toEqual(expect.arrayContaining([holder.processId, waiter.processId]));
      expect(long.find((s) => s.pid === holder.processId)!.query).toMatch(/update locked/);

      const connections = await getConnections(pool);
      expect(connections.byState['idle in transaction']).toBeGreaterThanOrEqual(1);
      expect(connections.byUser[db.user]).toBeGreaterThanOrEqual(2);
      expect(connections.max).toBeGreaterThan(0);

      await holder.query('rollback');
      expect(await blocked).toBe('done');
      await waiter.query('rollback');
    } finally {
      holder.release();
      waiter.release();
    }
    expect(await getBlockedQueries(pool)).toEqual([]);
  });

  test('replication on a primary without standbys', async () => {
    const r = await getReplication(pool);
    expect(r).toMatchObject({ inRecovery: false, replayDelayMs: null, standbys: [], slots: [] });
  });

  test('query stats say clearly when pg_stat_statements is not installed', async () => {
    const q = await getQueryStats(pool);
    expect(q).toEqual({ available: false, reason: expect.stringMatching(/pg_stat_statements extension is not installed/) });
  });
});

describe('getDatabaseStats', () => {
  test('everything in one call, also inside a lease that is already in a transaction', async () => {
    const stats = await getDatabaseStats(pool);
    expect(stats.size.sizeBytes).toBeGreaterThan(0);
    expect(stats.invalidIndexes.map((i) => i.name)).toEqual(['dupes_v_key']);
    expect(stats.sequences[0]!.name).toBe('orders_id_seq');
    expect(stats.checkpoints.timed).toBeGreaterThanOrEqual(0);
    expect(stats.queryStats.available).toBe(false);
    const lease = await pool.acquire();
    try {
      await lease.query('begin');
      const inside = await getDatabaseStats(lease, { includeSchemas: ['other'] });
      expect(inside.tableSizes.map((t) => t.name)).toEqual(['thing']);
      expect(lease.client.getTransactionStatus()).toBe('T');
      await lease.query('commit');
    } finally {
      lease.release();
    }
  });

  test('as a pg_monitor role without superuser: what it may not see is null with a reason', async () => {
    const monitor = await db.createRestrictedRole();
    await db.admin(`grant pg_monitor to "${monitor.user}"`);
    const p = poolFor(monitor);
    try {
      const stats = await getDatabaseStats(p);
      expect(stats.server.readAllStats).toBe(true);
      expect(stats.tableSizes.find((t) => t.name === 'accounts')!.totalBytes).toBeGreaterThan(0);
      const seq = stats.sequences.find((s) => s.name === 'orders_id_seq')!;
      expect(seq).toMatchObject({ lastValue: null, usedFraction: null, note: expect.stringMatching(/privilege/) });
      const bloat = stats.tableBloat.find((b) => b.table === 'churn')!;
      expect(bloat).toMatchObject({ wastedBytes: null, note: expect.stringMatching(/not visible|never analyzed/) });
      if (pgstattuple) {
        const exact = await getTableBloat(p, { bloat: 'exact', includeSchemas: ['public'] });
        expect(exact.find((b) => b.table === 'churn')!.method).toBe('pgstattuple');
      }
    } finally {
      await p.close({ force: true });
    }
    // A role with neither pg_monitor nor superuser: other roles' sessions are listed without their queries.
    const plain = await db.createRestrictedRole();
    const q = poolFor(plain);
    const holder = await pool.acquire();
    try {
      await holder.query('select 1');
      const sessions = await getLongRunningQueries(q, { longRunningMs: 0 });
      const conn = await getConnections(q);
      expect(conn.total).toBeGreaterThanOrEqual(2);
      expect(await getBlockedQueries(q)).toEqual([]);
      expect(sessions.every((s) => s.query === null || s.user === plain.user)).toBe(true);
      const stats = await getDatabaseStats(q);
      expect(stats.server.readAllStats).toBe(false);
      expect(stats.connections.byState['(not visible)']).toBeGreaterThanOrEqual(1);
    } finally {
      holder.release();
      await q.close({ force: true });
    }
  });
});

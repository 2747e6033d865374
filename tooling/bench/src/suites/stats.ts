/**
 * @accountdb/stats, per issue 13's benchmark section: `getDatabaseStats` on a schema of 10,000
 * tables (each with a primary key and one more index; 1,000 with BENCH_QUICK) and on one of 10
 * tables — statements issued and time — beside the seed's per-table approach (list the tables, then
 * per table its sizes, a row count and its index usage) on the same tables in the same run.
 * Bar: ours ≥ 50× faster than the per-table approach at the large size, and the same statement count
 * at both sizes. Statements are counted by a wrapper around the one leased connection each side uses.
 */
import { createPool, type PoolConnection, type Queryable } from '@accountdb/pool';
import { getDatabaseStats } from '@accountdb/stats';
import type { BenchContext } from '../main.js';

const SPEED_BAR = 50;
const RUNS = 3;

/** The lease, with every `query` counted; `client` passes through so the transaction state is seen. */
function counting(lease: PoolConnection): { source: Queryable & { client: PoolConnection['client'] }; count: () => number } {
  let n = 0;
  const source = {
    client: lease.client,
    query: ((text: never, values?: unknown[]) => {
      n++;
      return lease.query(text, values);
    }) as Queryable['query'],
  };
  return { source, count: () => n };
}

/** The seed's way: one query to list tables, then three per table. */
async function perTable(q: Queryable, schema: string): Promise<number> {
  const { rows } = await q.query<{ name: string; oid: number }>(
    `select c.relname as name, c.oid::int8 as oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and c.relkind = 'r'`,
    [schema],
  );
  for (const t of rows) {
    await q.query('select pg_total_relation_size($1) as total, pg_relation_size($1) as heap, pg_indexes_size($1) as idx', [
      t.oid,
    ]);
    await q.query('select reltuples from pg_class where oid = $1', [t.oid]);
    await q.query('select indexrelname, idx_scan from pg_stat_user_indexes where relid = $1', [t.oid]);
  }
  return rows.length;
}

/** Drop in batches too: one DROP SCHEMA CASCADE of 10,000 tables runs out of lock slots. */
async function dropTables(ctx: BenchContext, schema: string): Promise<void> {
  for (;;) {
    const { rows } = await ctx.admin(
      `select count(*)::int as n from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = $1 and c.relkind = 'r'`,
      [schema],
    );
    if (!rows[0]?.n) break;
    await ctx.admin(`do $$ declare t text; begin
      for t in select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = '${schema}' and c.relkind = 'r' limit 500 loop
        execute format('drop table ${schema}.%I', t);
      end loop; end $$`);
  }
  await ctx.admin(`drop schema if exists ${schema} cascade`);
}

async function createTables(ctx: BenchContext, schema: string, count: number): Promise<void> {
  await dropTables(ctx, schema);
  await ctx.admin(`create schema ${schema}`);
  // Batches keep each transaction's locks within max_locks_per_transaction.
  for (let from = 1; from <= count; from += 500) {
    await ctx.admin(`do $$ begin for i in ${from}..${Math.min(count, from + 499)} loop
      execute format('create table ${schema}.t_%s (id int primary key, name text)', i);
      execute format('create index on ${schema}.t_%s (name)', i);
    end loop; end $$`);
  }
  await ctx.admin(`analyze`);
}

async function median<T>(fn: () => Promise<T>): Promise<{ ms: number; result: T }> {
  const times: number[] = [];
  let result: T | undefined;
  for (let i = 0; i < RUNS; i++) {
    const started = performance.now();
    result = await fn();
    times.push(performance.now() - started);
  }
  times.sort((a, b) => a - b);
  return { ms: times[Math.floor(times.length / 2)]!, result: result as T };
}

export default async function run(ctx: BenchContext): Promise<void> {
  const large = ctx.settings.quick ? 1_000 : 10_000;
  const pool = createPool({ ...ctx.config, sslmode: 'disable', minConnections: 0, maxConnections: 2 });
  const sizes = [
    { schema: 'stats_bench_small', tables: 10 },
    { schema: 'stats_bench_large', tables: large },
  ];
  try {
    ctx.print(`creating ${sizes.map((s) => s.tables).join(' + ')} tables (each with a primary key and one index)...`);
    for (const s of sizes) await createTables(ctx, s.schema, s.tables);
    const rows: (string | number)[][] = [];
    const counts: number[] = [];
    let largeRatio = 0;
    for (const s of sizes) {
      const lease = await pool.acquire();
      try {
        const ours = counting(lease);
        const oursRun = await median(() => getDatabaseStats(ours.source, { includeSchemas: [s.schema] }));
        const oursStatements = ours.count() / RUNS;
        const seed = counting(lease);
        const seedRun = await median(() => perTable(seed.source, s.schema));
        const seedStatements = seed.count() / RUNS;
        if (oursRun.result.tableSizes.length !== s.tables || seedRun.result !== s.tables)
          throw new Error(`expected ${s.tables} tables, saw ${oursRun.result.tableSizes.length} and ${seedRun.result}`);
        counts.push(oursStatements);
        const ratio = seedRun.ms / oursRun.ms;
        if (s.tables === large) largeRatio = ratio;
        rows.push([s.tables, 'getDatabaseStats', oursStatements, oursRun.ms.toFixed(0), '']);
        const note = ratio >= 1 ? `ours ${ratio.toFixed(1)}x faster` : `ours ${(1 / ratio).toFixed(1)}x slower`;
        rows.push([s.tables, 'seed per-table', seedStatements, seedRun.ms.toFixed(0), note]);
      } finally {
        lease.release();
      }
    }
    ctx.print(`stats: getDatabaseStats against the seed's per-table queries — median of ${RUNS} runs, one connection each`);
    ctx.printTable(['tables', 'approach', 'statements', 'ms (median)', 'note'], rows);
    const sameCount = counts.every((c) => c === counts[0]);
    ctx.print(
      `statement count ${sameCount ? 'is the same' : 'DIFFERS'} at ${sizes.map((s) => s.tables).join(' and ')} tables; ` +
        `speed-up at ${large} tables: ${largeRatio.toFixed(1)}x (bar ${SPEED_BAR}x${largeRatio >= SPEED_BAR ? '' : ' — BELOW'})`,
    );
    ctx.print();
    if (!sameCount) throw new Error('getDatabaseStats issued a different number of statements for more tables');
  } finally {
    await pool.close();
    for (const s of sizes) await dropTables(ctx, s.schema);
  }
}

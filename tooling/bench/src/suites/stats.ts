/**
 * @accountdb/stats, per issue 13's benchmark section: `getDatabaseStats` on a schema of 10,000
 * tables (each with a primary key, one more index and 10 analyzed rows, so the bloat estimates have
 * column statistics; 1,000 tables with BENCH_QUICK) and on one of 10 tables — statements issued and
 * time — beside the seed's approach on the same tables in the same run: its database size, then one
 * query listing the tables and one per table (N+1) for that table's sizes, row estimate and index
 * usage. Ours runs twice: with exact sizes (the default: every relation's files are stat'ed) and
 * with `sizes: 'estimate'` (page counts from the catalog). The contenders alternate in each run.
 * Bar: ours ≥ 50× faster than the seed's at the large size (printed, not enforced), and the same
 * statement count at both sizes (a suite failure otherwise). Statements are counted by a wrapper
 * around the one leased connection every contender uses.
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

/** The seed's way: the database size, a query listing the tables, then one query per table. */
async function perTable(q: Queryable, schema: string): Promise<number> {
  await q.query('select pg_database_size(current_database()) as size_bytes');
  const { rows } = await q.query<{ name: string; oid: number }>(
    `select c.relname as name, c.oid::int8 as oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname = $1 and c.relkind = 'r'`,
    [schema],
  );
  for (const t of rows) {
    await q.query(
      `select pg_total_relation_size(c.oid) as total, pg_relation_size(c.oid) as heap, pg_indexes_size(c.oid) as idx, c.reltuples,
         (select json_agg(json_build_object('index', s.indexrelname, 'scans', s.idx_scan)) from pg_stat_user_indexes s
          where s.relid = c.oid) as indexes
       from pg_class c where c.oid = $1`,
      [t.oid],
    );
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
      execute format('insert into ${schema}.t_%s select g, md5(g::text) from generate_series(1, 10) g', i);
    end loop; end $$`);
  }
  await ctx.admin(`analyze`);
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export default async function run(ctx: BenchContext): Promise<void> {
  const large = ctx.settings.quick ? 1_000 : 10_000;
  const pool = createPool({ ...ctx.config, sslmode: 'disable', minConnections: 0, maxConnections: 2 });
  const sizes = [
    { schema: 'stats_bench_small', tables: 10 },
    { schema: 'stats_bench_large', tables: large },
  ];
  try {
    ctx.print(`creating ${sizes.map((s) => s.tables).join(' + ')} tables (each with a primary key, one index and 10 rows)...`);
    for (const s of sizes) await createTables(ctx, s.schema, s.tables);
    const rows: (string | number)[][] = [];
    const counts: number[] = [];
    const largeRatios: string[] = [];
    for (const s of sizes) {
      const lease = await pool.acquire();
      try {
        const contenders = [
          { name: 'getDatabaseStats', run: (q: Queryable) => getDatabaseStats(q, { includeSchemas: [s.schema] }) },
          {
            name: "getDatabaseStats, sizes: 'estimate'",
            run: (q: Queryable) => getDatabaseStats(q, { includeSchemas: [s.schema], sizes: 'estimate' }),
          },
          { name: 'seed: one query per table', run: (q: Queryable) => perTable(q, s.schema) },
        ].map((c) => ({ ...c, ms: [] as number[], statements: 0 }));
        // Alternate the order run by run so drifts (autovacuum, other processes) land on every contender.
        for (let r = 0; r < RUNS; r++) {
          for (const c of r % 2 === 0 ? contenders : [...contenders].reverse()) {
            const counted = counting(lease);
            const started = performance.now();
            const result = await c.run(counted.source);
            c.ms.push(performance.now() - started);
            c.statements = counted.count();
            const tables = typeof result === 'number' ? result : result.tableSizes.length;
            if (tables !== s.tables) throw new Error(`${c.name}: expected ${s.tables} tables, saw ${tables}`);
          }
        }
        const seedMs = median(contenders[2]!.ms);
        for (const c of contenders) {
          const ratio = seedMs / median(c.ms);
          const note =
            c === contenders[2] ? 'baseline' : ratio >= 1 ? `${ratio.toFixed(1)}x faster` : `${(1 / ratio).toFixed(1)}x slower`;
          rows.push([s.tables, c.name, c.statements, c.ms.map((ms) => ms.toFixed(0)).join(' / '), median(c.ms).toFixed(0), note]);
          if (s.tables === large && c !== contenders[2]) largeRatios.push(`${c.name} ${ratio.toFixed(1)}x`);
        }
        counts.push(contenders[0]!.statements, contenders[1]!.statements);
      } finally {
        lease.release();
      }
    }
    ctx.print(`stats: getDatabaseStats against the seed's per-table queries — ${RUNS} runs each, alternating, one connection`);
    ctx.printTable(['tables', 'approach', 'statements', 'ms per run', 'ms (median)', 'against the seed'], rows);
    const sameCount = counts.every((c) => c === counts[0]);
    ctx.print(
      `statement count ${sameCount ? 'is the same' : 'DIFFERS'} at ${sizes.map((s) => s.tables).join(' and ')} tables; ` +
        `speed-up at ${large} tables: ${largeRatios.join(', ')} (bar ${SPEED_BAR}x)`,
    );
    ctx.print();
    if (!sameCount) throw new Error('getDatabaseStats issued a different number of statements for more tables');
  } finally {
    await pool.close();
    for (const s of sizes) await dropTables(ctx, s.schema);
  }
}

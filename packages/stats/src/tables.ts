import { type SqlError, StatementTimeoutError } from '@accountdb/pool';
import { BLOCK, num, runStats, SCHEMA_FILTER, type StatsContext, type StatsSource, schemaParams } from './context.js';
import type { IndexFacts } from './indexes.js';
import type { StatsOptions } from './options.js';

/** One table (or materialized view) as the catalog and the statistics collector describe it. */
export interface TableFacts {
  readonly schema: string;
  readonly name: string;
  readonly kind: 'table' | 'materialized view';
  /** tableBytes + indexBytes (`pg_total_relation_size`). */
  readonly totalBytes: number;
  /** Heap with its TOAST, free space and visibility maps (`pg_table_size`). */
  readonly tableBytes: number;
  /** All its indexes (`pg_indexes_size`). */
  readonly indexBytes: number;
  /** `pg_class.reltuples`; null when the server has never measured the table. */
  readonly reltuples: number | null;
  readonly liveTuples: number;
  readonly deadTuples: number;
  readonly modifiedSinceAnalyze: number;
  readonly insertedSinceVacuum: number;
  readonly heapBlocksRead: number;
  readonly heapBlocksHit: number;
  readonly lastVacuum: Date | null;
  readonly lastAutovacuum: Date | null;
  readonly lastAnalyze: Date | null;
  readonly lastAutoanalyze: Date | null;
  readonly xidAge: number;
  readonly mxidAge: number;
  /** Storage parameters (`autovacuum_enabled=off`, `fillfactor=70`, ...) by name. */
  readonly reloptions: Readonly<Record<string, string>>;
}

/**
 * Every table's facts. Given the indexes' facts, `indexBytes` sums their sizes instead of reading
 * every index again.
 */
export async function fetchTables(ctx: StatsContext, indexes?: readonly IndexFacts[]): Promise<TableFacts[]> {
  const ins = ctx.server.versionNum >= 130000 ? 'pg_stat_get_ins_since_vacuum(c.oid)' : '0';
  // 14+: reltuples -1 means never vacuumed or analyzed. 13: 0 with no pages and no analyze means the same.
  const unmeasured =
    ctx.server.versionNum >= 140000
      ? 'c.reltuples < 0'
      : 'c.reltuples = 0 and c.relpages = 0 and pg_stat_get_last_analyze_time(c.oid) is null and pg_stat_get_last_autoanalyze_time(c.oid) is null';
  // The pg_stat_get_* functions by oid, not the pg_stat_all_tables views: the views also aggregate
  // every index and TOAST table, which costs a third of the time over thousands of tables. Exact
  // sizes: pg_table_size (heap, TOAST, FSM, VM) and pg_indexes_size open each relation.
  const exact = ctx.options.sizes === 'exact';
  const indexBytes = indexes
    ? '0'
    : exact
      ? 'pg_indexes_size(c.oid)'
      : `(select coalesce(sum(ci.relpages), 0) * ${BLOCK} from pg_index i join pg_class ci on ci.oid = i.indexrelid where i.indrelid = c.oid)`;
  const { rows } = await ctx.q.query(
    `select n.nspname as schema, c.relname as name, case c.relkind when 'm' then 'materialized view' else 'table' end as kind,
       ${exact ? 'pg_table_size(c.oid)' : `(c.relpages + coalesce(t.relpages, 0)) * ${BLOCK}`}::float8 as "tableBytes",
       ${indexBytes}::float8 as "indexBytes",
       case when ${unmeasured} then null else c.reltuples::float8 end as reltuples,
       pg_stat_get_live_tuples(c.oid)::float8 as "liveTuples", pg_stat_get_dead_tuples(c.oid)::float8 as "deadTuples",
       pg_stat_get_mod_since_analyze(c.oid)::float8 as "modifiedSinceAnalyze", ${ins}::float8 as "insertedSinceVacuum",
       pg_stat_get_blocks_hit(c.oid)::float8 as "heapBlocksHit",
       (pg_stat_get_blocks_fetched(c.oid) - pg_stat_get_blocks_hit(c.oid))::float8 as "heapBlocksRead",
       pg_stat_get_last_vacuum_time(c.oid) as "lastVacuum", pg_stat_get_last_autovacuum_time(c.oid) as "lastAutovacuum",
       pg_stat_get_last_analyze_time(c.oid) as "lastAnalyze", pg_stat_get_last_autoanalyze_time(c.oid) as "lastAutoanalyze",
       greatest(age(c.relfrozenxid), age(t.relfrozenxid)) as "xidAge",
       greatest(mxid_age(c.relminmxid), mxid_age(t.relminmxid)) as "mxidAge", c.reloptions
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
       left join pg_class t on t.oid = c.reltoastrelid
     where c.relkind in ('r', 'm') and ${SCHEMA_FILTER}
     order by n.nspname, c.relname`,
    schemaParams(ctx.options),
  );
  const sums = new Map<string, number>();
  for (const i of indexes ?? []) sums.set(`${i.schema}\0${i.table}`, (sums.get(`${i.schema}\0${i.table}`) ?? 0) + i.sizeBytes);
  for (const r of rows) {
    if (indexes) r.indexBytes = sums.get(`${r.schema}\0${r.name}`) ?? 0;
    r.totalBytes = r.tableBytes + r.indexBytes;
    r.reloptions = Object.fromEntries(((r.reloptions as string[] | null) ?? []).map((o) => o.split(/=(.*)/s).slice(0, 2)));
  }
  return rows as TableFacts[];
}

/** Sizes of one table, in bytes: `totalBytes` = `tableBytes` (heap and TOAST) + `indexBytes`. */
export type TableSize = Pick<TableFacts, 'schema' | 'name' | 'kind' | 'totalBytes' | 'tableBytes' | 'indexBytes'> & {
  /** True for page counts from the catalog (`sizes: 'estimate'`), false for the files' sizes. */
  readonly estimated: boolean;
};

export function toTableSizes(tables: readonly TableFacts[], ctx: StatsContext): TableSize[] {
  const estimated = ctx.options.sizes === 'estimate';
  return tables
    .map(({ schema, name, kind, totalBytes, tableBytes, indexBytes }) => ({
      schema,
      name,
      kind,
      totalBytes,
      tableBytes,
      indexBytes,
      estimated,
    }))
    .sort((a, b) => b.totalBytes - a.totalBytes);
}

/** Row count of one table. */
export interface TableRowCount {
  readonly schema: string;
  readonly name: string;
  /** Rows; null when unknown (see `note`). */
  readonly rows: number | null;
  /** True for the catalog's estimate (`reltuples`), false for a `count(*)`. */
  readonly estimated: boolean;
  /** Never analyzed (neither ANALYZE nor autoanalyze has run since the statistics were last reset). */
  readonly neverAnalyzed: boolean;
  /** Why `rows` is null, or a caveat. */
  readonly note: string | null;
}

export function toRowCounts(tables: readonly TableFacts[]): TableRowCount[] {
  return tables.map((t) => {
    const neverAnalyzed = !t.lastAnalyze && !t.lastAutoanalyze;
    return {
      schema: t.schema,
      name: t.name,
      rows: t.reltuples === null ? null : Math.round(t.reltuples),
      estimated: true,
      neverAnalyzed,
      note:
        t.reltuples === null
          ? 'never analyzed or vacuumed: the catalog has no row estimate (run ANALYZE, or ask for exactRowCounts)'
          : neverAnalyzed
            ? 'not analyzed since the statistics were reset: estimate from VACUUM or CREATE INDEX'
            : null,
    };
  });
}

/**
 * `count(*)` of every table in one statement, bounded by a server-side statement timeout. Each
 * statement is built by the server (`format('%I.%I', ...)` over catalog names), never from input.
 */
async function exactRowCounts(ctx: StatsContext): Promise<TableRowCount[]> {
  const timeout = ctx.options.exactRowCountTimeoutMs;
  const sql = `select n.nspname as schema, c.relname as name, c.relkind,
      case when has_table_privilege(c.oid, 'select') then (xpath('/row/n/text()', query_to_xml(
        format('select count(*) as n from %I.%I', n.nspname, c.relname), false, true, '')))[1]::text::int8 end as rows
    from pg_class c join pg_namespace n on n.oid = c.relnamespace
    where c.relkind in ('r', 'm') and c.relispopulated and ${SCHEMA_FILTER}
    order by n.nspname, c.relname`;
  // SET LOCAL lasts until the transaction ends: inside a transaction a savepoint rolled
  // back afterwards restores the caller's timeout.
  const [open, close] = ctx.inTransaction
    ? ['savepoint accountdb_stats_count', 'rollback to savepoint accountdb_stats_count; release savepoint accountdb_stats_count']
    : ['begin read only', 'commit'];
  await ctx.q.query(open);
  try {
    await ctx.q.query("select set_config('statement_timeout', $1, true)", [String(timeout)]);
    const { rows } = await ctx.q.query(sql, schemaParams(ctx.options));
    await ctx.q.query(close);
    return rows.map((r) => ({
      schema: r.schema,
      name: r.name,
      rows: num(r.rows),
      estimated: false,
      neverAnalyzed: false,
      note: r.rows === null ? 'no SELECT privilege on this table' : null,
    }));
  } catch (err) {
    await ctx.q.query(ctx.inTransaction ? close : 'rollback').catch(() => {});
    if ((err as { sqlstate?: unknown }).sqlstate === '57014')
      throw new StatementTimeoutError(
        `Exact row counts took longer than exactRowCountTimeoutMs ${timeout} ms and were canceled`,
        err as SqlError,
      );
    throw err;
  }
}

/** Sizes of every table and materialized view in bytes, largest first. */
export function getTableSizes(source: StatsSource, options?: StatsOptions): Promise<TableSize[]> {
  return runStats(source, options, async (ctx) => toTableSizes(await fetchTables(ctx), ctx));
}

/**
 * Row counts: the catalog's estimates (flagged `estimated`; a never-measured table says so), or
 * with `exactRowCounts` a `count(*)` of each table bounded by `exactRowCountTimeoutMs`
 * (pool's `StatementTimeoutError` past it). Exact counts on a pool run in a transaction of their own.
 */
export function getTableRowCounts(source: StatsSource, options?: StatsOptions): Promise<TableRowCount[]> {
  return runStats(source, options, async (ctx) => {
    if (!ctx.options.exactRowCounts) return toRowCounts(await fetchTables(ctx));
    const shape = source as { withConnection?: (fn: (c: StatsSource) => Promise<TableRowCount[]>) => Promise<TableRowCount[]> };
    // A pool would spread BEGIN, SET and the count over different connections: pin one.
    if (typeof shape.withConnection === 'function' && ctx.q === source)
      return shape.withConnection((conn) => exactRowCounts({ ...ctx, q: conn }));
    return exactRowCounts(ctx);
  });
}

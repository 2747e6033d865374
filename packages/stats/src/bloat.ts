import {
  BLOCK,
  num,
  quoteCatalogName,
  runStats,
  SCHEMA_FILTER,
  type StatsContext,
  type StatsSource,
  schemaFilter,
  schemaParams,
} from './context.js';
import type { StatsOptions } from './options.js';

/** Space in a table or index beyond what its live rows need. */
export interface Bloat {
  readonly schema: string;
  /** The table (for an index: the table it belongs to). */
  readonly table: string;
  /** The index, for index bloat; null for table bloat. */
  readonly index: string | null;
  /** Size the figure is measured against. */
  readonly sizeBytes: number;
  /** Bytes beyond the live rows (and the fillfactor's reserve); null when it cannot be told (see `note`). */
  readonly wastedBytes: number | null;
  /** wastedBytes / sizeBytes, 0..1. */
  readonly wastedFraction: number | null;
  /**
   * `estimate` (from pg_stats, ioguix's method) or `pgstattuple` (a full scan with that extension:
   * pgstattuple's dead tuples + free space for a table, pgstatindex's free leaf space beyond the
   * fillfactor's reserve + empty and deleted pages for an index).
   */
  readonly method: 'estimate' | 'pgstattuple';
  readonly note: string | null;
}

// Column statistics as one jsonb object built once per statement (pg_stats is costly: it checks a
// privilege per column), looked up by quoted name: a join on pg_stats' name columns is planned as a
// nested loop (millions of comparisons over 10,000 tables). It is read as `(select m from st)`, a
// value computed once: a CTE scan would copy it for every row.
const STATS_MAP = `with st as materialized (select (select jsonb_object_agg(format('%I.%I.%I', s.schemaname, s.tablename, s.attname),
  jsonb_build_array(s.null_frac, s.avg_width)) from pg_stats s where not s.inherited and ${schemaFilter('s.schemaname')}) as m)`;
// Per relation, over its columns (attribute `a` of relation `rel`): null fraction, width and whether every column has statistics.
const COLUMNS = (
  from: string,
  where: string,
  rel: string,
  defaultWidth: number,
) => `lateral (select max(coalesce((s->>0)::float8, 0)) as maxnull,
    count(s) as nstats, sum((1 - coalesce((s->>0)::float8, 0)) * coalesce((s->>1)::float8, ${defaultWidth})) as width,
    bool_or(a.atttypid = 'pg_catalog.name'::regtype) or count(*) <> count(s) as is_na, count(s) > 0 as analyzed
  from ${from}, lateral (select (select m from st) -> format('%I.%I.%I', n.nspname, ${rel}, a.attname) as s) j ${where}) k`;
const FILLFACTOR = (rel: string, fallback: number) =>
  `coalesce(substring(array_to_string(${rel}.reloptions, ' ') from 'fillfactor=([0-9]+)')::smallint, ${fallback})`;
const BTREE = `ci.relam = (select oid from pg_am where amname = 'btree')`;
const ROUND = (x: string) => `(case when ${x} % 8 = 0 then 8 else ${x} % 8 end)`;

// ioguix's table bloat estimate (github.com/ioguix/pgsql-bloat-estimation): the pages the live
// rows should fill, from pg_stats' average widths and null fractions, against relpages.
const TABLE_ESTIMATE = `
select schema, "table", null::name as index, (bs * pages)::float8 as size_bytes, is_na, analyzed,
  (greatest(pages - ceil(reltuples / ((bs - 24) * fillfactor / (tpl_size * 100))) - ceil(toasttuples / 4), 0) * bs)::float8 as wasted_bytes
from (
  select *, 4 + hdr + width + 16 - ${ROUND('hdr')} - ${ROUND('ceil(width)::int')} as tpl_size
  from (
    select n.nspname as schema, c.relname as "table", greatest(c.reltuples, 0) as reltuples,
      c.relpages + coalesce(t.relpages, 0) as pages, greatest(coalesce(t.reltuples, 0), 0) as toasttuples,
      ${FILLFACTOR('c', 100)} as fillfactor, ${BLOCK} as bs, is_na, analyzed,
      23 + case when maxnull > 0 then (7 + nstats) / 8 else 0 end as hdr, coalesce(width, 0) as width
    from pg_class c join pg_namespace n on n.oid = c.relnamespace left join pg_class t on t.oid = c.reltoastrelid,
      ${COLUMNS('pg_attribute a', 'where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped', 'c.relname', 0)}
    where c.relkind in ('r', 'm') and ${SCHEMA_FILTER}
  ) x
) y`;

// ioguix's btree bloat estimate: leaf pages the index's tuples should need at its fillfactor. A key
// column is the table's column, or for an expression the index's own (pg_stats lists it by index).
const INDEX_ESTIMATE = `
select schema, "table", index, (bs * relpages)::float8 as size_bytes, is_na, analyzed,
  (greatest(relpages - coalesce(1 + ceil(reltuples / floor((bs - 40) * fillfactor / (100 * (4 + hdr + 8 - ${ROUND('hdr')}
    + width + 8 - case when width = 0 then 0 else ${ROUND('width::int')} end)::float))), 0), 0) * bs)::float8 as wasted_bytes
from (
  select n.nspname as schema, t.relname as "table", ci.relname as index, greatest(ci.reltuples, 0) as reltuples, ci.relpages,
    ${FILLFACTOR('ci', 90)} as fillfactor, ${BLOCK} as bs, case when maxnull = 0 then 8 else 12 end as hdr, width, is_na, analyzed
  from pg_index i join pg_class ci on ci.oid = i.indexrelid join pg_class t on t.oid = i.indrelid
    join pg_namespace n on n.oid = t.relnamespace,
    ${COLUMNS(
      `generate_series(0, i.indnatts - 1) p join pg_attribute a on a.attrelid = case when i.indkey[p] = 0 then i.indexrelid else i.indrelid end
        and a.attnum = case when i.indkey[p] = 0 then p + 1 else i.indkey[p] end`,
      '',
      'case when i.indkey[p] = 0 then ci.relname else t.relname end',
      1024,
    )}
  where ${BTREE} and ci.relpages > 0 and ${SCHEMA_FILTER}
) x`;

// Exact figures: pgstattuple's dead tuples and free space over the table; for a btree index,
// pgstatindex's leaf free space beyond the fillfactor's reserve, plus empty and deleted pages.
const TABLE_EXACT = (schema: string) => `
select n.nspname as schema, c.relname as "table", null::name as index, p.table_len::float8 as size_bytes,
  (p.dead_tuple_len + p.free_space)::float8 as wasted_bytes
from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join lateral ${schema}.pgstattuple(c.oid) p
where c.relkind in ('r', 'm') and c.relispopulated and ${SCHEMA_FILTER}`;
const INDEX_EXACT = (schema: string) => `
select n.nspname as schema, t.relname as "table", ci.relname as index, p.index_size::float8 as size_bytes,
  ((p.empty_pages + p.deleted_pages) * ${BLOCK} + case when p.leaf_pages > 0 then greatest(p.leaf_pages * ${BLOCK}
    * (${FILLFACTOR('ci', 90)} - p.avg_leaf_density) / 100, 0) else 0 end)::float8 as wasted_bytes
from pg_index i join pg_class ci on ci.oid = i.indexrelid join pg_class t on t.oid = i.indrelid
  join pg_namespace n on n.oid = t.relnamespace, lateral ${schema}.pgstatindex(i.indexrelid) p
where ${BTREE} and ci.relkind = 'i' and i.indisvalid and ${SCHEMA_FILTER}`;

function toBloat(r: Record<string, unknown>, method: Bloat['method'], note: string | null): Bloat {
  const sizeBytes = num(r.size_bytes) ?? 0;
  const estimateNote =
    method === 'pgstattuple'
      ? null
      : r.analyzed !== true
        ? 'never analyzed (or no column statistics visible to this role): no estimate; run ANALYZE'
        : r.is_na === true
          ? 'estimate unreliable: some columns have no statistics (not visible to this role, or of type name)'
          : null;
  const wastedBytes = estimateNote === null ? num(r.wasted_bytes) : null;
  return {
    schema: r.schema as string,
    table: r.table as string,
    index: (r.index as string | null) ?? null,
    sizeBytes,
    wastedBytes,
    wastedFraction: wastedBytes === null ? null : sizeBytes === 0 ? 0 : wastedBytes / sizeBytes,
    method,
    note: estimateNote ?? note,
  };
}

function exactUnavailable(ctx: StatsContext): string | null {
  const ext = ctx.server.pgstattuple;
  if (!ext)
    return 'exact bloat asked for, but the pgstattuple extension is not installed in this database (CREATE EXTENSION pgstattuple)';
  if (!ext.executable)
    return 'exact bloat asked for, but this role may not execute pgstattuple and pgstatindex (grant pg_stat_scan_tables or pg_monitor)';
  return null;
}

/**
 * Table and btree index bloat in one statement: the estimate, or with `bloat: 'exact'` a full scan
 * of each by pgstattuple (tables) or pgstatindex (indexes). When exact is asked for but unavailable,
 * the estimate is returned with a `note` saying why.
 */
export async function fetchBloat(
  ctx: StatsContext,
  { tables = true, indexes = true } = {},
): Promise<{ tables: Bloat[]; indexes: Bloat[] }> {
  const unavailable = ctx.options.bloat === 'exact' ? exactUnavailable(ctx) : null;
  const exact = ctx.options.bloat === 'exact' && unavailable === null;
  const schema = exact ? quoteCatalogName(ctx.server.pgstattuple!.schema) : '';
  const parts = [
    tables && (exact ? TABLE_EXACT(schema) : TABLE_ESTIMATE),
    indexes && (exact ? INDEX_EXACT(schema) : INDEX_ESTIMATE),
  ];
  const sql = `${exact ? '' : STATS_MAP} ${parts.filter(Boolean).join(' union all ')}`;
  const { rows } = await ctx.q.query(sql, schemaParams(ctx.options));
  const all = rows.map((r) => (exact ? toBloat(r, 'pgstattuple', null) : toBloat(r, 'estimate', unavailable)));
  return { tables: byWaste(all.filter((b) => b.index === null)), indexes: byWaste(all.filter((b) => b.index !== null)) };
}

/** Table bloat of every table, most wasted bytes first (estimate by default; `bloat: 'exact'` for pgstattuple). */
export function getTableBloat(source: StatsSource, options?: StatsOptions): Promise<Bloat[]> {
  return runStats(source, options, async (ctx) => (await fetchBloat(ctx, { indexes: false })).tables);
}

/** Btree index bloat, most wasted bytes first (estimate by default; `bloat: 'exact'` for pgstatindex). */
export function getIndexBloat(source: StatsSource, options?: StatsOptions): Promise<Bloat[]> {
  return runStats(source, options, async (ctx) => (await fetchBloat(ctx, { tables: false })).indexes);
}

function byWaste(rows: Bloat[]): Bloat[] {
  return rows.sort((a, b) => (b.wastedBytes ?? -1) - (a.wastedBytes ?? -1));
}

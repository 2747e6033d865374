import { num, quoteCatalogName, runStats, SCHEMA_FILTER, type StatsContext, type StatsSource, schemaParams } from './context.js';
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
  /** `estimate` (from pg_stats, ioguix's method) or `pgstattuple` (a full scan: dead tuples + free space). */
  readonly method: 'estimate' | 'pgstattuple';
  readonly note: string | null;
}

// ioguix's table bloat estimate (github.com/ioguix/pgsql-bloat-estimation): the pages the live
// rows should fill, from pg_stats' average widths and null fractions, against relpages.
const TABLE_ESTIMATE = `
select schema, name, bs * tblpages as size_bytes, is_na, analyzed,
  case when tblpages - est_ff > 0 then (tblpages - est_ff) * bs else 0 end as wasted_bytes
from (
  select ceil(reltuples / ((bs - page_hdr) * fillfactor / (tpl_size * 100))) + ceil(toasttuples / 4) as est_ff,
    tblpages, bs, schema, name, is_na, analyzed
  from (
    select (4 + tpl_hdr_size + tpl_data_size + (2 * ma)
        - case when tpl_hdr_size % ma = 0 then ma else tpl_hdr_size % ma end
        - case when ceil(tpl_data_size)::int % ma = 0 then ma else ceil(tpl_data_size)::int % ma end) as tpl_size,
      heappages + toastpages as tblpages, reltuples, toasttuples, bs, page_hdr, schema, name, fillfactor, is_na, analyzed
    from (
      select n.nspname as schema, tbl.relname as name, greatest(tbl.reltuples, 0) as reltuples, tbl.relpages as heappages,
        coalesce(toast.relpages, 0) as toastpages, greatest(coalesce(toast.reltuples, 0), 0) as toasttuples,
        coalesce(substring(array_to_string(tbl.reloptions, ' ') from 'fillfactor=([0-9]+)')::smallint, 100) as fillfactor,
        current_setting('block_size')::numeric as bs, 8 as ma, 24 as page_hdr,
        23 + case when max(coalesce(s.null_frac, 0)) > 0 then (7 + count(s.attname)) / 8 else 0::int end as tpl_hdr_size,
        sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 0)) as tpl_data_size,
        bool_or(att.atttypid = 'pg_catalog.name'::regtype) or count(att.attname) <> count(s.attname) as is_na,
        count(s.attname) > 0 as analyzed
      from pg_attribute att join pg_class tbl on att.attrelid = tbl.oid
        join pg_namespace n on n.oid = tbl.relnamespace
        left join pg_stats s on s.schemaname = n.nspname and s.tablename = tbl.relname and not s.inherited and s.attname = att.attname
        left join pg_class toast on toast.oid = tbl.reltoastrelid
      where att.attnum > 0 and not att.attisdropped and tbl.relkind in ('r', 'm') and ${SCHEMA_FILTER}
      group by 1, 2, 3, 4, 5, 6, 7
    ) s
  ) s2
) s3
order by schema, name`;

// ioguix's btree bloat estimate: leaf pages the index's tuples should need at its fillfactor.
const INDEX_ESTIMATE = `
select schema, tblname as table, idxname as index, bs * relpages as size_bytes, is_na, analyzed,
  case when relpages > est_pages_ff then bs * (relpages - est_pages_ff) else 0 end as wasted_bytes
from (
  select coalesce(1 + ceil(reltuples / floor((bs - pageopqdata - pagehdr) * fillfactor / (100 * (4 + nulldatahdrwidth)::float))), 0) as est_pages_ff,
    bs, schema, tblname, idxname, relpages, is_na, analyzed
  from (
    select bs, schema, tblname, idxname, reltuples, relpages, fillfactor, pagehdr, pageopqdata, is_na, analyzed,
      (index_tuple_hdr_bm + maxalign - case when index_tuple_hdr_bm % maxalign = 0 then maxalign else index_tuple_hdr_bm % maxalign end
        + nulldatawidth + maxalign - case when nulldatawidth = 0 then 0 when nulldatawidth::integer % maxalign = 0 then maxalign
          else nulldatawidth::integer % maxalign end)::numeric as nulldatahdrwidth
    from (
      select n.nspname as schema, i.tblname, i.idxname, i.reltuples, i.relpages, i.fillfactor,
        current_setting('block_size')::numeric as bs, 8 as maxalign, 24 as pagehdr, 16 as pageopqdata,
        case when max(coalesce(s.null_frac, 0)) = 0 then 8 else 8 + ((32 + 8 - 1) / 8) end as index_tuple_hdr_bm,
        sum((1 - coalesce(s.null_frac, 0)) * coalesce(s.avg_width, 1024)) as nulldatawidth,
        bool_or(i.atttypid = 'pg_catalog.name'::regtype) or count(i.attname) <> count(s.attname) as is_na,
        count(s.attname) > 0 as analyzed
      from (
        select ct.relname as tblname, ct.relnamespace, ic.idxname, ic.reltuples, ic.relpages, ic.fillfactor, ic.idxoid,
          coalesce(a1.attname, a2.attname) as attname, coalesce(a1.atttypid, a2.atttypid) as atttypid,
          case when a1.attnum is null then ic.idxname else ct.relname end as attrelname
        from (
          select ci.relname as idxname, greatest(ci.reltuples, 0) as reltuples, ci.relpages, i.indrelid as tbloid, i.indexrelid as idxoid,
            coalesce(substring(array_to_string(ci.reloptions, ' ') from 'fillfactor=([0-9]+)')::smallint, 90) as fillfactor,
            i.indkey::int2[] as indkey, generate_series(1, i.indnatts) as attpos
          from pg_index i join pg_class ci on ci.oid = i.indexrelid
            join pg_class t on t.oid = i.indrelid join pg_namespace n on n.oid = t.relnamespace
          where ci.relam = (select oid from pg_am where amname = 'btree') and ci.relpages > 0 and ${SCHEMA_FILTER}
        ) ic
        join pg_class ct on ct.oid = ic.tbloid
        left join pg_attribute a1 on ic.indkey[ic.attpos - 1] <> 0 and a1.attrelid = ic.tbloid and a1.attnum = ic.indkey[ic.attpos - 1]
        left join pg_attribute a2 on ic.indkey[ic.attpos - 1] = 0 and a2.attrelid = ic.idxoid and a2.attnum = ic.attpos
      ) i
      join pg_namespace n on n.oid = i.relnamespace
      left join pg_stats s on s.schemaname = n.nspname and s.tablename = i.attrelname and s.attname = i.attname
      group by 1, 2, 3, 4, 5, 6
    ) rows_data_stats
  ) rows_hdr_pdg_stats
) relation_stats
order by schema, tblname, idxname`;

function fromEstimate(r: Record<string, unknown>, index: boolean): Bloat {
  const sizeBytes = num(r.size_bytes) ?? 0;
  const known = r.analyzed === true && r.is_na !== true;
  const wastedBytes = known ? num(r.wasted_bytes) : null;
  return {
    schema: r.schema as string,
    table: (index ? r.table : r.name) as string,
    index: index ? (r.index as string) : null,
    sizeBytes,
    wastedBytes,
    wastedFraction: wastedBytes === null ? null : sizeBytes === 0 ? 0 : wastedBytes / sizeBytes,
    method: 'estimate',
    note:
      r.analyzed !== true
        ? 'never analyzed (or no column statistics visible to this role): no estimate; run ANALYZE'
        : r.is_na === true
          ? 'estimate unreliable: some columns have no statistics (not visible to this role, or of type name)'
          : null,
  };
}

function exactUnavailable(ctx: StatsContext): string | null {
  const ext = ctx.server.pgstattuple;
  if (!ext)
    return 'exact bloat asked for, but the pgstattuple extension is not installed in this database (CREATE EXTENSION pgstattuple)';
  if (!ext.executable)
    return 'exact bloat asked for, but this role may not execute pgstattuple (grant pg_stat_scan_tables or pg_monitor)';
  return null;
}

/**
 * Table bloat: the estimate, or with `bloat: 'exact'` pgstattuple's `dead_tuple_len + free_space`
 * over `table_len` (a full scan of every table). When exact is asked for but unavailable, the
 * estimate is returned with a `note` saying why.
 */
export async function fetchTableBloat(ctx: StatsContext): Promise<Bloat[]> {
  const params = schemaParams(ctx.options);
  const unavailable = ctx.options.bloat === 'exact' ? exactUnavailable(ctx) : 'not asked';
  if (unavailable === null) {
    const fn = `${quoteCatalogName(ctx.server.pgstattuple!.schema)}.pgstattuple`;
    const { rows } = await ctx.q.query(
      `select n.nspname as schema, c.relname as name, p.table_len, p.dead_tuple_len + p.free_space as wasted
       from pg_class c join pg_namespace n on n.oid = c.relnamespace cross join lateral ${fn}(c.oid) p
       where c.relkind in ('r', 'm') and c.relispopulated and ${SCHEMA_FILTER} order by n.nspname, c.relname`,
      params,
    );
    return rows.map((r) => {
      const sizeBytes = num(r.table_len) ?? 0;
      const wastedBytes = num(r.wasted) ?? 0;
      return {
        schema: r.schema,
        table: r.name,
        index: null,
        sizeBytes,
        wastedBytes,
        wastedFraction: sizeBytes === 0 ? 0 : wastedBytes / sizeBytes,
        method: 'pgstattuple' as const,
        note: null,
      };
    });
  }
  const { rows } = await ctx.q.query(TABLE_ESTIMATE, params);
  return rows.map((r) => {
    const b = fromEstimate(r, false);
    return ctx.options.bloat === 'exact' && b.note === null ? { ...b, note: unavailable } : b;
  });
}

export async function fetchIndexBloat(ctx: StatsContext): Promise<Bloat[]> {
  const { rows } = await ctx.q.query(INDEX_ESTIMATE, schemaParams(ctx.options));
  return rows.map((r) => fromEstimate(r, true));
}

/** Table bloat of every table, most wasted bytes first (estimate by default; `bloat: 'exact'` for pgstattuple). */
export function getTableBloat(source: StatsSource, options?: StatsOptions): Promise<Bloat[]> {
  return runStats(source, options, async (ctx) => byWaste(await fetchTableBloat(ctx)));
}

/** Btree index bloat estimates, most wasted bytes first. */
export function getIndexBloat(source: StatsSource, options?: StatsOptions): Promise<Bloat[]> {
  return runStats(source, options, async (ctx) => byWaste(await fetchIndexBloat(ctx)));
}

export function byWaste(rows: Bloat[]): Bloat[] {
  return rows.sort((a, b) => (b.wastedBytes ?? -1) - (a.wastedBytes ?? -1));
}

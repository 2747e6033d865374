import { ratio, runStats, SCHEMA_FILTER, type StatsContext, type StatsSource, schemaParams } from './context.js';
import type { StatsOptions } from './options.js';
import { fetchTables } from './tables.js';

/** One index as the catalog and the statistics collector describe it. */
export interface IndexFacts {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  /** Access method: `btree`, `gin`, `gist`, ... */
  readonly method: string;
  /** `pg_get_indexdef`; read only where a finding may name the index (null otherwise). */
  readonly definition: string | null;
  readonly sizeBytes: number;
  readonly unique: boolean;
  readonly primary: boolean;
  /** Backs a primary key, unique or exclusion constraint. */
  readonly constraint: string | null;
  readonly valid: boolean;
  /** A `CREATE INDEX` is building it right now (an invalid index may just be in progress). */
  readonly building: boolean;
  /** Key columns in order, as attribute numbers of the table; 0 for an expression. */
  readonly columns: readonly number[];
  readonly scans: number;
  readonly tuplesRead: number;
  readonly blocksRead: number;
  readonly blocksHit: number;
  /** Internals for duplicate detection. */
  readonly signature: { readonly opclasses: string; readonly expressions: string | null; readonly predicate: string | null };
}

export async function fetchIndexes(ctx: StatsContext): Promise<IndexFacts[]> {
  // pg_get_indexdef costs as much as the rest: only for indexes a finding may name (invalid, or
  // sharing a first key column with another index of the table).
  const { rows } = await ctx.q.query(
    `select n.nspname as schema, t.relname as table, ci.relname as name, am.amname as method,
       case when not i.indisvalid or count(*) over (partition by i.indrelid, i.indkey[0]) > 1
         then pg_get_indexdef(i.indexrelid) end as definition,
       pg_total_relation_size(i.indexrelid)::float8 as "sizeBytes", i.indisunique as unique, i.indisprimary as primary,
       con.conname as constraint, i.indisvalid as valid,
       i.indexrelid in (select index_relid from pg_stat_progress_create_index) as building,
       i.indkey::text as columns, i.indnkeyatts as key_count, i.indclass::text as opclasses,
       pg_get_expr(i.indexprs, i.indrelid) as expressions, pg_get_expr(i.indpred, i.indrelid) as predicate,
       pg_stat_get_numscans(i.indexrelid)::float8 as scans, pg_stat_get_tuples_returned(i.indexrelid)::float8 as "tuplesRead",
       pg_stat_get_blocks_hit(i.indexrelid)::float8 as "blocksHit",
       (pg_stat_get_blocks_fetched(i.indexrelid) - pg_stat_get_blocks_hit(i.indexrelid))::float8 as "blocksRead"
     from pg_index i join pg_class ci on ci.oid = i.indexrelid join pg_class t on t.oid = i.indrelid
       join pg_namespace n on n.oid = t.relnamespace join pg_am am on am.oid = ci.relam
       left join pg_constraint con on con.conindid = i.indexrelid and con.conrelid = i.indrelid and con.contype in ('p', 'u', 'x')
     where t.relkind in ('r', 'm') and ${SCHEMA_FILTER}
     order by n.nspname, t.relname, ci.relname`,
    schemaParams(ctx.options),
  );
  return rows.map(({ key_count, opclasses, expressions, predicate, ...r }) => ({
    ...(r as IndexFacts),
    columns: (r.columns as string).split(' ').slice(0, key_count).map(Number),
    signature: { opclasses, expressions, predicate },
  }));
}

/** Usage of one index; `scans` counts since `statsReset`. */
export interface IndexUsage {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly sizeBytes: number;
  readonly scans: number;
  readonly tuplesRead: number;
  readonly unique: boolean;
  readonly valid: boolean;
  /** When `scans` started counting (`pg_stat_database.stats_reset`); null = never reset. */
  readonly statsReset: Date | null;
}

function toUsage(i: IndexFacts, statsReset: Date | null): IndexUsage {
  const { schema, table, name, sizeBytes, scans, tuplesRead, unique, valid } = i;
  return { schema, table, name, sizeBytes, scans, tuplesRead, unique, valid, statsReset };
}

export function toIndexUsage(indexes: readonly IndexFacts[], statsReset: Date | null): IndexUsage[] {
  return indexes.map((i) => toUsage(i, statsReset)).sort((a, b) => a.scans - b.scans || b.sizeBytes - a.sizeBytes);
}

/** An index never scanned since the counters were reset, and not enforcing a constraint. */
export type UnusedIndex = IndexUsage;

export function toUnusedIndexes(indexes: readonly IndexFacts[], statsReset: Date | null): UnusedIndex[] {
  return indexes
    .filter((i) => i.scans === 0 && i.valid && !i.unique && !i.constraint)
    .map((i) => toUsage(i, statsReset))
    .sort((a, b) => b.sizeBytes - a.sizeBytes);
}

/** An index whose work another index of the same table already does. */
export interface DuplicateIndex {
  readonly schema: string;
  readonly table: string;
  /** The redundant index (a candidate to drop). */
  readonly name: string;
  readonly definition: string;
  readonly sizeBytes: number;
  /** The index that covers it. */
  readonly coveredBy: string;
  readonly coveredByDefinition: string;
  /** `same columns`, or `prefix` when its columns lead the other's. */
  readonly relation: 'same columns' | 'prefix';
}

/**
 * Same method, expressions and predicate, and key columns (with operator classes) equal to or a
 * prefix of another's. A unique index is redundant only beside a unique index on the same columns.
 */
export function toDuplicateIndexes(indexes: readonly IndexFacts[]): DuplicateIndex[] {
  const out: DuplicateIndex[] = [];
  const byTable = new Map<string, IndexFacts[]>();
  for (const i of indexes) {
    if (!i.valid) continue;
    const key = JSON.stringify([i.schema, i.table, i.method, i.signature.expressions, i.signature.predicate]);
    byTable.set(key, [...(byTable.get(key) ?? []), i]);
  }
  const covers = (a: IndexFacts, b: IndexFacts): boolean => {
    if (a === b || a.columns.length > b.columns.length) return false;
    const aClasses = a.signature.opclasses.split(' ');
    const bClasses = b.signature.opclasses.split(' ');
    if (!a.columns.every((c, k) => c === b.columns[k] && aClasses[k] === bClasses[k])) return false;
    const same = a.columns.length === b.columns.length;
    if (a.unique && !(same && b.unique)) return false;
    // Of two identical indexes report one: keep the constraint's, else the first by name.
    return !(same && (a.constraint || a.primary || (b.unique === a.unique && !b.constraint && a.name < b.name)));
  };
  for (const group of byTable.values()) {
    for (const a of group) {
      // The widest cover: dropping every reported index still leaves it.
      const b = group.filter((b) => covers(a, b)).sort((x, y) => y.columns.length - x.columns.length)[0];
      if (!b) continue;
      out.push({
        schema: a.schema,
        table: a.table,
        name: a.name,
        definition: a.definition ?? '',
        sizeBytes: a.sizeBytes,
        coveredBy: b.name,
        coveredByDefinition: b.definition ?? '',
        relation: a.columns.length === b.columns.length ? 'same columns' : 'prefix',
      });
    }
  }
  return out;
}

/** An index the planner ignores: a failed `CREATE INDEX CONCURRENTLY` (or one still building). */
export interface InvalidIndex {
  readonly schema: string;
  readonly table: string;
  readonly name: string;
  readonly definition: string;
  readonly sizeBytes: number;
  /** True when a build is in progress right now: it may still become valid. */
  readonly building: boolean;
}

export function toInvalidIndexes(indexes: readonly IndexFacts[]): InvalidIndex[] {
  return indexes
    .filter((i) => !i.valid)
    .map(({ schema, table, name, definition, sizeBytes, building }) => ({
      schema,
      table,
      name,
      definition: definition ?? '',
      sizeBytes,
      building,
    }));
}

/** Buffer cache hit ratios of table and index blocks (`pg_statio_*`), over the selected schemas. */
export interface CacheHitRatios {
  /** Heap blocks found in shared buffers / all heap blocks read; null before any traffic. */
  readonly tables: number | null;
  readonly indexes: number | null;
  readonly tableBlocksHit: number;
  readonly tableBlocksRead: number;
  readonly indexBlocksHit: number;
  readonly indexBlocksRead: number;
  readonly statsReset: Date | null;
}

export function toCacheHitRatios(
  tables: readonly { heapBlocksHit: number; heapBlocksRead: number }[],
  indexes: readonly IndexFacts[],
  statsReset: Date | null,
): CacheHitRatios {
  const sum = <T>(xs: readonly T[], f: (x: T) => number) => xs.reduce((s, x) => s + f(x), 0);
  const tableBlocksHit = sum(tables, (t) => t.heapBlocksHit);
  const tableBlocksRead = sum(tables, (t) => t.heapBlocksRead);
  const indexBlocksHit = sum(indexes, (i) => i.blocksHit);
  const indexBlocksRead = sum(indexes, (i) => i.blocksRead);
  return {
    tables: ratio(tableBlocksHit, tableBlocksRead),
    indexes: ratio(indexBlocksHit, indexBlocksRead),
    tableBlocksHit,
    tableBlocksRead,
    indexBlocksHit,
    indexBlocksRead,
    statsReset,
  };
}

/** Scans, size and validity of every index, least used first. */
export function getIndexUsage(source: StatsSource, options?: StatsOptions): Promise<IndexUsage[]> {
  return runStats(source, options, async (ctx) => toIndexUsage(await fetchIndexes(ctx), ctx.server.statsReset));
}

/** Indexes with no scans since the counters were reset that enforce no constraint, largest first. */
export function getUnusedIndexes(source: StatsSource, options?: StatsOptions): Promise<UnusedIndex[]> {
  return runStats(source, options, async (ctx) => toUnusedIndexes(await fetchIndexes(ctx), ctx.server.statsReset));
}

/** Indexes made redundant by another on the same columns, or on columns they lead. */
export function getDuplicateIndexes(source: StatsSource, options?: StatsOptions): Promise<DuplicateIndex[]> {
  return runStats(source, options, async (ctx) => toDuplicateIndexes(await fetchIndexes(ctx)));
}

/** Invalid indexes (`indisvalid = false`). */
export function getInvalidIndexes(source: StatsSource, options?: StatsOptions): Promise<InvalidIndex[]> {
  return runStats(source, options, async (ctx) => toInvalidIndexes(await fetchIndexes(ctx)));
}

/** Cache hit ratios of tables and indexes. */
export function getCacheHitRatios(source: StatsSource, options?: StatsOptions): Promise<CacheHitRatios> {
  return runStats(source, options, async (ctx) =>
    toCacheHitRatios(await fetchTables(ctx), await fetchIndexes(ctx), ctx.server.statsReset),
  );
}

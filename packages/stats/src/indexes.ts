import { BLOCK, ratio, runStats, SCHEMA_FILTER, type StatsContext, type StatsSource, schemaParams } from './context.js';
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
  readonly scans: number;
  readonly tuplesRead: number;
  readonly blocksRead: number;
  readonly blocksHit: number;
  /**
   * For duplicate detection, set on valid indexes sharing their first key column with another of
   * the table: key columns as attribute numbers (0 for an expression) with their operator classes.
   */
  readonly signature: {
    readonly columns: readonly number[];
    readonly opclasses: readonly number[];
    readonly expressions: string | null;
    readonly predicate: string | null;
  } | null;
}

export async function fetchIndexes(ctx: StatsContext): Promise<IndexFacts[]> {
  // pg_get_indexdef costs as much as the rest: only for indexes a finding may name (invalid, or
  // sharing a first key column with another valid index of the table: a duplicate candidate).
  const { rows } = await ctx.q.query(
    `select schema, "table", name, method, "sizeBytes", "unique", "primary", "constraint", valid, building, scans, "tuplesRead",
       "blocksHit", "blocksRead", case when not valid or candidate then pg_get_indexdef(oid) end as definition,
       case when candidate then json_build_object('columns', (indkey::int2[])[0:keys - 1], 'opclasses', (indclass::oid[])[0:keys - 1],
         'expressions', pg_get_expr(indexprs, indrelid), 'predicate', pg_get_expr(indpred, indrelid)) end as signature
     from (select n.nspname as schema, t.relname as table, ci.relname as name, am.amname as method, i.indexrelid as oid,
       i.indisvalid and count(*) filter (where i.indisvalid) over (partition by i.indrelid, i.indkey[0]) > 1 as candidate,
       ${ctx.options.sizes === 'exact' ? 'pg_total_relation_size(i.indexrelid)' : `ci.relpages * ${BLOCK}`}::float8 as "sizeBytes", i.indisunique as unique, i.indisprimary as primary,
       con.conname as constraint, i.indisvalid as valid,
       i.indexrelid in (select index_relid from pg_stat_progress_create_index) as building,
       i.indkey, i.indnkeyatts as keys, i.indclass, i.indexprs, i.indpred, i.indrelid,
       pg_stat_get_numscans(i.indexrelid)::float8 as scans, pg_stat_get_tuples_returned(i.indexrelid)::float8 as "tuplesRead",
       pg_stat_get_blocks_hit(i.indexrelid)::float8 as "blocksHit",
       (pg_stat_get_blocks_fetched(i.indexrelid) - pg_stat_get_blocks_hit(i.indexrelid))::float8 as "blocksRead"
     from pg_index i join pg_class ci on ci.oid = i.indexrelid join pg_class t on t.oid = i.indrelid
       join pg_namespace n on n.oid = t.relnamespace join pg_am am on am.oid = ci.relam
       left join pg_constraint con on con.conindid = i.indexrelid and con.conrelid = i.indrelid and con.contype in ('p', 'u', 'x')
     where t.relkind in ('r', 'm') and ${SCHEMA_FILTER}) x
     order by schema, "table", name`,
    schemaParams(ctx.options),
  );
  return rows as IndexFacts[];
}

/** Usage of one index; `scans` counts since `statsReset`. */
export type IndexUsage = Pick<
  IndexFacts,
  'schema' | 'table' | 'name' | 'sizeBytes' | 'scans' | 'tuplesRead' | 'unique' | 'valid'
> & {
  /** When `scans` started counting (`pg_stat_database.stats_reset`); null = never reset. */
  readonly statsReset: Date | null;
};

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
  type Candidate = IndexFacts & { signature: NonNullable<IndexFacts['signature']> };
  const groups = new Map<string, Candidate[]>();
  for (const i of indexes.filter((i): i is Candidate => i.signature !== null)) {
    const key = [i.schema, i.table, i.method, i.signature.expressions, i.signature.predicate].join('\0');
    groups.set(key, [...(groups.get(key) ?? []), i]);
  }
  for (const group of groups.values()) {
    const covers = (a: Candidate, b: Candidate): boolean => {
      const [x, y] = [a.signature, b.signature];
      if (a === b || x.columns.length > y.columns.length) return false;
      if (!x.columns.every((c, k) => c === y.columns[k] && x.opclasses[k] === y.opclasses[k])) return false;
      const same = x.columns.length === y.columns.length;
      if (a.unique && !(same && b.unique)) return false;
      // Of two identical indexes report one: keep the constraint's, else the first by name.
      return !(same && (a.constraint || a.primary || (b.unique === a.unique && !b.constraint && a.name < b.name)));
    };
    for (const a of group) {
      // The widest cover: dropping every reported index still leaves it.
      const b = group.filter((b) => covers(a, b)).sort((p, q) => q.signature.columns.length - p.signature.columns.length)[0];
      if (!b) continue;
      const { schema, table, name, definition, sizeBytes } = a;
      const relation = a.signature.columns.length === b.signature.columns.length ? 'same columns' : 'prefix';
      out.push({
        schema,
        table,
        name,
        definition: definition ?? '',
        sizeBytes,
        coveredBy: b.name,
        coveredByDefinition: b.definition ?? '',
        relation,
      });
    }
  }
  return out;
}

/**
 * An index the planner ignores: a failed `CREATE INDEX CONCURRENTLY` (or one still building;
 * `building` is true while a build is in progress and it may still become valid).
 */
export type InvalidIndex = Pick<IndexFacts, 'schema' | 'table' | 'name' | 'sizeBytes' | 'building'> & {
  readonly definition: string;
};

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

import { MaintenanceInputError } from './errors.js';
import { type MaintenanceTarget, typed } from './runner.js';
import { requireServer } from './statements.js';
import { checkTableFilter, TABLE_FILTER_SQL, type TableFilter } from './tables.js';

/** What a plan step does, in the order a plan runs them. */
export type CleanupAction = 'vacuum-freeze' | 'vacuum' | 'analyze' | 'reindex';

/** One planned action: what, on which relation, why, and the numbers behind the why. */
export interface CleanupStep {
  readonly action: CleanupAction;
  /** Quoted, schema-qualified name from the catalog (an index for `reindex`). */
  readonly relation: string;
  /** The relation's OID; execution goes by OID and re-reads the name from the catalog. */
  readonly relationId: number;
  /** Human-readable reason, e.g. `1200 dead tuples > autovacuum threshold 150 (50 + 0.2 × 500 rows)`. */
  readonly reason: string;
  /** The inputs of the reason (tuples, thresholds, ages, pages). */
  readonly numbers: Readonly<Record<string, number | null>>;
  /** The statement execution will send (rebuilt from the catalog at run time). */
  readonly sql: string;
}

/** A cleanup plan: steps in execution order. Pure data; safe to show, serialize and pass back. */
export interface CleanupPlan {
  readonly serverVersion: number;
  /** Where dead tuples and index bloat came from: the statistics and an estimate, or pgstattuple's scans. */
  readonly bloatSource: 'estimate' | 'pgstattuple';
  readonly steps: readonly CleanupStep[];
}

/** Options of {@link planCleanup}. */
export interface PlanOptions extends TableFilter {
  /** Freeze tables whose `age(relfrozenxid)` exceeds this. Default: `vacuum_freeze_table_age` (150M by default). */
  readonly freezeAge?: number;
  /** Only indexes of at least this many pages are checked for bloat. Default 128 (1 MiB). */
  readonly minIndexPages?: number;
  /** Wasted fraction of a btree index from which it is rebuilt, 0-1 exclusive. Default 0.5. */
  readonly bloatRatio?: number;
  /**
   * `exact`: count dead tuples with `pgstattuple` and measure btree indexes with `pgstatindex` (full
   * scans of every table and checked index) when the extension is installed and the role may execute
   * it; otherwise, and by default (`estimate`), the statistics views and an estimate. See `bloatSource`.
   */
  readonly bloat?: 'estimate' | 'exact';
}

/** The statement a step runs; the name is the catalog's quoted form, everything else fixed. */
export function stepSql(action: CleanupAction, qualified: string): string {
  switch (action) {
    case 'vacuum-freeze':
      return `VACUUM (FREEZE TRUE, ANALYZE TRUE, SKIP_LOCKED TRUE) ${qualified}`;
    case 'vacuum':
      return `VACUUM (ANALYZE TRUE, SKIP_LOCKED TRUE) ${qualified}`;
    case 'analyze':
      return `ANALYZE (SKIP_LOCKED TRUE) ${qualified}`;
    case 'reindex':
      return `REINDEX INDEX CONCURRENTLY ${qualified}`;
  }
}

// A per-table reloption over the server setting of the same name (fixed names, never input).
const setting = (name: string) =>
  `coalesce((select option_value::float8 from pg_catalog.pg_options_to_table(c.reloptions) where option_name = '${name}'),
            pg_catalog.current_setting('${name}', true)::float8)`;

// Autovacuum's own trigger formulas, with per-table reloptions over the server settings:
// dead > threshold + scale × reltuples (capped by autovacuum_vacuum_max_threshold on 18+), the
// insert variant (13+), and changes since analyze > analyze threshold + scale × reltuples.
const TABLES_SQL = `select c.oid::int8 as oid, format('%I.%I', n.nspname, c.relname) as relation,
       coalesce(s.n_dead_tup, 0)::float8 as dead, coalesce(s.n_ins_since_vacuum, 0)::float8 as inserted,
       coalesce(s.n_mod_since_analyze, 0)::float8 as modified, coalesce(s.n_live_tup, 0)::float8 as live,
       greatest(c.reltuples, 0)::float8 as reltuples, age(c.relfrozenxid)::float8 as xid_age,
       (s.last_analyze is null and s.last_autoanalyze is null) as never_analyzed,
       ${setting('autovacuum_vacuum_threshold')} + ${setting('autovacuum_vacuum_scale_factor')} * greatest(c.reltuples, 0) as vacuum_threshold,
       nullif(${setting('autovacuum_vacuum_max_threshold')}, -1) as vacuum_max_threshold,
       nullif(${setting('autovacuum_vacuum_insert_threshold')}, -1)
         + ${setting('autovacuum_vacuum_insert_scale_factor')} * greatest(c.reltuples, 0) as insert_threshold,
       ${setting('autovacuum_analyze_threshold')} + ${setting('autovacuum_analyze_scale_factor')} * greatest(c.reltuples, 0) as analyze_threshold,
       coalesce($4::float8, pg_catalog.current_setting('vacuum_freeze_table_age')::float8) as freeze_age,
       ${setting('autovacuum_freeze_max_age')} as freeze_max_age, pg_catalog.current_setting('server_version_num')::int as version,
       (select case when not pg_catalog.has_schema_privilege(en.oid, 'USAGE') then null
                    when pg_catalog.has_function_privilege(pg_catalog.to_regprocedure(format('%I.pgstattuple(regclass)', en.nspname)), 'execute')
                     and pg_catalog.has_function_privilege(pg_catalog.to_regprocedure(format('%I.pgstatindex(regclass)', en.nspname)), 'execute')
                    then format('%I', en.nspname) end
          from pg_catalog.pg_extension e join pg_catalog.pg_namespace en on en.oid = e.extnamespace where e.extname = 'pgstattuple') as pgstattuple
  from pg_catalog.pg_class c join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  left join pg_catalog.pg_stat_all_tables s on s.relid = c.oid
 where c.relkind in ('r', 'm') and c.relpersistence <> 't' and c.relispopulated and ${TABLE_FILTER_SQL}`;

// Exact figures from pgstattuple's functions, in the extension's schema as the catalog quotes it (TABLES_SQL).
const exactSql = (schema: string, fn: 'pgstattuple' | 'pgstatindex') =>
  `select c.oid::int8 as oid, ${
    fn === 'pgstattuple'
      ? 'p.table_len::float8 as table_bytes, p.dead_tuple_count::float8 as dead, p.dead_tuple_len::float8 as dead_bytes, p.free_space::float8 as free_bytes'
      : 'p.index_size::float8 as bytes, p.leaf_pages::float8 as leaf_pages, p.internal_pages::float8 as internal_pages, p.avg_leaf_density::float8 as density, p.leaf_fragmentation::float8 as fragmentation'
  } from pg_catalog.pg_class c cross join lateral ${schema}.${fn}(c.oid) p where c.oid = any($1::oid[])`;

// A btree estimate in the manner of the well-known ioguix query, simplified: each leaf tuple takes
// MAXALIGN(8-byte header + average key width from pg_stats) + a 4-byte line pointer, pages are
// filled to fillfactor (default 90). Indexes with expressions or without column statistics are skipped.
const INDEXES_SQL = `select ci.oid::int8 as oid, format('%I.%I', ni.nspname, ci.relname) as relation, x.indisvalid as valid,
       ci.relname ~ '_cc(new|old)[0-9]*$' as concurrent_leftover,
       ci.relpages::float8 as pages, greatest(ci.reltuples, 0)::float8 as tuples,
       0 = any(x.indkey::int2[]) as has_expressions, x.indnkeyatts + 0 as key_columns,
       k.with_stats::int, k.width::float8,
       coalesce((select option_value::float8 from pg_catalog.pg_options_to_table(ci.reloptions) where option_name = 'fillfactor'), 90) as fillfactor,
       pg_catalog.current_setting('block_size')::float8 as block_size
  from pg_catalog.pg_index x
  join pg_catalog.pg_class ci on ci.oid = x.indexrelid
  join pg_catalog.pg_namespace ni on ni.oid = ci.relnamespace
  join pg_catalog.pg_am am on am.oid = ci.relam and am.amname = 'btree'
  join pg_catalog.pg_class c on c.oid = x.indrelid
  join pg_catalog.pg_namespace n on n.oid = c.relnamespace
  cross join lateral (select count(*) as with_stats, sum(st.avg_width) as width
     from pg_catalog.pg_attribute a join pg_catalog.pg_stats st
       on st.schemaname = n.nspname and st.tablename = c.relname and st.attname = a.attname and not st.inherited
    where a.attrelid = x.indrelid and a.attnum = any(x.indkey::int2[])) k
 where c.relkind in ('r', 'm') and c.relpersistence <> 't' and ${TABLE_FILTER_SQL}`;

type Numbers<K extends string> = Record<K, number>;
type TableRow = Numbers<'dead' | 'inserted' | 'modified' | 'live' | 'reltuples' | 'xid_age' | 'vacuum_threshold'> &
  Numbers<'analyze_threshold' | 'freeze_age' | 'freeze_max_age' | 'version'> & {
    oid: string;
    relation: string;
    never_analyzed: boolean;
    vacuum_max_threshold: number | null;
    insert_threshold: number | null;
    pgstattuple: string | null;
  };
type ExactTable = Numbers<'table_bytes' | 'dead' | 'dead_bytes' | 'free_bytes'>;
type ExactIndex = Numbers<'bytes' | 'leaf_pages' | 'internal_pages' | 'density' | 'fragmentation'>;
type IndexRow = Numbers<'pages' | 'tuples' | 'key_columns' | 'with_stats' | 'fillfactor' | 'block_size'> & {
  oid: string;
  relation: string;
  valid: boolean;
  concurrent_leftover: boolean;
  has_expressions: boolean;
  width: number | null;
};

export const ORDER: Record<CleanupAction, number> = { 'vacuum-freeze': 0, vacuum: 1, analyze: 2, reindex: 3 };
const round = (n: number) => Math.round(n);

function checkPlanOptions(options: unknown): PlanOptions {
  if (options === undefined) return {};
  if (typeof options !== 'object' || options === null) throw new MaintenanceInputError('plan options', 'must be an object');
  const o = options as PlanOptions;
  if (o.freezeAge !== undefined && (!Number.isInteger(o.freezeAge) || o.freezeAge < 0 || o.freezeAge > 2 ** 31))
    throw new MaintenanceInputError('freezeAge', 'must be an integer from 0 to 2^31');
  if (o.minIndexPages !== undefined && (!Number.isInteger(o.minIndexPages) || o.minIndexPages < 1))
    throw new MaintenanceInputError('minIndexPages', 'must be an integer >= 1');
  if (o.bloatRatio !== undefined && (typeof o.bloatRatio !== 'number' || !(o.bloatRatio > 0 && o.bloatRatio < 1)))
    throw new MaintenanceInputError('bloatRatio', 'must be a number between 0 and 1 (exclusive)');
  if (o.bloat !== undefined && o.bloat !== 'estimate' && o.bloat !== 'exact')
    throw new MaintenanceInputError('bloat', 'must be "estimate" or "exact"');
  return o;
}

const step = (action: CleanupAction, r: { oid: string; relation: string }, reason: string, numbers: CleanupStep['numbers']) => ({
  action,
  relation: r.relation,
  relationId: Number(r.oid),
  reason,
  numbers,
  sql: stepSql(action, r.relation),
});

function tableStep(r: TableRow, exact: ExactTable | undefined): CleanupStep | undefined {
  const vacuumThreshold =
    r.vacuum_max_threshold === null ? r.vacuum_threshold : Math.min(r.vacuum_threshold, r.vacuum_max_threshold);
  const dead = exact?.dead ?? r.dead;
  const numbers = {
    deadTuples: dead,
    vacuumThreshold: round(vacuumThreshold),
    insertsSinceVacuum: r.inserted,
    insertThreshold: r.insert_threshold === null ? null : round(r.insert_threshold),
    modifiedSinceAnalyze: r.modified,
    analyzeThreshold: round(r.analyze_threshold),
    reltuples: round(r.reltuples),
    xidAge: r.xid_age,
    freezeAge: r.freeze_age,
    freezeMaxAge: r.freeze_max_age,
    ...(exact && { tableBytes: exact.table_bytes, deadTupleBytes: exact.dead_bytes, freeBytes: exact.free_bytes }),
  };
  const reasons: string[] = [];
  let action: CleanupAction | undefined;
  if (r.xid_age > r.freeze_age) {
    action = 'vacuum-freeze';
    reasons.push(
      `transaction ID age ${r.xid_age} > ${r.freeze_age}; autovacuum forces an anti-wraparound vacuum at ${r.freeze_max_age}, the server stops at 2^31`,
    );
  }
  if (dead > vacuumThreshold) {
    action ??= 'vacuum';
    const counted = exact ? ` (counted by pgstattuple: ${exact.dead_bytes} of ${exact.table_bytes} bytes)` : '';
    reasons.push(
      `${dead} dead tuples${counted} > autovacuum threshold ${round(vacuumThreshold)} (for ${round(r.reltuples)} rows)`,
    );
  }
  if (r.insert_threshold !== null && r.inserted > r.insert_threshold) {
    action ??= 'vacuum';
    reasons.push(`${r.inserted} inserts since the last vacuum > autovacuum insert threshold ${round(r.insert_threshold)}`);
  }
  if (r.never_analyzed && (r.live > 0 || r.reltuples > 0 || r.modified > 0)) {
    action ??= 'analyze';
    reasons.push('never analyzed');
  } else if (r.modified > r.analyze_threshold) {
    action ??= 'analyze';
    reasons.push(`${r.modified} rows changed since the last analyze > autoanalyze threshold ${round(r.analyze_threshold)}`);
  }
  return action && step(action, r, reasons.join('; '), numbers);
}

/** Pages the index needs (expected) against what it has, measured by pgstatindex or estimated from pg_stats. */
function indexPages(r: IndexRow, exact: ExactIndex | undefined): { pages: number; expected: number; how: string } | undefined {
  if (exact) {
    // Leaves packed to fillfactor, plus the inner pages and the metapage.
    if (!Number.isFinite(exact.density) || exact.leaf_pages === 0) return undefined;
    const expected = Math.ceil((exact.leaf_pages * exact.density) / r.fillfactor) + exact.internal_pages + 1;
    return {
      pages: exact.bytes / r.block_size,
      expected,
      how: `measured by pgstatindex (average leaf density ${exact.density}%)`,
    };
  }
  if (r.has_expressions || r.with_stats < r.key_columns || r.width === null) return undefined;
  const tupleBytes = 8 * Math.ceil((8 + r.width) / 8) + 4;
  const usable = ((r.block_size - 24 - 16) * r.fillfactor) / 100;
  return { pages: r.pages, expected: Math.ceil((r.tuples * tupleBytes) / usable) + 1, how: 'estimated' };
}

function indexStep(r: IndexRow, minPages: number, bloatRatio: number, exact: ExactIndex | undefined): CleanupStep | undefined {
  if (r.concurrent_leftover) return undefined; // a failed REINDEX CONCURRENTLY's copy: drop it, do not rebuild it
  if (!r.valid)
    return step(
      'reindex',
      r,
      'invalid index (a failed CREATE INDEX CONCURRENTLY): not used by queries, still maintained on writes',
      { pages: r.pages },
    );
  const size = r.pages < minPages ? undefined : indexPages(r, exact);
  if (!size) return undefined;
  const ratio = 1 - size.expected / size.pages;
  if (ratio < bloatRatio) return undefined;
  return step(
    'reindex',
    r,
    `btree bloat ${size.how} at ${Math.round(ratio * 100)}%: ${size.pages} pages where about ${size.expected} would do`,
    {
      pages: size.pages,
      expectedPages: size.expected,
      bloatRatio: Math.round(ratio * 1000) / 1000,
      wastedBytes: (size.pages - size.expected) * r.block_size,
      ...(exact && { avgLeafDensity: exact.density, leafFragmentation: exact.fragmentation }),
    },
  );
}

/**
 * Plan a cleanup from the catalog and statistics in two statements, whatever the number of tables
 * (two more with `bloat: 'exact'`):
 * VACUUM FREEZE for tables past `freezeAge`; VACUUM (with ANALYZE) where dead tuples or inserts pass
 * autovacuum's own thresholds (per-table reloptions honoured); ANALYZE for tables never analyzed or
 * changed past the autoanalyze threshold; REINDEX CONCURRENTLY for invalid or bloated btree indexes.
 * Nothing locking or destructive (FULL, TRUNCATE, blocking REINDEX) is ever planned. Steps come in
 * execution order: freeze first, then by dead tuples, then analyze, then indexes by wasted bytes.
 */
export function planCleanup(db: MaintenanceTarget, options?: PlanOptions): Promise<CleanupPlan> {
  return plan(db, options).catch(typed);
}

async function plan(db: MaintenanceTarget, options?: PlanOptions): Promise<CleanupPlan> {
  const o = checkPlanOptions(options);
  const f = checkTableFilter(o);
  const params = [f.schemas, f.include, f.exclude];
  const tables = await db.query<TableRow>(TABLES_SQL, [...params, o.freezeAge ?? null]);
  const version = tables.rows[0]?.version;
  if (version !== undefined) requireServer(version);
  const indexes = await db.query<IndexRow>(INDEXES_SQL, params);
  const minPages = o.minIndexPages ?? 128;
  const schema = o.bloat === 'exact' ? tables.rows[0]?.pgstattuple : null;
  const exact = async <T>(fn: 'pgstattuple' | 'pgstatindex', oids: string[]) =>
    new Map(schema ? (await db.query<T & { oid: string }>(exactSql(schema, fn), [oids])).rows.map((r) => [r.oid, r]) : []);
  const exactTables = await exact<ExactTable>(
    'pgstattuple',
    tables.rows.map((r) => r.oid),
  );
  const exactIndexes = await exact<ExactIndex>(
    'pgstatindex',
    indexes.rows.filter((r) => r.valid && !r.concurrent_leftover && r.pages >= minPages).map((r) => r.oid),
  );
  const steps = [
    ...tables.rows.map((r) => tableStep(r, exactTables.get(r.oid))),
    ...indexes.rows.map((r) => indexStep(r, minPages, o.bloatRatio ?? 0.5, exactIndexes.get(r.oid))),
  ].filter((s): s is CleanupStep => s !== undefined);
  const weight = (s: CleanupStep) =>
    s.action === 'reindex' ? (s.numbers.wastedBytes ?? 0) : (s.numbers.deadTuples ?? 0) + (s.numbers.modifiedSinceAnalyze ?? 0);
  steps.sort(
    (a, b) =>
      ORDER[a.action] - ORDER[b.action] ||
      (a.action === 'vacuum-freeze' ? (b.numbers.xidAge ?? 0) - (a.numbers.xidAge ?? 0) : weight(b) - weight(a)),
  );
  const serverVersion =
    version ?? Number((await db.query<{ v: string }>(`select pg_catalog.current_setting('server_version_num') as v`)).rows[0]?.v);
  return { serverVersion, bloatSource: schema ? 'pgstattuple' : 'estimate', steps };
}

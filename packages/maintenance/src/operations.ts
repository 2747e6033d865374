import { MaintenanceError, RelationNotFoundError } from './errors.js';
import { parseRelationName, type RelationName, type ResolvedRelation, requirePrivilege, resolveRelation } from './names.js';
import {
  checkRunOptions,
  type MaintenanceTarget,
  type RunOptions,
  runStatement,
  type Session,
  type StatementResult,
  withSession,
} from './runner.js';
import {
  type AnalyzeOptions,
  analyzeSql,
  checkAnalyzeOptions,
  checkReindexOptions,
  checkTruncateOptions,
  checkVacuumOptions,
  type ReindexOptions,
  reindexSql,
  requireServer,
  type TruncateOptions,
  truncateSql,
  type VacuumOptions,
  vacuumSql,
} from './statements.js';

/** Options of {@link vacuumTable}: VACUUM's own plus how the call runs. */
export type VacuumTableOptions = VacuumOptions & RunOptions;
/** Options of {@link analyzeTable}. */
export type AnalyzeTableOptions = AnalyzeOptions & RunOptions;
/** Options of {@link reindexTable} and {@link reindexIndex}. */
export type ReindexTableOptions = ReindexOptions & RunOptions;
/** Options of {@link truncateTable}. */
export type TruncateTableOptions = TruncateOptions & RunOptions;

const RUN_KEYS = ['lockTimeoutMs', 'statementTimeoutMs', 'signal', 'onProgress', 'progressIntervalMs', 'logger'] as const;

/** Split caller options into statement options and run options, validating both before any SQL. */
function split<T>(options: unknown, check: (o: unknown) => T): [T, RunOptions] {
  if (options !== undefined && (typeof options !== 'object' || options === null)) return [check(options), {}];
  const own: Record<string, unknown> = {};
  const run: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(options ?? {}))
    ((RUN_KEYS as readonly string[]).includes(key) ? run : own)[key] = value;
  checkRunOptions(run);
  return [check(own), run as RunOptions];
}

async function resolveFor(s: Session, table: RelationName, kind: 'table' | 'index'): Promise<ResolvedRelation> {
  const relation = await resolveRelation(s.db, parseRelationName(table, kind), kind);
  requireServer(relation.serverVersion);
  return relation;
}

/**
 * `VACUUM` one table (the seed's `vacuum_table`), with every option the server's version supports.
 * The name is resolved through the catalog first; an option the server lacks is an
 * `UnsupportedOptionError` before the VACUUM is sent. With `skipLocked`, a locked table yields
 * `status: 'skipped'`; otherwise a lock held past `lockTimeoutMs` is a `LockNotAvailableError`.
 *
 * @throws MaintenanceInputError, RelationNotFoundError, UnsupportedOptionError, MaintenancePermissionError,
 *   LockNotAvailableError, MaintenanceTimeoutError, MaintenanceCanceledError, MaintenanceInTransactionError
 */
export async function vacuumTable(
  db: MaintenanceTarget,
  table: RelationName,
  options?: VacuumTableOptions,
): Promise<StatementResult> {
  parseRelationName(table);
  const [vacuum, run] = split(options, checkVacuumOptions);
  return withSession(db, run, async (s) => {
    const relation = await resolveFor(s, table, 'table');
    const sql = vacuumSql(relation.qualified, vacuum, relation.serverVersion);
    requirePrivilege(relation, 'maintain');
    return runStatement(s, relation.qualified, sql, run, true);
  });
}

/** `ANALYZE` one table (the seed's `analyze_table`). Same resolution, gating and errors as {@link vacuumTable}. */
export async function analyzeTable(
  db: MaintenanceTarget,
  table: RelationName,
  options?: AnalyzeTableOptions,
): Promise<StatementResult> {
  parseRelationName(table);
  const [analyze, run] = split(options, checkAnalyzeOptions);
  return withSession(db, run, async (s) => {
    const relation = await resolveFor(s, table, 'table');
    const sql = analyzeSql(relation.qualified, analyze, relation.serverVersion);
    requirePrivilege(relation, 'maintain');
    return runStatement(s, relation.qualified, sql, run, false);
  });
}

/** A REINDEX CONCURRENTLY failed; `leftovers` are the invalid `_ccnew`/`_ccold` indexes it left, and whether they were dropped. */
export interface ReindexLeftovers {
  readonly leftovers: readonly string[];
  readonly dropped: boolean;
}

// Invalid indexes REINDEX CONCURRENTLY leaves when interrupted are named <index>_ccnew[N] / _ccold[N].
const LEFTOVERS_SQL = `select format('%I.%I', n.nspname, c.relname) as name
  from pg_catalog.pg_index x join pg_catalog.pg_class c on c.oid = x.indexrelid join pg_catalog.pg_namespace n on n.oid = c.relnamespace
 where not x.indisvalid and c.relname ~ '_cc(new|old)[0-9]*$'
   and (x.indrelid = $1 or x.indrelid = (select indrelid from pg_catalog.pg_index where indexrelid = $1))`;

async function reindex(
  s: Session,
  relation: ResolvedRelation,
  kind: 'TABLE' | 'INDEX',
  options: ReindexOptions,
  run: RunOptions,
) {
  requirePrivilege(relation, 'maintain');
  const sql = reindexSql(kind, relation.qualified, options);
  if (options.concurrently === false) return runStatement(s, relation.qualified, sql, run, false);
  const { rows: before } = await s.db.query<{ name: string }>(LEFTOVERS_SQL, [relation.oid]);
  try {
    return await runStatement(s, relation.qualified, sql, run, true);
  } catch (err) {
    const known = new Set(before.map((r) => r.name));
    const { rows } = await s.db
      .query<{ name: string }>(LEFTOVERS_SQL, [relation.oid])
      .catch(() => ({ rows: [] as { name: string }[] }));
    const leftovers = rows.map((r) => r.name).filter((name) => !known.has(name));
    let dropped = false;
    if (leftovers.length > 0 && options.dropInvalidOnFailure !== false) {
      try {
        // Names from format('%I.%I'): quoted by the server. Lock timeout still applies.
        for (const name of leftovers) await s.db.query(`DROP INDEX CONCURRENTLY IF EXISTS ${name}`);
        dropped = true;
      } catch (dropErr) {
        s.log.warn({ err: dropErr, leftovers }, 'dropping the invalid indexes a failed REINDEX CONCURRENTLY left failed');
      }
    }
    if (err instanceof MaintenanceError && leftovers.length > 0) {
      Object.assign(err, { leftovers, dropped } satisfies ReindexLeftovers);
      s.log.warn({ relation: relation.qualified, leftovers, dropped }, 'REINDEX CONCURRENTLY failed and left invalid indexes');
    }
    throw err;
  }
}

/**
 * `REINDEX TABLE` (the seed's `reindex_table`), **CONCURRENTLY by default**; a blocking REINDEX
 * needs `concurrently: false`. If a concurrent run fails, the invalid indexes it left are dropped
 * (or, with `dropInvalidOnFailure: false`, kept) and listed on the error as `leftovers`.
 */
export async function reindexTable(
  db: MaintenanceTarget,
  table: RelationName,
  options?: ReindexTableOptions,
): Promise<StatementResult> {
  parseRelationName(table);
  const [own, run] = split(options, checkReindexOptions);
  return withSession(db, run, async (s) => reindex(s, await resolveFor(s, table, 'table'), 'TABLE', own, run));
}

/** `REINDEX INDEX`, CONCURRENTLY by default (see {@link reindexTable}). */
export async function reindexIndex(
  db: MaintenanceTarget,
  index: RelationName,
  options?: ReindexTableOptions,
): Promise<StatementResult> {
  parseRelationName(index, 'index');
  const [own, run] = split(options, checkReindexOptions);
  return withSession(db, run, async (s) => reindex(s, await resolveFor(s, index, 'index'), 'INDEX', own, run));
}

/**
 * `TRUNCATE TABLE` (the seed's `truncate_table`): `restartIdentity` and `cascade` only when asked.
 * Needs the TRUNCATE privilege (checked before sending). Runs inside the caller's transaction when
 * given an RLS scope's `tx` or a lease in a transaction.
 */
export async function truncateTable(
  db: MaintenanceTarget,
  table: RelationName,
  options?: TruncateTableOptions,
): Promise<StatementResult> {
  parseRelationName(table);
  const [own, run] = split(options, checkTruncateOptions);
  return withSession(db, run, async (s) => {
    const relation = await resolveFor(s, table, 'table');
    if (relation.kind === 'm')
      throw new RelationNotFoundError('table', 'name resolves to a materialized view, which cannot be truncated');
    requirePrivilege(relation, 'truncate');
    return runStatement(s, relation.qualified, truncateSql(relation.qualified, own), run, false);
  });
}

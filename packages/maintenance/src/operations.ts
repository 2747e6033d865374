import { AccountDbError, InsufficientPrivilegeError } from '@accountdb/pool';
import { MaintenanceInputError, RelationNotFoundError } from './errors.js';
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
  requireVersion,
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

/** Validate, lease a session, resolve the name through the catalog, then `run` with the parsed options. */
async function operate<T>(
  db: MaintenanceTarget,
  name: RelationName,
  kind: 'table' | 'index',
  options: unknown,
  check: (o: unknown) => T,
  run: (s: Session, relation: ResolvedRelation, own: T, runOptions: RunOptions) => Promise<StatementResult>,
): Promise<StatementResult> {
  const parsed = parseRelationName(name, kind);
  const [own, runOptions] = split(options, check);
  return withSession(db, runOptions, async (s) => {
    const relation = await resolveRelation(s.db, parsed, kind);
    requireServer(relation.serverVersion);
    return run(s, relation, own, runOptions);
  });
}

/**
 * `VACUUM` one table (the seed's `vacuum_table`), with every option the server's version supports.
 * The name is resolved through the catalog first; an option the server lacks is an
 * `UnsupportedOptionError` before the VACUUM is sent. With `skipLocked`, a locked table yields
 * `status: 'skipped'`; otherwise a lock held past `lockTimeoutMs` is a `LockNotAvailableError`.
 *
 * @throws MaintenanceInputError, RelationNotFoundError, UnsupportedOptionError; and pool's database errors:
 *   InsufficientPrivilegeError (checked before sending), LockNotAvailableError, StatementTimeoutError,
 *   QueryCanceledError (the signal), ActiveTransactionError (a lease inside a transaction), other SqlErrors
 */
export function vacuumTable(db: MaintenanceTarget, table: RelationName, options?: VacuumTableOptions): Promise<StatementResult> {
  return operate(db, table, 'table', options, checkVacuumOptions, (s, relation, own, run) => {
    const sql = vacuumSql(relation.qualified, own, relation.serverVersion);
    requirePrivilege(relation, 'maintain');
    return runStatement(s, relation.qualified, sql, run, true);
  });
}

/** `ANALYZE` one table (the seed's `analyze_table`). Same resolution, gating and errors as {@link vacuumTable}. */
export function analyzeTable(
  db: MaintenanceTarget,
  table: RelationName,
  options?: AnalyzeTableOptions,
): Promise<StatementResult> {
  return operate(db, table, 'table', options, checkAnalyzeOptions, (s, relation, own, run) => {
    const sql = analyzeSql(relation.qualified, own, relation.serverVersion);
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
 where not x.indisvalid and c.relname ~ '_cc(new|old)[0-9]*$' and x.indrelid = $1`;

// The database's default tablespace needs no CREATE privilege (as the server decides).
const TABLESPACE_SQL = `select format('%I', spcname) as quoted,
       pg_catalog.has_tablespace_privilege(oid, 'CREATE')
         or oid = (select dattablespace from pg_catalog.pg_database where datname = pg_catalog.current_database()) as can_create
  from pg_catalog.pg_tablespace where spcname = $1`;

async function resolveTablespace(s: Session, relation: ResolvedRelation, name: string): Promise<string> {
  requireVersion('tablespace', 14, relation.serverVersion);
  const { rows } = await s.db.query<{ quoted: string; can_create: boolean }>(TABLESPACE_SQL, [name]);
  const found = rows[0];
  if (!found) throw new MaintenanceInputError('tablespace', 'names no tablespace of this server');
  if (!found.can_create)
    throw new InsufficientPrivilegeError(`The current role has no CREATE privilege on tablespace ${found.quoted}`);
  return found.quoted;
}

/**
 * REINDEX a table or an index (CONCURRENTLY unless asked otherwise). When a concurrent run fails, the
 * invalid indexes it left on the table are dropped (or kept) and listed on the error.
 */
export async function reindex(
  s: Session,
  relation: ResolvedRelation,
  kind: 'TABLE' | 'INDEX',
  options: ReindexOptions,
  run: RunOptions,
): Promise<StatementResult> {
  requirePrivilege(relation, 'maintain');
  const tablespace = options.tablespace === undefined ? undefined : await resolveTablespace(s, relation, options.tablespace);
  const sql = reindexSql(kind, relation.qualified, options, tablespace);
  if (options.concurrently === false) return runStatement(s, relation.qualified, sql, run, false);
  const leftoversNow = async () =>
    (await s.db.query<{ name: string }>(LEFTOVERS_SQL, [relation.tableOid])).rows.map((r) => r.name);
  const known = new Set(await leftoversNow());
  try {
    return await runStatement(s, relation.qualified, sql, run, true);
  } catch (err) {
    const leftovers = (await leftoversNow().catch(() => [])).filter((name) => !known.has(name));
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
    if (AccountDbError.is(err) && leftovers.length > 0) {
      Object.assign(err, { leftovers, dropped } satisfies ReindexLeftovers);
      s.log.warn({ relation: relation.qualified, leftovers, dropped }, 'REINDEX CONCURRENTLY failed and left invalid indexes');
    }
    throw err;
  }
}

/**
 * `REINDEX TABLE` (the seed's `reindex_table`), **CONCURRENTLY by default**; a blocking REINDEX
 * needs `concurrently: false`. `tablespace` (14+) moves the rebuilt indexes. If a concurrent run
 * fails, the invalid indexes it left are dropped (or, with `dropInvalidOnFailure: false`, kept) and
 * listed on the error as `leftovers`.
 */
export function reindexTable(
  db: MaintenanceTarget,
  table: RelationName,
  options?: ReindexTableOptions,
): Promise<StatementResult> {
  return operate(db, table, 'table', options, checkReindexOptions, (s, relation, own, run) =>
    reindex(s, relation, 'TABLE', own, run),
  );
}

/** `REINDEX INDEX`, CONCURRENTLY by default (see {@link reindexTable}). */
export function reindexIndex(
  db: MaintenanceTarget,
  index: RelationName,
  options?: ReindexTableOptions,
): Promise<StatementResult> {
  return operate(db, index, 'index', options, checkReindexOptions, (s, relation, own, run) =>
    reindex(s, relation, 'INDEX', own, run),
  );
}

/**
 * `TRUNCATE TABLE` (the seed's `truncate_table`): `restartIdentity` and `cascade` only when asked.
 * Needs the TRUNCATE privilege (checked before sending). Runs inside the caller's transaction when
 * given an RLS scope's `tx` or a lease in a transaction.
 */
export function truncateTable(
  db: MaintenanceTarget,
  table: RelationName,
  options?: TruncateTableOptions,
): Promise<StatementResult> {
  return operate(db, table, 'table', options, checkTruncateOptions, (s, relation, own, run) => {
    if (relation.kind === 'm')
      throw new RelationNotFoundError('table', 'name resolves to a materialized view, which cannot be truncated');
    requirePrivilege(relation, 'truncate');
    return runStatement(s, relation.qualified, truncateSql(relation.qualified, own), run, false);
  });
}

import type { PoolConnection, Queryable } from '@accountdb/pool';
import { type ResolvedStatsOptions, resolveStatsOptions, type StatsOptions } from './options.js';

/**
 * What every statistics function runs on: a `Pool`, a lease (`PoolConnection`), or an RLS scope's
 * `tx`. A pool lends one connection for the call; a lease or scope is used as it is.
 */
export type StatsSource = Queryable;

/** An extension as the catalog records it. */
export interface ExtensionInfo {
  /** Schema it is installed in (catalog name). */
  readonly schema: string;
  readonly version: string;
}

/** What the server is and what this role may see; read once per call. */
export interface ServerInfo {
  /** `server_version_num`, e.g. 180004. */
  readonly versionNum: number;
  readonly database: string;
  readonly inRecovery: boolean;
  /** Superuser, or a member of `pg_read_all_stats` (part of `pg_monitor`): sees every session's query and every standby's figures. */
  readonly readAllStats: boolean;
  readonly pgstattuple: (ExtensionInfo & { executable: boolean }) | null;
  readonly pgStatStatements: (ExtensionInfo & { loaded: boolean }) | null;
  /** `pg_stat_database.stats_reset`: when this database's counters (and its per-table and per-index ones) restarted; null = never. */
  readonly statsReset: Date | null;
  /** Autovacuum and wraparound settings by name, as text. */
  readonly settings: Readonly<Record<string, string>>;
}

/** One call's view: the connection, validated options and the server facts. */
export interface StatsContext {
  readonly q: Queryable;
  readonly options: ResolvedStatsOptions;
  readonly server: ServerInfo;
  /** True inside a transaction block: the call's own read-only one, or the caller's (a scope's tx, a lease mid-transaction). */
  readonly inTransaction: boolean;
}

type TransactionState = 'I' | 'T' | 'E' | null;

interface SourceShape {
  withConnection?: <T>(fn: (conn: PoolConnection) => Promise<T>) => Promise<T>;
  client?: { getTransactionStatus?: () => string | null };
  getTransactionStatus?: () => string | null;
  transactionStatus?: () => TransactionState;
}

function transactionState(source: SourceShape): TransactionState | undefined {
  if (typeof source.transactionStatus === 'function') return source.transactionStatus();
  // A lease (its client), or a pg.Client itself.
  const fromClient = source.client?.getTransactionStatus?.() ?? source.getTransactionStatus?.();
  return fromClient === undefined ? undefined : (fromClient as TransactionState);
}

const SETTINGS = `autovacuum autovacuum_vacuum_threshold autovacuum_vacuum_scale_factor autovacuum_vacuum_insert_threshold
  autovacuum_vacuum_insert_scale_factor autovacuum_vacuum_max_threshold autovacuum_analyze_threshold autovacuum_analyze_scale_factor
  autovacuum_freeze_max_age autovacuum_multixact_freeze_max_age max_connections track_counts`.split(/\s+/);

// The `loaded` test: pg_stat_statements defines `pg_stat_statements.max` only when it is in
// shared_preload_libraries, and pg_settings lists it to every role.
const SERVER_INFO_SQL = `
select current_setting('server_version_num')::int as version_num, current_database() as database,
  pg_is_in_recovery() as in_recovery,
  pg_has_role(current_user, 'pg_read_all_stats', 'usage') as read_all_stats,
  (select json_build_object('schema', n.nspname, 'version', e.extversion,
     'executable', has_function_privilege(format('%I.pgstattuple(regclass)', n.nspname), 'execute')
       and has_function_privilege(format('%I.pgstatindex(regclass)', n.nspname), 'execute'))
   from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pgstattuple') as pgstattuple,
  (select json_build_object('schema', n.nspname, 'version', e.extversion,
     'loaded', exists (select from pg_settings where name = 'pg_stat_statements.max'))
   from pg_extension e join pg_namespace n on n.oid = e.extnamespace where e.extname = 'pg_stat_statements') as pg_stat_statements,
  (select json_object_agg(name, setting) from pg_settings where name = any($1::text[])) as settings,
  (select stats_reset from pg_stat_database where datname = current_database()) as stats_reset`;

async function readServerInfo(q: Queryable): Promise<ServerInfo> {
  const r = await oneRow(q, SERVER_INFO_SQL, [SETTINGS]);
  return {
    versionNum: r.version_num,
    database: r.database,
    inRecovery: r.in_recovery,
    readAllStats: r.read_all_stats,
    pgstattuple: r.pgstattuple,
    pgStatStatements: r.pg_stat_statements,
    settings: r.settings ?? {},
    statsReset: r.stats_reset ?? null,
  };
}

/**
 * Run `fn` with a context. Options are validated before any SQL. With `transaction`, the
 * statements share one read-only repeatable-read transaction so their figures agree; inside a
 * caller's transaction they run in that one instead.
 */
export async function runStats<T>(
  source: StatsSource,
  options: StatsOptions | undefined,
  fn: (ctx: StatsContext) => Promise<T>,
  { transaction = false } = {},
): Promise<T> {
  const resolved = resolveStatsOptions(options);
  const shape = source as SourceShape;
  if (typeof shape.withConnection === 'function' && transaction)
    return shape.withConnection((conn) => runOn(conn, resolved, fn, transaction));
  return runOn(source, resolved, fn, transaction);
}

async function runOn<T>(
  q: Queryable,
  options: ResolvedStatsOptions,
  fn: (ctx: StatsContext) => Promise<T>,
  transaction: boolean,
): Promise<T> {
  const state = transactionState(q as SourceShape);
  const inCallerTransaction = state === 'T' || state === 'E';
  const own = transaction && state === 'I';
  if (!own) return fn({ q, options, server: await readServerInfo(q), inTransaction: inCallerTransaction });
  await q.query('begin isolation level repeatable read read only');
  try {
    const result = await fn({ q, options, server: await readServerInfo(q), inTransaction: true });
    await q.query('commit');
    return result;
  } catch (err) {
    await q.query('rollback').catch(() => {});
    throw err;
  }
}

/**
 * The schema filter every query shares, on `n.nspname` (or another column naming a schema), bound as `$1` (exclude), `$2` (include or
 * null) and `$3` (include system schemas). Names are compared, never spliced into SQL.
 */
export const schemaFilter = (n = 'n.nspname') => `(${n} <> all($1::text[]) and case when $2::text[] is null
  then $3::boolean or (${n} not in ('pg_catalog', 'information_schema', 'pg_toast') and ${n} !~ '^pg_(toast_)?temp_')
  else ${n} = any($2::text[]) end)`;
export const SCHEMA_FILTER = schemaFilter();

/** The server's block size, for sizes from page counts. */
export const BLOCK = `current_setting('block_size')::int8`;

/** Values for {@link SCHEMA_FILTER}'s parameters. */
export function schemaParams(options: ResolvedStatsOptions): unknown[] {
  return [options.excludeSchemas, options.includeSchemas, options.includeSystemSchemas];
}

/** Quote a catalog name (an extension's schema) as an identifier; never used on caller input. */
export function quoteCatalogName(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The single row a one-row statement returns. */
// biome-ignore lint/suspicious/noExplicitAny: rows are shaped by the SQL beside each call
export async function oneRow(q: Queryable, text: string, values?: unknown[]): Promise<Record<string, any>> {
  const { rows } = await q.query(text, values);
  if (!rows[0]) throw new Error('statistics query returned no row');
  return rows[0];
}

/** int8/numeric come back as strings: a number, or null. */
export function num(value: unknown): number | null {
  if (value === null || value === undefined) return null;
  const n = typeof value === 'number' ? value : Number(value);
  return Number.isFinite(n) ? n : null;
}

/** Like {@link num}, for columns that are never null; 0 when they are. */
export function count(value: unknown): number {
  return num(value) ?? 0;
}

/** hits / (hits + reads), or null when there was no traffic. */
export function ratio(hits: number, reads: number): number | null {
  return hits + reads === 0 ? null : hits / (hits + reads);
}

/** A timestamp from JSON (text) or from a column (Date). */
export function date(value: unknown): Date | null {
  if (value === null || value === undefined) return null;
  return value instanceof Date ? value : new Date(String(value));
}

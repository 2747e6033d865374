import { oneRow, quoteCatalogName, runStats, type StatsContext, type StatsSource } from './context.js';
import type { StatsOptions } from './options.js';

/** One normalized statement from `pg_stat_statements`. */
export interface StatementStats {
  readonly queryId: string | null;
  /** Normalized text; null when this role may not see it (needs pg_read_all_stats for other roles' statements). */
  readonly query: string | null;
  readonly user: string | null;
  readonly calls: number;
  readonly totalMs: number;
  readonly meanMs: number;
  readonly rows: number;
  readonly sharedBlocksHit: number;
  readonly sharedBlocksRead: number;
}

/** Top statements by total execution time, or why there are none. */
export type QueryStats =
  | {
      readonly available: true;
      readonly statements: readonly StatementStats[];
      /** `pg_stat_statements_info.stats_reset` (extension 1.9+); null when unknown. */
      readonly statsReset: Date | null;
    }
  | { readonly available: false; readonly reason: string };

function atLeast(version: string, major: number, minor: number): boolean {
  const [a = 0, b = 0] = version.split('.').map(Number);
  return a > major || (a === major && b >= minor);
}

export async function fetchQueryStats(ctx: StatsContext): Promise<QueryStats> {
  const ext = ctx.server.pgStatStatements;
  if (!ext)
    return {
      available: false,
      reason: 'the pg_stat_statements extension is not installed in this database (CREATE EXTENSION pg_stat_statements)',
    };
  if (!ext.loaded)
    return {
      available: false,
      reason: 'pg_stat_statements is installed but not loaded: add it to shared_preload_libraries and restart the server',
    };
  const schema = quoteCatalogName(ext.schema);
  // Columns were renamed in extension 1.8 (PostgreSQL 13): total_time → total_exec_time.
  const [total, mean] = atLeast(ext.version, 1, 8) ? ['total_exec_time', 'mean_exec_time'] : ['total_time', 'mean_time'];
  const reset = atLeast(ext.version, 1, 9) ? `(select stats_reset from ${schema}.pg_stat_statements_info)` : 'null::timestamptz';
  const row = await oneRow(
    ctx.q,
    `select ${reset} as stats_reset, coalesce((select json_agg(json_build_object('queryId', s.queryid::text,
         'query', nullif(s.query, '<insufficient privilege>'), 'user', r.rolname, 'calls', s.calls, 'totalMs', s.${total},
         'meanMs', s.${mean}, 'rows', s.rows, 'sharedBlocksHit', s.shared_blks_hit, 'sharedBlocksRead', s.shared_blks_read)
         order by s.${total} desc)
       from (select * from ${schema}.pg_stat_statements s
             where s.dbid = (select oid from pg_database where datname = current_database())
             order by s.${total} desc limit $1) s left join pg_roles r on r.oid = s.userid), '[]') as statements`,
    [ctx.options.limit],
  );
  return { available: true, statsReset: row.stats_reset, statements: row.statements };
}

/** Top statements of this database by total execution time (at most `limit`), from pg_stat_statements when installed. */
export function getQueryStats(source: StatsSource, options?: StatsOptions): Promise<QueryStats> {
  return runStats(source, options, fetchQueryStats);
}

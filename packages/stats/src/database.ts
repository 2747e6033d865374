import { BLOCK, date, oneRow, ratio, runStats, type StatsContext, type StatsSource } from './context.js';
import type { StatsOptions } from './options.js';

/** The current database's size. */
export interface DatabaseSize {
  readonly database: string;
  readonly sizeBytes: number;
}

/** Transaction ID and MultiXact age of one database (how far it is from wraparound). */
export interface DatabaseWraparound {
  readonly database: string;
  /** `age(datfrozenxid)`: transactions since the oldest unfrozen one. */
  readonly xidAge: number;
  /** `mxid_age(datminmxid)`. */
  readonly mxidAge: number;
  /** xidAge / 2^31 (about 2.1 billion, where the server stops accepting writes). */
  readonly xidFractionToWraparound: number;
  readonly mxidFractionToWraparound: number;
}

/** Database-wide counters from `pg_stat_database`, with their reset time. */
export interface DatabaseCounters {
  readonly backends: number;
  readonly commits: number;
  readonly rollbacks: number;
  readonly blocksRead: number;
  readonly blocksHit: number;
  /** blocksHit / (blocksHit + blocksRead); null before any traffic. */
  readonly cacheHitRatio: number | null;
  readonly deadlocks: number;
  readonly tempBytes: number;
  readonly conflicts: number;
  /** When these counters (and the per-table and per-index counters of this database) were last reset; null = never. */
  readonly statsReset: Date | null;
}

/** Checkpoint counters: `pg_stat_checkpointer` (PostgreSQL 17+) or `pg_stat_bgwriter` (13-16). */
export interface CheckpointCounters {
  readonly timed: number;
  readonly requested: number;
  readonly statsReset: Date | null;
}

/** Everything `pg_database`/`pg_stat_database` say, read in one statement. */
export interface DatabaseFacts {
  readonly size: DatabaseSize;
  readonly counters: DatabaseCounters;
  readonly databases: readonly DatabaseWraparound[];
  readonly checkpoints: CheckpointCounters;
  readonly takenAt: Date;
}

const WRAP_LIMIT = 2 ** 31;

/** The database's size: its files, or with `sizes: 'estimate'` its relations' page counts (shared catalogs are not its own). */
const databaseBytes = (ctx: StatsContext) =>
  ctx.options.sizes === 'exact'
    ? 'pg_database_size(current_database())::float8'
    : `((select sum(relpages) from pg_class where not relisshared) * ${BLOCK})::float8`;

export async function fetchDatabase(ctx: StatsContext): Promise<DatabaseFacts> {
  const checkpoints =
    ctx.server.versionNum >= 170000
      ? 'select num_timed as timed, num_requested as requested, stats_reset as "statsReset" from pg_stat_checkpointer'
      : 'select checkpoints_timed as timed, checkpoints_req as requested, stats_reset as "statsReset" from pg_stat_bgwriter';
  const r = await oneRow(
    ctx.q,
    `select current_database() as database, ${databaseBytes(ctx)} as size_bytes, now() as taken_at,
      (select row_to_json(d) from (select numbackends as backends, xact_commit as commits, xact_rollback as rollbacks,
         blks_read as "blocksRead", blks_hit as "blocksHit", deadlocks, temp_bytes as "tempBytes", conflicts,
         stats_reset as "statsReset" from pg_stat_database where datname = current_database()) d) as counters,
      (select json_agg(json_build_object('database', datname, 'xidAge', age(datfrozenxid), 'mxidAge', mxid_age(datminmxid),
         'xidFractionToWraparound', age(datfrozenxid) / ${WRAP_LIMIT}.0, 'mxidFractionToWraparound', mxid_age(datminmxid) / ${WRAP_LIMIT}.0)
         order by age(datfrozenxid) desc) from pg_database where datallowconn) as databases,
      (select row_to_json(c) from (${checkpoints}) c) as checkpoints`,
  );
  const c = r.counters;
  return {
    size: { database: r.database, sizeBytes: r.size_bytes },
    counters: { ...c, cacheHitRatio: ratio(c.blocksHit, c.blocksRead), statsReset: date(c.statsReset) },
    databases: r.databases,
    takenAt: r.taken_at,
    checkpoints: { ...r.checkpoints, statsReset: date(r.checkpoints.statsReset) },
  };
}

/** Size of the current database in bytes (`pg_database_size`). */
export function getDatabaseSize(source: StatsSource, options?: StatsOptions): Promise<DatabaseSize> {
  return runStats(source, options, async (ctx) => {
    const r = await oneRow(ctx.q, `select current_database() as database, ${databaseBytes(ctx)} as "sizeBytes"`);
    return r as DatabaseSize;
  });
}

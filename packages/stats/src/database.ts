import { count, date, oneRow, ratio, runStats, type StatsContext, type StatsSource } from './context.js';
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

export async function fetchDatabase(ctx: StatsContext): Promise<DatabaseFacts> {
  const checkpoints =
    ctx.server.versionNum >= 170000
      ? 'select num_timed as timed, num_requested as requested, stats_reset from pg_stat_checkpointer'
      : 'select checkpoints_timed as timed, checkpoints_req as requested, stats_reset from pg_stat_bgwriter';
  const r = await oneRow(
    ctx.q,
    `
    select current_database() as database, pg_database_size(current_database()) as size_bytes, now() as taken_at,
      (select row_to_json(d) from (select numbackends, xact_commit, xact_rollback, blks_read, blks_hit, deadlocks,
         temp_bytes, conflicts, stats_reset from pg_stat_database where datname = current_database()) d) as counters,
      (select json_agg(json_build_object('database', datname, 'xid_age', age(datfrozenxid), 'mxid_age', mxid_age(datminmxid))
         order by age(datfrozenxid) desc) from pg_database where datallowconn) as databases,
      (select row_to_json(c) from (${checkpoints}) c) as checkpoints`,
  );
  const c = r.counters ?? {};
  const blocksRead = count(c.blks_read);
  const blocksHit = count(c.blks_hit);
  return {
    size: { database: r.database, sizeBytes: count(r.size_bytes) },
    counters: {
      backends: count(c.numbackends),
      commits: count(c.xact_commit),
      rollbacks: count(c.xact_rollback),
      blocksRead,
      blocksHit,
      cacheHitRatio: ratio(blocksHit, blocksRead),
      deadlocks: count(c.deadlocks),
      tempBytes: count(c.temp_bytes),
      conflicts: count(c.conflicts),
      statsReset: date(c.stats_reset),
    },
    databases: (r.databases ?? []).map((d: { database: string; xid_age: number; mxid_age: number }) => ({
      database: d.database,
      xidAge: d.xid_age,
      mxidAge: d.mxid_age,
      xidFractionToWraparound: d.xid_age / WRAP_LIMIT,
      mxidFractionToWraparound: d.mxid_age / WRAP_LIMIT,
    })),
    takenAt: r.taken_at,
    checkpoints: {
      timed: count(r.checkpoints?.timed),
      requested: count(r.checkpoints?.requested),
      statsReset: date(r.checkpoints?.stats_reset),
    },
  };
}

/** Size of the current database in bytes (`pg_database_size`). */
export function getDatabaseSize(source: StatsSource, options?: StatsOptions): Promise<DatabaseSize> {
  return runStats(source, options, async (ctx) => {
    const r = await oneRow(ctx.q, 'select current_database() as database, pg_database_size(current_database()) as size_bytes');
    return { database: r.database, sizeBytes: count(r.size_bytes) };
  });
}

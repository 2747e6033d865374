import * as activity from './activity.js';
import * as bloat from './bloat.js';
import { runStats, type ServerInfo, type StatsSource } from './context.js';
import * as database from './database.js';
import * as indexes from './indexes.js';
import type { StatsOptions } from './options.js';
import { fetchReplication, type Replication } from './replication.js';
import { fetchQueryStats, type QueryStats } from './statements.js';
import * as tables from './tables.js';
import { type TableVacuumStats, toVacuumStats } from './vacuum.js';
import * as wraparound from './wraparound.js';

/** Everything at once, read in one read-only transaction so the figures agree. */
export interface DatabaseStats {
  /** When the snapshot was taken (server clock). */
  readonly takenAt: Date;
  readonly server: Pick<ServerInfo, 'versionNum' | 'inRecovery' | 'readAllStats'>;
  /** How sizes were read (the `sizes` option): from the files, or from the catalog's page counts. */
  readonly sizes: 'exact' | 'estimate';
  readonly size: database.DatabaseSize;
  readonly counters: database.DatabaseCounters;
  readonly checkpoints: database.CheckpointCounters;
  readonly tableSizes: readonly tables.TableSize[];
  readonly rowCounts: readonly tables.TableRowCount[];
  readonly indexUsage: readonly indexes.IndexUsage[];
  readonly unusedIndexes: readonly indexes.UnusedIndex[];
  readonly duplicateIndexes: readonly indexes.DuplicateIndex[];
  readonly invalidIndexes: readonly indexes.InvalidIndex[];
  readonly tableBloat: readonly bloat.Bloat[];
  readonly indexBloat: readonly bloat.Bloat[];
  readonly cacheHitRatios: indexes.CacheHitRatios;
  readonly connections: activity.Connections;
  readonly longRunningQueries: readonly activity.Session[];
  readonly blockedQueries: readonly activity.BlockingNode[];
  readonly wraparound: wraparound.Wraparound;
  readonly sequences: readonly wraparound.SequenceUsage[];
  readonly vacuum: readonly TableVacuumStats[];
  readonly replication: Replication;
  readonly queryStats: QueryStats;
}

/**
 * Every figure of this package in one read-only repeatable-read transaction, in a fixed number of
 * statements however many tables there are (at most 11: begin, server facts, database, tables,
 * indexes, table and index bloat, sessions, sequences, replication, pg_stat_statements, commit).
 * Row counts here are always the catalog's estimates.
 */
export function getDatabaseStats(source: StatsSource, options?: StatsOptions): Promise<DatabaseStats> {
  return runStats(
    source,
    options,
    async (ctx) => {
      const db = await database.fetchDatabase(ctx);
      const idx = await indexes.fetchIndexes(ctx);
      const tbl = await tables.fetchTables(ctx, idx); // index sizes summed from idx, not read twice
      const waste = await bloat.fetchBloat(ctx);
      const sessions = await activity.fetchSessions(ctx);
      const sequences = await wraparound.fetchSequences(ctx);
      const replication = await fetchReplication(ctx);
      const queryStats = await fetchQueryStats(ctx);
      const { versionNum, inRecovery, readAllStats, statsReset } = ctx.server;
      return {
        takenAt: db.takenAt,
        server: { versionNum, inRecovery, readAllStats },
        sizes: ctx.options.sizes,
        size: db.size,
        counters: db.counters,
        checkpoints: db.checkpoints,
        tableSizes: tables.toTableSizes(tbl, ctx),
        rowCounts: tables.toRowCounts(tbl),
        indexUsage: indexes.toIndexUsage(idx, statsReset),
        unusedIndexes: indexes.toUnusedIndexes(idx, statsReset),
        duplicateIndexes: indexes.toDuplicateIndexes(idx),
        invalidIndexes: indexes.toInvalidIndexes(idx),
        tableBloat: waste.tables,
        indexBloat: waste.indexes,
        cacheHitRatios: indexes.toCacheHitRatios(tbl, idx, statsReset),
        connections: activity.toConnections(sessions, ctx),
        longRunningQueries: activity.toLongRunning(sessions, ctx.options.longRunningMs),
        blockedQueries: activity.toBlockingTree(sessions),
        wraparound: wraparound.toWraparound(db.databases, tbl, ctx),
        sequences: wraparound.toSequenceUsage(sequences),
        vacuum: toVacuumStats(tbl, ctx.server),
        replication,
        queryStats,
      };
    },
    { transaction: true },
  );
}

import {
  type BlockingNode,
  type Connections,
  fetchSessions,
  type Session,
  toBlockingTree,
  toConnections,
  toLongRunning,
} from './activity.js';
import { type Bloat, byWaste, fetchIndexBloat, fetchTableBloat } from './bloat.js';
import { runStats, type ServerInfo, type StatsSource } from './context.js';
import { type CheckpointCounters, type DatabaseCounters, type DatabaseSize, fetchDatabase } from './database.js';
import {
  type CacheHitRatios,
  type DuplicateIndex,
  fetchIndexes,
  type IndexUsage,
  type InvalidIndex,
  toCacheHitRatios,
  toDuplicateIndexes,
  toIndexUsage,
  toInvalidIndexes,
  toUnusedIndexes,
  type UnusedIndex,
} from './indexes.js';
import type { StatsOptions } from './options.js';
import { fetchReplication, type Replication } from './replication.js';
import { fetchQueryStats, type QueryStats } from './statements.js';
import { fetchTables, type TableRowCount, type TableSize, toRowCounts, toTableSizes } from './tables.js';
import { type TableVacuumStats, toVacuumStats } from './vacuum.js';
import { fetchSequences, type SequenceUsage, toSequenceUsage, toWraparound, type Wraparound } from './wraparound.js';

/** Everything at once, read in one read-only transaction so the figures agree. */
export interface DatabaseStats {
  /** When the snapshot was taken (server clock). */
  readonly takenAt: Date;
  readonly server: Pick<ServerInfo, 'versionNum' | 'inRecovery' | 'readAllStats'>;
  readonly size: DatabaseSize;
  readonly counters: DatabaseCounters;
  readonly checkpoints: CheckpointCounters;
  readonly tableSizes: readonly TableSize[];
  readonly rowCounts: readonly TableRowCount[];
  readonly indexUsage: readonly IndexUsage[];
  readonly unusedIndexes: readonly UnusedIndex[];
  readonly duplicateIndexes: readonly DuplicateIndex[];
  readonly invalidIndexes: readonly InvalidIndex[];
  readonly tableBloat: readonly Bloat[];
  readonly indexBloat: readonly Bloat[];
  readonly cacheHitRatios: CacheHitRatios;
  readonly connections: Connections;
  readonly longRunningQueries: readonly Session[];
  readonly blockedQueries: readonly BlockingNode[];
  readonly wraparound: Wraparound;
  readonly sequences: readonly SequenceUsage[];
  readonly vacuum: readonly TableVacuumStats[];
  readonly replication: Replication;
  readonly queryStats: QueryStats;
}

/**
 * Every figure of this package in one read-only repeatable-read transaction, in a fixed number of
 * statements however many tables there are (at most 12: begin, server facts, database, tables,
 * indexes, table bloat, index bloat, sessions, sequences, replication, pg_stat_statements, commit).
 * Row counts here are always the catalog's estimates.
 */
export function getDatabaseStats(source: StatsSource, options?: StatsOptions): Promise<DatabaseStats> {
  return runStats(
    source,
    options,
    async (ctx) => {
      const database = await fetchDatabase(ctx);
      const indexes = await fetchIndexes(ctx);
      const indexBytes = new Map<string, number>();
      for (const i of indexes) {
        const key = JSON.stringify([i.schema, i.table]);
        indexBytes.set(key, (indexBytes.get(key) ?? 0) + i.sizeBytes);
      }
      const tables = (await fetchTables(ctx, { indexSizes: false })).map((t) => {
        const bytes = indexBytes.get(JSON.stringify([t.schema, t.name])) ?? 0;
        return { ...t, indexBytes: bytes, totalBytes: t.tableBytes + bytes };
      });
      const tableBloat = await fetchTableBloat(ctx);
      const indexBloat = await fetchIndexBloat(ctx);
      const sessions = await fetchSessions(ctx);
      const sequences = await fetchSequences(ctx);
      const replication = await fetchReplication(ctx);
      const queryStats = await fetchQueryStats(ctx);
      const reset = ctx.server.statsReset;
      return {
        takenAt: database.takenAt,
        server: { versionNum: ctx.server.versionNum, inRecovery: ctx.server.inRecovery, readAllStats: ctx.server.readAllStats },
        size: database.size,
        counters: database.counters,
        checkpoints: database.checkpoints,
        tableSizes: toTableSizes(tables, ctx),
        rowCounts: toRowCounts(tables),
        indexUsage: toIndexUsage(indexes, reset),
        unusedIndexes: toUnusedIndexes(indexes, reset),
        duplicateIndexes: toDuplicateIndexes(indexes),
        invalidIndexes: toInvalidIndexes(indexes),
        tableBloat: byWaste(tableBloat),
        indexBloat: byWaste(indexBloat),
        cacheHitRatios: toCacheHitRatios(tables, indexes, reset),
        connections: toConnections(sessions, ctx),
        longRunningQueries: toLongRunning(sessions, ctx.options.longRunningMs),
        blockedQueries: toBlockingTree(sessions),
        wraparound: toWraparound(database.databases, tables, ctx),
        sequences: toSequenceUsage(sequences),
        vacuum: toVacuumStats(tables, ctx.server),
        replication,
        queryStats,
      };
    },
    { transaction: true },
  );
}

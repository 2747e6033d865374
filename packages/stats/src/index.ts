// Database failures are pool's typed errors (one SQLSTATE table for every package).
export { StatementTimeoutError } from '@accountdb/pool';
export {
  type BlockingNode,
  type Connections,
  getBlockedQueries,
  getConnections,
  getLongRunningQueries,
  type Session,
} from './activity.js';
export { type Bloat, getIndexBloat, getTableBloat } from './bloat.js';
export type { ExtensionInfo, ServerInfo, StatsSource } from './context.js';
export {
  type CheckpointCounters,
  type DatabaseCounters,
  type DatabaseSize,
  type DatabaseWraparound,
  getDatabaseSize,
} from './database.js';
export { type DatabaseStats, getDatabaseStats } from './database-stats.js';
export { formatBytes } from './format.js';
export {
  type CacheHitRatios,
  type DuplicateIndex,
  getCacheHitRatios,
  getDuplicateIndexes,
  getIndexUsage,
  getInvalidIndexes,
  getUnusedIndexes,
  type IndexUsage,
  type InvalidIndex,
  type UnusedIndex,
} from './indexes.js';
export { type ResolvedStatsOptions, resolveStatsOptions, type StatsOptions } from './options.js';
export { getReplication, type Replication, type ReplicationSlot, type Standby } from './replication.js';
export { getQueryStats, type QueryStats, type StatementStats } from './statements.js';
export { getTableRowCounts, getTableSizes, type TableRowCount, type TableSize } from './tables.js';
export { getVacuumStats, type TableVacuumStats } from './vacuum.js';
export { getSequenceUsage, getWraparound, type SequenceUsage, type Wraparound } from './wraparound.js';

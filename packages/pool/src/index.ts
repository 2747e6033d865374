export {
  DEFAULTS,
  type HostPort,
  type LoadConfigOptions,
  loadConfig,
  type PoolConfig,
  type PoolConfigInput,
  parseDatabaseUrl,
  resolvePoolConfig,
  type SslMode,
  type TargetSessionAttrs,
} from './config.js';
export { type Database, isDatabase, isPoolConnection, isTransactionScope, type TransactionScope } from './database.js';
export {
  AccountDbError,
  type AccountDbErrorOptions,
  AcquireAbortedError,
  ConfigError,
  type ConfigProblem,
  ConnectionLostError,
  DatabaseUnavailableError,
  describeCause,
  HookError,
  PoolClosedError,
  PoolTimeoutError,
} from './errors.js';
export { type LogFn, type Logger, packageLogger, silentLogger } from './logger.js';
export {
  type AcquireOptions,
  type CloseOptions,
  type CreatePoolOptions,
  createPool,
  type PgClient,
  Pool,
  type PoolConnection,
  type PoolEvents,
  type PoolHooks,
  type Queryable,
  type QueryConfig,
  type QueryResult,
  type RetryOptions,
} from './pool.js';
export { backoffDelay, isTransientConnectionError } from './retry.js';
export type { DestroyReason, LatencySummary, PoolStats } from './stats.js';

export {
  type BatchOptions,
  type BatchOutcome,
  type BatchStatement,
  isPreparedStatementError,
  MAX_PREPARED_PER_CONNECTION,
  type PreparedStatement,
} from './batch.js';
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
export { toClientConfig } from './connector.js';
export { type Database, isDatabase, isPoolConnection, isTransactionScope, type TransactionScope } from './database.js';
export {
  type AccountDbErrorCode,
  ActiveTransactionError,
  type CancelContext,
  CheckViolationError,
  type ConnectionLossReason,
  type ConnectionLostDetails,
  ConnectionLostError,
  type DatabaseErrorCode,
  DataExceptionError,
  DeadlockDetectedError,
  ExclusionViolationError,
  FeatureNotSupportedError,
  ForeignKeyViolationError,
  InFailedTransactionError,
  InsufficientPrivilegeError,
  LockNotAvailableError,
  type MappingContext,
  maskValues,
  NotNullViolationError,
  QueryCanceledError,
  SerializationFailureError,
  SqlError,
  type SqlErrorFields,
  SqlSyntaxError,
  StatementTimeoutError,
  TransactionRolledBackError,
  toDatabaseError,
  UndefinedColumnError,
  UndefinedTableError,
  UniqueViolationError,
} from './database-errors.js';
export {
  AccountDbError,
  type AccountDbErrorOptions,
  AcquireAbortedError,
  ConfigError,
  type ConfigProblem,
  DatabaseUnavailableError,
  HookError,
  InvalidQueryError,
  LeaseReleasedError,
  NestedTransactionError,
  PoolClosedError,
  type PoolErrorCode,
  type PoolTimeoutDetails,
  PoolTimeoutError,
} from './errors.js';
export { MAX_IDENTIFIER_BYTES, type QualifiedName } from './identifier.js';
export {
  isSubmittable,
  type PgClient,
  type PoolConnection,
  type Queryable,
  type QueryConfig,
  type QueryInput,
  type QueryResult,
  type Submittable,
} from './lease.js';
export { type LogFn, type Logger, silentLogger } from './logger.js';
export {
  type AcquireOptions,
  type CloseOptions,
  type CreatePoolOptions,
  createPool,
  Pool,
  type PoolEvents,
  type PoolHooks,
  type RetryOptions,
} from './pool.js';
export { createReadWritePools, type ReadWritePools, type ReadWritePoolsOptions } from './read-write-pools.js';
export { backoffDelay, isTransientConnectionError } from './retry.js';
export {
  type DestroyReason,
  LATENCY_BUCKETS_SECONDS,
  type LatencyHistogram,
  type LatencySummary,
  type PoolStats,
} from './stats.js';
export type { OpenTelemetrySpan, OpenTelemetryTracer, SpanAttributes } from './tracing.js';
export type { BeginOptions, IsolationLevel, TransactionStatus } from './transaction.js';

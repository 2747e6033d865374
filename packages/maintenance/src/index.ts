export {
  type CleanupEvent,
  type CleanupOptions,
  type CleanupReport,
  type CleanupStepResult,
  cleanupDatabase,
} from './cleanup.js';
export {
  ActiveTransactionError,
  InsufficientPrivilegeError,
  LockNotAvailableError,
  type MaintenanceErrorCode,
  MaintenanceInputError,
  QueryCanceledError,
  RelationNotFoundError,
  SqlError,
  StatementTimeoutError,
  UnsupportedOptionError,
} from './errors.js';
export { parseRelationName, type QualifiedName, type RelationName } from './names.js';
export {
  type AnalyzeTableOptions,
  analyzeTable,
  type ReindexLeftovers,
  type ReindexTableOptions,
  reindexIndex,
  reindexTable,
  type TruncateTableOptions,
  truncateTable,
  type VacuumTableOptions,
  vacuumTable,
} from './operations.js';
export { type CleanupAction, type CleanupPlan, type CleanupStep, type PlanOptions, planCleanup } from './plan.js';
export type { ProgressSample } from './progress.js';
export type { MaintenanceTarget, RunOptions, StatementResult } from './runner.js';
export {
  type AnalyzeOptions,
  MIN_SERVER_VERSION,
  type ReindexOptions,
  type TruncateOptions,
  type VacuumOptions,
} from './statements.js';
export { getTableNames, type TableFilter, type TableRef } from './tables.js';

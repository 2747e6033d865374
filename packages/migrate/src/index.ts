export { type CreatedMigration, type CreateMigrationOptions, createMigration } from './create.js';
export {
  type LockHolder,
  MigrationBlockedError,
  MigrationDriftError,
  MigrationError,
  type MigrationErrorCode,
  MigrationFailedError,
  MigrationFileError,
  MigrationLintError,
  MigrationLockTimeoutError,
  MigrationNoDownError,
  MigrationOutOfOrderError,
} from './errors.js';
export {
  checksumOf,
  type MigrationFile,
  type MigrationHeader,
  normalizeSql,
  readMigrations,
  type Statement,
  splitStatements,
} from './files.js';
export type { HistoryRow } from './history.js';
export { formatFinding, type LintFinding, type LintRule } from './lint.js';
export type { BaselineOptions, DownOptions, MigrationOptions, MigrationProgress, RunOptions, UpOptions } from './options.js';
export {
  type AppliedMigration,
  baselineMigrations,
  downMigrations,
  type MigrationPlan,
  type MigrationState,
  type MigrationStatus,
  type MigrationStatusEntry,
  migrationStatus,
  type PlannedMigration,
  planMigrations,
  type RepairResult,
  repairMigrations,
  runMigrations,
  validateMigrations,
} from './runner.js';

// Database failures are typed once, in @accountdb/pool (its SQLSTATE table and `toDatabaseError`):
// re-exported from there, so `instanceof` works whichever package a caller imports.
export {
  type CancelContext,
  CheckViolationError,
  DeadlockDetectedError,
  ExclusionViolationError,
  ForeignKeyViolationError,
  InsufficientPrivilegeError,
  type IsolationLevel,
  LockNotAvailableError,
  MAX_IDENTIFIER_BYTES,
  NotNullViolationError,
  QueryCanceledError,
  SerializationFailureError,
  SqlError,
  type SqlErrorFields,
  SqlSyntaxError,
  StatementTimeoutError,
  TransactionRolledBackError,
  UndefinedColumnError,
  UndefinedTableError,
  UniqueViolationError,
} from '@accountdb/pool';
export { CANCEL_GRACE_MS, type CancelOptions } from './cancel.js';
export type { Database } from './connection.js';
export { InvalidIdentifierError, QueryArgumentError } from './errors.js';
export { type ExecuteOptions, execute, type FetchMode, type Row } from './execute.js';
export {
  type ColumnInfo,
  columnExists,
  type ForeignKeyAction,
  type ForeignKeyInfo,
  getTableInfo,
  type IndexInfo,
  type RelationKind,
  type TableInfo,
  tableExists,
} from './introspection.js';
export type { QualifiedName, TableName } from './names.js';
export { quoteIdentifier, SqlFragment, sql } from './sql.js';
export type { Query } from './statement.js';
export { type StreamOptions, stream } from './stream.js';
export {
  type ExecuteInTransactionOptions,
  executeInTransaction,
  type TransactionOptions,
  transaction,
} from './transaction.js';

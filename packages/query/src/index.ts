export { type IsolationLevel, MAX_IDENTIFIER_BYTES } from '@accountdb/pool';
export { CANCEL_GRACE_MS, type CancelOptions } from './cancel.js';
export type { Database } from './connection.js';
export {
  type CancelContext,
  CheckViolationError,
  DeadlockDetectedError,
  ExclusionViolationError,
  ForeignKeyViolationError,
  InsufficientPrivilegeError,
  InvalidIdentifierError,
  LockNotAvailableError,
  NotNullViolationError,
  QueryArgumentError,
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
} from './errors.js';
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

import { AccountDbError, isTransientConnectionError } from '@accountdb/pool';

/** The structured fields PostgreSQL reports with an error (pg's `DatabaseError`), minus anything that echoes values. */
export interface SqlErrorFields {
  /** SQLSTATE, e.g. `23505`. */
  readonly sqlstate: string;
  readonly severity?: string | undefined;
  readonly schema?: string | undefined;
  readonly table?: string | undefined;
  readonly column?: string | undefined;
  readonly constraint?: string | undefined;
  readonly dataType?: string | undefined;
  readonly hint?: string | undefined;
  readonly routine?: string | undefined;
}

/**
 * A statement failed on the server. Subclasses exist only where callers branch. The message is the
 * server's (for data exceptions, class 22, with quoted values masked), never the query parameters.
 *
 * `detail` is kept but non-enumerable: PostgreSQL puts row values in it (`Key (email)=(a@b.c) already
 * exists`), which are often the caller's parameters, so it never reaches the message, `JSON.stringify`
 * or a logger's error serializer; read it explicitly when you need it. The driver error is not attached
 * as `cause` for the same reason; every structured field of it is copied here.
 */
export class SqlError extends AccountDbError implements SqlErrorFields {
  readonly sqlstate: string;
  readonly severity: string | undefined;
  readonly schema: string | undefined;
  readonly table: string | undefined;
  readonly column: string | undefined;
  readonly constraint: string | undefined;
  readonly dataType: string | undefined;
  readonly hint: string | undefined;
  readonly routine: string | undefined;
  /** Server `DETAIL` (may contain row values; non-enumerable, never in `message`). */
  declare readonly detail: string | undefined;

  constructor(code: string, message: string, fields: SqlErrorFields, detail?: string, cause?: unknown) {
    super(code, message, cause === undefined ? {} : { cause });
    this.sqlstate = fields.sqlstate;
    this.severity = fields.severity;
    this.schema = fields.schema;
    this.table = fields.table;
    this.column = fields.column;
    this.constraint = fields.constraint;
    this.dataType = fields.dataType;
    this.hint = fields.hint;
    this.routine = fields.routine;
    Object.defineProperty(this, 'detail', { value: detail, enumerable: false });
  }
}

/** 23505: a unique index or constraint rejected a duplicate. */
export class UniqueViolationError extends SqlError {
  declare readonly code: 'UNIQUE_VIOLATION';
}
/** 23503: a foreign key has no referenced row, or a referenced row is still in use. */
export class ForeignKeyViolationError extends SqlError {
  declare readonly code: 'FOREIGN_KEY_VIOLATION';
}
/** 23502: NULL in a NOT NULL column. */
export class NotNullViolationError extends SqlError {
  declare readonly code: 'NOT_NULL_VIOLATION';
}
/** 23514: a CHECK constraint failed. */
export class CheckViolationError extends SqlError {
  declare readonly code: 'CHECK_VIOLATION';
}
/** 23P01: an EXCLUDE constraint failed. */
export class ExclusionViolationError extends SqlError {
  declare readonly code: 'EXCLUSION_VIOLATION';
}
/** 40001: the transaction could not be serialized; retrying it may succeed (`transaction` does). */
export class SerializationFailureError extends SqlError {
  declare readonly code: 'SERIALIZATION_FAILURE';
}
/** 40P01: the server broke a deadlock by aborting this transaction; retrying it may succeed. */
export class DeadlockDetectedError extends SqlError {
  declare readonly code: 'DEADLOCK_DETECTED';
}
/** 55P03: a lock could not be taken (`NOWAIT`, `SKIP LOCKED` misuse, or `lock_timeout`). */
export class LockNotAvailableError extends SqlError {
  declare readonly code: 'LOCK_NOT_AVAILABLE';
}
/** 57014 from a timeout: `timeoutMs` (ours) or the server's `statement_timeout`. */
export class StatementTimeoutError extends SqlError {
  declare readonly code: 'STATEMENT_TIMEOUT';
}
/** 57014 from a cancel request: an aborted `AbortSignal`, or someone's `pg_cancel_backend`. */
export class QueryCanceledError extends SqlError {
  declare readonly code: 'QUERY_CANCELED';
}
/** 42501: the role lacks a privilege (or RLS `WITH CHECK` rejected the row). */
export class InsufficientPrivilegeError extends SqlError {
  declare readonly code: 'INSUFFICIENT_PRIVILEGE';
}
/** 42P01: no such table or view (also thrown by `getTableInfo` when a name does not resolve). */
export class UndefinedTableError extends SqlError {
  declare readonly code: 'UNDEFINED_TABLE';
}
/** 42703: no such column. */
export class UndefinedColumnError extends SqlError {
  declare readonly code: 'UNDEFINED_COLUMN';
}
/** 42601: the SQL text does not parse. */
export class SqlSyntaxError extends SqlError {
  declare readonly code: 'SYNTAX_ERROR';
}

/** An argument was rejected before any SQL ran (bad fetch mode, count, timeout, params). */
export class QueryArgumentError extends AccountDbError {
  declare readonly code: 'INVALID_ARGUMENT';

  constructor(message: string) {
    super('INVALID_ARGUMENT', message);
  }
}

/** A table, schema or column name cannot be a PostgreSQL identifier. Thrown before any SQL runs. */
export class InvalidIdentifierError extends AccountDbError {
  declare readonly code: 'INVALID_IDENTIFIER';

  constructor(reason: string) {
    super('INVALID_IDENTIFIER', `Invalid identifier: ${reason}`);
  }
}

type SqlErrorClass = new (code: string, message: string, fields: SqlErrorFields, detail?: string, cause?: unknown) => SqlError;

const BY_SQLSTATE: Record<string, [SqlErrorClass, string]> = {
  '23505': [UniqueViolationError, 'UNIQUE_VIOLATION'],
  '23503': [ForeignKeyViolationError, 'FOREIGN_KEY_VIOLATION'],
  '23502': [NotNullViolationError, 'NOT_NULL_VIOLATION'],
  '23514': [CheckViolationError, 'CHECK_VIOLATION'],
  '23P01': [ExclusionViolationError, 'EXCLUSION_VIOLATION'],
  '40001': [SerializationFailureError, 'SERIALIZATION_FAILURE'],
  '40P01': [DeadlockDetectedError, 'DEADLOCK_DETECTED'],
  '55P03': [LockNotAvailableError, 'LOCK_NOT_AVAILABLE'],
  '42501': [InsufficientPrivilegeError, 'INSUFFICIENT_PRIVILEGE'],
  '42P01': [UndefinedTableError, 'UNDEFINED_TABLE'],
  '42703': [UndefinedColumnError, 'UNDEFINED_COLUMN'],
  '42601': [SqlSyntaxError, 'SYNTAX_ERROR'],
};

/** Why we canceled a statement ourselves, so 57014 can be reported as what the caller asked for. */
export interface CancelContext {
  readonly reason: 'timeout' | 'signal';
  readonly timeoutMs?: number | undefined;
}

interface DriverErrorShape {
  code?: unknown;
  message?: unknown;
  severity?: string;
  schema?: string;
  table?: string;
  column?: string;
  constraint?: string;
  dataType?: string;
  hint?: string;
  routine?: string;
  detail?: string;
}

const SQLSTATE = /^[0-9A-Z]{5}$/;

/**
 * THE mapping from a driver error to a typed error: every other function in this package goes through
 * it. A pg `DatabaseError` (anything with a SQLSTATE `code`) becomes a {@link SqlError} subclass;
 * anything else is returned unchanged, and so are connection-level failures (class 08, 57P01-57P03,
 * 53300) so that the pool's `isTransientConnectionError` and `withConnectionRetry` still see them.
 */
export function toSqlError(err: unknown, canceled?: CancelContext): unknown {
  if (err instanceof SqlError || typeof err !== 'object' || err === null) return err;
  const e = err as DriverErrorShape;
  // Server errors always carry a severity; that keeps 5-letter errno codes such as EPERM out.
  if (typeof e.code !== 'string' || !SQLSTATE.test(e.code) || typeof e.severity !== 'string' || AccountDbError.is(err))
    return err;
  if (isTransientConnectionError(err)) return err;
  const sqlstate = e.code;
  const fields: SqlErrorFields = {
    sqlstate,
    severity: e.severity,
    schema: e.schema,
    table: e.table,
    column: e.column,
    constraint: e.constraint,
    dataType: e.dataType,
    hint: e.hint,
    routine: e.routine,
  };
  let message = typeof e.message === 'string' ? e.message : `SQLSTATE ${sqlstate}`;
  // Data exceptions quote the offending input (`invalid input syntax for type integer: "abc"`).
  if (sqlstate.startsWith('22')) message = message.replace(/"[^"]*"/g, '"…"').replace(/0x[0-9a-f]{2}( 0x[0-9a-f]{2})*/gi, '0x…');
  if (sqlstate === '57014') {
    const timedOut = canceled ? canceled.reason === 'timeout' : /statement timeout/i.test(message);
    if (timedOut) {
      const text = canceled?.timeoutMs !== undefined ? `Statement canceled after timeoutMs ${canceled.timeoutMs} ms` : message;
      return new StatementTimeoutError('STATEMENT_TIMEOUT', text, fields, e.detail);
    }
    const text = canceled ? 'Statement canceled by AbortSignal' : message;
    return new QueryCanceledError('QUERY_CANCELED', text, fields, e.detail);
  }
  const mapped = BY_SQLSTATE[sqlstate];
  if (mapped) return new mapped[0](mapped[1], message, fields, e.detail);
  return new SqlError('SQL_ERROR', message, fields, e.detail);
}

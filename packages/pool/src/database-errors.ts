import { AccountDbError, type PoolErrorCode } from './errors.js';

/**
 * The SQLSTATE table and the one mapping from a driver error to a typed error. Every package maps
 * through {@link toDatabaseError} (the pool's `query`, leases and batches already do): `.code` is
 * always ours, the server's SQLSTATE is `.sqlstate`, and values PostgreSQL quotes in messages are
 * masked here, once.
 */

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
 * A statement failed on the server. Subclasses exist where callers branch; each fixes its own `code`
 * (and its SQLSTATE when it has one), so nobody passes codes by hand. The message is the server's
 * with quoted values masked ({@link maskValues}), never the query parameters.
 *
 * `detail` is kept but non-enumerable: PostgreSQL puts row values in it (`Key (email)=(a@b.c) already
 * exists`), which are often the caller's parameters, so it never reaches the message, `JSON.stringify`
 * or a logger's error serializer; read it explicitly when you need it. The driver error is not attached
 * as `cause` for the same reason; every structured field of it is copied here.
 */
export class SqlError extends AccountDbError implements SqlErrorFields {
  /** The `code` instances of this class carry. */
  static readonly code: DatabaseErrorCode = 'SQL_ERROR';
  /** The SQLSTATE used when the error is raised by us rather than reported by the server. */
  static readonly sqlstate: string = 'XX000';
  declare readonly code: DatabaseErrorCode;
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

  /**
   * @param message already free of values (the mapper masks the server's)
   * @param fields the server's fields; without them, the class's own SQLSTATE
   * @param options `detail`: the server's DETAIL, kept non-enumerable; `cause`: never a driver error (it
   *   may carry values), only our own reasons (say, the abort reason of a signal)
   */
  constructor(message: string, fields?: SqlErrorFields, options: { detail?: string | undefined; cause?: unknown } = {}) {
    const kind = new.target as typeof SqlError;
    super(kind.code, message, options.cause === undefined ? {} : { cause: options.cause });
    const detail = options.detail;
    this.sqlstate = fields?.sqlstate ?? kind.sqlstate;
    this.severity = fields?.severity;
    this.schema = fields?.schema;
    this.table = fields?.table;
    this.column = fields?.column;
    this.constraint = fields?.constraint;
    this.dataType = fields?.dataType;
    this.hint = fields?.hint;
    this.routine = fields?.routine;
    Object.defineProperty(this, 'detail', { value: detail, enumerable: false });
  }
}

/** 23505: a unique index or constraint rejected a duplicate. */
export class UniqueViolationError extends SqlError {
  static override readonly code = 'UNIQUE_VIOLATION';
  static override readonly sqlstate = '23505';
  declare readonly code: 'UNIQUE_VIOLATION';
}
/** 23503: a foreign key has no referenced row, or a referenced row is still in use. */
export class ForeignKeyViolationError extends SqlError {
  static override readonly code = 'FOREIGN_KEY_VIOLATION';
  static override readonly sqlstate = '23503';
  declare readonly code: 'FOREIGN_KEY_VIOLATION';
}
/** 23502: NULL in a NOT NULL column. */
export class NotNullViolationError extends SqlError {
  static override readonly code = 'NOT_NULL_VIOLATION';
  static override readonly sqlstate = '23502';
  declare readonly code: 'NOT_NULL_VIOLATION';
}
/** 23514: a CHECK constraint failed. */
export class CheckViolationError extends SqlError {
  static override readonly code = 'CHECK_VIOLATION';
  static override readonly sqlstate = '23514';
  declare readonly code: 'CHECK_VIOLATION';
}
/** 23P01: an EXCLUDE constraint failed. */
export class ExclusionViolationError extends SqlError {
  static override readonly code = 'EXCLUSION_VIOLATION';
  static override readonly sqlstate = '23P01';
  declare readonly code: 'EXCLUSION_VIOLATION';
}
/** Class 22: a value was invalid for its type or operation (bad input syntax, division by zero, out of range). */
export class DataExceptionError extends SqlError {
  static override readonly code = 'DATA_EXCEPTION';
  static override readonly sqlstate = '22000';
  declare readonly code: 'DATA_EXCEPTION';
}
/** 40001: the transaction could not be serialized; retrying it may succeed (query's `transaction` does). */
export class SerializationFailureError extends SqlError {
  static override readonly code = 'SERIALIZATION_FAILURE';
  static override readonly sqlstate = '40001';
  declare readonly code: 'SERIALIZATION_FAILURE';
}
/** 40P01: the server broke a deadlock by aborting this transaction; retrying it may succeed. */
export class DeadlockDetectedError extends SqlError {
  static override readonly code = 'DEADLOCK_DETECTED';
  static override readonly sqlstate = '40P01';
  declare readonly code: 'DEADLOCK_DETECTED';
}
/** 55P03: a lock could not be taken (`NOWAIT`, or `lock_timeout` ran out). */
export class LockNotAvailableError extends SqlError {
  static override readonly code = 'LOCK_NOT_AVAILABLE';
  static override readonly sqlstate = '55P03';
  declare readonly code: 'LOCK_NOT_AVAILABLE';
}
/** 57014 from a timeout: a per-call `timeoutMs`, or the server's `statement_timeout`. */
export class StatementTimeoutError extends SqlError {
  static override readonly code = 'STATEMENT_TIMEOUT';
  static override readonly sqlstate = '57014';
  declare readonly code: 'STATEMENT_TIMEOUT';
}
/** 57014 from a cancel request: an aborted `AbortSignal`, `lease.cancel()`, or someone's `pg_cancel_backend`. */
export class QueryCanceledError extends SqlError {
  static override readonly code = 'QUERY_CANCELED';
  static override readonly sqlstate = '57014';
  declare readonly code: 'QUERY_CANCELED';
}
/** 42501: the role lacks a privilege, or a row failed an RLS policy's `WITH CHECK`. */
export class InsufficientPrivilegeError extends SqlError {
  static override readonly code = 'INSUFFICIENT_PRIVILEGE';
  static override readonly sqlstate = '42501';
  declare readonly code: 'INSUFFICIENT_PRIVILEGE';
}
/** 42P01: no such table or view. */
export class UndefinedTableError extends SqlError {
  static override readonly code = 'UNDEFINED_TABLE';
  static override readonly sqlstate = '42P01';
  declare readonly code: 'UNDEFINED_TABLE';
}
/** 42703: no such column. */
export class UndefinedColumnError extends SqlError {
  static override readonly code = 'UNDEFINED_COLUMN';
  static override readonly sqlstate = '42703';
  declare readonly code: 'UNDEFINED_COLUMN';
}
/** 42601: the SQL text does not parse. */
export class SqlSyntaxError extends SqlError {
  static override readonly code = 'SYNTAX_ERROR';
  static override readonly sqlstate = '42601';
  declare readonly code: 'SYNTAX_ERROR';
}
/** 25001: the statement cannot run inside a transaction block (VACUUM, CREATE INDEX CONCURRENTLY, …). */
export class ActiveTransactionError extends SqlError {
  static override readonly code = 'ACTIVE_TRANSACTION';
  static override readonly sqlstate = '25001';
  declare readonly code: 'ACTIVE_TRANSACTION';
}
/** 25P02: an earlier statement failed, so the transaction ignores everything until ROLLBACK. */
export class InFailedTransactionError extends SqlError {
  static override readonly code = 'IN_FAILED_TRANSACTION';
  static override readonly sqlstate = '25P02';
  declare readonly code: 'IN_FAILED_TRANSACTION';
}
/**
 * A COMMIT came back as ROLLBACK: a statement inside the transaction failed and the error was caught,
 * so nothing was committed.
 */
export class TransactionRolledBackError extends SqlError {
  static override readonly code = 'TRANSACTION_ROLLED_BACK';
  static override readonly sqlstate = '25P02';
  declare readonly code: 'TRANSACTION_ROLLED_BACK';
}
/** 0A000: the server does not support this (e.g. "cached plan must not change result type"). */
export class FeatureNotSupportedError extends SqlError {
  static override readonly code = 'FEATURE_NOT_SUPPORTED';
  static override readonly sqlstate = '0A000';
  declare readonly code: 'FEATURE_NOT_SUPPORTED';
}

const CLASSES = [
  UniqueViolationError,
  ForeignKeyViolationError,
  NotNullViolationError,
  CheckViolationError,
  ExclusionViolationError,
  SerializationFailureError,
  DeadlockDetectedError,
  LockNotAvailableError,
  InsufficientPrivilegeError,
  UndefinedTableError,
  UndefinedColumnError,
  SqlSyntaxError,
  ActiveTransactionError,
  InFailedTransactionError,
  FeatureNotSupportedError,
] as const;

/** THE table: SQLSTATE → class. 57014 and class 22 are decided in {@link toDatabaseError}. */
const BY_SQLSTATE: ReadonlyMap<string, typeof SqlError> = new Map(CLASSES.map((c) => [c.sqlstate, c]));

/** Every `code` a database failure can carry. */
export type DatabaseErrorCode =
  | 'SQL_ERROR'
  | 'UNIQUE_VIOLATION'
  | 'FOREIGN_KEY_VIOLATION'
  | 'NOT_NULL_VIOLATION'
  | 'CHECK_VIOLATION'
  | 'EXCLUSION_VIOLATION'
  | 'DATA_EXCEPTION'
  | 'SERIALIZATION_FAILURE'
  | 'DEADLOCK_DETECTED'
  | 'LOCK_NOT_AVAILABLE'
  | 'STATEMENT_TIMEOUT'
  | 'QUERY_CANCELED'
  | 'INSUFFICIENT_PRIVILEGE'
  | 'UNDEFINED_TABLE'
  | 'UNDEFINED_COLUMN'
  | 'SYNTAX_ERROR'
  | 'ACTIVE_TRANSACTION'
  | 'IN_FAILED_TRANSACTION'
  | 'FEATURE_NOT_SUPPORTED'
  | 'TRANSACTION_ROLLED_BACK'
  | 'CONNECTION_LOST';

/**
 * Every `code` an error from `@accountdb/pool` can carry, database failures included: the one union to
 * switch on. (Other packages add their own argument errors, e.g. `RLS_CONTEXT_INVALID`.)
 */
export type AccountDbErrorCode = PoolErrorCode | DatabaseErrorCode;

/** Why a connection counts as lost while a statement was on it. */
export type ConnectionLossReason =
  /** The server stayed silent past `queryTimeoutMs`; we closed the connection. */
  | 'timeout'
  /** The server ended the session (57P01 admin shutdown / `pg_terminate_backend`, 57P02 crash, 57P03, class 08). */
  | 'terminated'
  /** The socket closed or reset without a word from the server. */
  | 'closed';

/** Where the lost connection went, and what is known about the statement. */
export interface ConnectionLostDetails {
  readonly reason: ConnectionLossReason;
  /** The server's host ('' when the caller could not say). */
  readonly host: string;
  readonly port: number;
  /** The bound that ran out (`reason: 'timeout'`). */
  readonly timeoutMs?: number | undefined;
  /** The server's SQLSTATE when it said why (`reason: 'terminated'`). */
  readonly sqlstate?: string | undefined;
  /** See {@link ConnectionLostError.retrySafe}. Default false. */
  readonly retrySafe?: boolean | undefined;
}

/**
 * The connection was lost while a statement was on it: the server ended the session, the socket
 * closed, or the server stayed silent past `queryTimeoutMs`. The connection is never reused.
 * `retrySafe` says whether running the statement again cannot apply it twice.
 */
export class ConnectionLostError extends AccountDbError {
  declare readonly code: 'CONNECTION_LOST';
  readonly reason: ConnectionLossReason;
  readonly host: string;
  readonly port: number;
  readonly timeoutMs: number | undefined;
  readonly sqlstate: string | undefined;
  /**
   * True when the statement certainly did not take effect: the server reported that it ended the
   * session before the statement completed (its transaction rolled back) and the statement was not a
   * COMMIT, or nothing was sent. False when the outcome is unknown (a silent or reset connection, a
   * COMMIT whose reply was lost): retry only idempotent work then.
   */
  readonly retrySafe: boolean;

  constructor(details: ConnectionLostDetails, options: { cause?: unknown } = {}) {
    const { reason, host, port, timeoutMs } = details;
    const where = host === '' ? 'PostgreSQL' : `PostgreSQL at ${host}:${port}`;
    const what =
      reason === 'timeout'
        ? `No reply from ${where} for ${timeoutMs} ms while waiting on a query (queryTimeoutMs); the connection was closed.`
        : reason === 'terminated'
          ? `${where} ended the session while a statement ran${details.sqlstate ? ` (SQLSTATE ${details.sqlstate})` : ''}.`
          : `The connection to ${where} closed while a statement ran.`;
    const retry = details.retrySafe
      ? ' The statement did not take effect; it is safe to retry.'
      : ' The statement may or may not have taken effect; retry only idempotent work.';
    super('CONNECTION_LOST', what + retry, options);
    this.reason = reason;
    this.host = host;
    this.port = port;
    this.timeoutMs = timeoutMs;
    this.sqlstate = details.sqlstate;
    this.retrySafe = details.retrySafe ?? false;
  }
}

/** Why we canceled a statement ourselves, so 57014 is reported as what the caller asked for. */
export interface CancelContext {
  readonly reason: 'timeout' | 'signal';
  readonly timeoutMs?: number | undefined;
}

/** What {@link toDatabaseError} may know besides the error. */
export interface MappingContext {
  /** The statement was canceled by us (a timeout or a signal): 57014 says which. */
  readonly canceled?: CancelContext | undefined;
  /** The server the statement ran on: a lost connection names it. */
  readonly host?: { readonly host: string; readonly port: number } | undefined;
  /** The statement ended a transaction (COMMIT): a lost connection then never counts as safe to retry. */
  readonly committing?: boolean | undefined;
}

interface DriverError {
  code?: unknown;
  message?: unknown;
  severity?: unknown;
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
/** SQLSTATEs with which the server ends a session: shutdown, crash, starting up; class 08 is added by prefix. */
const SESSION_ENDED = new Set(['57P01', '57P02', '57P03', '57P05']);
/** pg's words for a socket that closed under a query, or a client already broken when asked. */
const SOCKET_CLOSED = /Connection terminated|Client has encountered a connection error|not queryable/i;
/** Socket errors that end a session under a statement (ECONNREFUSED belongs to connecting, not here). */
const SOCKET_CODES = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNABORTED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EHOSTDOWN',
]);
const NOT_SENT = /Client has encountered a connection error and is not queryable|Client was closed and is not queryable/i;

/**
 * Mask what PostgreSQL quotes from the input in a message: `invalid input syntax for type integer:
 * "abc"` → `…: "…"`, and byte sequences. Applied to every class-22 message, the one class that quotes
 * values; identifiers in other messages are the schema's, not the caller's data.
 */
export function maskValues(message: string): string {
  return message.replace(/"[^"]*"/g, '"…"').replace(/0x[0-9a-f]{2}( 0x[0-9a-f]{2})*/gi, '0x…');
}

/**
 * THE mapping from a driver error to a typed one. A server error becomes a {@link SqlError} subclass
 * (`code` ours, `sqlstate` the server's, values masked); a session ended by the server or a dropped
 * socket becomes a {@link ConnectionLostError}; an `AccountDbError` and anything that is not a database
 * failure (a value that cannot be serialised, a programming error) come back unchanged.
 */
export function toDatabaseError(err: unknown, context: MappingContext = {}): unknown {
  if (typeof err !== 'object' || err === null) return err;
  if (AccountDbError.is(err)) {
    // A cancel we asked for is reported as what the caller asked for, even if mapped before.
    if (context.canceled && (err as Partial<SqlError>).sqlstate === '57014' && err instanceof SqlError) {
      return canceledError(err.message, fieldsOf(err as DriverError, '57014'), err.detail, context.canceled);
    }
    return err;
  }
  const e = err as DriverError;
  const host = context.host ?? { host: '', port: 0 };
  const code = typeof e.code === 'string' ? e.code : undefined;
  // Server errors always carry a severity; that keeps 5-letter errno codes such as EPERM out.
  const sqlstate = code !== undefined && SQLSTATE.test(code) && typeof e.severity === 'string' ? code : undefined;
  if (sqlstate === undefined) {
    const text = typeof e.message === 'string' ? e.message : '';
    if (!(err instanceof Error) || !(SOCKET_CLOSED.test(text) || (code !== undefined && SOCKET_CODES.has(code)))) return err;
    return new ConnectionLostError(
      { reason: 'closed', host: host.host, port: host.port, retrySafe: NOT_SENT.test(text) },
      { cause: err },
    );
  }
  if (SESSION_ENDED.has(sqlstate) || sqlstate.startsWith('08')) {
    return new ConnectionLostError(
      { reason: 'terminated', host: host.host, port: host.port, sqlstate, retrySafe: context.committing !== true },
      { cause: err },
    );
  }
  const fields = fieldsOf(e, sqlstate);
  let message = typeof e.message === 'string' ? e.message : `SQLSTATE ${sqlstate}`;
  if (sqlstate.startsWith('22')) message = maskValues(message);
  if (sqlstate === '57014') return canceledError(message, fields, e.detail, context.canceled);
  const Kind = BY_SQLSTATE.get(sqlstate) ?? (sqlstate.startsWith('22') ? DataExceptionError : SqlError);
  return new Kind(message, fields, { detail: e.detail });
}

function canceledError(message: string, fields: SqlErrorFields, detail: string | undefined, canceled?: CancelContext): SqlError {
  const timedOut = canceled ? canceled.reason === 'timeout' : /statement timeout/i.test(message);
  if (timedOut) {
    const text = canceled?.timeoutMs !== undefined ? `Statement canceled after timeoutMs ${canceled.timeoutMs} ms` : message;
    return new StatementTimeoutError(text, fields, { detail });
  }
  return new QueryCanceledError(canceled ? 'Statement canceled by AbortSignal' : message, fields, { detail });
}

function fieldsOf(e: DriverError, sqlstate: string): SqlErrorFields {
  return {
    sqlstate,
    severity: typeof e.severity === 'string' ? e.severity : undefined,
    schema: e.schema,
    table: e.table,
    column: e.column,
    constraint: e.constraint,
    dataType: e.dataType,
    hint: e.hint,
    routine: e.routine,
  };
}

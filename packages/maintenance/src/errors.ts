import { AccountDbError, type AccountDbErrorOptions } from '@accountdb/pool';

/** Every `code` an `@accountdb/maintenance` error can carry. */
export type MaintenanceErrorCode =
  | 'MAINTENANCE_INVALID_INPUT'
  | 'MAINTENANCE_UNSUPPORTED_OPTION'
  | 'MAINTENANCE_RELATION_NOT_FOUND'
  | 'MAINTENANCE_PERMISSION_DENIED'
  | 'MAINTENANCE_LOCK_NOT_AVAILABLE'
  | 'MAINTENANCE_STATEMENT_TIMEOUT'
  | 'MAINTENANCE_CANCELED'
  | 'MAINTENANCE_IN_TRANSACTION'
  | 'MAINTENANCE_FAILED';

/**
 * An argument or option is invalid; thrown before any SQL is sent. `field` names the argument; the
 * message describes the value's shape, never the value (names may be hostile input).
 */
export class MaintenanceInputError extends AccountDbError {
  declare readonly code: 'MAINTENANCE_INVALID_INPUT';

  constructor(
    readonly field: string,
    problem: string,
  ) {
    super('MAINTENANCE_INVALID_INPUT', `${field} ${problem}`);
  }
}

/** The connected server's version lacks an option; thrown after the version lookup, before the statement. */
export class UnsupportedOptionError extends AccountDbError {
  declare readonly code: 'MAINTENANCE_UNSUPPORTED_OPTION';

  /**
   * @param option the option as named in our API, e.g. `processMain`
   * @param requiredVersion the first major version that has it, e.g. 16
   * @param serverVersion `server_version_num` of the connected server, e.g. 150013
   */
  constructor(
    readonly option: string,
    readonly requiredVersion: number,
    readonly serverVersion: number,
  ) {
    super(
      'MAINTENANCE_UNSUPPORTED_OPTION',
      `${option} needs PostgreSQL ${requiredVersion} or later; the server is ${Math.floor(serverVersion / 10000)} (${serverVersion})`,
    );
  }
}

/** No relation of the required kind has this name (after search_path resolution, when unqualified). */
export class RelationNotFoundError extends AccountDbError {
  declare readonly code: 'MAINTENANCE_RELATION_NOT_FOUND';

  constructor(
    readonly kind: 'table' | 'index',
    detail = 'does not exist or is not visible to this role',
  ) {
    super('MAINTENANCE_RELATION_NOT_FOUND', `The ${kind} ${detail}`);
  }
}

/** Fields of a failed maintenance statement. */
export interface MaintenanceFailure extends AccountDbErrorOptions {
  /** SQLSTATE when the server reported one. */
  sqlstate?: string | undefined;
  /** The relation as the catalog names it (quoted, schema-qualified), when known. */
  relation?: string | undefined;
}

/**
 * A maintenance statement failed on the server or its connection failed. Subclasses exist where a
 * caller branches (locked, timed out, canceled, not permitted, inside a transaction).
 */
export class MaintenanceError extends AccountDbError {
  declare readonly code: MaintenanceErrorCode;
  readonly sqlstate: string | undefined;
  readonly relation: string | undefined;

  constructor(message: string, failure: MaintenanceFailure = {}) {
    super(new.target.CODE, message, failure.cause === undefined ? {} : { cause: failure.cause });
    this.sqlstate = failure.sqlstate;
    this.relation = failure.relation;
  }

  /** The code this class fixes; subclasses override it. */
  static readonly CODE: MaintenanceErrorCode = 'MAINTENANCE_FAILED';
}

/** The role may not maintain (or truncate) this relation: not its owner and no MAINTAIN/TRUNCATE privilege. */
export class MaintenancePermissionError extends MaintenanceError {
  declare readonly code: 'MAINTENANCE_PERMISSION_DENIED';
  static override readonly CODE = 'MAINTENANCE_PERMISSION_DENIED';
}

/** `lock_timeout` ran out (SQLSTATE 55P03): another session holds a conflicting lock. Nothing was changed. */
export class LockNotAvailableError extends MaintenanceError {
  declare readonly code: 'MAINTENANCE_LOCK_NOT_AVAILABLE';
  static override readonly CODE = 'MAINTENANCE_LOCK_NOT_AVAILABLE';
}

/** `statementTimeoutMs` ran out (SQLSTATE 57014 from `statement_timeout`). */
export class MaintenanceTimeoutError extends MaintenanceError {
  declare readonly code: 'MAINTENANCE_STATEMENT_TIMEOUT';
  static override readonly CODE = 'MAINTENANCE_STATEMENT_TIMEOUT';
}

/** The `AbortSignal` fired; the running statement was canceled on the server (or never started). */
export class MaintenanceCanceledError extends MaintenanceError {
  declare readonly code: 'MAINTENANCE_CANCELED';
  static override readonly CODE = 'MAINTENANCE_CANCELED';
}

/** VACUUM or REINDEX CONCURRENTLY was given a connection inside a transaction block (SQLSTATE 25001). */
export class MaintenanceInTransactionError extends MaintenanceError {
  declare readonly code: 'MAINTENANCE_IN_TRANSACTION';
  static override readonly CODE = 'MAINTENANCE_IN_TRANSACTION';
}

const BY_SQLSTATE: Record<string, typeof MaintenanceError> = {
  '55P03': LockNotAvailableError,
  '42501': MaintenancePermissionError,
  '25001': MaintenanceInTransactionError,
};

/**
 * Map a driver error to a maintenance error. `canceled` says our own AbortSignal caused a 57014.
 * Only the server's message and SQLSTATE are kept: maintenance statements carry no parameters.
 */
export function toMaintenanceError(err: unknown, relation: string | undefined, canceled = false): AccountDbError {
  if (err instanceof MaintenanceError) return err;
  const sqlstate = (err as { sqlstate?: unknown } | null)?.sqlstate;
  if (AccountDbError.is(err) && typeof sqlstate !== 'string') return err;
  const message = err instanceof Error ? err.message : String(err);
  let ErrorClass = (typeof sqlstate === 'string' && BY_SQLSTATE[sqlstate]) || MaintenanceError;
  if (sqlstate === '57014') ErrorClass = canceled ? MaintenanceCanceledError : MaintenanceTimeoutError;
  return new ErrorClass(message, { sqlstate: typeof sqlstate === 'string' ? sqlstate : undefined, relation, cause: err });
}

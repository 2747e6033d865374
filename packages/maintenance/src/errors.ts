import { AccountDbError } from '@accountdb/pool';

// Database failures are typed once, in @accountdb/pool (its SQLSTATE table and `toDatabaseError`): the
// classes callers branch on are re-exported from there, so `instanceof` works whichever package is imported.
export {
  ActiveTransactionError,
  InsufficientPrivilegeError,
  LockNotAvailableError,
  QueryCanceledError,
  SqlError,
  StatementTimeoutError,
} from '@accountdb/pool';

/**
 * The `code`s of the argument errors `@accountdb/maintenance` adds; a database failure carries pool's
 * (`DatabaseErrorCode`).
 */
export type MaintenanceErrorCode =
  | 'MAINTENANCE_INVALID_INPUT'
  | 'MAINTENANCE_UNSUPPORTED_OPTION'
  | 'MAINTENANCE_RELATION_NOT_FOUND';

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

const BRAND = Symbol.for('@accountdb/error');

/** Every `code` the pool's own errors carry (database failures: `DatabaseErrorCode`). */
export type PoolErrorCode =
  | 'CONFIG_INVALID'
  | 'POOL_TIMEOUT'
  | 'DATABASE_UNAVAILABLE'
  | 'POOL_CLOSED'
  | 'ACQUIRE_ABORTED'
  | 'HOOK_FAILED'
  | 'LEASE_RELEASED'
  | 'INVALID_QUERY'
  | 'NESTED_TRANSACTION';

/** Options every AccountDB error accepts. */
export interface AccountDbErrorOptions {
  cause?: unknown;
}

/**
 * Root of every error the toolkit throws. `code` is a stable string literal to branch on;
 * `AccountDbError.is(x)` works across duplicate installs (it checks a `Symbol.for` brand, not the class).
 * Messages never contain passwords, connection strings or query parameter values.
 */
export class AccountDbError extends Error {
  readonly code: string;

  constructor(code: string, message: string, options: AccountDbErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.name = new.target.name;
    Object.defineProperty(this, BRAND, { value: true });
  }

  /** True for any AccountDB error, even one created by another copy of this package. */
  static is(value: unknown): value is AccountDbError {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[BRAND] === true;
  }
}

/** One invalid configuration value. */
export interface ConfigProblem {
  /** The environment variable or option name, e.g. `DB_MAX_CONNECTIONS` or `maxConnections`. */
  variable: string;
  /** What is wrong, e.g. `must be an integer >= 1, got "ten"`. Never includes a password. */
  message: string;
}

/** Configuration is invalid. Lists every problem at once, each by variable name. */
export class ConfigError extends AccountDbError {
  declare readonly code: 'CONFIG_INVALID';
  readonly problems: readonly ConfigProblem[];

  constructor(problems: readonly ConfigProblem[]) {
    const lines = problems.map((p) => `  - ${p.variable}: ${p.message}`).join('\n');
    super(
      'CONFIG_INVALID',
      `Invalid database configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}):\n${lines}`,
    );
    this.problems = problems;
  }
}

/** The numbers a {@link PoolTimeoutError} reports. */
export interface PoolTimeoutDetails {
  /** How long this acquire waited, ms. */
  readonly waitedMs: number;
  /** Other acquires still waiting. */
  readonly waiting: number;
  /** `maxConnections`. */
  readonly max: number;
  /** Connections leased out. */
  readonly active: number;
  /** Connections being opened when the wait ended (a slow or hanging connect, not exhaustion). */
  readonly connecting: number;
}

/**
 * No connection became available within the acquire timeout. `connecting` and `active` say why: a full
 * pool (`active === max`: exhaustion, the database may be fine), or connects in flight that did not
 * finish in time (the database is slow to accept connections). `cause` is the last connect failure
 * since the pool last connected successfully, if any (as HikariCP attaches its last connection failure).
 */
export class PoolTimeoutError extends AccountDbError implements PoolTimeoutDetails {
  declare readonly code: 'POOL_TIMEOUT';
  readonly waitedMs: number;
  readonly waiting: number;
  readonly max: number;
  readonly active: number;
  readonly connecting: number;

  constructor(details: PoolTimeoutDetails, options: AccountDbErrorOptions = {}) {
    const { waitedMs, waiting, max, active, connecting } = details;
    const counts = `${active}/${max} in use, ${connecting} connecting, ${waiting} waiting`;
    const lastFailure = options.cause === undefined ? '' : ` The last connect attempt failed: ${describeCause(options.cause)}`;
    let message: string;
    if (active >= max) {
      message =
        `Pool exhausted: waited ${waitedMs} ms for a connection; ${counts}. ` +
        'Raise DB_MAX_CONNECTIONS or DB_ACQUIRE_TIMEOUT_MS, or release connections sooner.';
    } else if (connecting > 0) {
      message =
        `Timed out after ${waitedMs} ms waiting for a new connection to open (${counts}): ` +
        'the database is slow to accept connections. Check DB_CONNECTION_TIMEOUT and the server.';
    } else {
      // Below max with nothing connecting: the wait was for a leased connection to come back (a connect
      // that would have served it failed or went to an earlier waiter). Not a slow database.
      message =
        `Timed out after ${waitedMs} ms waiting for a connection (${counts}): no connection was free and ` +
        'none was being opened when the wait ended.';
    }
    super('POOL_TIMEOUT', message + lastFailure, options);
    this.waitedMs = waitedMs;
    this.waiting = waiting;
    this.max = max;
    this.active = active;
    this.connecting = connecting;
  }
}

/** The database cannot be reached or refused us (network, server down, authentication). */
export class DatabaseUnavailableError extends AccountDbError {
  declare readonly code: 'DATABASE_UNAVAILABLE';

  /**
   * @param host the (last) host tried
   * @param port its port
   * @param cause the underlying error (socket, timeout, SQLSTATE such as 28P01)
   * @param target every `host:port` tried, when there were several
   */
  constructor(
    readonly host: string,
    readonly port: number,
    cause: unknown,
    target = `${host}:${port}`,
  ) {
    super('DATABASE_UNAVAILABLE', `Cannot connect to PostgreSQL at ${target}: ${describeCause(cause)}`, { cause });
  }
}

/** The pool was closed (or is closing) and takes no new work. */
export class PoolClosedError extends AccountDbError {
  declare readonly code: 'POOL_CLOSED';

  constructor() {
    super('POOL_CLOSED', 'The pool is closed');
  }
}

/** An acquire was aborted by its `AbortSignal`. */
export class AcquireAbortedError extends AccountDbError {
  declare readonly code: 'ACQUIRE_ABORTED';

  constructor(reason: unknown) {
    super('ACQUIRE_ABORTED', 'Acquiring a connection was aborted', { cause: reason });
  }
}

/** A lease was used after `release()` or `destroy()`: the connection is no longer the caller's. */
export class LeaseReleasedError extends AccountDbError {
  declare readonly code: 'LEASE_RELEASED';

  constructor() {
    super('LEASE_RELEASED', 'This connection was already released to the pool');
  }
}

/** A statement was refused before anything was sent (a Submittable given to `pool.query`, values beside a Submittable). */
export class InvalidQueryError extends AccountDbError {
  declare readonly code: 'INVALID_QUERY';

  constructor(reason: string) {
    super('INVALID_QUERY', `Invalid query: ${reason}`);
  }
}

/**
 * A statement that starts or ends a transaction (BEGIN, START TRANSACTION, COMMIT, END, ROLLBACK,
 * ABORT, PREPARE TRANSACTION) was sent where a transaction someone else owns is open: an RLS scope's
 * `tx`, seen through `@accountdb/pool/pg`'s face (Kysely's, Drizzle's or Prisma's own transaction inside
 * `withUserContext`). Refused before anything was sent; the scope's transaction goes on. `statement` is
 * the statement's leading keywords only, never its values.
 */
export class NestedTransactionError extends AccountDbError {
  declare readonly code: 'NESTED_TRANSACTION';

  constructor(readonly statement: string) {
    super(
      'NESTED_TRANSACTION',
      `${statement} refused: this connection is inside a transaction that its scope owns (an RLS scope's tx), so a ` +
        "library's own transaction cannot start or end here. Run the statements directly (they already share the " +
        "scope's transaction), or use SAVEPOINT / ROLLBACK TO SAVEPOINT for a part that may fail",
    );
  }
}

/** A lifecycle hook threw; the connection it was given has been destroyed. */
export class HookError extends AccountDbError {
  declare readonly code: 'HOOK_FAILED';

  constructor(
    readonly hook: 'onConnect' | 'beforeAcquire' | 'afterRelease',
    cause: unknown,
  ) {
    super('HOOK_FAILED', `Pool hook ${hook} failed: ${describeCause(cause)}`, { cause });
  }
}

/** A short, secret-free description of an underlying error (code + message, no parameters). */
export function describeCause(cause: unknown): string {
  if (cause instanceof Error) {
    const code = (cause as { code?: unknown }).code;
    const message = cause.message || (cause as AggregateError).errors?.map((e: Error) => e.message).join('; ') || cause.name;
    return typeof code === 'string' && !message.includes(code) ? `${message} (${code})` : message;
  }
  return String(cause);
}

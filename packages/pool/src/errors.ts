const BRAND = Symbol.for('@accountdb/error');

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

/**
 * No connection became available within the acquire timeout. `connecting` and `active` say why: a full
 * pool (`active === max`: exhaustion, the database may be fine), or connects in flight that did not
 * finish in time (the database is slow to accept connections). `cause` is the last connect failure
 * since the pool last connected successfully, if any (as HikariCP attaches its last connection failure).
 */
export class PoolTimeoutError extends AccountDbError {
  declare readonly code: 'POOL_TIMEOUT';

  /**
   * @param waitedMs how long this acquire waited
   * @param waiting other acquires still waiting
   * @param max `maxConnections`
   * @param active connections leased out
   * @param connecting connections being opened when the wait ended (a slow or hanging connect, not exhaustion)
   * @param options `cause`: the last connect failure, if one happened since the last successful connect
   */
  constructor(
    readonly waitedMs: number,
    readonly waiting: number,
    readonly max: number,
    readonly active: number,
    readonly connecting = 0,
    options: AccountDbErrorOptions = {},
  ) {
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

/**
 * A connection stopped answering: a query waited longer than `queryTimeoutMs` with no reply from the
 * server (a silent network: a dead link, a dropped NAT entry, a moved IP). The connection was closed,
 * never reused. Whether the statement ran on the server is unknown, so retry only idempotent work.
 */
export class ConnectionLostError extends AccountDbError {
  declare readonly code: 'CONNECTION_LOST';

  /**
   * @param reason why the connection counts as lost (`timeout`: silent past `timeoutMs`)
   * @param timeoutMs the bound that ran out
   * @param host the server's host
   * @param port the server's port
   */
  constructor(
    readonly reason: 'timeout',
    readonly timeoutMs: number,
    readonly host: string,
    readonly port: number,
  ) {
    super(
      'CONNECTION_LOST',
      `No reply from PostgreSQL at ${host}:${port} for ${timeoutMs} ms while waiting on a query (queryTimeoutMs); ` +
        'the connection was closed. The statement may or may not have run on the server.',
    );
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

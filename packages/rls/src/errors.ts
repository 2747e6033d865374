import { AccountDbError } from '@accountdb/pool';

/**
 * A user context (user id, role) or scope option was invalid. Always thrown before any SQL is sent
 * and before a connection is acquired. The message describes the value's shape, never the value.
 */
export class RlsContextError extends AccountDbError {
  declare readonly code: 'RLS_CONTEXT_INVALID';
  /** Which input was wrong: `userId`, `role`, `isolation`, `readOnly`, `text`. */
  readonly field: string;

  constructor(field: string, message: string, options: { cause?: unknown } = {}) {
    super('RLS_CONTEXT_INVALID', `Invalid RLS context: ${field} ${message}`, options);
    this.field = field;
  }
}

/** Why a user-context scope could not hand its connection back clean. */
export type RlsScopeFailure =
  /** BEGIN or setting the context failed; nothing of `fn` was committed. */
  | 'setupFailed'
  /** `fn` ended the transaction itself (COMMIT, ROLLBACK or COMMIT; BEGIN), or overwrote the context settings. */
  | 'transactionEndedByCallback'
  /** `fn` changed the role at session level (SET ROLE without LOCAL). */
  | 'roleChanged'
  | 'commitFailed'
  | 'rollbackFailed'
  /** After the scope the connection was not idle (`getTransactionStatus() !== 'I'`), or a cursor given to `tx.query` was still open. */
  | 'notIdle';

/**
 * A user-context scope ended in a state that could leak: the connection has been destroyed (never
 * returned to the pool) and this error says why. `cause` holds the driver error when there was one.
 */
export class RlsScopeError extends AccountDbError {
  declare readonly code: 'RLS_SCOPE_FAILED';
  readonly reason: RlsScopeFailure;

  constructor(reason: RlsScopeFailure, message: string, options: { cause?: unknown } = {}) {
    super('RLS_SCOPE_FAILED', message, options);
    this.reason = reason;
  }
}

/** A statement was issued on a scope's `tx` after the scope ended. */
export class RlsScopeClosedError extends AccountDbError {
  declare readonly code: 'RLS_SCOPE_CLOSED';

  constructor() {
    super('RLS_SCOPE_CLOSED', 'This user-context transaction is over; queries must run inside the callback');
  }
}

/**
 * The login role can read past Row-Level Security: it is a superuser, has BYPASSRLS, or owns (or
 * inherits the owner of) an RLS table that is not FORCEd. `problems` lists each finding.
 */
export class UnsafeLoginRoleError extends AccountDbError {
  declare readonly code: 'RLS_UNSAFE_LOGIN_ROLE';
  readonly problems: readonly string[];

  constructor(role: string, problems: readonly string[]) {
    super(
      'RLS_UNSAFE_LOGIN_ROLE',
      `Login role ${JSON.stringify(role)} bypasses Row-Level Security:\n${problems.map((p) => `  - ${p}`).join('\n')}`,
    );
    this.problems = problems;
  }
}

import { createHash } from 'node:crypto';
import {
  type AcquireOptions,
  type BatchOutcome,
  type BatchStatement,
  isPreparedStatementError,
  type Logger,
  type PoolConnection,
  type PreparedStatement,
  type QueryConfig,
  type QueryResult,
} from '@accountdb/pool';
import { describeCause, packageLogger, toBatchStatement } from '@accountdb/pool/internal';
import type pg from 'pg';
import { RlsContextError, RlsScopeError, type RlsScopeFailure } from './errors.js';
import {
  type CheckedContext,
  checkContext,
  type ResolvedRlsOptions,
  type RlsOptions,
  resolveRlsOptions,
  type ScopeOptions,
  scopeBegin,
  type UserContext,
} from './options.js';
import { type RlsTransaction, ScopedTransaction } from './transaction.js';

/** Where scopes get their connection: a `Pool` from `@accountdb/pool` (anything with its `acquire`). */
export interface ConnectionSource {
  acquire(options?: AcquireOptions): Promise<PoolConnection>;
}

/** Options of {@link createRls} beyond the context rules. */
export interface CreateRlsOptions extends RlsOptions {
  /** pino-shaped logger; logs through `child({ pkg: '@accountdb/rls' })`. Never logs ids, roles or query values. */
  readonly logger?: Logger;
  /**
   * Prepare the context and closing-check statements once per connection (server-side named
   * statements) instead of parsing them in every scope. Default true. Where the server does not keep
   * them — PgBouncer before 1.21 in transaction mode, or after DISCARD ALL — the first failure is
   * caught before any of the caller's SQL ran, the batch is resent unnamed, and this `Rls` uses
   * unnamed statements from then on (one warning is logged).
   */
  readonly preparedStatements?: boolean;
}

// Zero rows back (the settings are never null, so the filter is false after both calls ran): one
// DataRow fewer per request, about 1% of a primary-key lookup.
const SET_CALLS = 'pg_catalog.set_config($1, $2, true) || pg_catalog.set_config($3, $4, true)';
const SET_CONTEXT = `select where (${SET_CALLS}) is null`;
const SET_CONTEXT_AND_ROLE = `select where (${SET_CALLS} || pg_catalog.set_config('role', $5, true)) is null`;
// Before COMMIT, in the same flight: if the context is no longer the one we set (the transaction was
// ended, so the local settings reverted, or something overwrote them) or the role was switched at
// session level, raise *inside* the transaction so it rolls back — behind PgBouncer the server
// connection outlives ours, so destroying our socket alone would not undo a committed SET.
// set_config on a validating setting is the plain-SQL way to raise; it is volatile, so the planner
// never evaluates it early. Otherwise blank both settings at session level as well, so even a
// session-level set_config of the context inside the scope is gone after COMMIT.
const ENDED_INSIDE = 'accountdb.rls: transaction ended or context changed inside the scope';
const ROLE_CHANGED = 'accountdb.rls: role changed at session level inside the scope';
const END_CONTEXT = `select case
  when pg_catalog.current_setting($1, true) is distinct from $3 or pg_catalog.current_setting($2, true) is distinct from $4
    then pg_catalog.set_config('statement_timeout', '${ENDED_INSIDE}', true)
  when pg_catalog.current_setting('role') is distinct from $5
    then pg_catalog.set_config('statement_timeout', '${ROLE_CHANGED}', true)
  else pg_catalog.set_config($1, '', false) || pg_catalog.set_config($2, '', false)
end as cleared`;

// After the caller's statement in rls.query's implicit transaction: blank both settings at session
// level (and put the role back), so a statement that wrote the context with set_config(…, false) or
// switched the role leaves nothing for the next borrower. Zero rows, like SET_CONTEXT.
const CLEAR_CONTEXT = `select where (pg_catalog.set_config($1, '', false) || pg_catalog.set_config($2, '', false)
  || pg_catalog.set_config('role', 'none', false)) is null`;

const SET_NAME = 'accountdb_rls_set_v2';
const SET_ROLE_NAME = 'accountdb_rls_set_role_v2';
const END_NAME = 'accountdb_rls_end';
const CLEAR_NAME = 'accountdb_rls_clear';

// Both sets are parsed together whatever a request needs, so they exist on a connection all or none.
const PREPARED_PLAIN: readonly PreparedStatement[] = [
  { name: SET_NAME, text: SET_CONTEXT },
  { name: END_NAME, text: END_CONTEXT },
  { name: CLEAR_NAME, text: CLEAR_CONTEXT },
];
const PREPARED_WITH_ROLE: readonly PreparedStatement[] = [
  { name: SET_ROLE_NAME, text: SET_CONTEXT_AND_ROLE },
  { name: END_NAME, text: END_CONTEXT },
  { name: CLEAR_NAME, text: CLEAR_CONTEXT },
];

/** What each statement of our batches is: a failure is judged by the role of the statement that failed. */
type Role = 'begin' | 'context' | 'caller' | 'check' | 'commit' | 'clear';
type Statement = BatchStatement<Role>;
type Outcome = BatchOutcome<Role>;

/** Roles before the caller's statement: a failure there means none of the caller's SQL ran. */
const isSetup = (role: Role | undefined) => role === 'begin' || role === 'context';

/**
 * User context for Row-Level Security, scoped to one transaction. Create one per application with
 * {@link createRls}; it holds no connections and is safe to share.
 */
export class Rls {
  /** The custom setting holding the user id (default `app.current_user_id`). */
  readonly userIdSetting: string;
  /** The custom setting holding the application role (default `app.current_user_role`). */
  readonly roleSetting: string;
  readonly #options: ResolvedRlsOptions;
  readonly #log: Logger;
  #prepared: boolean;
  /** rls.query's closing statement never changes for an instance: built once, not per request. */
  readonly #clearNamed: Statement;
  readonly #clearUnnamed: Statement;

  constructor(options: CreateRlsOptions) {
    this.#prepared = options.preparedStatements !== false;
    this.#options = resolveRlsOptions(options);
    this.userIdSetting = this.#options.userIdSetting;
    this.roleSetting = this.#options.roleSetting;
    this.#log = packageLogger(options.logger, '@accountdb/rls');
    const clear = {
      text: CLEAR_CONTEXT,
      values: [this.userIdSetting, this.roleSetting],
      discardRows: true,
      role: 'clear',
    } as const;
    this.#clearNamed = { ...clear, name: CLEAR_NAME };
    this.#clearUnnamed = clear;
  }

  /**
   * Validate a context without touching the database (throws {@link RlsContextError}); returns the
   * canonical user id and role as they would be set.
   */
  checkContext(context: UserContext): { userId: string; role: string } {
    const { userId, role } = checkContext(this.#options, context);
    return { userId, role };
  }

  /**
   * Run `fn` inside a transaction that carries the user context: BEGIN, `set_config(name, value,
   * true)` with bound parameters (and `SET LOCAL ROLE`, as `set_config('role', …, true)`, when the
   * role maps to a database role), `fn(tx)`, COMMIT — or ROLLBACK when `fn` throws, rethrowing its
   * error. BEGIN and the context go out in one flight with `fn`'s first statement, and the closing
   * check and COMMIT in one more: a one-statement scope costs two round trips. A callback that
   * sends no statement sends nothing at all.
   *
   * The connection goes back to the pool only if the scope ended idle and clean; otherwise it is
   * destroyed and {@link RlsScopeError} is thrown (or `fn`'s own error, when `fn` threw).
   * Throws {@link RlsContextError} before acquiring a connection when the context is invalid.
   */
  async withUserContext<T>(
    pool: ConnectionSource,
    context: UserContext,
    fn: (tx: RlsTransaction) => Promise<T> | T,
    options: ScopeOptions = {},
  ): Promise<T> {
    const checked = checkContext(this.#options, context);
    const begin = scopeBegin(options);
    if (typeof fn !== 'function') throw new RlsContextError('fn', 'must be a function');
    const lease = await pool.acquire();
    const first = async (
      text: string | QueryConfig | undefined,
      values: unknown[] | undefined,
    ): Promise<QueryResult | undefined> => {
      // A named first statement travels unnamed in the opening flight (the name only asks for
      // reuse); later statements go through pg, which prepares named ones itself. No text: the
      // scope's connection was asked for (`tx.withConnection`), so open the transaction alone.
      const statement = text === undefined ? undefined : toBatchStatement(text, values, 'caller', true);
      const outcome = await this.#send(lease, checked, (prepared) => [
        { text: begin, role: 'begin' },
        this.#setStatement(checked, prepared),
        // Prepared mode: the first statement goes through the pool's statement cache, as later ones do.
        ...(statement ? [prepared ? { ...statement, cache: true } : statement] : []),
      ]);
      if (!outcome.ok && outcome.failed === 'statement' && isSetup(outcome.role)) throw setupFailed(outcome.error);
      if (!outcome.ok) throw outcome.error;
      if (statement) return outcome.results[2] as QueryResult;
      return text === undefined ? undefined : lease.query(text, values);
    };
    const tx = new ScopedTransaction(lease, first, checked.userId, checked.role);
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      await tx.close();
      if (lease.busy) this.#destroyBusy(lease);
      else if (tx.started) await this.#rollbackAndRelease(lease);
      else lease.release();
      throw err;
    }
    await tx.close();
    if (!tx.started) {
      lease.release();
      return result;
    }
    // A cursor still open would hold COMMIT behind it forever: never wait on it.
    if (lease.busy) throw this.#destroyBusy(lease);
    const outcome = await this.#send(lease, checked, (prepared) => this.#endStatements(checked, prepared));
    if (!outcome.ok) throw await this.#endFailure(lease, outcome);
    const failed = this.#finish(lease, outcome.results[1]);
    if (failed) throw await failed;
    return result;
  }

  /**
   * Run one statement as the user in one round trip: the context and the statement go out as one
   * batch in one implicit transaction that ends at Sync (or BEGIN, context, statement, closing check,
   * COMMIT when `options` ask for an isolation level or read-only). A statement that itself writes
   * the context settings or the role at *session* level (`set_config(name, value, false)`) is not
   * checked here — `withUserContext` checks that, because its callback can run anything. Throws the statement's own error when it fails (the
   * transaction rolls back and the clean connection is reused), {@link RlsContextError} before any
   * SQL for a bad context, and {@link RlsScopeError} when the connection could not be handed back clean.
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    pool: ConnectionSource,
    context: UserContext,
    text: string | QueryConfig,
    values?: unknown[],
    options: ScopeOptions = {},
  ): Promise<QueryResult<R>> {
    const checked = checkContext(this.#options, context);
    const begin = scopeBegin(options);
    if (values !== undefined && !Array.isArray(values)) throw new RlsContextError('values', 'must be an array');
    const statement = toBatchStatement(text, values, 'caller', true);
    if (!statement || statement.text.trim() === '')
      throw new RlsContextError('text', 'must be a non-empty SQL string or a { text, values, rowMode, types, name } config');
    if (statement.text.includes('\0')) throw new RlsContextError('text', 'must not contain a NUL byte');
    const name = typeof text === 'object' ? (text as { name?: unknown }).name : undefined;
    if (name !== undefined && (typeof name !== 'string' || name === ''))
      throw new RlsContextError('name', 'must be a non-empty string when given');
    // A named statement is prepared on each connection under a name derived from its text, so it
    // never meets pg's own named statements (pg tracks those per connection itself).
    const callerPrepared: PreparedStatement | undefined = name
      ? { name: preparedNameFor(statement.text), text: statement.text }
      : undefined;
    const explicit = begin !== 'BEGIN';
    const main = explicit ? 2 : 1;
    const callerNamed = callerPrepared !== undefined;
    const build = (prepared: boolean): Statement[] => {
      const set = this.#setStatement(checked, prepared);
      // Prepared mode: a named caller statement under its digest name, any other through the pool's
      // statement cache (prepared on first use per connection, like a plain pool.query).
      const caller: Statement =
        prepared && callerNamed && callerPrepared
          ? { ...statement, name: callerPrepared.name }
          : prepared
            ? { ...statement, cache: true }
            : statement;
      // Implicit transaction: the context dies at Sync and one statement cannot end the transaction
      // and go on, so the closing check is left out; only the session-level blanking follows.
      if (!explicit) return [set, caller, this.#clearStatement(prepared)];
      const [end, commit] = this.#endStatements(checked, prepared) as [Statement, Statement];
      return [{ text: begin, role: 'begin' }, set, caller, end, commit];
    };
    const lease = await pool.acquire();
    // The common path awaits the batch directly (no extra async frame): this is the hot path the
    // one-worker benchmark measures.
    const prepared = this.#prepared;
    let outcome: Outcome = await this.#dispatch(lease, checked, prepared, build, callerPrepared);
    if (!outcome.ok && prepared && isPreparedStatementError(outcome.error))
      outcome = await this.#resendUnnamed(lease, outcome, build);
    if (outcome.ok) {
      const failed = this.#finish(lease, explicit ? outcome.results[main + 2] : undefined);
      if (failed) throw await failed;
      return outcome.results[main] as QueryResult<R>;
    }
    if (outcome.failed === 'unsent') {
      lease.release(); // a value could not be serialised: nothing was sent
      throw outcome.error;
    }
    if (outcome.failed === 'rows') {
      // A type parser failed on a row of the statement; the transaction completed.
      await this.#rollbackAndRelease(lease);
      throw outcome.error;
    }
    if (isSetup(outcome.role)) throw await this.#failAfterRollback(lease, 'setupFailed', setupFailed(outcome.error));
    if (outcome.role === 'caller') {
      if ((outcome.error as { sqlstate?: unknown } | null)?.sqlstate === '0A000') {
        // "cached plan must not change result type": a table under the prepared statement (a named
        // one, or the pool's statement cache's) changed shape, and the statement stays broken where
        // it was parsed. Nothing ran (the server checks before executing, and the transaction rolled
        // back): drop the statement and run once more, parsing it afresh. The name is our own hex
        // digest, not input. (The pool forgot the statement already, and closes a cached one itself;
        // DEALLOCATE drops a named one on the server.)
        if (explicit) await lease.query('ROLLBACK').catch(() => {});
        if (callerPrepared) await lease.query(`DEALLOCATE "${callerPrepared.name}"`).catch(() => {});
        if (lease.client.getTransactionStatus() === 'I') lease.release();
        else lease.destroy();
        if ((options as { [RETRIED]?: boolean })[RETRIED]) throw outcome.error;
        return this.query(pool, context, text, values, { ...options, [RETRIED]: true } as ScopeOptions);
      }
      // An implicit transaction always ends at Sync, so the connection is idle once the server's
      // ReadyForQuery lands (pg holds the next query until it does); an explicit one needs ROLLBACK.
      if (explicit) await this.#rollbackAndRelease(lease);
      else lease.release();
      throw outcome.error;
    }
    throw await this.#endFailure(lease, outcome);
  }

  /**
   * Send a batch, with our statements prepared when enabled. If the server has lost or never kept
   * them and the failure came before the caller's first statement (`callerIndex`), nothing of the
   * caller's ran: roll back whatever the batch opened and resend it unnamed, for good.
   */
  async #send(lease: PoolConnection, context: CheckedContext, build: (prepared: boolean) => Statement[]): Promise<Outcome> {
    const prepared = this.#prepared;
    const outcome = await this.#dispatch(lease, context, prepared, build);
    if (outcome.ok || !prepared || !isPreparedStatementError(outcome.error)) return outcome;
    return this.#resendUnnamed(lease, outcome, build);
  }

  #dispatch(
    lease: PoolConnection,
    context: CheckedContext,
    prepared: boolean,
    build: (prepared: boolean) => Statement[],
    callerPrepared?: PreparedStatement,
  ): Promise<Outcome> {
    const statements = build(prepared);
    const prepareBefore = statements[0]?.role === 'begin' ? 1 : 0;
    const ours = this.#preparedFor(context);
    const prepare = !prepared ? undefined : callerPrepared ? [...ours, callerPrepared] : ours;
    return lease.batch(statements, { prepare, prepareBefore });
  }

  /** A prepared-statement failure (26000/42P05): switch to unnamed statements and resend if nothing of the caller's ran. */
  async #resendUnnamed(
    lease: PoolConnection,
    outcome: Outcome & { ok: false },
    build: (prepared: boolean) => Statement[],
  ): Promise<Outcome> {
    if (this.#prepared) {
      this.#prepared = false;
      this.#log.warn(
        { error: describeCause(outcome.error) },
        'the server does not keep our prepared statements (PgBouncer < 1.21 in transaction mode, or DISCARD ALL); using unnamed statements from now on',
      );
    }
    if (!isSetup(outcome.role)) return outcome;
    await lease.query('ROLLBACK').catch(() => {});
    return lease.batch(build(false));
  }

  #preparedFor(context: CheckedContext): readonly PreparedStatement[] {
    return context.databaseRole === undefined ? PREPARED_PLAIN : PREPARED_WITH_ROLE;
  }

  #setStatement(context: CheckedContext, prepared: boolean): Statement {
    const values = [this.userIdSetting, context.userId, this.roleSetting, context.role];
    return context.databaseRole === undefined
      ? { text: SET_CONTEXT, values, discardRows: true, name: prepared ? SET_NAME : undefined, role: 'context' }
      : {
          text: SET_CONTEXT_AND_ROLE,
          values: [...values, context.databaseRole],
          discardRows: true,
          name: prepared ? SET_ROLE_NAME : undefined,
          role: 'context',
        };
  }

  #clearStatement(prepared: boolean): Statement {
    return prepared ? this.#clearNamed : this.#clearUnnamed;
  }

  #endStatements(context: CheckedContext, prepared: boolean): Statement[] {
    const values = [this.userIdSetting, this.roleSetting, context.userId, context.role, context.databaseRole ?? 'none'];
    return [
      { text: END_CONTEXT, values, discardRows: true, name: prepared ? END_NAME : undefined, role: 'check' },
      { text: 'COMMIT', role: 'commit' },
    ];
  }

  /**
   * After a successful batch: COMMIT must have committed and the connection must be idle. Releases
   * the connection and returns undefined, or returns the error to throw (connection destroyed).
   */
  #finish(lease: PoolConnection, commit: QueryResult | undefined): Promise<RlsScopeError> | undefined {
    if (commit && (commit.command ?? '').toUpperCase() !== 'COMMIT')
      return this.#failAfterRollback(lease, 'commitFailed', 'COMMIT did not commit; the transaction was rolled back');
    if (lease.client.getTransactionStatus() !== 'I')
      return this.#failAfterRollback(lease, 'notIdle', 'The connection was not idle after the scope');
    lease.release();
    return undefined;
  }

  /** The closing check or COMMIT failed: say why, roll back whatever is open, destroy the connection. */
  #endFailure(lease: PoolConnection, { error, raw }: { error: unknown; raw: unknown }): Promise<RlsScopeError> {
    // Our markers are in the driver's message (the typed error masks quoted text).
    const text = raw instanceof Error ? raw.message : '';
    if (text.includes(ENDED_INSIDE))
      return this.#failAfterRollback(
        lease,
        'transactionEndedByCallback',
        'The transaction was ended (COMMIT/ROLLBACK) or the context overwritten inside the scope; what ran afterwards was rolled back',
        error,
      );
    if (text.includes(ROLE_CHANGED))
      return this.#failAfterRollback(lease, 'roleChanged', 'SET ROLE ran at session level inside the scope; rolled back', error);
    return this.#failAfterRollback(
      lease,
      'commitFailed',
      'The transaction failed (an error inside the scope aborted it, or COMMIT failed) and was rolled back; nothing was committed',
      error,
    );
  }

  /**
   * A cursor or stream given to `tx.query` is still open: closing the connection rolls the transaction
   * back on the server (PgBouncer too ends the server transaction when its client goes).
   */
  #destroyBusy(lease: PoolConnection): RlsScopeError {
    lease.destroy();
    const error = new RlsScopeError(
      'notIdle',
      'A cursor or stream given to tx.query was still open when the callback ended; close it (or read it to the end) inside the callback. The transaction was rolled back and the connection destroyed',
    );
    this.#log.warn({ processId: lease.processId, reason: 'notIdle' }, error.message);
    return error;
  }

  /** ROLLBACK (which also waits out any reply still in flight), then reuse the connection only if idle. */
  async #rollbackAndRelease(lease: PoolConnection): Promise<void> {
    try {
      await lease.query('ROLLBACK');
    } catch (err) {
      this.#log.warn({ processId: lease.processId, error: describeCause(err) }, 'ROLLBACK failed; connection destroyed');
      lease.destroy();
      return;
    }
    if (lease.client.getTransactionStatus() === 'I') lease.release();
    else {
      this.#log.warn({ processId: lease.processId }, 'connection not idle after ROLLBACK; destroyed');
      lease.destroy();
    }
  }

  async #failAfterRollback(
    lease: PoolConnection,
    reason: RlsScopeFailure,
    problem: string | RlsScopeError,
    cause?: unknown,
  ): Promise<RlsScopeError> {
    await lease.query('ROLLBACK').catch(() => {});
    lease.destroy();
    const error =
      typeof problem === 'string'
        ? new RlsScopeError(reason, `${problem}; the connection was destroyed`, cause === undefined ? {} : { cause })
        : problem;
    this.#log.warn(
      { processId: lease.processId, reason, error: cause === undefined ? undefined : describeCause(cause) },
      error.message,
    );
    return error;
  }
}

/** Marks the one automatic re-run of `rls.query` after its prepared statement went stale. */
const RETRIED = Symbol('accountdb.rls.retried');

/** Digests already computed (hashing on every request showed up in the client's CPU time). */
const preparedNames = new Map<string, string>();

/** Server-side name of a caller's named statement: from its text, within PostgreSQL's 63 bytes. */
function preparedNameFor(text: string): string {
  let name = preparedNames.get(text);
  if (name === undefined) {
    name = `accountdb_rls_q_${createHash('sha256').update(text).digest('hex').slice(0, 32)}`;
    if (preparedNames.size >= 1024) preparedNames.clear(); // texts are the app's own statements: rarely reached
    preparedNames.set(text, name);
  }
  return name;
}

function setupFailed(cause: unknown): RlsScopeError {
  return new RlsScopeError('setupFailed', `Setting the user context failed, so nothing ran: ${describeCause(cause)}`, { cause });
}

/** Create the RLS helper. Throws `ConfigError` (from `@accountdb/pool`) listing every invalid option. */
export function createRls(options: CreateRlsOptions): Rls {
  return new Rls(options);
}

import { randomUUID } from 'node:crypto';
import {
  type AcquireOptions,
  describeCause,
  type Logger,
  type PoolConnection,
  packageLogger,
  type QueryConfig,
  type QueryResult,
} from '@accountdb/pool';
import type pg from 'pg';
import { RlsContextError, RlsScopeError, type RlsScopeFailure } from './errors.js';
import {
  beginStatement,
  type CheckedContext,
  checkContext,
  type ResolvedRlsOptions,
  type RlsOptions,
  resolveRlsOptions,
  type ScopeOptions,
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
   * Send BEGIN, the context and the first statement together (pg pipelining) instead of waiting
   * for each. Default true. `false` costs three extra round trips per scope; it exists for
   * comparison and as an escape hatch.
   */
  readonly pipeline?: boolean;
}

/** Marks the transaction a scope opened, so a callback that ends it (COMMIT; BEGIN) is detected. */
const SCOPE_SETTING = 'accountdb.rls_scope';
const SET_CONTEXT = `select set_config($1, $2, true), set_config($3, $4, true), set_config('${SCOPE_SETTING}', $5, true)`;
const SET_CONTEXT_AND_ROLE = `${SET_CONTEXT}, set_config('role', $6, true)`;
// Before COMMIT: if `fn` ended our transaction or switched the role at session level, fail inside
// the transaction so the COMMIT that follows in the same flight becomes a ROLLBACK — behind PgBouncer
// the server connection outlives ours, so destroying our socket alone would not undo a committed SET.
// set_config on a validating setting is the plain-SQL way to raise; it is volatile, so never planned away.
// Otherwise blank the settings at session level too, so even a session-level set_config by `fn` dies here.
const ENDED_INSIDE = 'accountdb.rls: transaction ended inside the scope';
const ROLE_CHANGED = 'accountdb.rls: role changed at session level inside the scope';
const END_CONTEXT = `select case
  when pg_catalog.current_setting('${SCOPE_SETTING}', true) is distinct from $3
    then pg_catalog.set_config('statement_timeout', '${ENDED_INSIDE}', true)
  when pg_catalog.current_setting('role') is distinct from $4
    then pg_catalog.set_config('statement_timeout', '${ROLE_CHANGED}', true)
  else pg_catalog.set_config($1, '', false) || pg_catalog.set_config($2, '', false)
end as cleared`;

interface Statement {
  text: string | QueryConfig;
  values?: unknown[];
}

type Settled = PromiseSettledResult<QueryResult>;

/** A checked context plus the random marker of the transaction that carries it. */
interface ScopeContext extends CheckedContext {
  readonly scope: string;
}

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
  readonly #pipeline: boolean;

  constructor(options: CreateRlsOptions) {
    this.#options = resolveRlsOptions(options);
    this.userIdSetting = this.#options.userIdSetting;
    this.roleSetting = this.#options.roleSetting;
    this.#log = packageLogger(options.logger, '@accountdb/rls');
    this.#pipeline = options.pipeline ?? true;
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
   * true)` with bound parameters (and `SET LOCAL ROLE` via `set_config('role', …, true)` when the
   * role maps to a database role), `fn(tx)`, COMMIT — or ROLLBACK when `fn` throws, rethrowing its
   * error. BEGIN and the context travel in one flight with `fn`'s first statement.
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
    const checked: ScopeContext = { ...checkContext(this.#options, context), scope: randomUUID() };
    const begin = beginStatement(options);
    if (typeof fn !== 'function') throw new RlsContextError('fn', 'must be a function');
    const lease = await pool.acquire();
    const restore = this.#pipeline ? enablePipeline(lease) : noop;
    const setup = this.#send(lease, this.#setupStatements(begin, checked));
    // In pipeline mode `fn`'s first statement joins BEGIN and the context on the wire; otherwise wait.
    if (!this.#pipeline) await setup;
    const tx = new ScopedTransaction(lease, checked.userId, checked.role);
    let result: T;
    try {
      result = await fn(tx);
    } catch (err) {
      tx.close();
      await this.#rollback(lease, setup, restore);
      throw err;
    }
    tx.close();
    const setupFailure = (await setup).find(isRejected);
    if (setupFailure) {
      await this.#rollback(lease, setup, restore);
      throw this.#fail(lease, 'setupFailed', 'Setting the user context failed; nothing was committed', setupFailure.reason);
    }
    const [end, commit] = await this.#send(lease, this.#endStatements(checked));
    this.#finish(lease, tx.inflight, end as Settled, commit as Settled, restore);
    return result;
  }

  /**
   * Run one statement as the user: BEGIN, context, statement, COMMIT, all in one round trip.
   * Throws the statement's own error when it fails (the transaction is rolled back and the clean
   * connection reused), {@link RlsContextError} before any SQL for a bad context, and
   * {@link RlsScopeError} when the connection could not be handed back clean.
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    pool: ConnectionSource,
    context: UserContext,
    text: string | QueryConfig,
    values?: unknown[],
    options: ScopeOptions = {},
  ): Promise<QueryResult<R>> {
    const checked: ScopeContext = { ...checkContext(this.#options, context), scope: randomUUID() };
    const begin = beginStatement(options);
    if (!(typeof text === 'string' && text.trim() !== '') && !(typeof text === 'object' && text !== null && 'text' in text))
      throw new RlsContextError('text', 'must be a non-empty SQL string or a query config');
    if (values !== undefined && !Array.isArray(values)) throw new RlsContextError('values', 'must be an array');
    const lease = await pool.acquire();
    const restore = this.#pipeline ? enablePipeline(lease) : noop;
    const settled = await this.#send(lease, [
      ...this.#setupStatements(begin, checked),
      values === undefined ? { text } : { text, values },
      ...this.#endStatements(checked),
    ]);
    const [beginResult, setResult, main, end, commit] = settled as [Settled, Settled, Settled, Settled, Settled];
    const setupFailure = [beginResult, setResult].find(isRejected);
    if (setupFailure) {
      this.#release(lease, restore);
      throw this.#fail(lease, 'setupFailed', 'Setting the user context failed; nothing was committed', setupFailure.reason);
    }
    if (main.status === 'rejected') {
      // The failed statement aborted the transaction, so COMMIT rolled it back: a clean connection.
      if (commit.status === 'fulfilled' && lease.client.getTransactionStatus() === 'I') this.#release(lease, restore);
      else lease.destroy();
      throw main.reason;
    }
    this.#finish(lease, 0, end, commit, restore);
    return main.value as QueryResult<R>;
  }

  #setupStatements(begin: string, context: ScopeContext): Statement[] {
    const values = [this.userIdSetting, context.userId, this.roleSetting, context.role, context.scope];
    const set =
      context.databaseRole === undefined
        ? { text: SET_CONTEXT, values }
        : { text: SET_CONTEXT_AND_ROLE, values: [...values, context.databaseRole] };
    return [{ text: begin }, set];
  }

  #endStatements(context: ScopeContext): Statement[] {
    const values = [this.userIdSetting, this.roleSetting, context.scope, context.databaseRole ?? 'none'];
    return [{ text: END_CONTEXT, values }, { text: 'COMMIT' }];
  }

  /** Pipelined: all statements go out now. Sequential: one after another, still in order. */
  async #send(lease: PoolConnection, statements: Statement[]): Promise<Settled[]> {
    if (this.#pipeline) return Promise.allSettled(statements.map((s) => lease.query(s.text, s.values)));
    const settled: Settled[] = [];
    for (const s of statements) {
      try {
        settled.push({ status: 'fulfilled', value: await lease.query(s.text, s.values) });
      } catch (reason) {
        settled.push({ status: 'rejected', reason });
      }
    }
    return settled;
  }

  /** After `fn` threw or setup failed: ROLLBACK, and reuse the connection only if it is idle again. */
  async #rollback(lease: PoolConnection, setup: Promise<Settled[]>, restore: () => void): Promise<void> {
    await setup;
    try {
      await lease.query('ROLLBACK');
    } catch (err) {
      this.#log.warn({ processId: lease.processId, error: describeCause(err) }, 'ROLLBACK failed; connection destroyed');
      lease.destroy();
      return;
    }
    if (lease.client.getTransactionStatus() === 'I') this.#release(lease, restore);
    else {
      this.#log.warn({ processId: lease.processId }, 'connection not idle after ROLLBACK; destroyed');
      lease.destroy();
    }
  }

  #finish(lease: PoolConnection, inflight: number, end: Settled, commit: Settled, restore: () => void): void {
    if (end.status === 'rejected') {
      const text = end.reason instanceof Error ? end.reason.message : '';
      if (text.includes(ENDED_INSIDE))
        throw this.#fail(
          lease,
          'transactionEndedByCallback',
          'The callback ended the transaction itself (COMMIT/ROLLBACK); what it ran afterwards was rolled back',
          end.reason,
        );
      if (text.includes(ROLE_CHANGED))
        throw this.#fail(
          lease,
          'roleChanged',
          'The callback ran SET ROLE at session level; the transaction was rolled back',
          end.reason,
        );
      throw this.#fail(
        lease,
        'commitFailed',
        'The transaction was aborted by an earlier error inside the scope and rolled back; nothing was committed',
        end.reason,
      );
    }
    if (commit.status === 'rejected')
      throw this.#fail(lease, 'commitFailed', 'COMMIT failed; the transaction was rolled back', commit.reason);
    if ((commit.value.command ?? '').toUpperCase() !== 'COMMIT')
      throw this.#fail(lease, 'commitFailed', 'COMMIT did not commit; the transaction was rolled back');
    if (inflight > 0 || lease.client.getTransactionStatus() !== 'I')
      throw this.#fail(lease, 'notIdle', 'The connection was not idle after COMMIT');
    this.#release(lease, restore);
  }

  #release(lease: PoolConnection, restore: () => void): void {
    restore();
    lease.release();
  }

  #fail(lease: PoolConnection, reason: RlsScopeFailure, message: string, cause?: unknown): RlsScopeError {
    lease.destroy();
    this.#log.warn(
      { processId: lease.processId, reason, error: cause === undefined ? undefined : describeCause(cause) },
      message,
    );
    return new RlsScopeError(reason, `${message}; the connection was destroyed`, cause === undefined ? {} : { cause });
  }
}

function isRejected(result: Settled): result is PromiseRejectedResult {
  return result.status === 'rejected';
}

function noop(): void {}

/**
 * Turn on pg's pipelining for the lease (restored before release). pg 8.23 reads `client.pipeline`
 * each time it dispatches a query, but `@accountdb/pool` creates its clients without it and offers
 * no option; see README "Round trips".
 */
function enablePipeline(lease: PoolConnection): () => void {
  const client = lease.client as unknown as { pipeline: boolean };
  if (client.pipeline) return noop;
  client.pipeline = true;
  return () => {
    client.pipeline = false;
  };
}

/** Create the RLS helper. Throws `ConfigError` (from `@accountdb/pool`) listing every invalid option. */
export function createRls(options: CreateRlsOptions): Rls {
  return new Rls(options);
}

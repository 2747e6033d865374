import { setTimeout as delay } from 'node:timers/promises';
import {
  backoffDelay,
  DeadlockDetectedError,
  type IsolationLevel,
  isPoolConnection,
  isTransactionScope,
  type Pool,
  type PoolConnection,
  QueryCanceledError,
  SerializationFailureError,
  TransactionRolledBackError,
  type TransactionScope,
  toDatabaseError,
} from '@accountdb/pool';
import { type BeginOptionProblem, beginStatement } from '@accountdb/pool/internal';
import { cancelBackend, validateCancelOptions } from './cancel.js';
import { assertDatabase, canceledBeforeStart, type Database, destroyLease, withLease } from './connection.js';
import { QueryArgumentError } from './errors.js';
import { checkArguments, type ExecuteOptions, type Row, run } from './execute.js';
import { OpeningLease } from './opening.js';
import type { SqlFragment } from './sql.js';
import type { Query } from './statement.js';

/** Options of {@link transaction}. */
export interface TransactionOptions {
  /** Default: the server's `default_transaction_isolation` (normally `read committed`). */
  isolation?: IsolationLevel;
  /** `READ ONLY`. Default false. */
  readOnly?: boolean;
  /** `DEFERRABLE` (only meaningful with `serializable` + `readOnly`). Default false. */
  deferrable?: boolean;
  /** Extra attempts after a serialization failure (40001) or deadlock (40P01). Default 5. */
  maxRetries?: number;
  /**
   * Abandon the transaction when this aborts: waiting for a connection or in the retry backoff
   * stops there; a statement running on the transaction's connection is canceled on the server; the
   * transaction rolls back (it is not retried) and `QueryCanceledError` is thrown. Once COMMIT has
   * been sent the abort no longer applies: the COMMIT's own outcome stands.
   */
  signal?: AbortSignal;
}

const DEFAULT_MAX_RETRIES = 5;
const RETRY_BASE_MS = 20;
const RETRY_CAP_MS = 1_000;

/** Savepoint depth per connection (its pg client) or per transaction scope, so nested savepoints get distinct names. */
const savepointDepth = new WeakMap<object, number>();

/** What a transaction inside a transaction runs on: a lease already in one, or a transaction scope. */
type Enclosing = PoolConnection | TransactionScope;

/** The BEGIN for `options`, after checking them (and `maxRetries`) before any SQL runs. */
function checkedBegin(options: TransactionOptions): string {
  const { maxRetries } = options;
  if (maxRetries !== undefined && (!Number.isInteger(maxRetries) || maxRetries < 0)) {
    throw new QueryArgumentError(`maxRetries must be an integer >= 0, got ${String(maxRetries)}`);
  }
  return beginStatement(options, optionProblem);
}

const optionProblem: BeginOptionProblem = (field, problem) => new QueryArgumentError(`${field} ${problem}`);

/**
 * Roll back; if even that fails the connection's state is unknown, so a lease is destroyed. A scope's
 * connection is not ours to destroy: its transaction is failed, and the scope's owner ends it.
 */
async function rollback(db: Enclosing, statement = 'ROLLBACK'): Promise<void> {
  try {
    await db.query(statement);
  } catch {
    if (isPoolConnection(db)) destroyLease(db);
  }
}

async function once<T>(
  lease: PoolConnection,
  begin: string,
  fn: (tx: PoolConnection) => Promise<T> | T,
  signal: AbortSignal | undefined,
): Promise<T> {
  if (signal?.aborted) throw canceledBeforeStart(signal.reason);
  // On abort, cancel whatever this connection's backend is running; the cancel is awaited before the
  // connection goes back, so it cannot reach the next borrower's statement.
  let cancelling: Promise<void> | undefined;
  const onAbort = () => {
    cancelling ??= cancelBackend(lease).catch(() => {});
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const stopListening = async () => {
    signal?.removeEventListener('abort', onAbort);
    if (cancelling) await cancelling;
  };
  // BEGIN waits for fn's first statement and goes out in the same flight (see OpeningLease).
  const tx = new OpeningLease(lease, begin);
  let result: T;
  try {
    result = await fn(tx);
    if (signal?.aborted) throw abortedError(signal);
    await tx.opened();
  } catch (err) {
    await stopListening();
    if (tx.started) await rollback(lease);
    throw signal?.aborted && !(err instanceof QueryCanceledError) ? abortedError(signal, err) : toDatabaseError(err);
  }
  await stopListening();
  // fn sent nothing: there is no transaction to commit, and nothing crossed the wire.
  if (!tx.started) return result;
  let tag: string;
  try {
    tag = (await lease.query('COMMIT')).command;
  } catch (err) {
    if (lease.client.getTransactionStatus() !== 'I') await rollback(lease);
    throw toDatabaseError(err);
  }
  // COMMIT of a transaction in which a statement failed (and fn swallowed the error) is a ROLLBACK.
  if (tag === 'ROLLBACK') {
    throw new TransactionRolledBackError(
      'The transaction was rolled back, not committed: a statement inside it failed and the error was caught',
    );
  }
  return result;
}

/** The transaction was abandoned because `signal` aborted (`cause`: what `fn` threw meanwhile, if anything). */
function abortedError(signal: AbortSignal, cause?: unknown): QueryCanceledError {
  return new QueryCanceledError('Transaction abandoned by AbortSignal; it was rolled back', undefined, {
    cause: cause ?? signal.reason,
  });
}

/**
 * A SAVEPOINT on `db`, with `fn` given `db` itself. A scope's statements go through the scope's own
 * `query` (never its `withConnection`, which would make `fn`'s statements on the scope wait for `fn`).
 */
async function nested<T, D extends Enclosing>(db: D, fn: (tx: D) => Promise<T> | T): Promise<T> {
  const key = isPoolConnection(db) ? db.client : db;
  const depth = (savepointDepth.get(key) ?? 0) + 1;
  // Our own counter, never input: safe to put in the statement.
  const name = `accountdb_sp_${depth}`;
  await db.query(`SAVEPOINT ${name}`).catch((err: unknown) => {
    throw toDatabaseError(err);
  });
  savepointDepth.set(key, depth);
  try {
    const result = await fn(db);
    await db.query(`RELEASE SAVEPOINT ${name}`);
    return result;
  } catch (err) {
    await rollback(db, `ROLLBACK TO SAVEPOINT ${name}; RELEASE SAVEPOINT ${name}`);
    throw toDatabaseError(err);
  } finally {
    savepointDepth.set(key, depth - 1);
  }
}

function isRetryable(err: unknown): boolean {
  return err instanceof SerializationFailureError || err instanceof DeadlockDetectedError;
}

/**
 * Run `fn` in a transaction on one connection: BEGIN (with the requested isolation / read-only /
 * deferrable), `fn(tx)`, COMMIT. Any error rolls back and is rethrown as a typed error; if the ROLLBACK
 * itself fails the connection is destroyed. On a serialization failure (40001) or deadlock (40P01) the
 * whole `fn` runs again after a jittered backoff, up to `maxRetries` times, so `fn` must be safe to
 * re-run (no side effects outside the database).
 *
 * `tx` is the leased connection: pass it to `execute`, `stream`, or `transaction` again — a
 * `transaction` on a connection already inside one uses a SAVEPOINT (rolled back alone on error, no
 * retry, no options). Do not release `tx`, and run nested transactions one at a time.
 *
 * On a transaction scope (an RLS scope's `tx`, already a transaction) it is always a SAVEPOINT, and
 * `fn` gets the scope itself: an error inside rolls back to the savepoint only and the scope goes on.
 * Isolation, read-only and deferrable cannot apply there (the scope's transaction has started):
 * passing them throws `QueryArgumentError` before any SQL — give them to the scope instead
 * (`withUserContext`'s options). `maxRetries` does not apply to a savepoint (a serialization failure
 * fails the whole enclosing transaction; retry that).
 */
export function transaction<T>(
  db: Pool | PoolConnection,
  fn: (tx: PoolConnection) => Promise<T> | T,
  options?: TransactionOptions,
): Promise<T>;
export function transaction<T, S extends TransactionScope>(
  db: S,
  fn: (tx: S) => Promise<T> | T,
  options?: TransactionOptions,
): Promise<T>;
export function transaction<T>(
  db: Database,
  fn: (tx: PoolConnection | TransactionScope) => Promise<T> | T,
  options?: TransactionOptions,
): Promise<T>;
export function transaction<T>(db: Database, fn: (tx: never) => Promise<T> | T, options: TransactionOptions = {}): Promise<T> {
  return runTransaction(db, fn as (tx: PoolConnection | TransactionScope) => Promise<T> | T, options);
}

async function runTransaction<T>(
  db: Database,
  fn: (tx: PoolConnection | TransactionScope) => Promise<T> | T,
  options: TransactionOptions,
): Promise<T> {
  assertDatabase(db);
  if (typeof fn !== 'function') throw new QueryArgumentError('fn must be a function');
  const begin = checkedBegin(options);
  validateCancelOptions({ signal: options.signal });
  const scope = isTransactionScope(db);
  if (scope || db instanceof OpeningLease || (isPoolConnection(db) && db.client.getTransactionStatus() !== 'I')) {
    if (begin !== 'BEGIN') {
      throw new QueryArgumentError(
        scope
          ? "isolation, readOnly and deferrable cannot be set inside a transaction scope (it is already a transaction; set them in the scope's own options)"
          : 'isolation, readOnly and deferrable cannot be set on a nested transaction (a savepoint)',
      );
    }
    if (options.signal?.aborted) throw canceledBeforeStart(options.signal.reason);
    return nested(db as Enclosing, fn);
  }
  const { signal } = options;
  const maxRetries = options.maxRetries ?? DEFAULT_MAX_RETRIES;
  for (let attempt = 0; ; attempt++) {
    try {
      return await withLease(db, signal, (lease) => once(lease, begin, fn, signal));
    } catch (err) {
      if (attempt >= maxRetries || !isRetryable(err) || signal?.aborted) throw err;
      await delay(backoffDelay(attempt, RETRY_BASE_MS, RETRY_CAP_MS), undefined, signal ? { signal } : {}).catch(() => {
        throw canceledBeforeStart(signal?.reason);
      });
    }
  }
}

/** Options of {@link executeInTransaction}. */
export type ExecuteInTransactionOptions = ExecuteOptions & TransactionOptions;

/**
 * One statement in its own transaction (seed `execute_query_with_transaction`): {@link execute}'s
 * fetch modes and cancellation plus {@link transaction}'s isolation and retry. Inside a transaction
 * scope (or on a lease already in a transaction) it is a SAVEPOINT, with {@link transaction}'s rules.
 */
export function executeInTransaction<R extends Row = Row>(
  db: Database,
  query: Query,
  params: readonly unknown[] | undefined,
  options: ExecuteInTransactionOptions & { fetch: 'one' },
): Promise<R | undefined>;
export function executeInTransaction<R extends Row = Row>(
  db: Database,
  query: SqlFragment,
  options: ExecuteInTransactionOptions & { fetch: 'one' },
): Promise<R | undefined>;
export function executeInTransaction(
  db: Database,
  query: Query,
  params: readonly unknown[] | undefined,
  options: ExecuteInTransactionOptions & { fetch: 'none' },
): Promise<number>;
export function executeInTransaction(
  db: Database,
  query: SqlFragment,
  options: ExecuteInTransactionOptions & { fetch: 'none' },
): Promise<number>;
export function executeInTransaction<R extends Row = Row>(
  db: Database,
  query: SqlFragment,
  options: ExecuteInTransactionOptions & { fetch?: 'all' | 'many' },
): Promise<R[]>;
export function executeInTransaction<R extends Row = Row>(
  db: Database,
  query: Query,
  params?: readonly unknown[],
  options?: ExecuteInTransactionOptions & { fetch?: 'all' | 'many' },
): Promise<R[]>;
export async function executeInTransaction(
  db: Database,
  query: Query,
  paramsOrOptions?: readonly unknown[] | ExecuteInTransactionOptions,
  maybeOptions?: ExecuteInTransactionOptions,
): Promise<unknown> {
  const call = checkArguments(db, query, paramsOrOptions, maybeOptions);
  const { isolation, readOnly, deferrable, maxRetries, signal } = call.options as ExecuteInTransactionOptions;
  return runTransaction(db as Database, (tx) => run(tx, call), { isolation, readOnly, deferrable, maxRetries, signal });
}

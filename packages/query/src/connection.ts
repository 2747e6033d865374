import {
  AcquireAbortedError,
  type Database,
  isDatabase,
  isPoolConnection,
  isTransactionScope,
  type Pool,
  type PoolConnection,
  QueryCanceledError,
} from '@accountdb/pool';
import { QueryArgumentError } from './errors.js';

export type { Database };

export function assertDatabase(db: unknown): asserts db is Database {
  if (!isDatabase(db)) {
    throw new QueryArgumentError("db must be a Pool, a PoolConnection, or a transaction scope (an RLS scope's tx)");
  }
}

/** Close a lease instead of returning it: its state is unknown (a cancel or ROLLBACK did not complete). */
export function destroyLease(lease: PoolConnection): void {
  lease.destroy();
}

export function canceledBeforeStart(cause?: unknown): QueryCanceledError {
  return new QueryCanceledError('Statement canceled by AbortSignal before it was sent', undefined, { cause });
}

/**
 * Run `fn` on a connection: `db` itself when it is a lease, the scope's connection (inside its
 * transaction) when it is a transaction scope, else one leased with `pool.withConnection` for the
 * call. An aborted `signal`, before or while waiting for a pooled connection, is a `QueryCanceledError`.
 */
export function withLease<T>(
  db: Database,
  signal: AbortSignal | undefined,
  fn: (lease: PoolConnection) => Promise<T>,
): Promise<T> {
  if (isPoolConnection(db)) return fn(db);
  if (signal?.aborted) return Promise.reject(canceledBeforeStart(signal.reason));
  if (isTransactionScope(db)) return db.withConnection(fn);
  return (db as Pool).withConnection(fn, signal ? { signal } : {}).catch((err: unknown) => {
    throw err instanceof AcquireAbortedError ? canceledBeforeStart(err) : err;
  });
}

/**
 * Hold a connection across an iteration (a cursor): resolves with it once it is ours, and `done`
 * hands it back — released (with the error, so the pool can drop a broken connection) when it was
 * leased for the iteration, given back to the scope when it is a scope's. Call `done` exactly once.
 */
export function holdLease(
  db: Database,
  signal: AbortSignal | undefined,
): Promise<{ lease: PoolConnection; done: (error?: unknown) => void }> {
  if (isPoolConnection(db)) return Promise.resolve({ lease: db, done: () => {} });
  return new Promise((resolve, reject) => {
    let done: (error?: unknown) => void = () => {};
    const finished = new Promise<void>((resolveFinished, rejectFinished) => {
      done = (error) => (error === undefined ? resolveFinished() : rejectFinished(error));
    });
    // After `resolve`, a rejection here is `done(error)` coming back: already the caller's to handle.
    withLease(db, signal, (lease) => {
      resolve({ lease, done });
      return finished;
    }).catch(reject);
  });
}

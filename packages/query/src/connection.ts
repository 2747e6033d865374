import { AcquireAbortedError, type Pool, type PoolConnection } from '@accountdb/pool';
import { QueryArgumentError, QueryCanceledError } from './errors.js';

/** Where a statement runs: a pool (a connection is leased per call) or a connection you leased. */
export type Database = Pool | PoolConnection;

/** Leases we destroyed ourselves (failed cancel or rollback): they must not also be released. */
const destroyed = new WeakSet<PoolConnection>();

/** A lease has `release`; a pool has `acquire`. Structural, so no pg or pool internals are involved. */
export function isLease(db: Database): db is PoolConnection {
  return typeof (db as PoolConnection).release === 'function';
}

export function assertDatabase(db: unknown): asserts db is Database {
  const d = db as Partial<Pool & PoolConnection> | null;
  if (
    typeof d !== 'object' ||
    d === null ||
    typeof d.query !== 'function' ||
    (typeof d.release !== 'function' && typeof d.acquire !== 'function')
  ) {
    throw new QueryArgumentError('db must be a Pool or a PoolConnection from @accountdb/pool');
  }
}

/** Close a lease instead of returning it: its state is unknown (a cancel or ROLLBACK did not complete). */
export function destroyLease(lease: PoolConnection): void {
  destroyed.add(lease);
  lease.destroy();
}

export function canceledBeforeStart(cause?: unknown): QueryCanceledError {
  return new QueryCanceledError(
    'QUERY_CANCELED',
    'Statement canceled by AbortSignal before it was sent',
    { sqlstate: '57014' },
    undefined,
    cause,
  );
}

/** Lease a connection from `pool`; an aborted `signal` (before or while waiting) is a `QueryCanceledError`. */
export async function acquireLease(pool: Pool, signal: AbortSignal | undefined): Promise<PoolConnection> {
  if (signal?.aborted) throw canceledBeforeStart(signal.reason);
  try {
    return await pool.acquire(signal ? { signal } : {});
  } catch (err) {
    if (err instanceof AcquireAbortedError) throw canceledBeforeStart(err);
    throw err;
  }
}

/** Give a lease back (with the error, so the pool can drop a broken connection) unless we destroyed it. */
export function releaseLease(lease: PoolConnection, error?: unknown): void {
  if (!destroyed.has(lease)) lease.release(error);
}

/**
 * Run `fn` on `db` itself when it is a lease, else on a connection leased for the call and released
 * afterwards (with the error, so the pool can drop a broken connection).
 */
export async function withLease<T>(
  db: Database,
  signal: AbortSignal | undefined,
  fn: (lease: PoolConnection) => Promise<T>,
): Promise<T> {
  if (isLease(db)) return fn(db);
  const lease = await acquireLease(db, signal);
  let result: T;
  try {
    result = await fn(lease);
  } catch (err) {
    releaseLease(lease, err);
    throw err;
  }
  releaseLease(lease);
  return result;
}

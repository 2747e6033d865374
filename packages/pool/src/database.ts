import type { PoolConnection, Queryable } from './lease.js';
import type { Pool } from './pool.js';

/**
 * A transaction that someone else opened and will end, lending its connection to helpers: an RLS
 * scope's `tx` from `@accountdb/rls`. Statements go through `query`; what needs the connection itself
 * (cursors, cancelling a statement) goes through `withConnection`. A helper never releases that
 * connection, and a transaction it starts inside the scope is a SAVEPOINT.
 */
export interface TransactionScope extends Queryable {
  /**
   * Run `fn` with the scope's connection once the scope's transaction is open (the scope sends its
   * opening statements first if it has not yet). Statements the scope is asked for meanwhile wait for
   * `fn`, and so does the scope's end. Do not release or destroy the connection: the scope's owner
   * does. Rejects once the scope is over.
   */
  withConnection<T>(fn: (conn: PoolConnection) => Promise<T> | T): Promise<T>;
}

/**
 * Anything a package function runs SQL on: a pool (a connection is leased per call), a lease (used as
 * is), or a {@link TransactionScope} (its connection, inside its transaction). Tell them apart
 * structurally with {@link isPoolConnection} and {@link isTransactionScope}.
 */
export type Database = Pool | PoolConnection | TransactionScope;

/** A lease has `release`. */
export function isPoolConnection(db: Database): db is PoolConnection {
  return typeof (db as Partial<PoolConnection>).release === 'function';
}

/** A scope lends its connection (`withConnection`) but, unlike a pool, has no `acquire` and, unlike a lease, no `release`. */
export function isTransactionScope(db: Database): db is TransactionScope {
  return (
    typeof (db as Partial<Pool>).acquire !== 'function' &&
    !isPoolConnection(db) &&
    typeof (db as Partial<TransactionScope>).withConnection === 'function'
  );
}

/** Whether `value` is a {@link Database}: has `query`, and `acquire`, `release` or `withConnection`. */
export function isDatabase(value: unknown): value is Database {
  const d = value as Partial<Pool & PoolConnection> | null;
  return (
    typeof d === 'object' &&
    d !== null &&
    typeof d.query === 'function' &&
    (typeof d.acquire === 'function' || typeof d.release === 'function' || typeof d.withConnection === 'function')
  );
}

import {
  isSubmittable,
  type PoolConnection,
  type QueryConfig,
  type QueryInput,
  type QueryResult,
  type Submittable,
  type TransactionScope,
  type TransactionStatus,
} from '@accountdb/pool';
import type pg from 'pg';
import { RlsScopeClosedError } from './errors.js';

/**
 * What `fn` receives inside {@link Rls.withUserContext}: a query facade over the scope's connection.
 * It cannot release, destroy or end the connection, and refuses queries once the scope is over.
 * Statements run one at a time in call order (concurrent calls queue, as on one connection they must).
 *
 * It is a `TransactionScope` of `@accountdb/pool`, so `@accountdb/query`'s `execute`, `stream`,
 * `transaction` (a SAVEPOINT here) and `executeInTransaction` accept it.
 */
export interface RlsTransaction extends TransactionScope {
  /**
   * A cursor or stream (`pg-cursor`, `pg-query-stream`, what Kysely's `.stream()` passes) runs inside
   * the user's transaction, after the statements issued before it, and is returned as is. Close it (or
   * read it to the end) inside the callback: a scope that ends with one still open rolls back, destroys
   * its connection and throws `RlsScopeError` (`reason: 'notIdle'`); it never waits on the cursor.
   */
  query<S extends Submittable>(submittable: S): S;
  /** Run a statement inside the user's transaction. Values are bound parameters. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
  /**
   * Run `fn` with the scope's connection, inside the user's transaction (BEGIN and the context go
   * out first if no statement has yet). Later statements and the scope's end wait for `fn`. For
   * helpers that need the connection itself (cursors, cancel); do not release or destroy it.
   */
  withConnection<T>(fn: (conn: PoolConnection) => Promise<T> | T): Promise<T>;
  /** The validated user id, as set in the user-id setting. */
  readonly userId: string;
  /** The application role, as set in the role setting. */
  readonly role: string;
  /** Process id of the connection (behind PgBouncer, PgBouncer's; `pg_backend_pid()` gives the server's). */
  readonly processId: number;
  /** Transaction status after the last completed statement; `null` once the scope is over. */
  transactionStatus(): TransactionStatus | null;
}

/**
 * Sends the scope's first statement together with BEGIN and the context (only those two when `text` is
 * undefined); see `Rls.withUserContext`.
 */
export type FirstStatement = (
  text: string | QueryConfig | undefined,
  values: unknown[] | undefined,
) => Promise<QueryResult | undefined>;

/** The facade handed to `fn`; `close()` and `settled()` are ours, not the caller's. */
export class ScopedTransaction implements RlsTransaction {
  readonly #lease: PoolConnection;
  readonly #first: FirstStatement;
  #started = false;
  #open = true;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(lease: PoolConnection, first: FirstStatement, userId: string, role: string) {
    this.#lease = lease;
    this.#first = first;
    this.userId = userId;
    this.role = role;
  }

  readonly userId: string;
  readonly role: string;

  get processId(): number {
    return this.#lease.processId;
  }

  /** Whether any statement was sent (and so BEGIN and the context). */
  get started(): boolean {
    return this.#started;
  }

  query<S extends Submittable>(submittable: S): S;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
  query<R extends pg.QueryResultRow>(text: QueryInput, values?: unknown[]): Promise<QueryResult<R>> | Submittable {
    const first = !this.#started;
    if (isSubmittable(text)) {
      if (!this.#open) throw new RlsScopeClosedError();
      // Submitted in call order; a cursor read before then waits in its own queue. Submitted even when
      // opening the transaction failed, so the driver fails it (or runs it without the context, seeing
      // nothing) instead of leaving its reads waiting forever.
      void this.#enqueue(async () => {
        try {
          if (first) await this.#first(undefined, undefined);
        } finally {
          this.#lease.query(text);
        }
      }).catch(() => {});
      return text;
    }
    return this.#enqueue(() => (first ? this.#first(text, values) : this.#lease.query(text, values))) as Promise<QueryResult<R>>;
  }

  withConnection<T>(fn: (conn: PoolConnection) => Promise<T> | T): Promise<T> {
    const first = !this.#started;
    return this.#enqueue(async () => {
      if (first) await this.#first(undefined, undefined);
      return fn(this.#lease);
    });
  }

  /** Run `work` after everything issued before it; the chain (and so `close()`) waits for it. */
  #enqueue<T>(work: () => Promise<T> | T): Promise<T> {
    if (!this.#open) return Promise.reject(new RlsScopeClosedError());
    this.#started = true;
    const result = this.#chain.then(work, work);
    this.#chain = result.catch(() => {});
    return result;
  }

  transactionStatus(): TransactionStatus | null {
    if (!this.#open) return null;
    return this.#lease.client.getTransactionStatus();
  }

  /** Stop taking statements; resolves when the ones already issued have finished. */
  close(): Promise<unknown> {
    this.#open = false;
    return this.#chain;
  }
}

import { AccountDbError, type PoolConnection, type QueryConfig, type QueryResult } from '@accountdb/pool';
import type pg from 'pg';

/** PostgreSQL's transaction status from the last ReadyForQuery: idle, in a transaction, or in a failed one. */
export type TransactionStatus = 'I' | 'T' | 'E';

/**
 * What `fn` receives inside {@link Rls.withUserContext}: a query facade over the scope's connection.
 * It cannot release, destroy or end the connection, and refuses queries once the scope is over.
 */
export interface RlsTransaction {
  /** Run a statement inside the user's transaction. Values are bound parameters. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
  /** The validated user id, as set in the user-id setting. */
  readonly userId: string;
  /** The application role, as set in the role setting. */
  readonly role: string;
  /** Backend process id (behind PgBouncer: of PgBouncer's client connection, see README). */
  readonly processId: number;
  /** Transaction status after the last completed statement; `null` if unknown. */
  transactionStatus(): TransactionStatus | null;
}

/** The facade handed to `fn`; `close()` is ours, not the caller's. */
export class ScopedTransaction implements RlsTransaction {
  readonly #lease: PoolConnection;
  #open = true;
  #inflight = 0;

  constructor(
    lease: PoolConnection,
    readonly userId: string,
    readonly role: string,
  ) {
    this.#lease = lease;
  }

  get processId(): number {
    return this.#lease.processId;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | QueryConfig,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    if (!this.#open)
      return Promise.reject(
        new AccountDbError('RLS_SCOPE_CLOSED', 'This user-context transaction is over; queries must run inside the callback'),
      );
    this.#inflight++;
    return this.#lease.query<R>(text, values).finally(() => {
      this.#inflight--;
    });
  }

  transactionStatus(): TransactionStatus | null {
    if (!this.#open) return null;
    return this.#lease.client.getTransactionStatus() as TransactionStatus | null;
  }

  /** Statements `fn` started but did not await. */
  get inflight(): number {
    return this.#inflight;
  }

  close(): void {
    this.#open = false;
  }
}

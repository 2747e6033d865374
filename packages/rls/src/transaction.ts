import { AccountDbError, type PoolConnection, type QueryConfig, type QueryResult } from '@accountdb/pool';
import type pg from 'pg';

/** PostgreSQL's transaction status from the last ReadyForQuery: idle, in a transaction, or in a failed one. */
export type TransactionStatus = 'I' | 'T' | 'E';

/**
 * What `fn` receives inside {@link Rls.withUserContext}: a query facade over the scope's connection.
 * It cannot release, destroy or end the connection, and refuses queries once the scope is over.
 * Statements run one at a time in call order (concurrent calls queue, as on one connection they must).
 */
export interface RlsTransaction {
  /** Run a statement inside the user's transaction. Values are bound parameters. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
  /** The validated user id, as set in the user-id setting. */
  readonly userId: string;
  /** The application role, as set in the role setting. */
  readonly role: string;
  /** Process id of the connection (behind PgBouncer, PgBouncer's; `pg_backend_pid()` gives the server's). */
  readonly processId: number;
  /** Transaction status after the last completed statement; `null` once the scope is over. */
  transactionStatus(): TransactionStatus | null;
}

/** Sends the scope's first statement together with BEGIN and the context; see `Rls.withUserContext`. */
export type FirstStatement = (text: string | QueryConfig, values: unknown[] | undefined) => Promise<QueryResult>;

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

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | QueryConfig,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    if (!this.#open)
      return Promise.reject(
        new AccountDbError('RLS_SCOPE_CLOSED', 'This user-context transaction is over; queries must run inside the callback'),
      );
    const first = !this.#started;
    this.#started = true;
    const run = () => (first ? this.#first(text, values) : this.#lease.query(text, values));
    const result = this.#chain.then(run, run) as Promise<QueryResult<R>>;
    this.#chain = result.catch(() => {});
    return result;
  }

  transactionStatus(): TransactionStatus | null {
    if (!this.#open) return null;
    return this.#lease.client.getTransactionStatus() as TransactionStatus | null;
  }

  /** Stop taking statements; resolves when the ones already issued have finished. */
  close(): Promise<unknown> {
    this.#open = false;
    return this.#chain;
  }
}

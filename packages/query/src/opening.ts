import {
  type BatchOptions,
  type BatchOutcome,
  type BatchStatement,
  isSubmittable,
  type PgClient,
  type PoolConnection,
  type QueryConfig,
  type QueryInput,
  type QueryResult,
  type Submittable,
} from '@accountdb/pool';
import { toBatchStatement } from '@accountdb/pool/internal';
import type pg from 'pg';

/**
 * A transaction's lease with BEGIN held back until the first statement, so the two go out in one
 * flight (the pool's batch: one write, one round trip). Only a statement with parameters travels with
 * it: pg sends a parameterless one with the simple protocol, which allows several statements in one
 * string, and a batch would refuse those; such a statement (or anything that reaches past `query`:
 * `client`, a cursor, a batch) gets BEGIN sent alone first, in order, as before.
 */
export class OpeningLease implements PoolConnection {
  readonly #lease: PoolConnection;
  readonly #begin: string;
  /** Settles when BEGIN has run: rejects with its error if it failed. Undefined until sent. */
  #begun: Promise<void> | undefined;

  constructor(lease: PoolConnection, begin: string) {
    this.#lease = lease;
    this.#begin = begin;
  }

  /** Whether BEGIN was sent (some statement ran, or the connection was reached for). */
  get started(): boolean {
    return this.#begun !== undefined;
  }

  /** Resolves once BEGIN has run; rejects with its error. Call only when {@link started}. */
  opened(): Promise<void> {
    return this.#begun ?? Promise.resolve();
  }

  get processId(): number {
    return this.#lease.processId;
  }

  get busy(): boolean {
    return this.#lease.busy;
  }

  get client(): PgClient {
    this.#sendBegin();
    return this.#lease.client;
  }

  query<S extends Submittable>(submittable: S): S;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
  query<R extends pg.QueryResultRow>(text: QueryInput, values?: unknown[]): Promise<QueryResult<R>> | Submittable {
    if (isSubmittable(text)) {
      this.#sendBegin();
      return this.#lease.query(text);
    }
    const statement = this.#begun === undefined ? withBegin(text, values) : undefined;
    if (statement === undefined) {
      this.#sendBegin();
      return this.#lease.query<R>(text, values);
    }
    // The first statement through the connection's statement cache, as every later one (lease.query).
    const flight = this.#lease.batch([
      { text: this.#begin, role: 'begin' },
      { ...statement, cache: true },
    ]);
    this.#begun = flight.then((outcome) => {
      if (!outcome.ok && outcome.role === 'begin') throw outcome.error;
    });
    this.#begun.catch(() => {});
    return flight.then((outcome) => {
      if (!outcome.ok) throw outcome.error;
      return outcome.results[1] as QueryResult<R>;
    });
  }

  batch<Role extends string = string>(
    statements: readonly BatchStatement<Role>[],
    options?: BatchOptions,
  ): Promise<BatchOutcome<Role>> {
    this.#sendBegin();
    return this.#lease.batch(statements, options);
  }

  cancel(): Promise<void> {
    return this.#lease.cancel();
  }

  release(error?: unknown): void {
    this.#lease.release(error);
  }

  destroy(): void {
    this.#lease.destroy();
  }

  /** BEGIN alone, not awaited: pg runs statements in the order they were handed to it. */
  #sendBegin(): void {
    if (this.#begun !== undefined) return;
    this.#begun = this.#lease.query(this.#begin).then(() => undefined);
    this.#begun.catch(() => {});
  }
}

/** The statement as the batch member that follows BEGIN, when it can be one (see {@link OpeningLease}). */
function withBegin(text: string | QueryConfig, values: unknown[] | undefined): BatchStatement<'statement'> | undefined {
  const statement = toBatchStatement(text, values, 'statement');
  // No parameters: pg would use the simple protocol, which allows several statements in one string.
  return statement?.values !== undefined && statement.values.length > 0 ? statement : undefined;
}

import type pg from 'pg';
import { type BatchOptions, type BatchOutcome, type BatchStatement, sendBatch } from './batch.js';
import type { HostPort } from './config.js';
import { toDatabaseError } from './database-errors.js';
import { isPending, type PgClient } from './driver.js';
import { InvalidQueryError, LeaseReleasedError } from './errors.js';
import { isTransientConnectionError } from './retry.js';
import { runCached, type StatementCache, toCacheable } from './statement-cache.js';
import type { PoolTracer } from './tracing.js';

export type { PgClient } from './driver.js';
export type QueryResult<R extends pg.QueryResultRow = pg.QueryResultRow> = pg.QueryResult<R>;
export type QueryConfig = pg.QueryConfig;
/** pg's interface for objects that drive the protocol themselves: `pg-cursor`, `pg-query-stream`. */
export type Submittable = pg.Submittable;
/** What the `query` of a lease or a transaction scope takes: a statement, or a {@link Submittable}. */
export type QueryInput = string | QueryConfig | Submittable;

/** Anything that runs a query: a `Pool`, a {@link PoolConnection}, or an RLS scope. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
}

/**
 * A leased connection. Releasing is idempotent (pgx: "safe to call multiple times"): a second
 * `release()`, or a `release()` after `destroy()`, does nothing.
 */
export interface PoolConnection extends Queryable {
  /**
   * A cursor or stream (`pg-cursor`, `pg-query-stream`: a Submittable) runs on this connection and is
   * returned as is, as `pg.Client#query` does. Close it (or read it to the end) before releasing: a
   * connection released with one still open is destroyed, never handed on with a portal open.
   */
  query<S extends Submittable>(submittable: S): S;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
  /**
   * Send several statements as one flight: one write, one round trip, one Sync (pgx's `SendBatch`).
   * They share one transaction (an implicit one unless they include BEGIN); after a failure the server
   * skips the rest. Never rejects: the outcome says which statement failed, by its `role`, with the
   * error typed as everywhere else. `prepare` makes named statements exist on this connection.
   */
  batch<Role extends string = string>(
    statements: readonly BatchStatement<Role>[],
    options?: BatchOptions,
  ): Promise<BatchOutcome<Role>>;
  /** The driver client, for features beyond `query` (COPY, LISTEN). Do not `end()` it. */
  readonly client: PgClient;
  /** Backend process id (for logs and `pg_stat_activity`). */
  readonly processId: number;
  /** True while a Submittable given to {@link query} has not finished (a cursor not yet closed or read to the end). */
  readonly busy: boolean;
  /**
   * Ask the server to cancel whatever this connection is running, with the protocol's CancelRequest
   * (a short-lived connection to the same host that carries only the backend's key: no login, no
   * connection slot, and it reaches the right backend through PgBouncer). Resolves once the server has
   * taken the request, within `connectionTimeoutMs`; it does not wait for the statement to stop (its
   * query then fails with `QueryCanceledError`). Harmless on an idle connection. Rejects with
   * `DatabaseUnavailableError` when the server cannot be reached in time. Await it before the next
   * statement on this connection, or a late cancel may hit that one.
   */
  cancel(): Promise<void>;
  /**
   * Give the connection back. It is destroyed instead of reused when it is broken, not idle
   * (inside or after a failed transaction, or a cursor still open), or `error` is a connection-level
   * error. A plain SQL error does not destroy a healthy connection.
   */
  release(error?: unknown): void;
  /** Close this connection instead of returning it. */
  destroy(): void;
}

/** One pooled connection, as the pool keeps it (HikariCP's PoolEntry). */
export interface Connection {
  readonly id: number;
  readonly client: PgClient;
  readonly host: HostPort;
  /** Backend process id, read once when the connection is adopted (every lease reports it). */
  readonly processId: number;
  readonly createdAt: number;
  readonly expiresAt: number;
  lastUsedAt: number;
  acquiredAt: number;
  broken: boolean;
  /** Closed because the server stayed silent past `queryTimeoutMs` while a query waited. */
  timedOut: boolean;
  /** Statements (or batches) sent and not yet settled. */
  inflight: number;
  /** Submittables given to this lease, checked at release. */
  submitted: Submittable[] | undefined;
  leakTimer: NodeJS.Timeout | undefined;
  /** Sets the silence bound on this connection's socket (see `watchSilence`). */
  readonly boundSilence: (ms: number) => void;
  /** Its automatic prepared statements (`statementCacheSize`); undefined when the cache is off. It goes with the connection. */
  readonly statements: StatementCache | undefined;
}

/** The pool's side of a lease: take the connection back, cancel what it runs, trace its statements. */
export interface LeaseOwner {
  /** The pool's tracer, set once at creation; undefined when the pool has none. */
  tracer: PoolTracer | undefined;
  release(conn: Connection, error?: unknown, destroy?: boolean): void;
  cancel(conn: Connection): Promise<void>;
}

/**
 * Run one statement on a pooled connection: count it in flight, mark the connection broken when the
 * session is gone, and map the failure through `toDatabaseError`. The one path every statement takes.
 * A statement with values goes through the connection's statement cache when it has one.
 */
export async function runStatement<R extends pg.QueryResultRow>(
  conn: Connection,
  text: string | QueryConfig,
  values: unknown[] | undefined,
): Promise<QueryResult<R>> {
  const cacheable = conn.statements?.active ? toCacheable(text, values) : undefined;
  conn.inflight++;
  try {
    if (cacheable) return await runCached<R>(conn.client, conn.statements as StatementCache, cacheable);
    return await conn.client.query<R>(text as string, values);
  } catch (err) {
    // The server may report a FATAL error before the socket closes; don't let it go back idle meanwhile.
    if (isFatal(err)) conn.broken = true;
    throw toDatabaseError(err, { host: conn.host, committing: isCommit(text) });
  } finally {
    conn.inflight--;
  }
}

/** {@link runStatement}, inside a query span when the pool has a tracer. */
export function runTraced<R extends pg.QueryResultRow>(
  tracer: PoolTracer | undefined,
  conn: Connection,
  text: string | QueryConfig,
  values: unknown[] | undefined,
): Promise<QueryResult<R>> {
  return tracer === undefined ? runStatement<R>(conn, text, values) : tracer.traceQuery<R>(conn, text, values, runStatement);
}

/** Whether a Submittable handed to this connection is still queued or running. */
export function hasOpenSubmittable(conn: Connection): boolean {
  return conn.submitted?.some((s) => isPending(conn.client, s)) === true;
}

/** The lease handed to callers: a thin, release-once view of one pooled connection. */
export class Lease implements PoolConnection {
  #conn: Connection | undefined;
  readonly #owner: LeaseOwner;
  readonly processId: number;

  constructor(conn: Connection, owner: LeaseOwner) {
    this.#conn = conn;
    this.#owner = owner;
    this.processId = conn.processId;
  }

  get client(): PgClient {
    return this.#live().client;
  }

  get busy(): boolean {
    return this.#conn !== undefined && hasOpenSubmittable(this.#conn);
  }

  #live(): Connection {
    if (!this.#conn) throw new LeaseReleasedError();
    return this.#conn;
  }

  query<S extends Submittable>(submittable: S): S;
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string | QueryConfig, values?: unknown[]): Promise<QueryResult<R>>;
  query<R extends pg.QueryResultRow>(text: QueryInput, values?: unknown[]): Promise<QueryResult<R>> | Submittable {
    const conn = this.#conn;
    if (!conn) return Promise.reject(new LeaseReleasedError());
    if (isSubmittable(text)) {
      if (values !== undefined) throw new InvalidQueryError('a Submittable carries its own values; pass none beside it');
      if (conn.submitted === undefined) conn.submitted = [text];
      else conn.submitted.push(text);
      conn.client.query(text);
      return text;
    }
    return runTraced<R>(this.#owner.tracer, conn, text, values);
  }

  batch<Role extends string = string>(
    statements: readonly BatchStatement<Role>[],
    options?: BatchOptions,
  ): Promise<BatchOutcome<Role>> {
    const conn = this.#conn;
    if (!conn) return Promise.reject(new LeaseReleasedError());
    const tracer = this.#owner.tracer;
    if (tracer === undefined) return sendOn(conn, statements, options);
    return tracer.traceBatch(conn, statements, () => sendOn(conn, statements, options));
  }

  async cancel(): Promise<void> {
    await this.#owner.cancel(this.#live());
  }

  release(error?: unknown): void {
    // Idempotent: once released or destroyed, the connection is no longer ours to give back.
    const conn = this.#conn;
    if (!conn) return;
    this.#conn = undefined;
    this.#owner.release(conn, error);
  }

  destroy(): void {
    const conn = this.#conn;
    if (!conn) return;
    this.#conn = undefined;
    this.#owner.release(conn, undefined, true);
  }
}

/** Send a batch on a pooled connection, counted in flight; a fatal failure marks the connection broken. */
function sendOn<Role extends string>(
  conn: Connection,
  statements: readonly BatchStatement<Role>[],
  options: BatchOptions | undefined,
): Promise<BatchOutcome<Role>> {
  conn.inflight++;
  return sendBatch(
    conn.client,
    statements,
    options,
    conn.host,
    (outcome) => {
      conn.inflight--;
      if (!outcome.ok && isFatal(outcome.raw)) conn.broken = true;
    },
    conn.statements?.active ? conn.statements : undefined,
  );
}

/** pg's test for a Submittable: an object with a `submit` method. */
export function isSubmittable(value: unknown): value is Submittable {
  return typeof value === 'object' && value !== null && typeof (value as { submit?: unknown }).submit === 'function';
}

/** The session is gone or going: FATAL/PANIC from the server, or a transient connection failure. */
export function isFatal(err: unknown): boolean {
  const severity = (err as { severity?: unknown } | null)?.severity;
  return severity === 'FATAL' || severity === 'PANIC' || isTransientConnectionError(err);
}

function isCommit(text: string | QueryConfig): boolean {
  const sql = typeof text === 'string' ? text : text.text;
  return /^\s*(commit|end)\b/i.test(sql);
}

/**
 * A `pg.Pool`-compatible face of our pool, for code and libraries written against `pg.Pool` (Kysely's
 * `PostgresDialect`, Drizzle's `node-postgres` driver, Prisma's `@prisma/adapter-pg`). It is a real
 * subclass of `pg.Pool`, so `instanceof pg.Pool` checks pass, but every connection comes from an
 * `@accountdb/pool` `Pool` (or, inside an RLS scope, from the scope's transaction).
 */
import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { PoolConfig, PoolConfigInput } from './config.js';
import { isTransactionScope, type TransactionScope } from './database.js';
import { SqlError } from './database-errors.js';
import { hasOpenCursor } from './driver.js';
import { InvalidQueryError, NestedTransactionError } from './errors.js';
import { isSubmittable, type PoolConnection, type QueryConfig, type Submittable } from './lease.js';
import { type CreatePoolOptions, Pool } from './pool.js';

/** What {@link createPgPool} wraps: our pool, a transaction scope (an RLS scope's `tx`), or a config for a new pool. */
export type PgPoolSource = Pool | TransactionScope | PoolConfig | PoolConfigInput;

/** Options of {@link createPgPool}. */
export interface CreatePgPoolOptions extends CreatePoolOptions {
  /**
   * Whether `end()` closes the pool behind the face. Default: true when the face created the pool (from
   * a config), false when it wraps a `Pool` you passed in (its owner closes it; `end()` then only stops
   * this face from handing out connections). A scope is never closed by the face.
   */
  readonly endClosesPool?: boolean;
}

/** The client `connect()` hands out: pg's `PoolClient`, with `release(destroyOrError)` as pg means it. */
export type PgPoolClient = pg.PoolClient;

type Callback<T> = (err: Error | undefined, value?: T) => void;
type ConnectCallback = (err: Error | undefined, client: pg.PoolClient | undefined, done: (release?: unknown) => void) => void;

/**
 * `pg.Pool`, backed by an `@accountdb/pool` `Pool` or an RLS scope. Create it with {@link createPgPool}.
 *
 * - `connect()` leases a connection and resolves to its `pg.Client` (a `pg.PoolClient`: text, config
 *   objects and Submittables such as `pg-cursor`/`pg-query-stream`, pg's own errors);
 *   `client.release()` gives it back, `client.release(true)` or `client.release(err)` destroys it (pg's
 *   meaning). A connection released inside a transaction or with a cursor open is destroyed, never handed
 *   on dirty; a plain SQL error no longer destroys a connection that `pool.query` used.
 * - `query()` runs one statement on a leased connection (text or config object, promise or callback).
 * - `end()`, `totalCount`/`idleCount`/`waitingCount`, and the events `connect`, `acquire`, `release`,
 *   `remove`, `error` (an idle connection failed; emitted only while someone listens, so a missing
 *   listener never crashes the process).
 *
 * On a scope (`createPgPool(tx)`), every `connect()` resolves to one client that sends through `tx`, in
 * call order; BEGIN, COMMIT, ROLLBACK and the like are refused with {@link NestedTransactionError}, and
 * `release()` gives nothing back (the scope owns its connection).
 */
export class PgPool extends pg.Pool {
  /** The `@accountdb/pool` pool behind this face; undefined when it runs on a transaction scope. */
  readonly pool: Pool | undefined;
  readonly #scope: TransactionScope | undefined;
  readonly #endClosesPool: boolean;
  /** Clients this face has seen: each gets its `error`/`end` listeners once. */
  readonly #seen = new WeakSet<pg.Client>();
  /** Clients handed out by `connect()` and not yet released: their errors are theirs, not the pool's `error`. */
  readonly #checkedOut = new WeakSet<pg.Client>();
  #scopeClient: ScopeClient | undefined;
  #ended = false;
  #ending: Promise<void> | undefined;

  /** Use {@link createPgPool}. */
  constructor(source: PgPoolSource, options: CreatePgPoolOptions = {}) {
    const { endClosesPool, ...poolOptions } = options;
    const scope = isScope(source) ? source : undefined;
    let pool: Pool | undefined;
    if (scope === undefined) {
      if (source instanceof Pool) pool = source;
      else {
        // Our own pool, with an onConnect that introduces each new connection to this face.
        const hooks = poolOptions.hooks ?? {};
        const userOnConnect = hooks.onConnect;
        pool = new Pool(source as PoolConfig | PoolConfigInput, {
          ...poolOptions,
          hooks: {
            ...hooks,
            onConnect: async (client) => {
              if (userOnConnect) await userOnConnect(client);
              // Runs on a connect, which needs an acquire, which needs this face: `this` exists by then.
              this.#introduce(client);
            },
          },
        });
      }
    }
    super(pool ? pgOptionsOf(pool) : { max: 1 });
    this.pool = pool;
    this.#scope = scope;
    const owned = pool !== undefined && pool !== source;
    this.#endClosesPool = endClosesPool ?? owned;
    this.#defineCounts();
  }

  // pg.Pool declares the counts as properties; ours read the pool (own accessors shadow nothing of pg's).
  #defineCounts(): void {
    const counts = {
      totalCount: () => this.pool?.totalCount ?? 1,
      idleCount: () => this.pool?.idleCount ?? 0,
      waitingCount: () => this.pool?.waitingCount ?? 0,
      expiredCount: () => 0,
      ending: () => this.#ending !== undefined,
      ended: () => this.#ended,
    };
    for (const [name, get] of Object.entries(counts)) Object.defineProperty(this, name, { get, configurable: true });
  }

  /** First sight of a pool connection: pg.Pool's `connect` event; its failures while idle become `error`, its end `remove`. */
  #introduce(client: pg.Client): void {
    if (this.#seen.has(client)) return;
    this.#seen.add(client);
    client.on('error', (err: Error) => {
      if (!this.#checkedOut.has(client) && this.listenerCount('error') > 0) this.emit('error', err, client as pg.PoolClient);
    });
    client.on('end', () => {
      if (this.listenerCount('remove') > 0) this.emit('remove', client as pg.PoolClient);
    });
    if (this.listenerCount('connect') > 0) this.emit('connect', client as pg.PoolClient);
  }

  /**
   * Lease a connection: resolves to its `pg.Client` with `release(destroyOrError?)`. Rejects with the
   * pool's typed errors (`PoolTimeoutError`, `DatabaseUnavailableError`, `PoolClosedError`).
   */
  override connect(): Promise<pg.PoolClient>;
  override connect(callback: ConnectCallback): void;
  override connect(callback?: ConnectCallback): Promise<pg.PoolClient> | undefined {
    const connecting = this.#connect();
    if (!callback) return connecting;
    connecting.then(
      (client) => callback(undefined, client, (release) => client.release(release as boolean | Error | undefined)),
      (err: Error) => callback(err, undefined, () => {}),
    );
    return undefined;
  }

  /** One client per scope: libraries that key state per connection (Kysely's onCreateConnection) see one connection. */
  #clientOfScope(scope: TransactionScope): ScopeClient {
    this.#scopeClient ??= new ScopeClient(scope);
    return this.#scopeClient;
  }

  async #connect(): Promise<pg.PoolClient> {
    if (this.#ending) throw new Error('Cannot use a pool after calling end on the pool');
    if (this.#scope) {
      const client = this.#clientOfScope(this.#scope) as unknown as pg.PoolClient;
      if (this.listenerCount('acquire') > 0) this.emit('acquire', client);
      return client;
    }
    const lease = await this.pool!.acquire();
    const client = lease.client as pg.PoolClient;
    this.#introduce(client);
    this.#checkedOut.add(client);
    let released = false;
    client.release = (destroyOrError?: boolean | Error) => {
      if (released) throw new Error('Release called on client which has already been released to the pool.');
      released = true;
      this.#checkedOut.delete(client);
      if (this.listenerCount('release') > 0)
        this.emit('release', destroyOrError instanceof Error ? destroyOrError : undefined!, client);
      // A cursor still open is a portal the next borrower would inherit (pg.Pool hands it on).
      if (destroyOrError || hasOpenCursor(client)) lease.destroy();
      else lease.release();
    };
    if (this.listenerCount('acquire') > 0) this.emit('acquire', client);
    return client;
  }

  /**
   * Run one statement on a leased connection: `(text | config, values?, callback?)`. pg's own errors,
   * as `pg.Pool#query` rejects with. A Submittable needs a connection held across reads: use
   * `connect()` and the client's `query` (here it throws `InvalidQueryError`).
   */
  // pg.Pool's own overloads (a Submittable is accepted by the types, and refused at run time, as above).
  override query<T extends pg.Submittable>(queryStream: T): T;
  override query<R extends unknown[] = unknown[], I = unknown[]>(
    queryConfig: pg.QueryArrayConfig<I>,
    values?: pg.QueryConfigValues<I>,
  ): Promise<pg.QueryArrayResult<R>>;
  override query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(
    queryConfig: pg.QueryConfig<I>,
  ): Promise<pg.QueryResult<R>>;
  override query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(
    queryTextOrConfig: string | pg.QueryConfig<I>,
    values?: pg.QueryConfigValues<I>,
  ): Promise<pg.QueryResult<R>>;
  override query<R extends unknown[] = unknown[], I = unknown[]>(
    queryConfig: pg.QueryArrayConfig<I>,
    callback: (err: Error, result: pg.QueryArrayResult<R>) => void,
  ): void;
  override query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(
    queryTextOrConfig: string | pg.QueryConfig<I>,
    callback: (err: Error, result: pg.QueryResult<R>) => void,
  ): void;
  override query<R extends pg.QueryResultRow = pg.QueryResultRow, I = unknown[]>(
    queryText: string,
    values: pg.QueryConfigValues<I>,
    callback: (err: Error, result: pg.QueryResult<R>) => void,
  ): void;
  override query(...args: unknown[]): unknown {
    const [text, second, third] = args as [unknown, unknown, unknown];
    const callback = (typeof third === 'function' ? third : typeof second === 'function' ? second : undefined) as
      | Callback<pg.QueryResult>
      | undefined;
    const values = typeof second === 'function' ? undefined : (second as unknown[] | undefined);
    if (typeof text === 'function')
      throw new TypeError('Passing a function as the first parameter to pool.query is not supported');
    if (isSubmittable(text))
      throw new InvalidQueryError(
        'pool.query cannot hold a connection for a cursor or stream; use pool.connect() and client.query',
      );
    const running = this.#query(text as string | QueryConfig, values);
    if (!callback) return running;
    running.then(
      (result) => callback(undefined, result),
      (err: Error) => callback(err),
    );
    return undefined;
  }

  async #query(text: string | QueryConfig, values: unknown[] | undefined): Promise<pg.QueryResult> {
    if (this.#ending) throw new Error('Cannot use a pool after calling end on the pool');
    if (this.#scope) return this.#clientOfScope(this.#scope).run(text, values);
    const lease = await this.pool!.acquire();
    this.#introduce(lease.client);
    let result: pg.QueryResult;
    try {
      result = await lease.client.query(text as string, values);
    } catch (err) {
      // Our meaning, not pg's: a plain SQL error does not destroy a healthy connection (the pool decides).
      lease.release(err);
      throw err;
    }
    lease.release();
    return result;
  }

  /**
   * Stop handing out connections; close the pool behind the face when it owns it (see
   * {@link CreatePgPoolOptions.endClosesPool}). Leased connections close as they come back. A second
   * call rejects, as pg's does.
   */
  override end(): Promise<void>;
  override end(callback: () => void): void;
  override end(callback?: () => void): Promise<void> | undefined {
    if (this.#ending) {
      const err = new Error('Called end on pool more than once');
      if (callback) {
        (callback as unknown as (e: Error) => void)(err);
        return undefined;
      }
      return Promise.reject(err);
    }
    this.#ending = (async () => {
      if (this.#endClosesPool && this.pool) await this.pool.close();
      this.#ended = true;
    })();
    if (!callback) return this.#ending;
    this.#ending.then(callback, callback);
    return undefined;
  }
}

/**
 * The one client a face over a scope hands out: statements go through the scope (its transaction, in
 * call order); transaction control is refused before it is sent; errors come back pg-shaped.
 */
class ScopeClient extends EventEmitter {
  readonly #scope: TransactionScope;

  constructor(scope: TransactionScope) {
    super();
    this.#scope = scope;
  }

  /** One statement through the scope, or NestedTransactionError. */
  run(text: string | QueryConfig, values?: readonly unknown[]): Promise<pg.QueryResult> {
    const statement = transactionControl(typeof text === 'string' ? text : text.text);
    if (statement) return Promise.reject(new NestedTransactionError(statement));
    return this.#scope.query(text, values as unknown[] | undefined).catch((err: unknown) => {
      throw toPgError(err);
    });
  }

  query(text: unknown, second?: unknown, third?: unknown): unknown {
    const callback = (typeof third === 'function' ? third : typeof second === 'function' ? second : undefined) as
      | Callback<pg.QueryResult>
      | undefined;
    const values = typeof second === 'function' ? undefined : (second as unknown[] | undefined);
    if (isSubmittable(text)) {
      if (values !== undefined) throw new InvalidQueryError('a Submittable carries its own values; pass none beside it');
      const sub: Submittable & { handleError?: (err: unknown) => void } = text;
      // In call order, inside the scope's transaction. If the scope is over, fail the cursor's reads
      // instead of leaving them waiting forever.
      this.#scope
        .withConnection((conn: PoolConnection) => {
          conn.query(sub);
        })
        .catch((err: unknown) => sub.handleError?.(err));
      return sub;
    }
    const running = this.run(text as string | QueryConfig, values);
    if (!callback) return running;
    running.then(
      (result) => callback(undefined, result),
      (err: Error) => callback(err),
    );
    return undefined;
  }

  /** The scope owns its connection: giving it back is the scope's end, not this client's. */
  release(): void {}

  escapeIdentifier(str: string): string {
    return pg.escapeIdentifier(str);
  }

  escapeLiteral(str: string): string {
    return pg.escapeLiteral(str);
  }
}

const LEADING_NOISE = /^(?:\s+|--[^\n]*(?:\n|$)|\/\*[\s\S]*?\*\/)*/;
const TRANSACTION_CONTROL =
  /^(begin|start\s+transaction|commit(?:\s+prepared)?|end|abort|rollback(?:\s+prepared)?|prepare\s+transaction)\b/i;
const ROLLBACK_TO = /^rollback(?:\s+(?:work|transaction))?\s+to\b/i;

/**
 * The leading keywords of `sql` when it starts or ends a transaction (BEGIN, START TRANSACTION, COMMIT,
 * END, ABORT, ROLLBACK but not ROLLBACK TO SAVEPOINT, PREPARE TRANSACTION, COMMIT/ROLLBACK PREPARED),
 * upper-cased; otherwise undefined. Leading whitespace and comments are skipped. Only the first
 * statement of a multi-statement string is looked at: a later COMMIT is still caught by the RLS scope's
 * closing check, which rolls back and throws.
 */
export function transactionControl(sql: string): string | undefined {
  const rest = sql.replace(LEADING_NOISE, '');
  if (ROLLBACK_TO.test(rest)) return undefined;
  const m = TRANSACTION_CONTROL.exec(rest);
  return m ? m[1]!.replace(/\s+/g, ' ').toUpperCase() : undefined;
}

/**
 * The error a `pg` user (or a library written for pg) expects: our typed `SqlError` becomes a
 * `pg.DatabaseError` with the SQLSTATE in `code` and the server's fields (`detail`, `constraint`,
 * `table`, `column`, ...), the typed error as its `cause`. Anything else is returned as is.
 */
export function toPgError(err: unknown): unknown {
  if (!(err instanceof SqlError)) return err;
  const pgError = new pg.DatabaseError(err.message, 0, 'error');
  Object.assign(pgError, {
    code: err.sqlstate,
    severity: err.severity ?? 'ERROR',
    schema: err.schema,
    table: err.table,
    column: err.column,
    constraint: err.constraint,
    dataType: err.dataType,
    hint: err.hint,
    routine: err.routine,
  });
  // DETAIL may carry row values: kept, but non-enumerable (as on the typed error), so logging the error object shows none.
  Object.defineProperty(pgError, 'detail', { value: err.detail, enumerable: false, configurable: true, writable: true });
  Object.defineProperty(pgError, 'cause', { value: err, enumerable: false, configurable: true, writable: true });
  return pgError;
}

function isScope(source: PgPoolSource): source is TransactionScope {
  return typeof source === 'object' && source !== null && !(source instanceof Pool) && isTransactionScope(source as never);
}

/** What pg.Pool's `options` shows: where it connects, never the password. */
function pgOptionsOf(pool: Pool): pg.PoolConfig {
  const c = pool.config;
  const first = c.hosts[0];
  return {
    max: c.maxConnections,
    min: c.minConnections,
    ...(first ? { host: first.host, port: first.port } : {}),
    database: c.database,
    user: c.user,
  };
}

/**
 * A `pg.Pool` (a real subclass: `instanceof pg.Pool` holds) on our pool. `source` is a config (a new
 * pool this face owns: `end()` closes it), a `Pool` you keep (a face over it; `end()` leaves it open), or
 * a transaction scope such as an RLS scope's `tx` (everything runs in the scope's transaction; the
 * library's own BEGIN/COMMIT/ROLLBACK is refused with {@link NestedTransactionError}).
 */
export function createPgPool(source: PgPoolSource, options: CreatePgPoolOptions = {}): PgPool {
  return new PgPool(source, options);
}

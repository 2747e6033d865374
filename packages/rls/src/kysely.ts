import { NestedTransactionError } from '@accountdb/pool';
import type { UserContext } from './options.js';
import type { ConnectionSource, Rls } from './rls.js';

/*
 * Kysely's dialect interfaces, structurally (this package does not depend on Kysely): a compiled
 * query in, `{ rows, numAffectedRows }` out. Checked against Kysely 0.28 by tooling/ecosystem's tests.
 */

/** Kysely's `CompiledQuery`, as far as a driver reads it. */
export interface KyselyCompiledQuery {
  readonly sql: string;
  readonly parameters: readonly unknown[];
}

/** Kysely's `QueryResult`. */
export interface KyselyQueryResult<R> {
  readonly rows: R[];
  readonly numAffectedRows?: bigint;
}

/** Kysely's `DatabaseConnection`. */
export interface KyselyDatabaseConnection {
  executeQuery<R>(compiledQuery: KyselyCompiledQuery): Promise<KyselyQueryResult<R>>;
  streamQuery<R>(compiledQuery: KyselyCompiledQuery, chunkSize?: number): AsyncIterableIterator<KyselyQueryResult<R>>;
}

/** Kysely's `Driver`. */
export interface KyselyDriver {
  init(): Promise<void>;
  acquireConnection(): Promise<KyselyDatabaseConnection>;
  beginTransaction(connection: KyselyDatabaseConnection, settings: unknown): Promise<void>;
  commitTransaction(connection: KyselyDatabaseConnection): Promise<void>;
  rollbackTransaction(connection: KyselyDatabaseConnection): Promise<void>;
  releaseConnection(connection: KyselyDatabaseConnection): Promise<void>;
  destroy(): Promise<void>;
}

/** Kysely's `Dialect` (`PostgresDialect` is one). */
export interface KyselyDialect {
  createDriver(): KyselyDriver;
  createQueryCompiler(): unknown;
  createAdapter(): unknown;
  createIntrospector(db: never): unknown;
}

/** Options of {@link rlsKyselyDialect}. */
export interface RlsKyselyDialectOptions {
  /** The `Rls` whose `query` sends each statement. */
  readonly rls: Rls;
  /** Where connections come from: an `@accountdb/pool` `Pool`. */
  readonly pool: ConnectionSource;
  /**
   * The user every statement runs as, or a function read once per statement (for instance from an
   * `AsyncLocalStorage` the request handler fills), so one `Kysely` instance can serve every request.
   */
  readonly context: UserContext | (() => UserContext);
}

const AFFECTS_ROWS = new Set(['INSERT', 'UPDATE', 'DELETE', 'MERGE']);

/**
 * A Kysely dialect whose every statement is one `rls.query`: the context and the compiled query travel
 * in one round trip, in one implicit transaction, as the user. `base` supplies the SQL compiler, adapter
 * and introspector (pass `new PostgresDialect({ pool })`; its pool is never used). `db.transaction()` and
 * `.stream()` need one transaction across statements: they are refused with `NestedTransactionError`;
 * use `withUserContext` with a Kysely on `createPgPool(tx)` (`@accountdb/pool/pg`) for those.
 */
export function rlsKyselyDialect<D extends KyselyDialect>(base: D, options: RlsKyselyDialectOptions): D {
  const { rls, pool, context } = options;
  const contextNow = typeof context === 'function' ? context : () => context;
  const connection: KyselyDatabaseConnection = {
    async executeQuery<R>(compiled: KyselyCompiledQuery): Promise<KyselyQueryResult<R>> {
      const { rows, rowCount, command } = await rls.query(pool, contextNow(), compiled.sql, [...compiled.parameters]);
      return AFFECTS_ROWS.has(command)
        ? { rows: rows as R[], numAffectedRows: BigInt(rowCount ?? 0) }
        : { rows: (rows ?? []) as R[] };
    },
    streamQuery(): AsyncIterableIterator<never> {
      throw new NestedTransactionError('a stream (cursor) across statements');
    },
  };
  const refuse = (what: string) => () => Promise.reject(new NestedTransactionError(what));
  const driver: KyselyDriver = {
    init: () => Promise.resolve(),
    acquireConnection: () => Promise.resolve(connection),
    beginTransaction: refuse('BEGIN (db.transaction() on rlsKyselyDialect, where each statement is its own rls.query)'),
    commitTransaction: refuse('COMMIT'),
    rollbackTransaction: refuse('ROLLBACK'),
    releaseConnection: () => Promise.resolve(),
    destroy: () => Promise.resolve(),
  };
  // A new object, not a subclass: PostgresDialect keeps its config in a private field its other methods do not read.
  const dialect: KyselyDialect = {
    createDriver: () => driver,
    createQueryCompiler: () => base.createQueryCompiler(),
    createAdapter: () => base.createAdapter(),
    createIntrospector: (db) => base.createIntrospector(db),
  };
  return dialect as D;
}

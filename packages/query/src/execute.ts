import { toDatabaseError } from '@accountdb/pool';
import type pg from 'pg';
import { type CancelOptions, runCancellable, validateCancelOptions } from './cancel.js';
import { assertDatabase, type Database, withLease } from './connection.js';
import { QueryArgumentError } from './errors.js';
import type { SqlFragment } from './sql.js';
import { type Query, toStatement } from './statement.js';
import { readRows, validateCount } from './stream.js';

/** A result row. */
export type Row = pg.QueryResultRow;
/** Seed fetch modes: first row, all rows, the first `count` rows, or none (the affected-row count). */
export type FetchMode = 'one' | 'all' | 'many' | 'none';

/** Options of {@link execute}. */
export interface ExecuteOptions extends CancelOptions {
  /** What to return. Default `all`. */
  fetch?: FetchMode;
  /** With `fetch: 'many'`: how many rows (the server stops producing rows after that). Default 100. */
  count?: number;
}

const FETCH_MODES: readonly FetchMode[] = ['one', 'all', 'many', 'none'];
const DEFAULT_MANY = 100;

/** An `execute` call whose arguments passed {@link checkArguments}. */
interface CheckedCall {
  text: string;
  values: unknown[] | undefined;
  fetch: FetchMode;
  count: number;
  options: ExecuteOptions;
}

/** Check every argument before any SQL runs; throws `QueryArgumentError`. */
export function checkArguments(
  db: unknown,
  query: Query,
  paramsOrOptions: readonly unknown[] | ExecuteOptions | undefined,
  maybeOptions: ExecuteOptions | undefined,
): CheckedCall {
  assertDatabase(db);
  let params: readonly unknown[] | undefined;
  let options: ExecuteOptions;
  if (paramsOrOptions === undefined || Array.isArray(paramsOrOptions)) {
    params = paramsOrOptions as readonly unknown[] | undefined;
    options = maybeOptions ?? {};
  } else if (typeof query !== 'string' && maybeOptions === undefined && typeof paramsOrOptions === 'object') {
    options = paramsOrOptions as ExecuteOptions;
  } else {
    throw new QueryArgumentError('params must be an array');
  }
  if (typeof options !== 'object' || options === null) throw new QueryArgumentError('options must be an object');
  const { text, values } = toStatement(query, params);
  const fetch = options.fetch ?? 'all';
  if (!FETCH_MODES.includes(fetch))
    throw new QueryArgumentError(`fetch must be one of ${FETCH_MODES.join(', ')}, got ${String(fetch)}`);
  if (options.count !== undefined && fetch !== 'many') throw new QueryArgumentError("count applies only to fetch: 'many'");
  const count = options.count === undefined ? DEFAULT_MANY : validateCount(options.count, 'count');
  validateCancelOptions(options);
  return { text, values, fetch, count, options };
}

function shape(result: pg.QueryResult | pg.QueryResult[], fetch: FetchMode): unknown {
  // A multi-statement string without parameters yields one result per statement; the last one counts.
  const last = Array.isArray(result) ? result[result.length - 1] : result;
  const rows = last?.rows ?? [];
  if (fetch === 'one') return rows[0];
  if (fetch === 'none') return last?.rowCount ?? 0;
  return rows;
}

const rethrowMapped = (err: unknown): never => {
  throw toDatabaseError(err);
};

/** @internal Run a validated statement. Plain `.then` on the hot path: no extra async frames per query. */
export function run(db: Database, p: CheckedCall): Promise<unknown> {
  const { text, values, fetch, count, options } = p;
  if (options.signal === undefined && options.timeoutMs === undefined && fetch !== 'many') {
    return db.query(text, values).then((result) => shape(result, fetch), rethrowMapped);
  }
  return withLease(db, options.signal, (lease) =>
    runCancellable(lease, options, async () =>
      fetch === 'many' ? readRows(lease, text, values, count) : shape(await lease.query(text, values), fetch),
    ),
  );
}

/**
 * Run one statement (seed `execute_query`) on a pool, a leased connection or a transaction scope (an
 * RLS scope's `tx`: the statement runs inside the scope, as the scope's user), with bound parameters.
 * Returns, by `fetch`: `'all'` (default) every row; `'one'` the first row or `undefined`; `'many'` the
 * first `count` rows; `'none'` the affected-row count.
 *
 * Throws a {@link SqlError} subclass for server errors (`UniqueViolationError`, ...),
 * `StatementTimeoutError` / `QueryCanceledError` when `timeoutMs` / `signal` canceled it on the server,
 * and `QueryArgumentError` for bad arguments before any SQL runs. Inside a transaction (a scope, or a
 * lease in one) a canceled statement leaves that transaction failed, as any failed statement does:
 * the scope then rolls back and throws — unless the statement ran in a `transaction(tx, …)` savepoint,
 * which rolls back alone. A `sql` fragment carries its own
 * values, so options may follow it directly: `execute(db, sql`...`, { fetch: 'one' })`.
 */
export function execute<R extends Row = Row>(
  db: Database,
  query: Query,
  params: readonly unknown[] | undefined,
  options: ExecuteOptions & { fetch: 'one' },
): Promise<R | undefined>;
export function execute<R extends Row = Row>(
  db: Database,
  query: SqlFragment,
  options: ExecuteOptions & { fetch: 'one' },
): Promise<R | undefined>;
export function execute(
  db: Database,
  query: Query,
  params: readonly unknown[] | undefined,
  options: ExecuteOptions & { fetch: 'none' },
): Promise<number>;
export function execute(db: Database, query: SqlFragment, options: ExecuteOptions & { fetch: 'none' }): Promise<number>;
export function execute<R extends Row = Row>(
  db: Database,
  query: SqlFragment,
  options: ExecuteOptions & { fetch?: 'all' | 'many' },
): Promise<R[]>;
export function execute<R extends Row = Row>(
  db: Database,
  query: Query,
  params?: readonly unknown[],
  options?: ExecuteOptions & { fetch?: 'all' | 'many' },
): Promise<R[]>;
export function execute(
  db: Database,
  query: Query,
  paramsOrOptions?: readonly unknown[] | ExecuteOptions,
  maybeOptions?: ExecuteOptions,
): Promise<unknown> {
  let call: CheckedCall;
  try {
    call = checkArguments(db, query, paramsOrOptions, maybeOptions);
  } catch (err) {
    return Promise.reject(err);
  }
  return run(db, call);
}

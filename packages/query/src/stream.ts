import type { PoolConnection } from '@accountdb/pool';
import { toDatabaseError } from '@accountdb/pool';
import type pg from 'pg';
import Cursor from 'pg-cursor';
import { runCancellable, validateCancelOptions } from './cancel.js';
import { assertDatabase, canceledBeforeStart, type Database, holdLease } from './connection.js';
import { QueryArgumentError } from './errors.js';
import { type Query, toStatement } from './statement.js';

/** Options of {@link stream}. */
export interface StreamOptions {
  /** Rows fetched per round trip. Default 1,000. */
  batchSize?: number;
  /**
   * Stop the iteration when this aborts: a fetch in flight is canceled on the server, the portal is
   * closed, the connection released, and the loop throws `QueryCanceledError`. Checked before every
   * fetch, so it also stops a consumer that is slow between batches.
   */
  signal?: AbortSignal;
}

const DEFAULT_BATCH_SIZE = 1_000;

export function validateCount(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new QueryArgumentError(`${name} must be an integer >= 1, got ${String(value)}`);
  }
  return value;
}

/**
 * Read up to `count` rows of a statement through a portal, then close it: the server stops after
 * `count` rows instead of producing them all. Errors are the driver's (unmapped).
 */
export async function readRows<R extends pg.QueryResultRow>(
  lease: PoolConnection,
  text: string,
  values: unknown[] | undefined,
  count: number,
): Promise<R[]> {
  const cursor = lease.query(new Cursor<R>(text, values));
  // On error pg-cursor has already sent Sync, so there is nothing to close; the caller maps the error.
  const rows = await cursor.read(count);
  await cursor.close();
  return rows;
}

async function* iterate<R extends pg.QueryResultRow>(
  db: Database,
  text: string,
  values: unknown[] | undefined,
  batchSize: number,
  signal: AbortSignal | undefined,
): AsyncGenerator<R, void, undefined> {
  const { lease, done } = await holdLease(db, signal);
  let failure: unknown;
  try {
    // pg-cursor is the driver's own companion: a named portal read with Execute(n) + Flush, so no
    // DECLARE/BEGIN round trips and it works inside or outside a transaction.
    const cursor = lease.query(new Cursor<R>(text, values));
    let open = true;
    const read = signal
      ? () => runCancellable(lease, { signal }, () => cursor.read(batchSize))
      : () =>
          cursor.read(batchSize).catch((err: unknown) => {
            throw toDatabaseError(err);
          });
    try {
      for (;;) {
        // Aborted while the consumer worked on the last batch: the portal is still open and is closed below.
        if (signal?.aborted) throw canceledBeforeStart(signal.reason);
        let batch: R[];
        try {
          batch = await read();
        } catch (err) {
          // pg-cursor has already sent Sync after the error: nothing to close. The pool takes the
          // connection back once the server's ReadyForQuery arrives.
          open = false;
          throw err;
        }
        if (batch.length === 0) break;
        yield* batch;
      }
    } finally {
      // Runs on completion, on error and when the consumer breaks out: the portal must not outlive the loop.
      if (open) await cursor.close();
    }
  } catch (err) {
    failure = err;
    throw err;
  } finally {
    done(failure);
  }
}

/**
 * Rows of `query` as an async iterable over a server-side portal (seed `get_cursor`): at most
 * `batchSize` rows are in memory at a time. On a pool it leases a connection for the iteration;
 * breaking out of the loop, finishing it or an error closes the portal and releases the connection.
 * On a lease or inside a transaction scope (an RLS scope's `tx`) the portal is on that connection,
 * inside its transaction: the scope does not end before the loop does, and the connection runs
 * nothing else while the loop is open (a statement issued inside the loop waits for it — run it after).
 * Arguments are checked now (typed errors before any SQL); the statement starts at the first `next()`.
 *
 * @example for await (const row of stream(pool, sql`select * from events where day = ${day}`)) handle(row);
 */
export function stream<R extends pg.QueryResultRow = pg.QueryResultRow>(
  db: Database,
  query: Query,
  params?: readonly unknown[],
  options: StreamOptions = {},
): AsyncIterable<R> {
  assertDatabase(db);
  const { text, values } = toStatement(query, params);
  const batchSize = options.batchSize === undefined ? DEFAULT_BATCH_SIZE : validateCount(options.batchSize, 'batchSize');
  validateCancelOptions({ signal: options.signal });
  return { [Symbol.asyncIterator]: () => iterate<R>(db, text, values, batchSize, options.signal) };
}

import { randomBytes } from 'node:crypto';
import type pg from 'pg';
import { toBatchStatement } from './batch.js';
import {
  afterReadyForQuery,
  enqueue,
  type FillableResult,
  failCopyIn,
  isPipelined,
  newResult,
  onParseComplete,
  type PgClient,
  prepareValue,
  writeFlight,
} from './driver.js';
import { encodeBatch } from './protocol.js';

/**
 * One connection's automatic prepared statements (pgx's default exec mode): SQL text → the name of
 * the server-side statement prepared from it, least recently used first, at most `capacity` of them.
 * A statement that falls out (evicted, gone stale, failed to prepare) is queued for Close; the next
 * flight on the connection carries the Close messages ahead of its own. Close of a name the server
 * does not have is not an error, so a queued name that was never prepared costs nothing.
 *
 * The cache is consulted when a flight is written, not when it is queued: pg writes the next query
 * only after the previous one's ReadyForQuery, so at that moment the cache says exactly what the
 * server has. On a pipelined connection (see `pipeline.ts`) flights are written before earlier ones
 * are answered: a statement whose Parse is in flight already counts as known (later flights only
 * bind it, and the server runs them after the Parse), and a Parse that fails drops the name and
 * remembers it, so a later flight that bound it (26000) re-prepares instead of clearing the cache.
 */
export class StatementCache {
  readonly capacity: number;
  /** Map order is recency: the first entry is the least recently used. */
  readonly #names = new Map<string, string>();
  /** The most recently used text: a run of the same statement skips reordering the map. */
  #recent: string | undefined;
  /** Names to Close with the next flight. */
  #closing: string[] = [];
  /**
   * Names are unique to this connection (a random prefix and a counter, never reused): behind a
   * pooler that shares server sessions, another client's statement can never be mistaken for ours.
   */
  readonly #prefix = `adb_${randomBytes(4).toString('hex')}_`;
  #next = 0;
  /** Times the server lost statements we had prepared (see {@link clear}). */
  #losses = 0;

  constructor(capacity: number) {
    this.capacity = capacity;
  }

  /**
   * False once the server lost our statements twice on this connection: it does not keep them (a pooler
   * in transaction mode that does not track prepared statements, PgBouncer before 1.21), so the
   * connection's statements go unnamed from then on, as with `statementCacheSize: 0`.
   */
  get active(): boolean {
    return this.#losses < 2;
  }

  /** Statements prepared (or being prepared) on the connection. */
  get size(): number {
    return this.#names.size;
  }

  /** The prepared statement for `text`, now the most recently used; undefined when there is none. */
  get(text: string): string | undefined {
    const name = this.#names.get(text);
    if (name !== undefined && text !== this.#recent) {
      this.#names.delete(text);
      this.#names.set(text, name);
      this.#recent = text;
    }
    return name;
  }

  /** A new name for `text`, recorded as prepared; the least recently used statement beyond capacity is queued for Close. */
  add(text: string): string {
    const name = this.#prefix + this.#next++;
    this.#names.set(text, name);
    this.#recent = text;
    if (this.#names.size > this.capacity) {
      const [oldest, oldName] = this.#names.entries().next().value as [string, string];
      this.#names.delete(oldest);
      this.#closing.push(oldName);
    }
    return name;
  }

  /** Forget `text`'s statement (stale, or its Parse failed) and queue its name for Close. */
  drop(text: string, name: string): void {
    if (this.#names.get(text) === name) this.#names.delete(text);
    this.#closing.push(name);
  }

  /** Names whose Parse failed, for flights pipelined behind it that bound them (bounded: oldest out first). */
  readonly #failedParses = new Set<string>();

  /** `text`'s Parse failed: forget it as {@link drop} does, and remember the name as one the server never had. */
  parseFailed(text: string, name: string): void {
    this.drop(text, name);
    this.#failedParses.add(name);
    if (this.#failedParses.size > 64) this.#failedParses.delete(this.#failedParses.values().next().value as string);
  }

  /** Whether `name` is one whose Parse failed (a 26000 on it says nothing about the server losing our statements). */
  neverPrepared(name: string): boolean {
    return this.#failedParses.has(name);
  }

  /** Forget `text`'s statement without closing it: the name is not ours on the server (42P05). */
  forget(text: string, name: string): void {
    if (this.#names.get(text) === name) this.#names.delete(text);
  }

  /**
   * Forget every statement: the server lacks one we tracked (DEALLOCATE ALL or DISCARD ALL ran, or a
   * pooler moved us to another session). Each is queued for Close in case the server still has it.
   */
  clear(): void {
    this.#losses++;
    for (const name of this.#names.values()) this.#closing.push(name);
    this.#names.clear();
  }

  /** Names to Close in the flight being written; the caller hands them back with {@link requeue} if it writes nothing. */
  takeClosing(): readonly string[] {
    if (this.#closing.length === 0) return NO_NAMES;
    const closing = this.#closing;
    this.#closing = [];
    return closing;
  }

  /** Closes that did not go out after all (the flight could not be encoded). */
  requeue(names: readonly string[]): void {
    if (names.length > 0) this.#closing.push(...names);
  }
}

const NO_NAMES: readonly string[] = [];

/** A statement the cache can run: parameterised text (a statement without values goes as a simple query). */
export interface CacheableStatement {
  readonly text: string;
  readonly values: readonly unknown[];
  readonly rowMode?: 'array' | undefined;
  readonly types?: pg.CustomTypesConfig | undefined;
}

/**
 * `text`/`values` as a {@link CacheableStatement}, or undefined when the cache does not apply: no
 * values (pg sends those as a simple query, which may hold several statements), a named config (pg
 * prepares those itself), or a config key beyond text, values, rowMode and types.
 */
export function toCacheable(text: string | pg.QueryConfig, values: unknown[] | undefined): CacheableStatement | undefined {
  if (typeof text === 'string') return values !== undefined && values.length > 0 ? { text, values } : undefined;
  const statement = toBatchStatement(text, values, 'caller');
  return statement?.values !== undefined && statement.values.length > 0 ? (statement as CacheableStatement) : undefined;
}

/** 0A000 "cached plan must not change result type": a table under a prepared statement changed. */
const STALE_PLAN = '0A000';
/** 26000 "prepared statement does not exist". */
const NO_SUCH_STATEMENT = '26000';
/** 42P05 "prepared statement already exists". */
const DUPLICATE_STATEMENT = '42P05';

/**
 * Run `statement` on `client` through its statement cache: the first use sends Parse (named) + Bind +
 * Describe + Execute + Sync, later uses Bind + Describe + Execute + Sync, with Closes of statements
 * that fell out of the cache in front, all in one write. Rejects with the driver's error (the caller
 * types it). A stale plan (0A000), a statement the server lost (26000) or a name it already has
 * (42P05) fixes the cache and, outside a transaction block (where nothing ran and nothing was rolled
 * back), re-prepares and runs the statement once more; inside one the error stands.
 */
export function runCached<R extends pg.QueryResultRow>(
  client: PgClient,
  cache: StatementCache,
  statement: CacheableStatement,
): Promise<pg.QueryResult<R>> {
  const query = new CachedQuery<R>(client, cache, statement, true, false);
  enqueue(client, query);
  return query.done;
}

/** One cached statement as a pg Submittable (as a batch is): pg queues it and routes the server's messages to it. */
class CachedQuery<R extends pg.QueryResultRow> implements pg.Submittable {
  readonly done: Promise<pg.QueryResult<R>>;
  #resolve!: (result: pg.QueryResult<R> | Promise<pg.QueryResult<R>>) => void;
  #reject!: (error: unknown) => void;
  readonly #client: PgClient;
  readonly #cache: StatementCache;
  readonly #statement: CacheableStatement;
  readonly #mayRetry: boolean;
  /** Parse unnamed, past the cache: the re-run of a statement whose pipelined Parse failed (it reports the real error). */
  readonly #unnamed: boolean;
  #name = '';
  /** This flight prepares the statement (first use). */
  #parsing = false;
  /** The server has the statement: its ParseComplete arrived (first use), or it was cached. */
  #prepared = false;
  #stopListening: (() => void) | undefined;
  #result: FillableResult | undefined;
  #rowError: unknown;
  #settled = false;

  constructor(client: PgClient, cache: StatementCache, statement: CacheableStatement, mayRetry: boolean, unnamed: boolean) {
    this.#client = client;
    this.#cache = cache;
    this.#statement = statement;
    this.#mayRetry = mayRetry;
    this.#unnamed = unnamed;
    this.done = new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
    });
  }

  /** pg calls this when the connection is ready (the previous query has its ReadyForQuery): the cache is exact now. */
  submit(connection: pg.Connection): Error | undefined {
    const { text } = this.#statement;
    if (this.#unnamed) {
      let unnamed: Buffer;
      try {
        unnamed = encodeBatch([{ text, values: this.#statement.values }], NO_PARSES, 0, prepareValue);
      } catch (err) {
        this.#settled = true;
        this.#reject(err);
        return err instanceof Error ? err : new Error(String(err));
      }
      this.#prepared = true;
      writeFlight(connection, unnamed);
      this.#result = newResult(this.#statement.rowMode, this.#statement.types);
      return undefined;
    }
    let name = this.#cache.get(text);
    if (name === undefined) {
      name = this.#cache.add(text);
      this.#parsing = true;
    }
    this.#name = name;
    const closes = this.#cache.takeClosing();
    let flight: Buffer;
    try {
      flight = encodeBatch(
        [{ text, name, parse: this.#parsing, values: this.#statement.values }],
        NO_PARSES,
        0,
        prepareValue,
        closes,
      );
    } catch (err) {
      // Nothing was written: the Closes wait for the next flight; a new entry was never prepared.
      this.#cache.requeue(closes);
      if (this.#parsing) this.#cache.drop(text, name);
      this.#settled = true;
      this.#reject(err);
      return err instanceof Error ? err : new Error(String(err));
    }
    if (this.#parsing) {
      const prepared = () => {
        this.#prepared = true;
      };
      this.#stopListening = isPipelined(this.#client)
        ? onParseComplete(connection, prepared, this.#client, this)
        : onParseComplete(connection, prepared);
    } else this.#prepared = true;
    writeFlight(connection, flight);
    this.#result = newResult(this.#statement.rowMode, this.#statement.types);
    return undefined;
  }

  handleRowDescription(msg: { fields: unknown[] }): void {
    this.#result?.addFields(msg.fields);
  }

  handleDataRow(msg: { fields: unknown[] }): void {
    const result = this.#result;
    if (!result || this.#rowError !== undefined) return;
    try {
      result.addRow(result.parseRow(msg.fields));
    } catch (err) {
      this.#rowError = err;
    }
  }

  handleCommandComplete(msg: unknown): void {
    this.#result?.addCommandComplete(msg);
  }

  handleEmptyQuery(): void {}

  /** A server ERROR is settled after its ReadyForQuery (the transaction status is then current); anything else at once. */
  handleError(error: unknown, connection?: pg.Connection): void {
    if (this.#settled) return;
    if (connection && (error as { severity?: unknown } | null)?.severity === 'ERROR')
      afterReadyForQuery(connection, () => this.#failed(error));
    else this.#failed(error);
  }

  handleReadyForQuery(): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#stopListening?.();
    if (this.#rowError !== undefined) this.#reject(this.#rowError);
    else this.#resolve(this.#result as pg.QueryResult<R>);
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: pg.Connection): void {
    failCopyIn(connection, 'COPY FROM STDIN is not supported through pool.query with values');
  }

  handleCopyData(): void {}

  #failed(error: unknown): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#stopListening?.();
    const text = this.#statement.text;
    const sqlstate = (error as { code?: unknown } | null)?.code;
    let ours = false;
    let unnamed = false;
    if (this.#unnamed) {
      // Past the cache: nothing to fix.
    } else if (sqlstate === STALE_PLAN && !this.#parsing) {
      this.#cache.drop(text, this.#name);
      ours = true;
    } else if (sqlstate === NO_SUCH_STATEMENT && !this.#parsing) {
      // Pipelined behind a Parse of this name that failed: prepare it again (that reports the real error).
      if (this.#cache.neverPrepared(this.#name)) unnamed = true;
      else this.#cache.clear();
      ours = true;
    } else if (sqlstate === DUPLICATE_STATEMENT && !this.#prepared) {
      // Not ours to Close: forget it and prepare under a new name.
      this.#cache.forget(text, this.#name);
      ours = true;
    } else if (!this.#prepared) {
      // The Parse failed (or the session ended before it was answered): forget the entry, and Close
      // the name in case the server has it after all (harmless when it does not).
      this.#cache.parseFailed(text, this.#name);
    }
    if (ours && this.#mayRetry && this.#client.getTransactionStatus() === 'I') {
      const again = new CachedQuery<R>(this.#client, this.#cache, this.#statement, false, unnamed);
      enqueue(this.#client, again);
      this.#resolve(again.done);
    } else this.#reject(error);
  }
}

const NO_PARSES: readonly never[] = [];

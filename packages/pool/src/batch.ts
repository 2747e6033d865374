import type pg from 'pg';
import type { HostPort } from './config.js';
import { toDatabaseError } from './database-errors.js';
import {
  afterReadyForQuery,
  type FillableResult,
  failCopyIn,
  newResult,
  type PgClient,
  prepareValue,
  writeFlight,
} from './driver.js';
import { type EncodableStatement, encodeBatch } from './protocol.js';
import type { StatementCache } from './statement-cache.js';

/**
 * Batches: several statements sent as one extended-protocol flight (Parse/Bind/Describe/Execute each,
 * one Sync), one write and one round trip, as pgx's `SendBatch`. The statements share one transaction
 * (an implicit one unless they include BEGIN); once one fails the server skips the rest until Sync.
 * Callers say what each statement is (`role`) and learn which one failed by its role, not its position.
 */

/** One statement of a batch: text with bound values, as `pg` would send it. */
export interface BatchStatement<Role extends string = string> {
  readonly text: string;
  readonly values?: readonly unknown[] | undefined;
  readonly rowMode?: 'array' | undefined;
  readonly types?: pg.CustomTypesConfig | undefined;
  /** Bookkeeping statements: no row description is asked for and their rows are dropped (no result). */
  readonly discardRows?: boolean | undefined;
  /**
   * Bind this server-side prepared statement (one of the batch's `prepare`, or one a batch prepared
   * on this connection before) instead of parsing `text`. When the connection cannot take another
   * prepared statement, the statement is parsed unnamed from `text` instead.
   */
  readonly name?: string | undefined;
  /** What this statement is to the caller (`'begin'`, `'context'`, `'caller'`, …): a failure names it. */
  readonly role?: Role | undefined;
  /**
   * Bind it through the connection's statement cache, as `lease.query` does (prepared under a
   * generated name on its first run on the connection, only bound after that). Only for a statement
   * with values and no `name`; ignored when the pool's `statementCacheSize` is 0.
   */
  readonly cache?: boolean | undefined;
}

/** A server-side prepared statement a batch makes sure exists on its connection. */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

export interface BatchOptions {
  /** Prepared statements to parse (named) on this connection unless it already has them. */
  readonly prepare?: readonly PreparedStatement[] | undefined;
  /**
   * Index of the statement the named Parses go in front of (default 0). After a leading BEGIN (1),
   * so an isolation level still comes first; all of them before the caller's own SQL, so they exist
   * on a server connection all together or not at all.
   */
  readonly prepareBefore?: number | undefined;
}

/**
 * How a batch ended. `failed` says where: `unsent` (a value could not be serialised; nothing was
 * written), `statement` (the server rejected the statement at `index`: the rest was skipped), `rows`
 * (a type parser threw on a row after the batch completed). `error` is typed (`toDatabaseError`);
 * `raw` is the driver's error, for a caller's own markers in a message (never show it: it may quote values).
 */
export type BatchOutcome<Role extends string = string> =
  | { readonly ok: true; readonly results: readonly (pg.QueryResult | undefined)[] }
  | {
      readonly ok: false;
      readonly failed: 'unsent' | 'statement' | 'rows';
      readonly index: number;
      readonly role: Role | undefined;
      readonly error: unknown;
      readonly raw: unknown;
    };

/** Keys of a statement config a batch carries as is (a `name` only where the caller prepares it). */
const BATCHABLE = new Set(['text', 'values', 'rowMode', 'types']);
const BATCHABLE_WITH_NAME = new Set([...BATCHABLE, 'name']);

/**
 * A `query(text, values)` call as a batch member with `role`, or undefined when it needs what a batch
 * lacks (any config key beyond text, values, rowMode and types; `name` too unless `allowName`, for a
 * caller that prepares named statements itself).
 */
export function toBatchStatement<Role extends string>(
  text: string | pg.QueryConfig,
  values: unknown[] | undefined,
  role: Role,
  allowName = false,
): BatchStatement<Role> | undefined {
  if (typeof text === 'string') return { text, values, role };
  if (typeof text !== 'object' || text === null || typeof text.text !== 'string') return undefined;
  const keys = allowName ? BATCHABLE_WITH_NAME : BATCHABLE;
  if (Object.keys(text).some((k) => !keys.has(k))) return undefined;
  const config = text as pg.QueryConfig & { rowMode?: 'array'; types?: pg.CustomTypesConfig };
  return { text: config.text, values: values ?? config.values, rowMode: config.rowMode, types: config.types, role };
}

/** Most server-side statements batches prepare per connection; beyond it, named statements go unnamed. */
export const MAX_PREPARED_PER_CONNECTION = 256;

/** Named statements each connection has parsed (a session-level fact, so it survives ROLLBACK). */
const parsedByClient = new WeakMap<PgClient, Set<string>>();

const NONE: readonly PreparedStatement[] = [];

/** 26000: no such prepared statement; 42P05: it already exists: the server side is not what we tracked. */
export function isPreparedStatementError(error: unknown): boolean {
  const sqlstate = (error as { sqlstate?: unknown; code?: unknown } | null)?.sqlstate;
  return sqlstate === '26000' || sqlstate === '42P05';
}

/**
 * Send `statements` on `client` as one flight and wait for the outcome (never rejects). Named
 * statements the connection lacks are parsed first; a failure that shows the server does not have
 * what we tracked (26000/42P05) forgets them all, and a stale plan (0A000) forgets that statement.
 * With the connection's statement `cache`, statements marked `cache` go through it, as `lease.query`
 * does (no re-run here: the outcome reports the failure and the cache is fixed for the next batch).
 */
export function sendBatch<Role extends string>(
  client: PgClient,
  statements: readonly BatchStatement<Role>[],
  options: BatchOptions = {},
  host?: HostPort,
  settled?: (outcome: BatchOutcome<Role>) => void,
  cache?: StatementCache,
): Promise<BatchOutcome<Role>> {
  let known = parsedByClient.get(client);
  if (!known) {
    known = new Set();
    parsedByClient.set(client, known);
  }
  const parsed = known;
  const prepare = options.prepare ?? NONE;
  // Usually every statement is already parsed on this connection: skip building new lists.
  let toParse = NONE;
  let sent: readonly BatchStatement<Role>[] = statements;
  if (!prepare.every((p) => parsed.has(p.name))) {
    const room = Math.max(0, MAX_PREPARED_PER_CONNECTION - parsed.size);
    toParse = prepare.filter((p) => !parsed.has(p.name)).slice(0, room);
    const available = new Set([...parsed, ...toParse.map((p) => p.name)]);
    // A name that is neither on the connection nor being parsed now (the cap) goes unnamed.
    if (statements.some((s) => s.name !== undefined && !available.has(s.name)))
      sent = statements.map((s) => (s.name !== undefined && !available.has(s.name) ? { ...s, name: undefined } : s));
  }
  // The bookkeeping runs synchronously as the batch settles, not in a `.then` of its promise: on the
  // one-worker hot path every extra promise hop is measurable.
  const batch = new StatementBatch(
    sent,
    toParse,
    options.prepareBefore ?? 0,
    host,
    (outcome) => {
      if (!outcome.ok && isPreparedStatementError(outcome.error)) parsed.clear();
      else if (toParse !== NONE) for (const p of toParse) parsed.add(p.name);
      if (!outcome.ok && (outcome.error as { sqlstate?: unknown }).sqlstate === '0A000') {
        const name = sent[outcome.index]?.name;
        if (name !== undefined) parsed.delete(name);
      }
      settled?.(outcome);
    },
    cache,
  );
  client.query(batch);
  return batch.done;
}

/** A batch statement that went through the statement cache: where it is, and whether this flight prepared it. */
interface CachedMember {
  readonly index: number;
  readonly text: string;
  readonly name: string;
  readonly parse: boolean;
}

const cacheable = (s: BatchStatement) =>
  s.cache === true && s.name === undefined && s.values !== undefined && s.values.length > 0;

/**
 * The statements as encoded: each one marked `cache` (with values, no name) bound to its cached
 * statement, prepared in this flight on first use. Decided when the flight is written, when the cache is exact.
 */
function throughCache(
  statements: readonly BatchStatement[],
  cache: StatementCache,
  members: CachedMember[],
): readonly EncodableStatement[] {
  if (!statements.some(cacheable)) return statements;
  return statements.map((s, index) => {
    if (!cacheable(s)) return s;
    let name = cache.get(s.text);
    const parse = name === undefined;
    if (name === undefined) name = cache.add(s.text);
    members.push({ index, text: s.text, name, parse });
    return { text: s.text, values: s.values, discardRows: s.discardRows, name, parse };
  });
}

/**
 * Keep the cache true to the server after a failed batch: statements the server skipped (after the
 * failing one) or whose Parse may have failed are dropped (a Close of a name the server lacks is
 * harmless); a stale plan (0A000) drops its statement; a lost one (26000) clears the cache.
 */
function settleCached(
  cache: StatementCache,
  members: readonly CachedMember[],
  closes: readonly string[],
  failed: 'unsent' | 'statement',
  index: number,
  raw: unknown,
): void {
  if (failed === 'unsent') cache.requeue(closes);
  const code = (raw as { code?: unknown } | null)?.code;
  for (const m of members) {
    if (failed === 'unsent' || m.index > index) {
      if (m.parse) cache.drop(m.text, m.name);
    } else if (m.index === index) {
      if (m.parse) {
        if (code === '42P05') cache.forget(m.text, m.name);
        else cache.drop(m.text, m.name);
      } else if (code === '0A000') cache.drop(m.text, m.name);
      else if (code === '26000') cache.clear();
    }
  }
}

/**
 * The batch as a pg Submittable (the interface `pg-cursor` uses): pg queues it like any query and
 * routes the server's messages to it, so the pool's in-flight bookkeeping sees it as one statement.
 */
class StatementBatch<Role extends string> implements pg.Submittable {
  readonly done: Promise<BatchOutcome<Role>>;
  readonly #statements: readonly BatchStatement<Role>[];
  readonly #toParse: readonly PreparedStatement[];
  readonly #parseBefore: number;
  /** One Result per statement whose rows we keep; bookkeeping statements get none (less work per request). */
  #results: (FillableResult | undefined)[] = [];
  #index = 0;
  #rowError: unknown;
  #rowErrorAt = -1;
  #unsent = false;
  #settled = false;
  #resolve!: (outcome: BatchOutcome<Role>) => void;
  readonly #host: HostPort | undefined;
  readonly #onSettle: (outcome: BatchOutcome<Role>) => void;
  readonly #cache: StatementCache | undefined;
  /** Statements bound through the cache in this flight, and the Closes it carries. */
  readonly #cached: CachedMember[] = [];
  #closes: readonly string[] = [];

  /** `onSettle` runs once, synchronously, just before `done` resolves. */
  constructor(
    statements: readonly BatchStatement<Role>[],
    toParse: readonly PreparedStatement[],
    parseBefore: number,
    host: HostPort | undefined,
    onSettle: (outcome: BatchOutcome<Role>) => void,
    cache?: StatementCache,
  ) {
    this.#host = host;
    this.#cache = cache;
    this.#onSettle = onSettle;
    this.#statements = statements;
    this.#toParse = toParse;
    this.#parseBefore = parseBefore;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  #settle(outcome: BatchOutcome<Role>): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#cache && !outcome.ok && outcome.failed !== 'rows')
      settleCached(this.#cache, this.#cached, this.#closes, outcome.failed, outcome.index, outcome.raw);
    this.#onSettle(outcome);
    this.#resolve(outcome);
  }

  #fail(failed: 'unsent' | 'statement' | 'rows', index: number, raw: unknown): void {
    const role = this.#statements[index]?.role;
    this.#settle({ ok: false, failed, index, role, error: toDatabaseError(raw, { host: this.#host }), raw });
  }

  /** pg calls this when the connection is ready; an Error returned is reported to us without anything sent. */
  submit(connection: pg.Connection): Error | undefined {
    let flight: Buffer;
    try {
      // Serialise every value before writing a byte: a value that cannot be sent (say, a cyclic
      // object) must fail the batch whole, not leave half of it on the wire without its Sync.
      let encodable: readonly EncodableStatement[] = this.#statements;
      if (this.#cache) {
        encodable = throughCache(this.#statements, this.#cache, this.#cached);
        this.#closes = this.#cache.takeClosing();
      }
      flight = encodeBatch(encodable, this.#toParse, this.#parseBefore, prepareValue, this.#closes);
    } catch (err) {
      this.#unsent = true;
      return err instanceof Error ? err : new Error(String(err));
    }
    writeFlight(connection, flight);
    // Result objects are built after the write, while the server works on the flight.
    this.#results = this.#statements.map((s) => (s.discardRows ? undefined : newResult(s.rowMode, s.types)));
    return undefined;
  }

  handleRowDescription(msg: { fields: unknown[] }): void {
    this.#results[this.#index]?.addFields(msg.fields);
  }

  handleDataRow(msg: { fields: unknown[] }): void {
    const result = this.#results[this.#index];
    if (!result || this.#rowError !== undefined) return;
    try {
      result.addRow(result.parseRow(msg.fields));
    } catch (err) {
      this.#rowError = err;
      this.#rowErrorAt = this.#index;
    }
  }

  handleCommandComplete(msg: unknown): void {
    this.#results[this.#index]?.addCommandComplete(msg);
    this.#index++;
  }

  handleEmptyQuery(): void {
    this.#index++;
  }

  /**
   * A server error (the rest of the batch is skipped) or a connection error; pg stops routing to us.
   * After a statement error the server still sends ReadyForQuery with the transaction status: the
   * outcome waits for it, so a caller reading the connection's status afterwards reads the real one.
   * A FATAL error or a lost socket brings none, and a value that could not be sent needs none.
   */
  handleError(error: unknown, connection?: pg.Connection): void {
    const index = this.#index;
    if (this.#unsent) this.#fail('unsent', -1, error);
    else if (connection && (error as { severity?: unknown } | null)?.severity === 'ERROR')
      afterReadyForQuery(connection, () => this.#fail('statement', index, error));
    else this.#fail('statement', index, error);
  }

  handleReadyForQuery(): void {
    if (this.#rowError !== undefined) this.#fail('rows', this.#rowErrorAt, this.#rowError);
    else this.#settle({ ok: true, results: this.#results });
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: pg.Connection): void {
    failCopyIn(connection, 'COPY FROM STDIN is not supported in a batch');
  }

  handleCopyData(): void {}
}

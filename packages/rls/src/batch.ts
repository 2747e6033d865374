import { toDatabaseError } from '@accountdb/pool';
import pg from 'pg';
import { encodeBatch } from './protocol.js';

/** One statement of a {@link StatementBatch}: text with bound values, as `pg` would send it. */
export interface BatchStatement {
  readonly text: string;
  readonly values?: readonly unknown[] | undefined;
  readonly rowMode?: 'array' | undefined;
  readonly types?: pg.CustomTypesConfig | undefined;
  /** Our own bookkeeping statements: no row description is asked for and their rows are dropped. */
  readonly discardRows?: boolean;
  /** Bind this server-side prepared statement (one of the batch's `prepared`) instead of parsing `text`. */
  readonly name?: string;
}

/** A server-side prepared statement a batch makes sure exists on its connection. */
export interface PreparedStatement {
  readonly name: string;
  readonly text: string;
}

const NONE: readonly PreparedStatement[] = [];

/** Named statements each connection has parsed (a session-level fact, so it survives ROLLBACK). */
const parsedByClient = new WeakMap<pg.Client, Set<string>>();

/** Most server-side statements a batch parses per connection; beyond it a caller's named statement goes unnamed. */
export const MAX_PREPARED_PER_CONNECTION = 256;

/** Whether `name` is, or may still be, prepared on this connection (the per-connection cap). */
export function mayPrepare(client: pg.Client, name: string): boolean {
  const parsed = parsedByClient.get(client);
  return !parsed || parsed.has(name) || parsed.size < MAX_PREPARED_PER_CONNECTION;
}

/** After the server dropped (or we deallocated) `name` on this connection: parse it again next time. */
export function forgetPrepared(client: pg.Client, name: string): void {
  parsedByClient.get(client)?.delete(name);
}

/** 26000: no such prepared statement; 42P05: it already exists — both mean the server side is not ours to track. */
export function isPreparedStatementError(error: unknown): boolean {
  const sqlstate = (error as { sqlstate?: unknown } | null)?.sqlstate;
  return sqlstate === '26000' || sqlstate === '42P05';
}

/**
 * How a batch ended: every result, or the index of the statement that failed and why. Index -1:
 * a value could not be serialised and nothing was sent. `error` is typed by `toDatabaseError`;
 * `raw` is the driver's error, for our own markers (never shown: it may quote values).
 */
export type BatchOutcome =
  | { ok: true; results: (pg.QueryResult | undefined)[] }
  | { ok: false; index: number; error: unknown; raw: unknown };

/** What pg's Result does beyond its typed surface (parseRow/addRow are how pg.Query fills it). */
interface FillableResult extends pg.QueryResult {
  addFields(fields: unknown[]): void;
  addCommandComplete(msg: unknown): void;
  parseRow(fields: unknown[]): pg.QueryResultRow;
  addRow(row: pg.QueryResultRow): void;
}

const prepareValue = (pg as unknown as { utils: { prepareValue(value: unknown): unknown } }).utils.prepareValue;

/**
 * Several statements sent as one extended-protocol flight — Parse/Bind/Describe/Execute each, then a
 * single Sync — through pg's public Submittable interface (`client.query(submittable)`, as pg-cursor
 * does). One write, one ReadyForQuery, one round trip: the statements share one transaction (an
 * implicit one unless they include BEGIN), and once one fails the server skips the rest until Sync.
 */
export class StatementBatch implements pg.Submittable {
  readonly done: Promise<BatchOutcome>;
  readonly #statements: readonly BatchStatement[];
  /** One Result per statement whose rows we keep; our bookkeeping statements get none (less work per request). */
  #results: (FillableResult | undefined)[] = [];
  #index = 0;
  #rowError: unknown;
  #unsent = false;
  #resolve!: (outcome: BatchOutcome) => void;
  #settled = false;
  readonly #onOutcome: ((outcome: BatchOutcome) => void) | undefined;

  readonly #toParse: readonly PreparedStatement[];
  readonly #parseBefore: number;

  /** `onOutcome` runs once, synchronously, just before `done` resolves. */
  constructor(
    statements: readonly BatchStatement[],
    toParse: readonly PreparedStatement[] = [],
    parseBefore = 0,
    onOutcome?: (outcome: BatchOutcome) => void,
  ) {
    this.#statements = statements;
    this.#onOutcome = onOutcome;
    this.#toParse = toParse;
    this.#parseBefore = parseBefore;
    this.done = new Promise((resolve) => {
      this.#resolve = resolve;
    });
  }

  #settle(outcome: BatchOutcome): void {
    if (this.#settled) return;
    this.#settled = true;
    this.#onOutcome?.(outcome);
    this.#resolve(outcome);
  }

  /** pg calls this when the connection is ready; an Error returned is reported to us without anything sent. */
  submit(connection: pg.Connection): Error | undefined {
    let flight: Buffer;
    try {
      // Serialise every value before writing a byte: a value that cannot be sent (say, a cyclic
      // object) must fail the batch whole, not leave half of it on the wire without its Sync.
      // Every named statement goes up front (after a leading BEGIN, whose isolation level must
      // precede any parse): on any server connection they then exist all together or not at all,
      // and a failure there comes before the caller's SQL.
      flight = encodeBatch(this.#statements, this.#toParse, this.#parseBefore, prepareValue);
    } catch (err) {
      this.#unsent = true;
      return err instanceof Error ? err : new Error(String(err));
    }
    // One write for the whole flight (pg's Connection writes each message on its own).
    const stream = connection.stream as { writable?: boolean; write(chunk: Buffer): boolean };
    if (stream.writable !== false) stream.write(flight);
    // Result objects are built after the write, while the server works on the flight.
    const Result = pg.Result as unknown as new (rowMode?: string, types?: unknown) => FillableResult;
    this.#results = this.#statements.map((s) => (s.discardRows ? undefined : new Result(s.rowMode, s.types)));
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
    }
  }

  handleCommandComplete(msg: unknown): void {
    this.#results[this.#index]?.addCommandComplete(msg);
    this.#index++;
  }

  handleEmptyQuery(): void {
    this.#index++;
  }

  /** A server error (the rest of the batch is skipped) or a connection error; pg stops routing to us. */
  handleError(error: unknown): void {
    this.#settle({ ok: false, index: this.#unsent ? -1 : this.#index, error: toDatabaseError(error), raw: error });
  }

  handleReadyForQuery(): void {
    if (this.#rowError !== undefined)
      this.#settle({ ok: false, index: this.#statements.length, error: this.#rowError, raw: this.#rowError });
    else this.#settle({ ok: true, results: this.#results });
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: pg.Connection): void {
    (connection as unknown as { sendCopyFail(msg: string): void }).sendCopyFail('COPY is not supported in a user-context batch');
  }

  handleCopyData(): void {}
}

/**
 * Send a batch on `client` and wait for its outcome (never rejects). `prepared` are parsed before
 * statement `parseBefore` unless this connection already has them; a statement naming one binds it.
 */
export function runBatch(
  client: pg.Client,
  statements: readonly BatchStatement[],
  prepared: readonly PreparedStatement[] = NONE,
  parseBefore = 0,
): Promise<BatchOutcome> {
  let parsed = parsedByClient.get(client);
  if (!parsed) {
    parsed = new Set();
    parsedByClient.set(client, parsed);
  }
  const known = parsed;
  // Usually every statement is already parsed on this connection: skip building a new list.
  const toParse = prepared.every((p) => known.has(p.name)) ? NONE : prepared.filter((p) => !known.has(p.name));
  const batch = new StatementBatch(statements, toParse, parseBefore, (outcome) => {
    if (!outcome.ok && isPreparedStatementError(outcome.error)) known.clear();
    else if (toParse !== NONE) for (const p of toParse) known.add(p.name);
  });
  client.query(batch);
  return batch.done;
}

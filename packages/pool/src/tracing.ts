import type pg from 'pg';
import type { BatchOutcome, BatchStatement } from './batch.js';
import type { Connection, QueryConfig, QueryResult } from './lease.js';

/** Span attribute values the pool sets (a subset of OpenTelemetry's `AttributeValue`). */
export type SpanAttributes = Record<string, string | number>;

/**
 * The part of an OpenTelemetry `Tracer` (`@opentelemetry/api`, an optional peer) the pool calls: any
 * `trace.getTracer(name)` fits. Declared here rather than imported, so neither the pool's code nor its
 * types load `@opentelemetry/api`: a pool without a tracer costs nothing and needs nothing installed.
 */
export interface OpenTelemetryTracer {
  startSpan(name: string, options?: { kind?: number; attributes?: SpanAttributes }): OpenTelemetrySpan;
}

/** The part of an OpenTelemetry `Span` the pool calls. */
export interface OpenTelemetrySpan {
  setAttribute(key: string, value: string | number): unknown;
  setAttributes(attributes: SpanAttributes): unknown;
  setStatus(status: { code: number; message?: string }): unknown;
  end(): void;
}

/** `SpanKind.CLIENT` and `SpanKind.INTERNAL` of `@opentelemetry/api` (stable values, copied to avoid a runtime import). */
const SPAN_KIND_INTERNAL = 0;
const SPAN_KIND_CLIENT = 2;
/** `SpanStatusCode.ERROR`. */
const STATUS_ERROR = 2;

/**
 * Spans for a pool, following the OpenTelemetry semantic conventions for database client spans:
 * one `pool.acquire` span per acquire, one CLIENT span per statement named `<operation> <database>`
 * (e.g. `SELECT accountdb`) with `db.system.name`, `db.namespace`, `db.operation.name`,
 * `db.query.text`, `server.address` and `server.port`; a failed statement gets status ERROR,
 * `db.response.status_code` (the SQLSTATE) and `error.type`. Query parameter values are never recorded.
 */
export class PoolTracer {
  readonly #tracer: OpenTelemetryTracer;
  readonly #database: string;

  constructor(tracer: OpenTelemetryTracer, database: string) {
    this.#tracer = tracer;
    this.#database = database;
  }

  /** Run `acquire` inside a `pool.acquire` span (INTERNAL: it talks to the database only when it must connect). */
  async traceAcquire<T extends Connection>(acquire: () => Promise<T>): Promise<T> {
    const span = this.#tracer.startSpan('pool.acquire', {
      kind: SPAN_KIND_INTERNAL,
      attributes: { 'db.system.name': 'postgresql', 'db.namespace': this.#database },
    });
    try {
      const conn = await acquire();
      span.setAttributes({ 'server.address': conn.host.host, 'server.port': conn.host.port });
      return conn;
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /** Run one statement on `conn` inside its CLIENT span. */
  async traceQuery<R extends pg.QueryResultRow>(
    conn: Connection,
    text: string | QueryConfig,
    values: unknown[] | undefined,
    run: (conn: Connection, text: string | QueryConfig, values: unknown[] | undefined) => Promise<QueryResult<R>>,
  ): Promise<QueryResult<R>> {
    const sql = typeof text === 'string' ? text : text.text;
    const parameterized = values !== undefined || (typeof text === 'object' && text.values !== undefined);
    const operation = operationName(sql);
    const attributes: SpanAttributes = {
      'db.system.name': 'postgresql',
      'db.namespace': this.#database,
      // Parameterized text carries placeholders, not values; other text has its literals masked.
      'db.query.text': parameterized ? sql : maskLiterals(sql),
      'server.address': conn.host.host,
      'server.port': conn.host.port,
    };
    if (operation !== undefined) attributes['db.operation.name'] = operation;
    const span = this.#tracer.startSpan(operation === undefined ? this.#database : `${operation} ${this.#database}`, {
      kind: SPAN_KIND_CLIENT,
      attributes,
    });
    try {
      const result = await run(conn, text, values);
      if (typeof result.rowCount === 'number') span.setAttribute('db.response.returned_rows', result.rowCount);
      return result;
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  }

  /**
   * Run a batch inside one CLIENT span: `db.operation.name` is `BATCH <op>` when every statement has the
   * same operation, else `BATCH`; `db.query.text` joins the statements with `; `; `db.operation.batch.size`.
   * A failed outcome (a batch never rejects) sets the error attributes of the statement that failed.
   */
  async traceBatch<Role extends string>(
    conn: Connection,
    statements: readonly BatchStatement<Role>[],
    send: () => Promise<BatchOutcome<Role>>,
  ): Promise<BatchOutcome<Role>> {
    const operations = new Set(statements.map((s) => operationName(s.text)));
    const [only] = operations;
    const operation = operations.size === 1 && only !== undefined ? `BATCH ${only}` : 'BATCH';
    const text = statements
      .map((s) => (s.values !== undefined || s.name !== undefined ? s.text : maskLiterals(s.text)))
      .join('; ');
    const span = this.#tracer.startSpan(`${operation} ${this.#database}`, {
      kind: SPAN_KIND_CLIENT,
      attributes: {
        'db.system.name': 'postgresql',
        'db.namespace': this.#database,
        'db.operation.name': operation,
        'db.operation.batch.size': statements.length,
        'db.query.text': text,
        'server.address': conn.host.host,
        'server.port': conn.host.port,
      },
    });
    try {
      const outcome = await send();
      if (!outcome.ok) failed(span, outcome.error);
      return outcome;
    } catch (err) {
      failed(span, err);
      throw err;
    } finally {
      span.end();
    }
  }
}

/** Status ERROR with the SQLSTATE when there is one. The message is the typed error's, already free of values. */
function failed(span: OpenTelemetrySpan, err: unknown): void {
  const sqlstate = (err as { sqlstate?: unknown } | null)?.sqlstate;
  if (typeof sqlstate === 'string') span.setAttribute('db.response.status_code', sqlstate);
  span.setAttribute('error.type', typeof sqlstate === 'string' ? sqlstate : errorType(err));
  span.setStatus({ code: STATUS_ERROR, message: err instanceof Error ? err.message : String(err) });
}

function errorType(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string') return code;
  return err instanceof Error ? err.name : '_OTHER';
}

const KEYWORD = /[A-Za-z]+/y;

/** The statement's first keyword, upper-cased (`SELECT`, `INSERT`, `WITH`, ...), after comments and whitespace. */
export function operationName(sql: string): string | undefined {
  let i = 0;
  for (;;) {
    while (i < sql.length && /\s|\(/.test(sql[i] as string)) i++;
    if (sql.startsWith('--', i)) {
      const end = sql.indexOf('\n', i);
      if (end === -1) return undefined;
      i = end + 1;
    } else if (sql.startsWith('/*', i)) {
      const end = sql.indexOf('*/', i + 2);
      if (end === -1) return undefined;
      i = end + 2;
    } else break;
  }
  KEYWORD.lastIndex = i;
  const word = KEYWORD.exec(sql)?.[0];
  return word === undefined ? undefined : word.toUpperCase();
}

const DOLLAR_TAG = /\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$/y;
const PLACEHOLDER = /\$\d*/y;
const WORD = /[\w$]+/y;
const NUMBER = /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;

/**
 * `sql` with every literal replaced by `?`: quoted strings (`'...'`, `E'...'`, `$tag$...$tag$`) and
 * numbers outside identifiers. Placeholders (`$1`), identifiers (`"name"`, `t1`) and comments' text
 * are kept, so the statement's shape stays readable while no value reaches the trace.
 */
export function maskLiterals(sql: string): string {
  // Sticky patterns read at `i` without slicing, so masking stays linear in the statement's length.
  const at = (pattern: RegExp, i: number): string | undefined => {
    pattern.lastIndex = i;
    return pattern.exec(sql)?.[0];
  };
  let out = '';
  let i = 0;
  while (i < sql.length) {
    const c = sql[i] as string;
    if (c === "'") {
      // A quoted string; '' inside is an escaped quote, and an E'' string may escape with a backslash.
      const escapes = i > 0 && /[eE]/.test(sql[i - 1] as string) && !/[\w$]/.test(sql[i - 2] ?? ' ');
      if (escapes) out = out.slice(0, -1);
      let j = i + 1;
      for (; j < sql.length; j++) {
        if (escapes && sql[j] === '\\') j++;
        else if (sql[j] === "'") {
          if (sql[j + 1] === "'") j++;
          else break;
        }
      }
      out += '?';
      i = j + 1;
    } else if (c === '"') {
      const end = sql.indexOf('"', i + 1);
      const stop = end === -1 ? sql.length : end + 1;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '$') {
      const tag = at(DOLLAR_TAG, i);
      if (tag !== undefined) {
        const end = sql.indexOf(tag, i + tag.length);
        out += '?';
        i = end === -1 ? sql.length : end + tag.length;
      } else {
        // A placeholder ($1) or a stray dollar: keep it and its digits.
        const digits = at(PLACEHOLDER, i) ?? '$';
        out += digits;
        i += digits.length;
      }
    } else if (c === '-' && sql[i + 1] === '-') {
      const end = sql.indexOf('\n', i);
      const stop = end === -1 ? sql.length : end;
      out += sql.slice(i, stop);
      i = stop;
    } else if (c === '/' && sql[i + 1] === '*') {
      const end = sql.indexOf('*/', i + 2);
      const stop = end === -1 ? sql.length : end + 2;
      out += sql.slice(i, stop);
      i = stop;
    } else if (/[0-9]/.test(c) || (c === '.' && /[0-9]/.test(sql[i + 1] ?? ''))) {
      if (i > 0 && /[\w$]/.test(sql[i - 1] as string)) {
        // Part of an identifier (t1, col_2): keep the word.
        const word = at(WORD, i) ?? c;
        out += word;
        i += word.length;
      } else {
        const number = at(NUMBER, i) ?? c;
        out += '?';
        i += number.length;
      }
    } else if (/[A-Za-z_]/.test(c)) {
      const word = at(WORD, i) ?? c;
      out += word;
      i += word.length;
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

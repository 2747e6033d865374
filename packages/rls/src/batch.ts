import pg from 'pg';

/** One statement of a {@link StatementBatch}: text with bound values, as `pg` would send it. */
export interface BatchStatement {
  readonly text: string;
  readonly values?: readonly unknown[] | undefined;
  readonly rowMode?: 'array' | undefined;
  readonly types?: pg.CustomTypesConfig | undefined;
  /** Our own bookkeeping statements: no row description is asked for and their rows are dropped. */
  readonly discardRows?: boolean;
  /** Server-side prepared statement name: parsed once per connection, then only bound and executed. */
  readonly name?: string;
}

/** Named statements each connection has parsed (a session-level fact, so it survives ROLLBACK). */
const parsedByClient = new WeakMap<pg.Client, Set<string>>();

/** How a batch ended: every result, or the index of the statement that failed and why. */
export type BatchOutcome = { ok: true; results: pg.QueryResult[] } | { ok: false; index: number; error: unknown };

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
  readonly #results: FillableResult[];
  #index = 0;
  #rowError: unknown;
  #settle!: (outcome: BatchOutcome) => void;

  readonly #parsed: Set<string>;

  constructor(statements: readonly BatchStatement[], parsed: Set<string>) {
    this.#statements = statements;
    this.#parsed = parsed;
    const Result = pg.Result as unknown as new (rowMode?: string, types?: unknown) => FillableResult;
    this.#results = statements.map((s) => new Result(s.rowMode, s.types));
    this.done = new Promise((resolve) => {
      this.#settle = resolve;
    });
  }

  submit(connection: pg.Connection): void {
    const stream = connection.stream as { cork?: () => void; uncork?: () => void };
    stream.cork?.();
    try {
      for (const s of this.#statements) {
        const name = s.name ?? '';
        if (!name || !this.#parsed.has(name)) connection.parse({ text: s.text, name, types: [] }, true);
        connection.bind(
          { portal: '', statement: name, values: (s.values ?? []) as unknown[], valueMapper: prepareValue } as pg.BindConfig,
          true,
        );
        if (!s.discardRows) connection.describe({ type: 'P', name: '' }, true);
        connection.execute({ portal: '' }, true);
      }
      connection.sync();
    } finally {
      stream.uncork?.();
    }
  }

  handleRowDescription(msg: { fields: unknown[] }): void {
    this.#results[this.#index]?.addFields(msg.fields);
  }

  handleDataRow(msg: { fields: unknown[] }): void {
    const result = this.#results[this.#index];
    if (!result || this.#rowError !== undefined || this.#statements[this.#index]?.discardRows) return;
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
    this.#settle({ ok: false, index: this.#index, error });
  }

  handleReadyForQuery(): void {
    if (this.#rowError !== undefined) this.#settle({ ok: false, index: this.#statements.length, error: this.#rowError });
    else this.#settle({ ok: true, results: this.#results });
  }

  handlePortalSuspended(): void {}

  handleCopyInResponse(connection: pg.Connection): void {
    (connection as unknown as { sendCopyFail(msg: string): void }).sendCopyFail('COPY is not supported in a user-context batch');
  }

  handleCopyData(): void {}
}

/** Send a batch on `client` and wait for its outcome (never rejects). */
export async function runBatch(client: pg.Client, statements: readonly BatchStatement[]): Promise<BatchOutcome> {
  let parsed = parsedByClient.get(client);
  if (!parsed) {
    parsed = new Set();
    parsedByClient.set(client, parsed);
  }
  const batch = new StatementBatch(statements, parsed);
  client.query(batch);
  const outcome = await batch.done;
  // The server skips everything after a failure, Parse included: a name counts as parsed only if
  // its statement was reached. (Our named statements are constant, valid SQL, so reaching one means
  // its Parse succeeded even when its Execute raised.)
  const reached = outcome.ok ? statements.length : outcome.index + 1;
  statements.slice(0, reached).forEach((s) => {
    if (s.name) parsed.add(s.name);
  });
  // 26000: the server no longer has it (DISCARD ALL, DEALLOCATE): parse again next time.
  if (!outcome.ok && (outcome.error as { code?: string }).code === '26000') parsed.clear();
  return outcome;
}

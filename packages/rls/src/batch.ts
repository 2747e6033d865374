import pg from 'pg';

/** One statement of a {@link StatementBatch}: text with bound values, as `pg` would send it. */
export interface BatchStatement {
  readonly text: string;
  readonly values?: readonly unknown[] | undefined;
  readonly rowMode?: 'array' | undefined;
  readonly types?: pg.CustomTypesConfig | undefined;
  /** Our own bookkeeping statements: no row description is asked for and their rows are dropped. */
  readonly discardRows?: boolean;
}

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

  constructor(statements: readonly BatchStatement[]) {
    this.#statements = statements;
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
        connection.parse({ text: s.text, name: '', types: [] }, true);
        connection.bind(
          { portal: '', statement: '', values: (s.values ?? []) as unknown[], valueMapper: prepareValue } as pg.BindConfig,
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
export function runBatch(client: pg.Client, statements: readonly BatchStatement[]): Promise<BatchOutcome> {
  const batch = new StatementBatch(statements);
  client.query(batch);
  return batch.done;
}

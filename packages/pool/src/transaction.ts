/** PostgreSQL's transaction status from the last ReadyForQuery: idle, in a transaction, or in a failed one. */
export type TransactionStatus = 'I' | 'T' | 'E';

/** SQL isolation levels (PostgreSQL runs `read uncommitted` as `read committed`). */
export type IsolationLevel = 'read committed' | 'repeatable read' | 'serializable' | 'read uncommitted';

/** What a BEGIN may say beyond BEGIN. */
export interface BeginOptions {
  /** Default: the server's `default_transaction_isolation` (normally `read committed`). */
  readonly isolation?: IsolationLevel | undefined;
  /** `READ ONLY`. Default false. */
  readonly readOnly?: boolean | undefined;
  /** `DEFERRABLE` (only meaningful with `serializable` + `readOnly`). Default false. */
  readonly deferrable?: boolean | undefined;
}

/** Turns a rejected option into the caller's typed error; `problem` describes the value's shape, never the value. */
export type BeginOptionProblem = (field: keyof BeginOptions, problem: string) => Error;

const ISOLATION: Record<IsolationLevel, string> = {
  'read committed': 'READ COMMITTED',
  'repeatable read': 'REPEATABLE READ',
  serializable: 'SERIALIZABLE',
  'read uncommitted': 'READ UNCOMMITTED',
};
const LEVELS = Object.keys(ISOLATION)
  .map((level) => `"${level}"`)
  .join(', ');

/**
 * The BEGIN statement for `options`. Every piece comes from a fixed table, none from input; a bad
 * option throws `fail(field, problem)` before any SQL runs, so each package throws its own typed error.
 */
export function beginStatement(options: BeginOptions, fail: BeginOptionProblem): string {
  const { isolation, readOnly, deferrable } = options;
  // Called for every scope and transaction: no allocation when the options are plain.
  if (isolation === undefined && readOnly === undefined && deferrable === undefined) return 'BEGIN';
  if (isolation !== undefined && !Object.hasOwn(ISOLATION, isolation)) throw fail('isolation', `must be one of ${LEVELS}`);
  if (readOnly !== undefined && typeof readOnly !== 'boolean') throw fail('readOnly', 'must be a boolean');
  if (deferrable !== undefined && typeof deferrable !== 'boolean') throw fail('deferrable', 'must be a boolean');
  return `BEGIN${isolation ? ` ISOLATION LEVEL ${ISOLATION[isolation]}` : ''}${readOnly ? ' READ ONLY' : ''}${deferrable ? ' DEFERRABLE' : ''}`;
}

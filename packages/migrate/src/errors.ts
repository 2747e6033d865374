import { AccountDbError, type AccountDbErrorOptions } from '@accountdb/pool';
import type { LintFinding } from './lint.js';

/** Every `code` a migration error carries. */
export type MigrationErrorCode =
  | 'MIGRATION_FILE_INVALID'
  | 'MIGRATION_FAILED'
  | 'MIGRATION_DRIFT'
  | 'MIGRATION_OUT_OF_ORDER'
  | 'MIGRATION_BLOCKED'
  | 'MIGRATION_LOCK_TIMEOUT'
  | 'MIGRATION_NO_DOWN'
  | 'MIGRATION_BASELINE_REFUSED'
  | 'MIGRATION_LINT';

/** Root of the migration errors; `code` says which one. */
export class MigrationError extends AccountDbError {
  declare readonly code: MigrationErrorCode;

  constructor(code: MigrationErrorCode, message: string, options: AccountDbErrorOptions = {}) {
    super(code, message, options);
  }
}

/** A migration file (or the directory) is unusable: bad name, duplicate version, unknown header, unparsable SQL. */
export class MigrationFileError extends MigrationError {
  declare readonly code: 'MIGRATION_FILE_INVALID';

  /**
   * @param file the file name (or directory) at fault
   * @param reason what is wrong
   * @param line 1-based line of a parse error, when known
   */
  constructor(
    readonly file: string,
    readonly reason: string,
    readonly line?: number,
  ) {
    super('MIGRATION_FILE_INVALID', `${file}${line === undefined ? '' : `:${line}`}: ${reason}`);
  }
}

/** A migration failed. A transactional one was rolled back with its history row; a non-transactional one is recorded failed. */
export class MigrationFailedError extends MigrationError {
  declare readonly code: 'MIGRATION_FAILED';

  /**
   * @param file the migration's file name
   * @param recorded true when a failed row was written (non-transactional: blocks runs until `repair`)
   * @param cause the database error
   */
  constructor(
    readonly file: string,
    readonly recorded: boolean,
    cause: unknown,
  ) {
    const what = recorded
      ? 'it is recorded as failed; fix the database by hand, then run `repair`'
      : 'rolled back: schema and history are unchanged';
    super('MIGRATION_FAILED', `Migration ${file} failed (${what}): ${describe(cause)}`, { cause });
  }
}

/** Applied migrations no longer match the directory: a changed checksum or a missing file. */
export class MigrationDriftError extends MigrationError {
  declare readonly code: 'MIGRATION_DRIFT';

  /** @param problems one line per drifted file, each naming it */
  constructor(readonly problems: readonly string[]) {
    super('MIGRATION_DRIFT', `Applied migrations differ from the files:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** A pending migration is older than the newest applied one (allow with `outOfOrder: true`). */
export class MigrationOutOfOrderError extends MigrationError {
  declare readonly code: 'MIGRATION_OUT_OF_ORDER';

  constructor(
    readonly files: readonly string[],
    readonly newestApplied: string,
  ) {
    super(
      'MIGRATION_OUT_OF_ORDER',
      `Pending migration${files.length === 1 ? '' : 's'} older than applied version ${newestApplied}: ${files.join(', ')}. ` +
        'Renumber, or allow with outOfOrder (--out-of-order).',
    );
  }
}

/** A failed non-transactional migration is recorded: nothing runs until `repair`. */
export class MigrationBlockedError extends MigrationError {
  declare readonly code: 'MIGRATION_BLOCKED';

  constructor(readonly files: readonly string[]) {
    super(
      'MIGRATION_BLOCKED',
      `Failed migration${files.length === 1 ? '' : 's'} recorded: ${files.join(', ')}. ` +
        'Finish or undo its statements by hand, then run `repair`.',
    );
  }
}

/** Who held a lock we waited for. */
export interface LockHolder {
  readonly pid: number;
  readonly applicationName: string | null;
  /** When the holder's current state began (`pg_stat_activity.state_change`) or its backend started. */
  readonly since: Date | null;
  /** The holder's current or last statement, first 200 characters. */
  readonly query: string | null;
}

/** The migration lock (advisory) or a table lock (`lock_timeout`) was not obtained in time. */
export class MigrationLockTimeoutError extends MigrationError {
  declare readonly code: 'MIGRATION_LOCK_TIMEOUT';

  /**
   * @param lock `advisory`: another runner held the migration lock; `table`: a migration's statement hit `lock_timeout`
   * @param holder the session seen holding it, when known
   * @param file the migration, for `table`
   */
  constructor(
    readonly lock: 'advisory' | 'table',
    readonly waitedMs: number,
    readonly holder: LockHolder | undefined,
    readonly file?: string,
    options: AccountDbErrorOptions = {},
  ) {
    const who = holder
      ? ` Held by pid ${holder.pid} (${holder.applicationName || 'no application_name'})` +
        `${holder.since ? ` since ${holder.since.toISOString()}` : ''}${holder.query ? `: ${holder.query}` : ''}.`
      : '';
    const what =
      lock === 'advisory'
        ? `Timed out after ${waitedMs} ms waiting for the migration lock (another runner is migrating).`
        : `Migration ${file} could not lock its tables within lock_timeout (gave up after ${waitedMs} ms of retries).`;
    super('MIGRATION_LOCK_TIMEOUT', what + who, options);
  }
}

/** `down` was asked for a migration that has no `.down.sql` file. */
export class MigrationNoDownError extends MigrationError {
  declare readonly code: 'MIGRATION_NO_DOWN';

  constructor(readonly file: string) {
    super('MIGRATION_NO_DOWN', `Migration ${file} has no down file; nothing was reverted`);
  }
}

function describe(cause: unknown): string {
  if (!(cause instanceof Error)) return String(cause);
  const sqlstate = (cause as { sqlstate?: unknown }).sqlstate;
  return typeof sqlstate === 'string' ? `${cause.message} (SQLSTATE ${sqlstate})` : cause.message;
}

/** Lint errors stop the run before anything is applied: a file PostgreSQL cannot parse, or any finding with `strict`. */
export class MigrationLintError extends MigrationError {
  declare readonly code: 'MIGRATION_LINT';

  /** @param findings the findings of severity `error` */
  constructor(readonly findings: readonly LintFinding[]) {
    super(
      'MIGRATION_LINT',
      `Lint error${findings.length === 1 ? '' : 's'} in pending migrations (nothing was applied):\n` +
        findings.map((f) => `  - ${f.file}:${f.line} [${f.rule}] ${f.message}; fix: ${f.fix}`).join('\n'),
    );
  }
}

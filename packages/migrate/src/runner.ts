import {
  type BatchStatement,
  backoffDelay,
  isTransientConnectionError,
  type Logger,
  type Pool,
  type PoolConnection,
} from '@accountdb/pool';
import { describeCause, packageLogger } from '@accountdb/pool/internal';
import {
  type LockHolder,
  MigrationBlockedError,
  MigrationDriftError,
  MigrationError,
  MigrationFailedError,
  MigrationLintError,
  MigrationLockTimeoutError,
  MigrationNoDownError,
  MigrationOutOfOrderError,
} from './errors.js';
import {
  compareVersions,
  type MigrationFile,
  type MigrationHeader,
  readMigrations,
  type Statement,
  splitStatements,
} from './files.js';
import {
  deleteHistory,
  deleteStatement,
  ensureHistory,
  type HistoryRow,
  type HistoryStatement,
  type HistoryTable,
  historyTable,
  insertHistory,
  insertStatement,
  markSucceeded,
  readHistory,
  updateChecksum,
} from './history.js';
import { type LintFinding, type LintResult, lintMigrations } from './lint.js';
import { acquireMigrationLock, lockKey, releaseMigrationLock, sleep } from './lock.js';
import {
  type BaselineOptions,
  type DownOptions,
  type MigrationOptions,
  type MigrationProgress,
  type Resolved,
  type RunOptions,
  resolveOptions,
  type UpOptions,
} from './options.js';

/** State of one migration in {@link migrationStatus}. */
export type MigrationState =
  | 'applied'
  | 'pending'
  | 'failed'
  | 'drifted'
  | 'missing'
  | 'out-of-order'
  | 'below-baseline'
  | 'baseline'
  | 'outdated';

/** One line of the status: a file, a history row, or both. */
export interface MigrationStatusEntry {
  readonly file: string;
  readonly kind: 'versioned' | 'repeatable' | 'baseline';
  readonly version: string | null;
  readonly description: string;
  readonly state: MigrationState;
  readonly appliedAt?: Date;
  readonly durationMs?: number;
}

/** What {@link migrationStatus} reports. */
export interface MigrationStatus {
  readonly entries: readonly MigrationStatusEntry[];
  /** Files `up` would apply, in order (out-of-order ones included only when allowed). */
  readonly pending: readonly MigrationFile[];
  readonly failed: readonly string[];
  /** One line per drifted or missing file. */
  readonly drift: readonly string[];
  readonly outOfOrder: readonly string[];
  readonly newestApplied: string | null;
}

/** A migration applied (or reverted) by a run. */
export interface AppliedMigration {
  readonly file: string;
  readonly durationMs: number;
}

// ---- analysis (pure) ----------------------------------------------------------------------------

export function analyze(
  files: readonly MigrationFile[],
  rows: readonly HistoryRow[],
  opts: Pick<Resolved, 'to' | 'outOfOrder'>,
): MigrationStatus {
  const entries: MigrationStatusEntry[] = [];
  const drift: string[] = [];
  const failed: string[] = [];
  const outOfOrder: MigrationFile[] = [];
  const pending: MigrationFile[] = [];
  const baseline = rows.filter((r) => r.kind === 'baseline').at(-1)?.version ?? null;
  const versioned = new Map(rows.filter((r) => r.kind === 'versioned').map((r) => [r.version!, r]));
  const repeatable = new Map<string, HistoryRow>();
  for (const r of rows) if (r.kind === 'repeatable' && r.success) repeatable.set(r.description, r);
  let newest = baseline;
  for (const r of versioned.values())
    if (r.success && (newest === null || compareVersions(r.version!, newest) > 0)) newest = r.version;
  const byVersion = new Map(files.filter((f) => f.version !== null).map((f) => [f.version!, f]));
  if (baseline !== null)
    entries.push({ file: '<< baseline >>', kind: 'baseline', version: baseline, description: 'baseline', state: 'baseline' });
  for (const r of rows) if (!r.success) failed.push(r.script);
  for (const [version, r] of versioned) {
    if (!byVersion.has(version)) {
      drift.push(`${r.script}: applied but missing from the directory`);
      entries.push({ file: r.script, kind: 'versioned', version, description: r.description, state: 'missing' });
    }
  }
  const pendingRepeatables: MigrationFile[] = [];
  for (const f of files) {
    const base = { file: f.file, kind: f.kind, version: f.version, description: f.description };
    if (f.kind === 'repeatable') {
      const r = repeatable.get(f.description);
      const state = !r ? 'pending' : r.checksum === f.checksum ? 'applied' : 'outdated';
      if (state !== 'applied') pendingRepeatables.push(f);
      entries.push({ ...base, state, ...(r ? { appliedAt: r.appliedAt, durationMs: r.durationMs } : {}) });
      continue;
    }
    const r = versioned.get(f.version!);
    if (r) {
      let state: MigrationState = r.success ? 'applied' : 'failed';
      if (r.success && r.checksum !== f.checksum) {
        state = 'drifted';
        drift.push(`${f.file}: checksum changed since it was applied (${r.checksum?.slice(0, 12)} → ${f.checksum.slice(0, 12)})`);
      }
      entries.push({ ...base, state, appliedAt: r.appliedAt, durationMs: r.durationMs });
    } else if (baseline !== null && compareVersions(f.version!, baseline) <= 0) {
      entries.push({ ...base, state: 'below-baseline' });
    } else if (opts.to !== undefined && compareVersions(f.version!, opts.to) > 0) {
      entries.push({ ...base, state: 'pending' });
    } else if (newest !== null && compareVersions(f.version!, newest) < 0) {
      outOfOrder.push(f);
      if (opts.outOfOrder) pending.push(f);
      entries.push({ ...base, state: 'out-of-order' });
    } else {
      pending.push(f);
      entries.push({ ...base, state: 'pending' });
    }
  }
  return {
    entries,
    pending: [...pending, ...pendingRepeatables],
    failed,
    drift,
    outOfOrder: outOfOrder.map((f) => f.file),
    newestApplied: newest,
  };
}

/** Throw what blocks a run: recorded failures, then drift, then out-of-order files (unless allowed). */
function assertRunnable(status: MigrationStatus, outOfOrderAllowed: boolean): void {
  if (status.failed.length > 0) throw new MigrationBlockedError(status.failed);
  if (status.drift.length > 0) throw new MigrationDriftError(status.drift);
  if (status.outOfOrder.length > 0 && !outOfOrderAllowed)
    throw new MigrationOutOfOrderError(status.outOfOrder, status.newestApplied ?? '');
}

// ---- sessions -------------------------------------------------------------------------------------

interface Context {
  readonly pool: Pool;
  readonly opts: Resolved;
  readonly history: HistoryTable;
  readonly log: Logger;
  readonly progress: (p: MigrationProgress) => void;
}

/** Validate options and read the directory (both before any SQL), then build the context. */
async function prepare(pool: Pool, options: RunOptions & { version?: unknown }, needs: { version?: boolean } = {}) {
  const opts = resolveOptions(options, needs);
  const files = await readMigrations(opts.dir);
  const onProgress = options.onProgress;
  const ctx: Context = {
    pool,
    opts,
    history: historyTable(opts.schema, opts.table),
    log: packageLogger(options.logger, '@accountdb/migrate'),
    progress: (p) => {
      try {
        onProgress?.(p);
      } catch {
        // A failing progress callback must not fail a migration.
      }
    },
  };
  return { ctx, files };
}

/** Read-only: in a READ ONLY transaction that is rolled back, so nothing is written or committed. */
async function readOnly<T>(ctx: Context, fn: (conn: PoolConnection) => Promise<T>): Promise<T> {
  return ctx.pool.withConnectionRetry(
    async (conn) => {
      await conn.query('BEGIN TRANSACTION READ ONLY');
      try {
        return await fn(conn);
      } finally {
        await conn.query('ROLLBACK');
      }
    },
    ctx.opts.maxRetries === undefined ? {} : { maxRetries: ctx.opts.maxRetries },
  );
}

/**
 * Run `fn` on a dedicated session holding the migration lock (taken before history is read), retrying the
 * whole session on connection failures with the pool's backoff: transactional work rolled back with the
 * session, so a rerun picks up where the history says.
 */
async function locked<T>(ctx: Context, fn: (conn: PoolConnection, rows: HistoryRow[]) => Promise<T>): Promise<T> {
  const key = lockKey(ctx.history);
  const { maxRetries, retryIntervalMs, maxRetryIntervalMs } = ctx.pool.config;
  const max = ctx.opts.maxRetries ?? maxRetries;
  for (let attempt = 0; ; attempt++) {
    let conn: PoolConnection | undefined;
    try {
      conn = await ctx.pool.acquire();
      const lease = conn;
      await acquireMigrationLock(lease, key, ctx.opts.migrationLockTimeoutMs, ctx.log, (waitedMs) =>
        ctx.progress({ event: 'lock-wait', waitedMs }),
      );
      try {
        await ensureHistory(lease, ctx.history);
        return await fn(lease, await readHistory(lease, ctx.history, true));
      } finally {
        await releaseMigrationLock(lease, key).catch(() => {});
      }
    } catch (err) {
      conn?.release(err);
      conn = undefined;
      if (attempt >= max || !isTransientConnectionError(err)) throw err;
      const delayMs = backoffDelay(attempt, retryIntervalMs, maxRetryIntervalMs);
      ctx.log.warn({ attempt: attempt + 1, delayMs, error: describeCause(err) }, 'connection failed during migration; retrying');
      ctx.progress({ event: 'retry', attempt: attempt + 1, delayMs, reason: describeCause(err) });
      await sleep(delayMs);
    } finally {
      conn?.release();
    }
  }
}

// ---- applying one file -----------------------------------------------------------------------------

interface Step {
  readonly file: string;
  readonly header: MigrationHeader;
  /** The file's statements, as PostgreSQL's parser split them. */
  readonly statements: readonly Statement[];
  /** Transactional: the statement that records the outcome, sent in the migration's transaction. */
  readonly record: HistoryStatement;
  /** Non-transactional only: written before the first statement, so an interruption leaves a failed row. */
  readonly begin?: (conn: PoolConnection) => Promise<number>;
  readonly finish?: (conn: PoolConnection, rank: number, durationMs: number) => Promise<unknown>;
}

const SET_TIMEOUTS = "SELECT set_config('lock_timeout', $1, $3), set_config('statement_timeout', $2, $3)";

/** The run's timeouts, or a file's when its header sets one: [lock_timeout, statement_timeout]. */
function timeouts(ctx: Context, header: Partial<MigrationHeader> = {}): string[] {
  return [`${header.lockTimeoutMs ?? ctx.opts.lockTimeoutMs}ms`, `${header.statementTimeoutMs ?? ctx.opts.statementTimeoutMs}ms`];
}

async function applyStep(ctx: Context, conn: PoolConnection, step: Step): Promise<number> {
  const lockTimeoutMs = step.header.lockTimeoutMs ?? ctx.opts.lockTimeoutMs;
  // The run's timeouts are set on the session once (runSteps); a file whose header differs sets its own.
  const own =
    step.header.lockTimeoutMs === undefined && step.header.statementTimeoutMs === undefined
      ? undefined
      : timeouts(ctx, step.header);
  if (!step.header.transaction) return applyOutsideTransaction(ctx, conn, step, own);
  const { retryIntervalMs, maxRetryIntervalMs } = ctx.pool.config;
  // One flight, one round trip: BEGIN, the timeouts, each statement, the history row and COMMIT. After a
  // failure the server skips the rest, and the transaction is rolled back below.
  const batch: BatchStatement<'migration' | 'bookkeeping'>[] = [
    { text: 'BEGIN', role: 'bookkeeping', discardRows: true },
    ...(own ? [{ text: SET_TIMEOUTS, values: [...own, true], role: 'bookkeeping' as const, discardRows: true }] : []),
    ...step.statements.map((s) => ({ text: s.sql, role: 'migration' as const, discardRows: true })),
    { ...step.record, role: 'bookkeeping', discardRows: true },
    { text: 'COMMIT', role: 'bookkeeping', discardRows: true },
  ];
  let holder: LockHolder | undefined;
  const started = performance.now();
  for (let attempt = 0; ; attempt++) {
    const t0 = performance.now();
    const watch = watchBlockers(ctx.pool, conn.processId, lockTimeoutMs);
    const outcome = await conn.batch(batch).finally(() => watch.stop());
    if (outcome.ok) return performance.now() - t0;
    const err: unknown = outcome.error;
    if (isTransientConnectionError(err)) throw err;
    // Always: the outcome can arrive before the ReadyForQuery that reports the failed transaction.
    await conn.query('ROLLBACK').catch(() => {});
    if ((err as { sqlstate?: unknown }).sqlstate !== '55P03') throw new MigrationFailedError(step.file, false, err);
    holder = watch.last() ?? holder;
    if (attempt >= ctx.opts.lockRetries) {
      throw new MigrationLockTimeoutError('table', Math.round(performance.now() - started), holder, step.file, { cause: err });
    }
    const delayMs = Math.max(100, backoffDelay(attempt + 1, Math.max(retryIntervalMs, 100) / 4, maxRetryIntervalMs));
    ctx.log.warn({ file: step.file, attempt: attempt + 1, delayMs, blockingPid: holder?.pid }, 'lock_timeout; retrying');
    ctx.progress({ event: 'retry', file: step.file, attempt: attempt + 1, delayMs, reason: 'lock_timeout' });
    await sleep(delayMs);
  }
}

async function applyOutsideTransaction(ctx: Context, conn: PoolConnection, step: Step, own: string[] | undefined) {
  const rank = await step.begin!(conn);
  const t0 = performance.now();
  try {
    if (own) await conn.query(SET_TIMEOUTS, [...own, false]);
    for (const statement of step.statements) {
      try {
        await conn.query(statement.sql);
      } catch (err) {
        if (isTransientConnectionError(err)) throw err;
        throw new MigrationFailedError(`${step.file}:${statement.line}`, true, err);
      }
    }
  } finally {
    if (own) await conn.query(SET_TIMEOUTS, [...timeouts(ctx), false]);
  }
  const durationMs = performance.now() - t0;
  await step.finish!(conn, rank, durationMs);
  return durationMs;
}

/**
 * While a transactional migration runs, sample who blocks it (on another pooled connection, best effort),
 * so a lock timeout can name the blocking pid and query.
 */
function watchBlockers(pool: Pool, pid: number, lockTimeoutMs: number) {
  let seen: LockHolder | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;
  const interval = Math.min(Math.max(Math.floor(lockTimeoutMs / 3), 20), 1000);
  const sample = () => {
    timer = undefined;
    pool
      .acquire({ timeoutMs: interval })
      .then(async (c) => {
        try {
          const { rows } = await c.query<LockHolder>(
            `SELECT a.pid, a.application_name AS "applicationName", a.backend_start AS since, left(a.query, 200) AS query
               FROM pg_stat_activity a WHERE a.pid = ANY (pg_blocking_pids($1)) LIMIT 1`,
            [pid],
          );
          if (rows[0]) seen = rows[0];
        } finally {
          c.release();
        }
      })
      .catch(() => {})
      .finally(() => {
        if (!stopped) timer = setTimeout(sample, interval);
      });
  };
  if (lockTimeoutMs > 0) timer = setTimeout(sample, interval);
  return {
    last: () => seen,
    stop: () => {
      stopped = true;
      if (timer) clearTimeout(timer);
    },
  };
}

function upStep(ctx: Context, f: MigrationFile, statements: readonly Statement[]): Step {
  const { version, description, kind, file: script, checksum } = f;
  const row = (success: boolean, durationMs: number | null) => ({
    version,
    description,
    kind,
    script,
    checksum,
    durationMs,
    success,
  });
  return {
    file: f.file,
    header: f.header,
    statements,
    // Inside the migration's transaction: the server measures the duration (since BEGIN).
    record: insertStatement(ctx.history, row(true, null)),
    begin: (conn) => insertHistory(conn, ctx.history, row(false, 0)),
    finish: (conn, rank, durationMs) => markSucceeded(conn, ctx.history, rank, durationMs),
  };
}

async function runSteps(ctx: Context, conn: PoolConnection, steps: readonly Step[]): Promise<AppliedMigration[]> {
  const done: AppliedMigration[] = [];
  if (steps.length === 0) return done;
  await conn.query(SET_TIMEOUTS, [...timeouts(ctx), false]);
  try {
    for (const [i, step] of steps.entries()) {
      ctx.progress({ event: 'start', file: step.file, index: i + 1, total: steps.length });
      ctx.log.info({ file: step.file }, 'applying migration');
      const durationMs = Math.round(await applyStep(ctx, conn, step));
      ctx.log.info({ file: step.file, durationMs }, 'migration applied');
      ctx.progress({ event: 'done', file: step.file, index: i + 1, total: steps.length, durationMs });
      done.push({ file: step.file, durationMs });
    }
    return done;
  } finally {
    // Back to the session's defaults (those of its startup packet, role and database).
    await conn.query('RESET lock_timeout; RESET statement_timeout').catch(() => {});
  }
}

// ---- commands --------------------------------------------------------------------------------------

/** Lint the pending files; `existing` looks tables up on `conn`. Logs warnings, reports them, throws errors. */
async function lint(ctx: Context, conn: PoolConnection, pending: readonly MigrationFile[]): Promise<LintResult> {
  const result = await lintMigrations(pending, ctx.opts, async (names) => {
    const { rows } = await conn.query<{ n: string }>('SELECT n FROM unnest($1::text[]) AS n WHERE to_regclass(n) IS NOT NULL', [
      names,
    ]);
    return new Set(rows.map((r) => r.n));
  });
  for (const finding of result.findings) {
    ctx.log.warn({ ...finding }, 'migration lint finding');
    ctx.progress({ event: 'lint', finding });
  }
  return result;
}

function assertLintClean(findings: readonly LintFinding[]): void {
  const errors = findings.filter((f) => f.severity === 'error');
  if (errors.length > 0) throw new MigrationLintError(errors);
}

/**
 * Apply pending migrations (seed `run_migrations`, with its retries): under the migration lock, validate every
 * applied checksum, refuse recorded failures and out-of-order files, lint the pending files (warnings go to the
 * logger and `onProgress`; errors stop the run before anything is applied), then apply versioned files up to
 * `to` and changed repeatable files, each transactional one in one transaction with its history row.
 * Throws `ConfigError` (bad options, before any SQL), `MigrationFileError`, `MigrationBlockedError`,
 * `MigrationDriftError`, `MigrationOutOfOrderError`, `MigrationLintError` (a parse error, or any finding with
 * `strict`), `MigrationLockTimeoutError`, `MigrationFailedError`.
 */
export async function runMigrations(pool: Pool, options: UpOptions): Promise<AppliedMigration[]> {
  const { ctx, files } = await prepare(pool, options);
  return locked(ctx, async (conn, rows) => {
    const status = analyze(files, rows, ctx.opts);
    assertRunnable(status, ctx.opts.outOfOrder);
    const { findings, statements } = await lint(ctx, conn, status.pending);
    assertLintClean(findings);
    const steps = status.pending.map((f) => upStep(ctx, f, statements.get(f.file) ?? []));
    return runSteps(ctx, conn, steps);
  });
}

/** Read-only status of every file and history row. Takes no lock, writes nothing, never throws for drift. */
export async function migrationStatus(
  pool: Pool,
  options: MigrationOptions & Pick<UpOptions, 'to' | 'outOfOrder'>,
): Promise<MigrationStatus> {
  const { ctx, files } = await prepare(pool, options);
  return readOnly(ctx, async (conn) => analyze(files, await readHistory(conn, ctx.history), ctx.opts));
}

/** One migration `up` would run. */
export interface PlannedMigration {
  readonly file: string;
  readonly kind: 'versioned' | 'repeatable';
  readonly transaction: boolean;
  /** Statements, as PostgreSQL's parser splits the file (0 when it cannot parse it: see `findings`). */
  readonly statements: number;
}

/** A dry run of `up`. */
export interface MigrationPlan {
  readonly migrations: readonly PlannedMigration[];
  /** What would stop `up`: recorded failures, drift, out-of-order files. Empty when `up` would proceed. */
  readonly problems: readonly string[];
  /** Lint findings of the pending files; those of severity `error` would stop `up`. */
  readonly findings: readonly LintFinding[];
  readonly status: MigrationStatus;
}

/**
 * What `up` would do, without doing it: takes no lock and runs its reads in a READ ONLY transaction that is
 * rolled back. Every pending file is parsed and linted by PostgreSQL's grammar; parse errors and (with
 * `strict`) every finding come back as `error` findings instead of being thrown.
 */
export async function planMigrations(pool: Pool, options: UpOptions): Promise<MigrationPlan> {
  const { ctx, files } = await prepare(pool, options);
  const { status, findings, statements } = await readOnly(ctx, async (conn) => {
    const status = analyze(files, await readHistory(conn, ctx.history), ctx.opts);
    return { status, ...(await lint(ctx, conn, status.pending)) };
  });
  const problems: string[] = [];
  try {
    assertRunnable(status, ctx.opts.outOfOrder);
  } catch (err) {
    problems.push((err as Error).message);
  }
  const migrations = status.pending.map((f) => ({
    file: f.file,
    kind: f.kind,
    transaction: f.header.transaction,
    statements: statements.get(f.file)?.length ?? 0,
  }));
  return { migrations, problems, findings, status };
}

/**
 * Read-only check that `up` could proceed: throws `MigrationBlockedError`, `MigrationDriftError`,
 * `MigrationOutOfOrderError`, or `MigrationLintError` (a pending file PostgreSQL cannot parse; any finding with `strict`).
 */
export async function validateMigrations(
  pool: Pool,
  options: MigrationOptions & Pick<UpOptions, 'outOfOrder' | 'strict' | 'lockTimeoutMs'>,
): Promise<MigrationStatus> {
  const { status, findings, problems } = await planMigrations(pool, options);
  if (problems.length > 0) assertRunnable(status, options.outOfOrder === true);
  assertLintClean(findings);
  return status;
}

/**
 * Revert the newest `steps` applied versioned migrations with their `.down.sql` files, newest first, each with
 * the removal of its history row. Every one must have a down file (checked before any is run).
 */
export async function downMigrations(pool: Pool, options: DownOptions): Promise<AppliedMigration[]> {
  const { ctx, files } = await prepare(pool, options);
  return locked(ctx, async (conn, rows) => {
    const status = analyze(files, rows, { to: undefined, outOfOrder: true });
    if (status.failed.length > 0) throw new MigrationBlockedError(status.failed);
    if (status.drift.length > 0) throw new MigrationDriftError(status.drift);
    const applied = rows
      .filter((r) => r.kind === 'versioned')
      .sort((a, b) => compareVersions(b.version!, a.version!))
      .slice(0, ctx.opts.steps);
    const byVersion = new Map(files.map((f) => [f.version, f]));
    const downs = applied.map((r) => {
      const down = byVersion.get(r.version)?.down;
      if (!down) throw new MigrationNoDownError(r.script);
      return { r, down };
    });
    const steps: Step[] = [];
    for (const { r, down } of downs) {
      const remove = deleteStatement(ctx.history, r.rank);
      steps.push({
        file: down.file,
        header: down.header,
        statements: await splitStatements(down.file, down.sql),
        record: remove,
        // A failed non-transactional down leaves the up row: the schema is half-reverted, so mark it failed.
        begin: async (c) => {
          await c.query(`UPDATE ${ctx.history.qualified} SET success = false WHERE installed_rank = $1`, [r.rank]);
          return r.rank;
        },
        finish: (c) => c.query(remove.text, [...remove.values]),
      });
    }
    return runSteps(ctx, conn, steps);
  });
}

/** What {@link repairMigrations} changed. */
export interface RepairResult {
  /** Failed rows removed. */
  readonly removedFailed: readonly string[];
  /** Applied rows whose checksum was realigned with the file. */
  readonly realigned: readonly string[];
}

/**
 * Flyway's repair: remove failed rows (after you finished or undid their statements by hand) and realign the
 * checksums of applied files with their current contents (accepting a deliberate edit). Under the migration lock.
 */
export async function repairMigrations(pool: Pool, options: RunOptions): Promise<RepairResult> {
  const { ctx, files } = await prepare(pool, options);
  return locked(ctx, async (conn, rows) => {
    const byVersion = new Map(files.filter((f) => f.version !== null).map((f) => [f.version, f]));
    const removedFailed: string[] = [];
    const realigned: string[] = [];
    await conn.query('BEGIN');
    try {
      for (const r of rows) {
        if (!r.success) {
          await deleteHistory(conn, ctx.history, r.rank);
          removedFailed.push(r.script);
          continue;
        }
        const f = r.kind === 'versioned' ? byVersion.get(r.version) : undefined;
        if (f && f.checksum !== r.checksum) {
          await updateChecksum(conn, ctx.history, r.rank, f.checksum);
          realigned.push(f.file);
        }
      }
      await conn.query('COMMIT');
    } catch (err) {
      await conn.query('ROLLBACK').catch(() => {});
      throw err;
    }
    ctx.log.info({ removedFailed, realigned }, 'history repaired');
    return { removedFailed, realigned };
  });
}

/**
 * Mark an existing database as being at `version`: files up to it are never run. Refused when the history
 * already has versioned or baseline rows.
 */
export async function baselineMigrations(pool: Pool, options: BaselineOptions): Promise<void> {
  const { ctx } = await prepare(pool, options, { version: true });
  await locked(ctx, async (conn, rows) => {
    if (rows.some((r) => r.kind !== 'repeatable')) {
      throw new MigrationError(
        'MIGRATION_BASELINE_REFUSED',
        'The history already has versioned migrations; baseline only a fresh history',
      );
    }
    await insertHistory(conn, ctx.history, {
      version: ctx.opts.version!,
      description: ctx.opts.description,
      kind: 'baseline',
      script: '<< baseline >>',
      checksum: null,
      durationMs: 0,
      success: true,
    });
  });
}

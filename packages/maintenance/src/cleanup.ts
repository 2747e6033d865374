import { AccountDbError, LockNotAvailableError, QueryCanceledError } from '@accountdb/pool';
import { MaintenanceInputError } from './errors.js';
import { requirePrivilege, resolveOids } from './names.js';
import { reindex } from './operations.js';
import { type CleanupAction, type CleanupPlan, type CleanupStep, ORDER, type PlanOptions, planCleanup, stepSql } from './plan.js';
import type { ProgressSample } from './progress.js';
import {
  checkRunOptions,
  isPoolLike,
  type MaintenanceTarget,
  type PoolLike,
  type RunOptions,
  runStatement,
  type Session,
  withSession,
} from './runner.js';

/** What happened to one step. */
export interface CleanupStepResult {
  readonly step: CleanupStep;
  /**
   * `planned` (dry run), `done`, `skipped` (see `skipReason`), or `failed` (see `error`; the run
   * goes on with the next step).
   */
  readonly status: 'planned' | 'done' | 'skipped' | 'failed';
  /** `locked`: another session held a conflicting lock (SKIP_LOCKED or lock_timeout); `gone`: dropped since planning; `canceled`: the signal fired first. */
  readonly skipReason?: 'locked' | 'gone' | 'canceled';
  /** The exact statement sent (or, in a dry run, that would be sent). */
  readonly sql?: string;
  readonly durationMs?: number;
  readonly error?: AccountDbError;
}

/** Events of a cleanup run: per step `step-start`, any `progress`, then `step-end` (steps overlap when `jobs` > 1). */
export type CleanupEvent =
  | { readonly type: 'step-start'; readonly index: number; readonly total: number; readonly step: CleanupStep }
  | ({ readonly type: 'progress'; readonly index: number; readonly total: number; readonly step: CleanupStep } & ProgressSample)
  | { readonly type: 'step-end'; readonly index: number; readonly total: number; readonly result: CleanupStepResult };

/** Options of {@link cleanupDatabase}; `lockTimeoutMs` and the rest apply per step (a lock timeout makes it `skipped`, `locked`). */
export interface CleanupOptions extends Omit<RunOptions, 'onProgress' | 'signal'> {
  /** The plan to run (from {@link planCleanup}, possibly filtered). Default: a fresh plan from `planOptions`. */
  readonly plan?: CleanupPlan;
  /** Options for the plan made when `plan` is not given. */
  readonly planOptions?: PlanOptions;
  /** Send nothing but catalog reads; return each step with the exact SQL it would run. */
  readonly dryRun?: boolean;
  /**
   * Steps run at once, each on its own connection leased from the pool (as `vacuumdb --jobs`). Two
   * steps on the same table (or a table and its index) never overlap; free connections take the
   * first runnable step in plan order. Default 1. The pool needs this many connections, one more
   * with `onProgress` (for the progress reads).
   */
  readonly jobs?: number;
  /** Cancels every running statement on the server; the remaining steps are skipped (`canceled`). */
  readonly signal?: AbortSignal;
  /** Step starts and ends, and progress from `pg_stat_progress_*` (pool targets). A throwing callback is logged, not fatal. */
  readonly onProgress?: (event: CleanupEvent) => void;
}

/** Outcome of {@link cleanupDatabase}: one result per step, in plan order. */
export interface CleanupReport {
  readonly dryRun: boolean;
  readonly results: readonly CleanupStepResult[];
  readonly done: number;
  readonly skipped: number;
  readonly failed: number;
}

const kinds = (action: CleanupAction) => (action === 'reindex' ? ['i'] : ['r', 'm']);

/** A plan is data the caller may have built or edited: only `action` and `relationId` are trusted, and only after checks. */
function checkPlan(plan: unknown): CleanupPlan {
  if (typeof plan !== 'object' || plan === null || !Array.isArray((plan as CleanupPlan).steps))
    throw new MaintenanceInputError('plan', 'must be an object with a steps array (from planCleanup)');
  (plan as CleanupPlan).steps.forEach((step, i) => {
    if (typeof step !== 'object' || step === null || !Object.hasOwn(ORDER, step.action))
      throw new MaintenanceInputError(`plan.steps[${i}].action`, 'must be vacuum-freeze, vacuum, analyze or reindex');
    if (!Number.isInteger(step.relationId) || step.relationId <= 0 || step.relationId > 0xffffffff)
      throw new MaintenanceInputError(`plan.steps[${i}].relationId`, 'must be an OID (a positive 32-bit integer)');
  });
  return plan as CleanupPlan;
}

/** Each job needs its own connection, and progress samples one more: with fewer, they would wait on each other. */
function checkJobs(db: MaintenanceTarget, jobs: unknown, progress: boolean): number {
  if (!Number.isInteger(jobs) || (jobs as number) < 1 || (jobs as number) > 1024)
    throw new MaintenanceInputError('jobs', 'must be an integer from 1 to 1024');
  const needed = (jobs as number) + (progress ? 1 : 0);
  if (isPoolLike(db) ? needed > (db.config?.maxConnections ?? needed) : (jobs as number) > 1)
    throw new MaintenanceInputError('jobs', `needs a pool of at least ${needed} connections (one per job, one for progress)`);
  return jobs as number;
}

/**
 * Run a cleanup plan (the seed's `cleanup_database`) in plan order, on `jobs` connections (default
 * one) outside any transaction. Each step's relation is re-read from the catalog by OID (the plan's
 * own names and SQL are never sent), then run with `lock_timeout`/`statement_timeout`; a REINDEX
 * CONCURRENTLY that fails has its invalid leftovers dropped. A locked relation is skipped, a failure
 * is recorded and the run goes on; only invalid input throws. A dry run sends only catalog reads and
 * returns the SQL each step would run.
 */
export async function cleanupDatabase(db: MaintenanceTarget, options: CleanupOptions = {}): Promise<CleanupReport> {
  if (typeof options !== 'object' || options === null) throw new MaintenanceInputError('options', 'must be an object');
  const { plan: given, planOptions, dryRun = false, jobs = 1, onProgress, ...rest } = options;
  checkRunOptions(rest);
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw new MaintenanceInputError('onProgress', 'must be a function');
  if (typeof dryRun !== 'boolean') throw new MaintenanceInputError('dryRun', 'must be a boolean');
  const workers = checkJobs(db, jobs, onProgress !== undefined);
  const plan = given === undefined ? undefined : checkPlan(given);
  return withSession(db, rest, async (s) => {
    const steps = (plan ?? (await planCleanup(s.db, planOptions))).steps;
    const catalog = await resolveOids(s.db, [...new Set(steps.map((st) => st.relationId))]);
    const total = steps.length;
    const emit = (event: CleanupEvent) => {
      try {
        onProgress?.(event);
      } catch (err) {
        s.log.warn({ err }, 'cleanup onProgress callback threw');
      }
    };
    const runStep = async (w: Session, index: number, step: CleanupStep): Promise<CleanupStepResult> => {
      const found = catalog.get(step.relationId);
      if (!found || !kinds(step.action).includes(found.kind)) return { step, status: 'skipped', skipReason: 'gone' };
      const sql = stepSql(step.action, found.qualified);
      if (dryRun) return { step, status: 'planned', sql };
      if (rest.signal?.aborted) return { step, status: 'skipped', skipReason: 'canceled', sql };
      emit({ type: 'step-start', index, total, step });
      const run = { ...rest, onProgress: (sample: ProgressSample) => emit({ type: 'progress', index, total, step, ...sample }) };
      let result: CleanupStepResult;
      try {
        requirePrivilege(found, 'maintain');
        const r =
          step.action === 'reindex'
            ? await reindex(w, found, 'INDEX', {}, run)
            : await runStatement(w, found.qualified, sql, run, step.action !== 'analyze');
        result = {
          step,
          status: r.status,
          sql,
          durationMs: r.durationMs,
          ...(r.status === 'skipped' && { skipReason: 'locked' }),
        };
      } catch (error) {
        if (!AccountDbError.is(error)) throw error; // a defect, not a database failure
        const locked = error instanceof LockNotAvailableError;
        result = { step, status: locked ? 'skipped' : 'failed', sql, error, ...(locked && { skipReason: 'locked' }) };
        if (error instanceof QueryCanceledError) s.log.info({ relation: found.qualified }, 'cleanup canceled');
        else if (!locked) s.log.warn({ err: error, relation: found.qualified }, 'cleanup step failed');
      }
      emit({ type: 'step-end', index, total, result });
      return result;
    };
    // Each worker takes the first pending step whose table no other worker holds. A worker finding
    // none may stop: every blocked step waits on a table whose own worker will take it next.
    const results: CleanupStepResult[] = [];
    const pending = [...steps.keys()];
    const busy = new Set<number>();
    const tableOf = (i: number) => {
      const id = (steps[i] as CleanupStep).relationId;
      return catalog.get(id)?.tableOid ?? id;
    };
    const work = async (w: Session) => {
      for (;;) {
        const at = pending.findIndex((i) => !busy.has(tableOf(i)));
        if (at === -1) return;
        const index = pending.splice(at, 1)[0] as number;
        busy.add(tableOf(index));
        try {
          results[index] = await runStep(w, index, steps[index] as CleanupStep);
        } finally {
          busy.delete(tableOf(index));
        }
      }
    };
    const extra = async () => {
      const lease = await (s.pool as PoolLike).acquire();
      try {
        await work({ ...s, db: lease, lease });
      } finally {
        lease.release();
      }
    };
    const n = dryRun ? 1 : Math.min(workers, total);
    await Promise.all([
      work(s),
      ...Array.from({ length: n - 1 }, () => extra().catch((err) => s.log.warn({ err }, 'a cleanup job got no connection'))),
    ]);
    const count = (status: CleanupStepResult['status']) => results.filter((r) => r.status === status).length;
    return { dryRun, results, done: count('done'), skipped: count('skipped'), failed: count('failed') };
  });
}

import type { AccountDbError, Logger } from '@accountdb/pool';
import {
  LockNotAvailableError,
  MaintenanceCanceledError,
  MaintenanceInputError,
  MaintenancePermissionError,
  toMaintenanceError,
} from './errors.js';
import { resolveOids } from './names.js';
import { type CleanupAction, type CleanupPlan, type CleanupStep, type PlanOptions, planCleanup, stepSql } from './plan.js';
import type { ProgressSample } from './progress.js';
import { checkRunOptions, type MaintenanceTarget, runStatement, withSession } from './runner.js';

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

/** Events of a cleanup run, in order: per step `step-start`, any `progress`, then `step-end`. */
export type CleanupEvent =
  | { readonly type: 'step-start'; readonly index: number; readonly total: number; readonly step: CleanupStep }
  | ({ readonly type: 'progress'; readonly index: number; readonly total: number; readonly step: CleanupStep } & ProgressSample)
  | { readonly type: 'step-end'; readonly index: number; readonly total: number; readonly result: CleanupStepResult };

/** Options of {@link cleanupDatabase}. */
export interface CleanupOptions {
  /** The plan to run (from {@link planCleanup}, possibly filtered). Default: a fresh plan from `planOptions`. */
  readonly plan?: CleanupPlan;
  /** Options for the plan made when `plan` is not given. */
  readonly planOptions?: PlanOptions;
  /** Send nothing but catalog reads; return each step with the exact SQL it would run. */
  readonly dryRun?: boolean;
  /** Cancels the running statement on the server; the remaining steps are skipped (`canceled`). */
  readonly signal?: AbortSignal;
  /** Step starts and ends, and progress from `pg_stat_progress_*` (pool targets). A throwing callback is logged, not fatal. */
  readonly onProgress?: (event: CleanupEvent) => void;
  /** `lock_timeout` per step, ms. Default 5,000; a step that times out is `skipped` (`locked`). */
  readonly lockTimeoutMs?: number;
  /** `statement_timeout` per step, ms; 0 = none. Default: the session's. */
  readonly statementTimeoutMs?: number;
  /** Time between two progress reads, ms. Default 1,000. */
  readonly progressIntervalMs?: number;
  readonly logger?: Logger;
}

/** Outcome of {@link cleanupDatabase}: one result per step, in plan order. */
export interface CleanupReport {
  readonly dryRun: boolean;
  readonly results: readonly CleanupStepResult[];
  readonly done: number;
  readonly skipped: number;
  readonly failed: number;
}

const ACTIONS = new Set<CleanupAction>(['vacuum-freeze', 'vacuum', 'analyze', 'reindex']);

/** A plan is data the caller may have built or edited: only `action` and `relationId` are trusted, and only after checks. */
function checkPlan(plan: unknown): CleanupPlan {
  if (typeof plan !== 'object' || plan === null || !Array.isArray((plan as CleanupPlan).steps))
    throw new MaintenanceInputError('plan', 'must be an object with a steps array (from planCleanup)');
  (plan as CleanupPlan).steps.forEach((step, i) => {
    if (typeof step !== 'object' || step === null || !ACTIONS.has(step.action))
      throw new MaintenanceInputError(`plan.steps[${i}].action`, 'must be vacuum-freeze, vacuum, analyze or reindex');
    if (!Number.isInteger(step.relationId) || step.relationId <= 0 || step.relationId > 0xffffffff)
      throw new MaintenanceInputError(`plan.steps[${i}].relationId`, 'must be an OID (a positive 32-bit integer)');
  });
  return plan as CleanupPlan;
}

const KINDS: Record<CleanupAction, readonly string[]> = {
  'vacuum-freeze': ['r', 'm'],
  vacuum: ['r', 'm'],
  analyze: ['r', 'm'],
  reindex: ['i'],
};

/**
 * Run a cleanup plan (the seed's `cleanup_database`), step by step in plan order, on one connection
 * outside any transaction. Each step's relation is re-read from the catalog by OID (the plan's own
 * names and SQL are never sent), then run with `lock_timeout`/`statement_timeout`. A locked relation
 * is skipped, a failure is recorded and the run goes on; only invalid input throws. A dry run sends
 * only the catalog read and returns the SQL each step would run.
 */
export async function cleanupDatabase(db: MaintenanceTarget, options: CleanupOptions = {}): Promise<CleanupReport> {
  if (typeof options !== 'object' || options === null) throw new MaintenanceInputError('options', 'must be an object');
  const { plan: given, planOptions, dryRun = false, onProgress, ...rest } = options;
  checkRunOptions(rest);
  if (onProgress !== undefined && typeof onProgress !== 'function')
    throw new MaintenanceInputError('onProgress', 'must be a function');
  if (typeof dryRun !== 'boolean') throw new MaintenanceInputError('dryRun', 'must be a boolean');
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
    const results: CleanupStepResult[] = [];
    for (const [index, step] of steps.entries()) {
      const found = catalog.get(step.relationId);
      let result: CleanupStepResult;
      if (!found || !KINDS[step.action].includes(found.kind)) result = { step, status: 'skipped', skipReason: 'gone' };
      else if (dryRun) result = { step, status: 'planned', sql: stepSql(step.action, found.qualified) };
      else if (rest.signal?.aborted)
        result = { step, status: 'skipped', skipReason: 'canceled', sql: stepSql(step.action, found.qualified) };
      else {
        const sql = stepSql(step.action, found.qualified);
        emit({ type: 'step-start', index, total, step });
        if (!found.canMaintain) {
          const error = new MaintenancePermissionError(`The current role may not maintain ${found.qualified}`, {
            sqlstate: '42501',
            relation: found.qualified,
          });
          result = { step, status: 'failed', sql, error };
        } else {
          try {
            const r = await runStatement(
              s,
              found.qualified,
              sql,
              {
                ...rest,
                onProgress: (sample) =>
                  emit({
                    type: 'progress',
                    index,
                    total,
                    step,
                    command: sample.command,
                    phase: sample.phase,
                    percent: sample.percent,
                  }),
              },
              step.action !== 'analyze',
            );
            result =
              r.status === 'skipped'
                ? { step, status: 'skipped', skipReason: 'locked', sql, durationMs: r.durationMs }
                : { step, status: 'done', sql, durationMs: r.durationMs };
          } catch (err) {
            const error = toMaintenanceError(err, found.qualified);
            if (error instanceof LockNotAvailableError) result = { step, status: 'skipped', skipReason: 'locked', sql, error };
            else result = { step, status: 'failed', sql, error };
            if (error instanceof MaintenanceCanceledError) s.log.info({ relation: found.qualified }, 'cleanup canceled');
            else if (result.status === 'failed') s.log.warn({ err: error, relation: found.qualified }, 'cleanup step failed');
          }
        }
        emit({ type: 'step-end', index, total, result });
      }
      results.push(result);
    }
    const count = (status: CleanupStepResult['status']) => results.filter((r) => r.status === status).length;
    return { dryRun, results, done: count('done'), skipped: count('skipped'), failed: count('failed') };
  });
}

import { performance } from 'node:perf_hooks';
import { assertTarget, unmeasured } from './connection.js';
import { describeFailure, type HealthTarget, queryBefore, saturation } from './deadline.js';
import { describeError, failed, type HealthCheckResult, type HealthDocument, judged, toDocument } from './document.js';
import { type QueryPerformanceOptions, type Resolved, resolveSingle } from './options.js';

export const QUERY_TIME = 'postgresql:queryTime';

/**
 * Seed `check_query_performance`: run a probe query (default `SELECT 1`) within the deadline and judge
 * its round-trip time against `queryTimeMs`. The probe's text and values never appear in the document.
 * Throws `ConfigError` for bad options; a failing probe is a `fail` entry.
 */
export async function checkQueryPerformance(db: HealthTarget, options: QueryPerformanceOptions = {}): Promise<HealthDocument> {
  assertTarget(db);
  const o = resolveSingle('queryPerformance', options);
  return toDocument(await queryPerformanceChecks(db, o, performance.now() + o.timeoutMs));
}

export async function queryPerformanceChecks(
  db: HealthTarget,
  o: NonNullable<Resolved['queryPerformance']>,
  deadline: number,
): Promise<Record<string, HealthCheckResult[]>> {
  const time = new Date().toISOString();
  const skipped = saturation(db);
  if (skipped) return { [QUERY_TIME]: [unmeasured(time, skipped)] };
  const timeoutMs = Math.max(0, Math.round(deadline - performance.now()));
  const outcome = await queryBefore(db, deadline, o.query);
  if (outcome.ok) return { [QUERY_TIME]: [judged('datastore', outcome.ms, 'ms', o.queryTimeMs, 'queryTimeMs', time)] };
  // A SQL error from the caller's probe is reported by its code only: its message may quote a value.
  const output = outcome.timedOut ? describeFailure(outcome, timeoutMs, 'probe query') : probeError(outcome.error);
  return { [QUERY_TIME]: [failed('datastore', 'ms', time, output)] };
}

function probeError(error: unknown): string {
  const code = (error as { sqlstate?: unknown } | null)?.sqlstate;
  const sqlstate = typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
  return sqlstate ? `probe query failed with SQLSTATE ${sqlstate}` : describeError(error);
}

import { performance } from 'node:perf_hooks';
import { ConfigError } from '@accountdb/pool';
import { type Bounded, describeFailure, type HealthTarget, isHealthTarget, queryBefore, saturation } from './deadline.js';
import { failed, type HealthCheckResult, type HealthDocument, judged, type Threshold, toDocument } from './document.js';
import { type ConnectionHealthOptions, resolveSingle } from './options.js';

export const RESPONSE_TIME = 'postgresql:responseTime';

/**
 * Seed `check_connection_health`: one `SELECT 1` round trip on a pool (a connection is leased within
 * the deadline), a lease or a driver client; `postgresql:responseTime` in ms. Never throws for an
 * unhealthy database; throws `ConfigError` for bad options or a `db` that cannot query.
 */
export async function checkConnectionHealth(db: HealthTarget, options: ConnectionHealthOptions = {}): Promise<HealthDocument> {
  assertTarget(db);
  const o = resolveSingle('connection', options);
  const time = new Date().toISOString();
  const skipped = saturation(db);
  if (skipped) return toDocument({ [RESPONSE_TIME]: [unmeasured(time, skipped)] });
  const outcome = await queryBefore(db, performance.now() + o.timeoutMs, 'SELECT 1');
  return toDocument({ [RESPONSE_TIME]: [responseTimeCheck(outcome, o.responseTimeMs, o.timeoutMs, time, 'SELECT 1')] });
}

/** The `postgresql:responseTime` entry for a bounded statement's outcome. */
export function responseTimeCheck(
  outcome: Bounded<unknown>,
  threshold: Threshold,
  timeoutMs: number,
  time: string,
  what: string,
): HealthCheckResult {
  if (outcome.ok) return judged('datastore', outcome.ms, 'ms', threshold, 'responseTimeMs', time);
  return failed('datastore', 'ms', time, describeFailure(outcome, timeoutMs, what));
}

/** A database check skipped because the pool is saturated: unknown, so `warn`, never a wait. */
export function unmeasured(time: string, output: string, unit = 'ms'): HealthCheckResult {
  return { componentType: 'datastore', status: 'warn', observedValue: null, observedUnit: unit, time, output };
}

export function assertTarget(db: unknown): asserts db is HealthTarget {
  if (!isHealthTarget(db))
    throw new ConfigError([
      { variable: 'db', message: 'must be a Pool, a PoolConnection or a pg Client (something with query())' },
    ]);
}

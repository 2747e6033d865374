import { ConfigError, type Pool } from '@accountdb/pool';
import { isPool } from './deadline.js';
import { type HealthCheckResult, type HealthDocument, judged, toDocument } from './document.js';
import { type PoolHealthThresholds, type Resolved, resolveSingle } from './options.js';

/** Counters at the previous check of each pool, for "since the last check" deltas. */
const previous = new WeakMap<Pool, { acquireTimeouts: number; connectFailures: number }>();

/**
 * Seed `check_pool_health`, from `pool.stats()` alone (no SQL, never waits): utilisation, waiting
 * acquires, acquire-wait p99, and acquire timeouts and connect failures since the previous pool check
 * of this pool (the first check counts from the pool's creation). Throws `ConfigError` for bad thresholds.
 */
export function checkPoolHealth(pool: Pool, thresholds: PoolHealthThresholds = {}): HealthDocument {
  assertPool(pool);
  return toDocument(poolChecks(pool, resolveSingle('pool', thresholds)));
}

export function poolChecks(pool: Pool, t: NonNullable<Resolved['pool']>): Record<string, HealthCheckResult[]> {
  const time = new Date().toISOString();
  const s = pool.stats();
  const before = previous.get(pool) ?? { acquireTimeouts: 0, connectFailures: 0 };
  previous.set(pool, { acquireTimeouts: s.acquireTimeouts, connectFailures: s.connectFailures });
  const numbers = `${s.active}/${s.max} in use, ${s.idle} idle, ${s.pending} opening, ${s.waiting} waiting`;
  const utilization = s.max > 0 ? (s.active / s.max) * 100 : 0;
  const saturated = s.idle === 0 && s.total + s.pending >= s.max ? `saturated: ${numbers}` : undefined;
  return {
    'pool:utilization': [judged('component', utilization, '%', t.utilizationPercent, 'utilizationPercent', time, saturated)],
    'pool:waiting': [judged('component', s.waiting, 'acquires', t.waiting, 'waiting', time)],
    'pool:acquireWait': [judged('component', s.acquireWaitMs.p99, 'ms', t.acquireWaitP99Ms, 'acquireWaitP99Ms', time)],
    'pool:timeouts': [judged('component', s.acquireTimeouts - before.acquireTimeouts, 'timeouts', t.timeouts, 'timeouts', time)],
    'pool:connectFailures': [
      judged('component', s.connectFailures - before.connectFailures, 'failures', t.connectFailures, 'connectFailures', time),
    ],
  };
}

function assertPool(pool: unknown): asserts pool is Pool {
  if (typeof pool !== 'object' || pool === null || !isPool(pool as Pool))
    throw new ConfigError([{ variable: 'pool', message: 'must be a Pool from @accountdb/pool (with stats())' }]);
}

export { assertPool };

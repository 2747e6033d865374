import type { Pool } from '@accountdb/pool';
import { createPoolCollector } from '@accountdb/pool/prometheus';
import type { Registry } from 'prom-client';

/** Content type of the Prometheus text exposition format (prom-client's default `Registry.contentType`). */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

/**
 * The pool's metrics on `registry`, through `@accountdb/pool/prometheus`: gauges for the current state,
 * counters since the pool was created, and `accountdb_pool_acquire_wait_seconds` /
 * `accountdb_pool_hold_seconds` histograms (buckets, sum, count), all read from `pool.stats()` at each
 * scrape. Called once, in `buildApp`; this is the one place pool metrics are wired.
 */
export function registerPoolMetrics(registry: Registry, pool: Pool): void {
  createPoolCollector(pool, { registry });
}

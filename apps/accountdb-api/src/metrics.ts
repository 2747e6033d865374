import type { LatencySummary, PoolStats } from '@accountdb/pool';

/** Content type of the Prometheus text exposition format. */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

type Sample = readonly [labels: Record<string, string>, value: number];

/**
 * `pool.stats()` in the Prometheus text format. Counters are totals since the pool was created;
 * the latency families are percentiles over the pool's most recent 1,024 samples, so they are
 * gauges (a scrape reads the recent past), in seconds as Prometheus expects.
 */
export function poolMetrics(stats: PoolStats): string {
  const out: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, samples: readonly Sample[]) => {
    out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      const text = Object.entries(labels)
        .map(([k, v]) => `${k}="${v}"`)
        .join(',');
      out.push(`${name}${text ? `{${text}}` : ''} ${Number.isFinite(value) ? value : 0}`);
    }
  };
  const one = (value: number): Sample[] => [[{}, value]];
  const quantiles = (s: LatencySummary): Sample[] => [
    [{ quantile: '0.5' }, s.p50 / 1000],
    [{ quantile: '0.95' }, s.p95 / 1000],
    [{ quantile: '0.99' }, s.p99 / 1000],
    [{ quantile: '1' }, s.max / 1000],
  ];

  family('accountdb_pool_connections', 'gauge', 'Open connections by state.', [
    [{ state: 'idle' }, stats.idle],
    [{ state: 'active' }, stats.active],
    [{ state: 'opening' }, stats.pending],
  ]);
  family('accountdb_pool_waiting', 'gauge', 'Callers waiting for a connection.', one(stats.waiting));
  family('accountdb_pool_max_connections', 'gauge', 'Configured maximum pool size.', one(stats.max));
  family('accountdb_pool_min_connections', 'gauge', 'Configured minimum idle connections.', one(stats.min));
  family('accountdb_pool_acquires_total', 'counter', 'Connections handed out.', one(stats.acquires));
  family(
    'accountdb_pool_acquire_timeouts_total',
    'counter',
    'Acquires that gave up (pool exhausted or connect hanging).',
    one(stats.acquireTimeouts),
  );
  family('accountdb_pool_connects_total', 'counter', 'Connections opened.', one(stats.connects));
  family('accountdb_pool_connect_failures_total', 'counter', 'Connection attempts that failed.', one(stats.connectFailures));
  family('accountdb_pool_retries_total', 'counter', 'Retries after transient connection failures.', one(stats.retries));
  family(
    'accountdb_pool_leaks_detected_total',
    'counter',
    'Leases held past the leak detection threshold.',
    one(stats.leaksDetected),
  );
  family(
    'accountdb_pool_destroyed_total',
    'counter',
    'Connections closed, by reason.',
    Object.entries(stats.destroyed).map(([reason, n]) => [{ reason }, n] as const),
  );
  family(
    'accountdb_pool_acquire_wait_seconds',
    'gauge',
    'Time to get a connection, recent percentiles.',
    quantiles(stats.acquireWaitMs),
  );
  family('accountdb_pool_hold_seconds', 'gauge', 'Time a connection was held, recent percentiles.', quantiles(stats.holdMs));
  return `${out.join('\n')}\n`;
}

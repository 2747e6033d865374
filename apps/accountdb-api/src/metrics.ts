import type { LatencySummary, Pool, PoolStats } from '@accountdb/pool';
import type { FastifyInstance } from 'fastify';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Content type of the Prometheus text exposition format (prom-client's `Registry.contentType`). */
export const PROMETHEUS_TEXT = 'text/plain; version=0.0.4; charset=utf-8';

const QUANTILES = [
  ['0.5', 'p50'],
  ['0.95', 'p95'],
  ['0.99', 'p99'],
  ['1', 'max'],
] as const satisfies readonly (readonly [string, keyof LatencySummary])[];

/**
 * The pool's metrics, read from `pool.stats()` at each scrape (the pool depends on no metrics
 * library). Gauges for the current state; counters for totals since the pool was created; the
 * latency families are percentiles over the pool's most recent samples, in seconds, so they are
 * gauges with a `quantile` label. Called once, in `buildApp`; this is the one place pool metrics live.
 */
export function registerPoolMetrics(registry: Registry, pool: Pool): void {
  // One stats() snapshot per scrape, shared by every family: a registry collects its metrics in
  // registration order, so the first family takes the snapshot and the others read it.
  let snapshot: PoolStats | undefined;
  const stats = () => snapshot ?? pool.stats();
  const registers = [registry];
  const gauge = (name: string, help: string, read: (s: PoolStats) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        this.set(read(stats()));
      },
    });
  const counter = (name: string, help: string, read: (s: PoolStats) => number) =>
    new Counter({
      name,
      help,
      registers,
      collect() {
        this.reset();
        this.inc(read(stats()));
      },
    });
  const quantiles = (name: string, help: string, read: (s: PoolStats) => LatencySummary) =>
    new Gauge({
      name,
      help,
      labelNames: ['quantile'],
      registers,
      collect() {
        const summary = read(stats());
        for (const [quantile, key] of QUANTILES) this.set({ quantile }, finite(summary[key]) / 1000);
      },
    });

  new Gauge({
    name: 'accountdb_pool_connections',
    help: 'Open connections by state.',
    labelNames: ['state'],
    registers,
    collect() {
      snapshot = pool.stats();
      const s = snapshot;
      this.set({ state: 'idle' }, s.idle);
      this.set({ state: 'active' }, s.active);
      this.set({ state: 'opening' }, s.pending);
    },
  });
  gauge('accountdb_pool_waiting', 'Callers waiting for a connection.', (s) => s.waiting);
  gauge('accountdb_pool_max_connections', 'Configured maximum pool size.', (s) => s.max);
  gauge('accountdb_pool_min_connections', 'Configured minimum idle connections.', (s) => s.min);
  counter('accountdb_pool_acquires_total', 'Connections handed out.', (s) => s.acquires);
  counter(
    'accountdb_pool_acquire_timeouts_total',
    'Acquires that gave up (pool exhausted or connect hanging).',
    (s) => s.acquireTimeouts,
  );
  counter('accountdb_pool_connects_total', 'Connections opened.', (s) => s.connects);
  counter('accountdb_pool_connect_failures_total', 'Connection attempts that failed.', (s) => s.connectFailures);
  counter('accountdb_pool_retries_total', 'Retries after transient connection failures.', (s) => s.retries);
  counter('accountdb_pool_leaks_detected_total', 'Leases held past the leak detection threshold.', (s) => s.leaksDetected);
  new Counter({
    name: 'accountdb_pool_destroyed_total',
    help: 'Connections closed, by reason.',
    labelNames: ['reason'],
    registers,
    collect() {
      this.reset();
      for (const [reason, n] of Object.entries(stats().destroyed)) this.inc({ reason }, n);
    },
  });
  quantiles('accountdb_pool_acquire_wait_seconds', 'Time to get a connection, recent percentiles.', (s) => s.acquireWaitMs);
  quantiles('accountdb_pool_hold_seconds', 'Time a connection was held, recent percentiles.', (s) => s.holdMs);
}

const finite = (n: number) => (Number.isFinite(n) ? n : 0);

/**
 * `http_request_duration_seconds{method,route,status_code}`: one observation per response, labelled
 * by the route's pattern (`/accounts/:id`), never the raw URL, so the label set stays bounded.
 */
export function registerHttpMetrics(app: FastifyInstance, registry: Registry): void {
  const histogram = new Histogram({
    name: 'http_request_duration_seconds',
    help: 'HTTP request duration, from the request arriving to the response being sent.',
    labelNames: ['method', 'route', 'status_code'],
    buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [registry],
  });
  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    histogram.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
  });
}

import type { Pool } from '@accountdb/pool';
import { createPoolCollector } from '@accountdb/pool/prometheus';
import type { FastifyInstance } from 'fastify';
import { Histogram, type Registry } from 'prom-client';

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

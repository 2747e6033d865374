import type { Pool } from '@accountdb/pool';
import Fastify from 'fastify';
import type { LevelWithSilent, Logger } from 'pino';
import { Registry } from 'prom-client';
import { livenessReport, readinessReport } from './health.js';
import { registerPoolMetrics } from './metrics.js';

/** What {@link buildApp} needs; tests pass a pool on a harness database. */
export interface BuildAppOptions {
  pool: Pool;
  logger: Logger;
  /** Bound on the readiness `SELECT 1`, acquire included, ms. Default 2,000. */
  readinessTimeoutMs?: number;
}

const HEALTH_JSON = 'application/health+json; charset=utf-8';

/** The Fastify app, without listening: routes only, so tests can `inject()` requests. */
export function buildApp(options: BuildAppOptions) {
  const readinessTimeoutMs = options.readinessTimeoutMs ?? 2_000;
  const app = Fastify({ loggerInstance: options.logger });
  // Probes hit these every few seconds: keep them out of the info-level request log. A route's
  // logLevel replaces the root level, so never go below what the root logger was configured with.
  const { values } = options.logger.levels;
  const rootLevel = options.logger.level as LevelWithSilent;
  const probeLogLevel: LevelWithSilent =
    rootLevel === 'silent' || (values[rootLevel] ?? 0) > (values.warn ?? 0) ? rootLevel : 'warn';

  app.get('/health/live', { logLevel: probeLogLevel }, async (_request, reply) => {
    return reply.type(HEALTH_JSON).send(livenessReport());
  });

  app.get('/health/ready', { logLevel: probeLogLevel }, async (_request, reply) => {
    const report = await readinessReport(options.pool, readinessTimeoutMs);
    if (report.status === 'fail') reply.log.warn({ output: report.output }, 'not ready');
    return reply
      .code(report.status === 'pass' ? 200 : 503)
      .type(HEALTH_JSON)
      .send(report);
  });

  // Scraped every few seconds, like the probes. One registry per app, so tests can build several.
  const registry = new Registry();
  registerPoolMetrics(registry, options.pool);
  app.get('/metrics', { logLevel: probeLogLevel }, async (_request, reply) => {
    return reply.type(registry.contentType).send(await registry.metrics());
  });

  return app;
}

/** The Fastify instance {@link buildApp} returns (typed with the app's pino logger). */
export type AccountDbApp = ReturnType<typeof buildApp>;

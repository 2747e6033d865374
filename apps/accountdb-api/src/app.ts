import { createHealthHandler, type HealthDocument } from '@accountdb/health';
import type { Pool } from '@accountdb/pool';
import { createRls } from '@accountdb/rls';
import fastifySwagger from '@fastify/swagger';
import fastifySwaggerUi from '@fastify/swagger-ui';
import Fastify, { type FastifyBaseLogger, type FastifyReply } from 'fastify';
import type { LevelWithSilent, Logger } from 'pino';
import { Registry } from 'prom-client';
import { registerAdmin } from './admin.js';
import { APP_ROLES, registerAuth } from './auth.js';
import { registerDashboard } from './dashboard.js';
import { registerErrorHandler } from './http-errors.js';
import { registerHttpMetrics, registerPoolMetrics } from './metrics.js';
import { registerResources } from './resources.js';
import { MIGRATIONS_DIR, type StartupState } from './startup.js';

/** What {@link buildApp} needs; tests pass pools on a harness database. */
export interface BuildAppOptions {
  /** The login role's pool (NOSUPERUSER NOBYPASSRLS, owns nothing): user routes and readiness. */
  pool: Pool;
  /** The migration role's pool (owns the tables): admin routes. */
  admin: Pool;
  logger: Logger;
  /** Start-up phases: readiness fails and `/health/startup` reports progress until `startup.ready`. */
  startup: StartupState;
  /** HS256 secret for tokens. */
  jwtSecret: string;
  /** Token lifetime, s. Default 3,600. */
  tokenTtlSeconds?: number;
  /** Bound on the readiness check, acquire included, ms. Default 2,000. */
  readinessTimeoutMs?: number;
  /** How long a readiness document is reused, ms: probes, load balancers and the dashboard share one check. Default 1,000. */
  readinessCacheMs?: number;
  migrationsDir?: string;
}

const HEALTH_JSON = 'application/health+json; charset=utf-8';

/** The Fastify app, without listening: tests `inject()` requests into it. */
export async function buildApp(options: BuildAppOptions) {
  const { pool, admin, logger, startup } = options;
  const app = Fastify({ loggerInstance: logger as FastifyBaseLogger, ajv: { customOptions: { removeAdditional: false } } });
  // Probes and scrapes hit the app every few seconds: keep them out of the info-level request log.
  // A route's logLevel replaces the root level, so never go below what the root logger was set to.
  const { values } = logger.levels;
  const rootLevel = logger.level as LevelWithSilent;
  const quiet: LevelWithSilent = rootLevel === 'silent' || (values[rootLevel] ?? 0) > (values.warn ?? 0) ? rootLevel : 'warn';

  registerErrorHandler(app);
  await app.register(fastifySwagger, {
    openapi: {
      info: {
        title: 'accountdb-api',
        version: '1.0.0',
        description: 'The AccountDB reference app: user-scoped CRUD under Row-Level Security.',
      },
      components: { securitySchemes: { bearerAuth: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
  });
  await app.register(fastifySwaggerUi, { routePrefix: '/docs' });

  const registry = new Registry();
  registerPoolMetrics(registry, pool);
  registerHttpMetrics(app, registry);
  app.get('/metrics', { logLevel: quiet, schema: { hide: true } }, async (_request, reply) =>
    reply.type(registry.contentType).send(await registry.metrics()),
  );

  const health = createHealthHandler(pool, {
    timeoutMs: options.readinessTimeoutMs ?? 2_000,
    cacheTtlMs: options.readinessCacheMs ?? 1_000,
    startup: () => startup.ready,
    logger,
  });
  const progressCheck = () => {
    const p = startup.progress;
    return {
      componentType: 'component',
      status: p.phase === 'ready' ? 'pass' : 'fail',
      observedValue: p.phase,
      output: p.detail,
      time: p.since,
      migrationsApplied: p.migrationsApplied,
      checkAttempts: p.checkAttempts,
    };
  };
  const sendHealth = (reply: FastifyReply, doc: HealthDocument) =>
    reply
      .code(doc.status === 'fail' ? 503 : 200)
      .type(HEALTH_JSON)
      .header('cache-control', 'no-store')
      .send(doc);
  app.get('/health/live', { logLevel: quiet, schema: { hide: true } }, async (_request, reply) =>
    sendHealth(reply, await health.report('live')),
  );
  app.get('/health/startup', { logLevel: quiet, schema: { hide: true } }, async (_request, reply) => {
    const doc = await health.report('startup');
    return sendHealth(reply, { ...doc, checks: { ...doc.checks, 'startup:progress': [progressCheck()] } } as HealthDocument);
  });
  app.get('/health/ready', { logLevel: quiet, schema: { hide: true } }, async (_request, reply) => {
    if (!startup.ready) {
      const check = progressCheck();
      return sendHealth(reply, {
        status: 'fail',
        output: `starting: ${check.output}`,
        checks: { 'startup:progress': [check] },
      } as HealthDocument);
    }
    return sendHealth(reply, await health.report('ready'));
  });

  const rls = createRls({ roles: APP_ROLES, logger });
  await registerAuth(app, { pool, secret: options.jwtSecret, tokenTtlSeconds: options.tokenTtlSeconds ?? 3_600 });
  registerResources(app, { pool, rls });
  registerAdmin(app, { admin, pool, migrationsDir: options.migrationsDir ?? MIGRATIONS_DIR });
  registerDashboard(app);
  return app;
}

/** The Fastify instance {@link buildApp} returns. */
export type AccountDbApp = Awaited<ReturnType<typeof buildApp>>;

import { cleanupDatabase, planCleanup } from '@accountdb/maintenance';
import { migrationStatus } from '@accountdb/migrate';
import type { Pool } from '@accountdb/pool';
import { getDatabaseStats } from '@accountdb/stats';
import { type Static, Type } from '@sinclair/typebox';
import type { FastifyInstance } from 'fastify';
import { authenticate, requireAdmin } from './auth.js';

export interface AdminOptions {
  /** The migration role's pool (owner of the tables): VACUUM and ANALYZE need ownership, stats read the catalog. */
  admin: Pool;
  /** The login role's pool, whose numbers `/admin/pool` reports. */
  pool: Pool;
  migrationsDir: string;
}

const RunBody = Type.Object(
  {
    /** Really run the plan. Default false: a dry run returns each step's exact SQL and changes nothing. */
    execute: Type.Optional(Type.Boolean({ default: false })),
  },
  { additionalProperties: false },
);

/**
 * Admin routes (the token's role must be `admin`): `/admin/stats` (`@accountdb/stats`),
 * `/admin/pool` (the login pool's `stats()`), `/admin/migrations` (status), `/admin/maintenance/plan`
 * and `POST /admin/maintenance/run` (dry run unless `{ "execute": true }`). The dashboard reads these.
 */
export function registerAdmin(app: FastifyInstance, options: AdminOptions): void {
  const { admin, pool, migrationsDir } = options;
  const common = { preHandler: [authenticate, requireAdmin], schema: { tags: ['admin'], security: [{ bearerAuth: [] }] } };

  // Only the application's schema: the catalog's own tables would drown it.
  app.get('/admin/stats', common, () => getDatabaseStats(admin, { includeSchemas: ['public', 'app'], longRunningMs: 5_000 }));
  app.get('/admin/pool', common, () => pool.stats());
  app.get('/admin/migrations', common, async () => {
    const status = await migrationStatus(admin, { dir: migrationsDir });
    return {
      entries: status.entries,
      pending: status.pending.map((f) => f.file),
      failed: status.failed,
      drift: status.drift,
      outOfOrder: status.outOfOrder,
      newestApplied: status.newestApplied,
    };
  });
  app.get('/admin/maintenance/plan', common, () => planCleanup(admin, { schemas: ['public'] }));
  app.post<{ Body: Static<typeof RunBody> }>(
    '/admin/maintenance/run',
    { ...common, schema: { ...common.schema, body: RunBody } },
    async (request) => {
      const dryRun = request.body?.execute !== true;
      request.log.info({ dryRun }, 'maintenance run requested');
      return cleanupDatabase(admin, { dryRun, planOptions: { schemas: ['public'] }, lockTimeoutMs: 2_000 });
    },
  );
}

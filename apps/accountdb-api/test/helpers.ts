import { randomBytes } from 'node:crypto';
import { createPool, type Pool } from '@accountdb/pool';
import { createTestDatabase, sharedAdminServer, type TestDatabase } from '@accountdb/test-db';
import pg from 'pg';
import type { Logger } from 'pino';
import { type AccountDbApp, buildApp } from '../src/app.js';
import { createLogger } from '../src/logger.js';
import { provisionLoginRole } from '../src/provision.js';
import { Startup, type StartupState } from '../src/startup.js';

export const TEST_JWT_SECRET = 'test-secret-test-secret-test-secret-0123';
export const DEMO_PASSWORD = 'accountdb-demo';
export const silentLogger = createLogger({ level: 'silent' });

/** A start-up that has already finished, for tests of the HTTP layer alone. */
export const STARTED: StartupState = {
  ready: true,
  progress: { phase: 'ready', detail: 'test', migrationsApplied: 0, checkAttempts: 1, since: new Date().toISOString() },
};

/** The app on a pool alone (health, metrics, logging tests): that pool is also the admin pool. */
export function appOn(pool: Pool, options: { logger?: Logger; readinessTimeoutMs?: number; startup?: StartupState } = {}) {
  return buildApp({
    pool,
    admin: pool,
    logger: options.logger ?? silentLogger,
    startup: options.startup ?? STARTED,
    jwtSecret: TEST_JWT_SECRET,
    readinessCacheMs: 0,
    ...(options.readinessTimeoutMs === undefined ? {} : { readinessTimeoutMs: options.readinessTimeoutMs }),
  });
}

export interface TestApp {
  db: TestDatabase;
  /** The database owner (superuser on the harness): migrations and admin routes. */
  admin: Pool;
  /** The provisioned login role's pool. */
  pool: Pool;
  app: AccountDbApp;
  startup: Startup;
  loginRole: string;
  loginPassword: string;
  close(): Promise<void>;
}

/**
 * The whole app as `main.ts` puts it together, on a fresh test database: provision a login role
 * (a unique name per file: roles are cluster-wide), run start-up (migrations, checks), build the app.
 */
export async function startTestApp(options: { logger?: Logger; run?: boolean; maxConnections?: number } = {}): Promise<TestApp> {
  const logger = options.logger ?? silentLogger;
  const db = await createTestDatabase();
  const admin = createPool({ ...db, sslmode: 'disable', maxConnections: 3, minConnections: 0, queryTimeoutMs: 0 }, { logger });
  const loginRole = `api_${randomBytes(5).toString('hex')}`;
  const password = randomBytes(18).toString('base64url');
  await provisionLoginRole(admin, { name: loginRole, password });
  const pool = createPool(
    {
      ...db,
      user: loginRole,
      password,
      sslmode: 'disable',
      maxConnections: options.maxConnections ?? 4,
      minConnections: 0,
      acquireTimeoutMs: 1_000,
    },
    { logger },
  );
  const startup = new Startup({ admin, pool, logger, maxRetries: 1, retryIntervalMs: 100 });
  const app = await buildApp({ pool, admin, logger, startup, jwtSecret: TEST_JWT_SECRET });
  if (options.run !== false) await startup.run();
  return {
    db,
    admin,
    pool,
    app,
    startup,
    loginRole,
    loginPassword: password,
    async close() {
      await app.close();
      await pool.close();
      await admin.close();
      await db.drop();
      await dropRole(loginRole);
    },
  };
}

/** Drop a role the harness did not create (after its database is gone, nothing depends on it). */
export async function dropRole(name: string): Promise<void> {
  const client = new pg.Client({ connectionString: (await sharedAdminServer()).adminUrl });
  await client.connect();
  try {
    await client.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(name)}`);
  } finally {
    await client.end();
  }
}

/** Sign in through the API; returns the token and the user's id. */
export async function signIn(
  app: AccountDbApp,
  email: string,
  password = DEMO_PASSWORD,
): Promise<{ token: string; userId: number }> {
  const response = await app.inject({ method: 'POST', url: '/auth/sign-in', payload: { email, password } });
  if (response.statusCode !== 200) throw new Error(`sign-in of ${email} failed: ${response.statusCode} ${response.body}`);
  const body = response.json() as { token: string; userId: number };
  return { token: body.token, userId: body.userId };
}

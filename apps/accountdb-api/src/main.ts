import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AccountDbError, ConfigError, createPool, type Pool, resolvePoolConfig } from '@accountdb/pool';
import { withTimeout } from '@accountdb/pool/internal';
import { type AccountDbApp, buildApp } from './app.js';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded-postgres.js';
import { createLogger } from './logger.js';
import { derivedLoginPassword, provisionLoginRole } from './provision.js';
import { type AppSettings, loadSettings } from './settings.js';
import { Startup } from './startup.js';

const SIGNAL_NUMBERS = { SIGINT: 2, SIGTERM: 15 } as const;

let settings: AppSettings;
try {
  settings = loadSettings(process.env);
} catch (err) {
  if (!(err instanceof ConfigError)) throw err;
  process.stderr.write(`accountdb-api: ${err.message}\n`);
  process.exit(1);
}

const logger = createLogger({ level: settings.logLevel });
let embedded: EmbeddedDatabase | undefined;
let admin: Pool | undefined;
let pool: Pool | undefined;
let app: AccountDbApp | undefined;

async function start(): Promise<void> {
  let poolConfig = settings.pool;
  if (settings.embedded) {
    logger.info(
      { dataDir: settings.embedded.dataDir },
      'no DATABASE_URL, DB_HOST or PGHOST set: using an embedded PostgreSQL (data kept in dataDir; delete it to start over)',
    );
    embedded = await startEmbeddedPostgres({ ...settings.embedded, logger });
    poolConfig = resolvePoolConfig({
      ...settings.pool,
      hosts: [{ host: embedded.host, port: embedded.port }],
      user: embedded.user,
      password: embedded.password,
      database: embedded.database,
      sslmode: 'disable',
    });
    logger.info(
      {
        dataDir: embedded.dataDir,
        host: embedded.host,
        port: embedded.port,
        database: embedded.database,
        created: embedded.created,
      },
      `embedded PostgreSQL ${embedded.created ? 'created and started' : 'started'}`,
    );
  }
  // The configured user runs migrations and owns the tables; a small pool, no query bound (DDL and
  // VACUUM are silent on the wire while they work).
  admin = createPool(
    resolvePoolConfig({
      ...poolConfig,
      password: poolConfig.password,
      maxConnections: 3,
      minConnections: 0,
      queryTimeoutMs: 0,
      applicationName: 'accountdb-api admin',
    }),
    { logger },
  );
  // The login role exists before the user pool opens its first connection.
  if (settings.loginPassword === undefined && !poolConfig.password) {
    // Derived from nothing, the login role's password would be guessable.
    throw new ConfigError([{ variable: 'API_DB_PASS', message: 'is required when the database user has no password' }]);
  }
  const loginPassword = settings.loginPassword ?? derivedLoginPassword(poolConfig.password ?? '', settings.loginRole);
  await provisionLoginRole(admin, { name: settings.loginRole, password: loginPassword });
  pool = createPool(
    resolvePoolConfig({
      ...poolConfig,
      user: settings.loginRole,
      password: loginPassword,
      applicationName: poolConfig.applicationName ?? 'accountdb-api',
    }),
    { logger },
  );
  const startup = new Startup({
    admin,
    pool,
    logger,
    maxRetries: settings.initMaxRetries,
    retryIntervalMs: settings.initRetryIntervalMs,
  });
  app = await buildApp({
    pool,
    admin,
    logger,
    startup,
    jwtSecret: jwtSecret(),
    tokenTtlSeconds: settings.tokenTtlSeconds,
    readinessTimeoutMs: settings.readinessTimeoutMs,
    readinessCacheMs: settings.readinessCacheMs,
  });
  // Listen first: /health/startup reports the phases while they run, readiness fails until they pass.
  await app.listen({ port: settings.port, host: settings.host });
  await startup.run();
  logger.info({ uptimeMs: Math.round(process.uptime() * 1000) }, 'ready: serving requests');
}

/** JWT_SECRET, else one kept beside the embedded cluster (mode 0600), else a random one for this process. */
function jwtSecret(): string {
  if (settings.jwtSecret) return settings.jwtSecret;
  if (embedded) {
    const file = join(embedded.dataDir, 'jwt-secret');
    if (!existsSync(file)) writeFileSync(file, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
    return readFileSync(file, 'utf8').trim();
  }
  logger.warn('JWT_SECRET is not set: tokens are signed with a random secret and stop working when this process exits');
  return randomBytes(32).toString('base64url');
}

/** Stop taking requests, drain the pool, stop the embedded server — each step bounded. */
async function shutdown(): Promise<void> {
  const timeoutMs = settings.shutdownTimeoutMs;
  if (app) await bounded(app.close(), timeoutMs, 'in-flight requests did not finish');
  if (pool) await pool.close({ timeoutMs });
  if (admin) await admin.close({ timeoutMs });
  if (embedded) await embedded.stop();
}

function bounded(promise: Promise<unknown>, ms: number, what: string): Promise<unknown> {
  return withTimeout(promise, ms, () => logger.warn({ timeoutMs: ms }, `${what} within the shutdown timeout; continuing`));
}

let stopping: Promise<void> | undefined;
const starting = start();

function onSignal(signal: keyof typeof SIGNAL_NUMBERS): void {
  if (stopping) {
    logger.warn({ signal }, 'second signal: exiting without waiting');
    embedded?.kill();
    process.exit(128 + SIGNAL_NUMBERS[signal]);
  }
  logger.info({ signal }, 'shutting down: closing the HTTP server, draining the pool (send the signal again to force)');
  // A signal during start-up waits for start-up to settle, then shuts down whatever it created.
  stopping = starting
    .catch(() => {})
    .then(shutdown)
    .then(
      () => {
        logger.info('stopped cleanly');
        process.exit(0);
      },
      (err: unknown) => {
        logger.error({ err }, 'shutdown failed');
        process.exit(1);
      },
    );
}

process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

starting.catch(async (err: unknown) => {
  if (stopping) return;
  logger.fatal({ err }, 'start-up failed');
  // Our own errors say what to do; repeat them as plain text for whoever reads the terminal.
  if (AccountDbError.is(err)) process.stderr.write(`accountdb-api: ${err.message}\n`);
  stopping = shutdown().catch(() => {});
  await stopping;
  process.exit(1);
});

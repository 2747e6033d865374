import { AccountDbError, ConfigError, createPool, type Pool, resolvePoolConfig } from '@accountdb/pool';
import { withTimeout } from '@accountdb/pool/internal';
import { type AccountDbApp, buildApp } from './app.js';
import { type EmbeddedDatabase, startEmbeddedPostgres } from './embedded-postgres.js';
import { createLogger } from './logger.js';
import { type AppSettings, loadSettings } from './settings.js';

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
  if (poolConfig.applicationName === undefined)
    poolConfig = resolvePoolConfig({ ...poolConfig, password: poolConfig.password, applicationName: 'accountdb-api' });
  pool = createPool(poolConfig, { logger });
  app = buildApp({ pool, logger, readinessTimeoutMs: settings.readinessTimeoutMs });
  await app.listen({ port: settings.port, host: settings.host });
}

/** Stop taking requests, drain the pool, stop the embedded server — each step bounded. */
async function shutdown(): Promise<void> {
  const timeoutMs = settings.shutdownTimeoutMs;
  if (app) await bounded(app.close(), timeoutMs, 'in-flight requests did not finish');
  if (pool) await pool.close({ timeoutMs });
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

import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ConfigError,
  type ConfigProblem,
  loadConfig,
  type PoolConfig,
  type Logger as PoolLogger,
  resolvePoolConfig,
} from '@accountdb/pool';
import type { Level } from 'pino';
import { LOG_LEVELS } from './logger.js';

/** Everything the app reads from the environment, validated. */
export interface AppSettings {
  /** `PORT`, default 3000 (0 = any free port). */
  port: number;
  /** `HOST`, default `127.0.0.1`. */
  host: string;
  /** `LOG_LEVEL`, default `info`. */
  logLevel: Level | 'silent';
  /** `HEALTH_READY_TIMEOUT_MS`, default 2,000: bound on the readiness `SELECT 1`. */
  readinessTimeoutMs: number;
  /** `HEALTH_READY_CACHE_MS`, default 1,000: how long a readiness document is reused (probes and dashboards share one check). */
  readinessCacheMs: number;
  /** `SHUTDOWN_TIMEOUT_MS`, default 10,000: how long shutdown waits for requests and leased connections. */
  shutdownTimeoutMs: number;
  /**
   * Set when no database is configured (none of `DATABASE_URL`, `DB_HOST`, `PGHOST`): the app then
   * runs its own PostgreSQL with data in `dataDir` (`ACCOUNTDB_DATA_DIR`, default `apps/accountdb-api/.data`).
   */
  embedded: { dataDir: string; dataDirChosen: boolean } | undefined;
  /** The pool configuration from `loadConfig` (in embedded mode, host and credentials are replaced at start). */
  pool: PoolConfig;
  /**
   * `API_DB_USER`, default `accountdb_api`: the role the app's user pool logs in as (created or
   * fixed at start by `src/provision.ts`). The configured database user is the migration role.
   */
  loginRole: string;
  /** `API_DB_PASS`: its password; default derived from the migration role's password. Non-enumerable. */
  loginPassword: string | undefined;
  /** `JWT_SECRET` (at least 32 characters); default: kept in the embedded data folder, or random per process. Non-enumerable. */
  jwtSecret: string | undefined;
  /** `TOKEN_TTL_SECONDS`, default 3,600. */
  tokenTtlSeconds: number;
  /** `INIT_MAX_RETRIES`, default 5 (the seed's `init_database`): check attempts after the first. */
  initMaxRetries: number;
  /** `INIT_RETRY_INTERVAL_MS`, default 2,000 (the seed's 2 s). */
  initRetryIntervalMs: number;
}

/**
 * The app's query bound when the environment sets none (neither `DB_QUERY_TIMEOUT_MS` nor a statement
 * timeout): no request waits longer than this on a server that went silent.
 */
export const APP_QUERY_TIMEOUT_MS = 30_000;

/** `apps/accountdb-api/.data`, found from this file whether it runs from `src/` or `dist/`. */
export const DEFAULT_DATA_DIR = fileURLToPath(new URL('../.data', import.meta.url));

/**
 * Read and validate the app's settings. Throws ONE `ConfigError` listing every bad variable, the
 * pool's (`DB_*`, `DATABASE_URL`, `PG*`) and the app's own together.
 */
export function loadSettings(env: Record<string, string | undefined> = process.env, logger?: PoolLogger): AppSettings {
  const problems: ConfigProblem[] = [];
  const value = (name: string) => {
    const v = env[name]?.trim();
    return v === undefined || v === '' ? undefined : v;
  };
  const integer = (name: string, fallback: number, min: number, max = Number.MAX_SAFE_INTEGER) => {
    const text = value(name);
    if (text === undefined) return fallback;
    if (!/^\d+$/.test(text) || Number(text) < min || Number(text) > max) {
      problems.push({
        variable: name,
        message: `must be an integer from ${min} to ${max}, got ${JSON.stringify(text.slice(0, 40))}`,
      });
      return fallback;
    }
    return Number(text);
  };

  const port = integer('PORT', 3000, 0, 65535);
  const readinessTimeoutMs = integer('HEALTH_READY_TIMEOUT_MS', 2_000, 1);
  const readinessCacheMs = integer('HEALTH_READY_CACHE_MS', 1_000, 0);
  const shutdownTimeoutMs = integer('SHUTDOWN_TIMEOUT_MS', 10_000, 0);
  const tokenTtlSeconds = integer('TOKEN_TTL_SECONDS', 3_600, 1, 31 * 24 * 3600);
  const initMaxRetries = integer('INIT_MAX_RETRIES', 5, 0, 1_000);
  const initRetryIntervalMs = integer('INIT_RETRY_INTERVAL_MS', 2_000, 0);
  const loginRole = value('API_DB_USER') ?? 'accountdb_api';
  if (!/^[a-z_][a-z0-9_]{0,62}$/.test(loginRole)) {
    problems.push({
      variable: 'API_DB_USER',
      message: 'must be a lower-case SQL identifier (letters, digits, _), at most 63 characters',
    });
  }
  const jwtSecret = value('JWT_SECRET');
  if (jwtSecret !== undefined && jwtSecret.length < 32) {
    problems.push({ variable: 'JWT_SECRET', message: `must be at least 32 characters, got ${jwtSecret.length}` });
  }
  const logLevel = (value('LOG_LEVEL') ?? 'info') as Level | 'silent';
  if (!LOG_LEVELS.includes(logLevel)) {
    problems.push({ variable: 'LOG_LEVEL', message: `must be one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(logLevel)}` });
  }

  let pool: PoolConfig | undefined;
  try {
    pool = loadConfig(env, logger ? { logger } : {});
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    problems.push(...err.problems);
  }
  if (problems.length > 0 || pool === undefined) throw new ConfigError(problems);
  // Bounded queries by default (the library's default is off, as pg's is): see APP_QUERY_TIMEOUT_MS.
  if (pool.queryTimeoutMs === 0 && value('DB_QUERY_TIMEOUT_MS') === undefined) {
    pool = resolvePoolConfig({ ...pool, password: pool.password, queryTimeoutMs: APP_QUERY_TIMEOUT_MS });
  }

  const external = value('DATABASE_URL') ?? value('DB_HOST') ?? value('PGHOST');
  const settings: AppSettings = {
    port,
    host: value('HOST') ?? '127.0.0.1',
    logLevel,
    readinessTimeoutMs,
    readinessCacheMs,
    shutdownTimeoutMs,
    embedded:
      external === undefined
        ? {
            dataDir: resolve(value('ACCOUNTDB_DATA_DIR') ?? DEFAULT_DATA_DIR),
            dataDirChosen: value('ACCOUNTDB_DATA_DIR') !== undefined,
          }
        : undefined,
    pool,
    loginRole,
    loginPassword: undefined,
    jwtSecret: undefined,
    tokenTtlSeconds,
    initMaxRetries,
    initRetryIntervalMs,
  };
  // Secrets stay out of `console.log(settings)` and of any log line that includes the object.
  Object.defineProperty(settings, 'loginPassword', { value: value('API_DB_PASS'), enumerable: false });
  Object.defineProperty(settings, 'jwtSecret', { value: jwtSecret, enumerable: false });
  return settings;
}

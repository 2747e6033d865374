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
  /** `SHUTDOWN_TIMEOUT_MS`, default 10,000: how long shutdown waits for requests and leased connections. */
  shutdownTimeoutMs: number;
  /**
   * Set when no database is configured (none of `DATABASE_URL`, `DB_HOST`, `PGHOST`): the app then
   * runs its own PostgreSQL with data in `dataDir` (`ACCOUNTDB_DATA_DIR`, default `apps/accountdb-api/.data`).
   */
  embedded: { dataDir: string; dataDirChosen: boolean } | undefined;
  /** The pool configuration from `loadConfig` (in embedded mode, host and credentials are replaced at start). */
  pool: PoolConfig;
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
  const shutdownTimeoutMs = integer('SHUTDOWN_TIMEOUT_MS', 10_000, 0);
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
  return {
    port,
    host: value('HOST') ?? '127.0.0.1',
    logLevel,
    readinessTimeoutMs,
    shutdownTimeoutMs,
    embedded:
      external === undefined
        ? {
            dataDir: resolve(value('ACCOUNTDB_DATA_DIR') ?? DEFAULT_DATA_DIR),
            dataDirChosen: value('ACCOUNTDB_DATA_DIR') !== undefined,
          }
        : undefined,
    pool,
  };
}

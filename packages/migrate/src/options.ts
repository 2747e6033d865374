import { ConfigError, type ConfigProblem, type Logger } from '@accountdb/pool';
import type { LintFinding } from './lint.js';

/** Progress of a run, for CLIs and dashboards. */
export type MigrationProgress =
  | { readonly event: 'lock-wait'; readonly waitedMs: number }
  | { readonly event: 'start'; readonly file: string; readonly index: number; readonly total: number }
  | { readonly event: 'done'; readonly file: string; readonly index: number; readonly total: number; readonly durationMs: number }
  | { readonly event: 'lint'; readonly finding: LintFinding }
  | {
      readonly event: 'retry';
      readonly file?: string;
      readonly attempt: number;
      readonly delayMs: number;
      readonly reason: string;
    };

/** Options every command takes. */
export interface MigrationOptions {
  /** Directory of migration files. Required. */
  readonly dir: string;
  /** Schema of the history table. Default `public` (created when missing). */
  readonly schema?: string;
  /** History table name. Default `schema_migrations`. */
  readonly table?: string;
  /** pino-shaped logger (child `{ pkg: '@accountdb/migrate' }`). Default: silent. */
  readonly logger?: Logger;
}

/** Options of commands that change the database. */
export interface RunOptions extends MigrationOptions {
  /** How long to wait for another runner's migration lock, ms. Default 120,000. */
  readonly migrationLockTimeoutMs?: number;
  /** `lock_timeout` of each migration, ms (0 = none). Default 5,000; a file header overrides it. */
  readonly lockTimeoutMs?: number;
  /** `statement_timeout` of each migration, ms (0 = none). Default 0; a file header overrides it. */
  readonly statementTimeoutMs?: number;
  /** Retries of a transactional migration that hit `lock_timeout`, with backoff. Default 3. */
  readonly lockRetries?: number;
  /** Retries of the whole run after a connection failure. Default: the pool's `maxRetries`. */
  readonly maxRetries?: number;
  /** Progress callback. */
  readonly onProgress?: (progress: MigrationProgress) => void;
}

/** Options of `runMigrations` and `planMigrations`. */
export interface UpOptions extends RunOptions {
  /** Apply versioned migrations up to and including this version. Default: all. */
  readonly to?: string | number;
  /** Apply pending migrations older than the newest applied one instead of failing. Default false. */
  readonly outOfOrder?: boolean;
  /** Lint findings are errors (`MigrationLintError`, nothing applied) instead of warnings. Default false. */
  readonly strict?: boolean;
}

/** Options of `downMigrations`. */
export interface DownOptions extends RunOptions {
  /** How many applied versioned migrations to revert, newest first. Default 1. */
  readonly steps?: number;
}

/** Options of `baselineMigrations`. */
export interface BaselineOptions extends RunOptions {
  /** Files up to this version count as applied (the schema already has them). Required. */
  readonly version: string | number;
  /** Default `baseline`. */
  readonly description?: string;
}

/** Options after validation. */
export interface Resolved {
  readonly dir: string;
  readonly schema: string;
  readonly table: string;
  readonly migrationLockTimeoutMs: number;
  readonly lockTimeoutMs: number;
  readonly statementTimeoutMs: number;
  readonly lockRetries: number;
  readonly maxRetries: number | undefined;
  readonly to: string | undefined;
  readonly outOfOrder: boolean;
  readonly strict: boolean;
  readonly steps: number;
  readonly version: string | undefined;
  readonly description: string;
}

const KNOWN = new Set(
  'dir schema table logger migrationLockTimeoutMs lockTimeoutMs statementTimeoutMs lockRetries maxRetries onProgress to outOfOrder strict steps version description'.split(
    ' ',
  ),
);

function shape(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'string') return `a string of ${value.length} characters`;
  if (typeof value === 'number') return Number.isFinite(value) ? `the number ${value}` : String(value);
  return Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

/** Validate options before any SQL: every problem at once, as one `ConfigError`. */
export function resolveOptions(input: unknown, needs: { version?: boolean } = {}): Resolved {
  const problems: ConfigProblem[] = [];
  if (typeof input !== 'object' || input === null)
    throw new ConfigError([{ variable: 'options', message: `must be an object, got ${shape(input)}` }]);
  const o = input as Record<string, unknown>;
  for (const key of Object.keys(o)) if (!KNOWN.has(key)) problems.push({ variable: key, message: 'is not a migration option' });
  const problem = (variable: string, message: string) =>
    problems.push({ variable, message: `${message}, got ${shape(o[variable])}` });
  const identifier = (key: string, fallback: string): string => {
    const v = o[key] ?? fallback;
    if (typeof v === 'string' && v.length > 0 && !v.includes('\0') && Buffer.byteLength(v) <= 63) return v;
    problem(key, 'must be a non-empty identifier of at most 63 bytes without NUL');
    return fallback;
  };
  const integer = (key: string, fallback: number, min = 0): number => {
    const v = o[key];
    if (v === undefined) return fallback;
    if (typeof v === 'number' && Number.isSafeInteger(v) && v >= min) return v;
    problem(key, `must be an integer >= ${min}`);
    return fallback;
  };
  const version = (key: string): string | undefined => {
    const v = o[key];
    if (v === undefined) return undefined;
    if ((typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) || (typeof v === 'string' && /^\d{1,18}$/.test(v)))
      return BigInt(v).toString();
    problem(key, 'must be a version: digits, e.g. "12"');
    return undefined;
  };
  if (typeof o.dir !== 'string' || o.dir === '' || o.dir.includes('\0'))
    problem('dir', 'must be the path of the migrations directory');
  for (const key of ['logger', 'onProgress'] as const) {
    const v = o[key];
    if (v !== undefined && (key === 'onProgress' ? typeof v !== 'function' : typeof v !== 'object' || v === null))
      problem(key, key === 'onProgress' ? 'must be a function' : 'must be a logger object');
  }
  for (const key of ['outOfOrder', 'strict'])
    if (o[key] !== undefined && typeof o[key] !== 'boolean') problem(key, 'must be a boolean');
  if (o.description !== undefined && (typeof o.description !== 'string' || o.description.length > 200))
    problem('description', 'must be a string of at most 200 characters');
  const resolved: Resolved = {
    dir: typeof o.dir === 'string' ? o.dir : '',
    schema: identifier('schema', 'public'),
    table: identifier('table', 'schema_migrations'),
    migrationLockTimeoutMs: integer('migrationLockTimeoutMs', 120_000),
    lockTimeoutMs: integer('lockTimeoutMs', 5_000),
    statementTimeoutMs: integer('statementTimeoutMs', 0),
    lockRetries: integer('lockRetries', 3),
    maxRetries: o.maxRetries === undefined ? undefined : integer('maxRetries', 0),
    to: version('to'),
    outOfOrder: o.outOfOrder === true,
    strict: o.strict === true,
    steps: integer('steps', 1, 1),
    version: version('version'),
    description: typeof o.description === 'string' ? o.description : 'baseline',
  };
  if (needs.version && resolved.version === undefined && o.version === undefined) problem('version', 'is required');
  if (problems.length > 0) throw new ConfigError(problems);
  return resolved;
}

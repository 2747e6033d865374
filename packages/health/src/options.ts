import { ConfigError, type ConfigProblem, type Logger, type QueryConfig } from '@accountdb/pool';
import type { Threshold } from './document.js';

/** A warn/fail pair: a value at or above `warn` is `warn`, at or above `fail` is `fail`. `null` turns a level off. */
export interface ThresholdInput {
  readonly warn?: number | null;
  readonly fail?: number | null;
}

/** Options of {@link checkConnectionHealth}. */
export interface ConnectionHealthOptions {
  /** Deadline for the whole check (acquire + round trip), ms. Default 1,000. */
  readonly timeoutMs?: number;
  /** Round-trip time, ms. Default `{ warn: 500 }`. */
  readonly responseTimeMs?: ThresholdInput;
}

/** Thresholds of {@link checkPoolHealth}. */
export interface PoolHealthThresholds {
  /** Leased connections as a percentage of `maxConnections`. Default `{ warn: 80 }` (see README: saturation). */
  readonly utilizationPercent?: ThresholdInput;
  /** Acquires waiting for a connection now. Default `{ warn: 1 }`. */
  readonly waiting?: ThresholdInput;
  /** p99 of the recent acquire waits, ms. Default `{ warn: 100, fail: 1000 }`. */
  readonly acquireWaitP99Ms?: ThresholdInput;
  /** Acquire timeouts since the previous pool check. Default `{ warn: 1 }`. */
  readonly timeouts?: ThresholdInput;
  /** Failed connects since the previous pool check. Default `{ warn: 1 }`. */
  readonly connectFailures?: ThresholdInput;
}

/** Options of {@link checkQueryPerformance}. */
export interface QueryPerformanceOptions {
  /** The probe: SQL text or `{ text, values }`. Its text and values never appear in a document. Default `SELECT 1`. */
  readonly query?: string | QueryConfig;
  /** Deadline, ms. Default 1,000. */
  readonly timeoutMs?: number;
  /** Probe round-trip time, ms. Default `{ warn: 100, fail: 500 }`. */
  readonly queryTimeMs?: ThresholdInput;
}

/** What the server must be. `primary`: writable (not in recovery, not read-only). `standby`: in recovery. */
export type ExpectedRole = 'primary' | 'standby' | 'any';

/** Options of {@link checkDatabaseHealth}. */
export interface DatabaseHealthOptions {
  /** Deadline, ms. Default 1,000. */
  readonly timeoutMs?: number;
  /** Default `any`. */
  readonly expect?: ExpectedRole;
  /** Client connections as a percentage of `max_connections` minus reserved slots. Default `{ warn: 80, fail: 95 }`. */
  readonly connectionsPercent?: ThresholdInput;
  /** Standby replay lag, s. Default `{ warn: 30, fail: 300 }`. */
  readonly replicationLagSeconds?: ThresholdInput;
  /** Inactive replication slots on a primary (they retain WAL). Default `{ warn: 1 }`. */
  readonly inactiveSlots?: ThresholdInput;
  /** Age of the oldest `datfrozenxid`, transactions (wraparound at 2^31). Default `{ warn: 1e9, fail: 1.6e9 }`. */
  readonly xidAge?: ThresholdInput;
  /** Age of the oldest `datminmxid`, MultiXacts. Default `{ warn: 1e9, fail: 1.6e9 }`. */
  readonly multixactAge?: ThresholdInput;
  /** Longest open transaction of another session, s. Default `{ warn: 300, fail: 3600 }`. */
  readonly longTransactionSeconds?: ThresholdInput;
  /** Longest idle-in-transaction session, s. Default `{ warn: 60, fail: 600 }`. */
  readonly idleInTransactionSeconds?: ThresholdInput;
  /** Sessions waiting on a lock. Default `{ warn: 1 }`. */
  readonly blockedSessions?: ThresholdInput;
}

/** Options of {@link checkHealth}: which checks run (each `false` to skip) and one deadline for all. */
export interface CheckHealthOptions {
  /** Deadline for the whole document, ms. Default 2,000. The answer comes within it (+ a few ms). */
  readonly timeoutMs?: number;
  /** Reuse a finished result for this long, ms. Default 0: only concurrent calls share one check. */
  readonly cacheTtlMs?: number;
  /** Default on. In `checkHealth` its round trip is the database statement's (no extra `SELECT 1`). */
  readonly connection?: Omit<ConnectionHealthOptions, 'timeoutMs'> | boolean;
  /** Default on; touches no database. */
  readonly pool?: PoolHealthThresholds | boolean;
  /** Default on. */
  readonly database?: Omit<DatabaseHealthOptions, 'timeoutMs'> | boolean;
  /** Default off: the probe costs a round trip of its own. */
  readonly queryPerformance?: Omit<QueryPerformanceOptions, 'timeoutMs'> | boolean;
}

/** Options of {@link createHealthHandler}. */
export interface HealthHandlerOptions extends CheckHealthOptions {
  /**
   * The startup probe's condition (migrations applied, caches warm). It passes once this returns true
   * and stays passed. Default: none, startup passes at once.
   */
  readonly startup?: () => boolean | Promise<boolean>;
  /** pino-shaped logger; logs through `logger.child({ pkg: '@accountdb/health' })`. Default: silent. */
  readonly logger?: Logger;
}

export interface Resolved {
  connection: { timeoutMs: number; responseTimeMs: Threshold } | undefined;
  pool: Record<keyof PoolHealthThresholds, Threshold> | undefined;
  database:
    | ({ timeoutMs: number; expect: ExpectedRole } & Record<
        Exclude<keyof DatabaseHealthOptions, 'timeoutMs' | 'expect'>,
        Threshold
      >)
    | undefined;
  queryPerformance: { timeoutMs: number; query: string | QueryConfig; queryTimeMs: Threshold } | undefined;
  timeoutMs: number;
  cacheTtlMs: number;
}

const POOL_DEFAULTS = {
  utilizationPercent: [80, undefined],
  waiting: [1, undefined],
  acquireWaitP99Ms: [100, 1000],
  timeouts: [1, undefined],
  connectFailures: [1, undefined],
} as const;

const DATABASE_DEFAULTS = {
  connectionsPercent: [80, 95],
  replicationLagSeconds: [30, 300],
  inactiveSlots: [1, undefined],
  xidAge: [1_000_000_000, 1_600_000_000],
  multixactAge: [1_000_000_000, 1_600_000_000],
  longTransactionSeconds: [300, 3600],
  idleInTransactionSeconds: [60, 600],
  blockedSessions: [1, undefined],
} as const;

const MAX_TIMEOUT_MS = 600_000;
const ROLES: readonly ExpectedRole[] = ['primary', 'standby', 'any'];

/** Collects every problem of an options object, then throws one `ConfigError` listing them all. */
class Problems {
  readonly list: ConfigProblem[] = [];

  add(variable: string, message: string): void {
    this.list.push({ variable, message });
  }

  object(name: string, value: unknown): Record<string, unknown> {
    if (value === undefined) return {};
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      this.add(name, `must be an object, got ${shape(value)}`);
      return {};
    }
    return value as Record<string, unknown>;
  }

  known(name: string, value: Record<string, unknown>, keys: readonly string[]): void {
    for (const key of Object.keys(value)) if (!keys.includes(key)) this.add(`${name}.${key}`, 'is not a known option');
  }

  timeout(name: string, value: unknown, fallback: number): number {
    if (value === undefined) return fallback;
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > MAX_TIMEOUT_MS) {
      this.add(name, `must be an integer from 1 to ${MAX_TIMEOUT_MS} (ms), got ${shape(value)}`);
      return fallback;
    }
    return value;
  }

  threshold(name: string, value: unknown, [warn, fail]: readonly [number, number | undefined]): Threshold {
    const input = this.object(name, value);
    this.known(name, input, ['warn', 'fail']);
    const level = (key: 'warn' | 'fail', fallback: number | undefined) => {
      const v = input[key];
      if (v === undefined) return fallback;
      if (v === null) return undefined;
      if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
        this.add(`${name}.${key}`, `must be a finite number >= 0 or null (off), got ${shape(v)}`);
        return fallback;
      }
      return v;
    };
    const result = { warn: level('warn', warn), fail: level('fail', fail) };
    if (result.warn !== undefined && result.fail !== undefined && result.warn > result.fail)
      this.add(name, `warn (${result.warn}) must not exceed fail (${result.fail})`);
    return result;
  }

  /** `true`/`undefined` → defaults, `false` → off, object → options. */
  section(name: string, value: unknown, on: boolean): Record<string, unknown> | undefined {
    if (value === false || (value === undefined && !on)) return undefined;
    if (value === true || value === undefined) return {};
    return this.object(name, value);
  }

  throwIfAny(): void {
    if (this.list.length > 0) throw new ConfigError(this.list);
  }
}

/** Describe a rejected value by its shape only (options may carry a probe's values). */
function shape(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return `a ${typeof value}`;
}

function resolveQuery(p: Problems, name: string, value: unknown): string | QueryConfig {
  if (value === undefined) return 'SELECT 1';
  const text = typeof value === 'string' ? value : (value as QueryConfig | null)?.text;
  if (typeof text !== 'string' || text.trim() === '' || text.includes('\0')) {
    p.add(name, 'must be non-empty SQL text or { text, values } (no NUL)');
    return 'SELECT 1';
  }
  const values = typeof value === 'string' ? undefined : (value as QueryConfig).values;
  if (values !== undefined && !Array.isArray(values)) p.add(`${name}.values`, 'must be an array');
  return value as string | QueryConfig;
}

function resolveSections(p: Problems, options: Record<string, unknown>, timeoutMs: number, standalone: boolean): Resolved {
  // Inside checkHealth one deadline covers every check; a standalone check has its own timeoutMs.
  const own = standalone ? ['timeoutMs'] : [];
  const conn = p.section(`connection`, options.connection, true);
  const pool = p.section(`pool`, options.pool, true);
  const db = p.section(`database`, options.database, true);
  const qp = p.section(`queryPerformance`, options.queryPerformance, false);
  const resolved: Resolved = {
    connection: undefined,
    pool: undefined,
    database: undefined,
    queryPerformance: undefined,
    timeoutMs,
    cacheTtlMs: 0,
  };
  if (conn) {
    p.known(`connection`, conn, ['responseTimeMs', ...own]);
    resolved.connection = {
      timeoutMs: p.timeout(`connection.timeoutMs`, conn.timeoutMs, timeoutMs),
      responseTimeMs: p.threshold(`connection.responseTimeMs`, conn.responseTimeMs, [500, undefined]),
    };
  }
  if (pool) {
    p.known(`pool`, pool, Object.keys(POOL_DEFAULTS));
    resolved.pool = Object.fromEntries(
      Object.entries(POOL_DEFAULTS).map(([k, d]) => [k, p.threshold(`pool.${k}`, pool[k], d)]),
    ) as Resolved['pool'];
  }
  if (db) {
    p.known(`database`, db, ['expect', ...Object.keys(DATABASE_DEFAULTS), ...own]);
    const expect = db.expect ?? 'any';
    if (!ROLES.includes(expect as ExpectedRole)) p.add(`database.expect`, 'must be "primary", "standby" or "any"');
    resolved.database = {
      timeoutMs: p.timeout(`database.timeoutMs`, db.timeoutMs, timeoutMs),
      expect: expect as ExpectedRole,
      ...(Object.fromEntries(
        Object.entries(DATABASE_DEFAULTS).map(([k, d]) => [k, p.threshold(`database.${k}`, db[k], d)]),
      ) as Record<keyof typeof DATABASE_DEFAULTS, Threshold>),
    };
  }
  if (qp) {
    p.known(`queryPerformance`, qp, ['query', 'queryTimeMs', ...own]);
    resolved.queryPerformance = {
      timeoutMs: p.timeout(`queryPerformance.timeoutMs`, qp.timeoutMs, timeoutMs),
      query: resolveQuery(p, `queryPerformance.query`, qp.query),
      queryTimeMs: p.threshold(`queryPerformance.queryTimeMs`, qp.queryTimeMs, [100, 500]),
    };
  }
  return resolved;
}

/** Validate the options of one standalone check (`connection`, `database`, ...); throws `ConfigError` listing every problem. */
export function resolveSingle<K extends 'connection' | 'pool' | 'database' | 'queryPerformance'>(
  kind: K,
  options: unknown,
): NonNullable<Resolved[K]> {
  const p = new Problems();
  const section = p.object('options', options);
  const resolved = resolveSections(p, { connection: false, pool: false, database: false, [kind]: section }, 1000, true);
  p.throwIfAny();
  return resolved[kind] as NonNullable<Resolved[K]>;
}

/** Validate {@link CheckHealthOptions} (or {@link HealthHandlerOptions}); throws `ConfigError` listing every problem. */
export function resolveHealthOptions(
  options: unknown,
  handler = false,
): Resolved & { startup?: () => boolean | Promise<boolean> } {
  const p = new Problems();
  const o = p.object('options', options);
  const keys = ['timeoutMs', 'cacheTtlMs', 'connection', 'pool', 'database', 'queryPerformance'];
  p.known('options', o, handler ? [...keys, 'startup', 'logger'] : keys);
  const timeoutMs = p.timeout('timeoutMs', o.timeoutMs, 2000);
  let cacheTtlMs = 0;
  if (o.cacheTtlMs !== undefined) {
    if (typeof o.cacheTtlMs !== 'number' || !Number.isInteger(o.cacheTtlMs) || o.cacheTtlMs < 0 || o.cacheTtlMs > MAX_TIMEOUT_MS)
      p.add('cacheTtlMs', `must be an integer from 0 to ${MAX_TIMEOUT_MS} (ms), got ${shape(o.cacheTtlMs)}`);
    else cacheTtlMs = o.cacheTtlMs;
  }
  if (o.startup !== undefined && typeof o.startup !== 'function') p.add('startup', 'must be a function returning a boolean');
  const resolved = resolveSections(p, o, timeoutMs, false);
  p.throwIfAny();
  return { ...resolved, cacheTtlMs, ...(typeof o.startup === 'function' ? { startup: o.startup as () => boolean } : {}) };
}

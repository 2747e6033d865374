import { performance } from 'node:perf_hooks';
import type { Pool } from '@accountdb/pool';
import { RESPONSE_TIME, responseTimeCheck, unmeasured } from './connection.js';
import { databaseChecks } from './database.js';
import { queryBefore } from './deadline.js';
import { describeError, failed, type HealthCheckResult, type HealthDocument, toDocument } from './document.js';
import { type CheckHealthOptions, type Resolved, resolveHealthOptions } from './options.js';
import { assertPool, poolChecks } from './pool-health.js';
import { queryPerformanceChecks } from './query-performance.js';

interface Entry {
  promise: Promise<HealthDocument>;
  /** performance.now() when the result may no longer be reused. */
  freshUntil: number;
}

/** In-flight and cached documents per pool and options. */
const shared = new WeakMap<Pool, Map<string, Entry>>();

/**
 * Every enabled check as one `application/health+json` document, answered within `timeoutMs` whatever
 * the database does (stopped, black-holed, pool exhausted). Concurrent calls with the same options on
 * the same pool share one run; with `cacheTtlMs` a finished result is reused for that long, so any
 * number of probes costs at most one database round trip per window. Never rejects for an unhealthy
 * database; throws `ConfigError` for bad options before any SQL. The document is shared: do not mutate it.
 */
export async function checkHealth(pool: Pool, options: CheckHealthOptions = {}): Promise<HealthDocument> {
  assertPool(pool);
  return checkResolved(pool, resolveHealthOptions(options), keyOf(options));
}

/** Key of the coalescing table: the options as JSON (a probe's values stay in memory, never in output). */
export function keyOf(options: unknown): string | undefined {
  try {
    return JSON.stringify(options, (_k, v) => (typeof v === 'bigint' ? `${v}n` : typeof v === 'function' ? undefined : v));
  } catch {
    return undefined;
  }
}

export function checkResolved(pool: Pool, o: Resolved, key: string | undefined): Promise<HealthDocument> {
  if (key === undefined) return runChecks(pool, o);
  let table = shared.get(pool);
  if (!table) {
    table = new Map();
    shared.set(pool, table);
  }
  const now = performance.now();
  const hit = table.get(key);
  if (hit && now < hit.freshUntil) return hit.promise;
  const entry: Entry = { promise: runChecks(pool, o), freshUntil: Number.POSITIVE_INFINITY };
  table.set(key, entry);
  void entry.promise.then(() => {
    if (o.cacheTtlMs > 0) entry.freshUntil = performance.now() + o.cacheTtlMs;
    else if (table.get(key) === entry) table.delete(key);
  });
  return entry.promise;
}

async function runChecks(pool: Pool, o: Resolved): Promise<HealthDocument> {
  const deadline = performance.now() + o.timeoutMs;
  const time = new Date().toISOString();
  try {
    // Pool numbers first, so they describe the load and not this check's own lease.
    const checks: Record<string, HealthCheckResult[]> = o.pool ? poolChecks(pool, o.pool) : {};
    const parts: Promise<Record<string, HealthCheckResult[]>>[] = [];
    if (o.database) {
      const database = o.database;
      parts.push(
        databaseChecks(pool, database, deadline).then(({ checks: dbChecks, outcome, skipped }) => {
          if (!o.connection) return dbChecks;
          // The database statement is this document's round trip: its time is the response time.
          const rt = skipped
            ? unmeasured(time, skipped)
            : responseTimeCheck(outcome!, o.connection.responseTimeMs, o.timeoutMs, time, 'health statement');
          // A failed or skipped statement is reported once, as the response time, not again as the database check.
          return skipped || !outcome?.ok ? { [RESPONSE_TIME]: [rt] } : { [RESPONSE_TIME]: [rt], ...dbChecks };
        }),
      );
    } else if (o.connection) {
      const threshold = o.connection.responseTimeMs;
      parts.push(
        queryBefore(pool, deadline, 'SELECT 1').then((outcome) => ({
          [RESPONSE_TIME]: [responseTimeCheck(outcome, threshold, o.timeoutMs, time, 'SELECT 1')],
        })),
      );
    }
    if (o.queryPerformance) parts.push(queryPerformanceChecks(pool, o.queryPerformance, deadline));
    for (const part of await Promise.all(parts)) Object.assign(checks, part);
    return toDocument(checks);
  } catch (err) {
    // Checks report rather than throw; this is a defect, still answered as a document.
    return toDocument({ 'health:check': [failed('system', 'ms', time, describeError(err))] });
  }
}

import { performance } from 'node:perf_hooks';
import { AccountDbError, type Pool, type PoolConnection } from '@accountdb/pool';
import { describeCause, withTimeout } from '@accountdb/pool/internal';

/** One entry of a health+json `checks` list (draft-inadarei-api-health-check). */
export interface HealthCheck {
  componentType: 'datastore' | 'system';
  status: 'pass' | 'fail';
  observedValue?: number;
  observedUnit?: string;
  time: string;
  output?: string;
}

/** An `application/health+json` document. */
export interface HealthDocument {
  status: 'pass' | 'fail';
  output?: string;
  checks: Record<string, HealthCheck[]>;
}

/** Liveness: the process is up and its event loop answers. Never touches the database. */
export function livenessReport(): HealthDocument {
  return {
    status: 'pass',
    checks: {
      'process:uptime': [
        {
          componentType: 'system',
          status: 'pass',
          observedValue: Math.round(process.uptime() * 1000) / 1000,
          observedUnit: 's',
          time: new Date().toISOString(),
        },
      ],
    },
  };
}

/**
 * Readiness: a `SELECT 1` through the pool must answer within `timeoutMs`, acquire included. The
 * bound holds even when the pool is exhausted or the server is black-holed: the wait is aborted and a
 * connection stuck mid-query is destroyed rather than returned.
 */
export async function readinessReport(pool: Pool, timeoutMs: number): Promise<HealthDocument> {
  const time = new Date().toISOString();
  const started = performance.now();
  try {
    await selectOneWithin(pool, timeoutMs);
    return { status: 'pass', checks: { 'postgresql:responseTime': [responseTimeCheck('pass', started, time)] } };
  } catch (err) {
    let output = AccountDbError.is(err) ? `${err.code}: ${err.message}` : describeCause(err);
    // With nothing open, a pool timeout means connecting is what hangs, not that the pool is too small.
    if (AccountDbError.is(err) && err.code === 'POOL_TIMEOUT' && pool.stats().total === 0) {
      output += ' No connection is open: connecting to the database has not succeeded within the bound.';
    }
    return { status: 'fail', output, checks: { 'postgresql:responseTime': [responseTimeCheck('fail', started, time, output)] } };
  }
}

function responseTimeCheck(status: 'pass' | 'fail', started: number, time: string, output?: string): HealthCheck {
  return {
    componentType: 'datastore',
    status,
    observedValue: Math.round((performance.now() - started) * 100) / 100,
    observedUnit: 'ms',
    time,
    ...(output === undefined ? {} : { output }),
  };
}

const ACQUIRE_MARGIN_MS = 10;

async function selectOneWithin(pool: Pool, timeoutMs: number): Promise<void> {
  const controller = new AbortController();
  let lease: PoolConnection | undefined;
  let timedOut = false;
  const work = (async () => {
    // The pool's own acquire timeout fires just before the deadline, so an exhausted pool is reported
    // as POOL_TIMEOUT with its numbers; the deadline catches a connection hanging in validation or the query.
    const acquireTimeoutMs = Math.max(1, timeoutMs - ACQUIRE_MARGIN_MS);
    const acquired = await pool.acquire({ timeoutMs: acquireTimeoutMs, signal: controller.signal });
    if (timedOut) {
      acquired.release();
      return;
    }
    lease = acquired;
    try {
      await acquired.query('SELECT 1');
    } catch (err) {
      if (!timedOut) {
        lease = undefined;
        acquired.release(err);
      }
      throw err;
    }
    if (!timedOut) {
      lease = undefined;
      acquired.release();
    }
  })();
  // After a timeout the work may still fail later; that outcome is already reported.
  await withTimeout(work, timeoutMs, () => {
    timedOut = true;
    controller.abort();
    const waitingFor = lease ? 'answer to SELECT 1' : 'usable pooled connection (connecting or validating hangs)';
    // A connection that does not answer within the bound is not trusted again.
    lease?.destroy();
    throw new AccountDbError('READINESS_TIMEOUT', `no ${waitingFor} within ${timeoutMs} ms`);
  });
}

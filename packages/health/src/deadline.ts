import { performance } from 'node:perf_hooks';
import type { PgClient, Pool, PoolConnection, QueryConfig } from '@accountdb/pool';
import { withTimeout } from '@accountdb/pool/internal';
import { describeError } from './document.js';

/** What a check can run on: a pool (a connection is leased within the deadline), a lease, or a driver client. */
export type HealthTarget = Pool | PoolConnection | PgClient;

export function isPool(db: HealthTarget): db is Pool {
  return typeof (db as Pool).acquire === 'function' && typeof (db as Pool).stats === 'function';
}

export function isHealthTarget(db: unknown): db is HealthTarget {
  return typeof db === 'object' && db !== null && typeof (db as { query?: unknown }).query === 'function';
}

/** The outcome of one bounded statement. Never a rejection: health checks report, they do not throw. */
export type Bounded<R> =
  | { ok: true; rows: R[]; ms: number }
  | { ok: false; phase: 'acquire' | 'query'; error: unknown; ms: number; timedOut: boolean };

class DeadlineExceeded extends Error {}

/**
 * Run one statement on `db`, answering by `deadline` (a `performance.now()` instant) whatever the
 * server does. On a pool, the acquire waits at most until the deadline (the pool's own timeout fires
 * a little before it, so exhaustion is reported with its numbers); a lease that arrives late is
 * released at once. A pooled connection that does not answer in time is destroyed, never reused; a
 * lease or client the caller passed is left to the caller (its statement may still be running).
 * `ms` is the statement's round trip only, acquire excluded.
 */
export async function queryBefore<R>(db: HealthTarget, deadline: number, query: string | QueryConfig): Promise<Bounded<R>> {
  let lease: PoolConnection | undefined;
  let phase: 'acquire' | 'query' = 'acquire';
  let started = performance.now();
  const controller = new AbortController();
  const remaining = () => Math.max(0, deadline - performance.now());
  const expire = (): never => {
    controller.abort();
    throw new DeadlineExceeded();
  };
  try {
    if (isPool(db)) {
      const acquiring = db.acquire({
        timeoutMs: Math.max(1, Math.floor(remaining()) - ACQUIRE_MARGIN_MS),
        signal: controller.signal,
      });
      // A lease granted after the deadline (a validation that hung, then answered) goes straight back.
      acquiring.then(
        (late) => {
          if (controller.signal.aborted) late.release();
        },
        () => {},
      );
      lease = await withTimeout(acquiring, remaining(), expire);
      phase = 'query';
      started = performance.now();
    } else {
      phase = 'query';
    }
    const running = (lease ?? (db as PoolConnection)).query(query as QueryConfig) as unknown as Promise<{ rows: R[] }>;
    const { rows } = await withTimeout(running, remaining(), expire);
    lease?.release();
    return { ok: true, rows, ms: performance.now() - started };
  } catch (error) {
    const timedOut = error instanceof DeadlineExceeded;
    // A connection that did not answer in time is not trusted again; an ordinary SQL error leaves it healthy.
    if (lease) {
      if (timedOut) lease.destroy();
      else lease.release(error);
    }
    return { ok: false, phase, error: timedOut ? undefined : error, ms: performance.now() - started, timedOut };
  }
}

/** The pool's acquire timeout fires this much before the check's deadline. */
const ACQUIRE_MARGIN_MS = 10;

/** Why a bounded statement failed, in one secret-free line. */
export function describeFailure(outcome: Extract<Bounded<unknown>, { ok: false }>, timeoutMs: number, what: string): string {
  if (!outcome.timedOut) return describeError(outcome.error);
  return outcome.phase === 'acquire'
    ? `no usable pooled connection within ${timeoutMs} ms (connecting or validating does not answer)`
    : `no answer to the ${what} within ${timeoutMs} ms; the connection was abandoned`;
}

/**
 * When `db` is a pool with no idle connection and no room to open one, a readiness check would only
 * queue behind requests: say so, with the numbers, instead of waiting.
 */
export function saturation(db: HealthTarget): string | undefined {
  if (!isPool(db)) return undefined;
  const s = db.stats();
  if (s.idle > 0 || s.total + s.pending < s.max) return undefined;
  return `not measured: pool saturated (${s.active}/${s.max} connections in use, ${s.waiting} waiting); a health check does not queue behind requests`;
}

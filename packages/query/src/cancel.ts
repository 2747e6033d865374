import type { PoolConnection } from '@accountdb/pool';
import { type CancelContext, QueryCanceledError, StatementTimeoutError, toDatabaseError } from '@accountdb/pool';
import { canceledBeforeStart, destroyLease } from './connection.js';
import { QueryArgumentError } from './errors.js';

/** How long a canceled statement may take to stop before its connection is destroyed instead. */
export const CANCEL_GRACE_MS = 5_000;

/** Per-statement cancellation: `timeoutMs` and/or `signal`. */
export interface CancelOptions {
  /** Cancel the statement on the server after this many ms (timer starts once a connection is leased). */
  timeoutMs?: number | undefined;
  /** Cancel the statement on the server when this aborts. */
  signal?: AbortSignal | undefined;
}

export function validateCancelOptions(options: CancelOptions): void {
  const { timeoutMs, signal } = options;
  if (timeoutMs !== undefined && (typeof timeoutMs !== 'number' || !Number.isInteger(timeoutMs) || timeoutMs < 1)) {
    throw new QueryArgumentError(`timeoutMs must be an integer >= 1, got ${String(timeoutMs)}`);
  }
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw new QueryArgumentError('signal must be an AbortSignal');
}

/**
 * Ask the server to cancel whatever `lease`'s backend is running: the pool's protocol-level
 * CancelRequest, which needs no free connection slot and no login, and reaches the right backend
 * through PgBouncer. Bounded by the pool's `connectionTimeoutMs`.
 */
export function cancelBackend(lease: PoolConnection): Promise<void> {
  return lease.cancel();
}

type Outcome<T> = { value: T } | { error: unknown } | 'stuck';

/**
 * Run one statement on `lease` so that a timeout or an aborted signal cancels it on the server.
 * Afterwards the connection is idle and reusable, or, if the statement did not stop within
 * {@link CANCEL_GRACE_MS}, destroyed. Errors come out through `toDatabaseError` (`@accountdb/pool`).
 */
export async function runCancellable<T>(lease: PoolConnection, options: CancelOptions, run: () => Promise<T>): Promise<T> {
  const { signal, timeoutMs } = options;
  if (signal?.aborted) throw canceledBeforeStart(signal.reason);
  let canceled: CancelContext | undefined;
  let cancelling: Promise<void> | undefined;
  let graceTimer: NodeJS.Timeout | undefined;
  let markStuck: () => void = () => {};
  const stuck = new Promise<'stuck'>((resolve) => {
    markStuck = () => resolve('stuck');
  });
  const cancel = (reason: CancelContext['reason']) => {
    if (canceled) return;
    canceled = { reason, timeoutMs };
    // A failed cancel is not reported separately: the grace timer then destroys the connection.
    cancelling = cancelBackend(lease).catch(() => {});
    graceTimer = setTimeout(markStuck, CANCEL_GRACE_MS);
  };
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => cancel('timeout'), timeoutMs);
  const onAbort = () => cancel('signal');
  signal?.addEventListener('abort', onAbort, { once: true });
  const pending = run();
  let outcome: Outcome<T>;
  try {
    outcome = await Promise.race([
      pending.then(
        (value) => ({ value }),
        (error: unknown) => ({ error }),
      ),
      stuck,
    ]);
  } finally {
    clearTimeout(timer);
    clearTimeout(graceTimer);
    signal?.removeEventListener('abort', onAbort);
  }
  if (outcome === 'stuck') {
    pending.catch(() => {});
    destroyLease(lease);
    const message = `${canceled?.reason === 'timeout' ? `Statement exceeded timeoutMs ${timeoutMs} ms` : 'Statement canceled by AbortSignal'} and did not stop within ${CANCEL_GRACE_MS} ms; its connection was destroyed`;
    const ErrorClass = canceled?.reason === 'timeout' ? StatementTimeoutError : QueryCanceledError;
    throw new ErrorClass(message);
  }
  // Wait for the cancel to land so it cannot hit the next statement on this connection.
  if (cancelling) await cancelling;
  if ('error' in outcome) throw toDatabaseError(outcome.error, { canceled });
  return outcome.value;
}

import {
  ActiveTransactionError,
  type Logger,
  type PoolConnection,
  type Queryable,
  QueryCanceledError,
  toDatabaseError,
} from '@accountdb/pool';
import { packageLogger } from '@accountdb/pool/internal';
import { MaintenanceInputError } from './errors.js';
import { DEFAULT_PROGRESS_INTERVAL_MS, type ProgressSample, watchProgress } from './progress.js';

/**
 * Where maintenance runs: a `Pool` (a connection is leased for the call, outside any transaction), a
 * lease (used as is), or any other `Queryable` such as an RLS scope's `tx` (ANALYZE, TRUNCATE and
 * plain REINDEX work there; VACUUM and REINDEX CONCURRENTLY fail with `ActiveTransactionError`).
 */
export type MaintenanceTarget = Queryable;

/** Bounds, cancellation and progress for one maintenance call. */
export interface RunOptions {
  /**
   * `lock_timeout` while the statement waits for its lock, ms. Default 5,000: maintenance must not
   * queue behind a long lock and hold up the application's queries queued behind it. 0 = wait forever.
   */
  readonly lockTimeoutMs?: number;
  /**
   * `statement_timeout` for the statement, ms; 0 = none. Default: the session's. A long VACUUM sends
   * nothing on the wire while it works, so a pool with `queryTimeoutMs` set closes its connection
   * after that long: run maintenance on its own pool with `queryTimeoutMs: 0`, bounded by this instead.
   */
  readonly statementTimeoutMs?: number;
  /** Cancels the running statement on the server (the protocol's CancelRequest: no login, no connection slot). */
  readonly signal?: AbortSignal;
  /** Progress from the `pg_stat_progress_*` views, read on a second pooled connection (pool targets only). */
  readonly onProgress?: (sample: ProgressSample & { readonly relation: string }) => void;
  /** Time between two progress reads, ms. Default 1,000. */
  readonly progressIntervalMs?: number;
  /** pino-shaped logger; logs through `child({ pkg: '@accountdb/maintenance' })`. Default: silent. */
  readonly logger?: Logger;
}

/** What one maintenance statement did. */
export interface StatementResult {
  /** `done`, or `skipped` when SKIP_LOCKED found the relation locked. */
  readonly status: 'done' | 'skipped';
  /** The relation as the catalog names it (quoted, schema-qualified). */
  readonly relation: string;
  /** The exact statement that ran. */
  readonly sql: string;
  readonly durationMs: number;
}

const DEFAULT_LOCK_TIMEOUT_MS = 5_000;
const MAX_TIMEOUT_MS = 2_147_483_647;

export interface PoolLike extends Queryable {
  acquire(): Promise<PoolConnection>;
  readonly config?: { readonly queryTimeoutMs?: number; readonly maxConnections?: number };
}

export function isPoolLike(db: Queryable): db is PoolLike {
  return typeof (db as Partial<PoolLike>).acquire === 'function';
}

function isLease(db: Queryable): db is PoolConnection {
  return typeof (db as Partial<PoolConnection>).release === 'function' && (db as Partial<PoolConnection>).client !== undefined;
}

/** Validate {@link RunOptions}; throws {@link MaintenanceInputError}. */
export function checkRunOptions(options: RunOptions): void {
  if (typeof options !== 'object' || options === null) throw new MaintenanceInputError('options', 'must be an object');
  for (const key of ['lockTimeoutMs', 'statementTimeoutMs'] as const) {
    const v = options[key];
    if (v !== undefined && (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_TIMEOUT_MS))
      throw new MaintenanceInputError(key, `must be an integer from 0 to ${MAX_TIMEOUT_MS}`);
  }
  const interval = options.progressIntervalMs;
  if (interval !== undefined && (typeof interval !== 'number' || !Number.isInteger(interval) || interval < 10))
    throw new MaintenanceInputError('progressIntervalMs', 'must be an integer >= 10');
  if (options.signal !== undefined && !(options.signal instanceof AbortSignal))
    throw new MaintenanceInputError('signal', 'must be an AbortSignal');
  if (options.onProgress !== undefined && typeof options.onProgress !== 'function')
    throw new MaintenanceInputError('onProgress', 'must be a function');
}

/**
 * Rethrow through pool's one mapper. Pools and leases have mapped already (their errors pass through
 * as they are); another `Queryable` may hand back the driver's.
 */
export function typed(err: unknown): never {
  throw toDatabaseError(err);
}

const canceledBeforeSend = (signal: AbortSignal, what: string) =>
  new QueryCanceledError(`Canceled by AbortSignal before ${what} was sent`, undefined, { cause: signal.reason });

/** One connection for a whole call: leased from a pool (and given back), or the caller's. */
export interface Session {
  readonly db: Queryable;
  readonly lease: PoolConnection | undefined;
  /** The pool, when there is one: progress is read on a second connection from it. */
  readonly pool: Queryable | undefined;
  /** The lease was taken for this call (so it may be destroyed if its settings cannot be restored). */
  readonly owned: boolean;
  readonly log: Logger;
}

/** Run `fn` on one connection from `target`; a leased connection goes back (or is destroyed if dirty). */
export async function withSession<T>(target: MaintenanceTarget, options: RunOptions, fn: (s: Session) => Promise<T>): Promise<T> {
  const log = packageLogger(options.logger, '@accountdb/maintenance');
  if (options.signal?.aborted) throw canceledBeforeSend(options.signal, 'anything');
  if (!isPoolLike(target))
    return fn({ db: target, lease: isLease(target) ? target : undefined, pool: undefined, owned: false, log }).catch(typed);
  const qt = target.config?.queryTimeoutMs ?? 0;
  if (qt > 0 && !(options.statementTimeoutMs !== undefined && options.statementTimeoutMs > 0 && options.statementTimeoutMs < qt))
    log.warn(
      { queryTimeoutMs: qt },
      'maintenance on a pool with queryTimeoutMs: a long VACUUM is silent on the wire and its connection will be closed; use a pool with queryTimeoutMs 0 and statementTimeoutMs per call',
    );
  const lease = await target.acquire();
  try {
    return await fn({ db: lease, lease, pool: target, owned: true, log }).catch(typed);
  } finally {
    lease.release();
  }
}

type Timeouts = { lock: string; statement: string | null };

/** Set lock_timeout/statement_timeout (null: keep); returns the previous values, to restore. */
async function setTimeouts(s: Session, { lock, statement }: Timeouts, local: boolean): Promise<Timeouts> {
  const { rows } = await s.db.query<Timeouts>(
    `select pg_catalog.current_setting('lock_timeout') as lock, pg_catalog.current_setting('statement_timeout') as statement,
            pg_catalog.set_config('lock_timeout', $1, $3), pg_catalog.set_config('statement_timeout', coalesce($2, pg_catalog.current_setting('statement_timeout')), $3)`,
    [lock, statement, local],
  );
  return rows[0] as Timeouts;
}

/**
 * Run one maintenance statement (built from catalog names and fixed keywords only) with the call's
 * timeouts, cancellation, progress and notices. SKIP_LOCKED's "lock not available" warning becomes
 * a `skipped` result. Errors come out as pool's (a 57014 our signal caused as `QueryCanceledError`).
 */
export async function runStatement(
  s: Session,
  relation: string,
  sql: string,
  options: RunOptions,
  outsideTransaction: boolean,
): Promise<StatementResult> {
  const { signal, onProgress } = options;
  // Any Queryable that is not a lease (an RLS scope's tx) counts as inside a transaction: settings are SET LOCAL.
  const local = s.lease === undefined || s.lease.client.getTransactionStatus() !== 'I';
  if (outsideTransaction && s.lease && local)
    throw new ActiveTransactionError(`${sql.split(' ')[0]} cannot run inside a transaction block; pass a pool or an idle lease`);
  const lock = String(options.lockTimeoutMs ?? DEFAULT_LOCK_TIMEOUT_MS);
  const saved = await setTimeouts(s, { lock, statement: options.statementTimeoutMs?.toString() ?? null }, local);
  let skipped = false;
  const onNotice = (notice: { code?: string | undefined; severity?: string | undefined; message?: string | undefined }) => {
    if (notice.code === '55P03') skipped = true;
    s.log.debug({ relation, severity: notice.severity, sqlstate: notice.code, notice: notice.message }, 'server notice');
  };
  const client = s.lease?.client;
  client?.on('notice', onNotice);
  let canceled = false;
  let cancelling: Promise<void> | undefined;
  const onAbort = () => {
    const lease = s.lease;
    if (canceled || !lease) return;
    canceled = true;
    cancelling = lease
      .cancel()
      .catch((err: unknown) => s.log.warn({ err, relation }, 'canceling a maintenance statement failed'));
  };
  signal?.addEventListener('abort', onAbort, { once: true });
  const watcher =
    onProgress && s.pool && s.lease
      ? watchProgress(
          s.pool,
          s.lease.processId,
          options.progressIntervalMs ?? DEFAULT_PROGRESS_INTERVAL_MS,
          (sample) => onProgress({ ...sample, relation }),
          s.log,
        )
      : undefined;
  const started = performance.now();
  s.log.info({ relation, sql }, 'maintenance statement started');
  try {
    // Checked after the listener is in place: an abort during the settings round trip is not lost.
    if (signal?.aborted) throw canceledBeforeSend(signal, 'the statement');
    await s.db.query(sql);
  } catch (err) {
    throw toDatabaseError(err, canceled ? { canceled: { reason: 'signal' } } : {});
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // Let a cancel land before the connection runs anything else.
    if (cancelling) await cancelling;
    await watcher?.stop();
    client?.removeListener('notice', onNotice);
    if (!local) {
      try {
        await setTimeouts(s, saved, false);
      } catch (err) {
        // A lease whose settings cannot be restored must not go back to the pool with them.
        s.log.warn({ err, relation }, 'restoring lock_timeout/statement_timeout failed');
        if (s.owned) s.lease?.destroy();
      }
    }
  }
  const durationMs = performance.now() - started;
  s.log.info({ relation, durationMs, skipped }, 'maintenance statement finished');
  return { status: skipped ? 'skipped' : 'done', relation, sql, durationMs };
}

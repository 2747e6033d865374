import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { toBatchStatement } from './batch.js';
import { sendCancelRequest } from './cancel.js';
import { describeTarget, type PoolConfig, type PoolConfigInput, resolvePoolConfig } from './config.js';
import { Connector, type OpenedClient } from './connector.js';
import { ConnectionLostError } from './database-errors.js';
import { cancelKeyOf, endClient, isEncrypted, isReadyForQuery, type PgClient } from './driver.js';
import {
  AcquireAbortedError,
  DatabaseUnavailableError,
  describeCause,
  HookError,
  InvalidQueryError,
  PoolClosedError,
  PoolTimeoutError,
} from './errors.js';
import {
  type Connection,
  hasOpenSubmittable,
  isSubmittable,
  Lease,
  type LeaseOwner,
  type PoolConnection,
  type Queryable,
  type QueryConfig,
  type QueryResult,
  runTraced,
} from './lease.js';
import { type Logger, packageLogger } from './logger.js';
import { Pipeline } from './pipeline.js';
import { backoffDelay, isConnectRefusal, isTransientConnectionError } from './retry.js';
import { StatementCache } from './statement-cache.js';
import { type DestroyReason, type PoolStats, StatsRecorder } from './stats.js';
import { sleep, withTimeout } from './timers.js';
import { tlsOptions } from './tls.js';
import { type OpenTelemetryTracer, PoolTracer } from './tracing.js';

/**
 * Async lifecycle hooks. A hook that throws destroys the connection it was given and surfaces a
 * {@link HookError}: from `acquire()` for `onConnect`/`beforeAcquire`, as a `hookError` event and a
 * log line for `afterRelease` (release itself never throws).
 */
export interface PoolHooks {
  /** Once per new connection, before first use (e.g. `SET` session defaults, register types). */
  onConnect?: (client: PgClient) => void | Promise<void>;
  /** Before each hand-out; return `false` to destroy this connection and try another. */
  beforeAcquire?: (client: PgClient) => boolean | undefined | Promise<boolean | undefined>;
  /** After each release of a healthy, idle connection; return `false` to destroy it. */
  afterRelease?: (client: PgClient) => boolean | undefined | Promise<boolean | undefined>;
}

export interface CreatePoolOptions {
  /** pino-shaped logger; the pool logs through `logger.child({ pkg: '@accountdb/pool' })`. Default: silent. */
  logger?: Logger;
  /** Lifecycle hooks (`onConnect`, `beforeAcquire`, `afterRelease`); see {@link PoolHooks}. Default: none. */
  hooks?: PoolHooks;
  /**
   * An OpenTelemetry tracer (`trace.getTracer('my-service')` from `@opentelemetry/api`, an optional peer):
   * a `pool.acquire` span per acquire and a CLIENT span per statement, following the semantic
   * conventions for database client spans (README: "Tracing with OpenTelemetry"). Default: none, and then
   * no tracing code runs.
   */
  tracer?: OpenTelemetryTracer;
}

export interface AcquireOptions {
  /** Overrides `acquireTimeoutMs` for this call. */
  timeoutMs?: number;
  /** Abort the wait (rejects with `AcquireAbortedError`). */
  signal?: AbortSignal;
}

export interface RetryOptions {
  /** Default: the pool's `maxRetries`. */
  maxRetries?: number;
  /** Backoff base, ms. Default: the pool's `retryIntervalMs`. */
  retryIntervalMs?: number;
  /** Cap on one sleep, ms. Default: the pool's `maxRetryIntervalMs`. */
  maxRetryIntervalMs?: number;
  signal?: AbortSignal;
}

export interface CloseOptions {
  /** How long to wait for leased connections to come back before force-closing them, ms. Default 30,000. */
  timeoutMs?: number;
  /** Close leased connections now instead of waiting. */
  force?: boolean;
}

interface Waiter {
  resolve(conn: Connection): void;
  reject(err: unknown): void;
  readonly started: number;
  /** performance.now() after which the wait fails with PoolTimeoutError. */
  readonly deadline: number;
  cleanup(): void;
}

export interface PoolEvents {
  connect: [{ id: number; host: string; port: number }];
  acquire: [{ id: number; waitMs: number }];
  release: [{ id: number; heldMs: number }];
  destroy: [{ id: number; reason: DestroyReason }];
  hookError: [HookError];
}

/**
 * A PostgreSQL connection pool at the standard of HikariCP and pgx: acquire timeout separate from
 * connect timeout, background connection creation with backoff, validation after idle, max lifetime
 * with jitter, idle timeout, min-idle warm-up, leak detection, and dirty connections destroyed on release.
 */
export class Pool extends EventEmitter<PoolEvents> implements Queryable {
  readonly config: PoolConfig;
  readonly #log: Logger;
  readonly #hooks: PoolHooks;
  readonly #all = new Set<Connection>();
  readonly #idle: Connection[] = [];
  readonly #waiters: Waiter[] = [];
  readonly #stats = new StatsRecorder();
  /** Undefined without `options.tracer`: every traced path is one check of this away from the untraced one. */
  readonly #tracer: PoolTracer | undefined;
  readonly #connector: Connector;
  #pending = 0;
  #nextId = 1;
  #closed = false;
  #closing: Promise<void> | undefined;
  #warming = false;
  #housekeeper: NodeJS.Timeout | undefined;
  #drained: (() => void) | undefined;
  #waitTimer: NodeJS.Timeout | undefined;
  #waitTimerAt = Number.POSITIVE_INFINITY;
  /** The last connect failure since the last successful connect: the `cause` of a PoolTimeoutError. */
  #lastConnectFailure: { error: unknown } | undefined;
  /** The connect failure last logged (its description), so each distinct cause is logged once. */
  #loggedFailure: string | undefined;
  #failedConnects = 0;
  /** Aborted by close(): ends the warm-up's backoff sleep so a closed pool holds no timer. */
  readonly #closeSignal = new AbortController();
  /** With `pipelining`: where `query()` sends plain statements (see pipeline.ts); undefined otherwise. */
  readonly #pipeline: Pipeline | undefined;

  constructor(config: PoolConfig | PoolConfigInput, options: CreatePoolOptions = {}) {
    super();
    // A config resolvePoolConfig already returned comes back as is; anything else is validated here.
    this.config = resolvePoolConfig(config);
    this.#log = packageLogger(options.logger, '@accountdb/pool');
    this.#hooks = options.hooks ?? {};
    this.#tracer = options.tracer ? new PoolTracer(options.tracer, this.config.database) : undefined;
    this.#owner.tracer = this.#tracer;
    this.#connector = new Connector(this.config, () => this.#stats.connectFailures++);
    this.#pipeline = this.config.pipelining ? this.#newPipeline() : undefined;
    const c = this.config;
    const period = Math.max(50, Math.min(1000, (c.idleTimeoutMs || 2000) / 2, (c.maxLifetimeMs || 2000) / 2));
    this.#housekeeper = setInterval(() => this.#housekeep(), period);
    this.#housekeeper.unref();
    this.#log.debug(
      { target: describeTarget(c), database: c.database, user: c.user, min: c.minConnections, max: c.maxConnections },
      'pool created',
    );
    this.#warmUp();
  }

  /**
   * Gauges, counters, and acquire-wait/hold-time latencies: cumulative histograms (`acquireWaitSeconds`,
   * `holdSeconds`, O(1) to read) and recent percentiles (`acquireWaitMs`, `holdMs`, computed when read).
   */
  stats(): PoolStats {
    const active = this.#all.size - this.#idle.length;
    return this.#stats.snapshot({
      total: this.#all.size,
      idle: this.#idle.length,
      active,
      waiting: this.#waiters.length,
      pending: this.#pending,
      max: this.config.maxConnections,
      min: this.config.minConnections,
    });
  }

  /** Connections open or being opened, leased or idle (pg.Pool's `totalCount`, which counts connecting clients too). */
  get totalCount(): number {
    return this.#all.size + this.#pending;
  }

  /** Connections idle in the pool (pg.Pool's `idleCount`). */
  get idleCount(): number {
    return this.#idle.length;
  }

  /** Acquires waiting for a connection (pg.Pool's `waitingCount`). */
  get waitingCount(): number {
    return this.#waiters.length;
  }

  /** True once `close()` has been called. */
  get closed(): boolean {
    return this.#closed;
  }

  // ---- acquire / release -------------------------------------------------------------------

  /**
   * Lease a connection (seed `get_connection`). Throws `DatabaseUnavailableError` as soon as the connect
   * this acquire was counting on fails (within `connectionTimeoutMs`), `PoolTimeoutError` when no
   * connection became available within the acquire timeout, `PoolClosedError`.
   */
  async acquire(options: AcquireOptions = {}): Promise<PoolConnection> {
    return new Lease(await this.#acquireTraced(options), this.#owner);
  }

  /** Run `fn` with a leased connection and always release it (seed `get_db_connection`). Errors propagate. */
  async withConnection<T>(fn: (conn: PoolConnection) => Promise<T> | T, options: AcquireOptions = {}): Promise<T> {
    // Not through acquire(): that costs one more async frame per call.
    const lease = new Lease(await this.#acquireTraced(options), this.#owner);
    try {
      const result = await fn(lease);
      lease.release();
      return result;
    } catch (err) {
      lease.release(err);
      throw err;
    }
  }

  /**
   * `withConnection`, retried on transient connection failures (refused, reset, timeout, SQLSTATE 08xxx,
   * 57P01-57P03, 53300) with exponential backoff and full jitter (seed `get_db_connection_with_retries`).
   * Never retries authentication failures, pool exhaustion, or SQL errors. `fn` may run more than once
   * when the connection dies mid-way, so it should be idempotent.
   */
  async withConnectionRetry<T>(fn: (conn: PoolConnection) => Promise<T> | T, options: RetryOptions = {}): Promise<T> {
    const max = options.maxRetries ?? this.config.maxRetries;
    const base = options.retryIntervalMs ?? this.config.retryIntervalMs;
    const cap = options.maxRetryIntervalMs ?? this.config.maxRetryIntervalMs;
    for (let attempt = 0; ; attempt++) {
      try {
        return await this.withConnection(fn, options.signal ? { signal: options.signal } : {});
      } catch (err) {
        if (attempt >= max || this.#closed || !isTransientConnectionError(err)) throw err;
        const delayMs = backoffDelay(attempt, base, cap);
        this.#stats.retries++;
        this.#log.warn(
          { attempt: attempt + 1, maxRetries: max, delayMs, error: describeCause(err) },
          'transient connection failure; retrying',
        );
        await sleep(delayMs, options.signal);
      }
    }
  }

  /**
   * Run one statement on a pooled connection. Failures are typed (`toDatabaseError`): a `SqlError`
   * subclass, or `ConnectionLostError` when the session ended under it. A Submittable (a cursor or
   * stream) needs a connection held across reads: it is refused here; pass it to a lease's `query`.
   */
  async query<R extends pg.QueryResultRow = pg.QueryResultRow>(
    text: string | QueryConfig,
    values?: unknown[],
  ): Promise<QueryResult<R>> {
    if (isSubmittable(text))
      throw new InvalidQueryError('pool.query cannot hold a connection for a cursor or stream; acquire one and use lease.query');
    if (this.#pipeline !== undefined && toBatchStatement(text, values, 'caller') !== undefined)
      return this.#pipeline.query<R>(text, values);
    const conn = await this.#acquireTraced({});
    let result: QueryResult<R>;
    try {
      result = await runTraced<R>(this.#tracer, conn, text, values);
    } catch (err) {
      this.#release(conn, err);
      throw err;
    }
    this.#release(conn);
    return result;
  }

  /** The pipeline's view of this pool: lanes are leases taken through the ordinary acquire. */
  #newPipeline(): Pipeline {
    return new Pipeline({
      depth: this.config.pipelineDepth,
      maxLanes: this.config.maxConnections,
      acquireTimeoutMs: this.config.acquireTimeoutMs,
      acquire: async () => {
        const conn = await this.#acquire({}, true);
        // A lane is held for as long as the pipeline has work: not a leak.
        if (conn.leakTimer) {
          clearTimeout(conn.leakTimer);
          conn.leakTimer = undefined;
        }
        return conn;
      },
      release: (conn, error) => this.#release(conn, error),
      waiting: () => this.#waiters.length,
      available: () => this.#idle.length > 0 || this.#all.size + this.#pending < this.config.maxConnections,
      closed: () => this.#closed,
      run: <R extends pg.QueryResultRow>(conn: Connection, text: string | QueryConfig, values: unknown[] | undefined) =>
        runTraced<R>(this.#tracer, conn, text, values),
      timeoutError: (waitedMs, waiting) => this.#timeoutError(waitedMs, waiting),
    });
  }

  /** {@link #acquire}, inside an acquire span when the pool has a tracer (not async: no extra frame). */
  #acquireTraced(options: AcquireOptions): Promise<Connection> {
    const tracer = this.#tracer;
    return tracer === undefined ? this.#acquire(options) : tracer.traceAcquire(() => this.#acquire(options));
  }

  /** A timed-out acquire (a waiter's, or a caller queued in the pipeline): counted, with the last connect failure as cause. */
  #timeoutError(waitedMs: number, waiting: number): PoolTimeoutError {
    this.#stats.acquireTimeouts++;
    const lastFailure = this.#lastConnectFailure;
    return new PoolTimeoutError(
      {
        waitedMs,
        waiting,
        max: this.config.maxConnections,
        active: this.#all.size - this.#idle.length,
        connecting: this.#pending,
      },
      lastFailure ? { cause: lastFailure.error } : {},
    );
  }

  async #acquire(options: AcquireOptions, lane = false): Promise<Connection> {
    if (this.#closed) throw new PoolClosedError();
    const started = performance.now();
    const timeoutMs = options.timeoutMs ?? this.config.acquireTimeoutMs;
    // Bounded by the deadline: each pass either hands out a connection, or destroyed one that failed
    // its check (or its beforeAcquire hook), and the next wait only has the time that is left.
    for (;;) {
      const conn = this.#idle.pop() ?? (await this.#wait(started, started + timeoutMs - performance.now(), options.signal, lane));
      if (this.#needsCheck(conn) && !(await this.#checkout(conn))) continue;
      const now = performance.now();
      conn.acquiredAt = now;
      this.#stats.recordAcquire(now - started);
      if (this.config.leakDetectionThresholdMs > 0) this.#watchForLeak(conn);
      if (this.listenerCount('acquire') > 0) this.emit('acquire', { id: conn.id, waitMs: now - started });
      return conn;
    }
  }

  #wait(started: number, remainingMs: number, signal: AbortSignal | undefined, lane = false): Promise<Connection> {
    if (signal?.aborted) return Promise.reject(new AcquireAbortedError(signal.reason));
    return new Promise<Connection>((resolve, reject) => {
      const onAbort = signal
        ? () => {
            const i = this.#waiters.indexOf(waiter);
            if (i !== -1) this.#waiters.splice(i, 1);
            waiter.reject(new AcquireAbortedError(signal.reason));
          }
        : undefined;
      const waiter: Waiter = {
        resolve: (conn) => {
          waiter.cleanup();
          resolve(conn);
        },
        reject: (err) => {
          waiter.cleanup();
          reject(err);
        },
        started,
        deadline: performance.now() + Math.max(0, remainingMs),
        cleanup: () => {
          if (onAbort) signal?.removeEventListener('abort', onAbort);
        },
      };
      if (onAbort) signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.push(waiter);
      // An exclusive acquire waits: the pipeline gives a connection back for it.
      if (!lane) this.#pipeline?.yieldLane();
      this.#armWaitTimer(waiter.deadline);
      this.#growForDemand();
    });
  }

  // One timer for all waiters, armed for the earliest deadline: a Timeout per wait (created, then
  // cleared when a connection comes back) cost more CPU than the rest of an acquire under contention.
  #armWaitTimer(deadline: number): void {
    if (this.#waitTimer !== undefined && this.#waitTimerAt <= deadline) return;
    clearTimeout(this.#waitTimer);
    this.#waitTimerAt = deadline;
    this.#waitTimer = setTimeout(() => this.#expireWaiters(), Math.max(0, deadline - performance.now()));
    // Unref'd: it may outlive the waits it was armed for; a waiting acquire always has a socket keeping us alive.
    this.#waitTimer.unref();
  }

  #expireWaiters(): void {
    this.#waitTimer = undefined;
    this.#waitTimerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    let next = Number.POSITIVE_INFINITY;
    for (const waiter of [...this.#waiters]) {
      if (waiter.deadline > now) {
        next = Math.min(next, waiter.deadline);
        continue;
      }
      this.#waiters.splice(this.#waiters.indexOf(waiter), 1);
      waiter.reject(this.#timeoutError(Math.round(now - waiter.started), this.#waiters.length));
    }
    if (next !== Number.POSITIVE_INFINITY) this.#armWaitTimer(next);
  }

  #needsCheck(conn: Connection): boolean {
    return conn.broken || this.#hooks.beforeAcquire !== undefined || this.#dueForValidation(conn);
  }

  /** Idle past `validateAfterIdleMs`, or its host's role or lag is due a re-check (see the connector). */
  #dueForValidation(conn: Connection): boolean {
    return performance.now() - conn.lastUsedAt > this.config.validateAfterIdleMs || this.#connector.needsCheck(conn.client);
  }

  /** Validate and run `beforeAcquire`. Returns false after destroying a connection that fails. */
  async #checkout(conn: Connection): Promise<boolean> {
    if (conn.broken) {
      this.#destroy(conn, 'broken');
      return false;
    }
    if (this.#dueForValidation(conn)) {
      // The connector's check: a round trip, plus role and lag when targetSessionAttrs or a lag limit asks.
      let reason: DestroyReason | undefined;
      try {
        reason = await this.#connector.validate(conn.client);
      } catch (err) {
        this.#log.info({ id: conn.id, error: describeCause(err) }, 'idle connection failed validation; destroyed');
        this.#destroy(conn, 'validation');
        return false;
      }
      if (reason) {
        this.#log.info(
          { id: conn.id, reason, host: conn.host.host, port: conn.host.port },
          'connection retired at hand-out: its server changed role, fell behind, or its host is down (see reason)',
        );
        this.#destroy(conn, reason);
        return false;
      }
    }
    const hook = this.#hooks.beforeAcquire;
    if (hook) {
      let keep: boolean | undefined;
      try {
        keep = await hook(conn.client);
      } catch (err) {
        this.#destroy(conn, 'hook');
        throw new HookError('beforeAcquire', err);
      }
      if (keep === false) {
        this.#destroy(conn, 'hook');
        return false;
      }
    }
    return true;
  }

  #watchForLeak(conn: Connection): void {
    const stack = new Error('Connection acquired here').stack;
    const threshold = this.config.leakDetectionThresholdMs;
    conn.leakTimer = setTimeout(() => {
      this.#stats.leaksDetected++;
      this.#log.warn(
        { id: conn.id, heldMs: threshold, stack },
        'connection held longer than leakDetectionThresholdMs: possible leak',
      );
    }, threshold);
    conn.leakTimer.unref();
  }

  /** What a lease may ask of its pool. */
  readonly #owner: LeaseOwner = {
    tracer: undefined,
    release: (conn, error, destroy) => this.#release(conn, error, destroy),
    cancel: async (conn) => {
      const tls = isEncrypted(conn.client) ? await tlsOptions(this.config) : false;
      await sendCancelRequest({ host: conn.host, ...cancelKeyOf(conn.client), tls }, this.config.connectionTimeoutMs);
    },
  };

  #release(conn: Connection, error?: unknown, destroy = false): void {
    const now = performance.now();
    if (conn.leakTimer) {
      clearTimeout(conn.leakTimer);
      conn.leakTimer = undefined;
    }
    const heldMs = now - conn.acquiredAt;
    this.#stats.recordHold(heldMs);
    conn.lastUsedAt = now;
    if (this.listenerCount('release') > 0) this.emit('release', { id: conn.id, heldMs });
    if (conn.submitted !== undefined) {
      const open = hasOpenSubmittable(conn);
      conn.submitted = undefined;
      if (open) {
        // A cursor still open is a portal the next borrower would inherit: destroy it, do not wait for it.
        this.#log.warn({ id: conn.id }, 'connection released with a cursor or stream still open; destroyed');
        this.#destroy(conn, 'notIdle');
        return;
      }
    }
    if (!destroy && !conn.broken && conn.inflight === 0 && !isReadyForQuery(conn.client)) {
      // pg settles a failed query on ErrorResponse, before ReadyForQuery brings the real transaction
      // status; decide once it has arrived (normally the same socket read).
      this.#afterReadyForQuery(conn, () => this.#settle(conn, error));
      return;
    }
    this.#settle(conn, error, destroy);
  }

  #afterReadyForQuery(conn: Connection, then: () => void): void {
    const deadline = performance.now() + this.config.connectionTimeoutMs;
    const check = () => {
      if (isReadyForQuery(conn.client) || conn.broken) then();
      else if (performance.now() > deadline) {
        conn.broken = true;
        then();
      } else setImmediate(check);
    };
    setImmediate(check);
  }

  #settle(conn: Connection, error: unknown, destroy = false): void {
    const reason = destroy ? 'released' : this.#dirtyReason(conn, error);
    if (reason) {
      this.#destroy(conn, reason);
      return;
    }
    const hook = this.#hooks.afterRelease;
    if (!hook) {
      this.#recycle(conn);
      return;
    }
    Promise.resolve()
      .then(() => hook(conn.client))
      .then(
        (keep) => (keep === false ? this.#destroy(conn, 'hook') : this.#recycle(conn)),
        (err) => {
          this.#destroy(conn, 'hook');
          const hookError = new HookError('afterRelease', err);
          this.#log.error({ id: conn.id, error: describeCause(err) }, hookError.message);
          if (this.listenerCount('hookError') > 0) this.emit('hookError', hookError);
        },
      );
  }

  #dirtyReason(conn: Connection, error: unknown): DestroyReason | undefined {
    if (conn.timedOut) return 'queryTimeout';
    if (conn.broken) return 'broken';
    if (conn.inflight > 0) return 'notIdle';
    if (error !== undefined && error !== null && isTransientConnectionError(error)) return 'error';
    if (conn.client.getTransactionStatus() !== 'I') return 'notIdle';
    if (this.#closed) return 'closed';
    return undefined;
  }

  #recycle(conn: Connection): void {
    if (this.#closed) {
      this.#destroy(conn, 'closed');
      return;
    }
    if (this.config.maxLifetimeMs > 0 && performance.now() >= conn.expiresAt) {
      this.#destroy(conn, 'lifetime');
      return;
    }
    this.#offer(conn);
  }

  /** Hand a ready connection to the oldest waiter, or park it idle. */
  #offer(conn: Connection): void {
    if (this.#closed) {
      // A connect that finished after close(): nobody may use it.
      this.#destroy(conn, 'closed');
      return;
    }
    const waiter = this.#waiters.shift();
    if (waiter) waiter.resolve(conn);
    else this.#idle.push(conn);
  }

  // ---- connection creation -----------------------------------------------------------------

  /** Start background connects so every waiter has one on the way, within `maxConnections`. */
  #growForDemand(): void {
    while (!this.#closed && this.#waiters.length > this.#pending && this.#all.size + this.#pending < this.config.maxConnections) {
      void this.#connectInBackground();
    }
  }

  /**
   * Keep `minConnections` open, one connect at a time, backing off on failure (no stampede). A server
   * that refuses our login (see {@link isConnectRefusal}) will refuse it again until someone changes the
   * configuration, so it is retried every `maxRetryIntervalMs` instead of adding to its log of failed logins.
   */
  #warmUp(): void {
    if (this.#warming || this.#closed) return;
    const deficit = () => this.config.minConnections - this.#all.size - this.#pending;
    if (deficit() <= 0) return;
    this.#warming = true;
    void (async () => {
      let failures = 0;
      while (!this.#closed && deficit() > 0) {
        const failed = await this.#connectInBackground();
        if (!failed) {
          failures = 0;
          continue;
        }
        const { retryIntervalMs, maxRetryIntervalMs } = this.config;
        const delayMs = isConnectRefusal(failed.error)
          ? maxRetryIntervalMs
          : backoffDelay(failures, retryIntervalMs, maxRetryIntervalMs);
        failures++;
        await sleep(Math.max(delayMs, 50), this.#closeSignal.signal).catch(() => {});
      }
      this.#warming = false;
    })();
  }

  /**
   * Open one connection in the background, for the warm-up or for waiters, and offer it to the oldest
   * waiter. While in flight it counts in `#pending`, which is what waiters count on (`#growForDemand`
   * starts no connect for a waiter that one in flight already covers). Resolves to the failure, if any.
   */
  #connectInBackground(): Promise<{ error: unknown } | undefined> {
    this.#pending++;
    let inFlight = true;
    // A connection stops counting as pending the moment it counts in `#all` (before `onConnect` runs),
    // so `total + pending` never counts one connection twice.
    const landed = () => {
      if (!inFlight) return;
      inFlight = false;
      this.#pending--;
    };
    return this.#open(landed).then(
      (conn) => {
        landed();
        this.#connectSucceeded();
        this.#offer(conn);
        return undefined;
      },
      (error: unknown) => {
        landed();
        this.#connectFailed(error);
        return { error };
      },
    );
  }

  #connectSucceeded(): void {
    this.#lastConnectFailure = undefined;
    if (this.#loggedFailure !== undefined) {
      this.#log.info({ failedConnects: this.#failedConnects }, 'connected to the database again');
      this.#loggedFailure = undefined;
    }
    this.#failedConnects = 0;
  }

  /**
   * A background connect failed. The waiter it was counted for learns why now, not at its deadline;
   * so does every waiter that nothing else is on its way for. Waiters that a connect still in flight or
   * a leased connection can serve keep waiting.
   */
  #connectFailed(error: unknown): void {
    if (this.#closed) return;
    this.#lastConnectFailure = { error };
    this.#logConnectFailure(error);
    // In-flight connects cover the oldest waiters (a new connection goes to the oldest waiter), so one
    // of those was counting on this connect; the oldest learns first, as it would get a connection first.
    if (this.#waiters.length > this.#pending) this.#waiters.shift()?.reject(error);
    if (error instanceof DatabaseUnavailableError && this.#all.size === this.#idle.length) {
      // Nothing is leased, so nothing will come back: a waiter no connect is in flight for (there are more
      // waiters than maxConnections allows connects) could only be served by connecting, which just failed.
      for (const waiter of this.#waiters.splice(this.#pending)) waiter.reject(error);
    }
    this.#growForDemand();
  }

  // One line per distinct cause, not one per attempt: a burst of acquires against a down database, or
  // a warm-up retrying a refused login for hours, must not flood the log.
  #logConnectFailure(error: unknown): void {
    this.#failedConnects++;
    const description = describeCause(error);
    if (description === this.#loggedFailure) return;
    this.#loggedFailure = description;
    this.#log.warn(
      { error: description },
      'cannot open a connection (this cause is not logged again until it changes or a connect succeeds)',
    );
  }

  /**
   * A session from the connector, through `onConnect`, with the query silence bound set. It joins the
   * pool (`#all`) only once `onConnect` is done; until then it counts as pending, and `adopted` is called
   * as it joins, so `total + pending` counts it exactly once throughout.
   */
  async #open(adopted: () => void): Promise<Connection> {
    const opened = await this.#connector.open();
    const conn = this.#adopt(opened);
    if (this.#hooks.onConnect) {
      try {
        await this.#hooks.onConnect(opened.client);
      } catch (err) {
        // Still pending: the failure goes to the waiter this connect was counted for, not to a new connect.
        this.#retire(conn, 'hook');
        throw new HookError('onConnect', err);
      }
    }
    this.#all.add(conn);
    adopted();
    opened.boundSilence(this.config.queryTimeoutMs);
    this.#stats.connects++;
    if (this.listenerCount('connect') > 0) this.emit('connect', { id: conn.id, host: opened.host.host, port: opened.host.port });
    return conn;
  }

  #adopt({ client, host, boundSilence }: OpenedClient): Connection {
    const now = performance.now();
    const lifetime = this.config.maxLifetimeMs;
    // Up to 10% jitter so connections opened together do not all expire together (HikariCP does 2.5%).
    const expiresAt = lifetime > 0 ? now + lifetime - Math.random() * lifetime * 0.1 : Number.POSITIVE_INFINITY;
    const conn: Connection = {
      id: this.#nextId++,
      client,
      host,
      processId: cancelKeyOf(client).processId,
      createdAt: now,
      expiresAt,
      lastUsedAt: now,
      acquiredAt: 0,
      broken: false,
      timedOut: false,
      inflight: 0,
      submitted: undefined,
      leakTimer: undefined,
      boundSilence,
      statements: this.config.statementCacheSize > 0 ? new StatementCache(this.config.statementCacheSize) : undefined,
    };
    const onBroken = (err?: Error) => {
      if (err instanceof ConnectionLostError && err.reason === 'timeout') conn.timedOut = true;
      if (conn.broken) return;
      conn.broken = true;
      if (err) this.#log.info({ id: conn.id, error: describeCause(err) }, 'connection error');
      const i = this.#idle.indexOf(conn);
      if (i !== -1) this.#destroy(conn, conn.timedOut ? 'queryTimeout' : 'broken');
    };
    client.removeAllListeners('error');
    client.on('error', onBroken);
    client.on('end', () => onBroken());
    return conn;
  }

  #destroy(conn: Connection, reason: DestroyReason): void {
    if (!this.#all.delete(conn)) return;
    const i = this.#idle.indexOf(conn);
    if (i !== -1) this.#idle.splice(i, 1);
    this.#retire(conn, reason);
    if (this.#closed) {
      if (this.#all.size === 0) this.#drained?.();
      return;
    }
    this.#growForDemand();
    this.#warmUp();
  }

  /** Close a connection's session and count why; the caller has taken it out of the pool (or never put it in). */
  #retire(conn: Connection, reason: DestroyReason): void {
    if (conn.leakTimer) clearTimeout(conn.leakTimer);
    conn.broken = true;
    this.#stats.recordDestroy(reason);
    this.#log.debug({ id: conn.id, reason }, 'connection destroyed');
    if (this.listenerCount('destroy') > 0) this.emit('destroy', { id: conn.id, reason });
    void endClient(conn.client, this.config.connectionTimeoutMs);
  }

  #housekeep(): void {
    if (this.#closed) return;
    const now = performance.now();
    const { idleTimeoutMs, maxLifetimeMs, minConnections } = this.config;
    for (const conn of [...this.#idle]) {
      if (maxLifetimeMs > 0 && now >= conn.expiresAt) this.#destroy(conn, 'lifetime');
      else if (idleTimeoutMs > 0 && now - conn.lastUsedAt > idleTimeoutMs && this.#all.size > minConnections)
        this.#destroy(conn, 'idleTimeout');
    }
    this.#warmUp();
  }

  // ---- shutdown ----------------------------------------------------------------------------

  /**
   * Stop taking work (seed `close_all_connections`): new acquires fail with `PoolClosedError`, waiters
   * are rejected, idle connections close, leased ones close as they come back or when `timeoutMs`
   * runs out (at once with `force`). Idempotent: later calls return the same promise.
   */
  close(options: CloseOptions = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closeSignal.abort();
    this.#pipeline?.close();
    clearInterval(this.#housekeeper);
    clearTimeout(this.#waitTimer);
    for (const waiter of this.#waiters.splice(0)) waiter.reject(new PoolClosedError());
    for (const conn of [...this.#idle]) this.#destroy(conn, 'closed');
    this.#closing = (async () => {
      if (this.#all.size > 0 && !options.force) {
        const drained = new Promise<void>((resolve) => {
          this.#drained = resolve;
        });
        const timeoutMs = options.timeoutMs ?? 30_000;
        const outcome = await withTimeout(drained, timeoutMs, () => 'timeout' as const);
        if (outcome === 'timeout')
          this.#log.warn({ leased: this.#all.size, timeoutMs }, 'close timed out waiting for leased connections; closing them');
      }
      const ends = [...this.#all].map((conn) => {
        this.#destroy(conn, 'closed');
        return endClient(conn.client, this.config.connectionTimeoutMs);
      });
      await Promise.all(ends);
      this.#log.debug('pool closed');
    })();
    return this.#closing;
  }
}

/** Create a pool (seed `create_connection_pool`). Connections open lazily, plus `minConnections` in the background. */
export function createPool(config: PoolConfig | PoolConfigInput, options: CreatePoolOptions = {}): Pool {
  return new Pool(config, options);
}

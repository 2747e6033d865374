/** Why a connection was closed. */
export type DestroyReason =
  | 'error' // released with a connection-level error
  | 'broken' // socket error / server terminated it
  | 'notIdle' // came back inside a transaction or with a query still running
  | 'lifetime' // reached maxLifetimeMs
  | 'idleTimeout' // idle longer than idleTimeoutMs above minConnections
  | 'validation' // failed the check after being idle
  | 'queryTimeout' // the server stayed silent past queryTimeoutMs while a query waited
  | 'hook' // a hook returned false or threw
  | 'role' // its server no longer has the role targetSessionAttrs asks for (a standby promoted, a fallback retired)
  | 'lag' // its standby's replay fell behind maxReplicationLagMs
  | 'hostDown' // a connect to its host failed since: the host is down (see hostRecheckMs)
  | 'released' // the borrower called destroy()
  | 'closed'; // pool closed

/** Percentiles over the most recent samples (up to 1,024), in milliseconds. */
export interface LatencySummary {
  count: number;
  p50: number;
  p95: number;
  p99: number;
  max: number;
}

/** `pool.stats()`: gauges now, counters since creation. */
export interface PoolStats {
  /** Open connections, idle and leased (`idle + active`); connections still being opened are in `pending`. */
  total: number;
  /** Open connections waiting in the pool, ready to hand out. */
  idle: number;
  /** Connections leased to callers right now. */
  active: number;
  /** `acquire()` calls queued for a connection right now. */
  waiting: number;
  /** Connections being opened right now. */
  pending: number;
  /** `maxConnections`: the most connections the pool opens (`total + pending` never exceeds it). */
  max: number;
  /** `minConnections`: idle connections the pool keeps open and reopens in the background. */
  min: number;
  /** Connections handed out by `acquire()` (and so by `query`/`withConnection`) since creation. */
  acquires: number;
  /** `acquire()` calls that gave up after `acquireTimeoutMs` with a `PoolTimeoutError`. */
  acquireTimeouts: number;
  /** Connections opened and ready (logged in, `onConnect` done). */
  connects: number;
  /** Failed attempts to open a connection, one per host that could not be reached or logged in to. */
  connectFailures: number;
  /** Retries made by `withConnectionRetry` after a transient connection failure. */
  retries: number;
  /** Leases held past `leakDetectionThresholdMs` (each logged with the borrower's stack). */
  leaksDetected: number;
  /** Connections closed since creation, by {@link DestroyReason}. */
  destroyed: Record<DestroyReason, number>;
  /** How long `acquire()` waited for a connection, over the most recent acquires. */
  acquireWaitMs: LatencySummary;
  /** How long leases were held, from acquire to release, over the most recent releases. */
  holdMs: LatencySummary;
}

const WINDOW = 1024;

class Reservoir {
  readonly #samples = new Float64Array(WINDOW);
  #count = 0;

  add(value: number): void {
    this.#samples[this.#count % WINDOW] = value;
    this.#count++;
  }

  summary(): LatencySummary {
    const n = Math.min(this.#count, WINDOW);
    if (n === 0) return { count: 0, p50: 0, p95: 0, p99: 0, max: 0 };
    const sorted = this.#samples.slice(0, n).sort();
    const at = (q: number) => round(sorted[Math.min(n - 1, Math.floor(q * n))] ?? 0);
    return { count: this.#count, p50: at(0.5), p95: at(0.95), p99: at(0.99), max: round(sorted[n - 1] ?? 0) };
  }
}

const round = (ms: number) => Math.round(ms * 1000) / 1000;

export class StatsRecorder {
  acquires = 0;
  acquireTimeouts = 0;
  connects = 0;
  connectFailures = 0;
  retries = 0;
  leaksDetected = 0;
  readonly destroyed: Record<DestroyReason, number> = {
    error: 0,
    broken: 0,
    notIdle: 0,
    lifetime: 0,
    idleTimeout: 0,
    validation: 0,
    queryTimeout: 0,
    hook: 0,
    role: 0,
    lag: 0,
    hostDown: 0,
    released: 0,
    closed: 0,
  };
  readonly #wait = new Reservoir();
  readonly #hold = new Reservoir();

  recordAcquire(waitMs: number): void {
    this.acquires++;
    this.#wait.add(waitMs);
  }

  recordHold(ms: number): void {
    this.#hold.add(ms);
  }

  recordDestroy(reason: DestroyReason): void {
    this.destroyed[reason]++;
  }

  snapshot(gauges: Pick<PoolStats, 'total' | 'idle' | 'active' | 'waiting' | 'pending' | 'max' | 'min'>): PoolStats {
    return {
      ...gauges,
      acquires: this.acquires,
      acquireTimeouts: this.acquireTimeouts,
      connects: this.connects,
      connectFailures: this.connectFailures,
      retries: this.retries,
      leaksDetected: this.leaksDetected,
      destroyed: { ...this.destroyed },
      acquireWaitMs: this.#wait.summary(),
      holdMs: this.#hold.summary(),
    };
  }
}

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

/**
 * Percentiles over the most recent samples (up to 1,024), in milliseconds. For dashboards and logs;
 * they cannot be summed across pools or instances: export a {@link LatencyHistogram} for that.
 */
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
  /**
   * How long `acquire()` waited for a connection, over the most recent acquires. Computed (a sort of up
   * to 1,024 samples) when first read, not by `stats()` itself: a scrape that reads only the histograms
   * never pays for it.
   */
  readonly acquireWaitMs: LatencySummary;
  /** How long leases were held, from acquire to release, over the most recent releases (computed when first read). */
  readonly holdMs: LatencySummary;
  /** How long `acquire()` waited for a connection: every acquire since creation, cumulative buckets in seconds. */
  acquireWaitSeconds: LatencyHistogram;
  /** How long leases were held, acquire to release: every release since creation, cumulative buckets in seconds. */
  holdSeconds: LatencyHistogram;
}

/**
 * Upper bounds (seconds, `le` in Prometheus terms) of the latency histograms' buckets, from 100 µs (an
 * idle connection handed out) to a minute (a lease held by a long transaction); `+Inf` is implied.
 */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = Object.freeze([
  0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60,
]);

/**
 * A cumulative latency histogram since the pool was created, shaped like a Prometheus histogram:
 * `counts[i]` samples took at most `buckets[i]` seconds, `count` is every sample (the `+Inf` bucket)
 * and `sum` their total in seconds. Counts only grow, so rates and quantiles can be computed across
 * scrapes and summed across pools and instances (`histogram_quantile` over `rate(..._bucket)`).
 */
export interface LatencyHistogram {
  /** Upper bounds in seconds, ascending: {@link LATENCY_BUCKETS_SECONDS}. */
  readonly buckets: readonly number[];
  /** Cumulative: `counts[i]` is the number of samples `<= buckets[i]`; same length as `buckets`. */
  readonly counts: readonly number[];
  /** Sum of every sample, seconds. */
  readonly sum: number;
  /** Number of samples (the `+Inf` bucket). */
  readonly count: number;
}

/** The bounds in milliseconds, as the pool measures: recording a sample needs no unit conversion. */
const BOUNDS_MS = Float64Array.from(LATENCY_BUCKETS_SECONDS, (s) => s * 1000);

/** Samples per bucket (not cumulative), so recording one costs a short scan and one increment. */
class Histogram {
  /** One slot per bound plus the overflow slot (`+Inf`). */
  readonly #perBucket = new Float64Array(BOUNDS_MS.length + 1);
  #sumMs = 0;
  #count = 0;

  add(ms: number): void {
    let i = 0;
    // Bounded by the 18 bounds, and most samples (sub-millisecond waits) stop within the first few.
    while (i < BOUNDS_MS.length && ms > (BOUNDS_MS[i] as number)) i++;
    this.#perBucket[i] = (this.#perBucket[i] as number) + 1;
    this.#sumMs += ms;
    this.#count++;
  }

  /** O(buckets), whatever the number of samples. */
  snapshot(): LatencyHistogram {
    const counts = new Array<number>(BOUNDS_MS.length);
    let running = 0;
    for (let i = 0; i < counts.length; i++) {
      running += this.#perBucket[i] as number;
      counts[i] = running;
    }
    return { buckets: LATENCY_BUCKETS_SECONDS, counts, sum: this.#sumMs / 1000, count: this.#count };
  }
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
  readonly #waitHistogram = new Histogram();
  readonly #holdHistogram = new Histogram();

  recordAcquire(waitMs: number): void {
    this.acquires++;
    this.#wait.add(waitMs);
    this.#waitHistogram.add(waitMs);
  }

  recordHold(ms: number): void {
    this.#hold.add(ms);
    this.#holdHistogram.add(ms);
  }

  recordDestroy(reason: DestroyReason): void {
    this.destroyed[reason]++;
  }

  snapshot(gauges: Pick<PoolStats, 'total' | 'idle' | 'active' | 'waiting' | 'pending' | 'max' | 'min'>): PoolStats {
    const wait = this.#wait;
    const hold = this.#hold;
    let waitSummary: LatencySummary | undefined;
    let holdSummary: LatencySummary | undefined;
    return {
      ...gauges,
      acquires: this.acquires,
      acquireTimeouts: this.acquireTimeouts,
      connects: this.connects,
      connectFailures: this.connectFailures,
      retries: this.retries,
      leaksDetected: this.leaksDetected,
      destroyed: { ...this.destroyed },
      // Getters (enumerable, so spreads and JSON still show them): the sort runs only for a reader.
      get acquireWaitMs() {
        waitSummary ??= wait.summary();
        return waitSummary;
      },
      get holdMs() {
        holdSummary ??= hold.summary();
        return holdSummary;
      },
      acquireWaitSeconds: this.#waitHistogram.snapshot(),
      holdSeconds: this.#holdHistogram.snapshot(),
    };
  }
}

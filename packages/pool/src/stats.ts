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
  total: number;
  idle: number;
  active: number;
  waiting: number;
  /** Connections being opened right now. */
  pending: number;
  max: number;
  min: number;
  acquires: number;
  acquireTimeouts: number;
  connects: number;
  connectFailures: number;
  retries: number;
  leaksDetected: number;
  destroyed: Record<DestroyReason, number>;
  acquireWaitMs: LatencySummary;
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

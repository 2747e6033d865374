import { performance } from 'node:perf_hooks';
import type pg from 'pg';
import { setPipelineMode } from './driver.js';
import { PoolClosedError, type PoolTimeoutError } from './errors.js';
import type { Connection, QueryConfig, QueryResult } from './lease.js';

/**
 * Opt-in pipelining of `pool.query` (postgres.js's model). The pipeline borrows connections from the
 * pool as leases ("lanes"), switches pg's pipeline mode on for them, and writes each caller's query at
 * once, without waiting for earlier results. Every query is its own Parse?/Bind/Describe/Execute/Sync
 * (or one simple Query), so an error aborts only that query; results come back in order, one
 * ReadyForQuery each. At most `depth` queries are in flight on a lane; when every lane is full and no
 * more can be had at once, callers queue, bounded by `acquireTimeoutMs` (PoolTimeoutError).
 *
 * Lanes go back to the pool when an exclusive acquire (a lease, a transaction, a batch) waits: the
 * least busy lane takes no more queries and is released once its last answer arrived. A lane whose
 * connection was lost fails what it had in flight (typed by `runStatement`) and is destroyed.
 */

/** What the pipeline needs of its pool. */
export interface PipelineHost {
  readonly depth: number;
  readonly maxLanes: number;
  readonly acquireTimeoutMs: number;
  /** Lease a connection (the pool's own acquire: validation, hooks, acquire timeout). */
  acquire(): Promise<Connection>;
  /** Give a lane back (destroyed when broken). */
  release(conn: Connection, error?: unknown): void;
  /** Acquires waiting in the pool (the pipeline's own included). */
  waiting(): number;
  /** Whether a connection can be had now without waiting for another's release (idle, or room to open one). */
  available(): boolean;
  closed(): boolean;
  /** Run one statement on `conn`, typed errors (the pool's `runStatement`, traced when the pool traces). */
  run<R extends pg.QueryResultRow>(
    conn: Connection,
    text: string | QueryConfig,
    values: unknown[] | undefined,
  ): Promise<QueryResult<R>>;
  /** Details for a PoolTimeoutError of a queued query. */
  timeoutError(waitedMs: number, waiting: number): PoolTimeoutError;
}

interface Lane {
  readonly conn: Connection;
  inflight: number;
  /** Takes no more queries; released when its last answer arrived. */
  retiring: boolean;
}

interface Queued {
  readonly text: string | QueryConfig;
  readonly values: unknown[] | undefined;
  readonly started: number;
  readonly deadline: number;
  resolve(result: QueryResult<pg.QueryResultRow>): void;
  reject(error: unknown): void;
}

export class Pipeline {
  readonly #host: PipelineHost;
  readonly #lanes: Lane[] = [];
  #queue: Queued[] = [];
  #acquiring = 0;
  #timer: NodeJS.Timeout | undefined;
  #timerAt = Number.POSITIVE_INFINITY;
  #closed = false;

  constructor(host: PipelineHost) {
    this.#host = host;
  }

  /** Lanes held and queries in flight or queued (for tests and diagnostics). */
  get state(): { lanes: number; inflight: number; queued: number } {
    let inflight = 0;
    for (const lane of this.#lanes) inflight += lane.inflight;
    return { lanes: this.#lanes.length, inflight, queued: this.#queue.length };
  }

  query<R extends pg.QueryResultRow>(text: string | QueryConfig, values: unknown[] | undefined): Promise<QueryResult<R>> {
    if (this.#closed || this.#host.closed()) return Promise.reject(new PoolClosedError());
    const lane = this.#queue.length === 0 ? this.#pick() : undefined;
    if (lane) return this.#send<R>(lane, text, values);
    return new Promise<QueryResult<R>>((resolve, reject) => {
      const started = performance.now();
      const deadline = started + this.#host.acquireTimeoutMs;
      this.#queue.push({ text, values, started, deadline, resolve: resolve as Queued['resolve'], reject });
      this.#arm(deadline);
      this.#grow(true);
    });
  }

  /** The least busy lane with room; starts opening another lane alongside when one can be had at once. */
  #pick(): Lane | undefined {
    let best: Lane | undefined;
    const depth = this.#host.depth;
    for (const lane of this.#lanes) {
      if (lane.conn.broken && !lane.retiring) {
        // Its session ended while it had nothing in flight: give it back (the pool destroys it).
        this.#retire(lane);
        return this.#pick();
      }
      if (lane.retiring || lane.inflight >= depth) continue;
      if (best === undefined || lane.inflight < best.inflight) {
        best = lane;
        if (lane.inflight === 0) return lane;
      }
    }
    this.#grow(false);
    return best;
  }

  /** Lease one more lane: when nothing is queued only if one can be had at once; when callers queue, always (bounded by maxLanes). */
  #grow(queued: boolean): void {
    if (this.#closed || this.#acquiring > 0 || this.#lanes.length >= this.#host.maxLanes) return;
    if (!queued && !this.#host.available()) return;
    if (queued && this.#lanes.length > 0 && !this.#host.available()) return;
    // Someone waits for an exclusive connection: do not compete with them, unless the pipeline has no
    // connection at all (then it waits its turn in the pool's queue like any acquire).
    if (this.#lanes.length > 0 && this.#host.waiting() > 0) return;
    this.#acquiring++;
    this.#host.acquire().then(
      (conn) => {
        this.#acquiring--;
        if (this.#closed) {
          this.#host.release(conn);
          return;
        }
        setPipelineMode(conn.client, true);
        const lane: Lane = { conn, inflight: 0, retiring: false };
        this.#lanes.push(lane);
        this.#drain(lane);
        if (this.#queue.length > 0 || this.#lanes.every((l) => l.inflight > 0)) this.#grow(this.#queue.length > 0);
      },
      (error: unknown) => {
        this.#acquiring--;
        // No lane at all: the queued callers learn why (the pool's typed acquire failure).
        if (this.#lanes.length === 0) for (const q of this.#queue.splice(0)) q.reject(error);
      },
    );
  }

  #send<R extends pg.QueryResultRow>(
    lane: Lane,
    text: string | QueryConfig,
    values: unknown[] | undefined,
  ): Promise<QueryResult<R>> {
    lane.inflight++;
    const done = () => this.#answered(lane);
    const result = this.#host.run<R>(lane.conn, text, values);
    result.then(done, done);
    return result;
  }

  /** One answer (or failure) on `lane`: hand its room to a queued caller, or give the lane back. */
  #answered(lane: Lane): void {
    lane.inflight--;
    if (lane.conn.broken) {
      this.#retire(lane);
      return;
    }
    if (
      !lane.retiring &&
      this.#host.waiting() > this.#acquiring &&
      !this.#host.available() &&
      !this.#lanes.some((l) => l.retiring)
    )
      lane.retiring = true;
    // Past its lifetime: give it back when drained, so the pool replaces it as it would an idle one.
    if (lane.inflight === 0 && performance.now() >= lane.conn.expiresAt) lane.retiring = true;
    if (lane.retiring) {
      this.#retire(lane);
      return;
    }
    this.#drain(lane);
  }

  /** Send queued queries on `lane` while it has room. */
  #drain(lane: Lane): void {
    const depth = this.#host.depth;
    while (this.#queue.length > 0 && lane.inflight < depth && !lane.retiring && !lane.conn.broken) {
      const q = this.#queue.shift() as Queued;
      this.#send(lane, q.text, q.values).then(q.resolve, q.reject);
    }
  }

  /** Stop using `lane`; give it back once nothing is in flight on it. */
  #retire(lane: Lane): void {
    lane.retiring = true;
    if (lane.inflight > 0) return;
    const i = this.#lanes.indexOf(lane);
    if (i === -1) return;
    this.#lanes.splice(i, 1);
    if (!lane.conn.broken) setPipelineMode(lane.conn.client, false);
    this.#host.release(lane.conn);
    if (this.#queue.length > 0) {
      const next = this.#pick();
      if (next) this.#drain(next);
      else this.#grow(true);
    }
  }

  /** An exclusive acquire started waiting: free a lane for it (the idle one at once, else the least busy once drained). */
  yieldLane(): void {
    // Below maxConnections the pool opens a connection for the waiter instead.
    if (this.#lanes.length === 0 || this.#host.available() || this.#lanes.some((l) => l.retiring)) return;
    let least = this.#lanes[0] as Lane;
    for (const lane of this.#lanes) if (lane.inflight < least.inflight) least = lane;
    this.#retire(least);
  }

  #arm(deadline: number): void {
    if (this.#timer !== undefined && this.#timerAt <= deadline) return;
    clearTimeout(this.#timer);
    this.#timerAt = deadline;
    this.#timer = setTimeout(() => this.#expire(), Math.max(0, deadline - performance.now()));
    this.#timer.unref();
  }

  #expire(): void {
    this.#timer = undefined;
    this.#timerAt = Number.POSITIVE_INFINITY;
    const now = performance.now();
    const expired = this.#queue.filter((q) => q.deadline <= now);
    if (expired.length === 0) {
      if (this.#queue.length > 0) this.#arm(Math.min(...this.#queue.map((q) => q.deadline)));
      return;
    }
    this.#queue = this.#queue.filter((q) => q.deadline > now);
    for (const q of expired) q.reject(this.#host.timeoutError(Math.round(now - q.started), this.#queue.length));
    if (this.#queue.length > 0) this.#arm(Math.min(...this.#queue.map((q) => q.deadline)));
  }

  /** Stop taking queries: queued callers get PoolClosedError, lanes go back once their answers arrived. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    for (const q of this.#queue.splice(0)) q.reject(new PoolClosedError());
    for (const lane of [...this.#lanes]) this.#retire(lane);
  }
}

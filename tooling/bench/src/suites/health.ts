/**
 * @accountdb/health (issue 12): what `checkHealth` costs and how readiness answers under load.
 *
 * 1. Cost per call, 1 worker, ABBA against `SELECT 1` on its own pool: `checkHealth` with every check
 *    (2 round trips: the database statement and the probe), the default document (1 round trip), and
 *    `checkDatabaseHealth` alone; server time per call from `EXPLAIN (ANALYZE)` of the health statement.
 * 2. Readiness latency p50/p99 from 64 concurrent probe callers (`createHealthHandler(...).report('ready')`,
 *    no cache: only coalescing) while 16 workers run primary-key lookups on their own pool, and the
 *    lookup throughput with and without the probes. Round trips per call are by construction and
 *    counted in the package's tests (pg_stat_statements); this program reports time.
 */
import { performance } from 'node:perf_hooks';
import { checkDatabaseHealth, checkHealth, createHealthHandler, DATABASE_HEALTH_SQL } from '@accountdb/health';
import type { Pool } from '@accountdb/pool';
import { median, quantile, runWorkers } from '../abba.js';
import type { BenchContext } from '../main.js';

export default async function run(ctx: BenchContext): Promise<void> {
  const pool = () => ctx.newPool();
  const [plain, control, every, defaults, dbOnly, load, probed] = Array.from({ length: 7 }, pool) as [
    Pool,
    Pool,
    Pool,
    Pool,
    Pool,
    Pool,
    Pool,
  ];
  const pk = `SELECT id, name, balance FROM ${ctx.benchTable.name} WHERE id = $1`;
  const idFor = (worker: number, seq: number) => ((seq * 7919 + worker * 104_729) % ctx.benchTable.rows) + 1;
  const result = await ctx.measureAbba({
    title: 'health: cost of one check, 1 worker (ratio = checks per second vs SELECT 1)',
    concurrency: 1,
    contenders: [
      { name: 'SELECT 1 (pool.query)', op: () => plain.query('SELECT 1') },
      { name: 'checkHealth, every check (2 RT)', op: () => checkHealth(every, { queryPerformance: true }), reference: true },
      { name: 'checkHealth, defaults (1 RT)', op: () => checkHealth(defaults), reference: true },
      { name: 'checkDatabaseHealth (1 RT)', op: () => checkDatabaseHealth(dbOnly), reference: true },
    ],
    control: { name: 'SELECT 1 (second pool)', op: () => control.query('SELECT 1') },
  });
  ctx.printAbba(result);

  const explains: number[] = [];
  for (let i = 0; i < (ctx.settings.quick ? 20 : 100); i++) {
    const { rows } = await plain.query(`EXPLAIN (ANALYZE, FORMAT JSON) ${DATABASE_HEALTH_SQL}`);
    const plan = (rows[0]?.['QUERY PLAN'] ?? []) as { 'Execution Time'?: number }[];
    explains.push(plan[0]?.['Execution Time'] ?? Number.NaN);
  }
  ctx.print(
    `health statement server time (EXPLAIN ANALYZE, ${explains.length} runs): p50 ${median(explains).toFixed(3)} ms, p99 ${quantile(explains, 0.99).toFixed(3)} ms`,
  );
  ctx.print();

  const durationMs = ctx.settings.quick ? 2000 : 8000;
  const handler = createHealthHandler(probed, { timeoutMs: 2000 });
  const rows: (string | number)[][] = [];
  for (const withProbes of [false, true, false, true]) {
    const latencies: number[] = [];
    let stop = false;
    const probes = withProbes
      ? Promise.all(
          Array.from({ length: 64 }, async () => {
            while (!stop) {
              const started = performance.now();
              await handler.report('ready');
              latencies.push(performance.now() - started);
            }
          }),
        )
      : Promise.resolve([]);
    const loadRun = await runWorkers(16, { durationMs }, (w, s) => load.query(pk, [idFor(w, s)]));
    stop = true;
    await probes;
    rows.push([
      withProbes ? '16 workers + 64 probe callers' : '16 workers alone',
      Math.round((loadRun.ops / loadRun.elapsedMs) * 1000).toLocaleString('en-US'),
      withProbes ? median(latencies).toFixed(2) : '—',
      withProbes ? quantile(latencies, 0.99).toFixed(2) : '—',
      withProbes ? latencies.length.toLocaleString('en-US') : '—',
    ]);
  }
  ctx.print(`health: readiness under load (${durationMs} ms per row, alternated; probes coalesce, no TTL cache)`);
  ctx.printTable(['run', 'lookups q/s', 'ready p50 ms', 'ready p99 ms', 'ready answers'], rows);
  ctx.print();
}

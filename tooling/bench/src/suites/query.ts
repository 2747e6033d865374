/**
 * @accountdb/query against raw `pg.Pool`, per issue 4's benchmark section.
 *
 * Part 1: `execute(pool, ...)` (on an @accountdb/pool) against raw `pg.Pool.query` at 16 workers, for
 * `SELECT 1` and a primary-key lookup. Bar: ratio >= 0.97. `ours pool.query` (the same pool without
 * `execute`) is printed as a reference, so execute's own cost shows apart from the pool's.
 * Part 1b (HikariCP's JMH approach): execute's own CPU per call, against a stub that answers at once,
 * set against the client CPU one raw query costs: the ratio a CPU-bound client would see, free of the
 * server sharing this machine's CPU.
 * Part 2: peak RSS of reading 1,000,000 rows with `stream` and with `execute` (fetch all), each in its
 * own child process so one measurement's heap cannot inflate the other's peak. Bar: streaming grows
 * RSS by < 64 MB.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { createPool } from '@accountdb/pool';
import { execute, sql, stream } from '@accountdb/query';
import type pg from 'pg';
import type { Contender } from '../abba.js';
import type { BenchContext } from '../main.js';
import { contenderPools } from '../pools.js';

const BAR = 0.97;
const CONCURRENCY = 16;
const STREAM_ROWS = 1_000_000;
const STREAM_RSS_BAR_MB = 64;
const CHILD_ENV = 'ACCOUNTDB_QUERY_BENCH_CHILD';
const ROWS_SQL = 'select g as id, md5(g::text) as payload, g * 1.5 as amount from generate_series(1, $1::int) g';

interface MemoryReport {
  mode: 'stream' | 'fetch-all';
  rows: number;
  baselineRssMb: number;
  peakRssMb: number;
  ms: number;
}

export default async function run(ctx: BenchContext): Promise<void> {
  await throughput(ctx);
  await memory(ctx);
}

async function throughput(ctx: BenchContext): Promise<void> {
  const rawCpuUs: number[] = [];
  const pools = contenderPools(ctx);
  const { raw, rawControl, ours } = pools;
  const rows = ctx.benchTable.rows;
  const pkText = `SELECT id, name, balance FROM ${ctx.benchTable.name} WHERE id = $1`;
  const idFor = (worker: number, seq: number) => ((seq * 7919 + worker * 104_729) % rows) + 1;
  const table = sql.identifier(ctx.benchTable.name);
  try {
    ctx.print(`pool size ${ctx.poolSize} for pg.Pool and @accountdb/pool; bar: execute/raw >= ${BAR} at ${CONCURRENCY} workers`);
    ctx.print();
    const workloads = [
      {
        name: 'SELECT 1',
        raw: (p: pg.Pool) => () => p.query('SELECT 1'),
        pool: () => ours.query('SELECT 1'),
        execute: () => execute(ours, 'SELECT 1'),
        fragment: undefined,
      },
      {
        name: 'PK lookup',
        raw: (p: pg.Pool) => (w: number, s: number) => p.query(pkText, [idFor(w, s)]),
        pool: (w: number, s: number) => ours.query(pkText, [idFor(w, s)]),
        execute: (w: number, s: number) => execute(ours, pkText, [idFor(w, s)], { fetch: 'one' }),
        fragment: (w: number, s: number) =>
          execute(ours, sql`SELECT id, name, balance FROM ${table} WHERE id = ${idFor(w, s)}`, {
            fetch: 'one',
          }),
      },
    ];
    for (const w of workloads) {
      const contenders: Contender[] = [
        { name: 'pg.Pool query (raw)', op: w.raw(raw) },
        { name: 'execute(pool, text)', op: w.execute },
        ...(w.fragment ? [{ name: 'execute(pool, sql`...`)', op: w.fragment }] : []),
        { name: 'ours pool.query', op: w.pool, reference: true },
      ];
      const result = await ctx.measureAbba({
        title: `query: ${w.name}`,
        contenders,
        concurrency: CONCURRENCY,
        control: { name: 'pg.Pool (second pool)', op: w.raw(rawControl) },
        bar: BAR,
      });
      ctx.printAbba(result);
      rawCpuUs.push(result.rows[0]?.cpuUsPerOp ?? Number.NaN);
    }
  } finally {
    await pools.close();
  }
  await executeOverhead(ctx, rawCpuUs);
}

/** execute's own cost: the same call against a stub pool whose query resolves at once, minus the stub alone. */
async function executeOverhead(ctx: BenchContext, rawCpuUs: readonly number[]): Promise<void> {
  const result = { rows: [{ id: 1 }], rowCount: 1, command: 'SELECT' };
  const stub = {
    query: (_text: string, _values?: unknown[]) => Promise.resolve(result),
    acquire: () => Promise.reject(new Error('unused')),
  };
  const calls = ctx.settings.quick ? 200_000 : 1_000_000;
  const time = async (op: (i: number) => Promise<unknown>) => {
    const samples: number[] = [];
    for (let round = 0; round < 5; round++) {
      const started = process.cpuUsage();
      for (let i = 0; i < calls; i++) await op(i);
      const used = process.cpuUsage(started);
      samples.push(((used.user + used.system) * 1000) / calls);
    }
    return samples.sort((a, b) => a - b)[2] as number;
  };
  const stubNs = await time((i) => stub.query('SELECT 1', [i]));
  const executeNs = await time((i) => execute(stub as never, 'SELECT 1', [i], { fetch: 'one' }));
  const overheadUs = Math.max(0, executeNs - stubNs) / 1000;
  ctx.print();
  ctx.printTable(
    ['workload', 'raw pg.Pool client µs/query', 'execute overhead µs/call', 'predicted CPU-bound ratio'],
    ['SELECT 1', 'PK lookup'].map((name, i) => {
      const raw = rawCpuUs[i] ?? Number.NaN;
      return [name, raw.toFixed(1), overheadUs.toFixed(2), (raw / (raw + overheadUs)).toFixed(3)];
    }),
  );
}

async function memory(ctx: BenchContext): Promise<void> {
  ctx.print();
  ctx.print(`Reading ${STREAM_ROWS.toLocaleString('en-US')} rows (id, md5 text, numeric), each mode in its own process:`);
  const reports: MemoryReport[] = [];
  for (const mode of ['stream', 'fetch-all'] as const) reports.push(await runChild(ctx, mode));
  ctx.printTable(
    ['mode', 'rows', 'RSS before (MB)', 'peak RSS (MB)', 'growth (MB)', 'seconds', 'note'],
    reports.map((r) => {
      const growth = r.peakRssMb - r.baselineRssMb;
      const note = r.mode === 'stream' ? (growth < STREAM_RSS_BAR_MB ? `bar < ${STREAM_RSS_BAR_MB} MB: met` : 'BELOW BAR') : '';
      return [
        r.mode,
        r.rows,
        r.baselineRssMb.toFixed(1),
        r.peakRssMb.toFixed(1),
        growth.toFixed(1),
        (r.ms / 1000).toFixed(1),
        note,
      ];
    }),
  );
  const streamed = reports[0] as MemoryReport;
  if (streamed.peakRssMb - streamed.baselineRssMb >= STREAM_RSS_BAR_MB) {
    throw new Error(
      `stream grew RSS by ${(streamed.peakRssMb - streamed.baselineRssMb).toFixed(1)} MB (bar < ${STREAM_RSS_BAR_MB})`,
    );
  }
}

async function runChild(ctx: BenchContext, mode: MemoryReport['mode']): Promise<MemoryReport> {
  // Same loader flags as this process (tsx), this very file, told by the environment which mode to run.
  // The URL travels in the environment, not argv, so the password never shows in `ps`.
  const { stdout } = await promisify(execFile)(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url)], {
    env: { ...process.env, [CHILD_ENV]: mode, ACCOUNTDB_QUERY_BENCH_URL: ctx.url },
    maxBuffer: 1024 * 1024,
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line) as MemoryReport;
}

const mb = (bytes: number) => bytes / (1024 * 1024);

async function child(mode: MemoryReport['mode'], url: string): Promise<void> {
  const pool = createPool({ connectionString: url, sslmode: 'disable', maxConnections: 1, minConnections: 0 });
  try {
    // Warm up: modules loaded, connection open, one small read through each path.
    await execute(pool, ROWS_SQL, [10]);
    for await (const _ of stream(pool, ROWS_SQL, [10])) {
    }
    global.gc?.();
    const baseline = mb(process.memoryUsage().rss);
    const started = performance.now();
    let rows = 0;
    if (mode === 'stream') {
      for await (const _ of stream(pool, ROWS_SQL, [STREAM_ROWS], { batchSize: 1000 })) rows++;
    } else {
      rows = (await execute(pool, ROWS_SQL, [STREAM_ROWS])).length;
    }
    const ms = performance.now() - started;
    // maxRSS is the process's high-water mark, in kilobytes.
    const peak = process.resourceUsage().maxRSS / 1024;
    const report: MemoryReport = { mode, rows, baselineRssMb: baseline, peakRssMb: peak, ms };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await pool.close();
  }
}

const childMode = process.env[CHILD_ENV];
if (childMode === 'stream' || childMode === 'fetch-all') {
  await child(childMode, process.env.ACCOUNTDB_QUERY_BENCH_URL ?? '');
}

/**
 * @accountdb/pool against raw `pg.Pool` (and postgres.js for reference), per issue 2 §5.
 *
 * Part 1: throughput at 1, 16 and 64 workers for `SELECT 1` and a primary-key lookup; every pool has
 * the same maximum (ctx.poolSize connections). Bar: our/raw ≥ 0.97 for `pool.query` and
 * `withConnection`.
 * Issue 16 §1 (automatic statement cache): the same runs carry `pool.query` with the cache off
 * (`statementCacheSize: 0`, every statement parsed anew) beside the default (cache on), and the
 * summary ends with the issue 16 bar: PK lookup ≥ 1.25× raw pg.Pool and ≥ 1.0× postgres.js at 1 and
 * 16 workers; `SELECT 1` not slower (which `SELECT 1` shows against the control's noise floor).
 * `BENCH_POOL_WORKERS=1,16` limits the worker counts (default 1,16,64).
 * Issue 16 §2 (opt-in pipelining): PK lookup at 64 workers on 8 connections (pool size 8 for every
 * contender in that table), raw pg.Pool, `pool.query` default, `pool.query` with `pipelining: true`
 * and postgres.js; bar: pipelining ≥ 1.3× raw pg.Pool and ≥ 1.0× postgres.js.
 * `BENCH_POOL_PART=pipelining` runs only that table.
 * Part 2 (HikariCP's JMH approach): the cost of one acquire+release cycle with no query, in a tight
 * loop, set against the client CPU one query costs, which predicts the ratio a CPU-bound client sees.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createPool, type Pool } from '@accountdb/pool';
import pg from 'pg';
import postgres from 'postgres';
import type { AbbaResult, Contender } from '../abba.js';
import type { BenchContext } from '../main.js';
import { contenderPools } from '../pools.js';

const BAR = 0.97;
const CONCURRENCY = workerCounts(process.env.BENCH_POOL_WORKERS);
/** Issue 16: PK lookup through the statement cache against raw pg.Pool and postgres.js, at these worker counts. */
const ISSUE16 = { vsRaw: 1.25, vsPostgresJs: 1.0, workers: [1, 16] } as const;
/** Issue 16 §2: pipelined PK lookup at 64 workers on 8 connections. */
const PIPELINING = { vsRaw: 1.3, vsPostgresJs: 1.0, workers: 64, connections: 8 } as const;

function workerCounts(text: string | undefined): readonly number[] {
  if (text === undefined || text.trim() === '') return [1, 16, 64];
  const counts = text.split(',').map((t) => Number(t.trim()));
  if (counts.some((n) => !Number.isInteger(n) || n < 1))
    throw new Error('BENCH_POOL_WORKERS must be a comma-separated list of positive integers');
  return counts;
}

export default async function run(ctx: BenchContext): Promise<void> {
  if (process.env.BENCH_POOL_PART === 'pipelining') {
    await pipelining(ctx);
    return;
  }
  const { host, port, database, user, password } = ctx.config;
  const max = ctx.poolSize;
  const pools = contenderPools(ctx);
  const { raw, rawControl, ours } = pools;
  // The same pool with the statement cache off: every statement parsed anew, as before issue 16.
  const uncached = createPool({
    host,
    port,
    database,
    user,
    password,
    sslmode: 'disable',
    maxConnections: max,
    statementCacheSize: 0,
  });
  const sql = postgres({ host, port, database, username: user, password, max, idle_timeout: 0, onnotice: () => {} });
  const rows = ctx.benchTable.rows;
  const pkText = `SELECT id, name, balance FROM ${ctx.benchTable.name} WHERE id = $1`;
  const idFor = (worker: number, seq: number) => ((seq * 7919 + worker * 104_729) % rows) + 1;

  try {
    ctx.print(`pool size ${max} for pg.Pool, @accountdb/pool and postgres.js; bar: our/raw ratio >= ${BAR}`);
    ctx.print('postgres.js is a reference (it pipelines and prepares statements), not held to the bar.');
    ctx.print();
    const workloads = [
      {
        name: 'SELECT 1',
        raw: (p: pg.Pool) => () => p.query('SELECT 1'),
        ours: () => ours.query('SELECT 1'),
        uncached: () => uncached.query('SELECT 1'),
        withConnection: () => ours.withConnection((c) => c.query('SELECT 1')),
        postgresJs: () => sql`SELECT 1`,
      },
      {
        name: 'PK lookup',
        raw: (p: pg.Pool) => (w: number, s: number) => p.query(pkText, [idFor(w, s)]),
        ours: (w: number, s: number) => ours.query(pkText, [idFor(w, s)]),
        uncached: (w: number, s: number) => uncached.query(pkText, [idFor(w, s)]),
        withConnection: (w: number, s: number) => ours.withConnection((c) => c.query(pkText, [idFor(w, s)])),
        postgresJs: (w: number, s: number) =>
          sql`SELECT id, name, balance FROM bench_accounts WHERE id = ${idFor(w, s)}`.then((r) => r),
      },
    ];
    const select1CpuUs = new Map<number, number>();
    const results: AbbaResult[] = [];
    for (const concurrency of CONCURRENCY) {
      for (const w of workloads) {
        const contenders: Contender[] = [
          { name: 'pg.Pool (raw)', op: w.raw(raw) },
          { name: 'ours pool.query', op: w.ours },
          { name: 'ours withConnection', op: w.withConnection },
          // The pre-issue-16 path, for comparison: printed, not held to the bar.
          { name: 'ours, cache off', op: w.uncached, reference: true },
          { name: 'postgres.js', op: w.postgresJs, reference: true },
        ];
        const result = await ctx.measureAbba({
          title: `pool: ${w.name}`,
          contenders,
          concurrency,
          control: { name: 'pg.Pool (second pool)', op: w.raw(rawControl) },
          bar: BAR,
        });
        ctx.printAbba(result);
        results.push(result);
        if (w.name === 'SELECT 1') select1CpuUs.set(concurrency, result.rows[0]?.cpuUsPerOp ?? Number.NaN);
      }
    }
    printSummary(ctx, results);
    printIssue16Bar(ctx, results);
    await pipelining(ctx);

    await pgbenchReference(ctx, raw);
    await acquireOverhead(ctx, raw, ours, sql, select1CpuUs);
  } finally {
    await Promise.allSettled([pools.close(), uncached.close({ force: true }), sql.end({ timeout: 1 })]);
  }
}

/** One line per scenario: the ratios the issue asks for, with the control beside them. */
function printSummary(ctx: BenchContext, results: readonly AbbaResult[]): void {
  const cell = (r: AbbaResult, name: string, what: 'ratio' | 'cpu' = 'ratio') => {
    const row = r.rows.find((x) => x.name.startsWith(name));
    if (!row) return '';
    return what === 'cpu' ? row.cpuRatio.toFixed(3) : `${row.ratio.toFixed(3)}${row.belowBar ? ' *' : ''}`;
  };
  ctx.print(`pool summary — our/raw q/s ratios (median of ${results[0]?.pairs ?? 0} ABBA pairs; * below ${BAR}):`);
  ctx.printTable(
    [
      'workload',
      'workers',
      'raw q/s',
      'pool.query',
      'withConnection',
      'cache off',
      'postgres.js',
      'CONTROL',
      'CONTROL p25–p75',
      'CPU: query',
      'CPU: withConn',
    ],
    results.map((r) => {
      const control = r.rows.find((x) => x.role === 'control');
      return [
        r.title.replace(/^pool: /, ''),
        r.concurrency,
        Math.round(r.rows[0]?.medianQps ?? 0).toLocaleString('en-US'),
        cell(r, 'ours pool.query'),
        cell(r, 'ours withConnection'),
        cell(r, 'ours, cache off'),
        cell(r, 'postgres.js'),
        control ? control.ratio.toFixed(3) : '',
        control ? `${control.ratioP25.toFixed(3)}–${control.ratioP75.toFixed(3)}` : '',
        cell(r, 'ours pool.query', 'cpu'),
        cell(r, 'ours withConnection', 'cpu'),
      ];
    }),
  );
  ctx.print();
}

/**
 * The issue 16 bar, from the same ABBA runs: `pool.query` (statement cache on) over raw pg.Pool and
 * over postgres.js for the PK lookup, and over raw pg.Pool for `SELECT 1`, each beside the CONTROL
 * (raw against raw) of its run, so a result inside the noise floor reads as such.
 */
function printIssue16Bar(ctx: BenchContext, results: readonly AbbaResult[]): void {
  const ratio = (r: AbbaResult, name: string) => r.rows.find((x) => x.name.startsWith(name))?.ratio ?? Number.NaN;
  const lines: string[] = [];
  const table: (string | number)[][] = [];
  for (const r of results) {
    const workers = r.concurrency;
    if (!(ISSUE16.workers as readonly number[]).includes(workers)) continue;
    const ours = ratio(r, 'ours pool.query');
    const control = r.rows.find((x) => x.role === 'control');
    const noise = control ? `${control.ratio.toFixed(3)} (${control.ratioP25.toFixed(3)}–${control.ratioP75.toFixed(3)})` : '';
    if (r.title === 'pool: PK lookup') {
      const vsPgJs = ours / ratio(r, 'postgres.js');
      const ok = ours >= ISSUE16.vsRaw && vsPgJs >= ISSUE16.vsPostgresJs;
      table.push([
        'PK lookup',
        workers,
        ours.toFixed(3),
        vsPgJs.toFixed(3),
        ratio(r, 'ours, cache off').toFixed(3),
        noise,
        ok ? 'meets' : 'BELOW',
      ]);
      lines.push(`PK@${workers} ${ours.toFixed(2)}x raw ${vsPgJs.toFixed(2)}x postgres.js`);
    } else if (r.title === 'pool: SELECT 1') {
      // "Not slower": at or above raw, or within the control's own spread.
      const ok = ours >= Math.min(1, control?.ratioP25 ?? 1);
      table.push([
        'SELECT 1',
        workers,
        ours.toFixed(3),
        '',
        ratio(r, 'ours, cache off').toFixed(3),
        noise,
        ok ? 'meets' : 'BELOW',
      ]);
      lines.push(`SELECT1@${workers} ${ours.toFixed(2)}x raw`);
    }
  }
  if (table.length === 0) return;
  ctx.print(
    `issue 16 bar — PK lookup: pool.query >= ${ISSUE16.vsRaw}x raw pg.Pool and >= ${ISSUE16.vsPostgresJs}x postgres.js; SELECT 1 not slower than raw:`,
  );
  ctx.printTable(['workload', 'workers', 'ours/raw', 'ours/postgres.js', 'cache off/raw', 'CONTROL (p25–p75)', 'bar'], table);
  ctx.print(`issue 16 bar: ${lines.join('; ')}`);
  ctx.print();
}

/**
 * HikariCP-style: CPU per acquire+release with no query, against the client CPU of one `SELECT 1`
 * (`queryCpuUs`, from the raw pg.Pool rows above). CPU time rather than wall time, so that other
 * processes on the machine do not count.
 */
async function acquireOverhead(
  ctx: BenchContext,
  raw: pg.Pool,
  ours: Pool,
  sql: postgres.Sql,
  queryCpuUs: ReadonlyMap<number, number>,
): Promise<void> {
  const cycles: Contender[] = [
    {
      name: 'pg.Pool connect()+release()',
      op: async () => {
        const c = await raw.connect();
        c.release();
      },
    },
    {
      name: 'ours acquire()+release()',
      op: async () => {
        const c = await ours.acquire();
        c.release();
      },
    },
    { name: 'ours withConnection(noop)', op: () => ours.withConnection(async () => {}) },
    {
      name: 'postgres.js reserve()+release()',
      op: async () => {
        const c = await sql.reserve();
        c.release();
      },
      reference: true,
    },
  ];
  ctx.print('acquire+release cycle with no query (tight loop), against client CPU per SELECT 1:');
  for (const concurrency of CONCURRENCY) {
    // A cycle takes about a microsecond: a quarter of the usual slot still holds 10^4 or more of them.
    const result = await ctx.measureAbba({
      title: 'pool: acquire+release cycle',
      contenders: cycles,
      concurrency,
      budget: { durationMs: Math.max(20, Math.round(ctx.settings.durationMs / 4)) },
      warmupMs: Math.round(ctx.settings.warmupMs / 4),
    });
    ctx.printAbba(result);
    const rawNs = (result.rows[0]?.cpuUsPerOp ?? Number.NaN) * 1000;
    const queryNs = (queryCpuUs.get(concurrency) ?? Number.NaN) * 1000;
    const table = result.rows
      .filter((r) => r.role !== 'control')
      .map((r) => {
        const ns = r.cpuUsPerOp * 1000;
        const extraNs = ns - rawNs;
        // A CPU-bound client keeps query / (query + extra) of its throughput.
        const predicted = queryNs / (queryNs + extraNs);
        return [
          r.name,
          Math.round(ns).toLocaleString('en-US'),
          `${((ns / queryNs) * 100).toFixed(1)}%`,
          r.role === 'baseline' ? '' : `${extraNs >= 0 ? '+' : ''}${Math.round(extraNs)}`,
          r.role === 'baseline' ? '' : predicted.toFixed(3),
        ];
      });
    ctx.print(
      `${concurrency} worker${concurrency === 1 ? '' : 's'}: client CPU per SELECT 1 via pg.Pool = ${(queryNs / 1000).toFixed(1)} µs`,
    );
    ctx.printTable(['cycle', 'CPU ns/cycle', '% of query CPU', 'ns vs pg.Pool', 'predicted ratio (CPU-bound)'], table);
    ctx.print();
  }
}

/** The server's ceiling with a C client: pgbench `SELECT 1`, sandwiched between two pg.Pool runs. */
async function pgbenchReference(ctx: BenchContext, raw: pg.Pool): Promise<void> {
  if (!ctx.pgbenchPath) {
    ctx.print('pgbench reference skipped: no pgbench binary (set BENCH_PGBENCH)');
    return;
  }
  const seconds = ctx.settings.quick ? 2 : 5;
  const clients = ctx.poolSize;
  const dir = mkdtempSync(join(tmpdir(), 'accountdb-bench-'));
  const script = join(dir, 'select1.sql');
  writeFileSync(script, 'SELECT 1;\n');
  const rawRun = async () => {
    const r = await ctx.runWorkers(16, { durationMs: seconds * 1000 }, () => raw.query('SELECT 1'));
    return (r.ops * 1000) / r.elapsedMs;
  };
  try {
    const before = await rawRun();
    const tps = await ctx.pgbench(['-n', '-f', script, '-c', String(clients), '-j', '2', '-T', String(seconds)]);
    const after = await rawRun();
    const rawQps = (before + after) / 2;
    ctx.print(`pgbench reference — SELECT 1, ${seconds} s each, between two pg.Pool runs at 16 workers:`);
    ctx.printTable(
      ['client', 'q/s', 'vs pg.Pool'],
      [
        ['pg.Pool, 16 workers (before)', Math.round(before).toLocaleString('en-US'), (before / rawQps).toFixed(3)],
        [`pgbench -c ${clients} -j 2 (C, simple protocol)`, Math.round(tps).toLocaleString('en-US'), (tps / rawQps).toFixed(3)],
        ['pg.Pool, 16 workers (after)', Math.round(after).toLocaleString('en-US'), (after / rawQps).toFixed(3)],
      ],
    );
    ctx.print();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * Issue 16 §2: PK lookup at 64 workers on 8 connections (every contender's pool has 8), with our pool
 * in pipelining mode beside its default, raw pg.Pool and postgres.js (which pipelines), ABBA order.
 */
async function pipelining(ctx: BenchContext): Promise<void> {
  const { host, port, database, user, password } = ctx.config;
  const max = PIPELINING.connections;
  const rawConfig = { host, port, database, user, password, max, idleTimeoutMillis: 0 };
  const raw = new pg.Pool(rawConfig);
  const rawControl = new pg.Pool(rawConfig);
  const common = { host, port, database, user, password, sslmode: 'disable' as const, maxConnections: max };
  const plain = createPool(common);
  const piped = createPool({ ...common, pipelining: true });
  const sql = postgres({ host, port, database, username: user, password, max, idle_timeout: 0, onnotice: () => {} });
  const rows = ctx.benchTable.rows;
  const pkText = `SELECT id, name, balance FROM ${ctx.benchTable.name} WHERE id = $1`;
  const idFor = (worker: number, seq: number) => ((seq * 7919 + worker * 104_729) % rows) + 1;
  try {
    const result = await ctx.measureAbba({
      title: `pool: PK lookup, pipelining (${PIPELINING.workers} workers on ${max} connections)`,
      contenders: [
        { name: 'pg.Pool (raw)', op: (w, s) => raw.query(pkText, [idFor(w, s)]) },
        { name: 'ours, pipelining', op: (w, s) => piped.query(pkText, [idFor(w, s)]) },
        { name: 'ours pool.query (default)', op: (w, s) => plain.query(pkText, [idFor(w, s)]), reference: true },
        {
          name: 'postgres.js',
          op: (w, s) => sql`SELECT id, name, balance FROM bench_accounts WHERE id = ${idFor(w, s)}`.then((r) => r),
          reference: true,
        },
      ],
      concurrency: PIPELINING.workers,
      control: { name: 'pg.Pool (second pool)', op: (w, s) => rawControl.query(pkText, [idFor(w, s)]) },
      bar: PIPELINING.vsRaw,
    });
    ctx.printAbba(result);
    const ratio = (name: string) => result.rows.find((x) => x.name.startsWith(name))?.ratio ?? Number.NaN;
    const ours = ratio('ours, pipelining');
    const vsPgJs = ours / ratio('postgres.js');
    const control = result.rows.find((x) => x.role === 'control');
    const noise = control ? `${control.ratio.toFixed(3)} (${control.ratioP25.toFixed(3)}–${control.ratioP75.toFixed(3)})` : '';
    const ok = ours >= PIPELINING.vsRaw && vsPgJs >= PIPELINING.vsPostgresJs;
    ctx.print(
      `issue 16 §2 bar — PK lookup at ${PIPELINING.workers} workers on ${max} connections: pipelining >= ${PIPELINING.vsRaw}x raw pg.Pool and >= ${PIPELINING.vsPostgresJs}x postgres.js:`,
    );
    ctx.printTable(
      ['workload', 'workers', 'pipelining/raw', 'pipelining/postgres.js', 'default/raw', 'CONTROL (p25–p75)', 'bar'],
      [
        [
          'PK lookup',
          PIPELINING.workers,
          ours.toFixed(3),
          vsPgJs.toFixed(3),
          ratio('ours pool.query (default)').toFixed(3),
          noise,
          ok ? 'meets' : 'BELOW',
        ],
      ],
    );
    ctx.print(
      `issue 16 §2 bar: PK@${PIPELINING.workers}/${max} ${ours.toFixed(2)}x raw ${vsPgJs.toFixed(2)}x postgres.js ${ok ? 'meets' : 'BELOW'}`,
    );
    ctx.print();
  } finally {
    await Promise.allSettled([
      raw.end(),
      rawControl.end(),
      plain.close({ force: true }),
      piped.close({ force: true }),
      sql.end({ timeout: 1 }),
    ]);
  }
}

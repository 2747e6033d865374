/**
 * @accountdb/pool against raw `pg.Pool` (and postgres.js for reference), per issue 2 §5.
 *
 * Part 1: throughput at 1, 16 and 64 workers for `SELECT 1` and a primary-key lookup; every pool has
 * the same maximum (ctx.poolSize connections). Bar: our/raw ≥ 0.97 for `pool.query` and
 * `withConnection`.
 * Part 2 (HikariCP's JMH approach): the cost of one acquire+release cycle with no query, in a tight
 * loop, set against the client CPU one query costs, which predicts the ratio a CPU-bound client sees.
 */
import { createPool } from '@accountdb/pool';
import pg from 'pg';
import postgres from 'postgres';
import type { Contender } from '../abba.js';
import type { BenchContext } from '../main.js';

const BAR = 0.97;
const CONCURRENCY = [1, 16, 64] as const;

export default async function run(ctx: BenchContext): Promise<void> {
  const { host, port, database, user, password } = ctx.config;
  const max = ctx.poolSize;
  // idleTimeoutMillis 0: pg.Pool would otherwise close connections idle for 10 s while other contenders run.
  const rawConfig = { host, port, database, user, password, max, idleTimeoutMillis: 0 };
  const raw = new pg.Pool(rawConfig);
  const rawControl = new pg.Pool(rawConfig);
  const ours = createPool({ host, port, database, user, password, sslmode: 'disable', maxConnections: max });
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
        withConnection: () => ours.withConnection((c) => c.query('SELECT 1')),
        postgresJs: () => sql`SELECT 1`,
      },
      {
        name: 'PK lookup',
        raw: (p: pg.Pool) => (w: number, s: number) => p.query(pkText, [idFor(w, s)]),
        ours: (w: number, s: number) => ours.query(pkText, [idFor(w, s)]),
        withConnection: (w: number, s: number) => ours.withConnection((c) => c.query(pkText, [idFor(w, s)])),
        postgresJs: (w: number, s: number) =>
          sql`SELECT id, name, balance FROM bench_accounts WHERE id = ${idFor(w, s)}`.then((r) => r),
      },
    ];
    for (const concurrency of CONCURRENCY) {
      for (const w of workloads) {
        const contenders: Contender[] = [
          { name: 'pg.Pool (raw)', op: w.raw(raw) },
          { name: 'ours pool.query', op: w.ours },
          { name: 'ours withConnection', op: w.withConnection },
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
      }
    }

    await acquireOverhead(ctx, raw, ours, sql);
  } finally {
    await Promise.allSettled([raw.end(), rawControl.end(), ours.close({ force: true }), sql.end({ timeout: 1 })]);
  }
}

/** HikariCP-style: ns per acquire+release with no query, against the client CPU of one query. */
async function acquireOverhead(
  ctx: BenchContext,
  raw: pg.Pool,
  ours: ReturnType<typeof createPool>,
  sql: postgres.Sql,
): Promise<void> {
  // Client CPU of one SELECT 1 through raw pg.Pool (server CPU is another process and not counted).
  const cpuPerQueryUs: Record<number, number> = {};
  for (const concurrency of [1, 16]) {
    await ctx.runWorkers(concurrency, { durationMs: ctx.settings.warmupMs }, () => raw.query('SELECT 1'));
    const before = process.cpuUsage();
    const r = await ctx.runWorkers(concurrency, { durationMs: ctx.settings.quick ? 500 : 2000 }, () => raw.query('SELECT 1'));
    const used = process.cpuUsage(before);
    cpuPerQueryUs[concurrency] = (used.user + used.system) / r.ops;
  }

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
  for (const concurrency of [1, 16]) {
    const result = await ctx.measureAbba({ title: 'pool: acquire+release cycle', contenders: cycles, concurrency });
    ctx.printAbba(result);
    const rawNs = 1e9 / (result.rows[0]?.medianQps ?? Number.NaN);
    const queryUs = cpuPerQueryUs[concurrency] ?? Number.NaN;
    const table = result.rows
      .filter((r) => r.role !== 'control')
      .map((r) => {
        const ns = 1e9 / r.medianQps;
        const extraNs = ns - rawNs;
        // A client that is CPU-bound loses (extra cycle cost) / (query CPU + extra) of its throughput.
        const predicted = (queryUs * 1000) / (queryUs * 1000 + extraNs);
        return [
          r.name,
          Math.round(ns).toLocaleString('en-US'),
          `${((ns / (queryUs * 1000)) * 100).toFixed(1)}%`,
          r.role === 'baseline' ? '' : `${extraNs >= 0 ? '+' : ''}${Math.round(extraNs)}`,
          r.role === 'baseline' ? '' : predicted.toFixed(3),
        ];
      });
    ctx.print(
      `${concurrency} worker${concurrency === 1 ? '' : 's'}: client CPU per SELECT 1 via pg.Pool = ${queryUs.toFixed(1)} µs`,
    );
    ctx.printTable(['cycle', 'ns/cycle', '% of query CPU', 'ns vs pg.Pool', 'predicted ratio (CPU-bound)'], table);
    ctx.print();
  }
}

/**
 * What OpenTelemetry tracing costs `@accountdb/pool` (issue 10 §4): `SELECT 1` through `pool.query` at 1
 * and 16 workers, against raw `pg.Pool`, for a pool with no tracer (held to the bar: the untraced path
 * must cost nothing), with the API's no-op tracer (no SDK registered), and with the SDK's tracer
 * (BasicTracerProvider + BatchSpanProcessor, spans exported to nowhere): two spans per query, acquire
 * and statement. The traced rows are references: what tracing costs, not held to a bar.
 */
import { createPool } from '@accountdb/pool';
import { trace } from '@opentelemetry/api';
import { BasicTracerProvider, BatchSpanProcessor, type SpanExporter } from '@opentelemetry/sdk-trace-base';
import type { AbbaResult, Contender } from '../abba.js';
import type { BenchContext } from '../main.js';
import { contenderPools } from '../pools.js';

const BAR = 0.97;
const CONCURRENCY = [1, 16] as const;

/** Accepts every batch of spans and drops it: the cost measured is the pool's and the SDK's, not an exporter's. */
const discardingExporter: SpanExporter = {
  export: (_spans, done) => done({ code: 0 }),
  shutdown: async () => {},
};

export default async function run(ctx: BenchContext): Promise<void> {
  const { host, port, database, user, password } = ctx.config;
  const pools = contenderPools(ctx);
  const { raw, rawControl, ours } = pools;
  const provider = new BasicTracerProvider({ spanProcessors: [new BatchSpanProcessor(discardingExporter)] });
  const config = { host, port, database, user, password, sslmode: 'disable' as const, maxConnections: ctx.poolSize };
  // No global provider is registered, so the API's tracer is its no-op one (non-recording spans).
  const noop = createPool(config, { tracer: trace.getTracer('accountdb-bench') });
  const sdk = createPool(config, { tracer: provider.getTracer('accountdb-bench') });
  try {
    ctx.print(`pool size ${ctx.poolSize} for every pool; bar: no tracer / raw >= ${BAR}; traced rows are references`);
    ctx.print();
    const results: AbbaResult[] = [];
    for (const concurrency of CONCURRENCY) {
      const contenders: Contender[] = [
        { name: 'pg.Pool (raw)', op: () => raw.query('SELECT 1') },
        { name: 'ours, no tracer', op: () => ours.query('SELECT 1') },
        { name: 'ours, no-op tracer', op: () => noop.query('SELECT 1'), reference: true },
        { name: 'ours, SDK tracer', op: () => sdk.query('SELECT 1'), reference: true },
      ];
      const result = await ctx.measureAbba({
        title: 'tracing: SELECT 1',
        contenders,
        concurrency,
        control: { name: 'pg.Pool (second pool)', op: () => rawControl.query('SELECT 1') },
        bar: BAR,
      });
      ctx.printAbba(result);
      results.push(result);
    }
    printSummary(ctx, results);
  } finally {
    await Promise.allSettled([pools.close(), noop.close({ force: true }), sdk.close({ force: true })]);
    await provider.shutdown();
  }
}

/** One line per worker count: each pool's q/s ratio to raw, and tracing's cost against the untraced pool. */
function printSummary(ctx: BenchContext, results: readonly AbbaResult[]): void {
  const row = (r: AbbaResult, name: string) => r.rows.find((x) => x.name === name);
  const ratio = (r: AbbaResult, name: string) => {
    const x = row(r, name);
    return x ? `${x.ratio.toFixed(3)}${x.belowBar ? ' *' : ''}` : '';
  };
  const cpu = (r: AbbaResult, name: string) => row(r, name)?.cpuUsPerOp ?? Number.NaN;
  ctx.print(`tracing summary — q/s ratio to raw pg.Pool (median of ${results[0]?.pairs ?? 0} ABBA pairs; * below ${BAR}):`);
  ctx.printTable(
    ['workers', 'no tracer', 'no-op tracer', 'SDK tracer', 'CONTROL', 'CONTROL p25–p75', 'SDK µs/op over untraced'],
    results.map((r) => {
      const control = r.rows.find((x) => x.role === 'control');
      return [
        r.concurrency,
        ratio(r, 'ours, no tracer'),
        ratio(r, 'ours, no-op tracer'),
        ratio(r, 'ours, SDK tracer'),
        control ? control.ratio.toFixed(3) : '',
        control ? `${control.ratioP25.toFixed(3)}–${control.ratioP75.toFixed(3)}` : '',
        (cpu(r, 'ours, SDK tracer') - cpu(r, 'ours, no tracer')).toFixed(1),
      ];
    }),
  );
  ctx.print();
}

/**
 * ABBA measurement for noisy machines.
 *
 * On a 2-core box the client and PostgreSQL share the CPU, and one throughput run of raw `pg.Pool`
 * against itself varies by about ±8%. A single "A then B" comparison therefore says nothing about a
 * 3% difference. Instead every contender runs in each *pair* twice, in forward then reverse order
 * (A B C … C B A, the start rotating from pair to pair), so slow drifts (CPU frequency, other
 * processes, autovacuum, GC) hit every contender alike. Each contender's ratio is the median over
 * pairs of (its q/s in that pair) / (the baseline's q/s in that pair), and a CONTROL row runs the
 * baseline again in its own slots: its ratio's distance from 1.00 is the noise floor of the run.
 * Many short slots beat a few long ones: a burst of outside load spoils one pair, and the median
 * drops it. Each row also carries this process's CPU time per operation, which does not count time
 * spent descheduled and so degrades less than q/s when the machine is busy.
 */
import { performance } from 'node:perf_hooks';

/** One thing being measured. `op` is one unit of work (usually one query); it must not throw. */
export interface Contender {
  readonly name: string;
  /** One operation. `worker` is 0..concurrency-1; `seq` counts this worker's operations. */
  readonly op: (worker: number, seq: number) => Promise<unknown>;
  /** Printed for context but never held to the bar (e.g. postgres.js, which pipelines). */
  readonly reference?: boolean;
}

/** How long one contender runs in one slot: a fixed duration or a fixed number of operations. */
export type Budget = { readonly durationMs: number } | { readonly ops: number };

export interface AbbaOptions {
  /** Shown above the table. */
  readonly title: string;
  /** The first contender is the baseline that ratios are taken against (e.g. raw `pg.Pool`). */
  readonly contenders: readonly Contender[];
  /** Concurrent async workers each contender runs with. */
  readonly concurrency: number;
  /** Number of ABBA pairs. Default: `BENCH_PAIRS` or 20 (5 with `BENCH_QUICK=1`). */
  readonly pairs?: number;
  /** One slot's budget. Default `{ durationMs: BENCH_DURATION_MS or 200 }` (100 quick). */
  readonly budget?: Budget;
  /** Warm-up per contender before the first pair, ms. Default `BENCH_WARMUP_MS` or 1000 (200 quick). */
  readonly warmupMs?: number;
  /**
   * Second instance of the baseline for the CONTROL row (e.g. a separate `pg.Pool`). Default: the
   * baseline's own `op` again, run in its own slots. `false` leaves the control row out.
   */
  readonly control?: Contender | false;
  /** Ratios below this are flagged (reference and control rows excepted). Default: none. */
  readonly bar?: number;
}

export interface AbbaRow {
  readonly name: string;
  readonly role: 'baseline' | 'control' | 'contender' | 'reference';
  /** Median over pairs of this contender's q/s in that pair. */
  readonly medianQps: number;
  /** Median over pairs of (q/s / baseline q/s in the same pair). 1 for the baseline. */
  readonly ratio: number;
  /** 25th and 75th percentile of the per-pair ratios: the spread behind `ratio`. */
  readonly ratioP25: number;
  readonly ratioP75: number;
  /** Median over pairs of this process's CPU time per operation, µs (client side only). */
  readonly cpuUsPerOp: number;
  /**
   * Median over pairs of (baseline CPU/op ÷ this CPU/op): above 1 means cheaper than the baseline.
   * Less sensitive to other processes than q/s, since time spent descheduled is not counted, though
   * CPU/op still rises on a crowded machine (cache misses, context switches).
   */
  readonly cpuRatio: number;
  /** True when a bar was set, this row is held to it, and `ratio` is below it. */
  readonly belowBar: boolean;
}

export interface AbbaResult {
  readonly title: string;
  readonly concurrency: number;
  readonly pairs: number;
  readonly budget: Budget;
  readonly bar: number | undefined;
  readonly rows: readonly AbbaRow[];
}

/** Run settings from the environment: `BENCH_QUICK`, `BENCH_PAIRS`, `BENCH_DURATION_MS`, `BENCH_WARMUP_MS`. */
export interface BenchSettings {
  readonly quick: boolean;
  readonly pairs: number;
  readonly durationMs: number;
  readonly warmupMs: number;
}

export function settingsFromEnv(env: NodeJS.ProcessEnv = process.env): BenchSettings {
  const quick = env.BENCH_QUICK === '1' || env.BENCH_QUICK === 'true';
  const int = (name: string, fallback: number, min: number): number => {
    const text = env[name];
    if (text === undefined || text === '') return fallback;
    const value = Number(text);
    if (!Number.isInteger(value) || value < min) throw new Error(`${name} must be an integer >= ${min}, got ${text}`);
    return value;
  };
  return {
    quick,
    pairs: int('BENCH_PAIRS', quick ? 5 : 20, 1),
    durationMs: int('BENCH_DURATION_MS', quick ? 100 : 200, 10),
    warmupMs: int('BENCH_WARMUP_MS', quick ? 200 : 1000, 0),
  };
}

/** What one run of {@link runWorkers} did. */
export interface RunResult {
  readonly ops: number;
  readonly elapsedMs: number;
  /** CPU this process used meanwhile (user + system, all threads), µs. */
  readonly cpuUs: number;
}

/**
 * Run `op` from `concurrency` async workers until the budget is spent; each worker awaits its
 * operation before starting the next, like request handlers do.
 */
export async function runWorkers(concurrency: number, budget: Budget, op: Contender['op']): Promise<RunResult> {
  let ops = 0;
  const cpuBefore = process.cpuUsage();
  const started = performance.now();
  if ('durationMs' in budget) {
    const deadline = started + budget.durationMs;
    const worker = async (w: number) => {
      for (let seq = 0; performance.now() < deadline; seq++) {
        await op(w, seq);
        ops++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  } else {
    let remaining = budget.ops;
    const worker = async (w: number) => {
      for (let seq = 0; remaining > 0; seq++) {
        remaining--;
        await op(w, seq);
        ops++;
      }
    };
    await Promise.all(Array.from({ length: concurrency }, (_, w) => worker(w)));
  }
  const elapsedMs = performance.now() - started;
  const cpu = process.cpuUsage(cpuBefore);
  return { ops, elapsedMs, cpuUs: cpu.user + cpu.system };
}

/** Run every contender in ABBA order over N pairs and compute per-contender q/s and ratios. */
export async function measureAbba(options: AbbaOptions, settings: BenchSettings = settingsFromEnv()): Promise<AbbaResult> {
  const [baseline] = options.contenders;
  if (!baseline) throw new Error('measureAbba needs at least one contender');
  const pairs = options.pairs ?? settings.pairs;
  const budget = options.budget ?? { durationMs: settings.durationMs };
  const warmupMs = options.warmupMs ?? settings.warmupMs;
  const control: Contender | undefined =
    options.control === false
      ? undefined
      : {
          name: `CONTROL (${options.control ? options.control.name : `${baseline.name} again`})`,
          op: (options.control ?? baseline).op,
        };
  const slots: Contender[] = control ? [...options.contenders, control] : [...options.contenders];

  for (const c of slots) if (warmupMs > 0) await runWorkers(options.concurrency, { durationMs: warmupMs }, c.op);

  // qps[pair][slot] and client CPU µs per operation, cpu[pair][slot]
  const qps: number[][] = [];
  const cpu: number[][] = [];
  for (let p = 0; p < pairs; p++) {
    const ops = new Array<number>(slots.length).fill(0);
    const ms = new Array<number>(slots.length).fill(0);
    const us = new Array<number>(slots.length).fill(0);
    const forward = slots.map((_, i) => (i + p) % slots.length);
    for (const i of [...forward, ...[...forward].reverse()]) {
      const r = await runWorkers(options.concurrency, budget, (slots[i] as Contender).op);
      ops[i] = (ops[i] as number) + r.ops;
      ms[i] = (ms[i] as number) + r.elapsedMs;
      us[i] = (us[i] as number) + r.cpuUs;
    }
    qps.push(ops.map((n, i) => (n * 1000) / (ms[i] as number)));
    cpu.push(ops.map((n, i) => (us[i] as number) / n));
  }

  const rows: AbbaRow[] = slots.map((c, i) => {
    const ratios = qps.map((pair) => (pair[i] as number) / (pair[0] as number));
    const role = i === 0 ? 'baseline' : c === control ? 'control' : c.reference ? 'reference' : 'contender';
    const ratio = median(ratios);
    const cpuRatios = cpu.map((pair) => (pair[0] as number) / (pair[i] as number));
    return {
      name: c.name,
      role,
      medianQps: median(qps.map((pair) => pair[i] as number)),
      ratio,
      ratioP25: quantile(ratios, 0.25),
      ratioP75: quantile(ratios, 0.75),
      cpuUsPerOp: median(cpu.map((pair) => pair[i] as number)),
      cpuRatio: median(cpuRatios),
      belowBar: role === 'contender' && options.bar !== undefined && ratio < options.bar,
    };
  });
  return { title: options.title, concurrency: options.concurrency, pairs, budget, bar: options.bar, rows };
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Linear-interpolated quantile (q in 0..1) of unsorted values. */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return (sorted[lo] as number) + ((sorted[hi] as number) - (sorted[lo] as number)) * (pos - lo);
}

/** Render rows as an aligned text table; numbers are right-aligned. */
export function formatTable(headers: readonly string[], rows: readonly (readonly (string | number)[])[]): string {
  const cells = [headers, ...rows].map((r) => r.map((v) => String(v)));
  const widths = headers.map((_, c) => Math.max(...cells.map((r) => (r[c] ?? '').length)));
  const numeric = headers.map((_, c) => rows.length > 0 && rows.every((r) => /^[-+\d.,x%×]+$/.test(String(r[c] ?? ''))));
  const line = (r: readonly string[]) =>
    r
      .map((v, c) => (numeric[c] ? v.padStart(widths[c] as number) : v.padEnd(widths[c] as number)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  return [line(cells[0] as string[]), rule, ...cells.slice(1).map(line)].join('\n');
}

/** The standard table for an {@link AbbaResult}: q/s, ratio vs baseline, and the ratio spread. */
export function formatAbba(result: AbbaResult): string {
  const budget = 'durationMs' in result.budget ? `${result.budget.durationMs} ms` : `${result.budget.ops} ops`;
  const head = `${result.title} — ${result.concurrency} worker${result.concurrency === 1 ? '' : 's'}, ${result.pairs} ABBA pairs × 2 slots of ${budget}`;
  const rows = result.rows.map((r) => [
    r.name,
    Math.round(r.medianQps).toLocaleString('en-US'),
    r.ratio.toFixed(3),
    `${r.ratioP25.toFixed(3)}–${r.ratioP75.toFixed(3)}`,
    r.cpuUsPerOp.toFixed(1),
    r.cpuRatio.toFixed(3),
    r.belowBar ? `BELOW ${result.bar}` : r.role === 'contender' ? '' : r.role,
  ]);
  return `${head}\n${formatTable(['contender', 'q/s (median)', 'ratio', 'ratio p25–p75', 'client µs/op', 'CPU ratio', 'note'], rows)}`;
}

import { describe, expect, test } from 'vitest';
import { type Contender, formatTable, measureAbba, median, quantile, runWorkers, settingsFromEnv } from '../src/abba.js';

const settings = { quick: false, pairs: 3, durationMs: 10, warmupMs: 0 };

describe('quantile and median', () => {
  test('interpolate between sorted values', () => {
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([5, 1, 3])).toBe(3);
    expect(quantile([1, 2, 3, 4, 5], 0.25)).toBe(2);
    expect(quantile([10, 20], 0.75)).toBe(17.5);
  });

  test('of nothing is NaN', () => {
    expect(median([])).toBeNaN();
  });
});

describe('settingsFromEnv', () => {
  test('defaults, quick mode and overrides', () => {
    expect(settingsFromEnv({})).toEqual({ quick: false, pairs: 20, durationMs: 200, warmupMs: 1000 });
    expect(settingsFromEnv({ BENCH_QUICK: '1' })).toEqual({ quick: true, pairs: 5, durationMs: 100, warmupMs: 200 });
    expect(settingsFromEnv({ BENCH_PAIRS: '12', BENCH_DURATION_MS: '50', BENCH_WARMUP_MS: '0' })).toMatchObject({
      pairs: 12,
      durationMs: 50,
      warmupMs: 0,
    });
  });

  test('rejects values that are not integers in range', () => {
    expect(() => settingsFromEnv({ BENCH_PAIRS: '0' })).toThrow(/BENCH_PAIRS must be an integer >= 1, got 0/);
    expect(() => settingsFromEnv({ BENCH_DURATION_MS: 'fast' })).toThrow(/BENCH_DURATION_MS/);
    expect(() => settingsFromEnv({ BENCH_WARMUP_MS: '1.5' })).toThrow(/BENCH_WARMUP_MS/);
  });
});

describe('runWorkers', () => {
  test('an op budget runs exactly that many operations spread over the workers', async () => {
    const seen: Array<[number, number]> = [];
    const result = await runWorkers(3, { ops: 10 }, async (worker, seq) => {
      seen.push([worker, seq]);
      await new Promise((resolve) => setImmediate(resolve));
    });
    expect(result.ops).toBe(10);
    expect(seen).toHaveLength(10);
    expect(new Set(seen.map(([w]) => w))).toEqual(new Set([0, 1, 2]));
    // Each worker numbers its own operations 0, 1, 2, ...
    for (const w of [0, 1, 2]) {
      const seqs = seen.filter(([x]) => x === w).map(([, s]) => s);
      expect(seqs).toEqual(seqs.map((_, i) => i));
    }
  });
});

describe('measureAbba', () => {
  test('runs every contender forward then backward in each pair, rotating the start', async () => {
    const order: string[] = [];
    const contender = (name: string): Contender => ({
      name,
      op: async () => {
        order.push(name);
      },
    });
    const result = await measureAbba(
      {
        title: 't',
        contenders: [contender('A'), contender('B'), contender('C')],
        control: contender('X'),
        concurrency: 1,
        budget: { ops: 1 },
        warmupMs: 0,
      },
      settings,
    );
    expect(order.join('')).toBe(['ABCXXCBA', 'BCXAAXCB', 'CXABBAXC'].join(''));
    expect(result.pairs).toBe(3);
    expect(result.rows.map((r) => [r.name, r.role])).toEqual([
      ['A', 'baseline'],
      ['B', 'contender'],
      ['C', 'contender'],
      ['CONTROL (X)', 'control'],
    ]);
  });

  test('the baseline ratio is exactly 1; only held contenders are flagged against the bar', async () => {
    const idle = async () => {
      await new Promise((resolve) => setImmediate(resolve));
    };
    const result = await measureAbba(
      {
        title: 't',
        contenders: [
          { name: 'base', op: idle },
          { name: 'held', op: idle },
          { name: 'ref', op: idle, reference: true },
        ],
        concurrency: 2,
        budget: { ops: 20 },
        warmupMs: 0,
        // Unreachable on purpose: every held row is below it, and only held rows may say so.
        bar: 1e9,
      },
      settings,
    );
    const byName = new Map(result.rows.map((r) => [r.name, r]));
    expect(byName.get('base')?.ratio).toBe(1);
    expect(byName.get('base')?.cpuRatio).toBe(1);
    expect(byName.get('held')?.belowBar).toBe(true);
    expect(byName.get('ref')?.belowBar).toBe(false);
    expect(byName.get('CONTROL (base again)')?.role).toBe('control');
    expect(byName.get('CONTROL (base again)')?.belowBar).toBe(false);
    for (const r of result.rows) {
      expect(r.medianQps).toBeGreaterThan(0);
      expect(r.ratioP25).toBeLessThanOrEqual(r.ratioP75);
    }
  });

  test('without contenders it refuses to run', async () => {
    await expect(measureAbba({ title: 't', contenders: [], concurrency: 1 }, settings)).rejects.toThrow(/at least one/);
  });
});

test('formatTable right-aligns numeric columns (and their header) and left-aligns text', () => {
  const text = formatTable(
    ['name', 'q/s'],
    [
      ['a', '1,000'],
      ['longer', '20'],
    ],
  );
  expect(text.split('\n')).toEqual(['name      q/s', '------  -----', 'a       1,000', 'longer     20']);
});

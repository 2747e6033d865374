import { describe, expect, test } from 'vitest';
import { backoffDelay, DatabaseUnavailableError, isTransientConnectionError, PoolTimeoutError } from '../src/index.js';

const withCode = (code: string, message = 'x') => Object.assign(new Error(message), { code });

describe('isTransientConnectionError', () => {
  test.each([
    ['ECONNREFUSED', true],
    ['ECONNRESET', true],
    ['ETIMEDOUT', true],
    ['08006', true],
    ['08001', true],
    ['57P01', true],
    ['57P02', true],
    ['57P03', true],
    ['53300', true],
    ['28P01', false],
    ['28000', false],
    ['23505', false],
    ['42P01', false],
    ['40001', false],
  ])('%s → %s', (code, expected) => {
    expect(isTransientConnectionError(withCode(code))).toBe(expected);
    expect(isTransientConnectionError(new DatabaseUnavailableError('h', 5432, withCode(code)))).toBe(expected);
  });

  test('pg connect timeouts and dropped sockets (no code) are transient', () => {
    expect(isTransientConnectionError(new Error('Connection terminated due to connection timeout'))).toBe(true);
    expect(isTransientConnectionError(new Error('Connection terminated unexpectedly'))).toBe(true);
  });

  test('dual-stack refusals (AggregateError) are transient', () => {
    expect(isTransientConnectionError(new AggregateError([withCode('ECONNREFUSED'), withCode('ECONNREFUSED')]))).toBe(true);
  });

  test('pool exhaustion and plain errors are not', () => {
    expect(isTransientConnectionError(new PoolTimeoutError({ waitedMs: 10, waiting: 1, max: 1, active: 1, connecting: 0 }))).toBe(
      false,
    );
    expect(isTransientConnectionError(new TypeError('bug'))).toBe(false);
    expect(isTransientConnectionError(undefined)).toBe(false);
  });
});

describe('backoffDelay (full jitter)', () => {
  test('grows exponentially up to the cap; jitter spans [0, ceiling)', () => {
    expect(backoffDelay(0, 100, 10_000, () => 0.999)).toBe(99);
    expect(backoffDelay(3, 100, 10_000, () => 0.999)).toBe(799);
    expect(backoffDelay(20, 100, 10_000, () => 0.999)).toBe(9990);
    expect(backoffDelay(5, 100, 10_000, () => 0)).toBe(0);
  });

  test('two clients that fail together do not retry together', () => {
    const a = Array.from({ length: 50 }, (_, i) => backoffDelay(i % 6, 1000, 30_000));
    const b = Array.from({ length: 50 }, (_, i) => backoffDelay(i % 6, 1000, 30_000));
    expect(a.filter((v, i) => v === b[i]).length).toBeLessThan(10);
  });
});

import { createPool, type Pool, type PoolConfigInput } from '@accountdb/pool';
import { type ConnectionFields, testPoolConfig } from '@accountdb/test-db';

/** A pool on the test database (test-db's {@link testPoolConfig}); every test file closes its pools in afterAll. */
export function poolFor(db: ConnectionFields, extra: PoolConfigInput = {}): Pool {
  return createPool(testPoolConfig(db, extra));
}

/** The rejection of `promise` (fails the test when it resolves). */
export async function rejectionOf(promise: Promise<unknown> | (() => unknown)): Promise<unknown> {
  try {
    await (typeof promise === 'function' ? promise() : promise);
  } catch (err) {
    return err;
  }
  throw new Error('expected a rejection, got a result');
}

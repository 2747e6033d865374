import { createPool, type Pool, type PoolConfigInput } from '@accountdb/pool';
import { type ConnectionFields, testPoolConfig, waitFor as waitUntil } from '@accountdb/test-db';

/** test-db's `waitFor` with a minute's bound: stats tests wait on the statistics collector under load. */
export const waitFor = (condition: () => Promise<boolean>, limitMs = 60_000): Promise<void> => waitUntil(condition, limitMs);

/** A pool on a test database; every test file closes its pools in afterAll. */
export function poolFor(db: ConnectionFields, extra: PoolConfigInput = {}): Pool {
  return createPool(testPoolConfig(db, extra));
}

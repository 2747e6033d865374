import { createPool, type Pool, type PoolConfigInput } from '@accountdb/pool';
import type { TestDatabase } from '@accountdb/test-db';

/** A pool on the test database; every test file closes its pools in afterAll. */
export function poolFor(
  db: Pick<TestDatabase, 'host' | 'port' | 'database' | 'user' | 'password'>,
  extra: PoolConfigInput = {},
): Pool {
  return createPool({
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    password: db.password,
    sslmode: 'disable',
    minConnections: 0,
    maxConnections: 4,
    ...extra,
  });
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

/** Poll `condition` until it holds; throws after `limitMs` (a generous bound for a loaded machine, not a timing assertion). */
export async function waitFor(condition: () => Promise<boolean>, limitMs = 30_000): Promise<void> {
  const deadline = Date.now() + limitMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`condition not met within ${limitMs} ms`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

import { createPool, type Pool, type PoolConfigInput } from '@accountdb/pool';
import { type ConnectionFields, testPoolConfig } from '@accountdb/test-db';
import type { HealthDocument } from '../src/index.js';

/** A pool on a test database (test-db's {@link testPoolConfig}); every test file closes its pools in afterEach/afterAll. */
export function poolFor(db: ConnectionFields, extra: PoolConfigInput = {}): Pool {
  return createPool(testPoolConfig(db, extra));
}

/** The one entry under `key`; fails the test when the key is missing. */
export function entry(doc: HealthDocument, key: string) {
  const list = doc.checks[key];
  if (!list?.[0]) throw new Error(`no check ${key} in ${JSON.stringify(doc)}`);
  return list[0];
}
